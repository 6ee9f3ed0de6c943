"""The daemon end to end: real `driftmon serve` processes on short intervals, the simulator as
provider and the fake Slack for alerts, all on loopback; signals sent as an operator (or
systemd, or the OOM killer) would send them."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Project
from tests.e2e.test_replay import rows
from tests.fakes.slack_server import FakeSlack

PROBES = "set: e2e\nprobes:\n" + "".join(
    f'  - {{ id: p{i}, prompt: "Say the word {i}.", expect: [{{ regex: "word" }}] }}\n'
    for i in range(6)
)
SCENARIO = """name: serve
rules:
  - name: word
    match: "word"
    output: "the word"
    latency_ms: {latency}
{faults}"""
TOKEN, CHANNEL = "xoxb-serve-token", "C0SERVE"


def scenario(latency: int = 5, faults: str = "") -> str:
    return SCENARIO.format(latency=latency, faults=faults)


def settings(every: str = "2s", drain: str = "5s", extra: str = "") -> str:
    return (
        f'every = "{every}"\ntimeout = "10s"\nretries = 0\n{extra}\n'
        f'[server]\nlisten = "127.0.0.1:0"\ndrain = "{drain}"\n'
    )


def alerting(make_project: Any, slack: FakeSlack, extra: str, answers: str) -> Project:
    """A project whose alerts go to the fake Slack; `extra` goes into [defaults] and after."""
    config = settings(
        extra=f'{extra}\n[alerts.slack]\ntoken = {{ file = "token" }}\n'
        f'channel = "{CHANNEL}"\nbase_url = "{slack.api_url}"'
    )
    project: Project = make_project(PROBES, answers, extra_config=config)
    (project.root / "token").write_text(TOKEN)
    return project


def one_at_a_time(project: Project) -> None:
    """Concurrency 1 for the target (the [[targets]] table is the last in the file)."""
    with (project.root / "driftmon.toml").open("a") as config:
        config.write("concurrency = 1\n")


def wait_for(what: str, check: Callable[[], Any], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Serve:
    """One `driftmon serve` process; its JSON-lines log is kept in a file."""

    def __init__(self, project: Project, name: str = "serve", db_url: str | None = None) -> None:
        self.project, self.db_url = project, db_url or project.db_url
        self.log_path = project.root / f"{name}.log"
        self.log = self.log_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "monitor",
                "--config",
                str(project.root / "driftmon.toml"),
                "--db",
                self.db_url,
                "serve",
            ],
            env={**os.environ, **project.env},
            stdout=subprocess.DEVNULL,
            stderr=self.log,
        )

    def events(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(encoding="utf-8").splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                out.append({"raw": line})
        return out

    def event(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == name]

    @property
    def url(self) -> str:
        started = wait_for("the daemon to start", lambda: self.event("started"))
        return f"http://{started[0]['listen']}"

    def get(self, path: str) -> httpx.Response:
        return httpx.get(self.url + path, timeout=5)

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 30) -> tuple[int, float]:
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        return code, time.monotonic() - t0

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Serve]]:
    started: list[Serve] = []

    def start(project: Project, **kwargs: Any) -> Serve:
        daemon = Serve(project, **kwargs)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()


def runs(db_url: str, status: str | None = None) -> list[tuple[Any, ...]]:
    return table(
        db_url,
        "SELECT id, status, slot, owner FROM run"
        + (f" WHERE status = '{status}'" if status else "")
        + " ORDER BY id",
    )


def results(db_url: str) -> int:
    found = table(db_url, "SELECT count(*) FROM result")
    return int(found[0][0]) if found else 0


def table(db_url: str, query: str) -> list[tuple[Any, ...]]:
    """Rows, or none while the daemon has not created the schema yet."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    try:
        return rows(db_url, query)
    except (OperationalError, ProgrammingError):
        return []


def slot_seconds(slot: str) -> int:
    from datetime import datetime

    return int(datetime.fromisoformat(slot.split("@")[1].replace("Z", "+00:00")).timestamp())


