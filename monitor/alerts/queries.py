"""What `alerts list` and `status` read about alerts, silences and the outbox: each function
opens its own short session and returns rows or small dataclasses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, or_, select
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.alerts.manager import active_silences, covered
from monitor.alerts.outbox import outbox_depth
from monitor.store.models import Alert, Notification, Silence, Target
from monitor.store.states import AlertState, NotificationStatus


@dataclass(frozen=True)
class OutboxCounts:
    pending: int  # queued or waiting for a retry
    failed: int  # refused for good: never retried


@dataclass(frozen=True)
class TargetAlert:
    alert: Alert
    target: str  # the target's name


@dataclass(frozen=True)
class ListedAlert:
    alert: Alert
    target: str
    silenced: bool  # open, and every one of its metrics is under an active silence
    last_message: Notification | None  # the newest message queued for it


@dataclass(frozen=True)
class AlertsOverview:
    alerts: list[ListedAlert]  # oldest first
    silences: list[Silence]  # active now, oldest first
    undelivered: list[Notification]  # not sent: pending or failed, oldest first
    outbox: OutboxCounts


def alerts_overview(engine: Engine, *, resolved_since: datetime, now: datetime) -> AlertsOverview:
    """Open alerts and those resolved since `resolved_since`, the silences active at `now`, and
    the messages not delivered; read in one session so the parts agree."""
    with Session(engine) as s:
        rows = s.execute(
            select(Alert, col(Target.name))
            .join(Target, col(Target.id) == col(Alert.target_id))
            .where(
                or_(
                    col(Alert.state) != AlertState.RESOLVED,
                    col(Alert.resolved_at) >= resolved_since,
                )
            )
            .order_by(col(Alert.id))
        ).all()
        silences = list(
            s.execute(
                select(Silence)
                .where(col(Silence.ended_at).is_(None), col(Silence.expires_at) > now)
                .order_by(col(Silence.id))
            ).scalars()
        )
        undelivered = list(
            s.execute(
                select(Notification)
                .where(col(Notification.status) != NotificationStatus.SENT)
                .order_by(col(Notification.id))
            ).scalars()
        )
        # Ordered by id, so the newest message of each alert is the one kept.
        last_message = {
            n.alert_id: n
            for n in s.execute(
                select(Notification)
                .where(col(Notification.alert_id).in_([a.id for a, _ in rows]))
                .order_by(col(Notification.id))
            ).scalars()
        }
        alerts = [
            ListedAlert(
                alert=alert,
                target=target,
                silenced=alert.state != AlertState.RESOLVED
                and covered(active_silences(s, target, now), alert.metrics),
                last_message=last_message.get(alert.id),
            )
            for alert, target in rows
        ]
        outbox = _counts(outbox_depth(s))
    return AlertsOverview(alerts, silences, undelivered, outbox)


def open_alerts(engine: Engine) -> list[TargetAlert]:
    """Alerts not resolved (pending or firing), oldest first."""
    with Session(engine) as s:
        rows = s.execute(
            select(Alert, col(Target.name))
            .join(Target, col(Target.id) == col(Alert.target_id))
            .where(col(Alert.state) != AlertState.RESOLVED)
            .order_by(col(Alert.id))
        ).all()
    return [TargetAlert(alert, target) for alert, target in rows]


def outbox_counts(engine: Engine) -> OutboxCounts:
    """How many messages wait to be sent and how many failed for good."""
    with Session(engine) as s:
        return _counts(outbox_depth(s))


def failed_messages(engine: Engine) -> list[Notification]:
    """Messages refused for good (bad token, unknown channel), oldest first."""
    with Session(engine) as s:
        return list(
            s.execute(
                select(Notification)
                .where(col(Notification.status) == NotificationStatus.FAILED)
                .order_by(col(Notification.id))
            ).scalars()
        )


def _counts(depth: dict[str, int]) -> OutboxCounts:
    return OutboxCounts(
        pending=depth.get(NotificationStatus.PENDING, 0),
        failed=depth.get(NotificationStatus.FAILED, 0),
    )
