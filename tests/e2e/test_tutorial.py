"""docs/getting-started.md, followed as a new user does: `init`, the simulated provider with
config/scenarios/demo.yaml, the doc's own probe set and [drift] settings, its commands in its
order. The project first gets `insufficient data` with the reason named, then a real verdict,
then drift after the simulated model update."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.simulator.server import SimulatorServer
from tests.conftest import driftmon

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "getting-started.md").read_text(encoding="utf-8")
ENV = {"OPENAI_API_KEY": "anything", "COLUMNS": "200"}
MARCH = "gpt-4o-2024-05-13 (fp_3aa7262c27)"
JUNE = "gpt-4o-2024-08-06 (fp_c4e5b6fa31)"


def _block(after: str, lang: str) -> str:
    """The first ```lang block of the tutorial after the text `after`."""
    start = DOC.index(after)
    found = re.compile(rf"```{lang}\n(.*?)```", re.S).search(DOC, start)
    assert found, f"no {lang} block after {after!r}"
    return found.group(1)


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(ROOT / "config" / "scenarios" / "demo.yaml") as server:
        yield server


def _cli(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = driftmon(*args, cwd=project, env=ENV)
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _ok(project: Path, *args: str) -> str:
    done = _cli(project, *args)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done.stdout


def _run_as_the_doc_says(project: Path, line: str) -> str:
    """One `driftmon ...` line of a sh block (`a && b` runs both)."""
    out = ""
    for command in line.split("&&"):
        words = command.split()
        assert words[0] == "driftmon", line
        out += _ok(project, *words[1:])
    return out


def test_the_getting_started_project_reaches_insufficient_data_then_drift(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    _ok(tmp_path, "init", "myproject")
    project = tmp_path / "myproject"
    config = project / "driftmon.toml"
    # Section 4: the target pointed at the simulated provider.
    base_url = 'base_url = "http://127.0.0.1:8787/v1"'
    assert base_url in DOC
    text = config.read_text(encoding="utf-8")
    config.write_text(
        text.replace('model = "gpt-4o"\n', f'model = "gpt-4o"\nbase_url = "{sim.url}/v1"\n', 1),
        encoding="utf-8",
    )
    # Section 5: the doc's own probe set.
    (project / "probes" / "reviews.yaml").write_text(
        _block("`probes/reviews.yaml`", "yaml"), encoding="utf-8"
    )
    assert "0 problem(s)" in _ok(project, "probes", "validate")
    # Section 7: the first run.
    assert "building baseline 1/24" in _ok(project, "run")
    early = _ok(project, "drift")
    assert "gpt-4o-prod/starter: building baseline: 1 of 24 complete runs" in early, early

    # Section 8: a short baseline, runs with more samples, then `drift`.
    drift_toml = _block("## 8. Look for drift", "toml")
    assert "baseline_runs = 3" in drift_toml
    with config.open("a", encoding="utf-8") as out:
        out.write("\n" + drift_toml)
    commands = _block("Run three more times", "sh").strip().splitlines()
    assert commands[-1] == "driftmon drift --set starter"
    for line in commands[:-1]:
        _run_as_the_doc_says(project, line)
    untested = _ok(project, "drift", "--set", "starter")
    assert "insufficient data" in untested
    reason = "2 probe versions with data on both sides (need 10, drift.min_probes)"
    assert f"not tested: too little data: {reason}" in untested, untested
    assert reason in DOC
    # Untested, yet each side's values are shown: the pass rate as a percentage.
    row = next(line for line in untested.splitlines() if "pass_rate" in line)
    assert re.search(r"\d+\.\d% → \d+\.\d%", row), row

    # The reason names the setting; the tutorial lowers it to its two probes.
    min_probes = _block("lower it for the tutorial", "toml")
    assert min_probes.startswith("min_probes = 2")
    with config.open("a", encoding="utf-8") as out:
        out.write(min_probes)
    tested = _ok(project, "run", "--samples", "10")
    assert re.search(r"gpt-4o-prod/starter: .*\n  drift: no drift in \d+ metrics", tested)

    # The simulated model update, as the doc sends it.
    assert """curl -s -XPOST localhost:8787/_sim/phase -d '{"phase": "june"}'""" in DOC
    request = urllib.request.Request(
        f"{sim.url}/_sim/phase", data=json.dumps({"phase": "june"}).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as answer:
        assert answer.status == 200
    runs = _block('ship a "model update"', "sh").strip().splitlines()
    assert runs[-1] == "driftmon drift --set starter"
    for line in runs[1:-1]:
        _run_as_the_doc_says(project, line)
    drifted = _cli(project, "drift", "--set", "starter", "--fail-on-drift")
    assert drifted.returncode == 3, drifted.stdout + drifted.stderr
    assert f"model changed: {MARCH} → {JUNE}" in drifted.stdout
    assert re.search(r"^DRIFT: \S", drifted.stdout, re.M), drifted.stdout
    assert "DRIFTED" in drifted.stdout
