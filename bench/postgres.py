"""A PostgreSQL server for the scale-out scenario: given by URL, or a throwaway cluster.

``BILLSYNC_BENCH_POSTGRES_URL`` (or the test suite's ``BILLSYNC_TEST_POSTGRES_URL``)
names a server the benchmark may create databases on. Without one, a cluster is made
the way `.ci/run` makes it: the newest ``/usr/lib/postgresql/<v>/bin``, ``initdb`` in
a short temporary directory owned by an unprivileged user (``initdb`` refuses root; as
root the packaged ``postgres`` user owns it), listening on 127.0.0.1 and a free port,
stopped and removed on exit. Unlike CI's, this cluster keeps PostgreSQL's default
durability (fsync, synchronous commit): a ledger benchmark with fsync off would flatter
every commit.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa

URL_ENVS = ("BILLSYNC_BENCH_POSTGRES_URL", "BILLSYNC_TEST_POSTGRES_URL")


class PostgresUnavailable(RuntimeError):
    pass


def pg_bin() -> Path:
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: [int(x) for x in p.parent.parent.name.split(".") if x.isdigit()],
    )
    if not found:
        raise PostgresUnavailable(
            "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin; install the "
            f"postgresql package or set {URL_ENVS[0]} to a server URL"
        )
    return found[-1].parent


@contextmanager
def postgres_server() -> Iterator[str]:
    """A SQLAlchemy URL (psycopg) of a server the caller may create databases on."""
    for name in URL_ENVS:
        if os.environ.get(name):
            yield os.environ[name]
            return
    with _throwaway_cluster() as url:
        yield url


def _run(owner: str | None, cwd: Path, *command: str, check: bool = True) -> None:
    """A PostgreSQL binary, as the cluster's owner when we are root."""
    argv = ["runuser", "-u", owner, "--", *command] if owner else list(command)
    subprocess.run(argv, cwd=cwd, check=check, capture_output=True, text=True)


@contextmanager
def _throwaway_cluster() -> Iterator[str]:
    binaries = pg_bin()
    owner = "postgres" if os.geteuid() == 0 else None
    if owner is not None:
        try:
            pwd.getpwnam(owner)
        except KeyError:
            raise PostgresUnavailable(
                f"running as root and there is no '{owner}' user to own the cluster; set "
                f"{URL_ENVS[0]} or run as an unprivileged user"
            ) from None
    # A Unix socket path must stay short: keep the cluster directly under /tmp.
    home = Path(tempfile.mkdtemp(prefix="bsbench-pg-", dir="/tmp"))
    home.chmod(0o755)
    data = home / "data"
    if owner is not None:
        shutil.chown(home, owner)
    port = _free_port()
    try:
        try:
            _run(
                owner,
                home,
                str(binaries / "initdb"),
                *(f"--pgdata={data}", "--auth=trust", "--username=postgres"),
                *("--encoding=UTF8", "--no-locale", "--no-instructions"),
            )
            options = f"-c listen_addresses=127.0.0.1 -p {port} -k {home}"
            _run(
                owner,
                home,
                str(binaries / "pg_ctl"),
                *("start", "-D", str(data), "-l", str(home / "postgres.log"), "-w", "-t", "60"),
                *("-o", options),
            )
        except subprocess.CalledProcessError as exc:
            raise PostgresUnavailable(
                f"could not start a throwaway PostgreSQL cluster: {exc.stderr or exc.stdout}"
            ) from None
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        if (data / "postmaster.pid").exists():
            _run(
                owner,
                home,
                str(binaries / "pg_ctl"),
                "stop",
                "-D",
                str(data),
                "-m",
                "fast",
                check=False,
            )
        shutil.rmtree(home, ignore_errors=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_version(url: str) -> str:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(sa.text("SHOW server_version")).scalar())
    finally:
        engine.dispose()


@contextmanager
def fresh_database(server_url: str) -> Iterator[str]:
    """An empty database on the server for one scenario run, dropped afterwards."""
    name = f"bsbench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.engine.make_url(server_url).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        for _ in range(3):
            try:
                with admin.connect() as conn:
                    conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
                break
            except sa.exc.OperationalError:
                time.sleep(1)
        admin.dispose()
