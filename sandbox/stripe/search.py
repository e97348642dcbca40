"""Stripe Search (`/v1/<resource>/search`): the query language subset and the lagging index.

Search is eventually consistent (api-facts §3.2): an object is found only once the
index caught up, normally within a minute. The index keeps versions: a change becomes
visible `delay_s` seconds (sandbox clock) after it happened, and until then searches
still see the previous version (or nothing, for a new object).

Query language: clauses `field:value` (exact, case-insensitive), `field~"sub"` (substring,
≥ 3 characters), `field>n`, `>=`, `<`, `<=` on numbers, `-` negates, `metadata['key']:'v'`
(a backslash escapes a quote inside quotes); clauses joined by AND or OR (not both), at most 10.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from typing import Any

from billsync.sandbox.stripe.errors import invalid
from billsync.sandbox.stripe.store import Obj

MAX_CLAUSES = 10
_TOKEN = re.compile(
    r"""\s*(?:
        (?P<word>AND|OR)(?=\s|$)
      | (?P<clause>(?P<neg>-)?(?P<field>metadata\[(?:'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")\]|[a-z_]+)
            (?P<op>:|~|>=|<=|>|<)
            (?P<value>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|-?[0-9]+(?:\.[0-9]+)?|null))
    )""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Clause:
    field: str
    metadata_key: str | None
    op: str
    value: str | int | None
    negate: bool


def _unquote(text: str) -> str:
    """A quoted value without its quotes; a backslash escapes the next character
    (Stripe's query language: ``'O\\'Hara'``)."""
    if text[:1] not in "'\"":
        return text
    return re.sub(r"\\(.)", r"\1", text[1:-1])


def parse_query(query: str, fields: dict[str, str], resource: str) -> tuple[list[Clause], str]:
    """The clauses and how they combine ('AND' or 'OR')."""
    clauses: list[Clause] = []
    joins: set[str] = set()
    position = 0
    text = query.strip()
    expect_clause = True
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None or match.end() == position:
            raise invalid(
                "query",
                f"Search query syntax error at position {position}: "
                f"{text[position : position + 20]!r}",
            )
        position = match.end()
        if match.group("word"):
            if expect_clause:
                raise invalid(
                    "query", f"Search query syntax error: unexpected {match.group('word')}"
                )
            joins.add(match.group("word"))
            expect_clause = True
            continue
        expect_clause = False
        clauses.append(_clause(match, fields, resource))
    if not clauses or (expect_clause and joins):
        raise invalid("query", "Search query syntax error: expected a clause")
    if len(joins) > 1:
        raise invalid("query", "Search queries cannot combine AND and OR.")
    if len(clauses) > MAX_CLAUSES:
        raise invalid("query", f"Search queries can have at most {MAX_CLAUSES} clauses.")
    return clauses, (joins.pop() if joins else "AND")


def _clause(match: re.Match[str], fields: dict[str, str], resource: str) -> Clause:
    field, op, raw = match.group("field"), match.group("op"), match.group("value")
    key = None
    if field.startswith("metadata["):
        field, key = "metadata", _unquote(field[len("metadata[") : -1])
        kind = "string"
    elif field in fields:
        kind = fields[field]
    else:
        raise invalid(
            "query",
            f"Field `{field}` is an unsupported search field for resource `{resource}`. "
            f"See http://stripe.com/docs/search#query-fields-for-{resource} for a list of "
            "supported fields.",
        )
    value: str | int | None
    if raw == "null":
        value = None
    elif kind == "number":
        if raw[:1] in "'\"" or "." in raw:
            raise invalid("query", f"Field `{field}` takes an integer, got {raw}")
        value = int(raw)
    else:
        if raw[:1] not in "'\"":
            raise invalid("query", f"String values must be quoted: {field}{op}{raw}")
        value = _unquote(raw)
    if op in (">", "<", ">=", "<=") and kind != "number":
        raise invalid("query", f"The operator {op} only applies to numeric fields, not `{field}`.")
    if op == "~" and (not isinstance(value, str) or len(value) < 3):
        raise invalid("query", "Substring matches (~) need at least 3 characters.")
    return Clause(field, key, op, value, bool(match.group("neg")))


def _matches(clause: Clause, doc: Obj) -> bool:
    if clause.metadata_key is not None:
        actual: Any = (doc.get("metadata") or {}).get(clause.metadata_key)
    else:
        actual = doc.get(clause.field)
    wanted = clause.value
    if wanted is None:
        result = actual is None
    elif clause.op in (":", "~") and isinstance(wanted, str):
        # [?] Stripe documents exact string matches as case-insensitive for emails; the
        # sandbox applies that to every string field.
        if not isinstance(actual, str):
            result = False
        elif clause.op == ":":
            result = actual.lower() == wanted.lower()
        else:
            result = wanted.lower() in actual.lower()
    elif isinstance(actual, int) and isinstance(wanted, int):
        result = {
            ":": actual == wanted,
            ">": actual > wanted,
            "<": actual < wanted,
            ">=": actual >= wanted,
            "<=": actual <= wanted,
        }[clause.op]
    else:
        result = False
    return result != clause.negate


class SearchIndex:
    def __init__(self, resource: str, fields: dict[str, str]) -> None:
        self.resource = resource
        self.fields = fields
        self._versions: dict[str, list[tuple[float, Obj | None]]] = {}

    def clear(self) -> None:
        self._versions.clear()

    def record(self, object_id: str, obj: Obj | None, visible_at: float) -> None:
        """Index a change (None: deleted), searchable from `visible_at` on."""
        doc = None
        if obj is not None:
            doc = {name: obj.get(name) for name in self.fields}
            doc["metadata"] = dict(obj.get("metadata") or {})
        versions = self._versions.setdefault(object_id, [])
        versions.append((visible_at, doc))

    def search(self, query: str, now: float) -> list[str]:
        """Ids of the matching objects as the index sees them now, newest first."""
        clauses, join = parse_query(query, self.fields, self.resource)
        combine = all if join == "AND" else any
        found = []
        for object_id, versions in self._versions.items():
            doc = _visible(versions, now)
            if doc is not None and combine(_matches(c, doc) for c in clauses):
                found.append(object_id)
        found.reverse()
        return found


def _visible(versions: list[tuple[float, Obj | None]], now: float) -> Obj | None:
    current: Obj | None = None
    seen = 0
    for visible_at, doc in versions:
        if visible_at > now:
            break
        current, seen = doc, seen + 1
    if seen > 1:
        del versions[: seen - 1]  # older versions can never be seen again
    return current


def page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def read_page_token(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, number = text.partition(":")
        if kind == "offset" and number.isdigit():
            return int(number)
    except (ValueError, UnicodeDecodeError):
        pass
    raise invalid("page", f"Invalid page token: {token}")
