"""Ledger revisions, oldest first by revision id."""