def test_runs_on_schedule_answers_health_and_metrics_and_stops_cleanly(
    make_project: Any, serve: Callable[..., Serve]
) -> None:
    project: Project = make_project(PROBES, scenario(), extra_config=settings())
    daemon = serve(project)
    wait_for("three complete runs", lambda: len(runs(project.db_url, "complete")) >= 3)
    done = runs(project.db_url, "complete")
    slots = [slot_seconds(r[2]) for r in done]
    assert len(set(slots)) == len(slots), "a slot ran twice"
    assert all(s % 2 == 0 for s in slots) and all(b - a == 2 for a, b in pairwise(slots))

    health = daemon.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    assert health.json()["jobs"]["sim/e2e"]["overdue"] is False
    metrics = daemon.get("/metrics").text
    assert 'driftmon_runs_total{probe_set="e2e",status="complete",target="sim"}' in metrics
    assert 'driftmon_results_total{error_class="",target="sim",verdict="pass"}' in metrics
    assert "driftmon_provider_latency_seconds_bucket" in metrics
    assert "driftmon_scheduler_running 1.0" in metrics
    assert 'driftmon_schedule_period_seconds{probe_set="e2e",target="sim"} 2.0' in metrics
    assert 'driftmon_evaluation_duration_seconds_count{target="sim"}' in metrics
    assert "driftmon_heartbeat_timestamp_seconds 0.0" not in metrics  # registering set it
    assert "driftmon_build_info{python=" in metrics and "process_resident_memory_bytes" in metrics
    assert "_created" not in metrics
    index = daemon.get("/")
    assert index.status_code == 200 and 'href="/metrics"' in index.text
    assert daemon.get("/nowhere").status_code == 404

    status = project.cli("status", "--json")
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)
    [alive] = state["daemons"]
    assert alive["alive"] and alive["pid"] == daemon.proc.pid
    [job] = state["targets"]
    assert job["schedule"] == "every 2s" and job["last_run"]["status"] in ("complete", "running")
    assert job["next_run_at"] is not None

    run_events = daemon.event("run")
    assert (
        run_events and {"run_id", "status", "results", "passed", "errors"} <= run_events[0].keys()
    )
    assert "the word" not in daemon.log_path.read_text()  # model output is never logged

    code, took = daemon.stop()
    assert code == 0 and took < 10
    assert rows(project.db_url, "SELECT count(*) FROM daemon WHERE stopped_at IS NULL") == [(0,)]
    assert json.loads(project.cli("status", "--json").stdout)["daemons"] == []


def test_sigterm_mid_run_exits_within_the_drain_time(
    make_project: Any, serve: Callable[..., Serve]
) -> None:
    # Each request takes 1 s, one at a time: the run needs 6 s; the drain allows 1 s.
    project: Project = make_project(
        PROBES, scenario(latency=1000), extra_config=settings(every="1h", drain="1s")
    )
    one_at_a_time(project)
    daemon = serve(project)
    wait_for("a result", lambda: results(project.db_url) >= 1)
    code, took = daemon.stop()
    assert code == 0
    assert took < 1 + 5, f"took {took:.1f} s to stop with a 1 s drain"
    [(_run_id, status, _slot, _owner)] = runs(project.db_url)
    assert status == "interrupted"
    stored = rows(project.db_url, "SELECT probe_version_id, sample_index FROM result")
    assert 1 <= len(stored) < 6 and len(set(stored)) == len(stored)
    assert project.sim.stats()["total"] <= len(stored) + 1  # at most the one in flight lost
    assert [e for e in daemon.events() if e.get("level") == "error"] == []


def test_kill_9_mid_run_then_restart_resumes_without_duplicates(
    make_project: Any, serve: Callable[..., Serve]
) -> None:
    project: Project = make_project(
        PROBES, scenario(latency=700), extra_config=settings(every="1h")
    )
    one_at_a_time(project)
    first = serve(project, name="first")
    wait_for("two results", lambda: results(project.db_url) >= 2)
    first.proc.send_signal(signal.SIGKILL)
    first.proc.wait(10)
    before = rows(project.db_url, "SELECT count(*) FROM result")[0][0]
    sent_before = project.sim.stats()["total"]
    assert sent_before <= before + 1  # concurrency 1: at most one request was in flight

    second = serve(project, name="second")
    [(_run_id, _status, _slot, owner)] = wait_for(
        "the run to complete", lambda: runs(project.db_url, "complete"), timeout=30
    )
    assert str(second.proc.pid) in owner  # resumed by the new process, in the same slot
    stored = rows(project.db_url, "SELECT probe_version_id, sample_index FROM result")
    assert len(stored) == 6 and len(set(stored)) == 6
    assert project.sim.stats()["total"] - sent_before == 6 - before  # only the missing ones
    assert second.stop()[0] == 0


