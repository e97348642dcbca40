"""`python -m billsync.sync.cli` — the same as the `billsync` console script."""

from billsync.sync.cli.app import main

main()
