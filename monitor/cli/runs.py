"""`driftmon run`: one replay now."""

from __future__ import annotations

import asyncio
import sys
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.context import AppContext
from monitor.cli.drift import EXIT_DRIFT, record_json, summary_line
from monitor.cli.output import fmt_rate, print_json

if TYPE_CHECKING:
    from monitor.drift.queries import EvaluationRecord
    from monitor.runner import RunOutcome


@click.command("run")
@click.option("--target", "target", metavar="NAME", help="Only this target.")
@click.option("--set", "probe_set", metavar="SET", help="Only this probe set.")
@click.option("--samples", type=click.IntRange(1, 1000), help="Samples per probe (overrides).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--fail-on-drift", is_flag=True, help="Exit 3 when any quality metric drifted.")
@click.pass_obj
def run_command(
    app: AppContext,
    target: str | None,
    probe_set: str | None,
    samples: int | None,
    as_json: bool,
    fail_on_drift: bool,
) -> None:
    """Replay probes now: send, judge and store every result, then evaluate drift.

    Results are committed as they arrive. A run whose process was killed is resumed by the
    next run of the same probes: only missing samples are sent and nothing is stored twice.
    Each complete run is compared with its baseline (built from the first complete runs).
    """
    from monitor.replay import Job, run_jobs, runner_for, select_jobs

    jobs = select_jobs(app.config, app.probe_sets, target=target, probe_set=probe_set)
    runner = runner_for(app.config, app.engine())
    interactive = sys.stderr.isatty() and not as_json

    if interactive:
        from rich.progress import Progress, TaskID

        with Progress(transient=True) as bar:
            tasks: dict[str, TaskID] = {}

            def progress(job: Job, done: int, total: int) -> None:
                key = f"{job.target.name}/{job.probe_set.name}"
                if key not in tasks:
                    tasks[key] = bar.add_task(key, total=total)
                bar.update(tasks[key], completed=done)

            outcomes = asyncio.run(run_jobs(runner, jobs, samples=samples, progress=progress))
    else:
        outcomes = asyncio.run(run_jobs(runner, jobs, samples=samples))

    drift, failed = _evaluate(app, [o.id for o in outcomes if o.status == "complete"])
    if as_json:
        print_json({"runs": [_run_json(o, drift.get(o.id)) for o in outcomes]})
    else:
        for o in outcomes:
            _print_run(o, drift.get(o.id))
    context = click.get_current_context()
    if failed:
        context.exit(1)  # the results are stored; the drift statistics could not be computed
    if fail_on_drift and any(r is not None and r.drifted for r in drift.values()):
        context.exit(EXIT_DRIFT)


def _evaluate(
    app: AppContext, run_ids: list[int]
) -> tuple[dict[int, EvaluationRecord | None], bool]:
    """Drift for each complete run. A failure is reported and does not hide the other runs."""
    from monitor.drift.engine import evaluate_run

    records: dict[int, EvaluationRecord | None] = {}
    failed = False
    for run_id in run_ids:
        try:
            records[run_id] = evaluate_run(app.engine(), run_id, app.config.settings.drift)
        except Exception as exc:  # any bug or database error in one evaluation, reported
            click.echo(
                f"driftmon: error: drift evaluation of run {run_id} failed: {exc!r}", err=True
            )
            failed = True
    return records, failed


def _run_json(outcome: RunOutcome, record: EvaluationRecord | None) -> dict[str, Any]:
    return outcome.as_json() | {"drift": record_json(record) if record else None}


def _print_run(o: RunOutcome, record: EvaluationRecord | None) -> None:
    identity = o.model or "?"
    if o.fingerprint:
        identity += f" ({o.fingerprint})"
    errors = ", ".join(f"{k}={v}" for k, v in sorted(o.error_classes.items()))
    click.echo(
        f"run {o.id} {o.target}/{o.probe_set}: {o.status}{' (resumed)' if o.resumed else ''}"
        f" — {o.results} results, {o.passed} passed, {o.failed} failed, {o.errors} errors"
        f"{f' [{errors}]' if errors else ''}; pass rate {fmt_rate(o.pass_rate)};"
        f" model {identity}"
    )
    if record is not None:
        click.echo(summary_line(record))
