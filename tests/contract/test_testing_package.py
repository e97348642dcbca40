"""`billsync.testing` is usable from an installed billsync: it loads the core and
pytest, nothing of the rest of billsync and nothing of this repository's tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

LOADED = (
    "import sys, billsync.testing\n"
    "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in ('billsync', 'tests'))))"
)
WITHOUT_PYTEST = "import sys\nsys.modules['pytest'] = None\nimport billsync.testing"


def _python(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_the_suite_loads_the_core_and_nothing_else_of_billsync(tmp_path: Path) -> None:
    result = _python(LOADED, tmp_path)  # outside the checkout: no `tests` package
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.split()
    assert "billsync.testing.target" in loaded and "billsync.core.protocols" in loaded
    outside = [
        m
        for m in loaded
        if m != "billsync" and not m.startswith(("billsync.core", "billsync.testing"))
    ]
    assert outside == []


def test_without_pytest_the_import_names_the_extra(tmp_path: Path) -> None:
    result = _python(WITHOUT_PYTEST, tmp_path)
    assert result.returncode == 1
    assert "billsync.testing runs under pytest: pip install 'billsync[testing]'" in result.stderr
