"""A message Slack refused for good is shown by `status` and sent again, after the cause is
fixed, by `alerts deliver --retry-failed`: the real CLI, the simulated provider (down, so one
run raises an outage alert) and the fake Slack Web API on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Project
from tests.e2e.test_run_exit_codes import PROBES
from tests.fakes.slack_server import FakeSlack

TOKEN, CHANNEL = "xoxb-e2e-SECRET-token", "C0DRIFT"
PROVIDER_DOWN = """seed: 3
default: { output: "fine", faults: [{ kind: server_error, rate: 1.0 }] }
"""


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN, channels={CHANNEL}, validate=True) as fake:
        yield fake


def slack_config(slack: FakeSlack, channel: str) -> str:
    """No provider retries; the Slack token read from the project's `slack-token` file."""
    return f"""retries = 0
timeout = "2s"
[alerts.slack]
token = {{ file = "slack-token" }}
channel = "{channel}"
base_url = "{slack.api_url}"
"""


def status(project: Project) -> tuple[dict[str, Any], str]:
    as_json, people = project.cli("status", "--json"), project.cli("status")
    assert as_json.returncode == 0 and people.returncode == 0, as_json.stderr + people.stderr
    outbox: dict[str, Any] = json.loads(as_json.stdout)["outbox"]
    return outbox, people.stdout


def test_a_refused_message_is_sent_with_retry_failed_once_the_token_is_fixed(
    make_project: Any, slack: FakeSlack
) -> None:
    project: Project = make_project(
        PROBES, PROVIDER_DOWN, extra_config=slack_config(slack, CHANNEL)
    )
    token = project.root / "slack-token"
    token.write_text("xoxb-revoked-token\n", encoding="utf-8")

    done = project.cli("run", "--json")
    assert done.returncode == 4, done.stderr  # every call failed: an outage
    assert json.loads(done.stdout)["alerts"]["failed"] == 1
    assert "invalid_auth" in done.stderr
    assert slack.messages(CHANNEL) == []

    outbox, people = status(project)
    assert outbox["failed"] == 1 and "invalid_auth" in outbox["latest_error"]
    assert "--retry-failed" in outbox["hint"]
    assert "1 failed" in people and "invalid_auth" in people and "--retry-failed" in people
    listed = project.cli("alerts", "list")
    assert "FAILED" in listed.stdout and "--retry-failed" in listed.stdout

    token.write_text(TOKEN + "\n", encoding="utf-8")
    again = project.cli("alerts", "deliver")  # fixing the token alone sends nothing
    assert again.returncode == 0 and again.stdout.startswith("0 sent"), again.stderr
    assert slack.messages(CHANNEL) == []

    retried = project.cli("alerts", "deliver", "--retry-failed")
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.splitlines() == [
        "1 failed message queued again",
        "1 sent, 0 to retry, 0 failed",
    ]
    [outage] = slack.messages(CHANNEL)
    assert "sim" in outage["text"]

    outbox, people = status(project)
    assert outbox == {
        "pending": 0,
        "failed": 0,
        "failed_messages": [],
        "latest_error": None,
        "hint": None,
    }
    assert "0 failed" in people and "--retry-failed" not in people
    assert project.cli("alerts", "deliver", "--retry-failed").stdout.startswith("0 failed")
    assert len(slack.messages(CHANNEL)) == 1


def test_retry_failed_while_the_cause_remains_fails_again(
    make_project: Any, slack: FakeSlack
) -> None:
    project: Project = make_project(
        PROBES, PROVIDER_DOWN, extra_config=slack_config(slack, "C0NOSUCH")
    )
    (project.root / "slack-token").write_text(TOKEN + "\n", encoding="utf-8")
    assert project.cli("run").returncode == 4
    retried = project.cli("alerts", "deliver", "--retry-failed")
    assert retried.returncode == 1  # refused again, in this pass
    assert retried.stdout.splitlines()[0] == "1 failed message queued again"
    assert "channel_not_found" in retried.stderr
    assert len(slack.calls("chat.postMessage")) == 2
    outbox, _ = status(project)
    assert outbox["failed"] == 1 and "channel_not_found" in outbox["latest_error"]
