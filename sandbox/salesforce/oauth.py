"""`POST /services/oauth2/token` and the sessions it hands out.

Two grants, as billsync uses them:
- client credentials: `client_id`/`client_secret` in the form body or HTTP Basic;
- JWT bearer: an RS256 `assertion` whose signature is checked against the public half
  of a key pair made at start-up (the private half is written next to the CA for
  clients); `iss` must be the consumer key, `sub` the integration user, `aud` the
  login host (login/test.salesforce.com or this sandbox), `exp` in the future by the
  wall clock the client used to mint it.

Sessions expire after a period without use (default 2 h, like an org's session
timeout); an expired or unknown token gets 401 INVALID_SESSION_ID. There is no refresh
token in either grant: clients log in again.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.requests import Request
from starlette.responses import Response

from billsync.sandbox.core import Clock
from billsync.sandbox.salesforce import ids
from billsync.sandbox.salesforce.errors import json_response, oauth_error

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
ORG_ID = ids.to18("00D5g000004BiLl")
USER_ID = ids.to18("0055g00000BiLlS")


class Sessions:
    def __init__(self, clock: Clock, timeout: timedelta) -> None:
        self.clock = clock
        self.timeout = timeout
        self._last_used: dict[str, datetime] = {}

    def issue(self) -> str:
        now = self.clock.now()
        self._last_used = {t: at for t, at in self._last_used.items() if now - at < self.timeout}
        token = f"{ORG_ID[:15]}!{secrets.token_urlsafe(72)}"
        self._last_used[token] = now
        return token

    def check(self, authorization: str | None) -> bool:
        """A valid `Authorization: Bearer <token>` (or `OAuth <token>`) extends the session."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() not in ("bearer", "oauth"):
            return False
        last = self._last_used.get(token.strip())
        now = self.clock.now()
        if last is None or now - last >= self.timeout:
            self._last_used.pop(token.strip(), None)
            return False
        self._last_used[token.strip()] = now
        return True

    def expire_all(self) -> int:
        count = len(self._last_used)
        self._last_used.clear()
        return count


class OAuth:
    def __init__(
        self,
        clock: Clock,
        sessions: Sessions,
        base_url: str,
        key_dir: Path,
    ) -> None:
        self.clock = clock
        self.sessions = sessions
        self.base_url = base_url
        self.client_id = "3MVG9billsyncSandboxConsumerKey" + secrets.token_hex(8)
        self.client_secret = secrets.token_hex(32)
        self.username = "integration@billsync-sandbox.example"
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.public_key = private_key.public_key()
        key_dir.mkdir(parents=True, exist_ok=True)
        self.private_key_file = key_dir / "salesforce-jwt.key"
        self.private_key_file.write_bytes(
            private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.private_key_file.chmod(0o600)
        self.audiences = [
            "https://login.salesforce.com",
            "https://test.salesforce.com",
            base_url,
            base_url + "/",
        ]

    async def token(self, request: Request) -> Response:
        form = {key: values[0] for key, values in parse_qs((await request.body()).decode()).items()}
        grant = form.get("grant_type")
        if grant == "client_credentials":
            return self._client_credentials(request, form)
        if grant == JWT_GRANT:
            return self._jwt_bearer(form.get("assertion", ""))
        return oauth_error("unsupported_grant_type", "grant type not supported")

    def _client_credentials(self, request: Request, form: dict[str, str]) -> Response:
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(encoded, validate=True).decode()
            except (ValueError, UnicodeDecodeError):
                return oauth_error("invalid_client", "invalid client credentials")
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        if not hmac.compare_digest(client_secret or "", self.client_secret):
            return oauth_error("invalid_client", "invalid client credentials")
        return self._grant()

    def _jwt_bearer(self, assertion: str) -> Response:
        try:
            claims = jwt.decode(
                assertion,
                self.public_key,
                algorithms=["RS256"],
                audience=self.audiences,
                options={"require": ["exp", "iss", "sub", "aud"]},
                leeway=5,
            )
        except jwt.InvalidAudienceError:
            return oauth_error("invalid_grant", "audience is invalid")
        except jwt.ExpiredSignatureError:
            return oauth_error("invalid_grant", "expired authorization code")
        except jwt.PyJWTError:
            return oauth_error("invalid_grant", "invalid assertion")
        if claims.get("iss") != self.client_id:
            return oauth_error("invalid_client_id", "client identifier invalid")
        if claims.get("sub") != self.username:
            return oauth_error("invalid_grant", "user hasn't approved this consumer")
        return self._grant()

    def _grant(self) -> Response:
        issued_at = str(int(self.clock.now().timestamp() * 1000))
        identity = f"{self.base_url}/id/{ORG_ID}/{USER_ID}"
        # Salesforce signs id + issued_at with the consumer secret so clients can check
        # the response came from the server they asked.
        digest = hmac.new(
            self.client_secret.encode(), (identity + issued_at).encode(), hashlib.sha256
        ).digest()
        return json_response(
            {
                "access_token": self.sessions.issue(),
                "instance_url": self.base_url,
                "id": identity,
                "token_type": "Bearer",
                "issued_at": issued_at,
                "signature": base64.b64encode(digest).decode(),
                "scope": "api",
            }
        )
