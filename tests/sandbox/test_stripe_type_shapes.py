"""Every object the Stripe sandbox returns stays inside Stripe's official types.

The reference is Stripe's TypeScript definitions for the pinned API version (npm
`stripe`, extracted to tests/sandbox/data/stripe_types.json by
tests/sandbox/data/extract_stripe_types.py). The flows below drive the sandbox through
unmodified stripe-python 16 (plus the admin routes for what happens at Stripe's end);
every API response body, recursively (list data, expanded objects, event `data.object`),
and every webhook is checked:

- no field the type does not declare;
- every always-present field (declared without `?`) present;
- `null` only where the type allows it, and values of the declared kind.

Complementary to test_stripe_shapes.py (stripe-python's models, Stripe's fixtures).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
import stripe

from tests.sandbox.stripe_support import Receiver, StripeEnv, invoice_for, receiver, stripe_sandbox

TYPES_FILE = Path(__file__).with_name("data") / "stripe_types.json"
SPEC: dict[str, Any] = json.loads(TYPES_FILE.read_text())
_DECIMAL = re.compile(r"^-?\d+(\.\d+)?$")

# -- the checker --------------------------------------------------------------------


def _split(expr: str, sep: str = " | ") -> list[str]:
    """Top-level members of a union (or generic arguments), respecting `<...>`."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(expr):
        depth += {"<": 1, ">": -1}.get(char, 0)
        if depth == 0 and expr.startswith(sep, i):
            parts.append(expr[start:i])
            start = i + len(sep)
    parts.append(expr[start:])
    return [p for p in parts if p]


_KIND = {"string": str, "decimal": str, "boolean": bool, "Map": dict}


