"""The `requests.Session` handed to simple-salesforce: exact numbers, timeouts, CA bundle.

Vendor quirks handled here:
- simple-salesforce decodes JSON with ``response.json()``, i.e. floats. It has a
  ``parse_float`` option, but its error handler and several helpers call ``.json()``
  without it. So this session returns responses whose ``.json()`` always uses
  ``parse_float=Decimal``: no Salesforce number can become a float, whichever code path
  decodes it (``parse_constant`` refuses NaN/Infinity, which would be floats too).
- `requests` lets ``REQUESTS_CA_BUNDLE`` in the environment override ``session.verify``;
  the configured ``ca_bundle`` is forced on every request instead. Like ``verify=`` in
  requests, it replaces the default trust store (it is meant for the sandbox's local CA
  or a corporate TLS proxy).
- simple-salesforce parses ``Sforce-Limit-Info`` only after successful calls; failed
  calls count against the allocation too, so the header is recorded from every response.
- requests has no session-wide timeout; every request gets one here unless it has its own.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import requests

__all__ = ["DecimalSession"]


def _no_json_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not a number")


class _DecimalResponse(requests.Response):
    def json(self, **kwargs: Any) -> Any:
        # Forced, not defaulted: simple-salesforce passes parse_float=None explicitly.
        kwargs["parse_float"] = Decimal
        kwargs["parse_constant"] = _no_json_constant  # NaN/Infinity would be floats
        return super().json(**kwargs)


class DecimalSession(requests.Session):
    """A requests Session for Salesforce: Decimal JSON, timeouts, CA bundle, limit header."""

    def __init__(self, *, timeout_s: int = 60, ca_bundle: str | None = None) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        self.ca_bundle = ca_bundle
        if ca_bundle:
            self.verify = ca_bundle
        self.last_limit_info: str | None = None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        response = super().send(request, **kwargs)
        response.__class__ = _DecimalResponse
        limit_info = response.headers.get("Sforce-Limit-Info")
        if limit_info:
            self.last_limit_info = limit_info
        return response
