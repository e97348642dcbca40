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
"""

from __future__ import annotations

import json
import os
import secrets
import socket
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import parse_qs, urlparse

import typer

from billsync.sync.cli.options import ConfigOption, JsonOption, settings_for

app = typer.Typer(help="Connect and inspect vendor credentials.", no_args_is_help=True)

OK, WARNING, NOT_CONNECTED = 0, 1, 2


def _fail(message: str, code: int = NOT_CONNECTED) -> typer.Exit:
    typer.echo(f"billsync auth quickbooks: {message}", err=True)
    return typer.Exit(code)


@app.command("quickbooks")
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
    as_json: JsonOption = False,
) -> None:
    """Connect QuickBooks Online (authorization-code flow) or show token health."""
    settings = settings_for(ctx, config)
    if status:
        raise typer.Exit(_status(settings, realm, as_json))
    raise typer.Exit(_connect(settings, redirect_url, code, realm, state))


# --- connecting ----------------------------------------------------------------------


def _connect(
    settings: Any, redirect_url: str | None, code: str | None, realm: str | None, state: str | None
) -> int:
    from billsync.connectors.quickbooks.auth import AuthGateway, credential_name
    from billsync.core.protocols import ConnectorError

    qb = settings.quickbooks
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
    store = _store(settings, migrate=True)
    name = credential_name(realm)
    for _ in range(3):
        loaded = store.load(name)
        if store.save(name, tokens.to_data(), loaded[1] if loaded else None):
            break
    else:
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


def _status(settings: Any, realm: str | None, as_json: bool) -> int:
    from billsync.connectors.quickbooks.auth import TokenSet, credential_name, token_health

    realm = realm or settings.quickbooks.realm_id
    if not realm:
        raise _fail("set quickbooks.realm_id (or pass --realm) to know which company to check")
    store = _store(settings, migrate=False)
    loaded = store.load(credential_name(realm)) if store is not None else None
    if loaded is None:
        hint = (
            "; a bootstrap quickbooks.refresh_token is configured and the first sync run "
            "will store it"
            if settings.quickbooks.refresh_token
            else ""
        )
        raise _fail(
            f"QuickBooks company {realm} is not connected{hint}: run `billsync auth quickbooks`"
        )
    now = datetime.now(UTC)
    tokens = TokenSet.from_data(loaded[0])
    health = token_health(tokens, now)
    refused = _refused_since(store, tokens)
    report = {
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
            "reconnect: run `billsync auth quickbooks`",
            *health.warnings,
        ]
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        for key, value in report.items():
            if key not in ("warnings", "refused_by_run"):
                typer.echo(f"{key.replace('_', ' '):26} {'-' if value is None else value}")
        for warning in report["warnings"]:  # type: ignore[union-attr]
            typer.echo(f"warning: {warning}", err=True)
    if refused is not None:
        return NOT_CONNECTED  # the stored grant is dead: nothing works until reconnected
    return OK if health.healthy else WARNING


def _refused_since(store: Any, tokens: Any) -> dict[str, str] | None:
    """The last run's refusal of these credentials (e.g. invalid_grant), unless the
    company was connected again after it; None when no run was refused."""
    from billsync.sync.engine.cycle import refused_cursor

    raw = store.ledger.get_cursor(refused_cursor("quickbooks"))
    if not raw:
        return None
    refused: dict[str, str] = json.loads(raw)
    at = datetime.fromisoformat(refused["at"])
    renewed = [m for m in (tokens.refresh_issued_at, tokens.connected_at) if m is not None]
    if renewed and max(renewed) > at:
        return None  # reconnected (or refreshed) since: that refusal is history
    return refused


def _when(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat(timespec="minutes") if moment else None


def _days(age: timedelta | None) -> int | None:
    return age.days if age is not None else None


def _store(settings: Any, *, migrate: bool) -> Any:
    """The ledger's credential store; None (status only) when the ledger has no schema."""
    from billsync.sync.ledger import Ledger, create_ledger_engine, is_current, upgrade_to_head
    from billsync.sync.ledger.credential_store import LedgerCredentialStore

    engine = create_ledger_engine(settings.ledger.url)
    if migrate:
        upgrade_to_head(engine)
    elif not is_current(engine):
        return None
    holder = f"billsync-auth@{socket.gethostname()}:{os.getpid()}"
    return LedgerCredentialStore(Ledger(engine), holder)
