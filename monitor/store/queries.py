"""Read-only queries the CLI shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.store.models import ProbeVersion, Result, Run, Target


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
                func.sum(case((col(Result.verdict) == "pass", 1), else_=0)),
                func.sum(case((col(Result.verdict) != "error", 1), else_=0)),
                func.sum(case((col(Result.verdict) == "error", 1), else_=0)),
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
    with Session(engine) as s:
        rows = s.execute(
            select(
                col(ProbeVersion.version),
                col(ProbeVersion.created_at),
                func.count(col(Result.id)),
                func.sum(case((col(Result.verdict) == "pass", 1), else_=0)),
                func.sum(case((col(Result.verdict) != "error", 1), else_=0)),
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
    with Session(engine) as s:
        return s.get(Run, run_id)
