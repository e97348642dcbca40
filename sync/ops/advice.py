"""A failure's vendor message translated into one sentence an ops person can act on.

Table-driven, in three layers:

1. **The fix** comes from the connector's own error table (``ConnectorSpec.error_rules``):
   every ConnectorError message carries its rule's fix verbatim, so the rule whose fix
   the stored message contains is the one that classified it (the stored code breaks
   ties). A connector that declares no table is read by the message shape every
   built-in uses (``… — fix`` or ``fix (Vendor code: detail)``); failing that,
   ``CLASS_FIX`` by error class.
2. **The object** comes from the connector's hints (``ConnectorSpec.error_hints``): per
   stored code, patterns over the vendor's own words and the failure's payload name
   what is wrong ("Ledgerly item 'SKU-9' … is inactive or deleted").
3. **What happens next** follows from the class and the item's status: billsync retries
   transient work by itself; permanent work waits for a change or an operator.

Deals rejected by billsync's own validation (code ``VALIDATION``) carry their problems
(field, reason, fix) in the payload and are rendered from those.

A failure names the *connection* it happened in (``qbo_uk``); its error table, hints
and label are its connector's, found through the connection's kind
(`billsync.sync.ops.connections.Connections`). The connectors are the installed ones
(`billsync.core.plugins.installed_specs`), each the one connection named after its kind,
unless the caller passes its own; a system no connector is installed for is named as
stored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from billsync.core.plugins import ConnectorSpec, ErrorHint
from billsync.core.protocols import ErrorClass, ErrorRule
from billsync.sync.ops.connections import Connections, from_specs, installed

VALIDATION = "VALIDATION"

Specs = Mapping[str, ConnectorSpec]

CLASS_FIX: Mapping[str, str] = {
    ErrorClass.TRANSIENT: "nothing to do unless it keeps failing; then check the vendor's "
    "status page and the network between billsync and {system}",
    ErrorClass.RATE_LIMITED: "nothing to do unless it recurs every run; then spread the load "
    "or raise {system}'s API limits",
    ErrorClass.AUTH: "check the {system} credentials in the configuration "
    "(`billsync config check`) and reconnect if they were revoked",
    ErrorClass.CONFLICT: "billsync refetches and retries; if it persists, find who keeps "
    "editing the record in {system}",
    ErrorClass.INVALID_DATA: "correct the deal in {source} or the mapping file",
    ErrorClass.NOT_FOUND: "restore the object in {system}, or resolve this failure with a note",
}


# --- layer 1: the connectors' error tables ------------------------------------------


def connector_rules(spec: ConnectorSpec | None) -> tuple[tuple[str | None, ErrorRule], ...]:
    """The error table of a connector ((stored code or None, rule) pairs), its vendor
    SDK imported on first use; empty for a connector that declares none or is not
    installed."""
    if spec is None or spec.error_rules is None:
        return ()
    return tuple(spec.error_rules())


def find_fix(spec: ConnectorSpec | None, code: str | None, message: str) -> str | None:
    """The fix of the row of ``spec``'s table that produced ``message``, or None."""
    candidates = [(c, rule) for c, rule in connector_rules(spec) if rule.fix in message]
    if not candidates:
        return None
    exact = [rule for c, rule in candidates if code is not None and c == code]
    if exact:
        return exact[0].fix
    return max((rule for _c, rule in candidates), key=lambda rule: len(rule.fix)).fix


# The two message shapes of the built-in connectors (see their error tables).
_DASH_SHAPE = re.compile(r"^(?P<said>.+) — (?P<fix>[^—]+)$", re.DOTALL)
_PAREN_SHAPE = re.compile(
    r"^(?P<fix>.+?) \((?:[A-Z][A-Za-z]+ (?P<code>[^:()]+): (?P<said>.*)|HTTP \w+|\w+)\)$",
    re.DOTALL,
)


