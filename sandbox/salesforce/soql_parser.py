"""Recursive-descent parser for the SOQL subset billsync sends.

    query      := SELECT items FROM name [WHERE cond] [ORDER BY order {, order}]
                  [LIMIT int] [OFFSET int]
    items      := COUNT '(' ')' | item {, item}
    item       := path | '(' subquery ')'
    cond       := unary {AND unary} | unary {OR unary}
    unary      := NOT unary | '(' cond ')' | path op value | path [NOT] IN list
                | path LIKE string
    order      := path [ASC | DESC] [NULLS (FIRST | LAST)]

Like Salesforce, mixing AND and OR at one level without parentheses is an error, and
everything outside the subset (GROUP BY, aggregates, semi-joins, date functions,
named date literals, WITH, FOR UPDATE, TYPEOF) is a MALFORMED_QUERY.
"""

from __future__ import annotations

from typing import Literal

from billsync.sandbox.salesforce.soql_ast import (
    BoolOp,
    Comparison,
    Condition,
    FieldRef,
    Not,
    Operator,
    OrderItem,
    Query,
    Value,
)
from billsync.sandbox.salesforce.soql_lexer import (
    SoqlSyntaxError,
    Token,
    decode,
    decode_like,
    tokenize,
)

_UNSUPPORTED_CLAUSES = {"GROUP", "HAVING", "WITH", "FOR", "USING", "UPDATE"}
_CLAUSE_ENDS = {"WHERE", "ORDER", "LIMIT", "OFFSET", *_UNSUPPORTED_CLAUSES}


