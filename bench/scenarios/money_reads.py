"""Scenario 8: what the money model costs a run (issue 15).

Feeds only hint that an invoice's money changed; the payments stage then re-reads each
changed invoice from its target (`PaymentFeed.read_invoice_money`) and believes only
that read. This measures the extra reads:

1. billsync invoices a fresh dataset (every deal once), then a run moves the watermark
   past its own write-back, as in scenario 4;
2. out of band, as customers and a billing team would, a share of each target's
   invoices is paid in full, in part, refunded, disputed or credited (the sandbox's
   admin routes, and Stripe's API for credit notes);
3. one `billsync run` is counted by the sandbox, endpoint by endpoint: the *reads* are
   the calls that read invoice money (Stripe: invoice retrieve, credit notes, charges,
   disputes; QuickBooks: the ``Id IN`` queries for invoices and their payments), the
   *hints* are the feed's own calls (Stripe: the events list and the look-ups that tie
   a charge, refund or dispute event to its invoice; QuickBooks ``GET cdc``), and the
   rest is the Salesforce pull and write-back;
4. the runs after it must be idle again: the next routine run (it re-reads the deals
   just written back), then after the watermark moved past them, the steady-state idle
   run, whose calls are compared with scenario 4's target (≤ 3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import requests

from bench.harness import Context, Section, Table, per, verdict
from bench.runner import RunResult, checked
from bench.scenarios.backlog import CALLS_TARGET, change_one_deal_later
from bench.scenarios.measure import SYSTEMS, billsync_pass, dataset
from bench.verify import invoices_by_deal
from bench.world import World, world

READS = {
    "stripe": (
        "GET /v1/invoices/{id}",
        "GET /v1/credit_notes",
        "GET /v1/charges",
        "GET /v1/disputes",
    ),
    "quickbooks": ("POST query",),
}
HINTS = {
    # Besides the events list, a charge, refund or dispute event names no invoice: it is
    # linked through ``GET /v1/invoice_payments?payment[payment_intent]=`` (once per
    # intent) and a webhook charge's refunds are listed (``GET /v1/refunds``). The reader
    # lists those two too, but only past 10 payments or refunds on one invoice, which
    # this dataset never has: here they are the feed's.
    "stripe": ("GET /v1/events", "GET /v1/invoice_payments", "GET /v1/refunds"),
    "quickbooks": ("GET cdc",),
}
TARGETS = ("stripe", "quickbooks")

State = dict[str, Any]
Change = Callable[["Lifecycle", str, State], None]


class Lifecycle:
    """The targets as a billing team and its customers reach them: the sandbox's admin
    routes (payments, refunds, disputes, credit memos) and Stripe's API (credit notes)."""

    def __init__(self, w: World) -> None:
        self.handle = w.handle
        info = w.handle.info
        self.stripe_url = str(info["stripe_url"]).rstrip("/")
        self.stripe_key = str(info["stripe_api_key"])
        self.ca_bundle = info.get("ca_bundle") or True

    def admin(self, path: str, body: Mapping[str, Any] | None = None) -> Any:
        return self.handle.admin("POST", path, dict(body or {}))

    def stripe_api(self, path: str, data: Mapping[str, Any]) -> None:
        response = requests.post(
            f"{self.stripe_url}/v1/{path}",
            data=dict(data),
            auth=(self.stripe_key, ""),
            verify=self.ca_bundle,
            timeout=30,
        )
        response.raise_for_status()


def _stripe_invoice(state: State, invoice_id: str) -> State:
    return next(i for i in state["stripe"]["invoices"] if i["id"] == invoice_id)


def _qbo_balance(state: State, invoice_id: str) -> Decimal:
    invoice = next(i for i in state["quickbooks"]["Invoice"] if str(i["Id"]) == invoice_id)
    return Decimal(str(invoice["Balance"]))


def s_pay(life: Lifecycle, invoice_id: str, state: State) -> None:
    life.admin(f"stripe/invoices/{invoice_id}/pay")


