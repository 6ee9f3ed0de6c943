"""The named reads and writes the commands call (`alerts`, `status`, `baseline accept`,
`report`, `serve`), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import Engine

from monitor.alerts.queries import alerts_overview, failed_messages, open_alerts, outbox_counts
from monitor.errors import StorageError
from monitor.store.db import check_reachable, hide_password, make_engine, session_scope
from monitor.store.models import Alert, DaemonInstance, Notification, utcnow
from monitor.store.queries import (
    last_pass_rates,
    last_runs,
    run_of_target,
    running_daemons,
    target_id,
    target_names,
)
from monitor.store.states import AlertState, NotificationStatus, RunStatus
from monitor.store.writes import add_silence, end_silences, ensure_target
from tests.storage.test_drift_store import World


def _silence(engine: Engine, target: str, metric: str | None, until: timedelta) -> int:
    now = utcnow()
    silence = add_silence(
        engine,
        target=target,
        metric=metric,
        reason="maintenance",
        created_by="ops",
        created_at=now,
        expires_at=now + until,
    )
    assert silence.id is not None
    return silence.id


def _alert(engine: Engine, world: World, run_id: int, state: str, **extra: object) -> int:
    with session_scope(engine) as s:
        alert = Alert(
            target_id=world.target_id,
            probe_set=world.probe_set,
            family="quality",
            state=state,
            metrics=["pass_rate"],
            last_run_id=run_id,
            **extra,
        )
        s.add(alert)
        s.flush()
        assert alert.id is not None
        return alert.id


def _message(engine: Engine, key: str, status: str, alert_id: int | None = None) -> int:
    with session_scope(engine) as s:
        n = Notification(
            dedup_key=key, alert_id=alert_id, kind="drift", target="sim", payload={}, status=status
        )
        s.add(n)
        s.flush()
        assert n.id is not None
        return n.id


def test_silences_end_by_id_or_by_target_and_only_while_active(engine: Engine) -> None:
    first = _silence(engine, "sim", None, timedelta(hours=1))
    _silence(engine, "sim", "format", timedelta(hours=1))
    _silence(engine, "other", None, timedelta(hours=1))
    _silence(engine, "sim", None, timedelta(seconds=-1))  # already expired
    now = utcnow()
    assert end_silences(engine, now, silence_id=first) == 1
    assert end_silences(engine, now, silence_id=first) == 0  # ended already
    assert end_silences(engine, now, target="sim") == 1  # the other active one of sim
    assert end_silences(engine, now, target="sim") == 0
    active = alerts_overview(engine, resolved_since=now, now=utcnow()).silences
    assert [si.target for si in active] == ["other"]
    with pytest.raises(ValueError):
        end_silences(engine, now)


def test_alerts_overview_lists_open_recent_silenced_and_undelivered(engine: Engine) -> None:
    world = World(engine)
    run_id = world.run(world.identity("m", "fp"))
    long_ago = utcnow() - timedelta(days=30)
    firing = _alert(engine, world, run_id, AlertState.FIRING)
    _alert(engine, world, run_id, AlertState.RESOLVED, resolved_at=long_ago)
    recent = _alert(engine, world, run_id, AlertState.RESOLVED, resolved_at=utcnow())
    _message(engine, "a", NotificationStatus.PENDING, firing)
    newest = _message(engine, "b", NotificationStatus.FAILED, firing)
    _message(engine, "c", NotificationStatus.SENT, recent)
    _silence(engine, "sim", "pass_rate", timedelta(hours=1))

    overview = alerts_overview(engine, resolved_since=utcnow() - timedelta(days=7), now=utcnow())
    assert [(a.alert.id, a.target, a.silenced) for a in overview.alerts] == [
        (firing, "sim", True),
        (recent, "sim", False),  # resolved: never shown as silenced
    ]
    last = overview.alerts[0].last_message
    assert last is not None and last.id == newest
    assert [n.dedup_key for n in overview.undelivered] == ["a", "b"]
    assert (overview.outbox.pending, overview.outbox.failed) == (1, 1)

    assert [(a.alert.id, a.target) for a in open_alerts(engine)] == [(firing, "sim")]
    assert [n.id for n in failed_messages(engine)] == [newest]
    assert outbox_counts(engine) == overview.outbox


def test_a_silence_on_another_metric_leaves_the_alert_unsilenced(engine: Engine) -> None:
    world = World(engine)
    _alert(engine, world, world.run(None), AlertState.PENDING)
    _silence(engine, "sim", "format", timedelta(hours=1))
    overview = alerts_overview(engine, resolved_since=utcnow(), now=utcnow())
    assert [a.silenced for a in overview.alerts] == [False]
    assert outbox_counts(engine) == overview.outbox
    assert (overview.outbox.pending, overview.outbox.failed) == (0, 0)


def test_targets_runs_and_their_identities(engine: Engine) -> None:
    assert target_names(engine) == set() and target_id(engine, "sim") is None
    world = World(engine)
    ensure_target(engine, name="other", kind="openai", model="m", base_url=None)
    assert target_names(engine) == {"sim", "other"}
    assert target_id(engine, "sim") == world.target_id

    identity = world.identity("gpt-4o", "fp_1")
    world.run(identity)
    newest = world.run(None, error_rate=1.0, status=RunStatus.INTERRUPTED)
    found = run_of_target(engine, newest)
    assert found is not None and found.target == "sim"
    assert found.run.status == RunStatus.INTERRUPTED
    assert run_of_target(engine, newest + 100) is None

    last = last_runs(engine, [("sim", "invoices"), ("sim", "other-set"), ("other", "invoices")])
    assert list(last) == [("sim", "invoices")]
    assert last["sim", "invoices"].run.id == newest and last["sim", "invoices"].identity is None
    world.run(identity)
    seen = last_runs(engine, [("sim", "invoices")])["sim", "invoices"].identity
    assert seen is not None and (seen.model, seen.fingerprint) == ("gpt-4o", "fp_1")


def test_pass_rates_count_passes_and_leave_errors_out(engine: Engine) -> None:
    world = World(engine)
    world.run(world.identity("m", "fp"), fail_rate=0.0, error_rate=0.5)
    rates = last_pass_rates(engine, "invoices")
    assert rates and all(r.passed == r.judged for r in rates.values())  # nothing failed
    assert sum(r.errors for r in rates.values()) > 0


def test_running_daemons_leave_out_stopped_ones(engine: Engine) -> None:
    def daemon(owner: str, stopped_at: datetime | None) -> None:
        with session_scope(engine) as s:
            s.add(DaemonInstance(owner=owner, host="h", pid=1, version="1", stopped_at=stopped_at))

    daemon("h:1:a", None)
    daemon("h:2:b", utcnow())
    daemon("h:3:c", None)
    assert [d.owner for d in running_daemons(engine)] == ["h:1:a", "h:3:c"]


def test_reachable_database_passes_and_an_absent_one_says_why(engine: Engine) -> None:
    check_reachable(engine)
    absent = make_engine("postgresql://nobody:secret@127.0.0.1:1/none")
    with pytest.raises(StorageError, match="the database does not answer"):
        check_reachable(absent)


def test_hide_password_masks_only_the_password() -> None:
    shown = hide_password("postgresql+psycopg://user:s3cret@db:5432/driftmon")
    assert "s3cret" not in shown and shown.startswith("postgresql+psycopg://user:")
