"""The tables. Times are timezone-aware UTC datetimes (SQLModel's UTCDateTime stores them on
SQLite and PostgreSQL alike and always returns UTC).

One row per sample in `result`; a sample is identified by (run, probe version, sample index),
which is unique, so re-running or resuming a run can never duplicate a result.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from monitor.store.states import (
    AlertState,
    NotificationStatus,
    RunStatus,
    RunTrigger,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Target(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True, max_length=200)
    kind: str = Field(max_length=40)
    model: str = Field(max_length=200)
    base_url: str | None = Field(default=None, max_length=500)
    created_at: datetime = Field(default_factory=utcnow)


class ProbeVersion(SQLModel, table=True):
    __tablename__ = "probe_version"
    __table_args__ = (UniqueConstraint("set_name", "probe_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    set_name: str = Field(max_length=200, index=True)
    probe_id: str = Field(max_length=200)
    version: str = Field(max_length=64)
    # Canonical definition (messages, schema, checks, ...) so old versions stay readable.
    definition: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ModelIdentity(SQLModel, table=True):
    __tablename__ = "model_identity"
    __table_args__ = (UniqueConstraint("target_id", "model", "fingerprint"),)

    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="target.id", index=True)
    # Empty string rather than NULL so the unique constraint holds on every backend.
    model: str = Field(default="", max_length=200)
    fingerprint: str = Field(default="", max_length=200)
    first_seen: datetime = Field(default_factory=utcnow)
    last_seen: datetime = Field(default_factory=utcnow)


class Run(SQLModel, table=True):
    __table_args__ = (Index("ix_run_target_set_started", "target_id", "probe_set", "started_at"),)

    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="target.id")
    probe_set: str = Field(max_length=200)
    # State columns stay `str` (VARCHAR), typed by their StrEnum in comments: SQLModel would
    # make an enum-typed field a database ENUM of the member names, a different schema.
    status: str = Field(default=RunStatus.RUNNING, max_length=20, index=True)  # a RunStatus
    trigger: str = Field(default=RunTrigger.MANUAL, max_length=20)  # a RunTrigger
    # A scheduled slot ("target/set/2026-01-01T10:00") claimed by exactly one run.
    slot: str | None = Field(default=None, unique=True, max_length=300)
    samples: int = 1
    planned: int = 0  # results this run will hold when complete
    plan_hash: str = Field(default="", max_length=64)  # probe versions + samples
    started_at: datetime = Field(default_factory=utcnow)
    finished_at: datetime | None = None
    heartbeat_at: datetime = Field(default_factory=utcnow)
    owner: str = Field(default="", max_length=200)  # host:pid of the process running it
    passed: int = 0
    failed: int = 0
    errors: int = 0
    identity_id: int | None = Field(default=None, foreign_key="model_identity.id")
    note: str | None = Field(default=None, sa_column=Column(Text))


class Result(SQLModel, table=True):
    __table_args__ = (
        UniqueConstraint("run_id", "probe_version_id", "sample_index"),
        Index("ix_result_target_version_time", "target_id", "probe_version_id", "created_at"),
        Index("ix_result_target_time", "target_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="run.id", index=True)
    target_id: int = Field(foreign_key="target.id")
    probe_version_id: int = Field(foreign_key="probe_version.id")
    sample_index: int
    created_at: datetime = Field(default_factory=utcnow)
    verdict: str = Field(max_length=10)  # a ResultVerdict: pass | fail | error
    reason: str | None = Field(default=None, max_length=500)
    error_class: str | None = Field(default=None, max_length=20)
    error_message: str | None = Field(default=None, max_length=500)
    http_status: int | None = None
    request_id: str | None = Field(default=None, max_length=200)
    attempts: int = 1
    format_kind: str | None = Field(default=None, max_length=20)
    parsed: bool | None = None
    schema_valid: bool | None = None
    schema_errors: list[str] | None = Field(default=None, sa_column=Column(JSON))
    checks: list[bool | None] | None = Field(default=None, sa_column=Column(JSON))
    tracked: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    answer: str | None = Field(default=None, max_length=500)
    refusal: bool | None = None
    finish_reason: str | None = Field(default=None, max_length=40)
    identity_id: int | None = Field(default=None, foreign_key="model_identity.id")
    latency_ms: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    reasoning_tokens: int | None = None  # hidden reasoning, counted in output_tokens too
    cached_tokens: int | None = None  # input tokens served from the provider's prompt cache
    # How structured output was asked for (monitor.providers.base.OUTPUT_MODES); NULL for
    # text and plain-JSON requests, and for rows stored before driftmon recorded it.
    output_mode: str | None = Field(default=None, max_length=20)
    # tool_call probes only (NULL elsewhere): whether a tool was called, which one (cut to 64
    # characters), and whether its arguments validated against the tool's schema.
    tool_called: bool | None = None
    tool_name: str | None = Field(default=None, max_length=64)
    tool_args_valid: bool | None = None
    output_chars: int | None = None
    output: str | None = Field(default=None, sa_column=Column(Text))  # truncated to a limit


class Baseline(SQLModel, table=True):
    """The reference window of a (target, probe set): the runs the current window is compared
    with. At most one is active per (target, set); older ones stay for the history."""

    __table_args__ = (
        Index("ix_baseline_target_set_created", "target_id", "probe_set", "created_at"),
        # One active baseline per (target, set), enforced by the database: two processes that
        # race to create the automatic baseline cannot both succeed.
        Index(
            "uq_baseline_one_active",
            "target_id",
            "probe_set",
            unique=True,
            sqlite_where=text("active"),
            postgresql_where=text("active"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="target.id")
    probe_set: str = Field(max_length=200)
    run_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    identity_id: int | None = Field(default=None, foreign_key="model_identity.id")
    source: str = Field(max_length=20)  # a BaselineSource: auto | accepted
    active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    # The baseline's run-to-run variation per metric (monitor.drift.runs.encode), computed at
    # its first evaluation: it depends on the baseline alone and costs a test per baseline run.
    dispersion: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))


class IdentityEvent(SQLModel, table=True):
    """The model identity (returned model name or fingerprint) changed between two consecutive
    complete runs of a target. Keyed by the first run under the new identity, so it is
    recorded once however often that run is evaluated."""

    __tablename__ = "identity_event"
    __table_args__ = (Index("ix_identity_event_target_detected", "target_id", "detected_at"),)

    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="target.id")
    from_identity_id: int | None = Field(default=None, foreign_key="model_identity.id")
    to_identity_id: int = Field(foreign_key="model_identity.id")
    first_run_id: int = Field(foreign_key="run.id", unique=True)
    detected_at: datetime = Field(default_factory=utcnow)


class Evaluation(SQLModel, table=True):
    """One drift evaluation: the current window (ending at `run_id`) against a baseline."""

    __table_args__ = (
        # The same run evaluated twice against the same baseline (a retry, two daemons) must
        # not count twice towards persistence: the second attempt finds the first.
        UniqueConstraint("baseline_id", "run_id"),
        Index("ix_evaluation_target_set_created", "target_id", "probe_set", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="target.id")
    probe_set: str = Field(max_length=200)
    baseline_id: int = Field(foreign_key="baseline.id")
    run_id: int = Field(foreign_key="run.id")  # the newest run of the window
    run_ids: list[int] = Field(sa_column=Column(JSON, nullable=False))
    identity_event_id: int | None = Field(default=None, foreign_key="identity_event.id")
    paired_probes: int = 0
    excluded_probes: int = 0
    drifted: bool = False  # any quality verdict drifted
    created_at: datetime = Field(default_factory=utcnow)
    notes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class VerdictRow(SQLModel, table=True):
    """One metric's verdict in an evaluation (monitor.drift.model.Verdict, stored)."""

    __tablename__ = "verdict"

    id: int | None = Field(default=None, primary_key=True)
    evaluation_id: int = Field(foreign_key="evaluation.id", index=True)
    metric: str = Field(max_length=200)
    family: str = Field(max_length=20)  # a monitor.drift.model.Family
    state: str = Field(max_length=30)  # a monitor.drift.model.State
    p_value: float | None = None
    p_adjusted: float | None = None
    effect: float | None = None
    effect_name: str | None = Field(default=None, max_length=100)
    test: str | None = Field(default=None, max_length=200)
    baseline_n: int = 0
    baseline_value: Any = Field(default=None, sa_column=Column(JSON))
    current_n: int = 0
    current_value: Any = Field(default=None, sa_column=Column(JSON))
    streak: int = 0
    note: str | None = Field(default=None, max_length=500)
    evidence: float | None = None  # the CUSUM statistic after this evaluation
    threshold: float | None = None  # the evidence at which the metric alarms
    dispersion: float | None = None  # run-to-run variance factor applied to the p-value


