"""`driftmon run`: one replay now."""

from __future__ import annotations

import asyncio
import sys
import time
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.context import AppContext
from monitor.cli.drift import EXIT_DRIFT, record_json, summary_line
from monitor.cli.output import fmt_rate, print_json
from monitor.cli.startup import kept_for_the_command
from monitor.store.states import RunStatus

# `run` exits with this when provider calls failed: always when every call of a run failed
# (an outage), with --fail-on-error when any did.
EXIT_CALLS_FAILED = 4

if TYPE_CHECKING:
    from monitor.drift.engine import Evaluator
    from monitor.drift.queries import EvaluationRecord
    from monitor.replay import Job
    from monitor.runner import Runner, RunOutcome


@click.command("run")
@click.option("--target", "target", metavar="NAME", help="Only this target.")
@click.option("--set", "probe_set", metavar="SET", help="Only this probe set.")
@click.option("--samples", type=click.IntRange(1, 1000), help="Samples per probe (overrides).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--fail-on-drift", is_flag=True, help="Exit 3 when any quality metric drifted.")
@click.option(
    "--fail-on-error",
    is_flag=True,
    help="Exit 4 when any provider call failed (without it, only when every call of a run did).",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Send nothing: print the calls, tokens and request params a run would use.",
)
@click.pass_obj
def run_command(
    app: AppContext,
    target: str | None,
    probe_set: str | None,
    samples: int | None,
    as_json: bool,
    fail_on_drift: bool,
    fail_on_error: bool,
    dry_run: bool,
) -> None:
    """Replay probes now: send, judge and store every result, then evaluate drift.

    Results are committed as they arrive. A run whose process was killed is resumed by the
    next run of the same probes: only missing samples are sent and nothing is stored twice.
    Each complete run is compared with its baseline (built from the first complete runs).

    Exits 4 when every call of a run failed (the provider is down or unreachable), or with
    --fail-on-error when any call failed; 3 with --fail-on-drift when a quality metric drifted.
    When both apply, 4 wins: drift measured on a failing provider means little. The results
    are stored and the summary printed either way.
    """
    with kept_for_the_command():
        from monitor.replay import runner_for, select_jobs

        jobs = select_jobs(
            app.config,
            app.probe_sets,
            target=target,
            probe_set=probe_set,
            check_secrets=not dry_run,
        )
        if not dry_run:
            runner = runner_for(app.config, app.engine())
    if dry_run:
        _dry_run(app, jobs, samples, as_json)
        return
    interactive = sys.stderr.isatty() and not as_json
    with ExitStack() as stack:
        evaluator = _prestart_statistics(app, jobs, stack)
        outcomes = _replay(runner, jobs, samples, interactive)
        complete = [o.id for o in outcomes if o.status == RunStatus.COMPLETE]
        drift, failed = _evaluate(app, complete, evaluator)
    delivery = _deliver(app)  # what this run decided to say, now rather than later
    if as_json:
        print_json({"runs": [_run_json(o, drift.get(o.id)) for o in outcomes], "alerts": delivery})
    else:
        for o in outcomes:
            _print_run(o, drift.get(o.id))
        if delivery is not None and (delivery["sent"] or delivery["errors"]):
            click.echo(
                f"alerts: {delivery['sent']} sent, {delivery['retrying']} to retry, "
                f"{delivery['failed']} failed"
            )
    for error in (delivery or {}).get("errors") or []:
        click.echo(f"driftmon: warning: alert delivery: {error}", err=True)
    for o in outcomes:
        if all_calls_failed(o):
            click.echo(
                f"driftmon: error: run {o.id} {o.target}/{o.probe_set}: all {o.results} calls "
                f"failed ({_error_classes(o)}): is the provider down or unreachable?",
                err=True,
            )
    code = exit_code(
        outcomes,
        drifted=any(r is not None and r.drifted for r in drift.values()),
        evaluation_failed=failed,
        fail_on_drift=fail_on_drift,
        fail_on_error=fail_on_error,
    )
    if code:
        click.get_current_context().exit(code)


