"""The ops surface's data layer: the failure log, status and AR reports.

Plain functions over a `Ledger`, returning frozen, JSON-ready results (``as_json()``
gives only str/int/bool/None/lists/dicts; money as decimal strings) that the CLI
(`sync/cli/failures_cmd.py`, `status_cmd.py`, `report_cmd.py`) and the web ops page
render. Nothing here prints, and nothing here reads a secret into a result.
"""
