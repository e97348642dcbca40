"""`python -m sync.cli` — the same as the `billsync` console script."""

from sync.cli.app import main

main()
