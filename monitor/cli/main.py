"""The `driftmon` entry point: global options, command groups, and exit codes.

Exit codes: 0 success; 1 runtime failure; 2 bad usage, config or probe files, or a database
that cannot be opened or written as configured; 3 drift found with --fail-on-drift; 4 provider
calls failed (`run`: every call of a run, or any with --fail-on-error). Command modules are
imported only when their group is used, so `driftmon --help` does not pay for SQLAlchemy,
scipy or the report code.
"""

from __future__ import annotations

import importlib
import sys

import click

from monitor import __version__
from monitor.cli.context import AppContext

# command name -> (module, attribute); loaded on first use.
COMMANDS: dict[str, tuple[str, str, str]] = {
    "init": ("monitor.cli.setup", "init_command", "Write a starter config and probe set."),
    "config": ("monitor.cli.setup", "config_group", "Check and show the configuration."),
    "db": ("monitor.cli.db", "db_group", "Apply or show database migrations."),
    "probes": ("monitor.cli.probes", "probes_group", "List, show, validate and edit probes."),
    "targets": ("monitor.cli.targets", "targets_group", "List targets; ping them live."),
    "run": ("monitor.cli.runs", "run_command", "Replay probes now: send, judge, store."),
    "drift": ("monitor.cli.drift", "drift_command", "Show the latest drift verdicts."),
    "alerts": ("monitor.cli.alerts", "alerts_group", "Alert states, silences, a test message."),
    "baseline": ("monitor.cli.baseline", "baseline_group", "Show or accept the reference window."),
    "power": ("monitor.cli.power", "power_command", "Sample size needed to detect a change."),
    "backtest": (
        "monitor.cli.backtest",
        "backtest_command",
        "Run the detector over recorded outputs of two model versions.",
    ),
    "serve": (
        "monitor.cli.serve",
        "serve_command",
        "Run the daemon: scheduled runs, alerts, health.",
    ),
    "status": ("monitor.cli.status", "status_command", "Last and next runs, alerts, daemons."),
    "report": ("monitor.cli.report", "report_command", "Write a self-contained HTML report."),
    "simulate": ("monitor.cli.simulate", "simulate_command", "Serve the simulated provider."),
    "demo": (
        "monitor.cli.demo",
        "demo_command",
        "End-to-end demonstration on the embedded default.",
    ),
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = COMMANDS.get(cmd_name)
        if entry is None:
            return None
        module = importlib.import_module(entry[0])
        command: click.Command = getattr(module, entry[1])
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Short help from the table, so --help imports no command module.
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][2]) for name in sorted(COMMANDS)])


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    metavar="PATH",
    envvar="DRIFTMON_CONFIG",
    help="Config file (default: ./driftmon.toml, then config/driftmon.toml).",
)
@click.option("--db", "db_url", metavar="URL", help="Database URL; overrides storage.url.")
@click.version_option(__version__, prog_name="driftmon")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, db_url: str | None) -> None:
    """driftmon: catch silent behaviour changes in hosted LLMs."""
    ctx.obj = AppContext(config_path=config_path, db_url=db_url)


def main(argv: list[str] | None = None) -> None:
    from monitor.errors import DriftmonError

    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        code = cli.main(args=argv, prog_name="driftmon", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(2 if isinstance(exc, click.UsageError) else exc.exit_code)
    except DriftmonError as exc:
        click.echo(f"driftmon: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        # Database trouble that may pass (unreachable, locked) is a runtime failure, not a
        # crash: one line, exit 1. What no retry fixes (a missing folder, a read-only file, an
        # unknown role) is a StorageSetupError raised by the engine (monitor.store.db), exit 2.
        # Anything else is a bug: traceback.
        if type(exc).__module__.startswith(("sqlalchemy", "psycopg", "sqlite3")):
            detail = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            click.echo(f"driftmon: error: database: {detail}", err=True)
            sys.exit(1)
        raise
    sys.exit(code if isinstance(code, int) else 0)
