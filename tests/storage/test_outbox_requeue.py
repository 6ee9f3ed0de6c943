"""`requeue_failed` (`driftmon alerts deliver --retry-failed`) on both backends: messages refused
for good become pending and due, nothing else moves, and the next delivery pass sends them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.alerts import Delivery
from monitor.alerts.message import AlertMessage
from monitor.alerts.outbox import deliver_due, queue, requeue_failed
from monitor.errors import PermanentNotificationError
from monitor.store.db import session_scope
from monitor.store.models import DeliveryAttempt, Notification

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@dataclass
class Switchable:
    """A notifier refusing for good (as Slack does with `invalid_auth`) until it is fixed."""

    name: str = "slack"
    broken: bool = True
    sent: list[str] = field(default_factory=list)

    @property
    def can_thread(self) -> bool:
        return False

    def send(self, msg: AlertMessage, *, thread_ts: str | None = None) -> Delivery:
        if self.broken:
            raise PermanentNotificationError("Slack chat.postMessage failed: invalid_auth")
        self.sent.append(msg.target)
        return Delivery(ts=f"1.{len(self.sent)}", channel="C0")


def _queue(engine: Engine, target: str, now: datetime) -> None:
    with session_scope(engine) as s:
        queue(s, f"test:{target}", AlertMessage(kind="test", target=target), alert_id=None, now=now)


def _rows(engine: Engine) -> dict[str, Notification]:
    with Session(engine) as s:
        return {n.target: n for n in s.execute(select(Notification)).scalars()}


def test_failed_messages_are_queued_again_and_sent_once_fixed(engine: Engine) -> None:
    notifier = Switchable()
    for target in ("a", "b"):
        _queue(engine, target, T0)
    assert deliver_due(engine, notifier, clock=lambda: T0).failed == 2
    notifier.broken = False
    _queue(engine, "sent", T0)
    _queue(engine, "later", T0 + timedelta(hours=1))  # pending, due later: left alone
    assert deliver_due(engine, notifier, clock=lambda: T0).sent == 1
    later = T0 + timedelta(minutes=5)
    assert deliver_due(engine, notifier, clock=lambda: later).sent == 0  # failed stays failed

    assert requeue_failed(engine, later) == 2
    rows = _rows(engine)
    for target in ("a", "b"):
        row = rows[target]
        assert row.status == "pending" and row.lease_until is None and row.lease_owner is None
        assert row.next_attempt_at.replace(tzinfo=UTC) == later
        assert row.attempts == 1 and "invalid_auth" in (row.last_error or "")  # the history
    assert rows["sent"].status == "sent"
    assert rows["later"].next_attempt_at.replace(tzinfo=UTC) == T0 + timedelta(hours=1)
    assert requeue_failed(engine, later) == 0

    report = deliver_due(engine, notifier, clock=lambda: later)
    assert (report.sent, report.failed) == (2, 0)
    assert notifier.sent == ["sent", "a", "b"]
    rows = _rows(engine)
    assert rows["a"].status == rows["b"].status == "sent" and rows["a"].last_error is None
    with Session(engine) as s:
        outcomes = s.execute(
            select(col(DeliveryAttempt.outcome))
            .where(col(DeliveryAttempt.notification_id) == rows["a"].id)
            .order_by(col(DeliveryAttempt.id))
        ).all()
    assert [o for (o,) in outcomes] == ["permanent", "sent"]
