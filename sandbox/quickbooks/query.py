"""The QBO query language: a tokenizer, a parser and an evaluator (no eval).

    SELECT * | COUNT(*) | field, ... FROM Entity
      [WHERE cond AND cond ...] [ORDERBY field [ASC|DESC], ...]
      [STARTPOSITION n] [MAXRESULTS m]

cond is `field op value` (=, <, >, <=, >=), `field IN (v, ...)` or `field LIKE 'x%'`.
There is no OR, no NOT, no JOIN and no GROUP BY: QBO rejects them with a parser error
(4000), and so does this parser. `ORDER BY` (two words) is accepted too because
python-quickbooks' `all()` writes it that way. Keywords are case-insensitive;
strings are single-quoted with `\\'` as the escape for a quote.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from billsync.sandbox.quickbooks.errors import QboFault

DEFAULT_MAX_RESULTS = 100
MAX_RESULTS_CAP = 1000
COMPARISONS = ("=", "<", ">", "<=", ">=")

Literal = str | Decimal | bool

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:\\.|[^'\\])*')
      | (?P<number>-?\d+(?:\.\d+)?)(?![\w.])
      | (?P<op><=|>=|!=|<>|=|<|>)
      | (?P<punct>[*,()])
      | (?P<word>[A-Za-z_][\w.]*)
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # string | number | op | punct | word | end
    text: str
    column: int

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str  # = < > <= >= IN LIKE
    values: tuple[Literal, ...]


@dataclass(frozen=True)
class Query:
    entity: str
    count: bool = False
    fields: tuple[str, ...] | None = None
    """Projected fields, or None for `*`."""
    where: tuple[Condition, ...] = ()
    order: tuple[tuple[str, bool], ...] = ()
    """(field, descending) pairs."""
    start: int = 1
    max_results: int = DEFAULT_MAX_RESULTS


def parse_error(token: Token, expected: str) -> QboFault:
    shown = "<EOF>" if token.kind == "end" else token.text
    return QboFault(
        "4000",
        "Error parsing query",
        f'QueryParserError: Encountered " {shown} " at line 1, column {token.column}.\n'
        f"Was expecting: {expected}",
    )


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    stripped = text.rstrip()
    while position < len(stripped):
        match = _TOKEN.match(stripped, position)
        if match is None or match.end() == position:
            column = position + 1
            raise parse_error(Token("word", stripped[position : position + 1], column), "a token")
        kind = match.lastgroup or "word"
        column = match.start(kind) + 1
        tokens.append(Token(kind, match.group(kind), column))
        position = match.end()
    tokens.append(Token("end", "", len(stripped) + 1))
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = tokenize(text)
        self.index = 0

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def take(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def keyword(self, *words: str) -> bool:
        if self.token.upper in words:
            self.index += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            raise parse_error(self.token, word)

    def expect_punct(self, text: str) -> None:
        if self.token.kind == "punct" and self.token.text == text:
            self.index += 1
            return
        raise parse_error(self.token, f'"{text}"')

    def field(self) -> str:
        token = self.token
        if token.kind != "word" or token.upper in _RESERVED:
            raise parse_error(token, "<IDENTIFIER>")
        self.index += 1
        return token.text

    def integer(self, what: str) -> int:
        token = self.take()
        if token.kind != "number" or not token.text.lstrip("-").isdigit():
            raise parse_error(token, f"<INTEGER> for {what}")
        return int(token.text)

    def literal(self) -> Literal:
        token = self.take()
        if token.kind == "string":
            return _unquote(token.text)
        if token.kind == "number":
            return Decimal(token.text)
        if token.upper in ("TRUE", "FALSE"):
            return token.upper == "TRUE"
        raise parse_error(token, "<STRING>, <NUMBER>, true or false")

    def parse(self) -> Query:
        self.expect_keyword("SELECT")
        count, fields = self.select_list()
        self.expect_keyword("FROM")
        entity = self.field()
        where = self.where() if self.keyword("WHERE") else ()
        order: tuple[tuple[str, bool], ...] = ()
        start, max_results = 1, DEFAULT_MAX_RESULTS
        while self.token.kind != "end":
            if self.keyword("ORDERBY") or (self.keyword("ORDER") and self._by()):
                order = self.order()
            elif self.keyword("STARTPOSITION"):
                start = max(1, self.integer("STARTPOSITION"))
            elif self.keyword("MAXRESULTS"):
                max_results = max(0, min(MAX_RESULTS_CAP, self.integer("MAXRESULTS")))
            else:
                raise parse_error(self.token, "ORDERBY, STARTPOSITION, MAXRESULTS or <EOF>")
        return Query(entity, count, fields, where, order, start, max_results)

    def _by(self) -> bool:
        self.expect_keyword("BY")
        return True

    def select_list(self) -> tuple[bool, tuple[str, ...] | None]:
        if self.keyword("COUNT"):
            self.expect_punct("(")
            self.expect_punct("*")
            self.expect_punct(")")
            return True, None
        star = False
        fields: list[str] = []
        while True:
            if self.token.kind == "punct" and self.token.text == "*":
                self.index += 1
                star = True
            else:
                fields.append(self.field())
            if not (self.token.kind == "punct" and self.token.text == ","):
                break
            self.index += 1
        # `SELECT *, Sku` (python-quickbooks' Item.all) is everything.
        return False, None if star else tuple(fields)

    def where(self) -> tuple[Condition, ...]:
        conditions = [self.condition()]
        while self.keyword("AND"):
            conditions.append(self.condition())
        return tuple(conditions)

    def condition(self) -> Condition:
        field = self.field()
        if self.keyword("IN"):
            self.expect_punct("(")
            values = [self.literal()]
            while self.token.kind == "punct" and self.token.text == ",":
                self.index += 1
                values.append(self.literal())
            self.expect_punct(")")
            return Condition(field, "IN", tuple(values))
        if self.keyword("LIKE"):
            token = self.take()
            if token.kind != "string":
                raise parse_error(token, "<STRING>")
            return Condition(field, "LIKE", (_unquote(token.text),))
        token = self.take()
        if token.kind != "op" or token.text not in COMPARISONS:
            raise parse_error(token, '"=", "<", ">", "<=", ">=", IN or LIKE')
        return Condition(field, token.text, (self.literal(),))

    def order(self) -> tuple[tuple[str, bool], ...]:
        items = []
        while True:
            field = self.field()
            descending = False
            if self.keyword("DESC"):
                descending = True
            else:
                self.keyword("ASC")
            items.append((field, descending))
            if not (self.token.kind == "punct" and self.token.text == ","):
                return tuple(items)
            self.index += 1


_RESERVED = frozenset(
    {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDERBY", "ORDER", "BY",
     "STARTPOSITION", "MAXRESULTS", "ASC", "DESC", "COUNT", "TRUE", "FALSE"}
)  # fmt: skip


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def parse(text: str) -> Query:
    """Parse one QBO query; raises QboFault 4000 with the vendor's parser message."""
    return _Parser(text).parse()


def decimal_or_none(value: object) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal | int):
        return Decimal(value)
    if isinstance(value, str):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None
