"""Daemon housekeeping against a real database: WAL checkpoints (SQLite) and retention."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine

from monitor.daemon.housekeeping import checkpoint_wal, prune
from monitor.drift.engine import evaluate_run
from monitor.store.db import make_engine
from monitor.store.migrate import upgrade
from monitor.store.models import utcnow
from tests.conftest import count
from tests.storage.test_drift_store import CONFIG, World


def test_wal_checkpoint_truncates_the_log(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'driftmon.db'}")
    upgrade(engine)
    world = World(engine)
    world.run(world.identity("m", "fp"))
    wal = tmp_path / "driftmon.db-wal"
    assert wal.stat().st_size > 0
    busy, pages, moved = checkpoint_wal(engine)
    assert busy == 0 and pages == moved
    assert wal.stat().st_size == 0
    engine.dispose()


def test_retention_prunes_old_results_but_keeps_the_active_baseline(engine: Engine) -> None:
    world = World(engine)
    identity = world.identity("m", "fp")
    runs = [world.run(identity) for _ in range(5)]
    for run_id in runs:
        evaluate_run(engine, run_id, CONFIG)  # runs 1-3 become the automatic baseline
    per_run = count(engine, "result") // 5
    # Everything is older than a retention of 0 seconds, measured a minute from now.
    deleted = prune(engine, utcnow() + timedelta(minutes=1), 0)
    assert deleted == 2 * per_run
    assert count(engine, "result") == 3 * per_run
