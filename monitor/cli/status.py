"""`driftmon status`: the state of the service, read from the database (so it works from any
shell or host that can reach it) plus the schedule computed from the config."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

import click

from monitor.cli.context import AppContext
from monitor.cli.output import fmt_rate, iso, print_json, print_table, safe_text

if TYPE_CHECKING:
    from monitor.store.models import Run

ALIVE_WITHIN = timedelta(seconds=45)  # three missed heartbeats (every 10 s) and a margin
RETRY_FAILED_HINT = (
    "Slack refused these for good and they are not sent again on their own: "
    "fix the cause, then `driftmon alerts deliver --retry-failed`"
)


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status_command(app: AppContext, as_json: bool) -> None:
    """Last and next run per target and set, model identities, open alerts, the outbox and
    the daemons' heartbeats."""
    from monitor.alerts.queries import failed_messages, open_alerts, outbox_counts
    from monitor.daemon.schedule import check_schedules
    from monitor.drift.queries import identity_label
    from monitor.replay import select_jobs
    from monitor.store.models import utcnow
    from monitor.store.queries import last_runs, running_daemons

    now = utcnow()
    jobs = select_jobs(app.config, app.probe_sets, check_secrets=False)
    cadences = check_schedules(app.config)
    engine = app.engine()
    daemons = [
        {
            "owner": d.owner,
            "host": d.host,
            "pid": d.pid,
            "version": d.version,
            "listen": d.listen,
            "started_at": iso(d.started_at),
            "heartbeat_at": iso(d.heartbeat_at),
            "jobs": d.jobs,
            "alive": now - d.heartbeat_at <= ALIVE_WITHIN,
        }
        for d in running_daemons(engine)
    ]
    pairs = [(job.target.name, job.probe_set.name) for job in jobs]
    last = last_runs(engine, pairs)
    targets: list[dict[str, Any]] = []
    for name, set_name in pairs:
        when = cadences[name]
        found = last.get((name, set_name))
        seen = found.identity if found is not None else None
        identity = identity_label(seen.model, seen.fingerprint) if seen is not None else None
        targets.append(
            {
                "target": name,
                "probe_set": set_name,
                "schedule": when.describe,
                "last_run": None if found is None else _run_json(found.run),
                "next_run_at": iso(when.next_start(now)),
                "identity": identity,
            }
        )
    open_json = [
        {
            "id": a.alert.id,
            "target": a.target,
            "probe_set": a.alert.probe_set,
            "family": a.alert.family,
            "state": a.alert.state,
            "metrics": a.alert.metrics,
            "opened_at": iso(a.alert.opened_at),
        }
        for a in open_alerts(engine)
    ]
    counts = outbox_counts(engine)
    failed = [
        {"id": n.id, "kind": n.kind, "target": n.target, "last_error": n.last_error}
        for n in failed_messages(engine)
    ]
    outbox = {
        "pending": counts.pending,
        "failed": counts.failed,
        "failed_messages": failed,
        # The newest refusal: what to fix first (they usually share one cause).
        "latest_error": failed[-1]["last_error"] if failed else None,
        "hint": RETRY_FAILED_HINT if failed else None,
    }
    if as_json:
        print_json({"daemons": daemons, "targets": targets, "alerts": open_json, "outbox": outbox})
        return
    _print(daemons, targets, open_json, outbox)


def _run_json(run: Run) -> dict[str, Any]:
    judged = run.passed + run.failed
    return {
        "id": run.id,
        "status": run.status,
        "trigger": run.trigger,
        "started_at": iso(run.started_at),
        "finished_at": iso(run.finished_at),
        "pass_rate": run.passed / judged if judged else None,
        "errors": run.errors,
        "note": run.note,
    }


def _print(
    daemons: list[dict[str, Any]],
    targets: list[dict[str, Any]],
    alerts: list[dict[str, Any]],
    outbox: dict[str, Any],
) -> None:
    if not daemons:
        click.echo("daemon: none running (start one with `driftmon serve`)")
    for d in daemons:
        state = "alive" if d["alive"] else "NOT RESPONDING"
        click.echo(
            f"daemon {d['host']} pid {d['pid']} ({d['version']}): {state}, "
            f"last heartbeat {d['heartbeat_at'][:19]}, {d['jobs']} jobs"
        )
    rows = []
    for t in targets:
        last = t["last_run"]
        rows.append(
            [
                safe_text(f"{t['target']} / {t['probe_set']}"),
                t["schedule"],
                "–" if last is None else f"{last['id']} {last['status']} {last['started_at'][:16]}",
                "–" if last is None else fmt_rate(last["pass_rate"]),
                (t["next_run_at"] or "–")[:16],
                safe_text(t["identity"] or "–", 60),
            ]
        )
    print_table(
        "Targets", ["target / set", "schedule", "last run", "pass", "next run (UTC)", "model"], rows
    )
    if alerts:
        print_table(
            "Open alerts",
            ["id", "target / set", "kind", "state", "metrics"],
            [
                [
                    a["id"],
                    safe_text(f"{a['target']} / {a['probe_set']}"),
                    "outage" if a["family"] == "operational" else "drift",
                    a["state"],
                    safe_text(", ".join(a["metrics"])),
                ]
                for a in alerts
            ],
        )
    else:
        click.echo("open alerts: none")
    click.echo(f"outbox: {outbox['pending']} to send, {outbox['failed']} failed")
    failed = outbox["failed_messages"]
    if failed:
        newest = failed[-1]
        more = len(failed) - 1
        click.echo(
            f"  latest: message {newest['id']} ({newest['kind']}, {safe_text(newest['target'])})"
            f" failed: {safe_text(outbox['latest_error'] or '', 200)}"
            + (f" (and {more} more: `driftmon alerts list`)" if more else "")
        )
        click.echo(f"  {outbox['hint']}")
