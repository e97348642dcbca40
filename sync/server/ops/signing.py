"""The key the ops pages sign with (login form, CSRF tokens, flash messages).

It is random and kept in the ledger (``credentials`` entry ``ops:signing-key``), made
by whichever process starts first: several uvicorn workers or replicas sign alike, and
nothing the server hands out before login is derived from the ops token. (It was once
an HMAC of the token: the login form then carried a value that tested token guesses
offline.) A signature made for one purpose is no good for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

from billsync.sync.ledger import Ledger

KEY_NAME = "ops:signing-key"
_KEY_BYTES = 32


class Signer:
    """HMAC-SHA256 under one key, one purpose per use (csrf, login, flash)."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("an ops signing key needs at least 16 bytes")
        self._key = key

    @classmethod
    def random(cls) -> Signer:
        """A key for this process only (a server whose pages are off, or a test)."""
        return cls(secrets.token_bytes(_KEY_BYTES))

    def __repr__(self) -> str:
        return "Signer(<key>)"

    def sign(self, purpose: str, value: str) -> str:
        mac = hmac.new(self._key, f"{purpose}|{value}".encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()

    def verify(self, purpose: str, value: str, signature: str) -> bool:
        return hmac.compare_digest(
            self.sign(purpose, value).encode(), signature.encode("utf-8", "surrogatepass")
        )


def ledger_signer(ledger: Ledger) -> Signer:
    """The ledger's signing key, created on first use (compare-and-swap: when two
    processes race, the loser reads the winner's key)."""
    for _ in range(3):
        stored = ledger.load_credentials(KEY_NAME)
        if stored is not None:
            return Signer(base64.b64decode(stored.data["key"]))
        key = secrets.token_bytes(_KEY_BYTES)
        if ledger.save_credentials(KEY_NAME, {"key": base64.b64encode(key).decode()}, None):
            return Signer(key)
    raise RuntimeError("could not read or create the ops signing key in the ledger")
