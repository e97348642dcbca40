"""Every row of every connector's error table, recorded as a real failure and shown by
`billsync failures show`, reads as an actionable sentence: it names the deal and the
row's fix, and says what happens next — never the bare vendor message.

Each error is produced by the connector's own classifier (the path production takes),
then recorded by the engine's FailureRecorder.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import requests
import stripe
from quickbooks.exceptions import QuickbooksException
from simple_salesforce.exceptions import SalesforceError

from billsync.connectors.quickbooks import errors as qbo
from billsync.connectors.salesforce import client as sf
from billsync.connectors.salesforce.auth import TokenEndpointError
from billsync.connectors.stripe import client as st
from billsync.core.logs import SecretScrubber
from billsync.core.plugins import installed_secret_patterns
from billsync.core.protocols import ConnectorError, ErrorRule
from billsync.mappings.rejections import Rejection
from billsync.sync.engine.failures import INVOICE, WRITEBACK, FailureRecorder, RetryPolicy
from billsync.sync.ledger import Ledger
from billsync.sync.ops.advice import FailureFacts, advise
from billsync.sync.ops.failures import show_failure

DEAL, NAME = "006000000000000ABC", "Acme renewal 2026"


def _requests_error(kind: type[Exception]) -> Exception:
    if kind is requests.exceptions.JSONDecodeError:
        return kind("Expecting value", "<html>not json</html>", 0)
    return kind("https://example.invalid/?q=secret")


def quickbooks_cases() -> list[tuple[str, ErrorRule, ConnectorError]]:
    cases = [
        (f"FAULT {code}", rule, qbo.fault_error(code, f"Vendor says {code}", "Some detail"))
        for code, rule in qbo.FAULT_CODES.items()
    ]
    unreadable = QuickbooksException("Error reading json response", 10000)
    cases += [
        (f"HTTP {status}", rule, qbo.exception_error(unreadable, status, False, 60))
        for status, rule in qbo.HTTP_STATUS.items()
    ]
    cases += [(f"OAUTH {name}", rule, qbo.oauth_error(400, name)) for name, rule in
              qbo.OAUTH_ERRORS.items()]  # fmt: skip
    cases += [
        (f"EXC {kind.__name__}", rule, qbo.transport_error(_requests_error(kind)))
        for kind, rule in qbo.EXCEPTIONS
    ]
    return cases


def _stripe_exception(kind: type[stripe.StripeError]) -> stripe.StripeError:
    if kind is stripe.CardError:
        return stripe.CardError("Your card was declined.", None, "card_declined")
    if issubclass(kind, stripe.InvalidRequestError):
        return kind("Invalid value for days_until_due.", "days_until_due", http_status=400)
    return kind("Something went wrong.", http_status=None)


def stripe_cases() -> list[tuple[str, ErrorRule, ConnectorError]]:
    scrub = SecretScrubber(patterns=installed_secret_patterns())

    def classify(exc: stripe.StripeError) -> ConnectorError:
        return st.classify(exc, operation="invoice create", scrub=scrub)

    cases = [
        (f"EXC {kind.__name__}", rule, classify(_stripe_exception(kind)))
        for kind, rule in st.EXCEPTIONS
    ]
    by_code: dict[str, ErrorRule] = st._BY_CODE  # the finer rows of the same table
    cases += [
        (f"CODE {code}", rule, classify(stripe.InvalidRequestError(
            "No such price: 'price_x'", "price", code=code, http_status=400)))
        for code, rule in by_code.items()
    ]  # fmt: skip
    by_status: dict[int, ErrorRule] = st._BY_STATUS
    cases += [
        (f"STATUS {status}", rule, classify(stripe.APIError("Conflict", http_status=status)
                                             if status == 409 else
                                             stripe.InvalidRequestError("Gone", None,
                                                                        http_status=status)))
        for status, rule in by_status.items()
    ]  # fmt: skip
    return cases


def salesforce_cases() -> list[tuple[str, ErrorRule, ConnectorError]]:
    def rest(code: str, status: int = 400) -> ConnectorError:
        content = [{"errorCode": code, "message": f"Salesforce says {code.lower()}",
                    "fields": ["Billing_Status__c"]}]  # fmt: skip
        error = sf.classify(SalesforceError("url", status, "Opportunity", content),
                            operation="write-back")  # fmt: skip
        assert error is not None
        return error

    def oauth(code: str) -> ConnectorError:
        exc = TokenEndpointError(status=400, error=code, description="authentication failure")
        error = sf.classify(exc, operation="write-back")
        assert error is not None
        return error

    cases = [
        (f"CODE {code}", rule, oauth(code) if code.islower() else rest(code))
        for code, rule in sf.ERROR_CODES.items()
    ]
    cases += [(f"HTTP {status}", rule, rest("SOMETHING_NEW", status)) for status, rule in
              sf.HTTP_STATUS.items()]  # fmt: skip
    for kind, rule in sf.EXCEPTIONS:
        error = sf.classify(_requests_error(kind), operation="write-back")
        assert error is not None
        cases.append((f"EXC {kind.__name__}", rule, error))
    return cases


CASES = (
    [("quickbooks", *case) for case in quickbooks_cases()]
    + [("stripe", *case) for case in stripe_cases()]
    + [("salesforce", *case) for case in salesforce_cases()]
)


def recorder(ledger: Ledger) -> FailureRecorder:
    return FailureRecorder(
        ledger, RetryPolicy(30, 3600, 5), mapping_hash="m1", run_id="run-1", holder="h",
        now=lambda: datetime(2026, 3, 31, 12, tzinfo=UTC),
    )  # fmt: skip


def invoice_payload(deal_id: str, target: str) -> dict[str, Any]:
    return {
        "deal_id": deal_id, "target": target, "stage": "invoice", "deal_name": NAME,
        "draft": {"deal_id": deal_id, "target": target, "currency": "USD", "total": "1200.00",
                  "customer": {"account_id": "001A", "name": "Acme Analytics"},
                  "lines": [{"item_ref": "17", "amount": "1200.00"}], "doc_number": deal_id,
                  "issue_date": "2026-03-31", "idempotency_key": f"key-{deal_id}"},
    }  # fmt: skip


def record(ledger: Ledger, n: int, system: str, error: ConnectorError) -> tuple[int, str]:
    deal_id = f"006{n:015d}"
    if system == "salesforce":
        payload = {"deal_id": deal_id, "target": "quickbooks", "stage": "writeback",
                   "deal_name": NAME}  # fmt: skip
        recorder(ledger).failed(WRITEBACK, deal_id, payload, error, None)
        item = ledger.find_work(WRITEBACK, deal_id)
    else:
        recorder(ledger).failed(INVOICE, deal_id, invoice_payload(deal_id, system), error, "r1")
        item = ledger.find_work(INVOICE, deal_id)
    assert item is not None and item.last_error_message == error.message
    return item.id, deal_id


def test_the_tables_are_all_covered() -> None:
    rows = {(system, id(rule)) for system, _label, rule, _error in CASES}
    tables: list[tuple[str, list[ErrorRule]]] = [
        ("quickbooks", [*qbo.FAULT_CODES.values(), *qbo.HTTP_STATUS.values(),
                        *qbo.OAUTH_ERRORS.values(), *(r for _k, r in qbo.EXCEPTIONS)]),
        ("stripe", [*(r for _k, r in st.EXCEPTIONS), *st._BY_CODE.values(),
                    *st._BY_STATUS.values()]),
        ("salesforce", [*sf.ERROR_CODES.values(), *sf.HTTP_STATUS.values(),
                        *(r for _k, r in sf.EXCEPTIONS)]),
    ]  # fmt: skip
    for system, rules in tables:
        assert {(system, id(rule)) for rule in rules} <= rows
    assert len(CASES) > 100


def test_failures_show_gives_an_actionable_sentence_for_every_row(
    sqlite_ledger: Ledger, sqlite_cli: Any
) -> None:
    recorded = [(system, label, rule, error, *record(sqlite_ledger, n, system, error))
                for n, (system, label, rule, error) in enumerate(CASES)]  # fmt: skip
    for system, label, rule, error, item_id, deal_id in recorded:
        result = sqlite_cli("failures", "show", str(item_id))
        assert result.exit_code == 0, (label, result.output)
        text = " ".join(result.stdout.split())
        sentence = text.split("What to do: ", 1)[1].split(" What was attempted:")[0]
        fix = " ".join(rule.fix.rstrip(". ").split())
        assert fix in sentence, (system, label, sentence)
        assert f"deal {deal_id} ('{NAME}')" in sentence, (system, label, sentence)
        assert deal_id not in error.message  # the vendor's words alone never name the deal
        # What happens next is always said: retried by itself, or how to retry.
        assert re.search(r"retries it by itself|billsync failures retry \d+", sentence), (
            system, label, sentence)  # fmt: skip


def test_quickbooks_inactive_item_names_the_item_and_the_mapping(sqlite_ledger: Ledger) -> None:
    error = qbo.fault_error(
        610,
        "Object Not Found",
        "Invalid Reference Id : Item assigned to this transaction has been deleted. Before "
        "you can modify this transaction, you must restore SKU-9 (deleted).",
    )
    item_id, deal_id = record(sqlite_ledger, 1, "quickbooks", error)
    advice = show_failure(sqlite_ledger, item_id).advice
    assert advice.sentence.startswith(
        f"Creating the QuickBooks invoice for deal {deal_id} ('{NAME}') failed: QuickBooks "
        "item 'SKU-9' is inactive or deleted"
    )
    assert qbo.FAULT_CODES[610].fix in advice.sentence
    assert "products.quickbooks.map" in advice.sentence
    assert not advice.retries_by_itself
    assert f"billsync failures retry {item_id}" in advice.sentence


def test_quickbooks_duplicate_name_names_the_customer(sqlite_ledger: Ledger) -> None:
    error = qbo.fault_error(6240, "Duplicate Name Exists Error", "The name supplied exists")
    item_id, _deal = record(sqlite_ledger, 2, "quickbooks", error)
    sentence = show_failure(sqlite_ledger, item_id).advice.sentence
    assert "the name 'Acme Analytics' is already used by another QuickBooks customer" in sentence
    assert "duplicate_name_strategy" in sentence


def test_salesforce_missing_field_names_the_field(sqlite_ledger: Ledger) -> None:
    fix = sf.ERROR_CODES["INVALID_FIELD"].fix
    error = ConnectorError(
        system="salesforce",
        error_class="invalid_data",
        code="INVALID_FIELD",
        message="Salesforce write-back failed: INVALID_FIELD (HTTP 400): No such column "
        f"'Billing_Balance__c' on sobject of type Opportunity — {fix}",
    )
    item_id, _deal = record(sqlite_ledger, 3, "salesforce", error)
    sentence = show_failure(sqlite_ledger, item_id).advice.sentence
    assert "Salesforce has no field Billing_Balance__c on the opportunity" in sentence
    assert sf.ERROR_CODES["INVALID_FIELD"].fix in sentence


def test_a_transient_failure_says_it_is_retried_by_itself(sqlite_ledger: Ledger) -> None:
    error = qbo.fault_error(10000, "Internal error", "")
    item_id, _deal = record(sqlite_ledger, 4, "quickbooks", error)
    advice = show_failure(sqlite_ledger, item_id).advice
    assert advice.retries_by_itself
    assert "billsync retries it by itself (next attempt 2026-03-31 12:" in advice.sentence


def test_a_rejected_deal_lists_every_problem_with_its_fix(sqlite_ledger: Ledger) -> None:
    problems = (
        Rejection(
            DEAL,
            "Opportunity.Billing_Platform__c",
            "'Xero' is not a known target",
            "set it to QuickBooks or Stripe",
        ),
        Rejection(
            DEAL,
            "OpportunityLineItem[1].Quantity",
            "quantity -3 is negative",
            "correct the quantity",
        ),
    )
    recorder(sqlite_ledger).rejected(DEAL, None, problems, "r1")
    item = sqlite_ledger.find_work(INVOICE, DEAL)
    assert item is not None
    advice = show_failure(sqlite_ledger, item.id).advice
    assert advice.sentence.startswith(f"Deal {DEAL} cannot be invoiced: ")
    for problem in problems:
        assert f"{problem.field}: {problem.reason} — {problem.fix}" in advice.sentence
    assert "retries it when the deal or the mapping changes" in advice.sentence


def test_an_unknown_connector_falls_back_to_the_message_shape_then_the_class() -> None:
    def facts(message: str, error_class: str = "invalid_data") -> FailureFacts:
        return FailureFacts(7, "invoice", "xero", "invoice", error_class, "E42", message,
                            "dead", 1, DEAL, None, {"target": "xero"}, None)  # fmt: skip

    shaped = advise(facts("Xero create failed: E42: bad tax — pick a tax rate Xero knows"))
    assert "What to do: pick a tax rate Xero knows." in shaped.sentence
    assert shaped.vendor_message == "Xero create failed: E42: bad tax"
    bare = advise(facts("it broke", "auth"))
    assert "check the xero credentials" in bare.sentence
    assert '(xero E42: "it broke")' in bare.sentence


def test_a_plug_in_declares_its_own_table_hints_and_label() -> None:
    """Nothing in advice names the built-ins: a third-party spec brings the same."""
    from billsync.core.plugins import ConnectorParts, ConnectorSpec, ErrorHint
    from billsync.core.protocols import ErrorClass
    from billsync.core.settings import ConnectorSection

    fix = "choose a tax rate that exists in Xero"
    loaded: list[str] = []

    def rules() -> list[tuple[str | None, ErrorRule]]:
        loaded.append("xero")
        return [("E42", ErrorRule(ErrorClass.INVALID_DATA, fix))]

    xero = ConnectorSpec(
        "xero", "Xero", ConnectorSection, lambda section, context: ConnectorParts(),
        error_rules=rules,
        error_hints=(ErrorHint("E42", "tax rate '{rate}' on the {customer} invoice is unknown",
                               (r"rate (?P<rate>\w+)",)),),
    )  # fmt: skip
    facts = FailureFacts(7, "invoice", "xero", "invoice", "invalid_data", "E42",
                         f"Xero create failed: E42: rate GST9 — {fix}", "dead", 1, DEAL, NAME,
                         invoice_payload(DEAL, "xero"), None)  # fmt: skip
    advice = advise(facts, {"xero": xero})
    assert advice.sentence.startswith(
        f"Creating the Xero invoice for deal {DEAL} ('{NAME}') failed: tax rate 'GST9' on the "
        'Acme Analytics invoice is unknown (Xero E42: "rate GST9"). '
        f"What to do: {fix}. "
    ), advice.sentence
    assert loaded == ["xero"]  # the table is read when advice is asked for
    # Without its spec the same failure is read by the message's shape.
    bare = advise(facts, {})
    assert f"What to do: {fix}." in bare.sentence and "(xero E42" in bare.sentence
