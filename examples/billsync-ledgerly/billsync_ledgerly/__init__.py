"""billsync-ledgerly: an example billsync invoice target for Ledgerly.

Ledgerly is FICTIONAL: an invoicing API made up to show, end to end, what a third-party
connector package contains (docs/connectors.md, "A worked example"). Its tests run it
against a small fake of the API (tests/fake_ledgerly.py).

- plugin.py    SPEC, the entry point's `ConnectorSpec`, and `build`
- settings.py  the `ledgerly:` settings section and the credential shapes
- client.py    the session token, transport, retries and the error table
- actions.py   the invoice target: customers, invoices exactly once, the catalog
- convert.py   Ledgerly JSON ⇄ billsync's canonical models
- feed.py      the payment feed (events since a cursor, invoice money read fresh)
- webhooks.py  the signature check of POST /webhooks/<connection>
- health.py    what `billsync status` says about the stored session and API key
"""
