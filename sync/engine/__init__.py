"""The engine: one sync cycle through the stages of DESIGN.md, against the protocols of
`billsync.core.protocols` and the ledger. No vendor SDK is imported anywhere below here."""