class ShapeChecker:
    """Checks JSON values against stripe_types.json; `errors` collects what deviates, as
    `Type.field: problem` (deduplicated) with one example location each."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.types: dict[str, dict[str, dict[str, Any]]] = spec["types"]
        self.objects: dict[str, str] = spec["objects"]
        self.events: dict[str, str] = spec["events"]
        self.external = set(spec["external"])
        self.errors: dict[str, str] = {}
        self.checked: set[str] = set()

    # A response is an object, a list or a search result, or a deleted stub.
    def response(self, body: Any, where: str) -> None:
        if not isinstance(body, dict):
            self._error("response", f"not a JSON object: {body!r}", where)
            return
        kind = body.get("object")
        if kind == "list":
            self.value(body, "ApiList<any>", "list", where)
        elif kind == "search_result":
            self.value(body, "ApiSearchResult<any>", "search_result", where)
        else:
            self.value(body, self._type_of(body, "response", where) or "any", "response", where)

    def _type_of(self, obj: dict[str, Any], owner: str, where: str) -> str | None:
        name = self.objects.get(str(obj.get("object")))
        if name is None:
            self._error(owner, f"unknown object type {obj.get('object')!r}", where)
            return None
        return f"Deleted{name}" if obj.get("deleted") is True else name

    def _error(self, owner: str, problem: str, where: str) -> None:
        self.errors.setdefault(f"{owner}: {problem}", where)

    def value(self, value: Any, expr: str, owner: str, where: str) -> None:
        """Check `value` (not None) against a type expression, recording errors."""
        members = _split(expr)
        problems: list[list[tuple[str, str, str]]] = []
        for member in members:
            found = self._member(value, member, owner, where)
            if found is None:  # a different kind of value: not a candidate
                continue
            if not found:
                return
            problems.append(found)
        if not problems:
            self._error(owner, f"{_show(value)} is not {expr}", where)
            return
        for args in min(problems, key=len):
            self._error(*args)

    def _member(
        self, value: Any, member: str, owner: str, where: str
    ) -> list[tuple[str, str, str]] | None:
        """None: value is not of this member's kind; else the problems (empty: fits)."""
        if member == "any":
            if isinstance(value, dict) and "object" in value and "id" in value:
                name = self._type_of(value, owner, where)
                return self._object(value, name, where) if name else []
            return []
        if member.startswith("'"):
            return [] if value == member[1:-1] else None
        if member in ("true", "false"):
            return [] if value is (member == "true") else None
        if member == "number":
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            return [] if ok else None
        if member in _KIND and member != "Map":
            if not isinstance(value, _KIND[member]):
                return None
            if member == "decimal" and not _DECIMAL.match(str(value)):
                return [(owner, f"{value!r} is not a decimal string", where)]
            return []
        if member == "void":
            return [(owner, "must be absent (void)", where)]
        generic = re.match(r"^(\w+)<(.*)>$", member)
        if generic:
            return self._generic(value, generic.group(1), generic.group(2), owner, where)
        if member in self.external:
            if isinstance(value, dict):
                return [(owner, f"expanded {member} (not in stripe_types.json)", where)]
            return None
        if member not in self.types:
            raise AssertionError(f"stripe_types.json has no type {member}")
        if not isinstance(value, dict):
            return None
        declared = self.types[member].get("object", {}).get("type", "")
        if declared.startswith("'") and value.get("object") != declared[1:-1]:
            return None
        if member.startswith("Deleted") != (value.get("deleted") is True):
            return None
        return self._object(value, member, where)

    def _generic(
        self, value: Any, name: str, arg: str, owner: str, where: str
    ) -> list[tuple[str, str, str]] | None:
        sub = ShapeChecker.__new__(ShapeChecker)
        sub.__dict__.update(self.__dict__, errors={})
        if name == "Array":
            if not isinstance(value, list):
                return None
            for i, item in enumerate(value):
                sub._not_null(item, arg, owner, f"{where}[{i}]")
        elif name == "Map":
            if not isinstance(value, dict):
                return None
            for key, item in value.items():
                sub._not_null(item, arg, owner, f"{where}.{key}")
        elif name in ("ApiList", "ApiSearchResult"):
            kind = "list" if name == "ApiList" else "search_result"
            if not isinstance(value, dict) or value.get("object") != kind:
                return None
            sub._fields(value, f"{name}<>", _LIST_FIELDS[name], where)
            for i, item in enumerate(value.get("data") or []):
                sub._not_null(item, arg, f"{owner}.data[]", f"{where}.data[{i}]")
        else:
            raise AssertionError(f"unknown generic {name}")
        return [(k.split(": ", 1)[0], k.split(": ", 1)[1], w) for k, w in sub.errors.items()]

    def _not_null(self, value: Any, expr: str, owner: str, where: str) -> None:
        if value is None:
            self._error(owner, "null item", where)
        else:
            self.value(value, expr, owner, where)

    def _object(self, obj: dict[str, Any], name: str, where: str) -> list[tuple[str, str, str]]:
        sub = ShapeChecker.__new__(ShapeChecker)
        sub.__dict__.update(self.__dict__, errors={})
        sub._fields(obj, name, self.types[name], where)
        if name == "Event":
            sub._event(obj, where)
        self.checked.add(name)
        self.checked |= sub.checked
        return [(k.split(": ", 1)[0], k.split(": ", 1)[1], w) for k, w in sub.errors.items()]

    def _fields(
        self, obj: dict[str, Any], name: str, fields: dict[str, dict[str, Any]], where: str
    ) -> None:
        for key in sorted(set(obj) - set(fields)):
            self._error(f"{name}.{key}", "unknown field", where)
        for key, spec in fields.items():
            owner = f"{name}.{key}"
            if key not in obj:
                if not spec["optional"]:
                    self._error(owner, "missing (always present)", where)
                continue
            value = obj[key]
            if value is None:
                if not spec["nullable"]:
                    self._error(owner, "null (not nullable)", where)
            elif spec["type"].startswith("Event.Data."):
                continue  # checked by _event, by event type
            else:
                self.value(value, spec["type"], owner, f"{where}.{key}")

    def _event(self, event: dict[str, Any], where: str) -> None:
        kind = self.events.get(str(event.get("type")))
        if kind is None:
            self._error("Event.type", f"not a Stripe event type: {event.get('type')!r}", where)
            return
        data = event.get("data") or {}
        if isinstance(data.get("object"), dict):
            self.value(data["object"], kind, "Event.data.object", f"{where}.data.object")
        previous = data.get("previous_attributes")
        if isinstance(previous, dict):  # Partial<T>: any fields of T, of T's kinds
            fields = self.types.get(kind, {})
            for key in sorted(set(previous) - set(fields)):
                self._error(f"{kind}.{key}", "unknown field in previous_attributes", where)
            for key in set(previous) & set(fields):
                if previous[key] is not None:
                    self.value(previous[key], fields[key]["type"], f"{kind}.{key}", where)