def s_pay_part(life: Lifecycle, invoice_id: str, state: State) -> None:
    remaining = int(_stripe_invoice(state, invoice_id)["amount_remaining"])
    life.admin(f"stripe/invoices/{invoice_id}/pay", {"amount": max(remaining // 2, 1)})


def s_refund_part(life: Lifecycle, invoice_id: str, state: State) -> None:
    remaining = int(_stripe_invoice(state, invoice_id)["amount_remaining"])
    life.admin(f"stripe/invoices/{invoice_id}/pay")
    life.admin(f"stripe/invoices/{invoice_id}/refund", {"amount": max(remaining // 3, 1)})


def s_dispute(life: Lifecycle, invoice_id: str, state: State) -> None:
    life.admin(f"stripe/invoices/{invoice_id}/pay")
    life.admin(f"stripe/invoices/{invoice_id}/dispute", {})


def s_credit_note(life: Lifecycle, invoice_id: str, state: State) -> None:
    remaining = int(_stripe_invoice(state, invoice_id)["amount_remaining"])
    life.stripe_api("credit_notes", {"invoice": invoice_id, "amount": max(remaining // 4, 1)})


def q_pay(life: Lifecycle, invoice_id: str, state: State) -> None:
    balance = _qbo_balance(state, invoice_id)
    life.admin("quickbooks/payments", {"invoice_id": invoice_id, "amount": str(balance)})


def q_pay_part(life: Lifecycle, invoice_id: str, state: State) -> None:
    half = (_qbo_balance(state, invoice_id) / 2).quantize(Decimal("0.01"))
    life.admin("quickbooks/payments", {"invoice_id": invoice_id, "amount": str(half)})


def q_edit_payment(life: Lifecycle, invoice_id: str, state: State) -> None:
    """Paid in full, then the payment corrected down to a third (a payment edit)."""
    balance = _qbo_balance(state, invoice_id)
    paid = life.admin("quickbooks/payments", {"invoice_id": invoice_id, "amount": str(balance)})
    third = (balance / 3).quantize(Decimal("0.01"))
    life.admin(f"quickbooks/payments/{paid['Payment']['Id']}/update", {"amount": str(third)})


def q_credit_memo(life: Lifecycle, invoice_id: str, state: State) -> None:
    quarter = (_qbo_balance(state, invoice_id) / 4).quantize(Decimal("0.01"))
    life.admin("quickbooks/credit_memos", {"invoice_id": invoice_id, "amount": str(quarter)})


CHANGES: dict[str, tuple[Change, ...]] = {
    "stripe": (s_pay, s_pay_part, s_refund_part, s_dispute, s_credit_note),
    "quickbooks": (q_pay, q_pay_part, q_edit_payment, q_credit_memo),
}


@dataclass
class Counted:
    label: str
    run: RunResult
    calls: dict[str, Any]

    def endpoint(self, system: str, endpoint: str) -> int:
        return int(self.calls["systems"].get(system, {}).get(endpoint, 0))

    def of(self, system: str, endpoints: tuple[str, ...]) -> int:
        return sum(self.endpoint(system, e) for e in endpoints)

    def total(self, system: str | None = None) -> int:
        systems = (system,) if system else SYSTEMS
        return sum(int(self.calls["totals"].get(s, 0)) for s in systems)


@dataclass
class MoneyReads:
    deals: int
    invoices: dict[str, int]
    changed: dict[str, int]
    changes: dict[str, dict[str, int]]
    money_run: Counted
    after: list[Counted]
    verdict_text: str
    ok: bool


def _counted(w: World, label: str) -> Counted:
    w.reset_calls()
    result = checked(w.run(), f"money reads: {label}")
    return Counted(label, result, w.calls())


def _change(w: World, per_target: int) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
    """Change the money of the first ``per_target`` invoices of each target (in deal
    order), cycling through that target's kinds of change."""
    state = w.handle.state()
    found, _ = invoices_by_deal(state)
    life = Lifecycle(w)
    changed = {t: 0 for t in TARGETS}
    kinds: dict[str, dict[str, int]] = {t: {} for t in TARGETS}
    for deal_id in sorted(found):
        (invoice,) = found[deal_id]
        target = invoice.target
        if changed[target] >= per_target:
            continue
        change = CHANGES[target][changed[target] % len(CHANGES[target])]
        change(life, invoice.invoice_id, state)
        changed[target] += 1
        kinds[target][change.__name__] = kinds[target].get(change.__name__, 0) + 1
    return changed, kinds


def money_reads(ctx: Context) -> MoneyReads:
    def build() -> MoneyReads:
        with world(ctx.workdir, "money-reads", dataset(ctx.sizes.money_deals)) as w:
            built = billsync_pass(w, "billsync")
            # Past the bulk write-back, so the measured run pulls nothing but the deals
            # whose money it writes back.
            change_one_deal_later(w)
            checked(w.run(), "money reads: syncing the one changed deal")
            changed, kinds = _change(w, ctx.sizes.money_changed)
            money_run = _counted(w, "after the money changes")
            after = [_counted(w, "the next routine run (re-reads the deals written back)")]
            change_one_deal_later(w)
            checked(w.run(), "money reads: syncing the one changed deal")
            after.append(_counted(w, "steady state (watermark past the write-back)"))
            verdict = w.verify()
            return MoneyReads(
                deals=built.deals,
                invoices=built.invoices,
                changed=changed,
                changes=kinds,
                money_run=money_run,
                after=after,
                verdict_text=verdict.describe(),
                ok=verdict.ok and built.verdict.ok,
            )

    return ctx.once("money-reads", build)


def run(ctx: Context) -> Section:
    m = money_reads(ctx)
    summary = m.money_run.run.summary
    applied = int(summary.get("payments_applied", 0))
    changes = "; ".join(
        f"{target}: " + ", ".join(f"{name} {count}" for name, count in m.changes[target].items())
        for target in TARGETS
    )
    section = Section(
        8,
        "Money reads per changed invoice",
        conditions=(
            f"{m.deals:,} deals invoiced by billsync ({m.invoices['quickbooks']:,} QuickBooks, "
            f"{m.invoices['stripe']:,} Stripe), watermark past the write-back; then "
            f"{m.changed['stripe']:,} Stripe and {m.changed['quickbooks']:,} QuickBooks "
            f"invoices changed out of band ({changes}) and one `billsync run` counted by "
            "the sandbox. Limits off, no latency."
        ),
    )
    table = Table(
        [
            "target",
            "invoices changed",
            "read calls",
            "reads per changed invoice",
            "reads by endpoint",
            "hint calls (feed)",
            "all calls of the target",
            "all calls per changed invoice",
        ]
    )
    for target in TARGETS:
        reads = m.money_run.of(target, READS[target])
        endpoints = ", ".join(
            f"{e} {m.money_run.endpoint(target, e)}"
            for e in READS[target]
            if m.money_run.endpoint(target, e)
        )
        table.add(
            target,
            m.changed[target],
            reads,
            round(per(reads, m.changed[target]), 3),
            endpoints or "none",
            m.money_run.of(target, HINTS[target]),
            m.money_run.total(target),
            round(per(m.money_run.total(target), m.changed[target]), 3),
        )
    changed_total = sum(m.changed.values())
    salesforce = m.money_run.calls["systems"].get("salesforce", {})
    table.add(
        "salesforce (pull + write-back)",
        changed_total,
        "",
        "",
        ", ".join(f"{e} {n}" for e, n in salesforce.items()),
        "",
        m.money_run.total("salesforce"),
        round(per(m.money_run.total("salesforce"), changed_total), 3),
    )
    section.tables.append(table)
    idle = Table(
        ["run", "API calls", "by endpoint", "target calls", "calls vs target", "wall s"],
        title="The runs after it",
    )
    for counted in [m.money_run, *m.after]:
        endpoints = ", ".join(
            f"{system} {endpoint} {count}"
            for system, found in counted.calls["systems"].items()
            for endpoint, count in found.items()
        )
        steady = counted is m.after[-1]
        idle.add(
            counted.label,
            counted.total(),
            endpoints,
            f"≤ {CALLS_TARGET}" if steady else "",
            verdict(counted.total(), CALLS_TARGET) if steady else "",
            round(counted.run.wall_s, 2),
        )
    section.tables.append(idle)
    section.notes.append(
        "Reads = the calls `read_invoice_money` makes. Stripe has no batch retrieve: an open "
        "invoice costs 2 (invoice, credit notes), a paid one 3 (+ its charges with refunds "
        "expanded), a disputed one 4 (+ disputes). QuickBooks reads 100 invoices per "
        "chunk in two `Id IN` queries (the invoices, then the payments they link)."
    )
    reread = m.after[0].endpoint("quickbooks", "POST query")
    if reread:
        section.notes.append(
            f"The next routine run reads QuickBooks' changes again (CDC is asked from the "
            "cursor minus `quickbooks.cdc_overlap_s`, so a change committed late is not "
            f"missed) and re-reads those invoices ({reread} queries); nothing changes."
        )
    section.notes.append(
        f"The money run applied {applied} invoice money changes "
        f"(`payments_applied`) for {changed_total} invoices changed."
    )
    if applied != changed_total:
        section.correct = False
        section.problems.append(
            f"{changed_total} invoices changed in the targets, the run recorded {applied}"
        )
    if not m.ok:
        section.correct = False
        section.problems.append(m.verdict_text)
    else:
        section.notes.append(f"billsync correct: {m.verdict_text}.")
    writes = [
        c.label
        for c in m.after
        if any(int(c.run.summary.get(k, 0)) for k in ("invoices_created", "payments_applied"))
    ]
    if writes:
        section.correct = False
        section.problems.append(f"runs after the money run changed something: {', '.join(writes)}")
    return section
