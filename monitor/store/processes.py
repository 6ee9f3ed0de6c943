"""Processes in the database: who owns a running run and whether that process is still alive,
and the registry of `driftmon serve` processes (registration, heartbeat, clean stop) that
`status` reads from any shell or host.

An owner is `host:pid`. On its own host a process is checked directly; elsewhere it is judged
by the age of the heartbeat it writes, so a run on a host that vanished is taken over after
`STALE_OWNER` of silence.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta

from sqlalchemy import Engine, update
from sqlmodel import col

from monitor import __version__
from monitor.store.db import session_scope
from monitor.store.models import DaemonInstance, Run
from monitor.store.states import RunStatus

STALE_OWNER = timedelta(minutes=10)  # a run on another host is dead after this much silence


def owner_id() -> str:
    """This process as a row owner: `host:pid`."""
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_is_dead(owner: str, heartbeat_age: timedelta) -> bool:
    """Whether the process that owns a running run is gone (checked directly on this host,
    by heartbeat age elsewhere)."""
    host, _, pid = owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # it exists and belongs to someone else: alive
        return False
    return heartbeat_age > STALE_OWNER


def register_daemon(
    engine: Engine, *, owner: str, listen: str | None, jobs: int, now: datetime
) -> None:
    """Record a starting `driftmon serve` process (its owner is unique: one row per start)."""
    with session_scope(engine) as s:
        s.add(
            DaemonInstance(
                owner=owner,
                host=socket.gethostname(),
                pid=os.getpid(),
                version=__version__,
                listen=listen,
                started_at=now,
                heartbeat_at=now,
                jobs=jobs,
            )
        )


def beat(engine: Engine, *, daemon_owner: str, jobs: int, now: datetime) -> None:
    """One transaction: the daemon's own heartbeat, and that of every run this process has in
    flight, so they stay visibly alive to other hosts (see STALE_OWNER)."""
    with session_scope(engine) as s:
        s.execute(
            update(DaemonInstance)
            .where(col(DaemonInstance.owner) == daemon_owner)
            .values(heartbeat_at=now, jobs=jobs)
        )
        s.execute(
            update(Run)
            .where(col(Run.owner) == owner_id(), col(Run.status) == RunStatus.RUNNING)
            .values(heartbeat_at=now)
        )


def unregister_daemon(engine: Engine, owner: str, now: datetime) -> None:
    """Mark a daemon stopped cleanly: `status` no longer counts it, however fresh its beat."""
    with session_scope(engine) as s:
        s.execute(
            update(DaemonInstance).where(col(DaemonInstance.owner) == owner).values(stopped_at=now)
        )
