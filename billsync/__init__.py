"""billsync: quote-to-cash sync middleware.

Everything billsync installs lives under this one name: ``billsync.sync`` (the engine,
ledger, CLI and server), ``billsync.connectors``, ``billsync.mappings``,
``billsync.config`` and ``billsync.sandbox``. In the repository those are the top-level
folders of the same names (DESIGN.md "Layout"); this package maps them in with
symbolic links, so a checkout and an installed wheel import the same names.
"""
