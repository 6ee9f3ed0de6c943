"""The alert lifecycle and the outbox against a real database (SQLite and PostgreSQL) and the
fake Slack Web API on loopback, with a simulated clock: runs and results are written as the
runner writes them, the drift statistics are the real ones, messages go over real HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor import after_run
from monitor.after_run import evaluate_and_alert
from monitor.alerts.manager import AlertPolicy
from monitor.alerts.outbox import deliver_due
from monitor.alerts.slack import SlackNotifier
from monitor.config import SecretRef, SlackSettings
from monitor.drift.settings import DriftConfig
from monitor.store.db import session_scope
from monitor.store.models import Alert, DeliveryAttempt, Evaluation, Notification, Run, Silence
from tests.fakes.slack_server import FakeSlack
from tests.storage.test_drift_store import World

CONFIG = DriftConfig(baseline_runs=3, window_runs=1, persistence=2)
POLICY = AlertPolicy(
    repeat_interval=timedelta(hours=12), outage_error_rate=0.5, identity_notice=False, notify=True
)
T0 = datetime(2026, 3, 1, tzinfo=UTC)
TOKEN, CHANNEL = "xoxb-test-token", "C0ALERTS"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


class Scene:
    """A world with a clock, a policy, and Slack."""

    def __init__(self, world: World, slack: FakeSlack, policy: AlertPolicy = POLICY) -> None:
        self.world, self.slack, self.policy, self.clock = world, slack, policy, Clock()
        settings = SlackSettings(
            token=SecretRef(env="DRIFTMON_TEST_SLACK"), channel=CHANNEL, base_url=slack.api_url
        )
        self.notifier = SlackNotifier.from_settings(settings)
        self.identity = world.identity("gpt-4o-2024-05-13", "fp_a")

    def run(self, hours: float = 1, **kwargs: Any) -> Any:
        """One hourly run and its evaluation, at the simulated time."""
        self.clock.advance(hours=hours)
        run_id = self.world.run(self.identity, **kwargs)
        return evaluate_and_alert(self.world.engine, run_id, CONFIG, self.policy, now=self.clock())

    def deliver(self) -> Any:
        return deliver_due(self.world.engine, self.notifier, clock=self.clock)

    def baseline(self) -> None:
        for _ in range(3):
            self.run(fail_rate=0.05)

    def posted(self) -> list[dict[str, Any]]:
        return self.slack.messages(CHANNEL)

    def rows(self, model: Any) -> list[Any]:
        with Session(self.world.engine) as s:
            return list(s.execute(select(model).order_by(col(model.id))).scalars())


@pytest.fixture
def scene(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scene]:
    monkeypatch.setenv("DRIFTMON_TEST_SLACK", TOKEN)
    with FakeSlack(token=TOKEN, channels={CHANNEL}, validate=True) as slack:
        yield Scene(World(engine), slack)


def texts(messages: list[dict[str, Any]]) -> list[str]:
    return [m["text"] for m in messages]


def test_one_message_per_drifted_evaluation_with_every_drifted_metric(scene: Scene) -> None:
    scene.baseline()
    first = scene.run(fail_rate=0.6)  # significant, not yet persistent: pending
    assert first.evaluation_id is not None and not first.drifted
    assert [a.state for a in scene.rows(Alert)] == ["pending"]
    assert scene.rows(Notification) == []

    second = scene.run(fail_rate=0.6)
    drifted = {v.metric for v in second.drifted}
    assert {"pass_rate", "field:currency"} <= drifted
    report = scene.deliver()
    assert (report.sent, report.retrying, report.failed) == (1, 0, 0)
    [message] = scene.posted()
    for metric in drifted:  # every drifted metric in the one message, in blocks and text
        assert metric in message["text"]
        assert any(metric in str(b) for b in message["blocks"])
    assert "Drift detected" in message["text"] and "gpt-4o-2024-05-13" in message["text"]
    [alert] = scene.rows(Alert)
    assert alert.state == "firing" and set(alert.metrics) == drifted
    assert alert.thread_ts == message["ts"]

    scene.run(fail_rate=0.6)  # still drifting, an hour later: nothing new to say
    assert scene.deliver().sent == 0 and len(scene.posted()) == 1


def test_repeat_after_repeat_interval_and_not_before(scene: Scene) -> None:
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)
    fired_at = scene.clock()
    scene.deliver()
    while scene.clock() + timedelta(hours=1) < fired_at + POLICY.repeat_interval:
        scene.run(fail_rate=0.6)
    assert scene.deliver().sent == 0, "repeated before repeat_interval"
    scene.run(fail_rate=0.6)  # exactly repeat_interval after the firing message
    assert scene.clock() - fired_at == POLICY.repeat_interval
    assert scene.deliver().sent == 1
    assert [m["text"].splitlines()[0] for m in scene.posted()] == [
        "🔴 *Drift detected*",
        "🔁 *Still drifting*",
    ]


def test_resolved_follows_in_the_thread_of_the_firing_message(scene: Scene) -> None:
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)
    scene.deliver()
    record = scene.run(fail_rate=0.05)  # back to normal
    assert record.evaluation_id is not None and not record.drifted
    assert scene.deliver().sent == 1
    firing, resolved = scene.posted()
    assert resolved["thread_ts"] == firing["ts"] and firing["thread_ts"] is None
    assert "Drift resolved" in resolved["text"]
    [alert] = scene.rows(Alert)
    assert alert.state == "resolved" and alert.resolved_at == scene.clock()


def test_a_pending_alert_that_clears_says_nothing(scene: Scene) -> None:
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.05)
    assert [a.state for a in scene.rows(Alert)] == ["resolved"]
    assert scene.deliver().sent == 0 and scene.posted() == []


def test_silence_is_honoured_then_expires(scene: Scene) -> None:
    with session_scope(scene.world.engine) as s:
        s.add(
            Silence(
                target="sim",
                reason="known regression",
                created_at=scene.clock(),
                expires_at=scene.clock() + timedelta(hours=5, minutes=30),
            )
        )
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)  # firing at +5h, silenced
    assert scene.deliver().sent == 0 and scene.posted() == []
    assert [a.state for a in scene.rows(Alert)] == ["firing"]
    scene.run(fail_rate=0.6)  # +6h: the silence has expired and it still fires
    assert scene.deliver().sent == 1
    assert "Drift detected" in scene.posted()[0]["text"]


def test_a_silence_on_another_metric_does_not_hide_the_alert(scene: Scene) -> None:
    with session_scope(scene.world.engine) as s:
        s.add(
            Silence(
                target="sim",
                metric="latency",
                reason="slow week",
                created_at=T0,
                expires_at=T0 + timedelta(days=1),
            )
        )
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)
    assert scene.deliver().sent == 1


def test_an_outage_alerts_once_and_holds_back_drift_until_it_ends(scene: Scene) -> None:
    scene.baseline()
    for _ in range(3):  # the provider fails most requests and what gets through is worse
        record = scene.run(fail_rate=0.6, error_rate=0.7)
        assert record.evaluation_id is not None
    assert scene.deliver().sent == 1
    [outage] = scene.posted()
    assert "Provider errors" in outage["text"] and "error_rate" in outage["text"]
    assert "Drift detected" not in outage["text"]
    states = {a.family: a.state for a in scene.rows(Alert)}
    assert states["operational"] == "firing"

    scene.run(fail_rate=0.6)  # requests succeed again; the regression is still there
    assert scene.deliver().sent == 2
    texts_now = texts(scene.posted())
    assert "Provider errors resolved" in texts_now[1] and "Drift detected" in texts_now[2]
    assert scene.posted()[1]["thread_ts"] == outage["ts"]


def test_an_outage_while_the_baseline_builds_still_alerts(scene: Scene) -> None:
    record = scene.run(error_rate=0.9)
    assert record.evaluation_id is None  # building the baseline
    assert scene.deliver().sent == 1
    assert "Provider errors" in scene.posted()[0]["text"]


def test_evaluating_a_run_again_queues_nothing_twice(scene: Scene) -> None:
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)
    [queued] = scene.rows(Notification)
    last_run = scene.rows(Alert)[0].last_run_id
    evaluate_and_alert(scene.world.engine, last_run, CONFIG, POLICY, now=scene.clock())
    assert len(scene.rows(Notification)) == 1 and scene.rows(Notification)[0].id == queued.id


def test_alerts_commit_with_the_evaluation_or_not_at_all(
    scene: Scene, monkeypatch: pytest.MonkeyPatch
) -> None:
    scene.baseline()
    scene.run(fail_rate=0.6)
    stored = [e.id for e in scene.rows(Evaluation)]

    def broken(*args: Any) -> None:
        raise RuntimeError("the alert update failed")

    monkeypatch.setattr(after_run, "update_alerts", broken)
    with pytest.raises(RuntimeError, match="alert update failed"):
        scene.run(fail_rate=0.6)  # would fire
    assert [e.id for e in scene.rows(Evaluation)] == stored, "verdicts stored without alerts"
    [alert] = scene.rows(Alert)
    assert alert.state == "pending" and scene.rows(Notification) == []

    monkeypatch.undo()  # evaluated again, the run is judged and announced as it would have been
    failed_run = scene.rows(Run)[-1].id
    assert failed_run is not None
    record = evaluate_and_alert(scene.world.engine, failed_run, CONFIG, POLICY, now=scene.clock())
    assert record is not None and record.drifted
    assert [a.state for a in scene.rows(Alert)] == ["firing"]
    assert len(scene.rows(Notification)) == 1


def test_slack_down_for_ten_minutes_then_back_loses_nothing(scene: Scene) -> None:
    scene.slack.fail_next("service_unavailable", status=503, times=10_000)
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)  # a firing message queued
    down_since = scene.clock()
    while scene.clock() < down_since + timedelta(minutes=10):
        report = scene.deliver()
        assert report.sent == 0
        scene.clock.advance(seconds=15)
    attempts = scene.rows(DeliveryAttempt)
    assert len(attempts) >= 4 and {a.outcome for a in attempts} == {"transient"}
    assert all("HTTP 503" in (a.error or "") for a in attempts)
    [row] = scene.rows(Notification)
    assert row.status == "pending" and row.attempts == len(attempts)
    waits = [(b.started_at - a.started_at).total_seconds() for a, b in pairwise(attempts)]
    assert all(5 <= w <= 300 + 15 for w in waits), waits  # backoff, capped at 5 minutes

    scene.slack.clear_failures()  # Slack is back
    deadline = scene.clock() + timedelta(minutes=6)
    while scene.clock() < deadline and scene.rows(Notification)[0].status == "pending":
        scene.deliver()
        scene.clock.advance(seconds=15)
    [row] = scene.rows(Notification)
    assert row.status == "sent" and len(scene.posted()) == 1
    assert scene.rows(DeliveryAttempt)[-1].outcome == "sent"


def test_rate_limit_waits_out_retry_after(scene: Scene) -> None:
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)
    scene.slack.fail_next("ratelimited", status=429, retry_after=7)
    assert scene.deliver().retrying == 1
    calls = len(scene.slack.calls("chat.postMessage"))
    scene.clock.advance(seconds=6)
    assert scene.deliver().sent == 0
    assert len(scene.slack.calls("chat.postMessage")) == calls, "retried before Retry-After"
    scene.clock.advance(seconds=1)
    assert scene.deliver().sent == 1
    attempt = scene.rows(DeliveryAttempt)[0]
    assert (attempt.outcome, attempt.retry_after) == ("transient", 7.0)


def test_rejected_blocks_are_delivered_as_text(scene: Scene) -> None:
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)
    scene.slack.fail_next("invalid_blocks")
    assert scene.deliver().sent == 1
    first, second = scene.slack.calls("chat.postMessage")
    assert first.body.get("blocks") and not second.body.get("blocks")
    [row] = scene.rows(Notification)
    assert row.status == "sent" and row.text_only
    assert "Drift detected" in scene.posted()[0]["text"]


def test_a_permanent_error_stops_retrying_and_is_kept(scene: Scene) -> None:
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)
    scene.slack.fail_next("channel_not_found")
    report = scene.deliver()
    assert (report.sent, report.failed) == (0, 1)
    scene.clock.advance(hours=1)
    assert scene.deliver().failed == 0
    assert len(scene.slack.calls("chat.postMessage")) == 1
    [row] = scene.rows(Notification)
    assert row.status == "failed" and "channel_not_found" in (row.last_error or "")
    assert TOKEN not in (row.last_error or "")


def test_a_reply_waits_for_the_message_it_belongs_under(scene: Scene) -> None:
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)
    scene.slack.fail_next("ratelimited", status=429, retry_after=600)
    assert scene.deliver().retrying == 1
    scene.run(hours=0.1, fail_rate=0.05)  # resolved while the firing message is undelivered
    assert len(scene.rows(Notification)) == 2
    assert scene.deliver().sent == 0, "the reply went out before the message it answers"
    assert len(scene.slack.calls("chat.postMessage")) == 1
    scene.clock.advance(minutes=10)
    assert scene.deliver().sent == 2
    firing, resolved = scene.posted()
    assert "Drift detected" in firing["text"] and resolved["thread_ts"] == firing["ts"]


def test_identity_notice_is_optional_and_sent_once(engine: Engine, monkeypatch: Any) -> None:
    monkeypatch.setenv("DRIFTMON_TEST_SLACK", TOKEN)
    policy = AlertPolicy(
        repeat_interval=timedelta(hours=12),
        outage_error_rate=0.5,
        identity_notice=True,
        notify=True,
    )
    with FakeSlack(token=TOKEN, channels={CHANNEL}, validate=True) as slack:
        scene = Scene(World(engine), slack, policy)
        scene.baseline()
        scene.identity = scene.world.identity("gpt-4o-2024-08-06", "fp_b")
        for _ in range(3):
            scene.run(fail_rate=0.05)
        assert scene.deliver().sent == 1
        [notice] = scene.posted()
        assert "Model identity changed" in notice["text"]
        assert "fp_a" in notice["text"] and "fp_b" in notice["text"]


def test_a_metric_that_starts_drifting_later_is_said_in_the_thread_at_once(
    scene: Scene,
) -> None:
    scene.baseline()
    scene.run(fail_rate=0.6)
    scene.run(fail_rate=0.6)
    assert scene.deliver().sent == 1
    scene.run(fail_rate=0.6, chars=80)  # longer outputs too: significant once, pending
    assert scene.deliver().sent == 0
    record = scene.run(fail_rate=0.6, chars=80)  # now persistent: drifted
    assert "length_chars" in {v.metric for v in record.drifted}
    assert scene.deliver().sent == 1
    firing, spread = scene.posted()
    assert "Drift spreading" in spread["text"] and "length_chars" in spread["text"]
    assert spread["thread_ts"] == firing["ts"]
    scene.run(fail_rate=0.6, chars=80)  # the same metrics again: nothing new to say
    assert scene.deliver().sent == 0
