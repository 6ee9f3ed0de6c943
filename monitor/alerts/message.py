"""What an alert says, independent of how it is rendered (Slack blocks, plain text, ...).

Pure data, filled by the alert manager from drift verdicts. Every string here may hold text we
did not write (model outputs, probe ids, tracked field values, names from config files):
renderers must treat all of it as untrusted and escape it for their medium
(`monitor.alerts.escape` for Slack). Values are pre-formatted strings so that this contract
does not fix a number format; renderers only truncate and escape them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any, Literal, get_args

AlertKind = Literal[
    "firing",  # a drift alert opened
    "resolved",  # a drift alert closed (threaded under the firing message when possible)
    "repeat",  # still firing after `alerts.repeat_interval`
    "spread",  # still firing, and more metrics drift than when it was announced
    "outage",  # provider errors (429, 5xx, timeouts): their own signal, never drift
    "outage_resolved",
    "identity_notice",  # the provider reports a new model identity; behaviour not (yet) changed
    "test",  # `driftmon alerts test`
    "budget",  # a scheduled run was skipped: it would exceed the target's daily budget
]
ALERT_KINDS: tuple[AlertKind, ...] = get_args(AlertKind)
# How each kind is announced, by any renderer: an emoji, a title and one sentence.
WORDING: dict[AlertKind, tuple[str, str, str]] = {
    "firing": ("🔴", "Drift detected", "Behaviour changed: these metrics drifted."),
    "resolved": ("✅", "Drift resolved", "Behaviour is back in line with the baseline."),
    "repeat": ("🔁", "Still drifting", "This alert is still firing."),
    "spread": ("🔴", "Drift spreading", "More metrics drift than when this alert was announced."),
    "outage": ("⚠️", "Provider errors", "Requests are failing (counted apart from drift)."),
    "outage_resolved": ("✅", "Provider errors resolved", "Requests succeed again."),
    "identity_notice": (
        "ℹ️",
        "Model identity changed",
        "The provider reports a new model "
        "identity; that alone does not mean its behaviour drifted.",
    ),
    "test": ("🧪", "driftmon test message", "If you can read this, alerts reach this channel."),
    "budget": (
        "💸",
        "Run skipped: budget",
        "A scheduled run was skipped: it would exceed the "
        "daily budget. Runs resume tomorrow (UTC) or when the budget is raised.",
    ),
}


@dataclass(frozen=True)
class MetricLine:
    """One metric's change: `metric: baseline → current (effect, p_adj, n)`."""

    metric: str  # e.g. "pass_rate", "field:currency"
    baseline_value: str  # pre-formatted, e.g. "0.97" or "USD 98%"
    current_value: str
    effect: str  # pre-formatted effect with its name, e.g. "-0.35 rate difference"
    p_adjusted: float | None  # None: no test was run (e.g. insufficient data)
    baseline_n: int
    current_n: int
    # A monitor.drift.model.State (e.g. "drifted"); the outage line holds an
    # monitor.store.states.AlertState (firing | resolved). Read back from the outbox as str.
    state: str


@dataclass(frozen=True)
class Example:
    """One failing output, shown so the on-call engineer sees what changed."""

    probe_id: str
    output: str  # raw model output: hostile until escaped
    reason: str | None = None  # why it failed, e.g. "currency: 'EUR' not in ['USD']"


@dataclass(frozen=True)
class AlertMessage:
    """The content of one notification.

    `model` is the model identity the provider reported last (None when unknown);
    `identity_change` is (before, after) when the identity changed around this alert.
    `alert_id` is None for messages that belong to no stored alert (`test`).
    Sequences may be lists or tuples; renderers show a bounded prefix of them.
    """

    kind: AlertKind
    target: str
    probe_set: str | None = None
    model: str | None = None
    identity_change: tuple[str, str] | None = None
    metrics: Sequence[MetricLine] = ()
    examples: Sequence[Example] = ()
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    report_path: str | None = None
    alert_id: int | None = None
    note: str | None = None  # one more sentence, e.g. why a run was skipped

    def __post_init__(self) -> None:
        # Fail where the message is built, not later inside a delivery retry loop.
        if self.kind not in ALERT_KINDS:
            raise ValueError(f"unknown alert kind {self.kind!r}; expected one of {ALERT_KINDS}")
        if self.identity_change is not None and len(self.identity_change) != 2:
            raise ValueError("identity_change must be a (before, after) pair")


def message_to_json(msg: AlertMessage) -> dict[str, Any]:
    """The message as JSON data, for the outbox: queued now, rendered when it is sent."""
    data = asdict(msg)
    for key in ("opened_at", "resolved_at"):
        if data[key] is not None:
            data[key] = data[key].isoformat()
    data["identity_change"] = None if msg.identity_change is None else list(msg.identity_change)
    return data


def message_from_json(data: dict[str, Any]) -> AlertMessage:
    """The inverse of `message_to_json`; unknown keys (from a newer driftmon) are ignored."""
    known = {f.name for f in fields(AlertMessage)}
    values = {k: v for k, v in data.items() if k in known}
    for key in ("opened_at", "resolved_at"):
        if values.get(key) is not None:
            values[key] = datetime.fromisoformat(values[key])
    if values.get("identity_change") is not None:
        before, after = values["identity_change"]
        values["identity_change"] = (before, after)
    values["metrics"] = tuple(MetricLine(**m) for m in values.get("metrics", ()))
    values["examples"] = tuple(Example(**e) for e in values.get("examples", ()))
    return AlertMessage(**values)
