"""Build the wheel and install it into a fresh venv: the Dockerfile's steps, minus Docker.

No Docker engine runs in CI, so this is how the image recipe is exercised: the builder
stage builds the project wheel, the runtime stage installs it with its dependencies and
runs ``billsync``. Here the wheel is built from a copy of the source tree (so the
working tree gets no build/ or egg-info litter), installed with the ``postgres`` extra
like the image, and its console script is run.

Dependencies come from the package index (pip's cache makes re-runs quick), hence slow.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("connectors", "mappings", "sync", "config", "sandbox")
COMMANDS = (
    "run",
    "serve",
    "demo",
    "sandbox",
    "failures",
    "reconcile",
    "status",
    "report",
    "mappings",
    "auth",
)
# Mirrors [tool.setuptools.package-data] in pyproject.toml, plus the modules.
SHIPPED_SUFFIXES = {".py", ".yaml", ".yml", ".ini", ".mako", ".json", ".html"}
SHIPPED_NAMES = {"py.typed"}
NOT_COPIED_ANYWHERE = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
NOT_COPIED_AT_TOP = {".git", ".venv", "build", "dist", "tests", "bench", "deploy"}


def _project() -> dict[str, object]:
    with (REPO_ROOT / "pyproject.toml").open("rb") as fh:
        return tomllib.load(fh)["project"]  # type: ignore[no-any-return]


def _ignore(directory: str, names: list[str]) -> set[str]:
    at_top = Path(directory) == REPO_ROOT
    return {
        n
        for n in names
        if n in NOT_COPIED_ANYWHERE
        or n.endswith((".egg-info", ".pyc", ".db", ".db-wal", ".db-shm"))
        or (at_top and n in NOT_COPIED_AT_TOP)
    }


def _clean_env() -> dict[str, str]:
    """The environment minus anything that could make the venv see the source tree."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP"}
    }
    env.update(PYTHONNOUSERSITE="1", NO_COLOR="1", TERM="dumb", COLUMNS="200")
    return env


def _run(args: list[str | Path], *, cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return result


def _describe(result: subprocess.CompletedProcess[str]) -> str:
    return f"{' '.join(result.args)} -> exit {result.returncode}\n{result.stdout}{result.stderr}"


@pytest.fixture(scope="module")
def source_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("wheel") / "src"
    shutil.copytree(REPO_ROOT, target, ignore=_ignore, symlinks=True)
    return target


@pytest.fixture(scope="module")
def wheel(source_copy: Path) -> Path:
    outdir = source_copy.parent / "dist"
    result = _run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", outdir, source_copy],
        cwd=source_copy.parent,
        timeout=600,
    )
    assert result.returncode == 0, _describe(result)
    wheels = sorted(outdir.glob("billsync-*.whl"))
    assert len(wheels) == 1, wheels
    return wheels[0]


@pytest.fixture(scope="module")
def venv_bin(wheel: Path) -> Path:
    venv = wheel.parent.parent / "venv"
    result = _run([sys.executable, "-m", "venv", venv], cwd=venv.parent, timeout=300)
    assert result.returncode == 0, _describe(result)
    bin_dir = venv / "bin"
    # Same requirement as the image: the project plus the postgres extra.
    result = _run(
        [bin_dir / "python", "-m", "pip", "install", "--quiet", f"{wheel}[postgres]"],
        cwd=venv.parent,
        timeout=1200,
    )
    assert result.returncode == 0, _describe(result)
    return bin_dir


def test_wheel_ships_every_package_and_data_file(wheel: Path, source_copy: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())

    # Installed names live under one namespace: nothing generic (config, sync) lands at
    # the top of site-packages, where it would collide with other software.
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"billsync"}, f"top-level names in {wheel.name}: {sorted(top)}"
    for package in PACKAGES:
        assert f"billsync/{package}/__init__.py" in names, f"{package} missing from {wheel.name}"
    # Real packages under billsync/ (not links): the core, and the contract suite that
    # connector packages run from an installed billsync (docs/connectors.md).
    for package in ("core", "testing"):
        assert f"billsync/{package}/__init__.py" in names, f"{package} missing from {wheel.name}"

    expected = {
        "billsync/" + path.relative_to(source_copy).as_posix()
        for package in PACKAGES
        for path in (source_copy / package).rglob("*")
        if path.is_file() and (path.suffix in SHIPPED_SUFFIXES or path.name in SHIPPED_NAMES)
    }
    missing = sorted(expected - names)
    assert not missing, f"source files not in {wheel.name}: {missing}"

    # Named because losing them breaks installs in ways unit tests do not see.
    migrations = "billsync/sync/ledger/migrations/"
    if (source_copy / migrations).is_dir():
        in_source = sorted(p.name for p in (source_copy / migrations).iterdir())
        assert f"{migrations}env.py" in names, (
            f"no Alembic env.py in the wheel (source: {in_source})"
        )
        assert any(n.startswith(migrations) and n.endswith(".mako") for n in names), (
            f"no Alembic script.py.mako in the wheel (source: {in_source})"
        )
    for data_file in ("config/billsync.example.yaml", "mappings/default.yaml"):
        if (source_copy / data_file).is_file():
            assert f"billsync/{data_file}" in names


def test_wheel_declares_the_console_script(wheel: Path) -> None:
    project = _project()
    with zipfile.ZipFile(wheel) as zf:
        (entry_points,) = [n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt")]
        text = zf.read(entry_points).decode()
    scripts = project["scripts"]
    assert isinstance(scripts, dict)
    assert f"billsync = {scripts['billsync']}" in text


def test_installed_package_is_the_wheel_not_the_source_tree(venv_bin: Path) -> None:
    result = _run(
        [venv_bin / "python", "-c", "import billsync.sync as s; print(s.__file__)"],
        cwd=venv_bin.parent.parent,
        timeout=60,
    )
    assert result.returncode == 0, _describe(result)
    assert Path(result.stdout.strip()).is_relative_to(venv_bin.parent), result.stdout


def test_billsync_help_lists_every_command(venv_bin: Path) -> None:
    result = _run([venv_bin / "billsync", "--help"], cwd=venv_bin.parent.parent, timeout=120)
    assert result.returncode == 0, _describe(result)
    # A command name opens its row: "  run  ..." (click) or "│ run  ..." (rich).
    missing = [
        command
        for command in COMMANDS
        if not re.search(rf"^\s*[│|]?\s{{0,3}}{command}(\s|$)", result.stdout, re.MULTILINE)
    ]
    assert not missing, f"billsync --help does not list {missing}:\n{result.stdout}"


def test_billsync_version(venv_bin: Path) -> None:
    result = _run([venv_bin / "billsync", "--version"], cwd=venv_bin.parent.parent, timeout=120)
    assert result.returncode == 0, _describe(result)
    assert str(_project()["version"]) in result.stdout
