"""`driftmon run` tells cron and CI about failing provider calls: exit 4 when every call of a
run failed (the provider is down or unreachable), and with --fail-on-error when any did. The
results are stored and the summary printed either way."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

from tests.conftest import driftmon
from tests.e2e.conftest import SECRET, Project, write_project
from tests.e2e.test_replay import rows

PROBES = "set: basics\nprobes:\n" + "".join(
    f"  - {{ id: {name}, response_format: text, prompt: 'case {name}' }}\n"
    for name in ["one", "two", "three", "broken"]
)
# Every call to 'case broken' answers 500; the others are answered.
PARTLY_FAILING = """seed: 5
rules:
  - { name: broken, match: 'case broken', faults: [{ kind: server_error, rate: 1.0 }] }
default: { output: "fine" }
"""
NO_RETRIES = 'retries = 0\ntimeout = "2s"'


def closed_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_an_unreachable_provider_exits_4_with_the_results_stored(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        probes=PROBES,
        scenario="seed: 1\n",
        base_url=f"http://127.0.0.1:{closed_port()}/v1",
        extra_config=NO_RETRIES,
    )
    db_url = f"sqlite:///{tmp_path / 'driftmon.db'}"

    def run(*args: str) -> Any:
        return driftmon(
            "--config",
            str(tmp_path / "driftmon.toml"),
            "--db",
            db_url,
            "run",
            *args,
            env={"SIM_KEY": SECRET},
        )

    done = run("--json")
    assert done.returncode == 4, done.stderr
    [outcome] = json.loads(done.stdout)["runs"]
    assert outcome["status"] == "complete" and outcome["all_failed"] is True
    assert outcome["results"] == outcome["errors"] == 4
    assert "all 4 calls failed" in done.stderr and "unreachable" in done.stderr

    people = run()  # the summary is printed for people too, and the outage still exits 4
    assert people.returncode == 4, people.stderr
    assert "4 errors" in people.stdout and "all 4 calls failed" in people.stderr
    assert run("--fail-on-drift").returncode == 4  # never hidden behind a drift verdict

    stored = rows(db_url, "SELECT verdict, count(*) FROM result GROUP BY verdict")
    assert stored == [("error", 12)]
    runs = rows(db_url, "SELECT status FROM run ORDER BY id")
    assert runs == [("complete",)] * 3


def test_some_failed_calls_exit_0_unless_fail_on_error(make_project: Any) -> None:
    project: Project = make_project(PROBES, PARTLY_FAILING, extra_config=NO_RETRIES)
    done = project.cli("run", "--json")
    assert done.returncode == 0, done.stderr
    [outcome] = json.loads(done.stdout)["runs"]
    assert (outcome["passed"], outcome["errors"], outcome["all_failed"]) == (3, 1, False)

    strict = project.cli("run", "--json", "--fail-on-error")
    assert strict.returncode == 4, strict.stderr
    [outcome] = json.loads(strict.stdout)["runs"]
    assert (outcome["passed"], outcome["errors"]) == (3, 1)
    assert "calls failed" not in strict.stderr  # not an outage: the flag alone decides
    assert rows(project.db_url, "SELECT count(*) FROM run WHERE status = 'complete'") == [(2,)]