def test_an_outage_alerts_once_never_as_drift_and_the_schedule_goes_on(
    make_project: Any, serve: Callable[..., Serve]
) -> None:
    with FakeSlack(token=TOKEN, channels={CHANNEL}, validate=True) as slack:
        down = "    faults:\n      - { kind: server_error, rate: 1.0, status: 503 }\n"
        project = alerting(make_project, slack, "[drift]\nbaseline_runs = 2", scenario(faults=down))
        daemon = serve(project)
        done = wait_for(
            "four runs", lambda: (r := runs(project.db_url, "complete")) and len(r) >= 4 and r
        )
        assert len(done) >= 4
        errors = rows(project.db_url, "SELECT DISTINCT verdict, error_class FROM result")
        assert errors == [("error", "server")]
        wait_for("the outage message", lambda: slack.messages(CHANNEL))
        time.sleep(1)
        [message] = slack.messages(CHANNEL)
        assert "Provider errors" in message["text"] and "Drift" not in message["text"]
        assert rows(project.db_url, "SELECT family, state FROM alert") == [
            ("operational", "firing")
        ]
        assert daemon.stop()[0] == 0


def test_sighup_with_a_broken_config_keeps_the_old_one(
    make_project: Any, serve: Callable[..., Serve]
) -> None:
    project: Project = make_project(PROBES, scenario(), extra_config=settings())
    daemon = serve(project)
    wait_for("a run", lambda: runs(project.db_url, "complete"))
    config = project.root / "driftmon.toml"
    good = config.read_text()
    config.write_text(good.replace('every = "2s"', 'every = "soon"'))
    daemon.signal(signal.SIGHUP)
    [refused] = wait_for("the reload to be refused", lambda: daemon.event("reload_refused"))
    assert "invalid duration 'soon'" in refused["msg"] and "driftmon.toml" in refused["msg"]
    count = len(runs(project.db_url, "complete"))
    wait_for("runs to go on", lambda: len(runs(project.db_url, "complete")) >= count + 2)
    assert daemon.get("/healthz").status_code == 200

    config.write_text(good.replace('every = "2s"', 'every = "3s"'))
    daemon.signal(signal.SIGHUP)
    wait_for("the reload", lambda: daemon.event("reloaded"))
    assert 'driftmon_config_reloads_total{outcome="refused"} 1.0' in daemon.get("/metrics").text
    assert daemon.stop()[0] == 0


def test_a_bad_start_is_refused_with_the_reason(make_project: Any, tmp_path: Path) -> None:
    project: Project = make_project(PROBES, scenario(), extra_config=settings())
    blocker = Serve(project, name="first")
    try:
        taken = blocker.url.split("//")[1]
        config = project.root / "driftmon.toml"
        config.write_text(config.read_text().replace('"127.0.0.1:0"', f'"{taken}"'))
        done = project.cli("serve", timeout=30)
        assert done.returncode == 2
        assert "server.listen" in done.stderr and "cannot listen on" in done.stderr
    finally:
        blocker.close()
    done = project.cli("--db", "postgresql+psycopg://nobody@127.0.0.1:1/none", "serve")
    assert done.returncode == 1 and "the database does not answer" in done.stderr


