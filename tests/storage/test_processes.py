"""The `driftmon serve` registry in monitor.store.processes, on SQLite and PostgreSQL:
registration, the heartbeat (the daemon's and its runs in flight), a clean stop, the ping."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor import __version__
from monitor.store.db import ping, session_scope
from monitor.store.models import DaemonInstance, Run, utcnow
from monitor.store.processes import (
    STALE_OWNER,
    beat,
    owner_id,
    owner_is_dead,
    register_daemon,
    unregister_daemon,
)
from monitor.store.runs import close_run, open_run
from monitor.store.states import RunStatus, RunTrigger
from monitor.store.writes import ensure_target

DAEMON = f"{owner_id()}:1700000000"


def daemon_row(engine: Engine) -> DaemonInstance:
    with Session(engine) as s:
        return s.execute(select(DaemonInstance)).scalar_one()


def new_run(engine: Engine, probe_set: str) -> int:
    target_id = ensure_target(engine, name="sim", kind="openai", model="m", base_url=None)
    return open_run(
        engine,
        target_id=target_id,
        probe_set=probe_set,
        plan_hash="p",
        planned=1,
        trigger=RunTrigger.MANUAL,
        slot=None,
        samples=1,
    ).id


def heartbeats(engine: Engine) -> dict[int | None, object]:
    with Session(engine) as s:
        rows = s.execute(select(col(Run.id), col(Run.heartbeat_at))).all()
    return {run_id: heartbeat_at for run_id, heartbeat_at in rows}


def test_a_daemon_registers_beats_and_stops(engine: Engine) -> None:
    started = utcnow() - timedelta(minutes=5)
    register_daemon(engine, owner=DAEMON, listen="127.0.0.1:9000", jobs=3, now=started)
    row = daemon_row(engine)
    assert (row.host, row.pid, row.version, row.listen, row.jobs) == (
        socket.gethostname(),
        os.getpid(),
        __version__,
        "127.0.0.1:9000",
        3,
    )
    assert row.started_at == row.heartbeat_at == started and row.stopped_at is None

    later = utcnow()
    beat(engine, daemon_owner=DAEMON, jobs=5, now=later)
    row = daemon_row(engine)
    assert (row.heartbeat_at, row.jobs, row.stopped_at) == (later, 5, None)

    unregister_daemon(engine, DAEMON, later)
    assert daemon_row(engine).stopped_at == later


def test_the_heartbeat_keeps_only_this_process_running_runs_alive(engine: Engine) -> None:
    mine, finished, foreign = (new_run(engine, name) for name in ("a", "b", "c"))
    close_run(engine, finished, RunStatus.COMPLETE)
    with session_scope(engine) as s:
        s.execute(update(Run).where(col(Run.id) == foreign).values(owner="elsewhere:1"))
    before = heartbeats(engine)

    now = utcnow() + timedelta(minutes=1)
    beat(engine, daemon_owner=DAEMON, jobs=0, now=now)  # no daemon row: the runs still beat
    after = heartbeats(engine)
    assert after[mine] == now
    assert after[finished] == before[finished]
    assert after[foreign] == before[foreign]


def test_ping_answers(engine: Engine) -> None:
    ping(engine)


def test_an_owner_is_dead_by_its_pid_here_and_by_its_silence_elsewhere() -> None:
    assert not owner_is_dead(owner_id(), STALE_OWNER * 100)  # this process: alive, however quiet
    assert not owner_is_dead("elsewhere:1", STALE_OWNER / 2)
    assert owner_is_dead("elsewhere:1", STALE_OWNER * 2)
