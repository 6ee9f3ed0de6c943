"""The drift engine: windows and baselines from SQL, identity events, stored evaluations.

After each complete run, `evaluate_run`:
1. records an identity event when the run's model identity (returned model name or
   system_fingerprint) differs from the target's previous complete run;
2. finds the baseline: the active one, else the first `baseline_runs` complete runs of the
   (target, set) under one identity, stored as an automatic baseline;
3. compares the current window (the newest `window_runs` complete runs after the baseline,
   ending at this run) with the baseline through the pure `evaluate()`, carrying each
   metric's streak and CUSUM evidence from the previous evaluation against the same baseline;
4. stores the evaluation and its verdicts in one transaction.

Only complete runs are used. Provider errors are results like any other here: `evaluate()`
turns them into the operational error_rate metric, never into quality drift.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.drift.model import Carry, Dispersion, Observation, Verdict
from monitor.drift.model import Evaluation as EvaluationResult
from monitor.drift.queries import (
    BUILDING,
    VERDICT_COLUMNS,
    EvaluationRecord,
    active_baseline,
    complete_runs,
    finite,
    latest_event,
    load_observations,
    previous_carry,
    record_of,
    stored_evaluation,
    target_id_of,
)
from monitor.drift.settings import DriftConfig
from monitor.drift.stored import decode, encode
from monitor.errors import UsageError
from monitor.store.db import session_scope
from monitor.store.models import Baseline, Evaluation, IdentityEvent, Run, Target, VerdictRow
from monitor.store.models import utcnow as now
from monitor.store.states import BaselineSource, RunStatus


class OnStored(Protocol):
    """What `evaluate_run` calls once it has stored an evaluation, before that commits.

    Called with the session of the transaction that stores the evaluation, the stored record
    (read back in that session: exactly what `driftmon drift` will show) and the evaluated
    run (a detached instance, loaded before the statistics ran). Returns nothing.

    Called at most once per stored evaluation, on the thread that called `evaluate_run` (a
    worker thread in the daemon), after the evaluation and its verdicts are flushed. Never
    called when no evaluation is stored by this call: the run is unknown, incomplete or
    older than the active baseline, the baseline is still being built, or the evaluation was
    already stored (a retry, or another process was first; that process ran its own hook).

    What must hold:
    - it writes through the session it is given and never commits, rolls back or closes it:
      what it writes (alert states, outbox rows) commits with the verdicts or not at all;
    - it does no network I/O: the transaction stays open while it runs (alerts are queued
      here and sent later by the outbox).

    Raises: anything it raises rolls the whole transaction back (evaluation, verdicts, cached
    dispersion and its own writes) and propagates out of `evaluate_run`. An IntegrityError is
    first taken for the race with another process: if that process stored this evaluation,
    its record is returned instead; otherwise the error is raised again.
    """

    def __call__(self, s: Session, record: EvaluationRecord, run: Run, /) -> None: ...


class Evaluator(Protocol):
    """The statistics of one evaluation: `monitor.drift.evaluate.evaluate` behind a call that
    may run it elsewhere. `in_process` runs it here; the daemon passes a
    `monitor.daemon.stats_worker.SubprocessEvaluator` and `driftmon run` a
    `PrestartedEvaluator`, both of which run it in a child process.

    Called with the baseline's and the current window's observations, the drift settings,
    each metric's `Carry` from the previous evaluation against the same baseline, and the
    baseline's run-to-run dispersion cached on it (None: not computed yet, so the result
    carries it). Returns what `evaluate` returns for those arguments.

    What must hold:
    - it reads no database and writes nothing: `evaluate_run` calls it outside any session or
      transaction, so a slow evaluation holds no lock;
    - it may be called from a worker thread (the daemon evaluates in `asyncio.to_thread`); an
      evaluator shared by concurrent evaluations, as the daemon's is, must be safe to call
      from several threads at once (`SubprocessEvaluator` is; `PrestartedEvaluator` serves one
      command's evaluations one after another and is not).

    Raises: anything it raises propagates out of `evaluate_run` and nothing of that
    evaluation is stored (an identity event or automatic baseline recorded before stays). The
    child-process evaluators raise `StatisticsProcessError` when the child fails or dies.
    `driftmon run` reports the error and goes on with its other runs; the daemon logs it as a
    failed scheduled run.
    """

    def __call__(
        self,
        baseline: Sequence[Observation],
        current: Sequence[Observation],
        config: DriftConfig,
        carried: Mapping[str, Carry],
        dispersion: Mapping[str, Dispersion] | None,
        /,
    ) -> EvaluationResult: ...


def evaluate_run(
    engine: Engine,
    run_id: int,
    config: DriftConfig,
    *,
    on_stored: OnStored | None = None,
    evaluator: Evaluator | None = None,
) -> EvaluationRecord | None:
    """Evaluate drift for the window ending at this run.

    `on_stored` runs once per stored evaluation, in its transaction; not when the evaluation
    was already stored (a retry, or another process was first) nor while building a baseline.

    None when the run is unknown, not complete, or older than the active baseline. A record
    with status "building_baseline k/n" (and no verdicts) while the baseline is not complete
    or this run belongs to it. Evaluating the same run twice returns the stored evaluation.
    """
    with Session(engine, expire_on_commit=False) as s:
        run = s.get(Run, run_id)
        if run is None or run.status != RunStatus.COMPLETE:
            return None
        target = s.get(Target, run.target_id)
        assert target is not None
    record_identity_event(engine, run)

    found = _baseline_for(engine, run, config, target.name)
    if not isinstance(found, Baseline):
        return found
    assert found.id is not None
    end = max(found.run_ids)  # the current window starts after the baseline's last run

    with Session(engine) as s:
        stored = stored_evaluation(s, found.id, run_id)
        if stored is not None:
            return record_of(s, stored, target.name)
        window = complete_runs(
            s, run.target_id, run.probe_set, after=end, upto=run_id, newest=config.window_runs
        )
        window_ids = sorted(r.id for r in window if r.id is not None)
        carried = previous_carry(s, found.id, run_id)
        event_id = latest_event(s, run.target_id, after=end, upto=run_id)
        baseline_obs = load_observations(s, found.run_ids)
        current_obs = load_observations(s, window_ids)
    versions = sorted(
        {o.probe_version_id for o in baseline_obs} & {o.probe_version_id for o in current_obs}
    )
    cached = decode(found.dispersion, versions)
    # Outside any transaction: the statistics may take a while and must not hold a lock.
    result = (evaluator or in_process)(baseline_obs, current_obs, config, carried, cached)
    notes = list(result.notes)
    if len(window_ids) < config.window_runs:
        notes.append(f"current window has {len(window_ids)} of {config.window_runs} runs")
    try:
        with session_scope(engine) as s:
            row = Evaluation(
                target_id=run.target_id,
                probe_set=run.probe_set,
                baseline_id=found.id,
                run_id=run_id,
                run_ids=window_ids,
                identity_event_id=event_id,
                paired_probes=result.paired_probes,
                excluded_probes=result.excluded_probes,
                drifted=bool(result.drifted),
                created_at=now(),
                notes=notes,
            )
            s.add(row)
            if cached is None and result.dispersion:
                # Computed once per baseline (and probe versions compared), kept for the next.
                kept = encode(versions, result.dispersion)
                s.execute(
                    update(Baseline).where(col(Baseline.id) == found.id).values(dispersion=kept)
                )
            s.flush()
            assert row.id is not None
            if result.verdicts:
                s.execute(insert(VerdictRow), [_verdict_row(row.id, v) for v in result.verdicts])
            # Read back what was stored, so callers see exactly what `drift` will show later.
            record = record_of(s, row, target.name)
            if on_stored is not None:
                on_stored(s, record, run)
            return record
    except IntegrityError:
        # Another process evaluated this run against this baseline first: use its result,
        # so the evidence it stored is what counts.
        with Session(engine) as s:
            stored = stored_evaluation(s, found.id, run_id)
            if stored is None:
                raise  # not that race: a real integrity problem
            return record_of(s, stored, target.name)


def in_process(
    baseline: Sequence[Observation],
    current: Sequence[Observation],
    config: DriftConfig,
    carried: Mapping[str, Carry],
    dispersion: Mapping[str, Dispersion] | None = None,
) -> EvaluationResult:
    from monitor.drift.evaluate import evaluate  # scipy: loaded only when there is work

    return evaluate(baseline, current, config, previous=carried, dispersion=dispersion)


def record_identity_event(engine: Engine, run: Run) -> int | None:
    """Record a change of identity between the target's previous complete run and this one.

    Runs without an identity (every request failed) are skipped on both sides: an outage is
    not a model change. Keyed by the run, so evaluating a run again records nothing new.
    """
    if run.identity_id is None or run.id is None:
        return None
    with Session(engine) as s:
        query = select(col(IdentityEvent.id)).where(col(IdentityEvent.first_run_id) == run.id)
        if (existing := s.execute(query).scalar_one_or_none()) is not None:
            return existing
        previous = s.execute(
            select(col(Run.identity_id))
            .where(
                col(Run.target_id) == run.target_id,
                col(Run.status) == RunStatus.COMPLETE,
                col(Run.id) < run.id,
                col(Run.identity_id).is_not(None),
            )
            .order_by(col(Run.id).desc())
            .limit(1)
        ).scalar_one_or_none()
    if previous is None or previous == run.identity_id:
        return None
    try:
        with session_scope(engine) as s:
            event = IdentityEvent(
                target_id=run.target_id,
                from_identity_id=previous,
                to_identity_id=run.identity_id,
                first_run_id=run.id,
                detected_at=now(),
            )
            s.add(event)
            s.flush()
            return event.id
    except IntegrityError:  # a concurrent evaluation of the same run recorded it: read that
        with Session(engine) as s:
            query = select(col(IdentityEvent.id)).where(col(IdentityEvent.first_run_id) == run.id)
            if (existing := s.execute(query).scalar_one_or_none()) is None:
                raise
            return existing


def first_baseline(runs: Sequence[Run], wanted: int) -> tuple[list[Run] | None, int]:
    """The first `wanted` consecutive runs under one identity, or None and how many of them
    the newest streak has. A run with nothing judged (all errors) neither counts nor breaks
    the streak: it says nothing about behaviour."""
    streak: list[Run] = []
    for run in runs:
        if run.passed + run.failed == 0:
            continue
        if streak and run.identity_id != streak[-1].identity_id:
            streak = []
        streak.append(run)
        if len(streak) == wanted:
            return streak, wanted
    return None, len(streak)


def baseline_ready(engine: Engine, target: str, probe_set: str, config: DriftConfig) -> bool:
    """Whether the next complete run of (target, set) will be compared with a baseline, so
    its evaluation needs the statistics (not while the baseline is still being built)."""
    with Session(engine) as s:
        target_id = target_id_of(s, target)
        if target_id is None:
            return False
        if active_baseline(s, target_id, probe_set) is not None:
            return True
        runs = complete_runs(s, target_id, probe_set)
    return first_baseline(runs, config.baseline_runs)[0] is not None


def _baseline_for(
    engine: Engine, run: Run, config: DriftConfig, target: str
) -> Baseline | EvaluationRecord | None:
    assert run.id is not None
    with Session(engine, expire_on_commit=False) as s:
        baseline = active_baseline(s, run.target_id, run.probe_set)
        runs = [] if baseline else complete_runs(s, run.target_id, run.probe_set, upto=run.id)
    if baseline is None:
        chosen, have = first_baseline(runs, config.baseline_runs)
        if chosen is None:
            return _building(run, target, have, config.baseline_runs)
        baseline = _store_auto_baseline(engine, run, chosen)
    if run.id in baseline.run_ids:
        position = sorted(baseline.run_ids).index(run.id) + 1
        return _building(run, target, position, len(baseline.run_ids))
    if run.id < max(baseline.run_ids):
        return None  # older than the baseline: nothing to compare it with
    return baseline


def _building(run: Run, target: str, have: int, wanted: int) -> EvaluationRecord:
    assert run.id is not None
    return EvaluationRecord(
        target=target,
        probe_set=run.probe_set,
        run_id=run.id,
        status=f"{BUILDING} {have}/{wanted}",
    )


def _store_auto_baseline(engine: Engine, run: Run, chosen: list[Run]) -> Baseline:
    try:
        with session_scope(engine) as s:
            baseline = Baseline(
                target_id=run.target_id,
                probe_set=run.probe_set,
                run_ids=[r.id for r in chosen if r.id is not None],
                identity_id=chosen[-1].identity_id,
                source=BaselineSource.AUTO,
                active=True,
                created_at=now(),
            )
            s.add(baseline)
            s.flush()
            return baseline
    except IntegrityError:
        # The unique active-baseline index: a concurrent evaluation stored it first.
        with Session(engine, expire_on_commit=False) as s:
            if (found := active_baseline(s, run.target_id, run.probe_set)) is None:
                raise
            return found


# Stored strings are cut to their column sizes; a long note must not fail the transaction.
_LIMITS = {"metric": 200, "effect_name": 100, "test": 200, "note": 500}


def _verdict_row(evaluation_id: int, v: Verdict) -> dict[str, Any]:
    row = {name: finite(getattr(v, name)) for name in VERDICT_COLUMNS}
    for name, limit in _LIMITS.items():
        if row[name] is not None:
            row[name] = str(row[name])[:limit]
    return {**row, "evaluation_id": evaluation_id, "family": str(v.family), "state": str(v.state)}


def accept_baseline(
    engine: Engine, target_id: int, probe_set: str, run_id: int | None, config: DriftConfig
) -> Baseline:
    """Make the runs ending at `run_id` (default: the newest complete run) the active baseline.

    Up to `baseline_runs` complete runs are taken, newest first, while they share the end
    run's identity: a baseline that mixes two models would hide the very change it is meant
    to catch. Later evaluations compare with it; streaks restart because they are kept per
    baseline.
    """
    with session_scope(engine) as s:
        if run_id is None:
            newest = complete_runs(s, target_id, probe_set, newest=1)
            if not newest:
                raise UsageError(f"no complete run of probe set {probe_set!r} to accept")
            run_id = newest[0].id
            assert run_id is not None
        # Bounded look-back: outage runs are skipped, but not without limit.
        candidates = complete_runs(
            s, target_id, probe_set, upto=run_id, newest=config.baseline_runs * 10
        )
        if not candidates or candidates[0].id != run_id:
            raise UsageError(f"run {run_id} is not a complete run of probe set {probe_set!r}")
        if candidates[0].passed + candidates[0].failed == 0:
            raise UsageError(f"run {run_id} has no judged results (every request failed)")
        chosen: list[int] = []
        for run in candidates:
            if run.passed + run.failed == 0 or run.id is None:
                continue  # an outage run: nothing to compare with, and no identity to check
            if run.identity_id != candidates[0].identity_id or len(chosen) == config.baseline_runs:
                break
            chosen.append(run.id)
        s.execute(
            update(Baseline)
            .where(
                col(Baseline.target_id) == target_id,
                col(Baseline.probe_set) == probe_set,
                col(Baseline.active).is_(True),
            )
            .values(active=False)
        )
        baseline = Baseline(
            target_id=target_id,
            probe_set=probe_set,
            run_ids=sorted(chosen),
            identity_id=candidates[0].identity_id,
            source=BaselineSource.ACCEPTED,
            active=True,
            created_at=now(),
        )
        s.add(baseline)
        s.flush()
        return baseline
