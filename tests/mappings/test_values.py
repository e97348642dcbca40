"""Transforms and value specs: a closed whitelist, nothing evaluated."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from billsync.mappings.transforms import (
    BUILTIN_TRANSFORMS,
    FunctionRegistry,
    TransformError,
    apply_transforms,
    check_transform,
)
from billsync.mappings.values import ValueSpec, deal_context, parse_value_spec, resolve_value
from tests.mappings.conftest import make_deal, make_line

REGISTRY = FunctionRegistry.discover()


@pytest.mark.parametrize(
    ("value", "steps", "expected"),
    [
        ("  Acme   Corp ", ("strip",), "Acme Corp"),
        ("acme", ("upper",), "ACME"),
        ("ACME", ("lower",), "acme"),
        ("0123456789abcdefghijklmnop", ({"truncate": 21},), "0123456789abcdefghijk"),
        (None, ({"default": "n/a"},), "n/a"),
        ("", ({"default": "n/a"},), "n/a"),
        (date(2026, 11, 1), ({"date": "%d/%m/%Y"},), "01/11/2026"),
        ("2026-11-01", ({"date": "%Y%m%d"},), "20261101"),
        (Decimal("2.345"), ({"round": 2},), Decimal("2.35")),
        ("net30", ({"lookup": {"NET30": "Net 30"}},), "Net 30"),
        ("other", ({"lookup": {"NET30": "Net 30"}},), "other"),
        (None, ("upper", "strip"), None),
        ("Acme Analytics Group", ({"function": "initials"},), "AAG"),
    ],
)
def test_transforms(value: Any, steps: tuple[Any, ...], expected: Any) -> None:
    assert apply_transforms(value, steps, REGISTRY) == expected


def test_round_never_goes_through_float() -> None:
    with pytest.raises(TransformError):
        apply_transforms(0.1, ({"round": 2},), REGISTRY)


@pytest.mark.parametrize(
    "step",
    [
        "eval",
        {"truncate": "x"},
        {"truncate": -1},
        "truncate",
        {"lookup": [1]},
        {"a": 1, "b": 2},
        3,
        {"function": "nope"},
        "__import__",
    ],
)
def test_invalid_transforms_are_refused(step: Any) -> None:
    assert check_transform(step, REGISTRY) is not None


def test_the_whitelist_is_exactly_the_documented_one() -> None:
    assert set(BUILTIN_TRANSFORMS) == {
        "upper",
        "lower",
        "strip",
        "truncate",
        "default",
        "date",
        "round",
        "lookup",
    }


def test_template_renders_paths_only_and_escapes_braces() -> None:
    deal = make_deal()
    spec = parse_value_spec(
        {"template": "{{SF}} {deal.id} / {account.name}"}, REGISTRY, line_level=False
    )
    assert resolve_value(spec, deal_context(deal), REGISTRY) == (
        "{SF} 006000000000001AAA / O'Brien & Sons"
    )


@pytest.mark.parametrize(
    "raw",
    ["{deal.id.__class__}", "{deal.id!r}", "{0}", "{__import__('os')}"],
)
def test_templates_cannot_reach_beyond_known_paths(raw: str) -> None:
    with pytest.raises(ValueError, match="unknown field path"):
        parse_value_spec({"template": raw}, REGISTRY, line_level=False)


def test_line_context() -> None:
    deal = make_deal()
    context = deal_context(deal, make_line(3, product_code="SEAT"))
    spec = ValueSpec(template="{line.product_code}-{deal.currency}")
    assert resolve_value(spec, context, REGISTRY) == "SEAT-USD"


def test_constant_value() -> None:
    spec = parse_value_spec({"value": "fixed"}, REGISTRY, line_level=False)
    assert resolve_value(spec, {}, REGISTRY) == "fixed"
