"""The alert lifecycle: from drift verdicts and run outcomes to alert states and queued messages.

An alert's identity is (target, probe set, family): "quality" alerts are drift, "operational"
alerts are provider outages. States, as in Prometheus Alertmanager:

- pending: a quality metric is significant and meaningful, but not yet persistent;
- firing: a quality metric drifted (or, for the outage alert, a run's error share reached
  `alerts.outage_error_rate`); announced once with every drifted metric in one message,
  then again after `alerts.repeat_interval` while it still fires;
- resolved: an evaluation with tested metrics found no drift (or a run was not an outage);
  announced, in the thread of the firing message, only if the firing was announced.

A firing alert is not announced while a silence covers it or while its target's outage alert
fires (errors leave too few answers to judge quality; the outage message says what is wrong);
it is announced once that ends, if it still fires. Evaluations with only insufficient data
change nothing.

The input is what the drift engine decided (its `EvaluationRecord`: verdicts, identity change)
and the run itself; this module never runs the engine. Everything here runs inside the
caller's transaction: for drift, the one that stores the evaluation (`monitor.after_run` hands
`update_alerts` to the engine as its `on_stored` hook), so the verdict, the alert state and the
outbox row commit together or not at all. Each alert remembers the newest run that updated it,
so a run processed twice changes nothing the second time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.alerts.message import AlertKind, AlertMessage, Example, MetricLine
from monitor.alerts.outbox import queue
from monitor.drift.model import Family, State, Verdict
from monitor.drift.present import fmt_effect, fmt_value
from monitor.drift.queries import identity_label
from monitor.durations import parse_duration
from monitor.store.models import (
    Alert,
    ModelIdentity,
    ProbeVersion,
    Result,
    Run,
    Silence,
    Target,
)
from monitor.store.states import AlertState, ResultVerdict

if TYPE_CHECKING:
    from monitor.config import AlertSettings
    from monitor.drift.queries import EvaluationRecord

OUTAGE_METRIC = "error_rate"  # what a silence names to silence outage alerts
MAX_EXAMPLES = 3


@dataclass(frozen=True)
class AlertPolicy:
    repeat_interval: timedelta
    outage_error_rate: float
    identity_notice: bool
    notify: bool  # False without a notifier: states are kept, nothing is queued

    @classmethod
    def from_settings(cls, settings: AlertSettings) -> AlertPolicy:
        return cls(
            repeat_interval=timedelta(seconds=parse_duration(settings.repeat_interval)),
            outage_error_rate=settings.outage_error_rate,
            identity_notice=settings.identity_notice,
            notify=settings.slack is not None,
        )


def update_alerts(
    s: Session, run: Run, record: EvaluationRecord | None, policy: AlertPolicy, now: datetime
) -> None:
    """Move this run's alerts along; `record` is its evaluation (None: baseline building)."""
    target = s.get(Target, run.target_id)
    assert target is not None and run.id is not None
    silences = active_silences(s, target.name, now)
    _update_outage(s, target, run, silences, policy, now)
    if record is None:
        return
    _update_drift(s, target, run, record, silences, policy, now)
    if policy.notify and policy.identity_notice and record.identity_change is not None:
        event_id = record.identity_event_id
        change = (record.identity_change["from"], record.identity_change["to"])
        msg = AlertMessage(
            kind="identity_notice",
            target=target.name,
            probe_set=run.probe_set,
            model=change[1],
            identity_change=change,
        )
        # Keyed by the event: one notice per model change, whatever the number of probe sets.
        queue(s, f"identity:{event_id}", msg, alert_id=None, now=now)


def active_silences(s: Session, target: str, now: datetime) -> list[Silence]:
    return list(
        s.execute(
            select(Silence).where(
                col(Silence.target) == target,
                col(Silence.ended_at).is_(None),
                col(Silence.expires_at) > now,
            )
        ).scalars()
    )


def covered(silences: Sequence[Silence], metrics: Sequence[str]) -> bool:
    """Whether the silences cover every one of these metrics (and there is one)."""
    return bool(metrics) and all(
        any(si.metric is None or si.metric == metric for si in silences) for metric in metrics
    )


def open_alert(s: Session, target_id: int, probe_set: str | None, family: Family) -> Alert | None:
    query = select(Alert).where(
        col(Alert.target_id) == target_id,
        col(Alert.family) == family,
        col(Alert.state) != AlertState.RESOLVED,
    )
    if probe_set is not None:
        query = query.where(col(Alert.probe_set) == probe_set)
    return s.execute(query.order_by(col(Alert.id)).limit(1)).scalars().first()


