"""Reads for the drift engine and the CLI: runs, observations, stored evaluations.

Runs are ordered by id everywhere: ids are handed out when a run starts, so id order is start
order, and a resumed run keeps its place. Only complete runs are ever read here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

from monitor.drift.model import Carry, Family, Observation, State, Verdict
from monitor.store.models import (
    Baseline,
    Evaluation,
    IdentityEvent,
    ModelIdentity,
    Result,
    Run,
    Target,
    VerdictRow,
)
from monitor.store.states import RunStatus

BUILDING = "building_baseline"
EVALUATED = "evaluated"


@dataclass(frozen=True)
class EvaluationRecord:
    """What one evaluation found, or why there is none yet (`status` building_baseline k/n)."""

    target: str
    probe_set: str
    run_id: int  # the run this record was made for (the newest of the window)
    status: str  # "building_baseline k/n" | "evaluated"
    evaluation_id: int | None = None
    baseline_id: int | None = None
    run_ids: tuple[int, ...] = ()
    identity_event_id: int | None = None
    identity_change: dict[str, str] | None = None
    verdicts: tuple[Verdict, ...] = ()
    paired_probes: int = 0
    excluded_probes: int = 0
    notes: tuple[str, ...] = ()
    created_at: datetime | None = None

    @property
    def drifted(self) -> tuple[Verdict, ...]:
        """Quality verdicts that drifted; operational ones (errors, latency) never count."""
        return tuple(v for v in self.verdicts if v.drifted and v.family is Family.QUALITY)


def finite(value: Any) -> Any:
    """NaN and infinities are not JSON (PostgreSQL refuses them): store them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def identity_label(model: str | None, fingerprint: str | None) -> str:
    label = model or "unknown model"
    return f"{label} ({fingerprint})" if fingerprint else label


def identity_change(s: Session, event_id: int | None) -> dict[str, str] | None:
    """{"from": "model (fingerprint)", "to": ...} for an identity event; None without one."""
    if event_id is None:
        return None
    old, new = aliased(ModelIdentity), aliased(ModelIdentity)
    row = s.execute(
        select(col(old.model), col(old.fingerprint), col(new.model), col(new.fingerprint))
        .select_from(IdentityEvent)
        .outerjoin(old, col(old.id) == col(IdentityEvent.from_identity_id))
        .join(new, col(new.id) == col(IdentityEvent.to_identity_id))
        .where(col(IdentityEvent.id) == event_id)
    ).first()
    if row is None:
        return None
    before = identity_label(row[0], row[1]) if row[0] is not None else "unknown"
    return {"from": before, "to": identity_label(row[2], row[3])}


def complete_runs(
    s: Session,
    target_id: int,
    probe_set: str | None,
    *,
    after: int | None = None,
    upto: int | None = None,
    newest: int | None = None,
) -> list[Run]:
    """Complete runs of a target (and set) within (after, upto]: all of them oldest first, or
    the `newest` N newest first."""
    query = select(Run).where(
        col(Run.target_id) == target_id, col(Run.status) == RunStatus.COMPLETE
    )
    if probe_set is not None:
        query = query.where(col(Run.probe_set) == probe_set)
    if after is not None:
        query = query.where(col(Run.id) > after)
    if upto is not None:
        query = query.where(col(Run.id) <= upto)
    if newest is None:
        return list(s.execute(query.order_by(col(Run.id))).scalars())
    return list(s.execute(query.order_by(col(Run.id).desc()).limit(newest)).scalars())


# Observation fields are Result columns of the same name: read exactly those, nothing more.
_OBSERVED = [f.name for f in fields(Observation)]


def load_observations(s: Session, run_ids: Sequence[int]) -> list[Observation]:
    """Every result of the given runs, reduced to what the metrics read: one query."""
    if not run_ids:
        return []
    columns = [col(getattr(Result, name)) for name in _OBSERVED]
    rows = s.execute(select(*columns).where(col(Result.run_id).in_(list(run_ids)))).all()
    observations = []
    for row in rows:
        values = dict(zip(_OBSERVED, row, strict=True))
        if values["checks"] is not None:
            values["checks"] = tuple(values["checks"])
        observations.append(Observation(**values))
    return observations


def active_baseline(s: Session, target_id: int, probe_set: str) -> Baseline | None:
    return s.execute(
        select(Baseline).where(
            col(Baseline.target_id) == target_id,
            col(Baseline.probe_set) == probe_set,
            col(Baseline.active).is_(True),
        )
    ).scalar_one_or_none()


# Verdict fields stored as they are; family and state are stored as their string values.
VERDICT_COLUMNS = [f.name for f in fields(Verdict) if f.name not in ("family", "state")]


def verdicts_of(s: Session, evaluation_id: int) -> tuple[Verdict, ...]:
    rows = s.execute(
        select(VerdictRow)
        .where(col(VerdictRow.evaluation_id) == evaluation_id)
        .order_by(col(VerdictRow.id))
    ).scalars()
    return tuple(
        Verdict(
            family=Family(r.family),
            state=State(r.state),
            **{name: getattr(r, name) for name in VERDICT_COLUMNS},
        )
        for r in rows
    )


