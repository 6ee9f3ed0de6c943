"""Writes that the runner and the commands need: get-or-create rows that several processes may
race to create, run bookkeeping, bulk result inserts, and silences.

Get-or-create is written as select, insert, and on a unique-constraint race select again, so it
behaves the same on SQLite and PostgreSQL without dialect-specific upserts.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.store.db import session_scope
from monitor.store.models import (
    ModelIdentity,
    ProbeVersion,
    Result,
    Run,
    Silence,
    Target,
    utcnow,
)


def ensure_target(engine: Engine, *, name: str, kind: str, model: str, base_url: str | None) -> int:
    with session_scope(engine) as s:
        row = s.execute(select(Target).where(col(Target.name) == name)).scalar_one_or_none()
        if row is not None:
            if (row.kind, row.model, row.base_url) != (kind, model, base_url):
                row.kind, row.model, row.base_url = kind, model, base_url
            assert row.id is not None
            return row.id
    try:
        with session_scope(engine) as s:
            row = Target(name=name, kind=kind, model=model, base_url=base_url)
            s.add(row)
            s.flush()
            assert row.id is not None
            return row.id
    except IntegrityError:
        return ensure_target(engine, name=name, kind=kind, model=model, base_url=base_url)


def ensure_probe_versions(
    engine: Engine, versions: Sequence[tuple[str, str, str, dict[str, Any]]]
) -> dict[tuple[str, str, str], int]:
    """(set, probe id, version, definition) -> row id, creating the missing ones."""
    wanted = {(s, p, v): d for s, p, v, d in versions}
    for _attempt in range(3):
        found = _probe_version_ids(engine, list(wanted))
        missing = [k for k in wanted if k not in found]
        if not missing:
            return found
        try:
            with session_scope(engine) as s:
                s.execute(
                    insert(ProbeVersion),
                    [
                        {
                            "set_name": k[0],
                            "probe_id": k[1],
                            "version": k[2],
                            "definition": wanted[k],
                            "created_at": utcnow(),
                        }
                        for k in missing
                    ],
                )
        except IntegrityError:
            continue  # another process created some of them first; read again
    return _probe_version_ids(engine, list(wanted))


def _probe_version_ids(
    engine: Engine, keys: list[tuple[str, str, str]]
) -> dict[tuple[str, str, str], int]:
    sets = {k[0] for k in keys}
    with Session(engine) as s:
        rows = s.execute(
            select(
                col(ProbeVersion.set_name),
                col(ProbeVersion.probe_id),
                col(ProbeVersion.version),
                col(ProbeVersion.id),
            ).where(col(ProbeVersion.set_name).in_(sets))
        ).all()
    wanted = set(keys)
    return {(r[0], r[1], r[2]): r[3] for r in rows if (r[0], r[1], r[2]) in wanted and r[3]}


def ensure_identity(
    engine: Engine, target_id: int, model: str, fingerprint: str, seen_at: datetime
) -> int:
    for _attempt in range(3):
        with session_scope(engine) as s:
            row = s.execute(
                select(ModelIdentity).where(
                    col(ModelIdentity.target_id) == target_id,
                    col(ModelIdentity.model) == model,
                    col(ModelIdentity.fingerprint) == fingerprint,
                )
            ).scalar_one_or_none()
            if row is not None:
                if row.last_seen < seen_at:
                    row.last_seen = seen_at
                assert row.id is not None
                return row.id
        try:
            with session_scope(engine) as s:
                row = ModelIdentity(
                    target_id=target_id,
                    model=model,
                    fingerprint=fingerprint,
                    first_seen=seen_at,
                    last_seen=seen_at,
                )
                s.add(row)
                s.flush()
                assert row.id is not None
                return row.id
        except IntegrityError:
            continue
    raise RuntimeError("could not record model identity")  # pragma: no cover


def insert_results(engine: Engine, run_id: int, rows: list[dict[str, Any]]) -> None:
    """One transaction per batch; also beats the run's heartbeat."""
    if not rows:
        return
    with session_scope(engine) as s:
        s.execute(insert(Result), rows)
        s.execute(update(Run).where(col(Run.id) == run_id).values(heartbeat_at=utcnow()))


def done_samples(engine: Engine, run_id: int) -> set[tuple[int, int]]:
    with Session(engine) as s:
        rows = s.execute(
            select(col(Result.probe_version_id), col(Result.sample_index)).where(
                col(Result.run_id) == run_id
            )
        ).all()
    return {(r[0], r[1]) for r in rows}


def add_silence(
    engine: Engine,
    *,
    target: str,
    metric: str | None,
    reason: str,
    created_by: str,
    created_at: datetime,
    expires_at: datetime,
) -> Silence:
    """Store a silence (metric None: every metric of the target) and return it with its id."""
    with session_scope(engine) as s:
        silence = Silence(
            target=target,
            metric=metric,
            reason=reason,
            created_by=created_by,
            created_at=created_at,
            expires_at=expires_at,
        )
        s.add(silence)
        s.flush()
    return silence


def end_silences(
    engine: Engine, now: datetime, *, silence_id: int | None = None, target: str | None = None
) -> int:
    """End the active silence with this id, or every active silence of this target (give one
    of the two); how many were ended. Expired or already ended silences are left alone."""
    if (silence_id is None) == (target is None):
        raise ValueError("give either silence_id or target")
    which = col(Silence.id) == silence_id if target is None else col(Silence.target) == target
    with session_scope(engine) as s:
        ended: int = s.execute(
            update(Silence)
            .where(which, col(Silence.ended_at).is_(None), col(Silence.expires_at) > now)
            .values(ended_at=now)
        ).rowcount  # type: ignore[attr-defined]
    return ended
