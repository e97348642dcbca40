"""Alembic environment and revision scripts for the ledger (package data)."""
