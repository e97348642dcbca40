"""No vendor is named outside the connectors and the sandbox (issue 18), but where
docs/vendor-names.md says why: the core, engine, ledger, CLI, server, ops, configuration
and mapping code are searched, and the list may only shrink."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
LIST = ROOT / "docs" / "vendor-names.md"
VENDOR = re.compile(r"salesforce|quickbooks|stripe|intuit", re.IGNORECASE)
AREAS = (
    "billsync/core",
    "sync/engine",
    "sync/ledger",
    "sync/cli",
    "sync/server",
    "sync/ops",
    "config",
    "mappings",
)
"""Searched recursively; the modules directly in sync/ are searched too."""
SCOPES = ("whole file", "whole directory")
LINES_WITH = "lines with:"
STATUSES = ("justified", "pending")


@dataclass(frozen=True)
class Entry:
    path: str
    scope: str
    status: str

    def covers(self, path: str, line: str) -> bool:
        if self.path.endswith("/"):
            return path.startswith(self.path)
        if path != self.path:
            return False
        if self.scope.startswith(LINES_WITH):
            wanted = [w.strip().lower() for w in self.scope[len(LINES_WITH) :].split(";")]
            return any(w and w in line.lower() for w in wanted)
        return True


@dataclass(frozen=True)
class Hit:
    path: str
    number: int
    line: str

    def __str__(self) -> str:
        return f"{self.path}:{self.number}: {self.line.strip()[:100]}"


def parse_entries(text: str) -> list[Entry]:
    """The table's rows: | `path` | scope | status | reason |."""
    entries = []
    for row in text.splitlines():
        cells = [cell.strip() for cell in row.strip().strip("|").split("|")]
        if len(cells) < 4 or not cells[0].startswith("`"):
            continue
        path, scope, status = cells[0].strip("`"), cells[1], cells[2]
        if not (scope in SCOPES or scope.startswith(LINES_WITH)) or status not in STATUSES:
            raise ValueError(f"docs/vendor-names.md: bad row for {path}: {scope!r}, {status!r}")
        if not cells[3]:
            raise ValueError(f"docs/vendor-names.md: {path} gives no reason")
        entries.append(Entry(path, scope, status))
    return entries


def searched_files() -> list[Path]:
    files = [p for area in AREAS for p in (ROOT / area).rglob("*") if p.is_file()]
    files += [p for p in (ROOT / "sync").glob("*.py") if p.is_file()]
    return sorted(p for p in files if "__pycache__" not in p.parts)


def vendor_hits() -> list[Hit]:
    hits = []
    for path in searched_files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue  # not text
        relative = path.relative_to(ROOT).as_posix()
        for number, line in enumerate(text.splitlines(), start=1):
            if VENDOR.search(line):
                hits.append(Hit(relative, number, line))
    return hits


@pytest.fixture(scope="module")
def entries() -> list[Entry]:
    return parse_entries(LIST.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def hits() -> list[Hit]:
    return vendor_hits()


@pytest.mark.parametrize(
    ("entry", "path", "line", "covered"),
    [
        (Entry("a/b.py", "whole file", "justified"), "a/b.py", "Stripe", True),
        (Entry("a/b.py", "whole file", "justified"), "a/bc.py", "Stripe", False),
        (Entry("a/", "whole directory", "justified"), "a/x/y.py", "Stripe", True),
        (Entry("a/", "whole directory", "justified"), "ab/y.py", "Stripe", False),
        (
            Entry("a/b.py", "lines with: amount_due; Balance", "justified"),
            "a/b.py",
            "x balance",
            True,
        ),
        (
            Entry("a/b.py", "lines with: amount_due; Balance", "justified"),
            "a/b.py",
            "Stripe",
            False,
        ),
    ],
)
def test_an_entry_covers_its_path_and_scope(
    entry: Entry, path: str, line: str, covered: bool
) -> None:
    assert entry.covers(path, line) is covered


@pytest.mark.parametrize(
    "row",
    [
        "| `a.py` | some lines | justified | why |",
        "| `a.py` | whole file | maybe | why |",
        "| `a.py` | whole file | justified |  |",
    ],
)
def test_a_malformed_row_is_refused(row: str) -> None:
    with pytest.raises(ValueError):
        parse_entries(row)


def test_no_vendor_name_outside_the_list(entries: list[Entry], hits: list[Hit]) -> None:
    uncovered = [hit for hit in hits if not any(e.covers(hit.path, hit.line) for e in entries)]
    assert not uncovered, (
        "vendor names outside the connectors (make the code vendor-neutral, or add the "
        "file to docs/vendor-names.md with a reason):\n" + "\n".join(map(str, uncovered))
    )


def test_every_listed_entry_still_covers_a_line(entries: list[Entry], hits: list[Hit]) -> None:
    stale = [e.path for e in entries if not any(e.covers(h.path, h.line) for h in hits)]
    assert not stale, f"docs/vendor-names.md lists clean paths; remove them: {stale}"
