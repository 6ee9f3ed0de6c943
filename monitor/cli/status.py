"""`driftmon status`: the state of the service, read from the database (so it works from any
shell or host that can reach it) plus the schedule computed from the config."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import click

from monitor.cli.context import AppContext
from monitor.cli.output import fmt_rate, iso, print_json, print_table, safe_text

ALIVE_WITHIN = timedelta(seconds=45)  # three missed heartbeats (every 10 s) and a margin


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def status_command(app: AppContext, as_json: bool) -> None:
    """Last and next run per target and set, model identities, open alerts, the outbox and
    the daemons' heartbeats."""
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from sqlmodel import col

    from monitor.alerts.outbox import outbox_depth
    from monitor.daemon.schedule import check_schedules
    from monitor.drift.queries import identity_label
    from monitor.replay import select_jobs
    from monitor.store.models import (
        Alert,
        DaemonInstance,
        ModelIdentity,
        Notification,
        Run,
        Target,
        utcnow,
    )

    now = utcnow()
    jobs = select_jobs(app.config, app.probe_sets, check_secrets=False)
    cadences = check_schedules(app.config)
    with Session(app.engine()) as s:
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
            for d in s.execute(
                select(DaemonInstance)
                .where(col(DaemonInstance.stopped_at).is_(None))
                .order_by(col(DaemonInstance.id))
            ).scalars()
        ]
        targets: list[dict[str, Any]] = []
        for job in jobs:
            name, set_name = job.target.name, job.probe_set.name
            last = (
                s.execute(
                    select(Run)
                    .join(Target, col(Target.id) == col(Run.target_id))
                    .where(col(Target.name) == name, col(Run.probe_set) == set_name)
                    .order_by(col(Run.id).desc())
                    .limit(1)
                )
                .scalars()
                .first()
            )
            identity = None
            if last is not None and last.identity_id is not None:
                found = s.get(ModelIdentity, last.identity_id)
                identity = found and identity_label(found.model, found.fingerprint)
            when = cadences[name]
            next_run = when.next_start(now)
            last_json = None
            if last is not None:
                judged = last.passed + last.failed
                last_json = {
                    "id": last.id,
                    "status": last.status,
                    "trigger": last.trigger,
                    "started_at": iso(last.started_at),
                    "finished_at": iso(last.finished_at),
                    "pass_rate": last.passed / judged if judged else None,
                    "errors": last.errors,
                    "note": last.note,
                }
            targets.append(
                {
                    "target": name,
                    "probe_set": set_name,
                    "schedule": when.describe,
                    "last_run": last_json,
                    "next_run_at": iso(next_run),
                    "identity": identity,
                }
            )
        open_alerts = [
            {
                "id": a.id,
                "target": t,
                "probe_set": a.probe_set,
                "family": a.family,
                "state": a.state,
                "metrics": a.metrics,
                "opened_at": iso(a.opened_at),
            }
            for a, t in s.execute(
                select(Alert, col(Target.name))
                .join(Target, col(Target.id) == col(Alert.target_id))
                .where(col(Alert.state) != "resolved")
                .order_by(col(Alert.id))
            ).all()
        ]
        depth = outbox_depth(s)
        failed = [
            {"id": n.id, "kind": n.kind, "target": n.target, "last_error": n.last_error}
            for n in s.execute(
                select(Notification)
                .where(col(Notification.status) == "failed")
                .order_by(col(Notification.id))
            ).scalars()
        ]
    outbox = {
        "pending": depth.get("pending", 0),
        "failed": depth.get("failed", 0),
        "failed_messages": failed,
    }
    if as_json:
        print_json(
            {"daemons": daemons, "targets": targets, "alerts": open_alerts, "outbox": outbox}
        )
        return
    _print(daemons, targets, open_alerts, outbox)


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
    for n in outbox["failed_messages"]:
        click.echo(
            f"  message {n['id']} ({n['kind']}, {safe_text(n['target'])}) failed: "
            f"{safe_text(n['last_error'] or '', 200)}"
        )
