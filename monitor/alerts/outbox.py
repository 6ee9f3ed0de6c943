"""The transactional outbox: queue a message with the decision that causes it, deliver later.

`queue` adds a row inside the caller's transaction, so a message exists exactly when the
verdict behind it was committed. `deliver_due` sends what is due, one row at a time:

1. claim: a conditional UPDATE takes a lease on the row (no other worker, in this process or
   another host, sends it while the lease holds) and commits;
2. send, outside any transaction, through a `monitor.alerts.Notifier` (one attempt);
3. record: the attempt (outcome, error, duration) and the row's new state commit together.
   Sent: marked sent only now, after Slack acknowledged. Transient error: retried after the
   server's Retry-After, else exponential backoff with jitter (`DELIVERY_RETRY`, rules in
   `monitor.retry`). Permanent error: marked failed, not retried on its own, and shown by
   `alerts list` and `status`; once its cause is fixed, `requeue_failed` (`driftmon alerts
   deliver --retry-failed`) makes it pending again.

A process killed between 2 and 3 leaves the lease to expire; the row is then sent again: at
least once, and at most one duplicate per crash. Rows of one alert go out in order (a
"resolved" reply waits for its "firing" message, so it can be threaded under it).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, Engine, exists, func, or_, select, update
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

from monitor.alerts.message import AlertKind, AlertMessage, message_from_json, message_to_json
from monitor.errors import (
    NotificationError,
    PermanentNotificationError,
    TransientNotificationError,
)
from monitor.retry import HintRule, RetryPolicy
from monitor.store.db import session_scope
from monitor.store.models import Alert, DeliveryAttempt, Notification, utcnow
from monitor.store.states import AttemptOutcome, NotificationStatus

if TYPE_CHECKING:
    from monitor.alerts import Delivery, Notifier

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]

LEASE = timedelta(minutes=2)  # > the longest send (Slack client timeout 10 s, one text retry)
# Every transient failure is retried, however many there were: 10 s doubling up to 5 min, each
# wait drawn between half and all of that; a server's Retry-After replaces the backoff and is
# believed up to an hour. At least a second apart, so "Retry-After: 0" cannot spin a worker.
DELIVERY_RETRY = RetryPolicy(
    max_attempts=None,
    base_delay=10.0,
    max_delay=300.0,
    jitter=0.5,
    max_retry_after=3600.0,
    hint_rule=HintRule.CAPPED,
    min_delay=1.0,
    budget=None,
)
THREADED_KINDS: frozenset[AlertKind] = frozenset({"resolved", "outage_resolved", "spread"})


def queue(
    s: Session, dedup_key: str, msg: AlertMessage, *, alert_id: int | None, now: datetime
) -> Notification | None:
    """Add a message to the outbox in the caller's transaction; None if this key is queued."""
    found = s.execute(select(col(Notification.id)).where(col(Notification.dedup_key) == dedup_key))
    if found.first() is not None:
        return None
    row = Notification(
        dedup_key=dedup_key,
        alert_id=alert_id,
        kind=msg.kind,
        target=msg.target,
        payload=message_to_json(msg),
        created_at=now,
        next_attempt_at=now,
    )
    s.add(row)
    s.flush()
    return row


@dataclass
class DeliveryReport:
    sent: int = 0
    retrying: int = 0  # transient failures, to be retried
    failed: int = 0  # permanent failures
    errors: list[str] = field(default_factory=list)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def deliver_due(
    engine: Engine,
    notifier: Notifier,
    *,
    clock: Clock = utcnow,
    limit: int = 100,
    owner: str | None = None,
    deadline: float | None = None,
) -> DeliveryReport:
    """Send every due message once (at most `limit`, until `deadline` on time.monotonic())."""
    report = DeliveryReport()
    me = owner or worker_name()
    tried: set[int] = set()
    while len(tried) < limit and (deadline is None or time.monotonic() < deadline):
        claimed = _claim(engine, clock(), me, tried)
        if claimed is None:
            break
        row, thread_ts = claimed
        assert row.id is not None
        tried.add(row.id)
        _send(engine, notifier, row, thread_ts, clock, me, report)
    return report


def _due(now: datetime) -> list[ColumnElement[bool]]:
    earlier = aliased(Notification)
    blocked = exists().where(  # an earlier message of the same alert is still to be sent
        col(earlier.alert_id) == col(Notification.alert_id),
        col(earlier.id) < col(Notification.id),
        col(earlier.status) == NotificationStatus.PENDING,
    )
    return [
        col(Notification.status) == NotificationStatus.PENDING,
        col(Notification.next_attempt_at) <= now,
        or_(col(Notification.lease_until).is_(None), col(Notification.lease_until) <= now),
        or_(col(Notification.alert_id).is_(None), ~blocked),
    ]


def _claim(
    engine: Engine, now: datetime, owner: str, skip: set[int]
) -> tuple[Notification, str | None] | None:
    """Lease the oldest due row not tried in this pass; (row, thread to reply in) or None."""
    with session_scope(engine) as s:
        query = select(col(Notification.id)).where(*_due(now)).order_by(col(Notification.id))
        if skip:
            query = query.where(col(Notification.id).not_in(skip))
        for (candidate,) in s.execute(query.limit(20)).all():
            taken = s.execute(
                update(Notification)
                .where(col(Notification.id) == candidate, *_due(now))
                .values(lease_until=now + LEASE, lease_owner=owner)
            )
            if taken.rowcount == 1:  # type: ignore[attr-defined]
                row = s.get(Notification, candidate)
                assert row is not None
                thread = None
                if row.kind in THREADED_KINDS and row.alert_id is not None:
                    alert = s.get(Alert, row.alert_id)
                    thread = alert.thread_ts if alert is not None else None
                return row, thread
    return None


