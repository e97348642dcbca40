"""QuickBooks Online + Intuit OAuth stand-in (see README.md beside this file)."""
