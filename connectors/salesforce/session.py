"""Salesforce sends through the core's `billsync.core.http.VendorSession`.

What simple-salesforce needs of it: every number decoded as Decimal (its error handler
and helpers call ``response.json()`` without its ``parse_float`` option), a timeout on
every request, the configured CA bundle forced, and the ``Sforce-Limit-Info`` header of
every response, failed ones included (it parses the header only after successful
calls). The old name stays for the modules that still import it from here.
"""

from __future__ import annotations

from billsync.core.http import VendorSession as DecimalSession

__all__ = ["DecimalSession"]
