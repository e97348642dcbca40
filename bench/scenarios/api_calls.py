"""Scenario 1: API calls per invoiced deal, billsync against the per-record reference.

Half the deals bill in QuickBooks and half in Stripe, 1-8 lines each, one new customer
per three deals; limits off and no latency (call counts do not depend on either, and
no 429 inflates them). Counted by the sandbox itself over every run each pipeline
needed, including the run that found nothing left. Per system the denominator is what
that system serves: Salesforce per deal (pull + write-back), QuickBooks per QuickBooks
invoice, Stripe per Stripe invoice (customers, items and prices included).
"""

from __future__ import annotations

from bench.harness import Context, Section, Table, per, ratio, verdict
from bench.scenarios.measure import Pass, mixed_billsync, mixed_reference, stripe_emails_billsync

# (system, denominator, target per unit) — issue 10.
TARGETS = (
    ("salesforce", "deal", 0.01),
    ("quickbooks", "QuickBooks invoice", 0.1),
    ("stripe", "Stripe invoice", 3.5),
)
OVERALL_RATIO_TARGET = 10


def _units(p: Pass, system: str) -> int:
    return p.deals if system == "salesforce" else p.invoices[system]


def run(ctx: Context) -> Section:
    ours = mixed_billsync(ctx)
    ref = mixed_reference(ctx)
    section = Section(
        1,
        "API calls per invoiced deal",
        conditions=(
            f"{ours.deals:,} deals ({ours.invoices['quickbooks']:,} QuickBooks, "
            f"{ours.invoices['stripe']:,} Stripe), 1-8 lines, one new customer per 3 deals; "
            "sandbox limits off, no latency. Calls counted by the sandbox over all runs "
            f"until one created nothing (billsync: {len(ours.runs)} runs, reference: "
            f"{len(ref.runs)} runs)."
        ),
    )
    table = Table(
        [
            "system",
            "per",
            "billsync calls",
            "billsync per unit",
            "billsync per unit, first run only",
            "reference calls",
            "reference per unit",
            "ratio",
            "target",
            "billsync vs target",
        ]
    )
    for system, unit, target in TARGETS:
        mine, theirs = ours.calls[system], ref.calls[system]
        mine_per = per(mine, _units(ours, system))
        table.add(
            system,
            unit,
            mine,
            round(mine_per, 4),
            round(per(ours.first_run_calls[system], _units(ours, system)), 4),
            theirs,
            round(per(theirs, _units(ref, system)), 3),
            ratio(theirs, mine),
            f"≤ {target}",
            verdict(mine_per, target),
        )
    total, ref_total = ours.total_calls(), ref.total_calls()
    overall = ref_total / total if total else 0.0
    table.add(
        "all",
        "deal",
        total,
        round(per(total, ours.deals), 3),
        round(per(sum(ours.first_run_calls.values()), ours.deals), 3),
        ref_total,
        round(per(ref_total, ref.deals), 3),
        ratio(ref_total, total),
        f"≥ {OVERALL_RATIO_TARGET}× fewer",
        verdict(overall, OVERALL_RATIO_TARGET, at_most=False),
    )
    section.tables.append(table)
    section.notes.append(
        "billsync per unit counts every run until one created nothing; 'first run only' "
        "is the run that did the work. The later run re-reads the deals the first "
        "one wrote back (their SystemModstamp moved) and writes nothing."
    )
    emails = stripe_emails_billsync(ctx)
    stripe_per = per(emails.calls["stripe"], emails.invoices["stripe"])
    table.add(
        "stripe, delivery stripe_emails",
        "Stripe invoice",
        emails.calls["stripe"],
        round(stripe_per, 4),
        round(per(emails.first_run_calls["stripe"], emails.invoices["stripe"]), 4),
        "",
        "",
        ratio(per(ref.calls["stripe"], _units(ref, "stripe")), stripe_per),
        "≤ 3.5",
        verdict(stripe_per, 3.5),
    )
    section.notes.append(
        "The default `stripe.delivery: send_call` spends a `/send` call per send_invoice "
        "invoice; `stripe_emails` (own run over the Stripe half of the same dataset) "
        "finalizes with auto_advance and lets Stripe email the invoice per the account's "
        "'Email finalized invoices' setting: one call fewer, the row above."
    )
    section.tables.append(_breakdown(ours))
    _check(section, ours)
    _check(section, ref)
    _check(section, emails)
    return section


def _breakdown(p: Pass) -> Table:
    table = Table(
        ["system", "endpoint", "billsync calls", "per unit"], title="Where billsync's calls go"
    )
    for system, _, _ in TARGETS:
        for endpoint, count in sorted(p.endpoints.get(system, {}).items(), key=lambda kv: -kv[1]):
            table.add(system, endpoint, count, round(per(count, _units(p, system)), 4))
    return table


def _check(section: Section, p: Pass) -> None:
    if not p.verdict.ok:
        section.correct = False
        section.problems.append(f"{p.label}: {p.verdict.describe()}")
    else:
        section.notes.append(f"{p.label} correct: {p.verdict.describe()}.")
    if p.verdict.stray_drafts:
        section.notes.append(f"{p.label}: {p.verdict.stray_drafts} Stripe drafts left behind.")