def _open(s: Session, run: Run, family: Family, state: AlertState, now: datetime) -> Alert:
    assert run.id is not None
    alert = Alert(
        target_id=run.target_id,
        probe_set=run.probe_set,
        family=family,
        state=state,
        opened_at=now,
        fired_at=now if state is AlertState.FIRING else None,
        last_run_id=run.id,
    )
    s.add(alert)
    s.flush()
    return alert


def _seen(alert: Alert | None, run: Run) -> bool:
    """True when this alert was already updated by this run or a newer one."""
    return alert is not None and run.id is not None and alert.last_run_id >= run.id


def _announce(
    s: Session,
    alert: Alert,
    msg: AlertMessage,
    repeat_kind: AlertKind,
    run: Run,
    policy: AlertPolicy,
    now: datetime,
) -> None:
    """Queue the first message of a firing alert, or a reminder once `repeat_interval` passed."""
    if not policy.notify:
        return
    if alert.notified_at is None:
        kind = msg.kind
    elif now - alert.notified_at >= policy.repeat_interval:
        kind = repeat_kind
    else:
        return
    assert alert.id is not None
    msg = replace(msg, kind=kind)
    queue(s, f"alert:{alert.id}:{kind}:run:{run.id}", msg, alert_id=alert.id, now=now)
    alert.notified_at = now


def _resolve(
    s: Session, alert: Alert, msg: AlertMessage, policy: AlertPolicy, now: datetime
) -> None:
    alert.state, alert.resolved_at = AlertState.RESOLVED, now
    if policy.notify and alert.notified_at is not None:
        assert alert.id is not None
        queue(s, f"alert:{alert.id}:{msg.kind}", msg, alert_id=alert.id, now=now)


def _update_outage(
    s: Session,
    target: Target,
    run: Run,
    silences: Sequence[Silence],
    policy: AlertPolicy,
    now: datetime,
) -> None:
    assert target.id is not None and run.id is not None
    alert = open_alert(s, target.id, run.probe_set, Family.OPERATIONAL)
    if _seen(alert, run):
        return
    total = run.passed + run.failed + run.errors
    share = run.errors / total if total else 0.0
    line = MetricLine(
        metric=OUTAGE_METRIC,
        baseline_value=f"< {policy.outage_error_rate:.0%}",
        current_value=f"{share:.0%}",
        effect=f"{run.errors} of {total} requests",
        p_adjusted=None,
        baseline_n=0,
        current_n=total,
        state=AlertState.FIRING if share >= policy.outage_error_rate else AlertState.RESOLVED,
    )
    base = AlertMessage(
        kind="outage",
        target=target.name,
        probe_set=run.probe_set,
        model=_model(s, run),
        metrics=(line,),
    )
    if share >= policy.outage_error_rate:
        if alert is None:
            alert = _open(s, run, Family.OPERATIONAL, AlertState.FIRING, now)
        alert.last_run_id, alert.metrics = run.id, [OUTAGE_METRIC]
        msg = replace(
            base, examples=_errors(s, run.id), opened_at=alert.opened_at, alert_id=alert.id
        )
        if not covered(silences, [OUTAGE_METRIC]):
            _announce(s, alert, msg, "outage", run, policy, now)
    elif alert is not None:
        alert.last_run_id = run.id
        msg = replace(
            base,
            kind="outage_resolved",
            alert_id=alert.id,
            opened_at=alert.opened_at,
            resolved_at=now,
        )
        _resolve(s, alert, msg, policy, now)


