"""SOQL tokenizer.

Tokens: names (with dotted relationship paths, `Account.Name`), single-quoted strings
with backslash escapes, numbers, unquoted date (`2026-11-01`) and datetime
(`2026-11-01T00:00:00Z`, `…+05:30`, `…-0800`, `….123Z`) literals, comparison operators,
parentheses and commas. Keywords are names; the parser recognises them case-blind, as
Salesforce does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any, Literal

TokenKind = Literal["name", "string", "number", "date", "datetime", "op", "(", ")", ",", "eof"]

# Each pattern matches exactly one token at a known position; the grammar itself is
# the recursive-descent parser's job.
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*(?:\.[A-Za-z][A-Za-z0-9_]*)*")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_TEMPORAL = re.compile(
    r"(?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})"
    r"(?:T(?P<time>[0-9]{2}:[0-9]{2}:[0-9]{2})(?P<fraction>\.[0-9]+)?"
    r"(?P<zone>Z|[+-][0-9]{2}:?[0-9]{2})?)?"
)
_OPERATORS = ("<=", ">=", "!=", "<>", "=", "<", ">")
_SIMPLE_ESCAPES = {
    "n": "\n",
    "N": "\n",
    "r": "\r",
    "R": "\r",
    "t": "\t",
    "T": "\t",
    "b": "\b",
    "B": "\b",
    "f": "\f",
    "F": "\f",
    '"': '"',
    "'": "'",
    "\\": "\\",
}


class Wildcard(Enum):
    """LIKE wildcards: `%` (any run of characters) and `_` (exactly one)."""

    ANY = "%"
    ONE = "_"


class SoqlSyntaxError(Exception):
    """A malformed query; `position` is the character offset Salesforce would point at."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


@dataclass(frozen=True)
class Token:
    kind: TokenKind
    text: str
    position: int
    value: Any = None

    @property
    def keyword(self) -> str:
        """The upper-cased text of a name token ('' for anything else)."""
        return self.text.upper() if self.kind == "name" else ""


def tokenize(query: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    length = len(query)
    while position < length:
        char = query[position]
        if char.isspace():
            position += 1
            continue
        if char in "(),":
            tokens.append(Token(char, char, position))  # type: ignore[arg-type]
            position += 1
            continue
        if char == "'":
            token, position = _string(query, position)
            tokens.append(token)
            continue
        operator = next((op for op in _OPERATORS if query.startswith(op, position)), None)
        if operator:
            tokens.append(Token("op", "!=" if operator == "<>" else operator, position))
            position += len(operator)
            continue
        temporal = _TEMPORAL.match(query, position)
        if temporal and _ends_token(query, temporal.end()):
            tokens.append(_temporal(temporal, position))
            position = temporal.end()
            continue
        number = _NUMBER.match(query, position)
        if number and _ends_token(query, number.end()):
            text = number.group()
            tokens.append(Token("number", text, position, Decimal(text)))
            position = number.end()
            continue
        name = _NAME.match(query, position)
        if name:
            tokens.append(Token("name", name.group(), position))
            position = name.end()
            continue
        raise SoqlSyntaxError(f"unexpected token: '{char}'", position)
    tokens.append(Token("eof", "<EOF>", length))
    return tokens


def _ends_token(query: str, end: int) -> bool:
    return end >= len(query) or not (query[end].isalnum() or query[end] in "_.:")


def _string(query: str, start: int) -> tuple[Token, int]:
    """A quoted literal; the raw text is kept so LIKE can tell `\\%` from `%`."""
    position = start + 1
    while position < len(query):
        char = query[position]
        if char == "\\":
            position += 2
            continue
        if char == "'":
            raw = query[start + 1 : position]
            return Token("string", query[start : position + 1], start, raw), position + 1
        position += 1
    raise SoqlSyntaxError("unterminated string literal: missing closing quote", start)


def decode(raw: str, position: int) -> str:
    """Undo SOQL escapes in a quoted literal."""
    pieces = _decode(raw, position, like=False)
    return "".join(piece for piece in pieces if isinstance(piece, str))


def decode_like(raw: str, position: int) -> list[str | Wildcard]:
    """A LIKE pattern as literal text and wildcards (`\\%` and `\\_` stay literal)."""
    return _decode(raw, position, like=True)


def _decode(raw: str, position: int, *, like: bool) -> list[str | Wildcard]:
    pieces: list[str | Wildcard] = []
    text: list[str] = []
    index = 0
    while index < len(raw):
        char = raw[index]
        if char == "\\":
            escaped = raw[index + 1] if index + 1 < len(raw) else ""
            if escaped in _SIMPLE_ESCAPES:
                text.append(_SIMPLE_ESCAPES[escaped])
            elif like and escaped in "%_":
                text.append(escaped)
            else:
                raise SoqlSyntaxError(
                    f"Invalid string literal '{raw}'. Illegal escape sequence '\\{escaped}'",
                    position,
                )
            index += 2
            continue
        if like and char in "%_":
            pieces.append("".join(text))
            pieces.append(Wildcard(char))
            text = []
        else:
            text.append(char)
        index += 1
    pieces.append("".join(text))
    return pieces


def _temporal(match: re.Match[str], position: int) -> Token:
    text = match.group()
    try:
        day = date.fromisoformat(match.group("date"))
        if match.group("time") is None:
            return Token("date", text, position, day)
        if match.group("zone") is None:
            raise SoqlSyntaxError(f"datetime literal needs a time zone: {text}", position)
        fraction = (match.group("fraction") or "")[:7]
        zone = match.group("zone")
        moment = datetime.fromisoformat(f"{day.isoformat()}T{match.group('time')}{fraction}{zone}")
    except ValueError:
        raise SoqlSyntaxError(f"invalid date or datetime literal: {text}", position) from None
    return Token("datetime", text, position, moment)
