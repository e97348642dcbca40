"""`billsync serve`: the webhook receiver, health, metrics (and the scheduler) under
uvicorn.

One worker runs in this process. ``--workers N`` hands over to uvicorn's process
manager, which imports ``billsync.sync.server.factory:app_from_environment`` in each worker;
the config path and schedule travel in the environment so every worker reads exactly
what this process validated.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer
import uvicorn

from billsync.core.problems import ConfigError, ConfigProblem
from billsync.mappings.loader import MappingError
from billsync.sync.cli.options import settings_for
from billsync.sync.server.cron import CronError, CronSchedule
from billsync.sync.server.ops.auth import token_problem
from billsync.sync.server.protocol import GuardedH11Protocol, connection_limit, raise_fd_limit

GRACEFUL_SHUTDOWN_SECONDS = 30


def serve(
    ctx: typer.Context,
    config: Path | None,
    host: str | None,
    port: int | None,
    workers: int,
    schedule: str | None,
) -> None:
    settings = settings_for(ctx, config)
    problem = token_problem(settings.ops.token)
    if problem is not None:  # before anything listens: exit 2 naming the key
        raise ConfigError([ConfigProblem("configuration", "ops.token", problem)])
    cron = None
    if schedule:
        try:
            cron = CronSchedule.parse(schedule)
        except CronError as exc:
            raise typer.BadParameter(str(exc), param_hint="--schedule") from None
    if workers < 1:
        raise typer.BadParameter("at least one worker", param_hint="--workers")
    # Header deadline and connection bound: see billsync.sync.server.protocol (slowloris).
    fd_limit = raise_fd_limit()
    max_connections = connection_limit(settings.server.max_connections, fd_limit)
    bind_host = host or settings.server.host
    bind_port = port if port is not None else settings.server.port
    options = {
        "host": bind_host,
        "port": bind_port,
        "log_config": None,  # our JSON logging (billsync.core.logs) is already on the root logger
        "access_log": False,  # the receiver logs what matters, without bodies
        "timeout_graceful_shutdown": GRACEFUL_SHUTDOWN_SECONDS,
        "proxy_headers": True,
        "server_header": False,
        "http": GuardedH11Protocol.configured(settings.server.header_timeout_s, max_connections),
    }
    if workers == 1:
        from billsync.sync.server.factory import build_app

        try:
            app = build_app(settings, schedule=cron)
        except MappingError as exc:  # one line a problem, exit 2, as `billsync run` says
            typer.echo(str(exc), err=True)
            raise typer.Exit(2) from None
        except ValueError as exc:  # a connector refusing its settings (e.g. no secret)
            raise ConfigError([ConfigProblem("configuration", "server", str(exc))]) from None
        uvicorn.Server(uvicorn.Config(app, **options)).run()  # type: ignore[arg-type]
        return
    config_path = config or ctx.find_root().obj.get("config")
    if config_path is not None:
        os.environ["BILLSYNC_CONFIG"] = str(Path(config_path).resolve())
    from billsync.sync.server.factory import SCHEDULE_ENV

    if schedule:
        os.environ[SCHEDULE_ENV] = schedule
    options["http"] = (
        "billsync.sync.server.protocol:GuardedH11Protocol"  # configured by each worker
    )
    uvicorn.run(
        "billsync.sync.server.factory:app_from_environment",
        factory=True,
        workers=workers,
        **options,  # type: ignore[arg-type]
    )