_LIST_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "ApiList": {
        "object": {"optional": False, "nullable": False, "type": "'list'"},
        "data": {"optional": False, "nullable": False, "type": "Array<any>"},
        "has_more": {"optional": False, "nullable": False, "type": "boolean"},
        "url": {"optional": False, "nullable": False, "type": "string"},
    },
    "ApiSearchResult": {
        "object": {"optional": False, "nullable": False, "type": "'search_result'"},
        "data": {"optional": False, "nullable": False, "type": "Array<any>"},
        "has_more": {"optional": False, "nullable": False, "type": "boolean"},
        "url": {"optional": False, "nullable": False, "type": "string"},
        "next_page": {"optional": False, "nullable": True, "type": "string"},
        "total_count": {"optional": True, "nullable": False, "type": "number"},
    },
}


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) < 60 else text[:57] + "..."


# -- recording what the sandbox answers ---------------------------------------------


@dataclass
class Recorded:
    """Response bodies per flow: (`METHOD /path?query`, JSON body)."""

    flows: dict[str, list[tuple[str, Any]]] = field(default_factory=dict)
    current: str = ""

    def hook(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        request = response.request
        url = urlsplit(str(request.url))
        if not url.path.startswith("/v1/") or response.status_code >= 400:
            return
        label = f"{request.method} {url.path}" + (f"?{url.query}" if url.query else "")
        self.flows.setdefault(self.current, []).append((label, response.json()))


@dataclass
class Flows:
    env: StripeEnv
    hooks: Receiver
    recorded: Recorded
    client: stripe.StripeClient
    session: requests.Session

    def raw(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.env.key}"}
        response = self.session.request(
            method, f"{self.env.url}{path}", headers=headers, timeout=10, **kwargs
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flows]:
    recorded = Recorded()
    session = requests.Session()
    session.hooks["response"].append(recorded.hook)
    with (
        receiver() as hooks,
        stripe_sandbox(tmp_path_factory.mktemp("typeshapes"), webhook_url=hooks.url) as env,
    ):
        client = env.client(http_client=stripe.RequestsClient(session=session))
        yield Flows(env, hooks, recorded, client, session)


def _check(bodies: list[tuple[str, Any]]) -> ShapeChecker:
    checker = ShapeChecker(SPEC)
    for label, body in bodies:
        checker.response(body, f"{label} $")
    return checker


CHECKED: set[str] = set()  # every type some flow's responses held, for the last test


def _assert_clean(checker: ShapeChecker) -> None:
    CHECKED.update(checker.checked)
    report = [f"{problem}   (e.g. {where})" for problem, where in sorted(checker.errors.items())]
    assert not report, f"{len(report)} deviations from Stripe's types:\n" + "\n".join(report)


def _run(flows: Flows, name: str) -> ShapeChecker:
    bodies = flows.recorded.flows.get(name, [])
    assert bodies, f"flow {name} recorded no responses"
    return _check(bodies)


# -- the flows ------------------------------------------------------------------------


def test_types_file_is_for_the_pinned_api_version() -> None:
    source = SPEC["source"]
    assert source["api_version"] == stripe.api_version == "2026-10-28.endive"
    assert source["npm_package"] == "stripe" and source["npm_version"]
    assert {"invoice", "charge", "credit_note", "event", "invoice_payment"} <= set(SPEC["objects"])


def test_customers_catalog_and_invoice_items(flows: Flows) -> None:
    flows.recorded.current = "catalog"
    c, env = flows.client, flows.env
    customer = c.v1.customers.create(
        params={
            "email": "shape@example.com",
            "name": "Shape Co",
            "phone": "+15555550100",
            "address": {"line1": "1 Main St", "city": "Springfield", "country": "US"},
            "metadata": {"sf_account_id": "001SHAPE"},
            "invoice_settings": {"custom_fields": [{"name": "PO", "value": "42"}]},
        }
    )
    c.v1.customers.retrieve(customer.id)
    c.v1.customers.update(customer.id, params={"description": "updated"})
    c.v1.customers.list(params={"limit": 3})
    env.advance(10)  # past the search delay
    c.v1.customers.search(params={"query": "metadata['sf_account_id']:'001SHAPE'"})
    product = c.v1.products.create(params={"name": "Widget", "metadata": {"k": "v"}})
    c.v1.products.retrieve(product.id)
    c.v1.products.update(product.id, params={"description": "A widget"})
    c.v1.products.list(params={"limit": 3})
    price = c.v1.prices.create(
        params={"currency": "usd", "unit_amount": 1_250, "product": product.id}
    )
    c.v1.prices.create(
        params={
            "currency": "usd",
            "unit_amount_decimal": Decimal("10.5"),
            "product_data": {"name": "D"},
        }
    )
    c.v1.prices.retrieve(price.id)
    c.v1.prices.list(params={"limit": 3})
    c.v1.prices.retrieve(price.id, params={"expand": ["product"]})
    percent = c.v1.coupons.create(params={"percent_off": 10, "duration": "once"})
    c.v1.coupons.create(params={"amount_off": 100, "currency": "usd", "duration": "once"})
    c.v1.coupons.retrieve(percent.id)
    c.v1.coupons.list()
    item = c.v1.invoice_items.create(
        params={
            "customer": customer.id,
            "pricing": {"price": price.id},
            "quantity": 2,
            "discounts": [{"coupon": percent.id}],
        }
    )
    c.v1.invoice_items.retrieve(item.id)
    c.v1.invoice_items.retrieve(item.id, params={"expand": ["customer", "discounts"]})
    c.v1.invoice_items.update(item.id, params={"description": "two widgets"})
    c.v1.invoice_items.list(params={"customer": customer.id})
    c.v1.invoice_items.delete(item.id)
    gone = c.v1.customers.create(params={"email": "gone@example.com"})
    c.v1.customers.delete(gone.id)
    c.v1.customers.retrieve(gone.id)
    c.v1.coupons.delete(percent.id)
    _assert_clean(_run(flows, "catalog"))


def test_invoice_lifecycle(flows: Flows) -> None:
    flows.recorded.current = "invoices"
    c, env = flows.client, flows.env
    customer = c.v1.customers.create(params={"email": "life@example.com"})
    price = c.v1.prices.create(
        params={"currency": "usd", "unit_amount": 700, "product_data": {"name": "Hours"}}
    )
    coupon = c.v1.coupons.create(params={"percent_off": 5, "duration": "once"})
    invoice = c.v1.invoices.create(
        params={
            "customer": customer.id,
            "collection_method": "send_invoice",
            "days_until_due": 30,
            "metadata": {"deal": "006X"},
            "custom_fields": [{"name": "PO", "value": "7"}],
            "description": "memo",
            "footer": "thanks",
        }
    )
    c.v1.invoices.add_lines(
        invoice.id,
        params={
            "lines": [
                {"pricing": {"price": price.id}, "quantity": 3},
                {"amount": 1_000, "description": "Flat", "discounts": [{"coupon": coupon.id}]},
                {
                    "price_data": {
                        "currency": "usd",
                        "unit_amount": 250,
                        "product": str(price.product),
                    },
                    "quantity": 1,
                },
            ]
        },
    )
    c.v1.invoices.retrieve(invoice.id)
    c.v1.invoices.update(invoice.id, params={"metadata": {"extra": "1"}})
    c.v1.invoices.line_items.list(invoice.id)
    c.v1.invoices.retrieve(invoice.id, params={"expand": ["customer", "lines.data.discounts"]})
    c.v1.invoices.finalize_invoice(invoice.id)
    c.v1.invoices.send_invoice(invoice.id)
    c.v1.invoices.pay(invoice.id)
    c.v1.invoices.list(params={"customer": customer.id})
    env.advance(10)
    c.v1.invoices.search(params={"query": f"customer:'{customer.id}'"})
    c.v1.invoice_payments.list(params={"invoice": invoice.id})
    payment = c.v1.invoice_payments.list(params={"invoice": invoice.id}).data[0]
    c.v1.invoice_payments.retrieve(payment.id)
    c.v1.invoice_payments.retrieve(
        payment.id, params={"expand": ["invoice", "payment.payment_intent"]}
    )
    intent = c.v1.payment_intents.retrieve(str(payment.payment.payment_intent))
    c.v1.payment_intents.list(params={"limit": 3})
    c.v1.payment_intents.retrieve(intent.id, params={"expand": ["latest_charge", "customer"]})
    charge = c.v1.charges.retrieve(str(intent.latest_charge))
    c.v1.charges.list(params={"limit": 3})
    c.v1.charges.retrieve(charge.id, params={"expand": ["payment_intent", "customer"]})
    # void, mark uncollectible, delete a draft, pay out of band
    other = invoice_for(env, c, amount=3_000)
    c.v1.invoices.void_invoice(other.id)
    third = invoice_for(env, c, amount=4_000)
    c.v1.invoices.mark_uncollectible(third.id)
    fourth = invoice_for(env, c, amount=1_500)
    c.v1.invoices.pay(fourth.id, params={"paid_out_of_band": True})
    draft = c.v1.invoices.create(params={"customer": customer.id})
    c.v1.invoices.delete(draft.id)
    _assert_clean(_run(flows, "invoices"))


def test_partial_payments_refunds_disputes_and_failures(flows: Flows) -> None:
    flows.recorded.current = "payments"
    c, env = flows.client, flows.env
    invoice = invoice_for(env, c, amount=10_000)
    env.admin("POST", f"stripe/invoices/{invoice.id}/fail")
    env.admin("POST", f"stripe/invoices/{invoice.id}/pay", {"amount": 4_000})
    c.v1.invoices.retrieve(invoice.id)
    env.admin("POST", f"stripe/invoices/{invoice.id}/pay")
    c.v1.invoices.retrieve(invoice.id)
    c.v1.invoice_payments.list(params={"invoice": invoice.id})
    charges = c.v1.charges.list(params={"limit": 10})
    paid = next(ch for ch in charges.data if ch.status == "succeeded")
    refund = c.v1.refunds.create(
        params={"charge": paid.id, "amount": 500, "reason": "requested_by_customer"}
    )
    c.v1.refunds.create(params={"payment_intent": str(paid.payment_intent), "amount": 300})
    env.admin("POST", f"stripe/invoices/{invoice.id}/refund", {"amount": 200})
    c.v1.refunds.retrieve(refund.id)
    c.v1.refunds.retrieve(refund.id, params={"expand": ["charge", "payment_intent"]})
    c.v1.refunds.list(params={"charge": paid.id})
    c.v1.charges.retrieve(paid.id)
    env.admin("POST", f"stripe/invoices/{invoice.id}/dispute", {"amount": 1_000})
    disputes = c.v1.disputes.list()
    c.v1.disputes.retrieve(disputes.data[0].id)
    c.v1.disputes.retrieve(disputes.data[0].id, params={"expand": ["charge"]})
    env.admin("POST", f"stripe/disputes/{disputes.data[0].id}/close", {"status": "lost"})
    c.v1.disputes.retrieve(disputes.data[0].id)
    c.v1.charges.retrieve(paid.id)
    overpaid = invoice_for(env, c, amount=1_000)
    env.admin("POST", f"stripe/invoices/{overpaid.id}/pay", {"amount": 1_500})
    c.v1.invoices.retrieve(overpaid.id)
    _assert_clean(_run(flows, "payments"))


def test_credit_notes(flows: Flows) -> None:
    flows.recorded.current = "credit_notes"
    c, env = flows.client, flows.env
    open_invoice = invoice_for(env, c, amount=8_000)
    pre = c.v1.credit_notes.create(
        params={"invoice": open_invoice.id, "amount": 1_000, "memo": "goodwill"}
    )
    c.v1.credit_notes.retrieve(pre.id)
    c.v1.credit_notes.void_credit_note(pre.id)
    paid_invoice = invoice_for(env, c, amount=6_000)
    c.v1.invoices.pay(paid_invoice.id)
    line_id = c.v1.invoices.line_items.list(paid_invoice.id).data[0].id
    c.v1.credit_notes.create(
        params={
            "invoice": paid_invoice.id,
            "lines": [{"type": "invoice_line_item", "invoice_line_item": line_id, "amount": 500}],
            "refund_amount": 500,
            "reason": "order_change",
        }
    )
    c.v1.credit_notes.create(
        params={
            "invoice": paid_invoice.id,
            "lines": [
                {"type": "custom_line_item", "description": "x", "unit_amount": 300, "quantity": 1}
            ],
            "credit_amount": 300,
        }
    )
    c.v1.credit_notes.create(
        params={"invoice": paid_invoice.id, "amount": 200, "out_of_band_amount": 200}
    )
    c.v1.credit_notes.list(params={"invoice": paid_invoice.id})
    c.v1.credit_notes.retrieve(pre.id, params={"expand": ["invoice", "customer"]})
    c.v1.invoices.retrieve(paid_invoice.id)
    c.v1.customers.retrieve(str(paid_invoice.customer))
    _assert_clean(_run(flows, "credit_notes"))


def test_includable_fields_only_when_expanded(flows: Flows) -> None:
    """`invoice.payments` and `charge.refunds` are optional in the types: absent unless
    `expand[]` names them, then a full list of the right objects."""
    flows.recorded.current = "includable"
    c, env = flows.client, flows.env
    invoice = invoice_for(env, c, amount=2_000)
    c.v1.invoices.pay(invoice.id)
    plain = flows.raw("GET", f"/v1/invoices/{invoice.id}")
    expanded = flows.raw("GET", f"/v1/invoices/{invoice.id}", params={"expand[]": "payments"})
    intent_id = expanded["payments"]["data"][0]["payment"]["payment_intent"]
    c.v1.refunds.create(params={"payment_intent": intent_id, "amount": 100})
    charge_id = c.v1.payment_intents.retrieve(intent_id).latest_charge
    charge = flows.raw("GET", f"/v1/charges/{charge_id}")
    with_refunds = flows.raw("GET", f"/v1/charges/{charge_id}", params={"expand[]": "refunds"})
    flows.raw("GET", "/v1/invoices", params={"expand[]": "data.payments", "limit": 2})
    assert "payments" not in plain, "invoice.payments is includable: only when expanded"
    assert "refunds" not in charge, "charge.refunds is includable: only when expanded"
    assert expanded["payments"]["data"][0]["object"] == "invoice_payment"
    assert with_refunds["refunds"]["data"][0]["object"] == "refund"
    _assert_clean(_run(flows, "includable"))


def test_events_and_webhooks(flows: Flows) -> None:
    """Runs last: every event the flows above caused, listed, retrieved and delivered."""
    flows.recorded.current = "events"
    events: list[dict[str, Any]] = []
    page = flows.raw("GET", "/v1/events", params={"limit": 100})
    events += page["data"]
    while page["has_more"]:
        page = flows.raw(
            "GET", "/v1/events", params={"limit": 100, "starting_after": events[-1]["id"]}
        )
        events += page["data"]
    flows.raw("GET", f"/v1/events/{events[0]['id']}")
    flows.client.v1.events.list(params={"type": "invoice.*", "limit": 5})
    kinds = {event["type"] for event in events}
    assert {
        "customer.created", "invoice.finalized", "invoice.paid", "invoice_payment.paid",
        "charge.refunded", "charge.dispute.created", "credit_note.created", "invoice.voided",
    } <= kinds  # fmt: skip
    for event in events:  # includable fields are never in events (api-facts §5)
        assert "payments" not in event["data"]["object"] or event["type"].startswith("charge.")
        assert "refunds" not in event["data"]["object"] or event["type"].startswith("credit_note")
    checker = _run(flows, "events")
    flows.hooks.wait_for("charge.dispute.closed")
    delivered = [json.loads(body) for _, body in list(flows.hooks.received)]
    for event in delivered:
        checker.response(event, f"webhook {event['type']}")
    assert {event["type"] for event in delivered} >= {"invoice.paid", "credit_note.voided"}
    _assert_clean(checker)


def test_the_checker_catches_each_kind_of_deviation(flows: Flows) -> None:
    """The check is not vacuous: a valid customer and event from the flows, spoiled."""
    customer = next(b for _, b in flows.recorded.flows["catalog"] if b["object"] == "customer")
    event = next(b for _, b in flows.recorded.flows["events"] if b["object"] == "event")
    assert not _check([("customer", customer), ("event", event)]).errors
    spoiled = {
        **{k: v for k, v in customer.items() if k != "livemode"},
        "paid": True,  # unknown
        "balance": None,  # not nullable
        "business_name": None,  # optional, not nullable: absent instead
        "address": {"city": "X"},  # nested object lacking fields
        "invoice_settings": {**customer["invoice_settings"], "footer": 7},  # wrong kind
        "test_clock": {"id": "clock_1", "object": "test_helpers.test_clock"},  # not served
    }
    bad_event = {**event, "type": "invoiceitem.updated"}
    nested = {**event, "type": "customer.updated", "data": {"object": spoiled}}
    errors = _check([("c", spoiled), ("e", bad_event), ("n", nested)]).errors
    assert set(errors) >= {
        "Customer.paid: unknown field",
        "Customer.livemode: missing (always present)",
        "Customer.balance: null (not nullable)",
        "Customer.business_name: null (not nullable)",
        "Address.line1: missing (always present)",
        "Customer.InvoiceSettings.footer: 7 is not string",
        "Customer.test_clock: expanded TestHelpers.TestClock (not in stripe_types.json)",
        "Event.type: not a Stripe event type: 'invoiceitem.updated'",
    }
    assert errors["Customer.paid: unknown field"] == "c $"


def test_every_object_type_the_sandbox_serves_was_checked() -> None:
    """Runs last: the flows reached every top-level type they should (and nested ones)."""
    served = {
        "Customer", "DeletedCustomer", "Product", "Price", "Coupon", "DeletedCoupon",
        "InvoiceItem", "DeletedInvoiceItem", "InvoiceLineItem", "Invoice",
        "DeletedInvoice", "InvoicePayment", "PaymentIntent", "Charge", "Refund", "Dispute",
        "CreditNote", "CreditNoteLineItem", "Event", "Address",
    }  # fmt: skip
    # Not yet: Discount. The flows expand `discounts` (arrays of ids), which the sandbox
    # leaves as ids so far (expand-semantics work in progress); once expanded, checked.
    assert served <= CHECKED, sorted(served - CHECKED)
    print(f"{len(CHECKED)} types checked: {sorted(CHECKED)}")