def exit_code(
    outcomes: list[RunOutcome],
    *,
    drifted: bool,
    evaluation_failed: bool,
    fail_on_drift: bool,
    fail_on_error: bool,
) -> int:
    """The exit code of `run`, the first that applies: 1 an evaluation failed (the results are
    stored, the drift statistics could not be computed); 4 every call of a run failed, or with
    --fail-on-error any call did; 3 with --fail-on-drift, drift; else 0. Calls come before
    drift: verdicts measured on a failing provider mean little."""
    if evaluation_failed:
        return 1
    if any(all_calls_failed(o) for o in outcomes) or (
        fail_on_error and any(o.errors for o in outcomes)
    ):
        return EXIT_CALLS_FAILED
    if fail_on_drift and drifted:
        return EXIT_DRIFT
    return 0


def all_calls_failed(outcome: RunOutcome) -> bool:
    """The run got no output at all: every call it stored is an error (an outage)."""
    return outcome.results > 0 and outcome.errors == outcome.results


def _replay(
    runner: Runner, jobs: list[Job], samples: int | None, interactive: bool
) -> list[RunOutcome]:
    from monitor.replay import run_jobs

    if not interactive:
        return asyncio.run(run_jobs(runner, jobs, samples=samples))
    from rich.progress import Progress, TaskID

    with Progress(transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def progress(job: Job, done: int, total: int) -> None:
            key = f"{job.target.name}/{job.probe_set.name}"
            if key not in tasks:
                tasks[key] = bar.add_task(key, total=total)
            bar.update(tasks[key], completed=done)

        return asyncio.run(run_jobs(runner, jobs, samples=samples, progress=progress))


def _prestart_statistics(app: AppContext, jobs: list[Job], stack: ExitStack) -> Evaluator | None:
    """A child that loads the statistics while the requests run, when some run will be
    compared with a complete baseline; None (evaluate in this process, if ever) otherwise."""
    from monitor.daemon.stats_worker import PrestartedEvaluator
    from monitor.drift.engine import baseline_ready

    drift = app.config.settings.drift
    if not any(baseline_ready(app.engine(), j.target.name, j.probe_set.name, drift) for j in jobs):
        return None
    try:
        return stack.enter_context(PrestartedEvaluator())
    except OSError:  # no process to spare (limits): the statistics load here, after the run
        return None


def _dry_run(app: AppContext, jobs: list[Job], samples: int | None, as_json: bool) -> None:
    """What a run would send and cost, against today's budget, with the request field each
    param becomes and the params the model is known to refuse; nothing is sent or stored."""
    from monitor.cli.output import print_table
    from monitor.daemon.budget import estimate, spent_today
    from monitor.store.models import utcnow

    rows: list[dict[str, Any]] = []
    previews: dict[str, tuple[dict[str, str | None], list[str]]] = {}
    for job in jobs:
        guess = estimate(app.engine(), job.target, job.probe_set, samples)
        calls, tokens = spent_today(app.engine(), job.target.name, utcnow())
        if job.target.name not in previews:
            previews[job.target.name] = _params_preview(app, job)
        params_sent, warnings = previews[job.target.name]
        rows.append(
            {
                "target": job.target.name,
                "probe_set": job.probe_set.name,
                "calls": guess.calls,
                "estimated_tokens": guess.tokens,
                "estimate_basis": guess.basis,
                "used_today": {"calls": calls, "tokens": tokens},
                "daily_calls": job.target.daily_calls,
                "daily_tokens": job.target.daily_tokens,
                "params_sent": params_sent,
                "warnings": warnings,
            }
        )
    if as_json:
        print_json({"dry_run": rows})
        return
    print_table(
        "Dry run: nothing is sent",
        ["target / set", "calls", "est. tokens", "used today", "budget", "estimate from"],
        [
            [
                f"{r['target']} / {r['probe_set']}",
                r["calls"],
                r["estimated_tokens"],
                f"{r['used_today']['calls']} calls, {r['used_today']['tokens']} tokens",
                f"{r['daily_calls'] or '–'} calls, {r['daily_tokens'] or '–'} tokens",
                r["estimate_basis"],
            ]
            for r in rows
        ],
    )
    for target, (params_sent, warnings) in previews.items():
        sent = ", ".join(f"{name} → {field or '(not sent)'}" for name, field in params_sent.items())
        click.echo(f"{target} params: {sent or 'none'}")
        for warning in warnings:
            click.echo(f"warning: {warning}")


def _params_preview(app: AppContext, job: Job) -> tuple[dict[str, str | None], list[str]]:
    """The request field each of the target's params becomes, and its known rejections."""
    from monitor.providers.preview import known_rejections, request_fields

    target = job.target
    fields = request_fields(
        target.kind,
        target.params,
        base_url=target.base_url,
        token_limit_param=target.token_limit_param,
    )
    settings = app.config.target(target.name)
    warnings = []
    for rejection in known_rejections(
        target.kind, target.model, target.params, token_limit_param=target.token_limit_param
    ):
        if rejection.setting is not None:
            index = app.config.settings.targets.index(settings)
            origin: tuple[int | str, ...] | None = ("targets", index, rejection.setting)
        else:
            origin = app.config.param_origin(settings, rejection.param)
        where = app.config.describe_location(origin) if origin else None
        if rejection.fix is not None:
            advice = rejection.fix
        elif origin is not None and origin[0] == "defaults":
            advice = (
                f"remove [defaults].params.{rejection.param} and set it only on the "
                "targets that take it"
            )
        else:
            advice = f"remove params.{rejection.param}"
        place = f" ({where.split(' ', 1)[0]})" if where else ""
        warnings.append(f"target {target.name}: {rejection.problem}; {advice}{place}")
    return fields, warnings


def _evaluate(
    app: AppContext, run_ids: list[int], evaluator: Evaluator | None
) -> tuple[dict[int, EvaluationRecord | None], bool]:
    """Drift and alerts for each complete run. A failure is reported and does not hide the
    other runs."""
    from monitor.after_run import evaluate_and_alert
    from monitor.alerts.manager import AlertPolicy

    policy = AlertPolicy.from_settings(app.config.settings.alerts)

    records: dict[int, EvaluationRecord | None] = {}
    failed = False
    for run_id in run_ids:
        try:
            records[run_id] = evaluate_and_alert(
                app.engine(), run_id, app.config.settings.drift, policy, evaluator=evaluator
            )
        except Exception as exc:  # any bug or database error in one evaluation, reported
            click.echo(
                f"driftmon: error: drift evaluation of run {run_id} failed: {exc!r}", err=True
            )
            failed = True
    return records, failed


def _deliver(app: AppContext) -> dict[str, Any] | None:
    """Send what the outbox holds and is due, within the delivery budget; a summary, or None
    without a notifier."""
    from monitor.after_run import DELIVERY_BUDGET, deliver, notifier_for

    notifier = notifier_for(app.config)
    if notifier is None:
        return None
    report = deliver(app.engine(), notifier, deadline=time.monotonic() + DELIVERY_BUDGET)
    return {
        "sent": report.sent,
        "retrying": report.retrying,
        "failed": report.failed,
        "errors": report.errors,
    }


def _run_json(outcome: RunOutcome, record: EvaluationRecord | None) -> dict[str, Any]:
    return outcome.as_json() | {
        "all_failed": all_calls_failed(outcome),
        "drift": record_json(record) if record else None,
    }


def _error_classes(o: RunOutcome) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(o.error_classes.items()))


def _print_run(o: RunOutcome, record: EvaluationRecord | None) -> None:
    identity = o.model or "?"
    if o.fingerprint:
        identity += f" ({o.fingerprint})"
    errors = _error_classes(o)
    click.echo(
        f"run {o.id} {o.target}/{o.probe_set}: {o.status}{' (resumed)' if o.resumed else ''}"
        f" — {o.results} results, {o.passed} passed, {o.failed} failed, {o.errors} errors"
        f"{f' [{errors}]' if errors else ''}; pass rate {fmt_rate(o.pass_rate)};"
        f" model {identity}"
    )
    if record is not None:
        click.echo(summary_line(record))
