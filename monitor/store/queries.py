"""Read-only queries the CLI shows: each opens its own short session and returns rows or small
dataclasses, so the commands never touch SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.store.models import (
    DaemonInstance,
    ModelIdentity,
    ProbeVersion,
    Result,
    Run,
    Target,
)
from monitor.store.states import ResultVerdict


@dataclass(frozen=True)
class PassRate:
    passed: int
    judged: int
    errors: int

    @property
    def rate(self) -> float | None:
        return self.passed / self.judged if self.judged else None


def last_pass_rates(
    engine: Engine, set_name: str | None = None
) -> dict[tuple[str, str, str], PassRate]:
    """(set, probe id, version) -> pass rate in the latest run that included it (any target)."""
    with Session(engine) as s:
        latest = (
            select(col(Result.probe_version_id), func.max(col(Result.run_id)).label("run_id"))
            .group_by(col(Result.probe_version_id))
            .subquery()
        )
        query = (
            select(
                col(ProbeVersion.set_name),
                col(ProbeVersion.probe_id),
                col(ProbeVersion.version),
                func.sum(case((col(Result.verdict) == ResultVerdict.PASS, 1), else_=0)),
                func.sum(case((col(Result.verdict) != ResultVerdict.ERROR, 1), else_=0)),
                func.sum(case((col(Result.verdict) == ResultVerdict.ERROR, 1), else_=0)),
            )
            .join(
                latest,
                (latest.c.probe_version_id == col(Result.probe_version_id))
                & (latest.c.run_id == col(Result.run_id)),
            )
            .join(ProbeVersion, col(ProbeVersion.id) == col(Result.probe_version_id))
            .group_by(
                col(ProbeVersion.set_name), col(ProbeVersion.probe_id), col(ProbeVersion.version)
            )
        )
        if set_name:
            query = query.where(col(ProbeVersion.set_name) == set_name)
        rows = s.execute(query).all()
    return {
        (r[0], r[1], r[2]): PassRate(int(r[3] or 0), int(r[4] or 0), int(r[5] or 0)) for r in rows
    }


@dataclass(frozen=True)
class VersionHistory:
    version: str
    first_seen: datetime
    results: int
    passed: int
    judged: int


def probe_versions(engine: Engine, set_name: str, probe_id: str) -> list[VersionHistory]:
    """Every stored version of one probe, oldest first, with its result counts."""
    with Session(engine) as s:
        rows = s.execute(
            select(
                col(ProbeVersion.version),
                col(ProbeVersion.created_at),
                func.count(col(Result.id)),
                func.sum(case((col(Result.verdict) == ResultVerdict.PASS, 1), else_=0)),
                func.sum(case((col(Result.verdict) != ResultVerdict.ERROR, 1), else_=0)),
            )
            .outerjoin(Result, col(Result.probe_version_id) == col(ProbeVersion.id))
            .where(col(ProbeVersion.set_name) == set_name, col(ProbeVersion.probe_id) == probe_id)
            .group_by(col(ProbeVersion.id), col(ProbeVersion.version), col(ProbeVersion.created_at))
            .order_by(col(ProbeVersion.created_at))
        ).all()
    return [
        VersionHistory(r[0], r[1], int(r[2] or 0), int(r[3] or 0), int(r[4] or 0)) for r in rows
    ]


@dataclass(frozen=True)
class RecentResult:
    created_at: datetime
    target: str
    run_id: int
    sample_index: int
    verdict: str
    reason: str | None
    format_kind: str | None
    output: str | None
    error_class: str | None
    output_mode: str | None
    tool_name: str | None
    reasoning_tokens: int | None
    cached_tokens: int | None


def recent_results(
    engine: Engine, set_name: str, probe_id: str, limit: int = 10
) -> list[RecentResult]:
    """The probe's newest results over all its versions and targets, newest first."""
    with Session(engine) as s:
        rows = s.execute(
            select(
                col(Result.created_at),
                col(Target.name),
                col(Result.run_id),
                col(Result.sample_index),
                col(Result.verdict),
                col(Result.reason),
                col(Result.format_kind),
                col(Result.output),
                col(Result.error_class),
                col(Result.output_mode),
                col(Result.tool_name),
                col(Result.reasoning_tokens),
                col(Result.cached_tokens),
            )
            .join(ProbeVersion, col(ProbeVersion.id) == col(Result.probe_version_id))
            .join(Target, col(Target.id) == col(Result.target_id))
            .where(col(ProbeVersion.set_name) == set_name, col(ProbeVersion.probe_id) == probe_id)
            .order_by(col(Result.id).desc())
            .limit(limit)
        ).all()
    return [RecentResult(*tuple(r)) for r in rows]


def run_rows(engine: Engine, run_id: int) -> Run | None:
    """The run row; None for an unknown id."""
    with Session(engine) as s:
        return s.get(Run, run_id)


def target_id(engine: Engine, name: str) -> int | None:
    """The stored target's row id; None when no run of that name was ever recorded."""
    with Session(engine) as s:
        found: int | None = s.execute(
            select(col(Target.id)).where(col(Target.name) == name)
        ).scalar_one_or_none()
    return found


def target_names(engine: Engine) -> set[str]:
    """Every target name the database holds (targets removed from the config included)."""
    with Session(engine) as s:
        return set(s.execute(select(col(Target.name))).scalars())


@dataclass(frozen=True)
class RunOfTarget:
    run: Run
    target: str


def run_of_target(engine: Engine, run_id: int) -> RunOfTarget | None:
    """The run with its target's name; None for an unknown id."""
    with Session(engine) as s:
        row = s.execute(
            select(Run, col(Target.name))
            .join(Target, col(Target.id) == col(Run.target_id))
            .where(col(Run.id) == run_id)
        ).first()
    return None if row is None else RunOfTarget(row[0], row[1])


def running_daemons(engine: Engine) -> list[DaemonInstance]:
    """Daemons that have not recorded a clean stop, oldest first (alive or not: the caller
    judges their heartbeats)."""
    with Session(engine) as s:
        return list(
            s.execute(
                select(DaemonInstance)
                .where(col(DaemonInstance.stopped_at).is_(None))
                .order_by(col(DaemonInstance.id))
            ).scalars()
        )


@dataclass(frozen=True)
class LastRun:
    run: Run
    identity: ModelIdentity | None  # the model identity the run saw; None before any answer


def last_runs(engine: Engine, pairs: Sequence[tuple[str, str]]) -> dict[tuple[str, str], LastRun]:
    """(target, probe set) -> its newest run, in any status; pairs never run are left out."""
    found: dict[tuple[str, str], LastRun] = {}
    with Session(engine) as s:
        for name, set_name in pairs:
            run = (
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
            if run is None:
                continue
            identity = None if run.identity_id is None else s.get(ModelIdentity, run.identity_id)
            found[(name, set_name)] = LastRun(run, identity)
    return found
