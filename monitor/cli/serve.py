"""`driftmon serve`: the scheduling daemon (see monitor.daemon.service)."""

from __future__ import annotations

import asyncio
import logging

import click

from monitor.cli.context import AppContext


@click.command("serve")
@click.option("--migrate", is_flag=True, help="Apply pending database migrations at start.")
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.pass_obj
def serve_command(app: AppContext, migrate: bool, log_level: str) -> None:
    """Run every target on its schedule, evaluate drift, deliver alerts; serve /healthz and
    /metrics on server.listen. SIGTERM or SIGINT: drain and exit 0. SIGHUP: reload the config
    and probes (an invalid reload is refused and the old config kept).

    Logs go to stderr: JSON lines, or readable lines on a terminal.
    """
    from monitor.daemon.housekeeping import tune_malloc
    from monitor.daemon.logs import setup_logging
    from monitor.daemon.service import Daemon
    from monitor.store.db import check_reachable, make_engine
    from monitor.store.migrate import ensure_schema, upgrade

    setup_logging(getattr(logging, log_level.upper()))
    tune_malloc()  # before the daemon starts threads: keeps its RSS flat over months
    config = app.config
    engine = make_engine(app.storage_url, source=app.storage_source)
    check_reachable(engine)
    if migrate:
        upgrade(engine)
    else:
        ensure_schema(engine)  # empty: initialised; behind or newer: a clear error
    daemon = Daemon(config, engine)
    try:
        code = asyncio.run(daemon.serve())
    finally:
        engine.dispose()
    raise SystemExit(code)
