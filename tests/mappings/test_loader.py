"""Mapping files: defaults, overrides, and errors that name the file, line and key."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from billsync.core.target_mapping import UniqueReference
from billsync.mappings.loader import MappingError, default_mapping_path, load_mappings
from billsync.mappings.transforms import FunctionRegistry


def write(tmp_path: Path, text: str, name: str = "custom.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def problems(exc: pytest.ExceptionInfo[MappingError]) -> list[str]:
    return [str(p) for p in exc.value.problems]


def test_default_mapping_loads_and_is_exact() -> None:
    loaded = load_mappings()
    assert loaded.files == (str(default_mapping_path()),)
    assert loaded.spec.validation.amount_tolerance == Decimal("0.01")
    assert isinstance(loaded.spec.validation.amount_tolerance, Decimal)
    assert loaded.spec.writeback.status == "Billing_Status__c"
    assert set(loaded.spec.terms.values) >= {"Net 30", "Due on receipt"}


def test_user_file_overrides_key_by_key(tmp_path: Path) -> None:
    custom = write(tmp_path, "terms:\n  default: Net 15\nsource:\n  po_number: PO_Number__c\n")
    loaded = load_mappings([custom])
    assert loaded.spec.terms.default == "Net 15"
    assert "Net 30" in loaded.spec.terms.values  # the rest of terms is kept
    assert loaded.spec.source.po_number == "PO_Number__c"
    assert loaded.spec.source.target_hint == "Billing_Platform__c"
    assert loaded.digest != load_mappings().digest


def test_digest_is_stable() -> None:
    assert load_mappings().digest == load_mappings().digest


def test_unknown_key_names_file_line_and_key(tmp_path: Path) -> None:
    custom = write(tmp_path, "invoice:\n  memo: deal.name\n  memmo: deal.name\n")
    with pytest.raises(MappingError) as exc:
        load_mappings([custom])
    assert problems(exc) == [f"{custom}:3: invoice.memmo: unknown key"]


def test_unknown_path_and_transform(tmp_path: Path) -> None:
    custom = write(
        tmp_path,
        "invoice:\n  memo: deal.nmae\n  doc_number: {path: deal.id, transforms: [{explode: 1}]}\n",
    )
    with pytest.raises(MappingError) as exc:
        load_mappings([custom])
    lines = problems(exc)
    assert len(lines) == 2
    assert lines[0].startswith(f"{custom}:2: invoice.memo: unknown field path 'deal.nmae'")
    assert lines[1].startswith(f"{custom}:3: invoice.doc_number: unknown transform 'explode'")


def test_line_paths_only_where_lines_exist(tmp_path: Path) -> None:
    custom = write(tmp_path, "invoice:\n  memo: line.description\n")
    with pytest.raises(MappingError) as exc:
        load_mappings([custom])
    assert "unknown field path 'line.description'" in problems(exc)[0]


def test_wrong_type_and_cross_checks(tmp_path: Path) -> None:
    custom = write(
        tmp_path,
        "terms:\n  default: Net 45\nvalidation:\n  amount_tolerance: lots\n",
    )
    with pytest.raises(MappingError) as exc:
        load_mappings([custom])
    lines = problems(exc)
    assert any(line.startswith(f"{custom}:4: validation.amount_tolerance:") for line in lines)
    custom.write_text("terms:\n  default: Net 45\n")
    with pytest.raises(MappingError) as exc:
        load_mappings([custom])
    assert problems(exc) == [f"{custom}:2: terms.default: 'Net 45' is not one of terms.values"]


def test_routing_value_for_two_targets(tmp_path: Path) -> None:
    custom = write(tmp_path, "routing:\n  values:\n    stripe: [Stripe, QBO]\n")
    with pytest.raises(MappingError) as exc:
        load_mappings([custom])
    assert "'QBO' also routes to quickbooks" in problems(exc)[0]


def test_salesforce_field_names_are_checked(tmp_path: Path) -> None:
    custom = write(tmp_path, 'source:\n  po_number: "PO\'; DROP"\n')
    with pytest.raises(MappingError) as exc:
        load_mappings([custom])
    assert problems(exc)[0].startswith(f"{custom}:2: source.po_number:")


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    broken = write(tmp_path, "invoice: [unclosed\n")
    with pytest.raises(MappingError) as exc:
        load_mappings([broken, tmp_path / "missing.yaml"])
    lines = problems(exc)
    assert "invalid YAML" in lines[0] and str(broken) in lines[0]
    assert lines[1].startswith(f"{tmp_path / 'missing.yaml'}: -: cannot read")


def test_registered_function(tmp_path: Path) -> None:
    custom = write(
        tmp_path, "customer:\n  name: {path: account.name, transforms: [{function: shout}]}\n"
    )
    with pytest.raises(MappingError):
        load_mappings([custom])
    registry = FunctionRegistry.discover({"shout": lambda v: f"{v}!"})
    assert load_mappings([custom], functions=registry).spec.customer.name.transforms == (
        {"function": "shout"},
    )


# --- a user's value spec replaces the default's (issue 16) --------------------------


def test_user_value_spec_replaces_the_defaults_source(tmp_path: Path) -> None:
    custom = write(
        tmp_path,
        'invoice:\n  doc_number: {template: "SF-{deal.id}"}\n  memo: {path: deal.name}\n',
    )
    spec = load_mappings([custom]).spec.invoice
    assert spec.doc_number is not None and spec.memo is not None
    assert (spec.doc_number.template, spec.doc_number.path) == ("SF-{deal.id}", None)
    assert spec.doc_number.transforms == ()  # the default's truncate went with its path
    assert (spec.memo.path, spec.memo.template) == ("deal.name", None)


def test_transforms_alone_still_merge_into_the_default(tmp_path: Path) -> None:
    custom = write(tmp_path, "invoice:\n  doc_number: {transforms: [{truncate: 20}]}\n")
    doc_number = load_mappings([custom]).spec.invoice.doc_number
    assert doc_number is not None
    assert (doc_number.path, doc_number.transforms) == ("deal.id", ({"truncate": 20},))


# What the QuickBooks connection with lookup_before_create: false demands (wiring).
NO_LOOKUP = UniqueReference(
    "lookup_before_create is false", "quickbooks.lookup_before_create: true"
)


@pytest.mark.parametrize(
    ("doc_number", "accepted"),
    [
        ("{path: deal.id}", True),
        ('{template: "SF-{deal.id}"}', True),
        ('{template: "SF-{deal.id}", transforms: [{truncate: 21}]}', True),
        ("{path: deal.id, transforms: [{truncate: 21}]}", True),  # the default
        ('{template: "INV-{deal.id}", transforms: [{truncate: 21}]}', False),  # cuts the id
        ("{path: deal.name}", False),
        ('{value: "FIXED"}', False),
        ("{path: deal.id, transforms: [lower]}", False),
    ],
)
def test_lookup_before_create_false_needs_a_unique_reference(
    tmp_path: Path, doc_number: str, accepted: bool
) -> None:
    custom = write(tmp_path, f"invoice:\n  doc_number: {doc_number}\n")
    load_mappings([custom])  # always fine with look-ups on
    if accepted:
        load_mappings([custom], unique_reference=[NO_LOOKUP])
        return
    with pytest.raises(MappingError) as exc:
        load_mappings([custom], unique_reference=[NO_LOOKUP])
    [problem] = problems(exc)
    assert f"{custom}:2: invoice.doc_number: lookup_before_create is false" in problem
    assert "quickbooks.lookup_before_create: true" in problem
