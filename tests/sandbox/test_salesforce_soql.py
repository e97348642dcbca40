"""SOQL tokenizer and parser of the Salesforce stand-in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from simple_salesforce.format import format_soql

from billsync.sandbox.salesforce.soql_ast import BoolOp, Comparison, Not
from billsync.sandbox.salesforce.soql_lexer import SoqlSyntaxError, Wildcard, tokenize
from billsync.sandbox.salesforce.soql_parser import parse


def where(text: str) -> Comparison | BoolOp | Not:
    condition = parse(f"SELECT Id FROM Opportunity WHERE {text}").where
    assert condition is not None
    return condition


def value_of(text: str) -> object:
    condition = where(text)
    assert isinstance(condition, Comparison)
    return condition.values[0].value


def test_tokens_keep_positions_and_dotted_names() -> None:
    tokens = tokenize("SELECT Account.Name FROM Opportunity WHERE Amount>=-5.5")
    assert [(t.kind, t.text) for t in tokens] == [
        ("name", "SELECT"),
        ("name", "Account.Name"),
        ("name", "FROM"),
        ("name", "Opportunity"),
        ("name", "WHERE"),
        ("name", "Amount"),
        ("op", ">="),
        ("number", "-5.5"),
        ("eof", "<EOF>"),
    ]
    assert tokens[1].position == 7
    assert tokens[7].value == Decimal("-5.5")


def test_not_equal_spellings_are_one_operator() -> None:
    for text in ("Name != 'x'", "Name <> 'x'"):
        condition = where(text)
        assert isinstance(condition, Comparison)
        assert condition.operator == "!="


@pytest.mark.parametrize(
    ("literal", "expected"),
    [
        ("2026-11-01T00:00:00Z", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T12:30:00.123Z", datetime(2026, 11, 1, 12, 30, 0, 123000, tzinfo=UTC)),
        (
            "2026-11-01T05:30:00+05:30",
            datetime(2026, 11, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        ),
        ("2026-11-01T00:00:00-0800", datetime(2026, 11, 1, tzinfo=timezone(timedelta(hours=-8)))),
        ("2026-11-01T00:00:00+00:00", datetime(2026, 11, 1, tzinfo=UTC)),
    ],
)
def test_unquoted_datetime_literals(literal: str, expected: datetime) -> None:
    assert value_of(f"SystemModstamp > {literal}") == expected


def test_date_literal() -> None:
    assert value_of("CloseDate >= 2026-11-01") == date(2026, 11, 1)


def test_datetime_without_zone_is_malformed() -> None:
    with pytest.raises(SoqlSyntaxError, match="time zone"):
        parse("SELECT Id FROM Opportunity WHERE SystemModstamp > 2026-11-01T00:00:00")


@pytest.mark.parametrize(
    ("quoted", "expected"),
    [
        (r"'O\'Brien & Sons'", "O'Brien & Sons"),
        (r"'back\\slash'", "back\\slash"),
        (r"'say \"hi\"'", 'say "hi"'),
        (r"'a\nb\tc\rd\be\ff'", "a\nb\tc\rd\be\ff"),
        (r"'A\NB'", "A\nB"),
        ("'100%_sure'", "100%_sure"),
    ],
)
def test_string_escapes(quoted: str, expected: str) -> None:
    assert value_of(f"Name = {quoted}") == expected


def test_illegal_escape_is_malformed() -> None:
    with pytest.raises(SoqlSyntaxError, match="Illegal escape"):
        parse(r"SELECT Id FROM Account WHERE Name = 'a\qb'")


@given(st.text())
def test_format_soql_round_trips_any_string(text: str) -> None:
    query = format_soql("SELECT Id FROM Account WHERE Name = {}", text)
    assert value_of(query.removeprefix("SELECT Id FROM Account WHERE ")) == text


def test_format_soql_datetime_and_lists_parse() -> None:
    moment = datetime(2026, 11, 1, 8, 0, tzinfo=UTC)
    query = format_soql(
        "SELECT Id FROM Opportunity WHERE SystemModstamp > {} AND Id IN {}",
        moment,
        ["006000000000001AAA", "006000000000002AAA"],
    )
    condition = parse(query).where
    assert isinstance(condition, BoolOp)
    first, second = condition.operands
    assert isinstance(first, Comparison) and first.values[0].value == moment
    assert isinstance(second, Comparison) and len(second.values) == 2


def test_like_pattern_keeps_escaped_wildcards_literal() -> None:
    pieces = value_of(r"Name LIKE 'A\%B%C_'")
    assert pieces == ["A%B", Wildcard.ANY, "C", Wildcard.ONE, ""]


def test_full_query_shape() -> None:
    query = parse(
        "SELECT Id, Account.Name, (SELECT Id, Quantity FROM OpportunityLineItems "
        "WHERE Quantity > 1 ORDER BY SortOrder NULLS LAST LIMIT 5), Name "
        "FROM Opportunity WHERE IsWon = true AND NOT (StageName IN ('a', 'b') OR Amount = null) "
        "ORDER BY SystemModstamp DESC, Id LIMIT 10 OFFSET 20"
    )
    assert [f.text for f in query.fields] == ["Id", "Account.Name", "Name"]
    assert query.source == "Opportunity"
    assert query.limit == 10 and query.offset == 20
    child = query.subqueries[0]
    assert child.source == "OpportunityLineItems"
    assert child.limit == 5
    assert child.order_by[0].nulls_last is True
    assert [type(item).__name__ for item in query.select_order] == [
        "FieldRef",
        "FieldRef",
        "Query",
        "FieldRef",
    ]
    assert isinstance(query.where, BoolOp) and query.where.operator == "AND"
    negated = query.where.operands[1]
    assert isinstance(negated, Not) and isinstance(negated.operand, BoolOp)
    first, second = query.order_by
    assert (first.descending, first.nulls_last) == (True, True)
    assert (second.descending, second.nulls_last) == (False, False)


def test_keywords_are_case_blind() -> None:
    query = parse("select id from opportunity where iswon = TRUE order by id desc nulls first")
    assert query.source == "opportunity"
    assert query.order_by[0].nulls_last is False


def test_not_in_and_count() -> None:
    condition = where("StageName NOT IN ('x')")
    assert isinstance(condition, Comparison) and condition.operator == "NOT IN"
    assert parse("SELECT COUNT() FROM Opportunity").count_only


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("SELECT Id FROM Opportunity WHERE a = 1 AND b = 2 OR c = 3", "unexpected token: 'OR'"),
        ("SELECT Id FROM Opportunity WHERE a = 1 OR b = 2 AND c = 3", "unexpected token: 'AND'"),
        ("SELECT Id FROM Opportunity WHERE Name = 'x", "unterminated"),
        ("SELECT Id FROM Opportunity GROUP BY Name", "GROUP is not supported"),
        ("SELECT Id FROM Opportunity WHERE Id IN (SELECT Id FROM Account)", "semi-join"),
        ("SELECT Id, (SELECT Id, (SELECT Id FROM X) FROM Y) FROM Z", "nested subqueries"),
        ("SELECT Id FROM Opportunity WHERE CloseDate = TODAY", "TODAY"),
        ("SELECT SUM(Amount) FROM Opportunity", "not supported"),
        ("SELECT Id FROM Opportunity LIMIT 5 extra", "unexpected token: 'extra'"),
        ("SELECT Id FROM Opportunity WHERE", "unexpected token: '<EOF>'"),
        ("SELECT FROM Opportunity", "unexpected token: 'FROM'"),
        ("SELECT Id FROM Opportunity WHERE Name = 'x' )", "unexpected token: ')'"),
        ("SELECT Id FROM Opportunity LIMIT -1", "unexpected token"),
        ("SELECT Id FROM Opportunity WHERE Amount > 5 #", "unexpected token: '#'"),
        ("SELECT Id, (SELECT Id FROM OpportunityLineItems OFFSET 2) FROM Opportunity", "OFFSET"),
    ],
)
def test_malformed_queries(query: str, message: str) -> None:
    with pytest.raises(SoqlSyntaxError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(query)


def test_error_position_points_at_the_token() -> None:
    text = "SELECT Id FROM Opportunity WHERE Amount > > 5"
    with pytest.raises(SoqlSyntaxError) as raised:
        parse(text)
    assert text[raised.value.position] == ">"
    assert raised.value.position == 42