def _update_drift(
    s: Session,
    target: Target,
    run: Run,
    record: EvaluationRecord,
    silences: Sequence[Silence],
    policy: AlertPolicy,
    now: datetime,
) -> None:
    assert target.id is not None and run.id is not None
    alert = open_alert(s, target.id, run.probe_set, Family.QUALITY)
    if _seen(alert, run):
        return
    quality = [v for v in record.verdicts if v.family is Family.QUALITY]
    drifted = [v for v in quality if v.state is State.DRIFTED]
    pending = [v for v in quality if v.state is State.PENDING]
    tested = [v for v in quality if v.state is not State.INSUFFICIENT_DATA]
    change = record.identity_change
    base = AlertMessage(
        kind="firing",
        target=target.name,
        probe_set=run.probe_set,
        model=_model(s, run),
        identity_change=(change["from"], change["to"]) if change else None,
        metrics=tuple(metric_line(v) for v in [*drifted, *pending]),
    )
    spread: list[str] = []  # metrics drifting now that the last evaluation did not list
    if drifted:
        if alert is None:
            alert = _open(s, run, Family.QUALITY, AlertState.FIRING, now)
        elif alert.state == AlertState.PENDING:
            alert.state, alert.fired_at = AlertState.FIRING, now
        spread = [v.metric for v in drifted if v.metric not in alert.metrics]
        alert.metrics = [v.metric for v in drifted]
    elif pending and alert is None:
        alert = _open(s, run, Family.QUALITY, AlertState.PENDING, now)
    elif alert is not None and tested and not pending:
        alert.last_run_id, alert.last_evaluation_id = run.id, record.evaluation_id
        msg = replace(
            base,
            kind="resolved",
            alert_id=alert.id,
            opened_at=alert.fired_at or alert.opened_at,
            resolved_at=now,
        )
        _resolve(s, alert, msg, policy, now)
        return
    if alert is None:
        return
    alert.last_run_id, alert.last_evaluation_id = run.id, record.evaluation_id
    if alert.state != AlertState.FIRING:
        return
    outage = open_alert(s, target.id, None, Family.OPERATIONAL)
    if covered(silences, alert.metrics) or (
        outage is not None and outage.state == AlertState.FIRING
    ):
        return
    msg = replace(
        base, examples=_failures(s, record.run_ids), opened_at=alert.fired_at, alert_id=alert.id
    )
    if spread and alert.notified_at is not None and policy.notify:
        # Already announced, and more metrics drift now: say so in its thread, at once,
        # rather than at the next repeat (Alertmanager sends a group whose alerts changed).
        assert alert.id is not None
        spreading = replace(msg, kind="spread")
        queue(s, f"alert:{alert.id}:spread:run:{run.id}", spreading, alert_id=alert.id, now=now)
        return
    _announce(s, alert, msg, "repeat", run, policy, now)


def metric_line(v: Verdict) -> MetricLine:
    return MetricLine(
        metric=v.metric,
        baseline_value=fmt_value(v.baseline_value, v.effect_name),
        current_value=fmt_value(v.current_value, v.effect_name),
        effect=f"{fmt_effect(v)} {v.effect_name or ''}".strip()
        if v.effect_name == "rate difference"
        else fmt_effect(v),
        p_adjusted=v.p_adjusted,
        baseline_n=v.baseline_n,
        current_n=v.current_n,
        state=v.state.value,
    )


def _model(s: Session, run: Run) -> str | None:
    if run.identity_id is None:
        return None
    identity = s.get(ModelIdentity, run.identity_id)
    if identity is None:
        return None
    return identity_label(identity.model, identity.fingerprint)


def _failures(s: Session, run_ids: Sequence[int]) -> tuple[Example, ...]:
    """A few failing outputs of the current window: what the engineer should look at."""
    rows = s.execute(
        select(col(ProbeVersion.probe_id), col(Result.output), col(Result.reason))
        .join(ProbeVersion, col(ProbeVersion.id) == col(Result.probe_version_id))
        .where(col(Result.run_id).in_(list(run_ids)), col(Result.verdict) == ResultVerdict.FAIL)
        .order_by(col(Result.id))
        .limit(MAX_EXAMPLES)
    ).all()
    return tuple(Example(probe_id=p, output=o or "", reason=r) for p, o, r in rows)


def _errors(s: Session, run_id: int) -> tuple[Example, ...]:
    rows = s.execute(
        select(col(ProbeVersion.probe_id), col(Result.error_message), col(Result.error_class))
        .join(ProbeVersion, col(ProbeVersion.id) == col(Result.probe_version_id))
        .where(col(Result.run_id) == run_id, col(Result.verdict) == ResultVerdict.ERROR)
        .order_by(col(Result.id))
        .limit(MAX_EXAMPLES)
    ).all()
    return tuple(Example(probe_id=p, output=m or "", reason=c) for p, m, c in rows)


__all__ = [
    "AlertPolicy",
    "active_silences",
    "covered",
    "metric_line",
    "open_alert",
    "update_alerts",
]