class Alert(SQLModel, table=True):
    """One alert: identity (target, probe set, family), states pending → firing → resolved.

    `family` is "quality" (drift) or "operational" (provider errors: the outage alert). At most
    one open (not resolved) alert per identity, enforced by the database, so two processes
    evaluating at once cannot open it twice. `notified_at` is when its last firing or repeat
    message was queued (None: never, e.g. silenced or suppressed by an outage so far);
    `thread_ts`/`thread_channel` locate the first delivered message, for threaded replies.
    """

    __table_args__ = (
        Index(
            "uq_alert_one_open",
            "target_id",
            "probe_set",
            "family",
            unique=True,
            sqlite_where=text(f"state != '{AlertState.RESOLVED}'"),
            postgresql_where=text(f"state != '{AlertState.RESOLVED}'"),
        ),
        Index("ix_alert_state_opened", "state", "opened_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    target_id: int = Field(foreign_key="target.id")
    probe_set: str = Field(max_length=200)
    family: str = Field(max_length=20)  # a monitor.drift.model.Family
    state: str = Field(max_length=20)  # an AlertState: pending | firing | resolved
    metrics: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    opened_at: datetime = Field(default_factory=utcnow)
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_run_id: int = Field(foreign_key="run.id")  # the newest run that updated it
    last_evaluation_id: int | None = Field(default=None, foreign_key="evaluation.id")
    notified_at: datetime | None = None
    thread_ts: str | None = Field(default=None, max_length=64)
    thread_channel: str | None = Field(default=None, max_length=64)


class Silence(SQLModel, table=True):
    """No notifications for a target (or one metric of it) until `expires_at`. Alerts keep
    their state while silenced; a still-firing alert is announced once the silence ends."""

    id: int | None = Field(default=None, primary_key=True)
    target: str = Field(max_length=200, index=True)  # a name: targets may be silenced early
    metric: str | None = Field(default=None, max_length=200)  # None: every metric and outages
    reason: str = Field(max_length=500)
    created_by: str = Field(default="", max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    ended_at: datetime | None = None  # `alerts unsilence` before expiry


class Notification(SQLModel, table=True):
    """The outbox: one message to send, written in the transaction that decided it.

    `dedup_key` makes queueing idempotent (a retried evaluation queues nothing twice).
    status: pending (to send, or retrying at `next_attempt_at`) | sent | failed (permanent
    error: retrying cannot help; shown by `alerts list` and `status`). A sender holds a lease
    (`lease_until`) while it sends, so two workers never send the same row at once; a worker
    killed after Slack accepted but before it recorded that leaves the lease to expire and the
    row to be sent again: at least once, at most one duplicate per crash.
    """

    __table_args__ = (Index("ix_notification_status_due", "status", "next_attempt_at"),)

    id: int | None = Field(default=None, primary_key=True)
    dedup_key: str = Field(max_length=200, unique=True)
    alert_id: int | None = Field(default=None, foreign_key="alert.id", index=True)
    kind: str = Field(max_length=20)  # an AlertKind
    target: str = Field(max_length=200)
    payload: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))  # the AlertMessage
    created_at: datetime = Field(default_factory=utcnow)
    status: str = Field(default=NotificationStatus.PENDING, max_length=10)  # NotificationStatus
    attempts: int = 0
    next_attempt_at: datetime = Field(default_factory=utcnow)
    lease_until: datetime | None = None
    lease_owner: str | None = Field(default=None, max_length=200)
    sent_at: datetime | None = None
    last_error: str | None = Field(default=None, max_length=500)
    text_only: bool = False  # Slack refused the blocks; the text version was delivered
    slack_ts: str | None = Field(default=None, max_length=64)
    slack_channel: str | None = Field(default=None, max_length=64)


class DeliveryAttempt(SQLModel, table=True):
    """Every attempt to send a notification, with its outcome and duration."""

    __tablename__ = "delivery_attempt"

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(foreign_key="notification.id", index=True)
    started_at: datetime = Field(default_factory=utcnow)
    duration_ms: float = 0.0
    outcome: str = Field(max_length=10)  # an AttemptOutcome: sent | transient | permanent
    error: str | None = Field(default=None, max_length=500)
    retry_after: float | None = None
    owner: str = Field(default="", max_length=200)


class DaemonInstance(SQLModel, table=True):
    """A `driftmon serve` process: its heartbeat, so `status` can tell from any shell or host
    which daemons are alive; `stopped_at` is set on a clean exit."""

    __tablename__ = "daemon"

    id: int | None = Field(default=None, primary_key=True)
    owner: str = Field(max_length=200, unique=True)  # host:pid:start
    host: str = Field(max_length=200)
    pid: int
    version: str = Field(max_length=40)
    listen: str | None = Field(default=None, max_length=200)
    started_at: datetime = Field(default_factory=utcnow)
    heartbeat_at: datetime = Field(default_factory=utcnow)
    stopped_at: datetime | None = None
    jobs: int = 0  # scheduled (target, probe set) jobs
