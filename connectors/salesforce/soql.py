"""Safe SOQL: every value through simple-salesforce's `format_soql`, and a strict check of
the one fragment an operator may write by hand (`salesforce.extra_where`).

Values are never pasted into a query: names like ``O'Brien & Sons`` and record type names
from config go through `format_soql`, which quotes and backslash-escapes them as the SOQL
reference requires. `format_soql` has one trap: it reads a *naive* datetime as local time
and converts it to UTC silently, so a watermark without a zone would shift by the host's
UTC offset. Here a naive datetime is a bug and raises.

`extra_where` is checked once, at start-up, by a small tokenizer: only field paths,
operators, literals, AND/OR/NOT/IN/LIKE/INCLUDES/EXCLUDES, commas and balanced
parentheses. No `;`, no second statement, no SELECT (so no semi-join subquery), no
clause keywords (FROM, LIMIT, ORDER, GROUP, OFFSET, …). The fragment is ANDed in its own
parentheses, and because parentheses must balance *and never close more than they
opened*, it cannot escape them (``x = 1) OR (IsWon = false`` is refused).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from simple_salesforce.format import format_soql

from billsync.connectors.salesforce.fields import LINE_RELATIONSHIP, check_path

__all__ = ["WhereFragmentError", "build_pull_query", "soql_value", "validate_where"]


class WhereFragmentError(ValueError):
    """The configured WHERE fragment is not acceptable; the message says why."""


def soql_value(value: Any) -> str:
    """One value as a SOQL literal (strings quoted and escaped, datetimes in UTC)."""
    _refuse_naive(value)
    if isinstance(value, list | tuple | set):
        for member in value:
            _refuse_naive(member)
    return format_soql("{}", value)


def _refuse_naive(value: Any) -> None:
    if isinstance(value, datetime) and value.utcoffset() is None:
        raise ValueError(
            f"naive datetime {value.isoformat()} given for a SOQL literal; "
            "use a timezone-aware UTC datetime (format_soql would read it as local time)"
        )


def build_pull_query(
    *,
    opportunity_fields: Sequence[str],
    line_fields: Sequence[str],
    since: datetime | None,
    record_types: Sequence[str] = (),
    extra_where: str | None = None,
    ids: Sequence[str] | None = None,
) -> str:
    """The one query of the incremental pull: won deals, their account and their lines.

    Ordered by (SystemModstamp, Id) so the cursor of each deal is a safe resume point.
    ``ids``: read only these Opportunities (``Id IN (...)``, each value through
    `format_soql`), the re-read of known deals; it must not be empty.
    """
    for path in (*opportunity_fields, *line_fields):
        check_path(path, what="field")  # identifiers and dots only: nothing to escape
    # Field names are checked above; values go through format_soql or validate_where.
    select_lines = ", ".join(line_fields)
    lines = f"(SELECT {select_lines} FROM {LINE_RELATIONSHIP} ORDER BY SortOrder, Id)"  # noqa: S608
    conditions = ["IsWon = true"]
    if ids is not None:
        if not ids:
            raise ValueError("ids is empty: 'Id IN ()' is not valid SOQL")
        conditions.insert(0, f"Id IN {soql_value(list(ids))}")
    if since is not None:
        conditions.append(f"SystemModstamp >= {soql_value(since)}")
    if record_types:
        conditions.append(f"RecordType.DeveloperName IN {soql_value(list(record_types))}")
    if extra_where:
        conditions.append(f"({validate_where(extra_where)})")
    return (
        f"SELECT {', '.join(opportunity_fields)}, {lines} FROM Opportunity "  # noqa: S608
        f"WHERE {' AND '.join(conditions)} ORDER BY SystemModstamp, Id"
    )


# --- the extra_where check ---------------------------------------------------------


class _Token(NamedTuple):
    kind: str  # name | string | number | temporal | op | ( | ) | ,
    text: str
    position: int


# Clause and statement keywords that have no business inside a WHERE condition.
_FORBIDDEN_WORDS = frozenset(
    {
        "SELECT",
        "FROM",
        "WHERE",
        "LIMIT",
        "ORDER",
        "GROUP",
        "HAVING",
        "OFFSET",
        "WITH",
        "FOR",
        "UPDATE",
        "USING",
        "SCOPE",
        "TYPEOF",
        "FIELDS",
    }
)
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
# Date literals with an argument: LAST_N_DAYS:30, NEXT_N_FISCAL_QUARTERS:2.
_DATE_LITERAL_N = re.compile(r"[A-Za-z][A-Za-z0-9_]*:[0-9]+")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]+)?|\.[0-9]+)")
_TEMPORAL = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]+)?"
    r"(?:Z|[+-][0-9]{2}:?[0-9]{2}))?"
)
_OPERATORS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_STRING_ESCAPES = frozenset("nNrRtTbBfF\"'\\%_")


def validate_where(fragment: str) -> str:
    """Return the fragment (stripped) if it is a plain condition, else WhereFragmentError."""
    text = fragment.strip()
    if not text:
        raise WhereFragmentError("is empty; remove the key or write a condition")
    depth = 0
    previous: _Token | None = None
    for token in _tokenize(text):
        if token.kind == "(":
            depth += 1
        elif token.kind == ")":
            if previous is not None and previous.kind == "(":
                raise WhereFragmentError(f"empty parentheses at position {previous.position}")
            depth -= 1
            if depth < 0:
                raise WhereFragmentError(
                    f"')' at position {token.position} closes a parenthesis that was never opened"
                )
        elif token.kind == "name" and token.text.upper() in _FORBIDDEN_WORDS:
            raise WhereFragmentError(
                f"{token.text.upper()} at position {token.position} is not allowed: write only "
                "a condition (no subqueries, no clauses such as ORDER BY or LIMIT)"
            )
        previous = token
    if depth:
        raise WhereFragmentError(f"{depth} unclosed '(': parentheses must balance")
    return text


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char.isspace():
            position += 1
        elif char in "(),":
            tokens.append(_Token(char, char, position))
            position += 1
        elif char == "'":
            end = _string_end(text, position)
            tokens.append(_Token("string", text[position:end], position))
            position = end
        elif char == ";":
            raise WhereFragmentError(f"';' at position {position}: only one condition is allowed")
        elif operator := next((op for op in _OPERATORS if text.startswith(op, position)), None):
            tokens.append(_Token("op", operator, position))
            position += len(operator)
        else:
            token = _word(text, position)
            tokens.append(token)
            position += len(token.text)
    return tokens


def _word(text: str, position: int) -> _Token:
    for kind, pattern in (
        ("temporal", _TEMPORAL),
        ("number", _NUMBER),
        ("name", _DATE_LITERAL_N),
        ("name", _NAME),
    ):
        match = pattern.match(text, position)
        if match and _ends_word(text, match.end()):
            return _Token(kind, match.group(), position)
    if text[position] == '"':
        reason = 'SOQL strings use single quotes, not "'
    else:
        reason = "only field names, operators, literals and parentheses are allowed"
    raise WhereFragmentError(f"unexpected {text[position]!r} at position {position}: {reason}")


def _ends_word(text: str, end: int) -> bool:
    return end >= len(text) or not (text[end].isalnum() or text[end] in "_.:'")


def _string_end(text: str, start: int) -> int:
    position = start + 1
    while position < len(text):
        char = text[position]
        if char == "\\":
            if position + 1 >= len(text) or text[position + 1] not in _STRING_ESCAPES:
                raise WhereFragmentError(f"invalid escape in the string at position {start}")
            position += 2
        elif char == "'":
            return position + 1
        elif char in "\r\n":
            raise WhereFragmentError(f"line break inside the string at position {start}")
        else:
            position += 1
    raise WhereFragmentError(f"the string at position {start} has no closing quote")