def _send(
    engine: Engine,
    notifier: Notifier,
    row: Notification,
    thread_ts: str | None,
    clock: Clock,
    owner: str,
    report: DeliveryReport,
) -> None:
    started, t0 = clock(), time.perf_counter()
    delivery: Delivery | None = None
    error: NotificationError | None = None
    try:
        msg = message_from_json(row.payload)
        delivery = notifier.send(msg, thread_ts=thread_ts if notifier.can_thread else None)
    except NotificationError as exc:
        error = exc
    except (TypeError, ValueError) as exc:  # a payload this version cannot read: never retried
        error = PermanentNotificationError(f"unreadable outbox payload: {exc}")
    duration_ms = (time.perf_counter() - t0) * 1000
    now = clock()
    with session_scope(engine) as s:
        stored = s.get(Notification, row.id)
        assert stored is not None
        attempt = DeliveryAttempt(
            notification_id=stored.id,  # type: ignore[arg-type]  # stored rows have ids
            started_at=started,
            duration_ms=duration_ms,
            owner=owner,
            outcome=AttemptOutcome.SENT,
        )
        stored.attempts += 1
        stored.lease_until = stored.lease_owner = None
        if delivery is not None:
            stored.status, stored.sent_at, stored.last_error = NotificationStatus.SENT, now, None
            stored.slack_ts, stored.slack_channel = delivery.ts, delivery.channel
            stored.text_only = delivery.text_only
            _remember_thread(s, stored, delivery)
            report.sent += 1
        elif isinstance(error, PermanentNotificationError):
            stored.status, stored.last_error = NotificationStatus.FAILED, str(error)[:500]
            attempt.outcome, attempt.error = AttemptOutcome.PERMANENT, str(error)[:500]
            report.failed += 1
            report.errors.append(f"notification {row.id}: {error}")
            log.error("alert notification %s failed for good: %s", row.id, error)
        else:
            assert error is not None
            wait = getattr(error, "retry_after", None)
            delay = DELIVERY_RETRY.delay(stored.attempts, wait)
            stored.next_attempt_at = now + timedelta(seconds=delay)
            stored.last_error = str(error)[:500]
            attempt.outcome, attempt.error, attempt.retry_after = (
                AttemptOutcome.TRANSIENT,
                str(error)[:500],
                wait,
            )
            report.retrying += 1
            report.errors.append(f"notification {row.id}: {error} (retry in {delay:.0f} s)")
            log.warning(
                "alert notification %s failed, retrying in %.0f s: %s", row.id, delay, error
            )
        s.add(attempt)


def requeue_failed(engine: Engine, now: datetime) -> int:
    """Make every failed message pending again, due at `now`; how many there were.

    For after the cause of a permanent error is fixed (a new token, the bot invited to the
    channel). `attempts` and `last_error` are kept: they tell what happened until the next
    attempt, and `delivery_attempt` keeps every attempt anyway. Messages of one alert still go
    out in the order they were queued.
    """
    with session_scope(engine) as s:
        done = s.execute(
            update(Notification)
            .where(col(Notification.status) == NotificationStatus.FAILED)
            .values(
                status=NotificationStatus.PENDING,
                next_attempt_at=now,
                lease_until=None,
                lease_owner=None,
            )
        )
        return int(done.rowcount)  # type: ignore[attr-defined]


def send_now(
    notifier: Notifier,
    msg: AlertMessage,
    *,
    within: float,
    on_retry: Callable[[TransientNotificationError, float], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Delivery:
    """Deliver `msg` at once, outside the outbox: a transient failure is retried by the
    outbox's rules (`DELIVERY_RETRY`, Retry-After included) as long as the next try starts
    within `within` seconds of the first. Nothing is recorded; the last error is raised.

    For messages nobody waits for later (`driftmon alerts test`); a retried send may post twice
    if Slack took a message but its answer was lost, which a test message can afford.
    `on_retry(error, delay)` is told before each wait.
    """
    deadline = clock() + within
    attempts = 0
    while True:
        try:
            return notifier.send(msg)
        except TransientNotificationError as exc:
            error = exc
        attempts += 1
        delay = DELIVERY_RETRY.delay(attempts, error.retry_after)
        if clock() + delay > deadline:
            raise TransientNotificationError(
                f"{error} (gave up after {attempts} attempt{'s' if attempts != 1 else ''}: the "
                f"next, in {delay:.0f} s, would start more than {within:.0f} s after the first)",
                retry_after=error.retry_after,
            )
        if on_retry is not None:
            on_retry(error, delay)
        sleep(delay)


def _remember_thread(s: Session, row: Notification, delivery: Delivery) -> None:
    """The first delivered message of an alert starts its thread."""
    if row.alert_id is None or delivery.ts is None:
        return
    s.execute(
        update(Alert)
        .where(col(Alert.id) == row.alert_id, col(Alert.thread_ts).is_(None))
        .values(thread_ts=delivery.ts, thread_channel=delivery.channel)
    )


def outbox_depth(s: Session) -> dict[str, int]:
    """Rows by status: pending (queued or retrying), failed (permanent), sent."""
    rows = s.execute(
        select(col(Notification.status), func.count()).group_by(col(Notification.status))
    ).all()
    return {str(status): int(n) for status, n in rows}


__all__ = ["DeliveryReport", "deliver_due", "outbox_depth", "queue", "requeue_failed", "send_now"]
