"""`billsync customers list|link|unlink`: the account → target customer links.

billsync remembers which target customer each source account invoices to, so a
known customer costs no API call. When a customer is deleted or merged in the target
out of band, invoices of that account fail with advice naming these commands: unlink
(the next attempt finds or creates the customer again) or link to the right one, then
`billsync failures retry`. Every change is audited with who made it and the note.

Each link says how it was made (``method``): ``created`` (billsync created the
customer), ``matched`` (an existing customer adopted under the identity rule, with the
fields that agreed as ``evidence``), ``operator`` (this command, with the note), or
``unknown`` (before links recorded it). A deal whose account matched an existing
customer ambiguously waits as needs-attention naming the `link` command to run; `link`
queues that account's waiting deals again, so the next run invoices on the customer.
Linking a customer that is already another account's is allowed (on purpose) and said.

Exit codes: 0 done; 2 usage error (unknown target, no such link, empty note).
"""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from billsync.config.settings import Settings
from billsync.sync.cli.options import ConfigOption, JsonOption, settings_for, target_connections
from billsync.sync.cli.status_cmd import open_ledger
from billsync.sync.ledger import Ledger
from billsync.sync.ledger.customers import customer_subject
from billsync.sync.ledger.ops_reads import FailureView
from billsync.sync.ops.failures import default_actor
from billsync.sync.ops.render import dumps, iso

EXIT_OK, EXIT_USAGE = 0, 2

app = typer.Typer(help="See and change which target customer each account invoices to.")

TargetArg = Annotated[
    str, typer.Argument(help="The target connection (e.g. qbo_uk).", show_default=False)
]
AccountArg = Annotated[
    str, typer.Argument(help="The account id in the deal source.", show_default=False)
]
NoteOption = Annotated[
    str, typer.Option("--note", help="Why (kept in the audit trail).", show_default=False)
]
ActorOption = Annotated[
    str | None,
    typer.Option("--actor", help="Who to name in the audit trail (default cli:<login>)."),
]


def _usage(message: str) -> typer.Exit:
    typer.echo(f"billsync customers: {message}", err=True)
    return typer.Exit(EXIT_USAGE)


def _check_target(target: str, settings: Settings, ledger: Ledger) -> None:
    # Customer links are per connection; any configured target connection may hold
    # them, and so may one the ledger served that is no longer configured.
    known = target_connections(settings, ledger.pinned_connections())
    if target not in known:
        raise _usage(f"unknown target '{target}': use one of {', '.join(known)}")


def _check_note(note: str) -> None:
    if not note.strip():
        raise _usage("--note must say why the link changes")


@app.command("list")
def list_links(
    ctx: typer.Context,
    target: Annotated[str | None, typer.Option("--target", help="Only this target.")] = None,
    account: Annotated[str | None, typer.Option("--account", help="Only this account.")] = None,
    config: ConfigOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the links (target, account, customer id, name, how it was made and the
    evidence, last change)."""
    settings = settings_for(ctx, config, logs_to_stderr=True)
    with open_ledger(settings) as ledger:
        if target is not None:
            _check_target(target, settings, ledger)
        links = ledger.customer_links(target, account)
    rows = [
        {
            "target": link.target,
            "account_id": link.account_id,
            "customer_id": link.external_id,
            "name": link.name,
            "method": link.method or "unknown",
            "evidence": link.evidence,
            "updated_at": iso(link.updated_at),
        }
        for link in links
    ]
    console = Console(soft_wrap=True)
    if as_json:
        console.out(dumps(rows), highlight=False)
        return
    shown = [
        {**row, "evidence": _evidence(link.evidence)} for row, link in zip(rows, links, strict=True)
    ]
    if not console.is_terminal:
        for row in shown:
            console.out(" ".join(f"{k}={v or '-'}" for k, v in row.items()), highlight=False)
        return
    table = Table(title=f"Customer links: {len(rows)}")
    for column in ("target", "account", "customer", "name", "how", "evidence", "changed"):
        table.add_column(column)
    for row in shown:
        table.add_row(*(str(value or "") for value in row.values()))
    console.print(table)


def _evidence(evidence: dict[str, object] | None) -> str:
    """``email:ap@x.example,postal_code:62701`` (one token, for the plain output)."""
    if not evidence:
        return ""
    return ",".join(
        f"{key}:{str(value).replace(' ', '_')}" for key, value in sorted(evidence.items())
    )


def requeue_waiting(ledger: Ledger, target: str, account: str, actor: str, note: str) -> list[int]:
    """Retry the account's deals that wait on an ambiguous customer match in TARGET
    (audited as the operator's retry); returns the work item ids."""
    retried = []
    for item in ledger.failures(FailureView.ALL, target=target, error_class="invalid_data"):
        draft = item.payload.get("draft") if isinstance(item.payload, dict) else None
        customer = draft.get("customer") if isinstance(draft, dict) else None
        if (
            item.last_error_code == "CUSTOMER_AMBIGUOUS"
            and isinstance(customer, dict)
            and customer.get("account_id") == account
            and ledger.retry_work(item.id, actor, note=f"customer linked: {note}")
        ):
            retried.append(item.id)
    return retried


@app.command("unlink")
def unlink(
    ctx: typer.Context,
    target: TargetArg,
    account: AccountArg,
    note: NoteOption = "",
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:
    """Forget the account's customer in TARGET: the next invoice of the account finds or
    creates its customer again. Audited."""
    _check_note(note)
    settings = settings_for(ctx, config)
    who = actor or default_actor()
    with open_ledger(settings) as ledger:
        _check_target(target, settings, ledger)
        before = ledger.customer_link(target, account)
        if before is None or not ledger.unlink_customer(target, account, actor=who, note=note):
            raise _usage(
                f"account {account} has no {target} customer link; see billsync customers list"
            )
    typer.echo(
        f"unlinked account {account} from {target} customer {before} as {who} "
        f"(audit subject {customer_subject(target, account)}); retry its failures with "
        "`billsync failures retry ID…` or wait for the next run"
    )


@app.command("link")
def link(
    ctx: typer.Context,
    target: TargetArg,
    account: AccountArg,
    customer_id: Annotated[
        str,
        typer.Argument(
            help="The customer id as the target shows it.",
            show_default=False,
        ),
    ],
    note: NoteOption = "",
    actor: ActorOption = None,
    config: ConfigOption = None,
) -> None:
    """Invoice the account to this existing TARGET customer from now on. Audited.
    billsync does not call the target here: a wrong id fails the next invoice, saying so."""
    _check_note(note)
    if not customer_id.strip():
        raise _usage("give the target's customer id")
    settings = settings_for(ctx, config)
    who = actor or default_actor()
    customer_id = customer_id.strip()
    with open_ledger(settings) as ledger:
        _check_target(target, settings, ledger)
        before = ledger.customer_link(target, account)
        ledger.link_customer(target, account, customer_id, actor=who, note=note)
        others = sorted(
            set(ledger.customer_owners(target, [customer_id]).get(customer_id, ())) - {account}
        )
        retried = requeue_waiting(ledger, target, account, who, note)
    was = f" (was {before})" if before else ""
    typer.echo(f"linked account {account} to {target} customer {customer_id}{was} as {who}")
    if others:
        typer.echo(
            f"note: {target} customer {customer_id} is now linked to {len(others) + 1} "
            f"accounts ({', '.join([account, *others])}); billsync status lists it"
        )
    if retried:
        typer.echo(
            f"queued {len(retried)} waiting deal(s) of the account again "
            f"(work items {', '.join(map(str, retried))}): the next run invoices them"
        )
