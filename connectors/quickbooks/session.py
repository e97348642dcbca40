"""The `requests.Session` python-quickbooks sends through, and the base-URL rule.

python-quickbooks' own session is an ``OAuth2Session`` that refuses ``http://`` URLs
unless ``OAUTHLIB_INSECURE_TRANSPORT=1`` is set — process-wide, for every OAuth client
in the process. `QboSession` replaces it: a plain session that sends the bearer token
itself (python-quickbooks reads ``session.access_token`` and adds the header), so the
local sandbox (http on 127.0.0.1) works without switching that check off anywhere, and
`check_base_url` refuses plain http to any host but loopback, so a token can never go
to a real Intuit host unencrypted.

Also: requests has no session-wide timeout (one is set on every request here); the
configured CA bundle is forced (``REQUESTS_CA_BUNDLE`` cannot override it); the token
and the last HTTP status are per thread, so concurrent calls never mix them.
"""

from __future__ import annotations

import threading
from typing import Any
from urllib.parse import urlparse

import requests

from billsync.connectors.quickbooks.errors import SYSTEM
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["QboSession", "check_base_url"]


def check_base_url(url: str) -> str:
    """The base URL, refused when it would send tokens over plain http to a remote host."""
    parsed = urlparse(url)
    loopback = parsed.hostname in ("127.0.0.1", "localhost", "::1")
    if parsed.scheme == "https" or (parsed.scheme == "http" and loopback):
        return url.rstrip("/")
    raise ConnectorError(
        system=SYSTEM,
        error_class=ErrorClass.AUTH,
        message="quickbooks.base_url must be https:// (plain http only for a local sandbox)",
        code="CONFIG",
    )


class QboSession(requests.Session):
    """The session python-quickbooks sends through: bearer token, timeout, CA bundle.

    python-quickbooks reads ``session.access_token`` for each request; it is per thread
    here so concurrent calls never mix tokens mid-refresh. The last HTTP status is kept
    per thread too (python-quickbooks does not expose it for non-JSON bodies).
    """

    def __init__(self, *, timeout_s: int, ca_bundle: str | None = None) -> None:
        super().__init__()
        self.timeout_s = timeout_s
        self.ca_bundle = ca_bundle
        self._local = threading.local()

    @property
    def access_token(self) -> str:
        return str(getattr(self._local, "token", ""))

    def use_token(self, token: str) -> None:
        self._local.token = token
        self._local.status = None

    @property
    def last_status(self) -> int | None:
        status = getattr(self._local, "status", None)
        return int(status) if status is not None else None

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout_s
        if self.ca_bundle:
            kwargs["verify"] = self.ca_bundle
        response = super().send(request, **kwargs)
        self._local.status = response.status_code
        return response
