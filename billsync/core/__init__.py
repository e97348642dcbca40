"""The core: what every other part of billsync depends on, and which depends on nothing
of billsync (DESIGN.md "Layout"; the import-linter contracts in pyproject.toml).

- `canonical`: the canonical model (deals, customers, invoices, money facts).
- `money`, `money_state`: Decimal money and the one derivation of an invoice's state.
- `protocols`: what a connector implements, the error taxonomy and optional abilities.
- `plugins`: the plug-in specification and entry-point discovery.
- `catalog`, `customer_identity`, `idempotency`, `logs`, `problems`, `yamlio`: the
  shared rules those need (product look-ups, who a customer is, idempotency keys,
  structured logging and secret scrubbing, configuration problems, bounded YAML).

Connectors depend on the core only; the mapping layer and the ledger on the core; the
engine on core, ledger and mappings; CLI, server and ops on those and config.
"""
