"""`driftmon alerts test` against a rate-limited Slack: the real CLI and the fake Slack Web API
on loopback. It waits out a 429's Retry-After like every other delivery, within its 30 s."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.test_alerts_e2e import CHANNEL, TOKEN, alerting_project
from tests.fakes.slack_server import FakeSlack, Recorded


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(token=TOKEN, channels={CHANNEL}, validate=True) as fake:
        yield fake


def test_alerts_test_waits_out_a_rate_limit(make_project: Any, slack: FakeSlack) -> None:
    project = alerting_project(make_project, slack)
    arrived: list[float] = []

    def stamp(_: Recorded) -> None:
        arrived.append(time.monotonic())

    slack.on_request = stamp
    slack.fail_next("ratelimited", status=429, retry_after=1)
    done = project.cli("alerts", "test")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"sent to channel {CHANNEL}"
    assert "ratelimited" in done.stderr and "retrying in 1 s" in done.stderr
    assert len(slack.calls("chat.postMessage")) == 2
    assert arrived[1] - arrived[0] >= 1.0, "retried before Retry-After"
    assert "driftmon test message" in slack.messages(CHANNEL)[0]["text"]


def test_alerts_test_gives_up_on_a_wait_beyond_its_time(
    make_project: Any, slack: FakeSlack
) -> None:
    project = alerting_project(make_project, slack)
    slack.fail_next("ratelimited", status=429, retry_after=600)
    started = time.monotonic()
    done = project.cli("alerts", "test")
    assert done.returncode == 1
    assert time.monotonic() - started < 60, "it waited for Slack's 600 s"
    assert "ratelimited" in done.stderr and "gave up after 1 attempt" in done.stderr
    assert TOKEN not in done.stderr + done.stdout
    assert len(slack.calls("chat.postMessage")) == 1 and slack.messages(CHANNEL) == []
