"""The daemon's housekeeping, each a plain function on an engine: return freed memory, checkpoint
SQLite's write-ahead log, prune what is older than the retention."""

from __future__ import annotations

import ctypes
import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.store.db import session_scope
from monitor.store.models import Baseline, DeliveryAttempt, Notification, Result

log = logging.getLogger("driftmon.daemon")


def release_free_memory() -> bool:
    """Hand memory the process has freed back to the system (glibc's `malloc_trim`).

    A daemon that runs for months otherwise keeps, in fragmented malloc arenas, every page it
    once used; bench/soak.py shows the difference. False where there is no glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    trim = getattr(libc, "malloc_trim", None)
    if trim is None:
        return False
    trim(0)
    return True


def checkpoint_wal(engine: Engine) -> tuple[int, int, int]:
    """Copy SQLite's write-ahead log into the database and truncate it: (busy, log pages,
    pages moved), as `PRAGMA wal_checkpoint` answers. On a raw connection: inside the
    transaction our engines begin (BEGIN IMMEDIATE) SQLite refuses to checkpoint."""
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        row = cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        cursor.close()
    finally:
        raw.close()
    busy, pages, moved = row
    return int(busy), int(pages), int(moved)


def prune(engine: Engine, now: datetime, retention_s: float) -> int:
    """Delete results, sent messages and delivery attempts older than the retention; results
    of runs in an active baseline are kept (the baseline is still compared against)."""
    cutoff = now - timedelta(seconds=retention_s)
    with Session(engine) as s:
        keep: set[int] = set()
        for run_ids in s.execute(select(col(Baseline.run_ids)).where(col(Baseline.active))):
            keep.update(run_ids[0])
    with session_scope(engine) as s:
        query = delete(Result).where(col(Result.created_at) < cutoff)
        if keep:
            query = query.where(col(Result.run_id).not_in(keep))
        deleted = int(s.execute(query).rowcount)  # type: ignore[attr-defined]
        old = select(col(Notification.id)).where(col(Notification.status) == "sent",
                                                 col(Notification.created_at) < cutoff)  # fmt: skip
        s.execute(delete(DeliveryAttempt).where(col(DeliveryAttempt.notification_id).in_(old)))
        s.execute(delete(Notification).where(col(Notification.id).in_(old)))
    if deleted:
        log.info("pruned %d results older than %s", deleted, cutoff.isoformat(),
                 extra={"event": "pruned", "results": deleted})  # fmt: skip
    return deleted
