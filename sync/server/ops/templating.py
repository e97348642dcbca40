"""Rendering an ops page: the Jinja2 templates (autoescaped), the flash message, the
CSRF token for the page's forms, and the headers every page carries.

The pages run no script, so the Content-Security-Policy allows none; the inline
style sheet of the base template is the only thing besides the document itself.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from billsync.sync.ops.render import human_age
from billsync.sync.server.ops import csrf, flash
from billsync.sync.server.ops.auth import Session, clear_cookie, enabled_token, set_cookie
from billsync.sync.server.ops.context import OpsContext

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
NAV = (
    ("failures", "/ops/failures", "Failures"),
    ("discrepancies", "/ops/discrepancies", "Discrepancies"),
    ("runs", "/ops/runs", "Runs"),
    ("aging", "/ops/reports/aging", "Aging report"),
)


def templates() -> Environment:
    env = Environment(
        loader=PackageLoader("billsync.sync.server.ops", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["age"] = human_age
    return env


class Pages:
    def __init__(self, ctx: OpsContext) -> None:
        self.ctx = ctx
        self.env = templates()

    def html(self, template: str, **values: Any) -> str:
        return self.env.get_template(template).render(**values)

    def page(
        self,
        request: Request,
        template: str,
        *,
        session: Session | None,
        active: str = "",
        status_code: int = 200,
        **values: Any,
    ) -> HTMLResponse:
        """A full page; consumes the flash message the last post left, if any."""
        enabled_token(self.ctx)
        signer = self.ctx.signer
        shown = flash.decode(signer, request.cookies.get(flash.COOKIE))
        body = self.html(
            template,
            nav=NAV if session is not None else (),
            active=active,
            flash=shown,
            csrf_field=csrf.FIELD,
            csrf_token=csrf.session_token(signer, session) if session else "",
            **values,
        )
        response = HTMLResponse(body, status_code=status_code, headers=SECURITY_HEADERS)
        if request.cookies.get(flash.COOKIE) is not None:
            clear_cookie(response, self.ctx, request, flash.COOKIE)
        return response

    def message(self, title: str, text: str, status_code: int) -> str:
        """A bare page for refusals (no session, no flash): used by the error handler."""
        return self.html(
            "message.html",
            nav=(),
            active="",
            flash=None,
            csrf_field=csrf.FIELD,
            csrf_token="",
            title=title,
            text=text,
            status_code=status_code,
        )

    def set_flash(self, response: Any, request: Request, kind: str, text: str) -> None:
        enabled_token(self.ctx)
        signer = self.ctx.signer
        value = flash.encode(signer, flash.Flash("ok" if kind == "ok" else "error", text))
        set_cookie(response, self.ctx, request, flash.COOKIE, value, max_age=flash.MAX_AGE_S)