def record_of(s: Session, evaluation: Evaluation, target: str) -> EvaluationRecord:
    assert evaluation.id is not None
    return EvaluationRecord(
        target=target,
        probe_set=evaluation.probe_set,
        run_id=evaluation.run_id,
        status=EVALUATED,
        evaluation_id=evaluation.id,
        baseline_id=evaluation.baseline_id,
        run_ids=tuple(evaluation.run_ids),
        identity_event_id=evaluation.identity_event_id,
        identity_change=identity_change(s, evaluation.identity_event_id),
        verdicts=verdicts_of(s, evaluation.id),
        paired_probes=evaluation.paired_probes,
        excluded_probes=evaluation.excluded_probes,
        notes=tuple(evaluation.notes),
        created_at=evaluation.created_at,
    )


def latest_evaluations(
    engine: Engine, *, target: str | None = None, probe_set: str | None = None
) -> list[EvaluationRecord]:
    """The newest evaluation of each (target, set) against its active baseline.

    An evaluation against a baseline that has since been replaced is history: after
    `baseline accept` the pair shows nothing until a run is compared with the new baseline.
    """
    with Session(engine) as s:
        # One active baseline per pair, and (baseline, run) is unique and indexed: the newest
        # evaluation of a pair is the one for the highest run id of its active baseline.
        newest = (
            select(col(Evaluation.baseline_id), func.max(col(Evaluation.run_id)).label("run_id"))
            .join(Baseline, col(Baseline.id) == col(Evaluation.baseline_id))
            .where(col(Baseline.active).is_(True))
            .group_by(col(Evaluation.baseline_id))
            .subquery()
        )
        query = (
            select(Evaluation, col(Target.name))
            .join(
                newest,
                (newest.c.baseline_id == col(Evaluation.baseline_id))
                & (newest.c.run_id == col(Evaluation.run_id)),
            )
            .join(Target, col(Target.id) == col(Evaluation.target_id))
            .order_by(col(Target.name), col(Evaluation.probe_set))
        )
        if target is not None:
            query = query.where(col(Target.name) == target)
        if probe_set is not None:
            query = query.where(col(Evaluation.probe_set) == probe_set)
        return [record_of(s, e, name) for e, name in s.execute(query)]


def baseline_progress(
    engine: Engine, pairs: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], int | None]:
    """For each (target, set): None when it has an active baseline, else its complete runs
    so far (the baseline is built from the first `baseline_runs` of them)."""
    found: dict[tuple[str, str], int | None] = {}
    with Session(engine) as s:
        for target, probe_set in pairs:
            tid = target_id_of(s, target)
            if tid is not None and active_baseline(s, tid, probe_set) is not None:
                found[(target, probe_set)] = None
            else:
                done = len(complete_runs(s, tid, probe_set)) if tid is not None else 0
                found[(target, probe_set)] = done
    return found


def target_id_of(s: Session, name: str) -> int | None:
    return s.execute(select(col(Target.id)).where(col(Target.name) == name)).scalar_one_or_none()


def baselines(
    engine: Engine,
    *,
    target: str | None = None,
    probe_set: str | None = None,
    include_inactive: bool = False,
) -> list[dict[str, Any]]:
    """Baselines as plain data for `baseline show`, newest first within each pair."""
    identity = aliased(ModelIdentity)
    with Session(engine) as s:
        query = (
            select(Baseline, col(Target.name), identity)
            .join(Target, col(Target.id) == col(Baseline.target_id))
            .outerjoin(identity, col(identity.id) == col(Baseline.identity_id))
            .order_by(col(Target.name), col(Baseline.probe_set), col(Baseline.id).desc())
        )
        if not include_inactive:
            query = query.where(col(Baseline.active).is_(True))
        if target is not None:
            query = query.where(col(Target.name) == target)
        if probe_set is not None:
            query = query.where(col(Baseline.probe_set) == probe_set)
        return [
            {
                "id": b.id,
                "target": name,
                "probe_set": b.probe_set,
                "runs": list(b.run_ids),
                "identity": {"model": ident.model or None, "fingerprint": ident.fingerprint or None}
                if ident
                else None,
                "source": b.source,
                "active": b.active,
                "created_at": b.created_at.isoformat(),
            }
            for b, name, ident in s.execute(query)
        ]


def previous_carry(s: Session, baseline_id: int, run_id: int) -> dict[str, Carry]:
    """Each metric's streak and evidence in the previous evaluation against the same baseline
    (evidence 0 where none was stored: verdicts from before the CUSUM rule)."""
    previous = (
        select(col(Evaluation.id))
        .where(col(Evaluation.baseline_id) == baseline_id, col(Evaluation.run_id) < run_id)
        .order_by(col(Evaluation.run_id).desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select(col(VerdictRow.metric), col(VerdictRow.streak), col(VerdictRow.evidence))
    rows = s.execute(query.where(col(VerdictRow.evaluation_id) == previous)).all()
    return {metric: Carry(streak, evidence or 0.0) for metric, streak, evidence in rows}


def latest_event(s: Session, target_id: int, *, after: int, upto: int) -> int | None:
    """The newest identity event of the target between the baseline and this run."""
    return s.execute(
        select(col(IdentityEvent.id))
        .where(
            col(IdentityEvent.target_id) == target_id,
            col(IdentityEvent.first_run_id) > after,
            col(IdentityEvent.first_run_id) <= upto,
        )
        .order_by(col(IdentityEvent.first_run_id).desc())
        .limit(1)
    ).scalar_one_or_none()


def stored_evaluation(s: Session, baseline_id: int, run_id: int) -> Evaluation | None:
    query = select(Evaluation).where(
        col(Evaluation.baseline_id) == baseline_id, col(Evaluation.run_id) == run_id
    )
    return s.execute(query).scalar_one_or_none()