def split_message(message: str, fix: str | None) -> tuple[str | None, str | None]:
    """(what the vendor said, the fix) from a stored message."""
    if fix and fix in message:
        rest = message.replace(fix, "", 1)
        said = re.sub(r"^[\s(—:;,.]+|[\s)—:;,.]+$", "", rest)
        inner = re.match(r"^[A-Z][A-Za-z]+ [^:()]+: (?P<said>.+)$", said)
        return (inner.group("said") if inner else said) or None, fix
    dash = _DASH_SHAPE.match(message)
    if dash:
        return dash.group("said").strip(), dash.group("fix").strip()
    paren = _PAREN_SHAPE.match(message)
    if paren:
        return (paren.group("said") or None), paren.group("fix").strip()
    return message, None


# --- layer 2: naming the object -----------------------------------------------------


def _facts(payload: Mapping[str, Any], deal_id: str | None) -> dict[str, str]:
    draft = payload.get("draft") if isinstance(payload.get("draft"), Mapping) else {}
    assert isinstance(draft, Mapping)
    customer = draft.get("customer") if isinstance(draft.get("customer"), Mapping) else {}
    assert isinstance(customer, Mapping)
    found = {
        "deal_id": deal_id,
        "doc_number": draft.get("doc_number"),
        "issue_date": draft.get("issue_date"),
        "customer": customer.get("name"),
    }
    return {key: str(value) for key, value in found.items() if value}


def _hinted(
    hints: tuple[ErrorHint, ...], code: str | None, message: str, facts: dict[str, str]
) -> tuple[str, str | None] | None:
    """(what is wrong, naming the object; an extra fix) from the first hint that fits."""
    for hint in hints:
        if hint.code != code:
            continue
        known = dict(facts)
        matches = [re.search(pattern, message) for pattern in hint.patterns]
        if not all(matches):
            continue
        for match in matches:
            assert match is not None
            known.update({k: v for k, v in match.groupdict().items() if v})
        if "entity" in known:
            known["entity_lower"] = known["entity"].lower().replace(" ", "")
        try:
            return hint.says.format_map(known), hint.also
        except KeyError:
            continue  # the failure lacks a fact this hint names: try a plainer one
    return None


# --- the sentence -------------------------------------------------------------------


@dataclass(frozen=True)
class FailureFacts:
    """What advice needs to know about one failure."""

    item_id: int
    kind: str
    system: str
    stage: str
    error_class: str | None
    code: str | None
    message: str
    status: str
    attempts: int
    deal_id: str | None
    deal_name: str | None
    payload: Mapping[str, Any]
    next_attempt_at: datetime | None
    source: str | None = None
    """The deal source's connection (where a deal is corrected); None: the default's."""


@dataclass(frozen=True)
class Advice:
    sentence: str
    """The object, what is wrong with it, the fix, and what billsync does next."""
    fix: str
    vendor_message: str | None
    retries_by_itself: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "sentence": self.sentence,
            "fix": self.fix,
            "vendor_message": self.vendor_message,
            "retries_by_itself": self.retries_by_itself,
        }


def _deal_ref(facts: FailureFacts) -> str:
    if facts.deal_id and facts.deal_name:
        return f"deal {facts.deal_id} ('{facts.deal_name}')"
    return f"deal {facts.deal_id}" if facts.deal_id else "no particular deal"


def _subject(facts: FailureFacts, known: Connections) -> str:
    deal = _deal_ref(facts)
    target = known.label(str(facts.payload.get("target") or facts.system))
    if facts.stage == "invoice":
        return f"Creating the {target} invoice for {deal}"
    if facts.stage == "writeback":  # the system is the deal source
        return f"Writing the billing status back to {known.label(facts.system)} for {deal}"
    if facts.stage == "payments":
        return f"Reading {known.label(facts.system)} payment events"
    return f"The {facts.stage} step for {deal}"


def _next(facts: FailureFacts, retries: bool) -> str:
    retry = f"`billsync failures retry {facts.item_id}`"
    if facts.status == "resolved":
        return "It is resolved (the audit trail says by whom); nothing is pending."
    if retries and facts.status in ("pending", "leased"):
        when = ""
        if facts.next_attempt_at is not None:
            when = f" (next attempt {facts.next_attempt_at:%Y-%m-%d %H:%M} UTC)"
        return f"billsync retries it by itself{when}; act only if it keeps failing."
    if facts.error_class in (ErrorClass.INVALID_DATA, ErrorClass.NOT_FOUND):
        return (
            "Once fixed, billsync retries it when the deal or the mapping changes, "
            f"or at once with {retry}."
        )
    if facts.error_class == ErrorClass.AUTH:
        return f"The next run retries it; once fixed you can also run {retry} at once."
    tries = f" after {facts.attempts} attempts" if facts.attempts > 1 else ""
    return f"billsync stopped retrying it{tries}; once the cause is fixed run {retry}."


