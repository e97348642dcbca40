"""Salesforce-like record ids: a 3-character key prefix, 12 more, a 3-character suffix.

Real ids are 15 case-sensitive characters; the 18-character form appends a checksum of
the letter case so that case-insensitive tools can tell ids apart. The API accepts both
forms everywhere an id is expected and always answers with the 18-character one.
"""

from __future__ import annotations

import string
from collections import Counter

_SUFFIX_ALPHABET = string.ascii_uppercase + "012345"
_BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase
_ID_CHARS = frozenset(string.ascii_letters + string.digits)

PREFIXES = {
    "Account": "001",
    "Opportunity": "006",
    "OpportunityLineItem": "00k",
    "Product2": "01t",
    "Organization": "00D",
    "User": "005",
    "QueryLocator": "01g",
}


def checksum(id15: str) -> str:
    """The 3-character case-safe suffix of a 15-character id."""
    suffix = ""
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix += _SUFFIX_ALPHABET[bits]
    return suffix


def is_well_formed(value: str) -> bool:
    return len(value) in (15, 18) and all(char in _ID_CHARS for char in value)


def to18(value: str) -> str:
    return value + checksum(value) if len(value) == 15 else value


class IdFactory:
    """Hands out fresh ids per key prefix; ids never repeat until `reset`."""

    def __init__(self) -> None:
        self._counters: Counter[str] = Counter()

    def reset(self) -> None:
        self._counters.clear()

    def new(self, prefix: str) -> str:
        self._counters[prefix] += 1
        number = self._counters[prefix]
        body = ""
        for _ in range(9):
            number, digit = divmod(number, 62)
            body = _BASE62[digit] + body
        # "5g0" stands where the pod and reserved characters sit in real ids.
        return to18(f"{prefix}5g0{body}")
