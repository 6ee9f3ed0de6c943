"""`driftmon baseline show` / `baseline accept`: the reference window and re-baselining."""

from __future__ import annotations

import click

from monitor.cli.context import AppContext
from monitor.cli.drift import check_known
from monitor.cli.output import print_json, print_table


@click.group("baseline")
def baseline_group() -> None:
    """Show or accept the reference window drift is measured against.

    Each (target, probe set) gets an automatic baseline: its first complete runs under one
    model identity. After an intended change (a new model you have checked), `baseline accept`
    makes the newest runs the reference instead.
    """


def _identity(identity: dict[str, str | None] | None) -> str:
    if not identity or not identity.get("model"):
        return "unknown"
    fingerprint = identity.get("fingerprint")
    return f"{identity['model']} ({fingerprint})" if fingerprint else str(identity["model"])


@baseline_group.command("show")
@click.option("--target", metavar="NAME", help="Only this target.")
@click.option("--set", "probe_set", metavar="SET", help="Only this probe set.")
@click.option("--all", "show_all", is_flag=True, help="Also the replaced baselines.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def show_command(
    app: AppContext, target: str | None, probe_set: str | None, show_all: bool, as_json: bool
) -> None:
    """The active baseline of each (target, probe set): runs, identity, source, created."""
    from monitor.drift.queries import baselines

    rows = baselines(app.engine(), target=target, probe_set=probe_set, include_inactive=show_all)
    if not rows:
        check_known(app, target, probe_set)
    if as_json:
        print_json({"baselines": rows})
        return
    if not rows:
        runs = app.config.settings.drift.baseline_runs
        click.echo(f"no baseline yet: one is built from the first {runs} complete runs")
        return
    print_table(
        "baselines",
        ["target", "set", "id", "runs", "identity", "source", "created", "active"],
        [
            (
                r["target"],
                r["probe_set"],
                r["id"],
                ", ".join(str(i) for i in r["runs"]),
                _identity(r["identity"]),
                r["source"],
                r["created_at"][:19].replace("T", " "),
                "yes" if r["active"] else "no",
            )
            for r in rows
        ],
    )


@baseline_group.command("accept")
@click.option("--target", metavar="NAME", help="The target (default: the only one).")
@click.option("--set", "probe_set", metavar="SET", help="The probe set (default: the only one).")
@click.option("--run", "run_id", type=int, metavar="ID", help="The last run (default: newest).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def accept_command(
    app: AppContext, target: str | None, probe_set: str | None, run_id: int | None, as_json: bool
) -> None:
    """Make the runs ending at run ID (default: the newest complete run) the baseline.

    Up to `baseline_runs` complete runs are taken, going back from that run while the model
    identity stays the same. The previous baseline is kept but no longer used; later runs
    are compared with the new one, and persistence counts start again.
    """
    from monitor.drift.engine import accept_baseline
    from monitor.drift.queries import baselines
    from monitor.errors import UsageError
    from monitor.store.queries import run_of_target, target_id
    from monitor.store.states import RunStatus

    engine = app.engine()
    config = app.config.settings.drift
    check_known(app, target, probe_set)
    if run_id is not None:
        found = run_of_target(engine, run_id)
        if found is None:
            raise UsageError(f"no run with id {run_id}")
        run = found.run
        if target is not None and found.target != target:
            raise UsageError(f"run {run_id} is a run of target {found.target!r}")
        if probe_set is not None and run.probe_set != probe_set:
            raise UsageError(f"run {run_id} is a run of probe set {run.probe_set!r}")
        if run.status != RunStatus.COMPLETE:
            raise UsageError(f"run {run_id} is {run.status}: only complete runs can be used")
        target, probe_set, stored_id = found.target, run.probe_set, run.target_id
    else:
        target = target or _only(
            [t.name for t in app.config.settings.targets], "target", "--target"
        )
        probe_set = probe_set or _only(_sets_of(app, target), "probe set", "--set")
        known_id = target_id(engine, target)
        if known_id is None:
            raise UsageError(f"target {target!r} has no runs yet")
        stored_id = known_id
    baseline = accept_baseline(engine, stored_id, probe_set, run_id, config)
    row = next(r for r in baselines(engine, target=target, probe_set=probe_set))
    if as_json:
        print_json({"baseline": row})
        return
    runs = ", ".join(str(i) for i in baseline.run_ids)
    short = len(baseline.run_ids) < config.baseline_runs
    click.echo(
        f"baseline {baseline.id} for {target}/{probe_set} accepted: run(s) {runs}"
        f" ({_identity(row['identity'])})"
        + (
            f"; {len(baseline.run_ids)} of {config.baseline_runs} runs, as earlier runs have"
            " another model identity or none judged"
            if short
            else ""
        )
    )
    click.echo("later runs are compared with it; persistence counts start again")


def _only(names: list[str], what: str, option: str) -> str:
    from monitor.errors import UsageError

    if len(names) == 1:
        return names[0]
    if not names:
        raise UsageError(f"no {what} configured")
    raise UsageError(f"several {what}s ({', '.join(sorted(names))}): choose one with {option}")


def _sets_of(app: AppContext, target: str) -> list[str]:
    for t in app.config.settings.targets:
        if t.name == target:
            return list(t.probe_sets or [p.name for p in app.probe_sets])
    return [p.name for p in app.probe_sets]
