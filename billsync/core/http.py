"""`VendorSession`: the one `requests.Session` every connector's SDK sends through.

What the vendor SDKs (simple-salesforce, python-quickbooks, stripe-python) get wrong or
leave out, fixed once here:
- requests has no session-wide timeout: every request gets ``timeout_s`` unless it
  brings its own (stripe-python does).
- The configured ``ca_bundle`` (the sandbox's local CA, a corporate TLS proxy) is forced
  on every request: ``REQUESTS_CA_BUNDLE`` in the environment cannot override it, nor
  can an SDK that passes ``verify=<its own bundle>`` (stripe-python does). Like
  ``verify=`` in requests it replaces the default trust store. A request that turned
  verification off explicitly (``verify=False``) is left alone: substituting a bundle
  would switch on a check the caller switched off on purpose.
- JSON is decoded with ``parse_float=Decimal`` whoever calls ``response.json()``
  (simple-salesforce's error handler and helpers, python-quickbooks' ``misc_operation``
  call it without options), and NaN/Infinity are refused: no vendor number can become a
  float on any path.
- Each session names its connection (``connection``), so call counts and metrics tell
  two companies on one vendor host apart.
- Per thread, so concurrent calls never mix them: the bearer token an SDK reads from
  ``session.access_token`` (python-quickbooks), and the status and headers of the last
  response (python-quickbooks hides the status of a non-JSON answer; simple-salesforce
  reads ``Sforce-Limit-Info`` only after successful calls, but failed ones count too).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import requests

__all__ = ["VendorSession"]


def _no_json_constant(name: str) -> Any:
    raise ValueError(f"JSON constant {name} is not a number")


class _DecimalResponse(requests.Response):
    def json(self, **kwargs: Any) -> Any:
        # Forced, not defaulted: simple-salesforce passes parse_float=None explicitly.
        kwargs["parse_float"] = Decimal
        kwargs["parse_constant"] = _no_json_constant  # NaN/Infinity would be floats
        return super().json(**kwargs)


class VendorSession(requests.Session):
    """Timeout, forced CA bundle, Decimal JSON, per-thread token and last response."""

    def __init__(
        self, *, timeout_s: float = 60, ca_bundle: str | None = None, connection: str | None = None
    ) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        self.ca_bundle = ca_bundle
        # Which connection's calls these are, for API-call counts and metrics: two
        # companies of one kind talk to the same host, so the host cannot tell them apart.
        self.connection = connection
        if ca_bundle:
            self.verify = ca_bundle
        self._local = threading.local()

    @property
    def access_token(self) -> str:
        """The bearer token this thread's calls carry (read by python-quickbooks)."""
        return str(getattr(self._local, "token", ""))

    def use_token(self, token: str) -> None:
        """Send ``token`` on this thread's next calls, and forget the last response."""
        self._local.token = token
        self._local.status = None
        self._local.headers = None

    @property
    def last_status(self) -> int | None:
        """The HTTP status of this thread's last response (None: none since `use_token`)."""
        status = getattr(self._local, "status", None)
        return int(status) if status is not None else None

    @property
    def last_headers(self) -> Mapping[str, str]:
        """The headers of this thread's last response (case-insensitive; empty: none)."""
        headers = getattr(self._local, "headers", None)
        return headers if headers is not None else {}

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        if self.ca_bundle and kwargs.get("verify") is not False:
            kwargs["verify"] = self.ca_bundle
        response = super().send(request, **kwargs)
        response.__class__ = _DecimalResponse
        self._local.status = response.status_code
        self._local.headers = response.headers
        return response
