"""Why python-quickbooks sends through our session, and the base-URL rule that makes it safe.

python-quickbooks' own session is an ``OAuth2Session`` that refuses ``http://`` URLs
unless ``OAUTHLIB_INSECURE_TRANSPORT=1`` is set — process-wide, for every OAuth client
in the process. The client replaces it with the core's `VendorSession`: a plain session
whose per-thread ``access_token`` python-quickbooks reads to add the bearer header, so
the local sandbox (http on 127.0.0.1) works without switching that check off anywhere,
and `check_base_url` refuses plain http to any host but loopback, so a token can never
go to a real Intuit host unencrypted.
"""

from __future__ import annotations

from urllib.parse import urlparse

from billsync.connectors.quickbooks.errors import SYSTEM
from billsync.core.protocols import ConnectorError, ErrorClass

__all__ = ["check_base_url"]


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