def test_two_replicas_on_postgresql_run_each_slot_once_and_survive_a_death(
    make_project: Any, serve: Callable[..., Serve], pg_url: str
) -> None:
    project: Project = make_project(PROBES, scenario(), extra_config=settings(), db_url=pg_url)
    a = serve(project, name="a")
    b = serve(project, name="b")
    wait_for("six runs", lambda: len(runs(pg_url, "complete")) >= 6, timeout=40)
    done = runs(pg_url)
    slots = [slot_seconds(r[2]) for r in done]
    assert len(slots) == len(set(slots)), "a slot ran twice"
    told = {
        slot_seconds(slot) for d in (a, b) for e in d.event("slot_skipped") for slot in e["slots"]
    }
    missed = set(range(min(slots), max(slots) + 1, 2)) - set(slots)
    assert missed <= told, f"slots {sorted(missed - told)} were missed silently"
    assert len(b.event("started")) == 1 and len(a.event("started")) == 1

    a.proc.send_signal(signal.SIGKILL)
    a.proc.wait(10)
    killed_at = len(done)
    wait_for(
        "runs after the death", lambda: len(runs(pg_url, "complete")) >= killed_at + 4, timeout=40
    )
    after = [r for r in runs(pg_url) if r[0] > done[-1][0] and r[1] == "complete"]
    assert all(str(b.proc.pid) in r[3] for r in after[1:])
    later = [slot_seconds(r[2]) for r in after]
    # A slot may go unrun only when the survivor says why: its previous run was still going
    # (overrun) or the loop reached the slot past its grace (late), as on a loaded machine.
    reported = {slot_seconds(slot) for e in b.event("slot_skipped") for slot in e["slots"]}
    # The slot whose run `a` was in the middle of when it died stays claimed by that run: the
    # survivor closes it as interrupted when it opens its next run (a race: only when the kill
    # lands during a run).
    died = {
        slot_seconds(r[2]) for r in runs(pg_url, "interrupted") if r[2] and str(a.proc.pid) in r[3]
    }
    assert len(died) <= 1, died
    missing = set(range(later[0], later[-1] + 1, 2)) - set(later) - died
    assert missing <= reported, f"the survivor skipped {sorted(missing - reported)} silently"
    assert not [r for r in runs(pg_url, "running") if str(a.proc.pid) in r[3]], "left running"
    assert len(later) >= 4
    assert b.stop()[0] == 0


def test_a_slot_that_comes_while_the_previous_run_is_going_is_skipped_and_reported(
    make_project: Any, serve: Callable[..., Serve]
) -> None:
    # Every answer takes 2.5 s and a slot comes every second: runs never overlap, and each
    # slot that comes while one is going is skipped, counted and logged.
    project: Project = make_project(PROBES, scenario(latency=2500), extra_config=settings("1s"))
    daemon = serve(project)
    skipped = wait_for("a skipped slot", lambda: daemon.event("slot_skipped"), timeout=30)
    assert skipped[0]["reason"] == "overrun" and skipped[0]["job"] == "sim/e2e"
    wait_for("two complete runs", lambda: len(runs(project.db_url, "complete")) >= 2, timeout=30)
    ran = {r[2] for r in runs(project.db_url)}
    told = {slot for e in daemon.event("slot_skipped") for slot in e["slots"]}
    assert told and not told & ran  # a skipped slot has no run
    metrics = daemon.get("/metrics").text
    assert 'driftmon_runs_skipped_total{probe_set="e2e",reason="overrun",target="sim"}' in metrics
    assert daemon.stop()[0] == 0


def test_a_run_over_the_daily_budget_is_skipped_whole_and_announced_once(
    make_project: Any, serve: Callable[..., Serve]
) -> None:
    with FakeSlack(token=TOKEN, channels={CHANNEL}, validate=True) as slack:
        project = alerting(make_project, slack, "daily_calls = 8", scenario())
        dry = json.loads(project.cli("run", "--dry-run", "--json").stdout)["dry_run"]
        assert [(d["calls"], d["daily_calls"]) for d in dry] == [(6, 8)]
        daemon = serve(project)
        wait_for("two skipped runs", lambda: len(runs(project.db_url, "skipped")) >= 2)
        assert len(runs(project.db_url, "complete")) == 1  # 6 calls used; 6 more would be 12
        assert results(project.db_url) == 6  # nothing half-run
        [(note,)] = table(project.db_url, "SELECT note FROM run WHERE status = 'skipped' LIMIT 1")
        assert note == "daily call budget: 6 used today + 6 for this run > 8"
        wait_for("the budget message", lambda: slack.messages(CHANNEL))
        time.sleep(2.5)  # more skipped runs: still one message a day
        [message] = slack.messages(CHANNEL)
        assert "Run skipped: budget" in message["text"] and "6 used today" in message["text"]
        metrics = daemon.get("/metrics").text
        assert (
            'driftmon_runs_skipped_total{probe_set="e2e",reason="budget",target="sim"}' in metrics
        )
        assert daemon.stop()[0] == 0
