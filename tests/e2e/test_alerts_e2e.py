"""Alerts end to end: the real CLI, the simulated provider and the fake Slack Web API, each on
a real loopback socket, through a model update that ships a regression."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from monitor.alerts.outbox import deliver_due
from monitor.alerts.slack import SlackNotifier
from monitor.config import SecretRef, SlackSettings
from monitor.store.db import make_engine
from monitor.store.models import utcnow
from tests.e2e.conftest import Project
from tests.e2e.test_drift_e2e import BEHAVIOUR_CHANGE, DRIFT_SETTINGS, PROBES
from tests.e2e.test_replay import rows
from tests.fakes.slack_server import FakeSlack

TOKEN, CHANNEL = "xoxb-e2e-SECRET-token", "C0DRIFT"


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN, channels={CHANNEL}, validate=True) as fake:
        yield fake


def alerting_project(make_project: Any, slack: FakeSlack, channel: str = CHANNEL) -> Project:
    config = (
        DRIFT_SETTINGS
        + f"""[alerts]
repeat_interval = "12h"
[alerts.slack]
token = {{ file = "slack-token" }}
channel = "{channel}"
base_url = "{slack.api_url}"
"""
    )
    project: Project = make_project(PROBES, BEHAVIOUR_CHANGE, extra_config=config)
    (project.root / "slack-token").write_text(TOKEN + "\n", encoding="utf-8")
    return project


def run(project: Project, expect: int = 0) -> dict[str, Any]:
    done = project.cli("run", "--json", "--samples", "3")
    assert done.returncode == expect, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def alerts(project: Project) -> dict[str, Any]:
    done = project.cli("alerts", "list", "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def through_update(project: Project) -> None:
    for _ in range(3):
        run(project)
    project.sim.set_phase("june")
    run(project)  # significant once: pending


def test_drift_is_announced_once_with_its_metrics_then_resolved_in_thread(
    make_project: Any, slack: FakeSlack
) -> None:
    project = alerting_project(make_project, slack)
    through_update(project)
    assert slack.messages(CHANNEL) == []
    assert [a["state"] for a in alerts(project)["alerts"]] == ["pending"]

    second = run(project)
    assert second["alerts"] == {"sent": 1, "retrying": 0, "failed": 0, "errors": []}
    [firing] = slack.messages(CHANNEL)
    drifted = second["runs"][0]["drift"]["drifted"]
    assert {"pass_rate", "format"} <= set(drifted)
    for metric in drifted:
        assert metric in firing["text"]
    assert "gpt-4o-2024-05-13 (fp_march)" in firing["text"]  # the identity change it follows
    assert "gpt-4o-2024-08-06 (fp_june)" in firing["text"]
    assert TOKEN not in json.dumps(slack.requests[0].body)
    [post] = slack.calls("chat.postMessage")
    assert post.body["unfurl_links"] is False and post.body["unfurl_media"] is False

    listed = alerts(project)
    [alert] = listed["alerts"]
    assert alert["state"] == "firing" and set(alert["metrics"]) == set(drifted)
    assert {"id", "target", "state", "metrics", "opened_at", "resolved_at"} <= alert.keys()
    assert listed["outbox"] == {"pending": 0, "failed": 0, "undelivered": []}

    run(project)  # still drifting: said already
    assert len(slack.messages(CHANNEL)) == 1

    assert project.cli("baseline", "accept").returncode == 0
    run(project)
    first, resolved = slack.messages(CHANNEL)
    assert "Drift resolved" in resolved["text"] and resolved["thread_ts"] == first["ts"]
    assert [a["state"] for a in alerts(project)["alerts"]] == ["resolved"]
    people = project.cli("alerts", "list")
    assert people.returncode == 0 and "resolved" in people.stdout


def test_silence_from_the_cli_holds_back_then_unsilence_lets_it_through(
    make_project: Any, slack: FakeSlack
) -> None:
    project = alerting_project(make_project, slack)
    done = project.cli("alerts", "silence", "sim", "--for", "2h", "--reason", "vendor ticket 42")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("silence 1: sim (all metrics) until ")
    through_update(project)
    run(project)  # drifted, but silenced
    assert slack.messages(CHANNEL) == []
    listed = alerts(project)
    assert listed["alerts"][0]["state"] == "firing" and listed["alerts"][0]["silenced"]
    assert listed["silences"][0]["reason"] == "vendor ticket 42"

    assert project.cli("alerts", "unsilence", "sim").returncode == 0
    assert project.cli("alerts", "unsilence", "sim").returncode == 2  # nothing left to end
    run(project)
    [message] = slack.messages(CHANNEL)
    assert "Drift detected" in message["text"]


def test_bad_silences_are_refused_with_the_reason(make_project: Any, slack: FakeSlack) -> None:
    project = alerting_project(make_project, slack)
    for args, problem in [
        (["nosuch", "--for", "1h", "--reason", "x"], "no target named 'nosuch'"),
        (["sim", "--for", "soon", "--reason", "x"], "--for: invalid duration"),
        (["sim", "--for", "1h", "--reason", " "], "--reason must say why"),
    ]:
        done = project.cli("alerts", "silence", *args)
        assert done.returncode == 2 and problem in done.stderr, done.stderr


def test_alerts_test_reports_success_and_a_permanent_failure(
    make_project: Any, slack: FakeSlack
) -> None:
    project = alerting_project(make_project, slack)
    done = project.cli("alerts", "test")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sent to channel {CHANNEL}"
    assert "driftmon test message" in slack.messages(CHANNEL)[0]["text"]

    wrong = alerting_project(make_project, slack, channel="C0NOSUCH")
    done = wrong.cli("alerts", "test")
    assert done.returncode == 1
    assert "channel_not_found" in done.stderr and TOKEN not in done.stderr + done.stdout


def test_a_permanent_delivery_error_is_kept_and_listed(make_project: Any, slack: FakeSlack) -> None:
    project = alerting_project(make_project, slack, channel="C0NOSUCH")
    through_update(project)
    done = project.cli("run", "--samples", "3")
    assert done.returncode == 0, done.stderr  # the results and verdicts are stored regardless
    assert "channel_not_found" in done.stderr
    listed = alerts(project)
    assert listed["outbox"]["failed"] == 1
    [failed] = listed["outbox"]["undelivered"]
    assert failed["status"] == "failed" and "channel_not_found" in failed["last_error"]
    assert listed["alerts"][0]["delivery"]["status"] == "failed"
    assert "FAILED" in project.cli("alerts", "list").stdout
    again = project.cli("alerts", "deliver")
    assert again.returncode == 0 and again.stdout.startswith("0 sent")
    assert len(slack.calls("chat.postMessage")) == 1  # never retried


def test_killed_between_slacks_answer_and_the_commit_delivers_at_most_one_duplicate(
    make_project: Any, slack: FakeSlack, tmp_path: Path
) -> None:
    project = alerting_project(make_project, slack)
    through_update(project)
    slack.fail_next("ratelimited", status=429, retry_after=1)
    run(project)  # drifted; the message is queued and waits for Retry-After
    assert slack.messages(CHANNEL) == []
    time.sleep(1.1)

    # When Slack takes the message, take the database's write lock before answering: the
    # worker gets its 200 and then cannot record it. Then it is killed.
    database = str(project.root / "driftmon.db")
    locker: list[sqlite3.Connection] = []
    answered = threading.Event()

    def hold_the_database(_: Any) -> None:
        conn = sqlite3.connect(database, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("BEGIN IMMEDIATE")
        locker.append(conn)
        answered.set()

    slack.on_request = hold_the_database
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "--config",
            str(project.root / "driftmon.toml"),
            "--db",
            project.db_url,
            "alerts",
            "deliver",
        ],
        env={**os.environ, **project.env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert answered.wait(60), "the worker never reached Slack"
        time.sleep(1.0)  # the 200 is on its way; the worker now waits for the lock
        assert worker.poll() is None
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)
    finally:
        if worker.poll() is None:
            worker.kill()
        slack.on_request = None
        for conn in locker:
            conn.rollback()
            conn.close()
    assert len(slack.messages(CHANNEL)) == 1
    [(status, attempts)] = rows(project.db_url, "SELECT status, attempts FROM notification")
    assert (status, attempts) == ("pending", 1)  # Slack has it; the outbox knows of the 429

    # After the dead worker's lease expires, the next delivery sends it again, once.
    settings = SlackSettings(
        token=SecretRef(file=str(project.root / "slack-token")),
        channel=CHANNEL,
        base_url=slack.api_url,
    )
    engine = make_engine(project.db_url)
    later = utcnow() + timedelta(minutes=3)
    report = deliver_due(engine, SlackNotifier.from_settings(settings), clock=lambda: later)
    assert report.sent == 1
    assert deliver_due(engine, SlackNotifier.from_settings(settings), clock=lambda: later).sent == 0
    engine.dispose()
    assert len(slack.messages(CHANNEL)) == 2  # delivered, with one duplicate
    first, duplicate = slack.messages(CHANNEL)
    assert first["text"] == duplicate["text"] and "Drift detected" in first["text"]
    assert rows(project.db_url, "SELECT status FROM notification") == [("sent",)]
