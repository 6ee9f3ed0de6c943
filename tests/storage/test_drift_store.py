"""The drift engine against a real database, on SQLite and PostgreSQL: baselines, identity
events, stored evaluations and streaks. Runs and results are written as the runner writes
them; the statistics are the real ones."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlalchemy import Engine, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.daemon.stats_worker import PrestartedEvaluator
from monitor.drift.engine import accept_baseline, baseline_ready, evaluate_run
from monitor.drift.queries import baselines, latest_evaluations
from monitor.drift.settings import DriftConfig
from monitor.errors import UsageError
from monitor.store.db import make_engine, session_scope
from monitor.store.migrate import upgrade
from monitor.store.models import Baseline, Evaluation, Result, Run, VerdictRow, utcnow
from monitor.store.writes import ensure_identity, ensure_probe_versions, ensure_target
from tests.conftest import count

PROBES = 30
SAMPLES = 3
# Pinned, so these tests do not move when the shipped defaults are re-tuned.
CONFIG = DriftConfig(baseline_runs=3, window_runs=1, persistence=2)


class World:
    """One target and a 30-probe set in the database, and a way to add runs to it."""

    def __init__(self, engine: Engine, probe_set: str = "invoices") -> None:
        self.engine = engine
        self.probe_set = probe_set
        self.target_id = ensure_target(
            engine, name="sim", kind="openai", model="gpt-4o", base_url=None
        )
        ids = ensure_probe_versions(
            engine, [(probe_set, f"p{i:02d}", "v1", {"i": i}) for i in range(PROBES)]
        )
        self.versions = sorted(ids.values())
        self.rng = random.Random(7)

    def identity(self, model: str, fingerprint: str) -> int:
        return ensure_identity(self.engine, self.target_id, model, fingerprint, utcnow())

    def run(
        self,
        identity: int | None,
        *,
        fail_rate: float = 0.05,
        error_rate: float = 0.0,
        status: str = "complete",
        probe_set: str | None = None,
        chars: int = 40,
    ) -> int:
        """A run whose results fail (wrong value) and error (provider outage) at these rates."""
        rows: list[dict[str, Any]] = []
        with session_scope(self.engine) as s:
            run = Run(
                target_id=self.target_id,
                probe_set=probe_set or self.probe_set,
                status=status,
                samples=SAMPLES,
                planned=PROBES * SAMPLES,
            )
            s.add(run)
            s.flush()
            assert run.id is not None
            run_id = run.id
            for pv in self.versions:
                for k in range(SAMPLES):
                    row = self._result(run_id, pv, k, identity, fail_rate, error_rate)
                    if "output_chars" in row:  # outputs of about `chars` characters
                        row["output_chars"] += chars - 40
                    rows.append(row)
            s.execute(insert(Result), rows)
            verdicts = [r["verdict"] for r in rows]
            s.execute(
                update(Run)
                .where(col(Run.id) == run_id)
                .values(
                    passed=verdicts.count("pass"),
                    failed=verdicts.count("fail"),
                    errors=verdicts.count("error"),
                    identity_id=identity if verdicts.count("error") < len(verdicts) else None,
                    finished_at=utcnow(),
                )
            )
        return run_id

    def _result(
        self, run_id: int, pv: int, k: int, identity: int | None, fail: float, error: float
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "run_id": run_id,
            "target_id": self.target_id,
            "probe_version_id": pv,
            "sample_index": k,
            "created_at": utcnow(),
            "latency_ms": self.rng.gauss(50, 5),
        }
        if self.rng.random() < error:
            return row | {"verdict": "error", "error_class": "server", "http_status": 500}
        ok = self.rng.random() >= fail
        return row | {
            "verdict": "pass" if ok else "fail",
            "identity_id": identity,
            "format_kind": "clean",
            "parsed": True,
            "schema_valid": True,
            "checks": [True, ok],
            "tracked": {"currency": "USD" if ok else "EUR"},
            "refusal": False,
            "finish_reason": "stop",
            "output_chars": 40 + self.rng.randint(0, 4),
            "output_tokens": 10 + self.rng.randint(0, 1),
        }


@pytest.fixture
def world(engine: Engine) -> World:
    return World(engine)


def verdict(record: Any, metric: str) -> Any:
    return next(v for v in record.verdicts if v.metric == metric)


def test_upgrade_creates_the_drift_tables(db_url: str) -> None:
    engine = make_engine(db_url)
    upgrade(engine)
    tables = set(inspect(engine).get_table_names())
    assert {"baseline", "identity_event", "evaluation", "verdict"} <= tables
    indexes = {i["name"] for i in inspect(engine).get_indexes("baseline")}
    assert "uq_baseline_one_active" in indexes
    engine.dispose()


def test_auto_baseline_is_built_then_runs_are_evaluated_and_stored(world: World) -> None:
    a = world.identity("gpt-4o-2024-05-13", "fp_a")
    statuses = [evaluate_run(world.engine, world.run(a), CONFIG) for _ in range(3)]
    assert [r.status if r else None for r in statuses] == [
        "building_baseline 1/3",
        "building_baseline 2/3",
        "building_baseline 3/3",
    ]
    assert all(r is not None and not r.verdicts and r.evaluation_id is None for r in statuses)
    [stored] = baselines(world.engine)
    assert (stored["source"], stored["runs"], stored["active"]) == ("auto", [1, 2, 3], True)
    assert stored["identity"] == {"model": "gpt-4o-2024-05-13", "fingerprint": "fp_a"}

    run = world.run(a)
    record = evaluate_run(world.engine, run, CONFIG)
    assert record is not None and record.status == "evaluated"
    assert record.run_ids == (run,) and record.paired_probes == PROBES
    assert record.identity_change is None and not record.drifted
    assert verdict(record, "pass_rate").baseline_n == PROBES * SAMPLES * 3
    assert count(world.engine, "evaluation") == 1
    assert count(world.engine, "verdict") == len(record.verdicts) > 5

    again = evaluate_run(world.engine, run, CONFIG)  # a retry must not count twice
    assert again is not None and again.evaluation_id == record.evaluation_id
    assert again.verdicts == record.verdicts
    assert count(world.engine, "evaluation") == 1
    [latest] = latest_evaluations(world.engine, target="sim")
    assert latest.evaluation_id == record.evaluation_id and latest.verdicts == record.verdicts


def test_runs_that_are_not_complete_are_never_used(world: World) -> None:
    a = world.identity("m", "")
    first = world.run(a)
    broken = world.run(a, status="interrupted", fail_rate=1.0)
    running = world.run(a, status="running", fail_rate=1.0)
    assert evaluate_run(world.engine, broken, CONFIG) is None
    assert evaluate_run(world.engine, running, CONFIG) is None
    assert evaluate_run(world.engine, 9999, CONFIG) is None
    runs = [first] + [world.run(a) for _ in range(2)]
    record = evaluate_run(world.engine, runs[-1], CONFIG)
    assert record is not None and record.status == "building_baseline 3/3"
    assert baselines(world.engine)[0]["runs"] == runs
    current = world.run(a)
    record = evaluate_run(world.engine, current, CONFIG)
    assert record is not None and record.run_ids == (current,)


def test_identity_change_is_recorded_once_and_follows_the_verdicts(world: World) -> None:
    a = world.identity("gpt-4o-2024-05-13", "fp_a")
    b = world.identity("gpt-4o-2024-08-06", "fp_b")
    for _ in range(3):
        evaluate_run(world.engine, world.run(a), CONFIG)
    assert count(world.engine, "identity_event") == 0
    changed = world.run(b, fail_rate=0.5)
    first = evaluate_run(world.engine, changed, CONFIG)
    evaluate_run(world.engine, changed, CONFIG)
    # Another set of the same target sees the same identity: no second event.
    other = world.run(b, probe_set="other")
    evaluate_run(world.engine, other, CONFIG)
    second = evaluate_run(world.engine, world.run(b, fail_rate=0.5), CONFIG)
    assert count(world.engine, "identity_event") == 1
    expected = {"from": "gpt-4o-2024-05-13 (fp_a)", "to": "gpt-4o-2024-08-06 (fp_b)"}
    assert first is not None and second is not None
    assert first.identity_change == second.identity_change == expected
    assert first.identity_event_id == second.identity_event_id is not None
    with Session(world.engine) as s:
        stored = s.execute(select(Evaluation).order_by(col(Evaluation.id))).scalars().all()
        assert [e.identity_event_id for e in stored] == [first.identity_event_id] * 2


def test_an_identity_change_while_building_starts_the_baseline_again(world: World) -> None:
    a, b = world.identity("m", "fp_a"), world.identity("m", "fp_b")
    runs = [world.run(a), world.run(a), world.run(b), world.run(b)]
    records = [evaluate_run(world.engine, r, CONFIG) for r in runs]
    assert [r.status for r in records if r] == [
        "building_baseline 1/3",
        "building_baseline 2/3",
        "building_baseline 1/3",
        "building_baseline 2/3",
    ]
    outage = world.run(b, error_rate=1.0)  # nothing judged: neither counts nor breaks
    evaluate_run(world.engine, outage, CONFIG)
    last = world.run(b)
    record = evaluate_run(world.engine, last, CONFIG)
    assert record is not None and record.status == "building_baseline 3/3"
    assert baselines(world.engine)[0]["runs"] == [runs[2], runs[3], last]


def test_streaks_carry_over_and_drift_needs_persistence(world: World) -> None:
    a = world.identity("m", "fp_a")
    for _ in range(3):
        evaluate_run(world.engine, world.run(a), CONFIG)
    first = evaluate_run(world.engine, world.run(a, fail_rate=0.6), CONFIG)
    second = evaluate_run(world.engine, world.run(a, fail_rate=0.6), CONFIG)
    assert first is not None and second is not None
    assert (verdict(first, "pass_rate").state, verdict(first, "pass_rate").streak) == (
        "pending",
        1,
    )
    assert (verdict(second, "pass_rate").state, verdict(second, "pass_rate").streak) == (
        "drifted",
        2,
    )
    assert "pass_rate" in [v.metric for v in second.drifted]
    with Session(world.engine) as s:
        flags = s.execute(select(col(Evaluation.drifted)).order_by(col(Evaluation.id))).all()
        assert [f[0] for f in flags] == [False, True]
        streaks = s.execute(
            select(col(VerdictRow.streak)).where(col(VerdictRow.metric) == "pass_rate")
        ).all()
        assert sorted(r[0] for r in streaks) == [1, 2]


def test_errors_are_operational_never_quality_drift(world: World) -> None:
    a = world.identity("m", "fp_a")
    for _ in range(3):
        evaluate_run(world.engine, world.run(a), CONFIG)
    for _ in range(2):
        record = evaluate_run(world.engine, world.run(a, error_rate=0.5), CONFIG)
    assert record is not None and not record.drifted
    error_rate = verdict(record, "error_rate")
    assert error_rate.family == "operational" and error_rate.state == "drifted"
    assert all(v.family == "operational" for v in record.verdicts if v.state == "drifted")


def test_baseline_accept_switches_the_reference_and_restarts_streaks(world: World) -> None:
    a, b = world.identity("m", "fp_a"), world.identity("m2", "fp_b")
    for _ in range(3):
        evaluate_run(world.engine, world.run(a), CONFIG)
    new_runs = [world.run(b, fail_rate=0.6) for _ in range(4)]
    records = [evaluate_run(world.engine, r, CONFIG) for r in new_runs]
    assert records[-1] is not None and records[-1].drifted

    accepted = accept_baseline(world.engine, world.target_id, "invoices", new_runs[2], CONFIG)
    assert accepted.run_ids == new_runs[:3] and accepted.source == "accepted"
    shown = baselines(world.engine, include_inactive=True)
    assert [(r["source"], r["active"]) for r in shown] == [("accepted", True), ("auto", False)]
    # The old verdicts belong to a replaced baseline: nothing to show until a new evaluation.
    assert latest_evaluations(world.engine) == []

    record = evaluate_run(world.engine, world.run(b, fail_rate=0.6), CONFIG)
    assert record is not None and record.baseline_id == accepted.id and not record.drifted
    assert verdict(record, "pass_rate").streak == 0
    assert record.identity_change is None  # the change happened before this baseline
    [latest] = latest_evaluations(world.engine)
    assert latest.evaluation_id == record.evaluation_id

    # By default the newest complete run; runs of another identity are never mixed in.
    again = accept_baseline(world.engine, world.target_id, "invoices", None, CONFIG)
    assert again.run_ids == [new_runs[2], new_runs[3], record.run_id]
    with Session(world.engine) as s:
        active = s.execute(select(Baseline).where(col(Baseline.active).is_(True))).all()
        assert len(active) == 1


def test_accept_refuses_runs_it_cannot_use(world: World) -> None:
    with pytest.raises(UsageError, match="no complete run"):
        accept_baseline(world.engine, world.target_id, "invoices", None, CONFIG)
    a = world.identity("m", "fp_a")
    broken = world.run(a, status="interrupted")
    with pytest.raises(UsageError, match="not a complete run"):
        accept_baseline(world.engine, world.target_id, "invoices", broken, CONFIG)
    outage = world.run(a, error_rate=1.0)
    with pytest.raises(UsageError, match="no judged results"):
        accept_baseline(world.engine, world.target_id, "invoices", outage, CONFIG)
    accepted = accept_baseline(world.engine, world.target_id, "invoices", world.run(a), CONFIG)
    assert len(accepted.run_ids) == 1  # fewer runs than asked: the user chose this point


def test_database_allows_one_active_baseline_per_target_and_set(world: World) -> None:
    run = world.run(world.identity("m", ""))
    row = {"target_id": world.target_id, "probe_set": "invoices", "run_ids": [run]}
    with session_scope(world.engine) as s:
        s.add(Baseline(**row, source="auto", active=True))
        s.add(Baseline(**row, source="auto", active=False))
    with pytest.raises(IntegrityError), session_scope(world.engine) as s:
        s.add(Baseline(**row, source="accepted", active=True))


def test_baseline_ready_says_when_the_next_run_will_need_the_statistics(world: World) -> None:
    # `driftmon run` starts loading scipy in a child process only when this is true.
    ready = lambda: baseline_ready(world.engine, "sim", world.probe_set, CONFIG)  # noqa: E731
    assert not baseline_ready(world.engine, "no-such-target", world.probe_set, CONFIG)
    assert not ready()
    a, b = world.identity("m", "fp_a"), world.identity("m", "fp_b")
    world.run(a)
    world.run(a, status="partial")  # not complete: never part of a baseline
    world.run(b)  # a new identity starts the streak again
    world.run(b)
    assert not ready()
    world.run(b)  # three complete runs under one identity: the next run is compared
    assert ready()
    assert not baseline_ready(world.engine, "sim", "another-set", CONFIG)


def test_the_prestarted_child_gives_the_in_process_verdicts(engine: Engine) -> None:
    here, there = World(engine, "here"), World(engine, "there")
    for w in (here, there):
        w.rng = random.Random(11)  # the same results in both sets
    a, b = here.identity("m", "fp"), there.identity("m", "fp")
    for _ in range(3):
        evaluate_run(engine, here.run(a), CONFIG)
        evaluate_run(engine, there.run(b), CONFIG)
    in_process = evaluate_run(engine, here.run(a, fail_rate=0.3), CONFIG)
    with PrestartedEvaluator() as child:
        record = evaluate_run(engine, there.run(b, fail_rate=0.3), CONFIG, evaluator=child)
    assert in_process is not None and record is not None
    assert record.status == in_process.status == "evaluated"
    assert verdict(record, "pass_rate").p_value < 1e-3  # a real change, not an empty result
    assert [(v.metric, v.state, v.p_value) for v in record.verdicts] == [
        (v.metric, v.state, v.p_value) for v in in_process.verdicts
    ]


def test_run_to_run_variation_is_estimated_once_per_baseline_and_evidence_is_stored(
    world: World,
) -> None:
    """With a baseline long enough for the estimate (monitor.drift.runs.MIN_RUNS), the first
    evaluation stores each metric's dispersion on the baseline row and later evaluations reuse
    it; every verdict stores its CUSUM evidence and threshold, and the next one carries it."""
    from monitor.drift.runs import MIN_RUNS
    from monitor.drift.stored import decode

    config = DriftConfig(baseline_runs=MIN_RUNS, window_runs=1)
    identity = world.identity("gpt-4o", "fp_a")
    for _ in range(MIN_RUNS):
        world.run(identity)
    first = evaluate_run(world.engine, world.run(identity), config)
    assert first is not None and first.status == "evaluated"
    with Session(world.engine) as s:
        stored = s.execute(select(Baseline.dispersion)).scalar_one()
    assert stored is not None and "length_chars" in stored["metrics"]
    cached = decode(stored, world.versions)
    assert cached is not None and cached["length_chars"].runs == MIN_RUNS
    assert verdict(first, "length_chars").dispersion is not None
    assert verdict(first, "length_chars").dispersion >= 1.0
    assert verdict(first, "pass_rate").threshold is not None

    # A big length change: the next evaluation uses the stored estimate (unchanged row) and the
    # evidence it stores is read back as the start of the one after.
    second = evaluate_run(world.engine, world.run(identity, chars=400), config)
    assert second is not None
    with Session(world.engine) as s:
        assert s.execute(select(Baseline.dispersion)).scalar_one() == stored
        rows = dict(
            s.execute(
                select(col(VerdictRow.metric), col(VerdictRow.evidence)).where(
                    col(VerdictRow.evaluation_id) == second.evaluation_id
                )
            ).all()
        )
    lengths = verdict(second, "length_chars")
    assert lengths.state.value == "drifted"
    assert rows["length_chars"] == pytest.approx(lengths.evidence)
    assert lengths.evidence == pytest.approx(lengths.threshold)  # held at the threshold
