"""A local certificate authority, made at start-up, for the HTTPS endpoints.

simple-salesforce always builds `https://` URLs, so the Salesforce stand-in must speak
TLS; connectors trust it through their `ca_bundle` setting pointing at `ca.pem`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme


@dataclass(frozen=True)
class LocalTLS:
    ca_bundle: Path
    cert_file: Path
    key_file: Path


def make_local_tls(
    directory: Path, hosts: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> LocalTLS:
    """Create a CA and a server certificate for `hosts`, written as PEM files."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="billsync sandbox")
    server = ca.issue_cert(*hosts)
    tls = LocalTLS(
        ca_bundle=directory / "ca.pem",
        cert_file=directory / "server.pem",
        key_file=directory / "server.key",
    )
    ca.cert_pem.write_to_path(str(tls.ca_bundle))
    server.cert_chain_pems[0].write_to_path(str(tls.cert_file))
    for extra in server.cert_chain_pems[1:]:
        extra.write_to_path(str(tls.cert_file), append=True)
    server.private_key_pem.write_to_path(str(tls.key_file))
    tls.key_file.chmod(0o600)
    return tls
