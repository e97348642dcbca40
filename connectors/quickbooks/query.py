"""The QuickBooks query language: literals and IN lists, escaped the way QBO reads them.

QBO strings are single-quoted; a quote inside is written ``\\'`` and a backslash
``\\\\`` (the escape character has to escape itself, or ``O'Brien\\`` would end the
literal early). There is no OR, so "any of these names" is one ``IN (...)`` list; lists
are chunked so a statement stays short (Intuit documents no limit, and several clients
report failures for very long query strings).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["in_list", "in_lists", "quote", "select"]

MAX_VALUES = 50
MAX_CHARS = 3500


def quote(value: str) -> str:
    """A QBO string literal: 'O\\'Brien & Sons'."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def in_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(quote(v) for v in values) + ")"


def in_lists(
    values: Iterable[str], max_values: int = MAX_VALUES, max_chars: int = MAX_CHARS
) -> Iterator[list[str]]:
    """Distinct values (first spelling kept, compared without case as QBO does), in
    chunks of at most ``max_values`` whose quoted form stays under ``max_chars``."""
    seen: set[str] = set()
    chunk: list[str] = []
    size = 0
    for value in values:
        key = value.casefold()
        if key in seen:
            continue
        seen.add(key)
        width = len(quote(value)) + 2
        if chunk and (len(chunk) >= max_values or size + width > max_chars):
            yield chunk
            chunk, size = [], 0
        chunk.append(value)
        size += width
    if chunk:
        yield chunk


def select(
    entity: str,
    *conditions: str,
    order_by: str | None = None,
    start: int | None = None,
    max_results: int = 1000,
) -> str:
    """``SELECT * FROM entity WHERE c1 AND c2 … MAXRESULTS n``; every value in the
    conditions must come from `quote` / `in_list` (QBO has no bind parameters)."""
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    order = f" ORDERBY {order_by}" if order_by else ""
    position = f" STARTPOSITION {start}" if start is not None else ""
    return f"SELECT * FROM {entity}{where}{order}{position} MAXRESULTS {max_results}"  # noqa: S608
