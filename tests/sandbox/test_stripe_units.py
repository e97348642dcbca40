"""Unit tests of the Stripe sandbox's parsers and renderers (no server)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from billsync.sandbox.core import Clock, SandboxContext
from billsync.sandbox.stripe.errors import StripeError, mask_key
from billsync.sandbox.stripe.form import FormError, parse_form
from billsync.sandbox.stripe.listing import page
from billsync.sandbox.stripe.money import check_amount, check_currency, line_amount, percent_of
from billsync.sandbox.stripe.params import Params, in_range, merge_metadata
from billsync.sandbox.stripe.search import SearchIndex, page_token, parse_query, read_page_token
from billsync.sandbox.stripe.system import StripeSandbox
from billsync.sandbox.stripe.wire import dumps


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email=a%40b.c&metadata[k]=v", {"email": "a@b.c", "metadata": {"k": "v"}}),
        (
            "lines[0][pricing][price]=price_1&lines[1][amount]=5",
            {"lines": {"0": {"pricing": {"price": "price_1"}}, "1": {"amount": "5"}}},
        ),
        ("expand[]=customer&expand[]=lines", {"expand": ["customer", "lines"]}),
        ("expand[0]=customer", {"expand": {"0": "customer"}}),
        ("created[gte]=10&created[lt]=20", {"created": {"gte": "10", "lt": "20"}}),
        ("metadata=", {"metadata": ""}),
        ("a=1&a=2", {"a": "2"}),
        ("", {}),
    ],
)
def test_parse_form(text: str, expected: dict[str, Any]) -> None:
    assert parse_form(text) == expected


@pytest.mark.parametrize(
    "text", ["a=1&a[b]=2", "a[b]=1&a=2", "a[b=1", "[x]=1", "a[][b]=1", "a[]x=1", "a=%00"]
)
def test_parse_form_rejects(text: str) -> None:
    with pytest.raises(FormError):
        parse_form(text)


def test_params_arrays_are_decided_by_schema() -> None:
    params = Params(
        parse_form("lines[1][amount]=2&lines[0][amount]=1&metadata[0]=zero&types[0]=a&types[1]=b")
    )
    assert [item.int("amount") for item in params.items("lines") or []] == [1, 2]
    assert (params.items("lines") or [])[1].name("amount") == "lines[1][amount]"
    assert params.metadata() == {"0": "zero"}
    assert params.strings("types") == ["a", "b"]


def test_params_validation_messages() -> None:
    params = Params(
        {"limit": "x", "flag": "yes", "qty": "1.1234567890123", "n": "-3", "extra": "1"}
    )
    with pytest.raises(StripeError, match="Invalid integer: x") as caught:
        params.int("limit")
    assert caught.value.code == "parameter_invalid_integer" and not caught.value.saved
    with pytest.raises(StripeError, match="Invalid boolean"):
        params.bool("flag", False)
    with pytest.raises(StripeError, match="12 decimal places"):
        params.decimal("qty")
    with pytest.raises(StripeError, match="greater than or equal to 0"):
        params.int("n", minimum=0)
    with pytest.raises(StripeError, match="Received unknown parameter: extra"):
        params.allow(("limit", "flag", "qty", "n"))
    with pytest.raises(StripeError, match="Missing required param: customer"):
        params.str("customer", required=True)
    assert Params({"n": 7, "b": True}).int("n") == 7  # seed files carry JSON types


def test_metadata_rules() -> None:
    with pytest.raises(StripeError, match="40 characters"):
        Params({"metadata": {"k" * 41: "v"}}).metadata()
    with pytest.raises(StripeError, match="500 characters"):
        Params({"metadata": {"k": "v" * 501}}).metadata()
    assert merge_metadata({"a": "1", "b": "2"}, {"a": "", "c": "3"}) == {"b": "2", "c": "3"}
    assert merge_metadata({"a": "1"}, {}) == {}
    assert merge_metadata({"a": "1"}, None) == {"a": "1"}


def test_ranges() -> None:
    bounds = Params({"created": {"gte": "10", "lt": "20"}}).range("created")
    assert [in_range(v, bounds) for v in (9, 10, 19, 20)] == [False, True, True, False]
    assert Params({"created": "5"}).range("created") == {"gte": 5, "lte": 5}


def test_money_rules() -> None:
    assert line_amount(Decimal("12.5"), Decimal(3)) == 38  # 37.5 -> 38, half up [?]
    assert line_amount(Decimal("0.333333333333"), Decimal(3)) == 1
    assert percent_of(999, Decimal("10")) == 100
    assert check_amount("kwd", 12_340, "amount") == 12_340
    with pytest.raises(StripeError, match="divisible by 10"):
        check_amount("kwd", 12_345, "amount")
    assert check_amount("jpy", 1_500, "amount") == 1_500
    assert check_currency("jpy", "currency") == "jpy"
    for bad in ("JPY", "jp", "xxx", "¥¥¥"):
        with pytest.raises(StripeError, match="Invalid currency"):
            check_currency(bad, "currency")


def test_listing_cursors() -> None:
    ids = [f"cus_{i}" for i in range(10)]
    assert page(ids, Params({"limit": "3"}), "customer") == (ids[:3], True)
    assert page(ids, Params({"limit": "3", "starting_after": "cus_8"}), "customer") == (
        ["cus_9"],
        False,
    )
    assert page(ids, Params({"limit": "3", "ending_before": "cus_5"}), "customer") == (
        ids[2:5],
        True,
    )
    assert page(ids, Params({"limit": "3", "ending_before": "cus_2"}), "customer") == (
        ids[:2],
        False,
    )
    odd = page(ids, Params({"limit": "2"}), "customer", lambda i: int(i[4:]) % 2 == 1)
    assert odd == (["cus_1", "cus_3"], True)
    with pytest.raises(StripeError, match="No such customer: 'cus_x'"):
        page(ids, Params({"starting_after": "cus_x"}), "customer")
    with pytest.raises(StripeError, match="only specify one"):
        page(ids, Params({"starting_after": "cus_1", "ending_before": "cus_5"}), "customer")


FIELDS = {"email": "string", "created": "number", "name": "string"}


@pytest.mark.parametrize(
    ("query", "count", "join"),
    [
        ("email:'a@b.c'", 1, "AND"),
        ("metadata['sf_account_id']:'001' AND created>100", 2, "AND"),
        ('name~"acme" OR -email:null', 2, "OR"),
        ("email:'x' name:'y'", 2, "AND"),
    ],
)
def test_search_query_parses(query: str, count: int, join: str) -> None:
    clauses, combined = parse_query(query, FIELDS, "customers")
    assert (len(clauses), combined) == (count, join)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("colour:'red'", "unsupported search field"),
        ("email:'a' AND name:'b' OR created>1", "cannot combine AND and OR"),
        ("email:unquoted", "syntax error|must be quoted"),
        ("name~'ab'", "at least 3"),
        ("email>'a'", "only applies to numeric"),
        ("email:'a' AND", "expected a clause"),
    ],
)
def test_search_query_errors(query: str, message: str) -> None:
    with pytest.raises(StripeError, match=message):
        parse_query(query, FIELDS, "customers")


def test_search_index_lags_and_keeps_the_previous_version() -> None:
    index = SearchIndex("customers", FIELDS)
    index.record("cus_1", {"email": "old@x.io", "metadata": {}}, visible_at=10)
    index.record("cus_1", {"email": "new@x.io", "metadata": {}}, visible_at=20)
    assert index.search("email:'old@x.io'", now=5) == []
    assert index.search("email:'OLD@x.io'", now=15) == ["cus_1"]
    assert index.search("email:'new@x.io'", now=15) == []
    assert index.search("email:'new@x.io'", now=25) == ["cus_1"]
    index.record("cus_1", None, visible_at=30)
    assert index.search("email:'new@x.io'", now=31) == []
    assert read_page_token(page_token(20)) == 20
    with pytest.raises(StripeError, match="Invalid page token"):
        read_page_token("garbage")


def test_dumps_renders_decimals_exactly() -> None:
    assert (
        dumps({"percent_off": Decimal("25.50"), "n": 3, "s": "x"})
        == '{"percent_off":25.5,"n":3,"s":"x"}'
    )
    with pytest.raises(TypeError):
        dumps({"f": object()})


def test_secrets_are_masked() -> None:
    assert mask_key("sk_test_abcdefgh1234") == "sk_test_****1234"


class _NoWebhooks:
    def deliver(self, provider: str, body: bytes, sign: Any) -> None:
        pass


@pytest.fixture
def system() -> StripeSandbox:
    return StripeSandbox(
        SandboxContext(clock=Clock(), webhooks=_NoWebhooks(), base_url="http://127.0.0.1:1")
    )


@pytest.mark.parametrize(
    ("method", "path", "name"),
    [
        ("GET", "/v1/customers/search", "GET /v1/customers/search"),
        ("GET", "/v1/customers/cus_123", "GET /v1/customers/{id}"),
        ("POST", "/v1/invoices/in_1Abc/add_lines", "POST /v1/invoices/{id}/add_lines"),
        ("GET", "/v1/invoices/in_1/lines/il_2", "GET /v1/invoices/{id}/lines/{id}"),
        ("GET", "/v1/events", "GET /v1/events"),
    ],
)
def test_endpoint_names(system: StripeSandbox, method: str, path: str, name: str) -> None:
    assert system.endpoint_name(method, path) == name


def test_config_section_uses_only_stripe_settings_keys(system: StripeSandbox) -> None:
    from billsync.connectors.stripe.settings import StripeSettings

    section = system.config_section()
    assert set(section) <= set(StripeSettings.model_fields)
    settings = StripeSettings.model_validate(section)
    assert settings.enabled and settings.api_key is not None
    assert settings.api_key.get_secret_value() == system.ready_info()["stripe_api_key"]


def test_seed_rejects_unknown_sections_and_fields(system: StripeSandbox) -> None:
    with pytest.raises(ValueError, match="unknown stripe seed sections"):
        system.seed({"subscriptions": []})
    with pytest.raises(
        ValueError, match=r"stripe.customers\[0\]: Received unknown parameter: colour"
    ):
        system.seed({"customers": [{"colour": "red"}]})
    with pytest.raises(ValueError, match="No such product"):
        system.seed({"prices": [{"product": "prod_nope", "currency": "usd", "unit_amount": 1}]})
