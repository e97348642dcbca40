"""Safe SOQL: value escaping, the pull query, and the extra_where check."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from billsync.connectors.salesforce.fields import DealFieldPaths, WriteBackFields, lookup
from billsync.connectors.salesforce.soql import (
    WhereFragmentError,
    build_pull_query,
    soql_value,
    validate_where,
)


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("O'Brien & Sons", r"'O\'Brien & Sons'"),
        ("Closed 'Won' \"big\"", r"'Closed \'Won\' \"big\"'"),
        ("back\\slash\nnew line", r"'back\\slash\nnew line'"),
        (["Enterprise's", "SMB"], r"('Enterprise\'s','SMB')"),
        (datetime(2026, 11, 1, 12, 0, 0, 123456, tzinfo=UTC), "2026-11-01T12:00:00+00:00"),
        (
            datetime(2026, 11, 1, 13, 30, tzinfo=timezone(timedelta(hours=1, minutes=30))),
            "2026-11-01T12:00:00+00:00",
        ),
        (True, "true"),
        (None, "null"),
    ],
)
def test_values_are_quoted_and_escaped(value: object, literal: str) -> None:
    assert soql_value(value) == literal


def test_naive_datetime_is_a_bug() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        soql_value(datetime(2026, 11, 1, 12, 0))
    with pytest.raises(ValueError, match="naive datetime"):
        build_pull_query(opportunity_fields=["Id"], line_fields=["Id"], since=datetime(2026, 1, 1))


def test_pull_query_shape_with_escaped_record_types_and_fragment() -> None:
    query = build_pull_query(
        opportunity_fields=["Id", "SystemModstamp", "Account.Name"],
        line_fields=["Id", "Quantity"],
        since=datetime(2026, 11, 1, 11, 55, 0, 500000, tzinfo=UTC),
        record_types=["New_Business", "Partner's Deal"],
        extra_where="Type != 'Renewal'",
    )
    assert query == (
        "SELECT Id, SystemModstamp, Account.Name, "
        "(SELECT Id, Quantity FROM OpportunityLineItems ORDER BY SortOrder, Id) "
        "FROM Opportunity WHERE IsWon = true AND SystemModstamp >= 2026-11-01T11:55:00+00:00 "
        r"AND RecordType.DeveloperName IN ('New_Business','Partner\'s Deal') "
        "AND (Type != 'Renewal') ORDER BY SystemModstamp, Id"
    )


def test_pull_query_without_watermark_has_no_stamp_condition() -> None:
    query = build_pull_query(opportunity_fields=["Id"], line_fields=["Id"], since=None)
    assert "WHERE IsWon = true ORDER BY SystemModstamp, Id" in query


def test_pull_query_refuses_a_field_that_is_not_a_path() -> None:
    with pytest.raises(ValueError, match="not a Salesforce field path"):
        build_pull_query(opportunity_fields=["Id, (SELECT"], line_fields=["Id"], since=None)


GOOD_FRAGMENTS = [
    "Type != 'Renewal'",
    "Amount > 0 AND (Type = 'New Business' OR Type = 'Upsell')",
    "Account.Name LIKE 'O\\'Brien%'",
    "Region__c IN ('EMEA', 'APAC') AND NOT IsPrivate = true",
    "CloseDate >= 2026-01-01 AND LastModifiedDate < 2026-11-01T00:00:00Z",
    "CloseDate = LAST_N_DAYS:30",
    "Description = 'it''s; SELECT fine in a string'".replace("''", "\\'"),
    "Amount >= -10.5",
]


@pytest.mark.parametrize("fragment", GOOD_FRAGMENTS)
def test_valid_fragments_pass(fragment: str) -> None:
    assert validate_where(f"  {fragment}  ") == fragment


BAD_FRAGMENTS = [
    ("", "is empty"),
    ("Type = 'x'; DELETE", "';' at position 10"),
    ("Id IN (SELECT OpportunityId FROM OpportunityLineItem)", "SELECT at position 7"),
    ("Amount > 0 ORDER BY Amount", "ORDER at position 11"),
    ("Amount > 0 LIMIT 5", "LIMIT at position 11"),
    ("Amount > 0 GROUP BY Type", "GROUP at position 11"),
    ("Amount > 0 OFFSET 5", "OFFSET"),
    ("Amount > 0 FROM Account", "FROM"),
    ("(Amount > 0", "1 unclosed '('"),
    ("Amount > 0) OR (IsWon = false", "')' at position 10 closes"),
    ("Name = 'unterminated", "no closing quote"),
    ('Name = "double"', "single quotes"),
    ("Name = 'bad \\q escape'", "invalid escape"),
    ("Amount > :minimum", "unexpected ':'"),
    ("Amount > 0 /* comment */", "unexpected '/'"),
    ("Name IN ()", "empty parentheses"),
    ("Name = {!x}", "unexpected '{'"),
]


@pytest.mark.parametrize(("fragment", "reason"), BAD_FRAGMENTS)
def test_invalid_fragments_are_refused_with_the_reason(fragment: str, reason: str) -> None:
    with pytest.raises(WhereFragmentError) as exc:
        validate_where(fragment)
    assert reason in str(exc.value)


def test_field_paths_are_validated_at_construction() -> None:
    assert DealFieldPaths(po_number="PO_Number__c").configured()["po_number"] == "PO_Number__c"
    with pytest.raises(ValueError, match=r"source\.terms"):
        DealFieldPaths(terms="Terms__c) FROM User --")
    with pytest.raises(ValueError, match=r"writeback\.status: .* no dots"):
        WriteBackFields(status="Account.Status__c")
    with pytest.raises(ValueError, match=r"already used for writeback\.invoice_id"):
        WriteBackFields(invoice_number="billing_invoice_id__c")


def test_lookup_follows_relationships_case_blind() -> None:
    record = {"Account": {"Billing_Email__c": "a@b.example"}, "Owner": None}
    assert lookup(record, "account.billing_email__C") == "a@b.example"
    assert lookup(record, "Owner.Email") is None
    assert lookup(record, "Missing__c") is None
