"""Connectors: one package per external system, each speaking exactly one API.

The engine depends only on the protocols and the error taxonomy in ``billsync.core.protocols``
and on the canonical models in ``billsync.core.canonical``; vendor SDKs are imported only inside
their own ``connectors/<name>/`` package. A connector package is split the same way
every time: ``client.py`` (auth, transport, the error table that maps vendor errors to
``ConnectorError``), ``pull.py``/``feed.py`` (reads), ``actions.py`` (writes),
``webhooks.py`` and ``convert.py`` (vendor JSON <-> canonical). Third-party connectors
register through the ``billsync.connectors`` entry-point group and must pass the shared
connector contract tests.
"""