def _validation(facts: FailureFacts) -> Advice | None:
    problems = facts.payload.get("problems")
    if not isinstance(problems, list) or not problems:
        return None
    parts, fixes = [], []
    for problem in problems:
        if not isinstance(problem, Mapping):
            continue
        parts.append(f"{problem.get('field')}: {problem.get('reason')} — {problem.get('fix')}")
        fixes.append(str(problem.get("fix")))
    if not parts:
        return None
    deal = _deal_ref(facts)
    sentence = f"{deal[:1].upper()}{deal[1:]} cannot be invoiced: {'; '.join(parts)}. "
    sentence += _next(facts, retries=False)
    return Advice(sentence, "; ".join(fixes), None, False)


_OPERATION = re.compile(r"^[A-Z][A-Za-z]+ [^:]*? failed: ")


def _vendor_words(system: str, code: str | None, said: str | None) -> str:
    """'(Ledgerly missing_price, HTTP 400: "No such price")': the code and status
    once, then the vendor's own words, if any beyond them."""
    tag = f"{system} {code}" if code else system
    words = _OPERATION.sub("", said or "").strip()
    if code and words.startswith(code):
        head = re.match(rf"^{re.escape(code)}(?: \(HTTP (?P<status>\d+)\))?:? ?", words)
        assert head is not None
        if head.group("status"):
            tag += f", HTTP {head.group('status')}"
        words = words[head.end() :]
    status = re.fullmatch(r"HTTP (\d+)", words)
    if status or (code and words.replace("_", "").lower() == code.replace("_", "").lower()):
        if status and not tag.endswith(words):
            tag = f"{system} {words}" if code and code.startswith("HTTP") else f"{tag}, {words}"
        words = ""
    return f'({tag}: "{words}")' if words else f"({tag})"


def advise(
    facts: FailureFacts, specs: Specs | None = None, connections: Connections | None = None
) -> Advice:
    """One actionable sentence for a stored failure. ``connections``: the configured
    connections, to reach a failure's connector through its connection; else
    ``specs``, the connectors to read error tables, hints and labels from (default:
    the installed ones), each the connection named after its kind."""
    if facts.code == VALIDATION:
        validated = _validation(facts)
        if validated is not None:
            return validated
    known = connections or (installed() if specs is None else from_specs(specs))
    system = facts.system
    spec = known.spec(system)
    fix = find_fix(spec, facts.code, facts.message)
    if fix is None:  # stored under another system (e.g. billsync's own): any table that fits
        found = (find_fix(other, facts.code, facts.message) for other in known.specs.values())
        fix = next((f for f in found if f), None)
    said, parsed_fix = split_message(facts.message, fix)
    error_class = facts.error_class or ErrorClass.INVALID_DATA
    fix = fix or parsed_fix or CLASS_FIX.get(error_class, CLASS_FIX[ErrorClass.INVALID_DATA])
    source_name = facts.source or known.source
    source = known.label(source_name) if source_name else "the deal source"
    fix = fix.replace("{system}", known.label(system)).replace("{source}", source)
    retries = error_class in (ErrorClass.TRANSIENT, ErrorClass.RATE_LIMITED, ErrorClass.CONFLICT)
    hints = spec.error_hints if spec is not None else ()
    hint = _hinted(hints, facts.code, facts.message, _facts(facts.payload, facts.deal_id))
    # The vendor's code is the connector's, whichever connection met it.
    vendor = _vendor_words(spec.label if spec is not None else system, facts.code, said)
    fix = fix.rstrip(". ")
    if hint is not None:
        says, extra = hint
        also = f"; {extra}" if extra else ""
        sentence = f"{_subject(facts, known)} failed: {says} {vendor}. What to do: {fix}{also}."
    else:
        sentence = f"{_subject(facts, known)} failed {vendor}. What to do: {fix}."
    sentence = f"{sentence} {_next(facts, retries)}"
    return Advice(sentence, fix, said, retries)
