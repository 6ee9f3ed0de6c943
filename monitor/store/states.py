"""The states stored rows move through, as StrEnums: a member is its string, so rows written by
earlier versions read back unchanged and SQL compares against the same text. Every place that
writes or tests a state names it here rather than spelling the string."""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """Run.status: RUNNING -> COMPLETE | INTERRUPTED. A running run whose owner died is resumed
    (same plan) or closed as interrupted. SKIPPED is final from the start: a scheduled slot
    claimed but not run (over the daily budget), with no results."""

    RUNNING = "running"
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    SKIPPED = "skipped"


class RunTrigger(StrEnum):
    """Run.trigger: who started the run."""

    MANUAL = "manual"  # driftmon run
    SCHEDULE = "schedule"  # a slot of driftmon serve


class ResultVerdict(StrEnum):
    """Result.verdict: the probe's own judgement of one output."""

    PASS = "pass"
    FAIL = "fail"
    ERROR = "error"  # no output: the call failed


class BaselineSource(StrEnum):
    """Baseline.source: chosen by the engine, or accepted by a person."""

    AUTO = "auto"
    ACCEPTED = "accepted"


class AlertState(StrEnum):
    """Alert.state: PENDING (seen, not yet announced) -> FIRING -> RESOLVED."""

    PENDING = "pending"
    FIRING = "firing"
    RESOLVED = "resolved"


class NotificationStatus(StrEnum):
    """Notification.status: PENDING (to send, or retrying at next_attempt_at) -> SENT, or
    FAILED when the error is permanent (retrying cannot help)."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class AttemptOutcome(StrEnum):
    """DeliveryAttempt.outcome: how one send ended."""

    SENT = "sent"
    TRANSIENT = "transient"  # retried later
    PERMANENT = "permanent"  # the message is failed
