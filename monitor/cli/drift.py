"""`driftmon drift`: the latest drift verdicts; also the drift output `driftmon run` shares."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.context import AppContext
from monitor.cli.output import print_json, print_table, safe_text
from monitor.drift.present import (
    fmt_effect,
    fmt_value,
    notes_by_reason,
    reason,
    untested_reason,
)

if TYPE_CHECKING:
    from monitor.drift.model import Verdict
    from monitor.drift.queries import EvaluationRecord

EXIT_DRIFT = 3


def verdict_json(record: EvaluationRecord, verdict: Verdict) -> dict[str, Any]:
    """One verdict in the shape SPEC.md fixes for `drift --json`, plus extra keys."""
    return {
        "target": record.target,
        "probe_set": record.probe_set,
        "metric": verdict.metric,
        # Operational metrics (errors, latency) are reported but are never drift.
        "drifted": verdict.drifted and str(verdict.family) == "quality",
        "p_value": verdict.p_value,
        "p_adjusted": verdict.p_adjusted,
        "effect": verdict.effect,
        "baseline": {"n": verdict.baseline_n, "value": verdict.baseline_value},
        "current": {"n": verdict.current_n, "value": verdict.current_value},
        "identity_change": record.identity_change,
        "state": str(verdict.state),
        "family": str(verdict.family),
        "test": verdict.test,
        "effect_name": verdict.effect_name,
        "streak": verdict.streak,
        # The alarm rule: drifted once evidence reaches threshold (and the effect matters).
        "evidence": verdict.evidence,
        "threshold": verdict.threshold,
        # Run-to-run variance over sampling variance in the baseline (None: not estimated).
        "dispersion": verdict.dispersion,
        "note": verdict.note,
        "evaluation_id": record.evaluation_id,
        "run_ids": list(record.run_ids),
    }


def record_json(record: EvaluationRecord) -> dict[str, Any]:
    """The `drift` object of each run in `run --json`."""
    return {
        "evaluation_id": record.evaluation_id,
        "status": record.status,
        "drifted": [v.metric for v in record.drifted],
        "verdicts": [verdict_json(record, v) for v in record.verdicts],
        "baseline_id": record.baseline_id,
        "run_ids": list(record.run_ids),
        "identity_change": record.identity_change,
        "paired_probes": record.paired_probes,
        "excluded_probes": record.excluded_probes,
        "notes": list(record.notes),
    }


def summary_line(record: EvaluationRecord) -> str:
    """One line per run for `driftmon run`."""
    if record.evaluation_id is None:
        return f"  drift: {record.status.replace('_', ' ')}"
    change = record.identity_change
    model = f"; model changed {change['from']} → {change['to']}" if change else ""
    if record.drifted:
        metrics = ", ".join(v.metric for v in record.drifted)
        return f"  drift: DRIFT in {metrics} (evaluation {record.evaluation_id}{model})"
    if untested(record):
        found = untested_reason(record.verdicts) or (record.notes[0] if record.notes else None)
        why = f": {found}" if found else ""
        return f"  drift: not tested, too little data{why} (evaluation {record.evaluation_id})"
    pending = [v.metric for v in record.verdicts if str(v.state) == "pending"]
    more = f"; pending: {', '.join(pending)}" if pending else ""
    return (
        f"  drift: no drift in {len(record.verdicts)} metrics "
        f"(evaluation {record.evaluation_id}{more}{model})"
    )


def untested(record: EvaluationRecord) -> bool:
    """No quality metric had enough data for a test: "no drift" would claim too much."""
    quality = [v for v in record.verdicts if str(v.family) == "quality"]
    return all(str(v.state) == "insufficient_data" for v in quality)


def print_record(record: EvaluationRecord) -> None:
    runs = ", ".join(str(r) for r in record.run_ids)
    click.echo(
        f"{record.target}/{record.probe_set}: evaluation {record.evaluation_id} of run(s) {runs}"
        f" against baseline {record.baseline_id}; {record.paired_probes} paired probes"
        + (f", {record.excluded_probes} on one side only" if record.excluded_probes else "")
    )
    if record.identity_change:
        change = record.identity_change
        click.echo(f"model changed: {safe_text(change['from'])} → {safe_text(change['to'])}")
    drifted = [v.metric for v in record.drifted]
    if drifted:
        click.echo(f"DRIFT: {', '.join(drifted)}")
    elif untested(record):
        found = untested_reason(record.verdicts)
        click.echo("not tested: too little data" + (f": {found}" if found else " (see the notes)"))
    else:
        pending = [v.metric for v in record.verdicts if str(v.state) == "pending"]
        click.echo(f"no drift yet; pending: {', '.join(pending)}" if pending else "no drift")
    for note in record.notes:
        click.echo(f"note: {safe_text(note)}")
    rank = {"drifted": 0, "pending": 1, "no_meaningful_change": 2, "not_significant": 3}
    # Quality first, most serious first; operational metrics (errors, latency) at the end.
    verdicts = sorted(
        record.verdicts,
        key=lambda v: (str(v.family) == "operational", rank.get(str(v.state), 4)),
    )
    print_table(
        None,
        ["metric", "state", "baseline → current", "effect", "p_adj", "n"],
        [
            (
                v.metric + (" (ops)" if str(v.family) == "operational" else ""),
                str(v.state).replace("_", " ").upper()
                if v.metric in drifted
                else str(v.state).replace("_", " "),
                f"{fmt_value(v.baseline_value, v.effect_name)} → "
                f"{fmt_value(v.current_value, v.effect_name)}",
                fmt_effect(v),
                "–" if v.p_adjusted is None else f"{v.p_adjusted:.3g}",
                f"{v.baseline_n} → {v.current_n}",
            )
            for v in verdicts
        ],
    )
    print_reasons(verdicts)


def print_reasons(verdicts: Sequence[Verdict]) -> None:
    """Why verdicts are what they are where the table cannot say: each note once, with the
    metrics it applies to (all of them, typically, when there was too little data)."""
    grouped = notes_by_reason(verdicts)
    pending = [v for v in verdicts if str(v.state) == "pending" and v.threshold is not None]
    if not grouped and not pending:
        return
    click.echo("why:")
    for note, metrics in grouped:
        which = "all metrics" if len(metrics) == len(verdicts) else ", ".join(metrics)
        click.echo(f"  {which}: {safe_text(reason(note), 500)}")
    if pending:
        # Significant now, but drift needs the evidence to build up to the alarm threshold.
        shown = ", ".join(f"{v.metric} {v.evidence or 0:.2f}/{v.threshold:.2f}" for v in pending)
        click.echo(f"  pending, evidence so far / needed to count as drift: {shown}")


def baseline_progress(app: AppContext, target: str | None, probe_set: str | None) -> list[str]:
    """For each configured (target, probe set) with no evaluation yet: how far its baseline is."""
    from monitor.drift.queries import baseline_progress as progress

    needed = app.config.settings.drift.baseline_runs
    known = sorted(p.name for p in app.probe_sets)
    pairs = [
        (t.name, name)
        for t in app.config.settings.targets
        if target is None or t.name == target
        for name in t.probe_sets or known
        if probe_set is None or name == probe_set
    ]
    lines = []
    for (name, set_name), done in progress(app.engine(), pairs).items():
        status = (
            "baseline complete; the next run is compared with it"
            if done is None
            else f"building baseline: {min(done, needed)} of {needed} complete runs "
            "(drift.baseline_runs)"
        )
        lines.append(f"{name}/{set_name}: {status}")
    return lines


def check_known(app: AppContext, target: str | None, probe_set: str | None) -> None:
    """Exit 2 for a target or set that neither the config nor the database knows."""
    from monitor.errors import UsageError
    from monitor.store.queries import target_id

    configured = {t.name for t in app.config.settings.targets}
    if target is not None and target not in configured and target_id(app.engine(), target) is None:
        known = ", ".join(t.name for t in app.config.settings.targets) or "none"
        raise UsageError(f"no target named {target!r} (targets: {known})")
    if probe_set is not None and probe_set not in {p.name for p in app.probe_sets}:
        known = ", ".join(sorted(p.name for p in app.probe_sets)) or "none"
        raise UsageError(f"no probe set named {probe_set!r} (sets: {known})")


@click.command("drift")
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option("--set", "probe_set", metavar="SET", help="Only this probe set.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--fail-on-drift", is_flag=True, help="Exit 3 when any quality metric drifted.")
@click.pass_obj
def drift_command(
    app: AppContext, target: str | None, probe_set: str | None, as_json: bool, fail_on_drift: bool
) -> None:
    """The latest drift verdicts of each (target, probe set) against its active baseline.

    A metric drifts when its change is significant after correction for the number of
    metrics, larger than the effect floor, and persists over consecutive evaluations.
    Errors and latency are shown as operational metrics and never count as drift.
    """
    from monitor.drift.queries import latest_evaluations

    records = latest_evaluations(app.engine(), target=target, probe_set=probe_set)
    if not records:
        # Only now look the names up: a set whose files were removed still has its history.
        check_known(app, target, probe_set)
    if as_json:
        print_json(
            {
                "verdicts": [verdict_json(r, v) for r in records for v in r.verdicts],
                "evaluations": [
                    {"target": r.target, "probe_set": r.probe_set}
                    | {k: v for k, v in record_json(r).items() if k != "verdicts"}
                    for r in records
                ],
            }
        )
    elif not records:
        click.echo("no drift evaluations yet: a baseline is built from the first complete runs")
        for line in baseline_progress(app, target, probe_set):
            click.echo(line)
    else:
        for index, record in enumerate(records):
            if index:
                click.echo()
            print_record(record)
    if fail_on_drift and any(r.drifted for r in records):
        click.get_current_context().exit(EXIT_DRIFT)
