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
from monitor.store.states import NotificationStatus

log = logging.getLogger("driftmon.daemon")


# glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024  # glibc's own initial value, kept fixed from here on


def _glibc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def tune_malloc() -> bool:
    """Set glibc's allocator up for a process that runs for months (`mallopt`); call it before
    the daemon starts its threads. False where there is no glibc.

    - Every malloc of 128 KiB or more gets its own mapping, returned to the system the moment
      it is freed (M_MMAP_THRESHOLD). By default glibc raises this threshold each time such a
      block is freed, up to 32 MB, so that after the first few large blocks later ones are
      carved from the heap instead, where the small allocations that land between them keep
      the freed space from ever being returned.
    - One malloc arena for all threads (M_ARENA_MAX). By default each thread that allocates
      while another holds the lock gets an arena of its own, up to 8 per core, and the free
      space in each is fragmented separately; the daemon's threads do little work each.

    With the defaults the daemon's RSS crept up by about 2 MB per 1,000 runs, with these it
    stays flat: bench/soak.py, docs/operations.md (Memory).
    """
    mallopt = getattr(_glibc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) & bool(mallopt(M_ARENA_MAX, 1))


def release_free_memory() -> bool:
    """Hand memory the process has freed back to the system (glibc's `malloc_trim`).

    A daemon that runs for months otherwise keeps, in fragmented malloc arenas, every page it
    once used; bench/soak.py shows the difference. False where there is no glibc.
    """
    trim = getattr(_glibc(), "malloc_trim", None)
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
        old = select(col(Notification.id)).where(
            col(Notification.status) == NotificationStatus.SENT,
            col(Notification.created_at) < cutoff,
        )
        s.execute(delete(DeliveryAttempt).where(col(DeliveryAttempt.notification_id).in_(old)))
        s.execute(delete(Notification).where(col(Notification.id).in_(old)))
    if deleted:
        log.info(
            "pruned %d results older than %s",
            deleted,
            cutoff.isoformat(),
            extra={"event": "pruned", "results": deleted},
        )
    return deleted
