"""The run lifecycle in monitor.store.runs, on SQLite and PostgreSQL: opening and resuming
runs, slot claims (exactly once, also when two processes race), closing with counts, budget
skips, and the per-result figures the daemon exports."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.alerts.message import AlertMessage
from monitor.alerts.outbox import queue
from monitor.store.db import session_scope
from monitor.store.models import Run, utcnow
from monitor.store.processes import STALE_OWNER, owner_id
from monitor.store.runs import (
    OpenedRun,
    close_run,
    open_run,
    record_skipped_run,
    result_stats,
    run_in_slot,
)
from monitor.store.states import ResultVerdict, RunStatus, RunTrigger
from monitor.store.writes import (
    ensure_identity,
    ensure_probe_versions,
    ensure_target,
    insert_results,
)
from tests.conftest import count

SLOT = "sim/invoices/2026-01-01T10:00"
GONE = "a-host-that-vanished:4242"  # another host, judged by its heartbeat's age


def target(engine: Engine) -> int:
    return ensure_target(engine, name="sim", kind="openai", model="m", base_url=None)


def open_(engine: Engine, *, plan: str = "plan-a", slot: str | None = None) -> OpenedRun:
    return open_run(
        engine,
        target_id=target(engine),
        probe_set="invoices",
        plan_hash=plan,
        planned=4,
        trigger=RunTrigger.SCHEDULE if slot else RunTrigger.MANUAL,
        slot=slot,
        samples=2,
    )


def orphan(engine: Engine, run_id: int, *, silent_for: timedelta) -> None:
    """Make a run look owned by a process on another host, last heard of `silent_for` ago."""
    with session_scope(engine) as s:
        s.execute(
            update(Run)
            .where(col(Run.id) == run_id)
            .values(owner=GONE, heartbeat_at=utcnow() - silent_for)
        )


def stored(engine: Engine, run_id: int) -> Run:
    with Session(engine) as s:
        run = s.get(Run, run_id)
    assert run is not None
    return run


def test_a_new_run_is_opened_running_and_owned_by_this_process(engine: Engine) -> None:
    opened = open_(engine, slot=SLOT)
    assert opened.resumed is False
    run = stored(engine, opened.id)
    assert (run.status, run.trigger, run.slot, run.owner) == (
        RunStatus.RUNNING,
        RunTrigger.SCHEDULE,
        SLOT,
        owner_id(),
    )
    assert (run.planned, run.samples, run.plan_hash) == (4, 2, "plan-a")
    assert run_in_slot(engine, SLOT) is not None and run_in_slot(engine, "other") is None


def test_a_dead_run_of_the_same_plan_is_resumed_in_its_slot(engine: Engine) -> None:
    first = open_(engine, slot=SLOT)
    orphan(engine, first.id, silent_for=STALE_OWNER * 2)
    again = open_(engine, slot=SLOT)
    assert again == OpenedRun(first.id, True)
    run = stored(engine, first.id)
    assert (run.status, run.owner, run.note) == (
        RunStatus.RUNNING,
        owner_id(),
        "resumed after its process stopped",
    )
    assert count(engine, "run") == 1


def test_a_dead_run_of_another_plan_is_interrupted_and_gives_up_its_slot(
    engine: Engine,
) -> None:
    first = open_(engine, slot=SLOT)
    orphan(engine, first.id, silent_for=STALE_OWNER * 2)
    second = open_(engine, plan="plan-b", slot=SLOT)
    assert second.resumed is False and second.id != first.id
    old = stored(engine, first.id)
    assert (old.status, old.slot) == (RunStatus.INTERRUPTED, None)
    assert old.finished_at is not None
    held = run_in_slot(engine, SLOT)
    assert held is not None and held.id == second.id


def test_a_run_whose_owner_is_alive_is_left_alone(engine: Engine) -> None:
    first = open_(engine)
    orphan(engine, first.id, silent_for=STALE_OWNER / 2)  # quiet, but not long enough
    second = open_(engine)
    assert second.resumed is False and second.id != first.id
    assert stored(engine, first.id).status == RunStatus.RUNNING


def test_a_slot_held_by_a_live_run_cannot_be_claimed_again(engine: Engine) -> None:
    first = open_(engine, slot=SLOT)
    with pytest.raises(IntegrityError):
        open_(engine, slot=SLOT)
    assert count(engine, "run") == 1
    assert stored(engine, first.id).status == RunStatus.RUNNING


def test_two_processes_racing_for_a_slot_claim_it_once(engine: Engine) -> None:
    target(engine)  # created up front: the race is for the slot alone
    start = threading.Barrier(2)
    outcomes: list[Any] = []

    def claim() -> None:
        start.wait()
        try:
            outcomes.append(open_(engine, slot=SLOT))
        except IntegrityError as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(type(o).__name__ for o in outcomes) == ["IntegrityError", "OpenedRun"]
    assert count(engine, "run") == 1


def test_closing_counts_verdicts_error_classes_and_the_main_identity(engine: Engine) -> None:
    opened = open_(engine)
    target_id = target(engine)
    pv = ensure_probe_versions(engine, [("invoices", "p", "v1", {})])[("invoices", "p", "v1")]
    main = ensure_identity(engine, target_id, "gpt-x", "fp1", utcnow())
    rare = ensure_identity(engine, target_id, "gpt-x", "", utcnow())
    verdicts: list[tuple[ResultVerdict, str | None, int | None]] = [
        (ResultVerdict.PASS, None, main),
        (ResultVerdict.PASS, None, main),
        (ResultVerdict.FAIL, None, rare),
        (ResultVerdict.ERROR, "timeout", None),
        (ResultVerdict.ERROR, "timeout", None),
        (ResultVerdict.ERROR, "server", None),
    ]
    rows = [
        {
            "run_id": opened.id,
            "target_id": target_id,
            "probe_version_id": pv,
            "sample_index": k,
            "verdict": verdict,
            "error_class": error_class,
            "identity_id": identity,
            "latency_ms": None if verdict == ResultVerdict.ERROR else 100.0 * (k + 1),
        }
        for k, (verdict, error_class, identity) in enumerate(verdicts)
    ]
    insert_results(engine, opened.id, rows)

    closed = close_run(engine, opened.id, RunStatus.COMPLETE)
    assert (closed.results, closed.passed, closed.failed, closed.errors) == (6, 2, 1, 3)
    assert closed.error_classes == {"timeout": 2, "server": 1}
    assert (closed.model, closed.fingerprint) == ("gpt-x", "fp1")
    run = stored(engine, opened.id)
    assert (run.status, run.passed, run.failed, run.errors) == (RunStatus.COMPLETE, 2, 1, 3)
    assert run.identity_id == main and run.finished_at is not None

    stats = sorted(
        (r.verdict, r.error_class or "", r.latency_ms or 0.0)
        for r in result_stats(engine, opened.id)
    )
    assert stats == [
        ("error", "server", 0.0),
        ("error", "timeout", 0.0),
        ("error", "timeout", 0.0),
        ("fail", "", 300.0),
        ("pass", "", 100.0),
        ("pass", "", 200.0),
    ]


def test_a_run_with_no_results_closes_with_no_identity(engine: Engine) -> None:
    opened = open_(engine)
    closed = close_run(engine, opened.id, RunStatus.INTERRUPTED)
    assert (closed.results, closed.model, closed.fingerprint, closed.error_classes) == (
        0,
        None,
        None,
        {},
    )
    run = stored(engine, opened.id)
    assert (run.status, run.identity_id) == (RunStatus.INTERRUPTED, None)


def test_a_budget_skip_holds_its_slot_with_its_notice_or_writes_nothing(engine: Engine) -> None:
    now = utcnow()

    def notice(s: Session) -> None:
        msg = AlertMessage(kind="budget", target="sim", probe_set="invoices", note="over")
        queue(s, "budget:sim:today", msg, alert_id=None, now=now)

    common: dict[str, Any] = {"target_id": target(engine), "probe_set": "invoices", "now": now}
    assert record_skipped_run(engine, slot=SLOT, note="over budget " * 200, also=notice, **common)
    run = run_in_slot(engine, SLOT)
    assert run is not None
    assert (run.status, run.trigger, run.planned, run.owner) == (
        RunStatus.SKIPPED,
        RunTrigger.SCHEDULE,
        0,
        owner_id(),
    )
    assert run.note is not None and len(run.note) == 1000
    assert run.finished_at is not None
    assert count(engine, "notification") == 1

    # The slot is taken: nothing is written, not even the notice of the same transaction.
    def another_notice(s: Session) -> None:
        msg = AlertMessage(kind="budget", target="sim", probe_set="invoices", note="over")
        queue(s, "budget:sim:another", msg, alert_id=None, now=now)

    assert not record_skipped_run(engine, slot=SLOT, note="again", also=another_notice, **common)
    assert (count(engine, "run"), count(engine, "notification")) == (1, 1)
