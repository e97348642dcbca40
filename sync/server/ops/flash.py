"""One-shot messages after a form post ("Failure 12 queued for the next run"), carried
to the page the browser is redirected to in a short-lived signed cookie — signed so a
crafted link or cookie cannot make the page say something billsync did not."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Literal

from billsync.sync.server.ops.signing import Signer

COOKIE = "billsync_ops_flash"
MAX_AGE_S = 120
MAX_TEXT = 500


@dataclass(frozen=True)
class Flash:
    kind: Literal["ok", "error"]
    text: str


def encode(signer: Signer, flash: Flash) -> str:
    raw = json.dumps({"k": flash.kind, "t": flash.text[:MAX_TEXT]}, separators=(",", ":"))
    body = base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()
    return f"{body}.{signer.sign('flash', body)}"


def decode(signer: Signer, value: str | None) -> Flash | None:
    if not value:
        return None
    body, _, signature = value.partition(".")
    if not body or not signature or not signer.verify("flash", body, signature):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(data, dict):
        return None
    kind, text = data.get("k"), data.get("t")
    if kind not in ("ok", "error") or not isinstance(text, str):
        return None
    return Flash(kind, text)
