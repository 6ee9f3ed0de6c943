"""`driftmon demo` end to end, as `make demo` runs it: a subprocess, a real simulator, SQLite."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path

import pytest

from tests.conftest import driftmon

PROBES = 12  # monitor/demo_assets/probes/demo.yaml
SAMPLES = 5  # monitor/demo_assets/driftmon.toml
MARCH = ("gpt-4o-2024-05-13", "fp_3aa7262c27")
JUNE = ("gpt-4o-2024-08-06", "fp_c4e5b6fa31")

pytestmark = pytest.mark.slow


def _rate(text: str) -> float:
    return float(text.rstrip("%")) / 100


def _run_demo(folder: Path, cwd: Path) -> str:
    started = time.monotonic()
    proc = driftmon("demo", "--dir", str(folder), cwd=cwd, timeout=90)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert elapsed < 60, f"the demo took {elapsed:.1f} s"
    return proc.stdout


def _db(folder: Path) -> sqlite3.Connection:
    db = folder / "driftmon.db"
    assert db.is_file(), f"no database at {db}"
    return sqlite3.connect(db)


def test_demo_replays_before_and_after_the_update(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    out = _run_demo(folder, tmp_path)

    # Both identities are named, and the change between them is reported.
    for name in (*MARCH, *JUNE):
        assert name in out
    assert re.search(r"Model identity changed: gpt-4o-2024-05-13 .*→ gpt-4o-2024-08-06", out)
    match = re.search(r"Pass rate: march ([\d.]+%) → june ([\d.]+%)", out)
    assert match, out
    march, june = (_rate(g) for g in match.groups())
    assert june < march - 0.1, out
    # The format shift is shown, and no drift verdict is invented.
    assert re.search(r"fenced\s*│\s*\d+\s*│\s*\d+", out), out
    assert "not part of this version" in out
    # The real folder is shown, not the default, relative to where the command was run.
    assert "driftmon --config demo/driftmon.toml probes list" in out

    with _db(folder) as conn:
        runs = conn.execute(
            "SELECT r.id, r.status, r.passed, r.failed, r.errors, i.model, i.fingerprint,"
            " (SELECT count(*) FROM result WHERE run_id = r.id)"
            " FROM run r JOIN model_identity i ON i.id = r.identity_id ORDER BY r.id"
        ).fetchall()
        total = conn.execute("SELECT count(*) FROM result").fetchone()[0]
        kinds = dict(
            conn.execute(
                "SELECT r.identity_id = (SELECT min(identity_id) FROM run), count(*)"
                " FROM result r WHERE format_kind = 'fenced' GROUP BY 1"
            ).fetchall()
        )
    assert len(runs) == 6
    assert total == 6 * PROBES * SAMPLES
    for _id, status, passed, failed, errors, _m, _f, results in runs:
        assert status == "complete"
        assert errors == 0
        assert passed + failed == results == PROBES * SAMPLES
    assert [tuple(r[5:7]) for r in runs] == [MARCH] * 3 + [JUNE] * 3
    db_march = sum(r[2] for r in runs[:3]) / sum(r[2] + r[3] for r in runs[:3])
    db_june = sum(r[2] for r in runs[3:]) / sum(r[2] + r[3] for r in runs[3:])
    assert db_june < db_march
    assert (db_march, db_june) == pytest.approx((march, june), abs=0.001)
    assert kinds.get(0, 0) > kinds.get(1, 0)  # more fenced JSON after the update

    # The written files are usable as they are: the suggested next command works.
    listed = driftmon("--config", str(folder / "driftmon.toml"), "probes", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)["probes"]) == PROBES


def test_demo_starts_clean_when_run_again(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    first = _run_demo(folder, tmp_path)
    (folder / "probes" / "stale.yaml").write_text("set: stale\nprobes: []\n")
    second = _run_demo(folder, tmp_path)
    with _db(folder) as conn:
        assert conn.execute("SELECT count(*) FROM run").fetchone()[0] == 6
        assert conn.execute("SELECT min(id) FROM run").fetchone()[0] == 1
    assert not (folder / "probes" / "stale.yaml").exists()
    # The scenario is seeded: a fresh database gives the same measurements every time.
    rates = [re.search(r"Pass rate: .*", out) for out in (first, second)]
    assert rates[0] and rates[1] and rates[0].group() == rates[1].group()


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "driftmon.db").write_bytes(b"precious")
    proc = driftmon("demo", "--dir", str(folder), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not made by `driftmon demo`" in proc.stderr
    assert (folder / "driftmon.db").read_bytes() == b"precious"
    assert not (folder / "driftmon.toml").exists()
