"""`billsync auth quickbooks`: connect a QuickBooks company, or report token health.

Connecting is Intuit's authorization-code flow: billsync prints the consent URL (with
the configured redirect URI and a random state), the operator approves in a browser and
pastes the URL they were redirected to (or the bare code); billsync exchanges the code
and stores the tokens in the ledger, where the connector's refreshes keep them. Scripts
and tests pass ``--redirect-url URL`` or ``--code C --realm R`` instead of typing.

``--status`` reads the ledger only (no network): realm, access-token expiry,
refresh-token age and expiry, and the 5-year limit counted from the first connection.
Exit codes: 0 healthy / connected, 1 a warning (expiry within 30 days, expired, or a
company other than the configured realm), 2 not connected, configuration wrong, or a sync
run was refused by QuickBooks since the last connection (invalid_grant: reconnect).

The connector's `ConnectorSpec.cli`: billsync registers it as ``billsync auth
quickbooks`` and lends it the settings section and the ledger (`CommandOpener`).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlparse

import typer

from billsync.connectors.quickbooks.errors import auth_command
from billsync.connectors.quickbooks.settings import QuickBooksSettings
from billsync.connectors.quickbooks.tokens import TokenSet, credential_name, token_health
from billsync.core.plugins import CommandContext, CommandOpener
from billsync.core.protocols import CredentialStore

__all__ = ["build_cli"]

OK, WARNING, NOT_CONNECTED = 0, 1, 2

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML config file (default: $BILLSYNC_CONFIG; environment variables override it).",
        show_default=False,
    ),
]


def build_cli(open_command: CommandOpener) -> typer.Typer:
    """The ``billsync auth quickbooks`` command: one command with options, no
    sub-commands (``billsync auth quickbooks [--status] …``)."""
    app = typer.Typer(add_completion=False)

    @app.command()
    def quickbooks(
        ctx: typer.Context,
        config: ConfigOption = None,
        status: Annotated[
            bool, typer.Option("--status", help="Show token health instead of connecting.")
        ] = False,
        redirect_url: Annotated[
            str | None,
            typer.Option("--redirect-url", help="The URL Intuit redirected to (no prompt)."),
        ] = None,
        code: Annotated[
            str | None, typer.Option("--code", help="The authorization code (with --realm).")
        ] = None,
        realm: Annotated[
            str | None, typer.Option("--realm", help="The company (realm) id of the code.")
        ] = None,
        state: Annotated[
            str | None,
            typer.Option("--state", help="Check the redirect URL's state against this value."),
        ] = None,
        as_json: Annotated[
            bool, typer.Option("--json", help="Print JSON instead of a table.")
        ] = False,
    ) -> None:
        """Connect QuickBooks Online (authorization-code flow) or show token health."""
        opened = open_command(ctx, config)
        if status:
            raise typer.Exit(_status(opened, realm, as_json))
        raise typer.Exit(_connect(opened, redirect_url, code, realm, state))

    return app


def _fail(message: str, code: int = NOT_CONNECTED) -> typer.Exit:
    typer.echo(f"billsync auth quickbooks: {message}", err=True)
    return typer.Exit(code)


def _section(opened: CommandContext) -> QuickBooksSettings:
    section = opened.section
    assert isinstance(section, QuickBooksSettings), type(section)
    return section


# --- connecting ----------------------------------------------------------------------


def _connect(
    opened: CommandContext,
    redirect_url: str | None,
    code: str | None,
    realm: str | None,
    state: str | None,
) -> int:
    from billsync.connectors.quickbooks.oauth import AuthGateway
    from billsync.core.protocols import ConnectorError

    qb = _section(opened)
    if not qb.redirect_uri:
        raise _fail("set quickbooks.redirect_uri (the Redirect URI of your Intuit app)")
    try:
        gateway = AuthGateway(qb)
        if code is None:
            code, realm = _code_from_operator(gateway, redirect_url, realm, state)
        realm = realm or qb.realm_id
        if not realm:
            raise _fail("give the company (realm) id with --realm")
        tokens = gateway.exchange_code(code, realm)
    except ConnectorError as exc:
        raise _fail(exc.message) from None
    store = opened.credentials(create=True)
    assert store is not None  # create=True always opens the ledger
    if not _save(store, credential_name(realm), tokens):
        raise _fail("another process kept changing the stored tokens; run the command again")
    typer.echo(f"Connected QuickBooks company {realm}; tokens stored in the ledger.")
    if tokens.refresh_expires_at:
        typer.echo(f"Refresh token valid until {tokens.refresh_expires_at:%Y-%m-%d %H:%M} UTC.")
    if qb.realm_id is None:
        typer.echo(f"Set quickbooks.realm_id: {realm} in your configuration.")
    elif qb.realm_id != realm:
        typer.echo(
            f"warning: the configuration names company {qb.realm_id}, not {realm}; "
            f"set quickbooks.realm_id: {realm} to sync this one.",
            err=True,
        )
        return WARNING
    return OK


def _save(store: CredentialStore, name: str, tokens: TokenSet) -> bool:
    """Store the new tokens over whatever is there (compare-and-swap, a few tries)."""
    for _ in range(3):
        loaded = store.load(name)
        if store.save(name, tokens.to_data(), loaded[1] if loaded else None):
            return True
    return False


def _code_from_operator(
    gateway: Any, redirect_url: str | None, realm: str | None, state: str | None
) -> tuple[str, str | None]:
    if redirect_url is None:
        state = secrets.token_urlsafe(24)
        typer.echo("Open this URL, sign in as a company admin and approve billsync:\n")
        typer.echo(gateway.authorization_url(state))
        typer.echo()
        redirect_url = typer.prompt("Paste the URL you were redirected to (or the code)").strip()
    if "://" not in redirect_url and "code=" not in redirect_url:
        if realm is None:
            realm = typer.prompt("Company (realm) id").strip()
        return redirect_url, realm
    query = parse_qs(urlparse(redirect_url).query)
    if "error" in query:
        raise _fail(f"Intuit did not authorise billsync ({query['error'][0]}); nothing stored")
    if "code" not in query:
        raise _fail("the URL has no code= parameter; paste the whole redirect URL")
    if state is not None and query.get("state", [""])[0] != state:
        raise _fail("the URL's state does not match this attempt; start again")
    return query["code"][0], query.get("realmId", [realm or ""])[0] or realm


# --- status ----------------------------------------------------------------------------


def _status(opened: CommandContext, realm: str | None, as_json: bool) -> int:
    qb = _section(opened)
    realm = realm or qb.realm_id
    if not realm:
        raise _fail("set quickbooks.realm_id (or pass --realm) to know which company to check")
    store = opened.credentials(create=False)
    loaded = store.load(credential_name(realm)) if store is not None else None
    if loaded is None:
        hint = (
            "; a bootstrap quickbooks.refresh_token is configured and the first sync run "
            "will store it"
            if qb.refresh_token
            else ""
        )
        raise _fail(
            f"QuickBooks company {realm} is not connected{hint}: "
            f"run {auth_command(opened.connection)}"
        )
    now = datetime.now(UTC)
    tokens = TokenSet.from_data(loaded[0])
    health = token_health(tokens, now)
    refused = _refused_since(opened.last_refusal(), tokens)
    report: dict[str, Any] = {
        "realm_id": realm,
        "access_token_expires_at": _when(health.access_expires_at),
        "access_token_valid": health.access_valid,
        "refresh_token_issued_at": _when(health.refresh_issued_at),
        "refresh_token_age_days": _days(health.refresh_age),
        "refresh_token_expires_at": _when(health.refresh_expires_at),
        "connected_at": _when(health.connected_at),
        "reconnect_by": _when(health.reconnect_by),
        "refused_by_run": refused,
        "warnings": list(health.warnings),
    }
    if refused is not None:
        report["warnings"] = [
            f"a sync run on {refused['at']} was refused: {refused['message']}; "
            f"reconnect: run {auth_command(opened.connection)}",
            *health.warnings,
        ]
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            if key not in ("warnings", "refused_by_run"):
                typer.echo(f"{key.replace('_', ' '):26} {'-' if value is None else value}")
        for warning in report["warnings"]:
            typer.echo(f"warning: {warning}", err=True)
    if refused is not None:
        return NOT_CONNECTED  # the stored grant is dead: nothing works until reconnected
    return OK if health.healthy else WARNING


def _refused_since(refused: Mapping[str, str] | None, tokens: TokenSet) -> dict[str, str] | None:
    """The last run's refusal of these credentials (e.g. invalid_grant), unless the
    company was connected again after it; None when no run was refused."""
    if not refused:
        return None
    at = datetime.fromisoformat(refused["at"])
    renewed = [m for m in (tokens.refresh_issued_at, tokens.connected_at) if m is not None]
    if renewed and max(renewed) > at:
        return None  # reconnected (or refreshed) since: that refusal is history
    return dict(refused)


def _when(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="minutes") if moment else None


def _days(age: timedelta | None) -> int | None:
    return age.days if age is not None else None
