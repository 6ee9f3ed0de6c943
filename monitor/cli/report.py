"""`driftmon report`: one self-contained HTML file with the history, the drifted metrics, the
probes that changed most and the statistics behind each verdict."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from monitor.cli.context import AppContext
from monitor.durations import parse_duration
from monitor.errors import DriftmonError, UsageError


def parse_since(text: str, now: datetime) -> datetime:
    """A duration back from now (7d, 12h) or a date or time (2024-08-01, ISO 8601; UTC unless
    it says otherwise)."""
    try:
        seconds = parse_duration(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.strip())
        except ValueError:
            raise UsageError(
                f"--since: invalid duration or date {text!r}: use e.g. 7d, 12h or 2024-08-01"
            ) from None
        return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    if seconds <= 0:
        raise UsageError("--since must be longer than 0")
    return now - timedelta(seconds=seconds)


def check_target(app: AppContext, target: str) -> None:
    """Exit 2 for a target that neither the database nor the config knows. The database is
    asked first: a report needs no config when `--db` names the database."""
    from monitor.store.queries import target_names

    stored = target_names(app.engine())
    configured: set[str] = set()
    if target not in stored:
        try:
            configured = {t.name for t in app.config.settings.targets}
        except UsageError:
            if app.db_url is None:
                raise
    if target not in stored | configured:
        known = ", ".join(sorted(stored | configured)) or "none"
        raise UsageError(f"no target named {target!r} (targets: {known})")


@click.command("report")
@click.option(
    "--out",
    required=True,
    metavar="FILE.html",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the report (folders are created).",
)
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option(
    "--since",
    default="30d",
    show_default=True,
    metavar="DURATION|DATE",
    help="History to show: a duration back from now (7d, 12h) or a date (2024-08-01).",
)
@click.pass_obj
def report_command(app: AppContext, out: Path, target: str | None, since: str) -> None:
    """Write a self-contained HTML report and print its path.

    The file needs no network: CSS inline, charts as inline SVG, no scripts. It shows the
    pass rate of every (target, probe set) per run with model identity changes and alerts,
    the drifted metrics of the latest evaluation, the probes that changed most with an
    example output before and after, and the statistics behind each verdict.
    """
    now = datetime.now(UTC)
    cutoff = parse_since(since, now)
    if target is not None:
        check_target(app, target)
    from monitor.report.render import write_report

    try:
        path = write_report(app.engine(), out, since=cutoff, target=target, now=now)
    except OSError as exc:
        raise DriftmonError(f"cannot write the report to {out}: {exc.strerror or exc}") from None
    click.echo(str(path))
