"""CSRF protection for every form the ops pages post.

- Signed-in forms carry a token bound to the session: an HMAC of the session id's
  hash (`Signer`, purpose ``csrf``, under the ledger's random key). A page from
  another site cannot read it, so it cannot post a working form; SameSite=Strict
  already keeps the session cookie off cross-site requests, and this check holds
  even where a browser ignores SameSite.
- The login form has no session yet: it uses a signed double submit. The form page
  sets a random nonce in an HttpOnly cookie and puts the nonce's signature in the
  form; the post must bring both, and they must match. The key is random
  (`signing`), so the form says nothing about the ops token.

A post without a valid token is refused with 403 and changes nothing. API requests
authenticated with a Bearer header need no token: a browser never adds that header
by itself.
"""

from __future__ import annotations

import secrets

from billsync.sync.server.ops.auth import Session
from billsync.sync.server.ops.errors import CsrfRefused
from billsync.sync.server.ops.signing import Signer

FIELD = "csrf_token"
LOGIN_COOKIE = "billsync_ops_login"
LOGIN_COOKIE_PATH = "/ops/login"
LOGIN_NONCE_TTL_S = 3600


def session_token(signer: Signer, session: Session) -> str:
    return signer.sign("csrf", session.id_hash)


def check_session_token(signer: Signer, session: Session, presented: str | None) -> None:
    if not presented or not signer.verify("csrf", session.id_hash, presented):
        raise CsrfRefused()


def new_login_nonce() -> str:
    return secrets.token_urlsafe(16)


def login_token(signer: Signer, nonce: str) -> str:
    return signer.sign("login", nonce)


def check_login_token(signer: Signer, nonce: str | None, presented: str | None) -> None:
    if not nonce or not presented or not signer.verify("login", nonce, presented):
        raise CsrfRefused()
