"""The table `make chaos` ends with: per suite, the cases tried and the invariant
violations found.

Tests report into one `Tally` for the session (the ``tally`` fixture). A violation is
recorded *and* fails its test, so the table and the test outcome cannot disagree; a
known, not yet fixed defect is counted apart (its test is a strict xfail).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

SUITES = (
    "crash",
    "vendor faults",
    "concurrency",
    "webhook abuse",
    "bad data",
    "secrets",
    "fuzzing",
    "money lifecycle",
    "security hardening",
)


@dataclass
class SuiteCount:
    tried: int = 0
    violations: list[str] = field(default_factory=list)
    known_defects: list[str] = field(default_factory=list)
    tests: int = 0


class Tally:
    def __init__(self) -> None:
        self._suites: dict[str, SuiteCount] = {}
        self._lock = threading.Lock()

    def _suite(self, suite: str) -> SuiteCount:
        return self._suites.setdefault(suite, SuiteCount())

    def test_started(self, suite: str) -> None:
        with self._lock:
            self._suite(suite).tests += 1

    def tried(self, suite: str, cases: int = 1) -> None:
        with self._lock:
            self._suite(suite).tried += cases

    def violated(self, suite: str, found: Iterable[str]) -> list[str]:
        """Record violations; returns them so the caller can assert on the list."""
        found = list(found)
        with self._lock:
            self._suite(suite).violations.extend(found)
        return found

    def known_defect(self, suite: str, description: str) -> None:
        with self._lock:
            self._suite(suite).known_defects.append(description)

    @property
    def empty(self) -> bool:
        return not self._suites

    def total_violations(self) -> int:
        return sum(len(s.violations) for s in self._suites.values())

    def render(self, size_name: str, seed: int) -> list[str]:
        rows = [("suite", "tests", "cases tried", "violations", "known defects")]
        names = [s for s in SUITES if s in self._suites]
        names += sorted(set(self._suites) - set(SUITES))
        for name in names:
            count = self._suites[name]
            rows.append(
                (
                    name,
                    str(count.tests),
                    str(count.tried),
                    str(len(count.violations)),
                    str(len(count.known_defects)),
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = [f"reliability summary ({size_name} sizes, seed {seed})"]
        for n, row in enumerate(rows):
            cells = [row[0].ljust(widths[0])] + [
                c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
            ]
            lines.append("  " + "  ".join(cells))
            if n == 0:
                lines.append("  " + "  ".join("-" * w for w in widths))
        for name in names:
            for violation in self._suites[name].violations[:20]:
                lines.append(f"  VIOLATION [{name}] {violation}")
            for defect in self._suites[name].known_defects:
                lines.append(f"  known defect [{name}] {defect}")
        return lines
