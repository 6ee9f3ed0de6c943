"""The run lifecycle: open (claiming a scheduled slot, or resuming a run whose process died),
close with its counts, and the skipped run a budget leaves in a slot. Result batches and the
samples a resumed run already holds are in monitor.store.writes (`insert_results`,
`done_samples`).

A scheduled slot is claimed by inserting the run that holds it: `Run.slot` is unique, so of two
processes claiming the same slot exactly one commits and the other gets IntegrityError, on
SQLite and PostgreSQL alike. Each function here is one transaction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import Engine, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.store.db import session_scope
from monitor.store.models import ModelIdentity, Result, Run, utcnow
from monitor.store.processes import owner_id, owner_is_dead
from monitor.store.states import ResultVerdict, RunStatus, RunTrigger


class OpenedRun(NamedTuple):
    id: int
    resumed: bool  # an earlier run of the same plan, carried on: some samples are stored


def open_run(
    engine: Engine,
    *,
    target_id: int,
    probe_set: str,
    plan_hash: str,
    planned: int,
    trigger: RunTrigger,
    slot: str | None,
    samples: int,
) -> OpenedRun:
    """Open a run of (target, set), or resume one that is still marked running but whose
    process died.

    A dead run with the same plan and slot (both None for manual runs) is taken over and
    resumed. A dead run with another plan is closed as interrupted and, when it held this
    slot, gives the slot up to the new run. A run whose owner is alive is left alone.

    Raises IntegrityError when another process holds `slot`: nothing is then written.
    """
    now = utcnow()
    with session_scope(engine) as s:
        stale = (
            s.execute(
                select(Run).where(
                    col(Run.target_id) == target_id,
                    col(Run.probe_set) == probe_set,
                    col(Run.status) == RunStatus.RUNNING,
                )
            )
            .scalars()
            .all()
        )
        for run in stale:
            if not owner_is_dead(run.owner, now - run.heartbeat_at):
                continue
            # Same plan and same slot: carry on where it stopped, sending only the missing
            # samples.
            if run.plan_hash == plan_hash and run.slot == slot:
                run.owner, run.heartbeat_at = owner_id(), now
                run.note = "resumed after its process stopped"
                assert run.id is not None
                return OpenedRun(run.id, True)
            run.status, run.finished_at = RunStatus.INTERRUPTED, now
            run.note = "its process stopped; the probe plan changed before it was resumed"
            if run.slot == slot:
                run.slot = None  # give its slot to the run that replaces it
        run = Run(
            target_id=target_id,
            probe_set=probe_set,
            trigger=trigger,
            slot=slot,
            samples=samples,
            planned=planned,
            plan_hash=plan_hash,
            owner=owner_id(),
            started_at=now,
            heartbeat_at=now,
        )
        s.add(run)
        s.flush()
        assert run.id is not None
        return OpenedRun(run.id, False)


@dataclass(frozen=True)
class ClosedRun:
    """A closed run's counts, and the model identity most of its results came from."""

    results: int
    passed: int
    failed: int
    errors: int
    model: str | None
    fingerprint: str | None
    error_classes: dict[str, int] = field(default_factory=dict)


def close_run(engine: Engine, run_id: int, status: RunStatus) -> ClosedRun:
    """Set a run's final status, finish time, verdict counts and identity (the one most of
    its results report), from the results it stored."""
    with session_scope(engine) as s:
        verdicts = dict(
            s.execute(
                select(col(Result.verdict), func.count())
                .where(col(Result.run_id) == run_id)
                .group_by(col(Result.verdict))
            ).all()
        )
        error_classes = dict(
            s.execute(
                select(col(Result.error_class), func.count())
                .where(col(Result.run_id) == run_id, col(Result.verdict) == ResultVerdict.ERROR)
                .group_by(col(Result.error_class))
            ).all()
        )
        identity_counts = Counter(
            dict(
                s.execute(
                    select(col(Result.identity_id), func.count())
                    .where(col(Result.run_id) == run_id, col(Result.identity_id).is_not(None))
                    .group_by(col(Result.identity_id))
                ).all()
            )
        )
        identity_id = identity_counts.most_common(1)[0][0] if identity_counts else None
        passed = verdicts.get(ResultVerdict.PASS, 0)
        failed = verdicts.get(ResultVerdict.FAIL, 0)
        errors = verdicts.get(ResultVerdict.ERROR, 0)
        s.execute(
            update(Run)
            .where(col(Run.id) == run_id)
            .values(
                status=status,
                finished_at=utcnow(),
                passed=passed,
                failed=failed,
                errors=errors,
                identity_id=identity_id,
            )
        )
        identity = s.get(ModelIdentity, identity_id) if identity_id else None
    return ClosedRun(
        results=sum(verdicts.values()),
        passed=passed,
        failed=failed,
        errors=errors,
        model=identity.model or None if identity else None,
        fingerprint=identity.fingerprint or None if identity else None,
        error_classes={str(k): v for k, v in error_classes.items()},
    )


def run_in_slot(engine: Engine, slot: str) -> Run | None:
    """The run holding a scheduled slot (running, finished, or skipped), if any."""
    with Session(engine) as s:
        return s.execute(select(Run).where(col(Run.slot) == slot)).scalars().first()


def record_skipped_run(
    engine: Engine,
    *,
    target_id: int,
    probe_set: str,
    slot: str,
    note: str,
    now: datetime,
    also: Callable[[Session], object] | None = None,
) -> bool:
    """Claim a slot with a run that was not run (status `skipped`, no results), `note` saying
    why; `also` writes in the same transaction (the notice that announces it). False, and
    nothing written, when another process holds the slot."""
    try:
        with session_scope(engine) as s:
            s.add(
                Run(
                    target_id=target_id,
                    probe_set=probe_set,
                    status=RunStatus.SKIPPED,
                    trigger=RunTrigger.SCHEDULE,
                    slot=slot,
                    planned=0,
                    owner=owner_id(),
                    started_at=now,
                    finished_at=now,
                    heartbeat_at=now,
                    note=note[:1000],
                )
            )
            if also is not None:
                also(s)
    except IntegrityError:
        return False
    return True


class ResultStat(NamedTuple):
    verdict: str
    error_class: str | None
    latency_ms: float | None


def result_stats(engine: Engine, run_id: int) -> list[ResultStat]:
    """Verdict, error class and latency of every result of a run (the daemon's metrics)."""
    with Session(engine) as s:
        rows = s.execute(
            select(col(Result.verdict), col(Result.error_class), col(Result.latency_ms)).where(
                col(Result.run_id) == run_id
            )
        ).all()
    return [ResultStat(*row) for row in rows]