def parse(text: str) -> Query:
    return _Parser(tokenize(text)).query()


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.index = 0

    # -- token helpers -------------------------------------------------------------------

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def peek(self, offset: int = 1) -> Token:
        return self.tokens[min(self.index + offset, len(self.tokens) - 1)]

    def advance(self) -> Token:
        token = self.current
        if token.kind != "eof":
            self.index += 1
        return token

    def unexpected(self, token: Token | None = None) -> SoqlSyntaxError:
        token = token or self.current
        return SoqlSyntaxError(f"unexpected token: '{token.text}'", token.position)

    def at(self, kind: str) -> bool:
        return self.current.kind == kind

    def at_keyword(self, *words: str) -> bool:
        return self.current.keyword in words

    def expect_keyword(self, word: str) -> Token:
        if self.current.keyword != word:
            raise self.unexpected()
        return self.advance()

    def expect(self, kind: str) -> Token:
        if self.current.kind != kind:
            raise self.unexpected()
        return self.advance()

    # -- grammar -------------------------------------------------------------------------

    def query(self) -> Query:
        parsed = self._select(nested=False)
        if self.current.kind != "eof":
            raise self._clause_error()
        return parsed

    def _select(self, *, nested: bool) -> Query:
        self.expect_keyword("SELECT")
        items, count_only = self._items(nested=nested)
        self.expect_keyword("FROM")
        source = self.expect("name")
        if "." in source.text:
            raise self.unexpected(source)
        where = order_by = None
        limit = offset = None
        if self.at_keyword("WHERE"):
            self.advance()
            where = self._condition()
        if self.at_keyword("ORDER"):
            self.advance()
            self.expect_keyword("BY")
            order_by = self._order_list()
        if self.at_keyword("LIMIT"):
            self.advance()
            limit = self._integer()
        if self.at_keyword("OFFSET"):
            if nested:
                raise SoqlSyntaxError(
                    "OFFSET is not supported in subqueries by the sandbox", self.current.position
                )
            self.advance()
            offset = self._integer()
        if self.current.kind not in ("eof", ")") or (self.current.kind == ")" and not nested):
            raise self._clause_error()
        fields = tuple(item for item in items if isinstance(item, FieldRef))
        subqueries = tuple(item for item in items if isinstance(item, Query))
        return Query(
            fields=fields,
            subqueries=subqueries,
            source=source.text,
            source_position=source.position,
            where=where,
            order_by=order_by or (),
            limit=limit,
            offset=offset,
            count_only=count_only,
            select_order=tuple(items),
        )

    def _clause_error(self) -> SoqlSyntaxError:
        if self.current.keyword in _UNSUPPORTED_CLAUSES:
            return SoqlSyntaxError(
                f"{self.current.keyword} is not supported by the billsync sandbox",
                self.current.position,
            )
        return self.unexpected()

    def _items(self, *, nested: bool) -> tuple[list[FieldRef | Query], bool]:
        if self.at_keyword("COUNT") and self.peek().kind == "(":
            start = self.advance()
            self.expect("(")
            if self.current.kind != ")":
                raise SoqlSyntaxError(
                    "aggregate functions are not supported by the billsync sandbox",
                    start.position,
                )
            self.advance()
            if self.at(","):
                raise self.unexpected()
            return [], True
        items: list[FieldRef | Query] = []
        while True:
            if self.current.kind == "(":
                if nested:
                    raise SoqlSyntaxError(
                        "nested subqueries are not supported by the billsync sandbox",
                        self.current.position,
                    )
                self.advance()
                items.append(self._select(nested=True))
                self.expect(")")
            else:
                items.append(self._field(in_select=True))
            if self.current.kind != ",":
                return items, False
            self.advance()

    def _field(self, *, in_select: bool = False) -> FieldRef:
        token = self.current
        if token.kind != "name" or token.keyword in _CLAUSE_ENDS | {"FROM", "SELECT"}:
            raise self.unexpected()
        if self.peek().kind == "(":
            raise SoqlSyntaxError(
                f"functions such as {token.text}() are not supported by the billsync sandbox",
                token.position,
            )
        if in_select and token.keyword == "TYPEOF":
            raise SoqlSyntaxError("TYPEOF is not supported by the billsync sandbox", token.position)
        self.advance()
        return FieldRef(tuple(token.text.split(".")), token.position)

    def _condition(self) -> Condition:
        first = self._unary()
        if not self.at_keyword("AND", "OR"):
            return first
        operator: Literal["AND", "OR"] = "AND" if self.current.keyword == "AND" else "OR"
        operands = [first]
        while self.at_keyword("AND", "OR"):
            if self.current.keyword != operator:
                # Salesforce wants parentheses whenever AND and OR meet.
                raise self.unexpected()
            self.advance()
            operands.append(self._unary())
        return BoolOp(operator, tuple(operands))

    def _unary(self) -> Condition:
        if self.at_keyword("NOT"):
            self.advance()
            return Not(self._unary())
        if self.current.kind == "(":
            self.advance()
            inner = self._condition()
            self.expect(")")
            return inner
        return self._comparison()

    def _comparison(self) -> Comparison:
        field = self._field()
        token = self.current
        if token.kind == "op":
            self.advance()
            operator: Operator = token.text  # type: ignore[assignment]
            return Comparison(field, operator, (self._value(),))
        if token.keyword == "LIKE":
            self.advance()
            pattern = self.expect("string")
            pieces = decode_like(pattern.value, pattern.position)
            return Comparison(field, "LIKE", (Value("like", pieces, pattern.position),))
        if token.keyword == "IN":
            self.advance()
            return Comparison(field, "IN", self._list())
        if token.keyword == "NOT" and self.peek().keyword == "IN":
            self.advance()
            self.advance()
            return Comparison(field, "NOT IN", self._list())
        if token.keyword in ("INCLUDES", "EXCLUDES"):
            raise SoqlSyntaxError(
                f"{token.keyword} is not supported by the billsync sandbox", token.position
            )
        raise self.unexpected()

    def _list(self) -> tuple[Value, ...]:
        self.expect("(")
        if self.at_keyword("SELECT"):
            raise SoqlSyntaxError(
                "semi-join subqueries are not supported by the billsync sandbox",
                self.current.position,
            )
        values = [self._value()]
        while self.current.kind == ",":
            self.advance()
            values.append(self._value())
        self.expect(")")
        return tuple(values)

    def _value(self) -> Value:
        token = self.current
        if token.kind == "string":
            self.advance()
            return Value("string", decode(token.value, token.position), token.position)
        if token.kind in ("number", "date", "datetime"):
            self.advance()
            return Value(token.kind, token.value, token.position)
        if token.keyword in ("TRUE", "FALSE"):
            self.advance()
            return Value("boolean", token.keyword == "TRUE", token.position)
        if token.keyword == "NULL":
            self.advance()
            return Value("null", None, token.position)
        if token.kind == "name" and self.peek().kind != "(":
            raise SoqlSyntaxError(
                f"date literal or bind {token.text} is not supported by the billsync sandbox",
                token.position,
            )
        raise self.unexpected()

    def _order_list(self) -> tuple[OrderItem, ...]:
        items = []
        while True:
            field = self._field()
            descending = False
            if self.at_keyword("ASC", "DESC"):
                descending = self.advance().keyword == "DESC"
            nulls_last = descending  # Salesforce: ASC → NULLS FIRST, DESC → NULLS LAST
            if self.at_keyword("NULLS"):
                self.advance()
                if not self.at_keyword("FIRST", "LAST"):
                    raise self.unexpected()
                nulls_last = self.advance().keyword == "LAST"
            items.append(OrderItem(field, descending, nulls_last))
            if self.current.kind != ",":
                return tuple(items)
            self.advance()

    def _integer(self) -> int:
        token = self.current
        if token.kind != "number" or not token.text.isdigit():
            raise self.unexpected()
        self.advance()
        return int(token.text)
