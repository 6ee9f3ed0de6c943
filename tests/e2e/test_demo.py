"""`driftmon demo` end to end, as `make demo` runs it: a subprocess, a real simulator, SQLite."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import driftmon

PROBES = 50  # monitor/demo_assets/llmdrift/prime_gpt4.csv
MARCH, JUNE = "gpt-4-0314", "gpt-4-0613"

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


def test_demo_finds_the_drift_of_the_recorded_update(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    out = _run_demo(folder, tmp_path)

    # Three baseline runs on March, then June until drift persists (two runs).
    assert out.count("building baseline") == 3, out
    assert "significant once, not yet persistent" in out
    assert re.search(
        r"run 5: 50 answers, pass rate 50\.0%, model gpt-4-0613; DRIFT: pass_rate", out
    )
    assert f"Model identity changed: {MARCH} → {JUNE}" in out
    # The verdict table shows the drop with its adjusted p-value.
    row = re.search(
        r"│ pass_rate\s*│ ([\d.]+)%\s*│ ([\d.]+)%\s*│ (-[\d.]+) pts\s*│ ([\d.e+-]+)", out
    )
    assert row, out
    before, after, effect, p_adj = (float(g) for g in row.groups())
    assert before > 80 and after == 50 and effect < -30 and p_adj < 1e-4
    # The Slack message, as the simulated Slack received it, names the metrics and identity.
    assert "Slack message posted to the simulated Slack (1 message(s)" in out
    assert "🔴 *Drift detected*" in out and "`gpt-4-0314` → `gpt-4-0613`" in out
    assert "driftmon --config demo/driftmon.toml drift" in out

    with _db(folder) as conn:
        runs = conn.execute(
            "SELECT r.status, r.passed, r.failed, r.errors, i.model FROM run r"
            " JOIN model_identity i ON i.id = r.identity_id ORDER BY r.id"
        ).fetchall()
        alerts = conn.execute("SELECT family, state FROM alert").fetchall()
        sent = conn.execute("SELECT kind, status FROM notification").fetchall()
    assert [r[4] for r in runs] == [MARCH] * 3 + [JUNE] * 2
    assert all(r[0] == "complete" and r[3] == 0 and r[1] + r[2] == PROBES for r in runs)
    assert alerts == [("quality", "firing")] and sent == [("firing", "sent")]

    # The written files are usable as they are: the suggested next command works.
    shown = driftmon("--config", str(folder / "driftmon.toml"), "drift", "--json")
    assert shown.returncode == 0, shown.stderr
    drifted = {v["metric"] for v in json.loads(shown.stdout)["verdicts"] if v["drifted"]}
    assert {"pass_rate", "length_chars"} <= drifted


def test_demo_starts_clean_when_run_again(tmp_path: Path) -> None:
    folder = tmp_path / "demo"
    first = _run_demo(folder, tmp_path)
    (folder / "probes" / "stale.yaml").write_text("set: stale\nprobes: []\n")
    second = _run_demo(folder, tmp_path)
    with _db(folder) as conn:
        assert conn.execute("SELECT count(*) FROM run").fetchone()[0] == 5
        assert conn.execute("SELECT min(id) FROM run").fetchone()[0] == 1
    assert not (folder / "probes" / "stale.yaml").exists()
    # Recorded answers: a fresh database gives the same verdicts every time.
    table = [re.search(r"│ pass_rate .*", out) for out in (first, second)]
    assert table[0] and table[1] and table[0].group() == table[1].group()


def test_demo_refuses_a_folder_it_did_not_make(tmp_path: Path) -> None:
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "driftmon.db").write_bytes(b"precious")
    proc = driftmon("demo", "--dir", str(folder), cwd=tmp_path)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "not made by `driftmon demo`" in proc.stderr
    assert (folder / "driftmon.db").read_bytes() == b"precious"
    assert not (folder / "driftmon.toml").exists()


def _path_without_driftmon() -> str:
    """$PATH as a user has it before activating the venv: no folder with a driftmon in it."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    return os.pathsep.join(f for f in folders if f and not (Path(f) / "driftmon").exists())


def test_demo_try_next_commands_run_as_printed_without_the_venv_on_path(tmp_path: Path) -> None:
    # `make demo` runs .venv/bin/driftmon from the checkout without activating the venv.
    installed = Path(sys.executable).parent / "driftmon"
    assert installed.is_file(), f"no console script at {installed}"
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "driftmon").symlink_to(installed)
    env = {k: v for k, v in os.environ.items() if k != "DRIFTMON_CONFIG"}
    env["PATH"] = _path_without_driftmon()
    proc = subprocess.run(
        [".venv/bin/driftmon", "demo"],
        cwd=tmp_path,
        env=env,
        text=True,
        capture_output=True,
        timeout=90,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.split("Try next:\n", 1)[1].splitlines()
    commands = [line.strip() for line in lines if line.startswith("  ")]
    assert len(commands) == 4, proc.stdout
    assert commands[0] == ".venv/bin/driftmon --config demo-output/driftmon.toml drift"
    for command in commands:
        ran = subprocess.run(
            command, shell=True, cwd=tmp_path, env=env, text=True, capture_output=True, timeout=60
        )
        assert ran.returncode == 0, f"{command}: exit {ran.returncode}\n{ran.stderr}"
    assert (tmp_path / "demo-output" / "report.html").is_file()
