"""What the report shows, read from the database: plain frozen data, no HTML.

Runs, identity events and alerts within the chosen period give the history; the latest
evaluation of each (target, probe set) against its active baseline gives the current verdicts,
whatever its age, because it is the state the alerts are about. Text that came from a model or
a provider passes through `clean_text` here; HTML escaping is the templates' job.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, func, or_, select
from sqlalchemy.orm import Session, aliased
from sqlmodel import col

from monitor.drift.model import Family
from monitor.drift.queries import EvaluationRecord, identity_label, latest_evaluations
from monitor.store.models import (
    Alert,
    Baseline,
    IdentityEvent,
    ModelIdentity,
    ProbeVersion,
    Result,
    Run,
    Target,
)
from monitor.store.states import ResultVerdict, RunStatus

EXAMPLE_CHARS = 500
JUDGED = (ResultVerdict.PASS, ResultVerdict.FAIL)  # errors are not judgements of an output
TOP_PROBES = 10
# Control characters become U+FFFD (newlines and tabs stay); bidirectional overrides and
# isolates, which can show text in a misleading order, and invisible tag characters go; lone
# surrogates (possible in stored JSON) cannot be written as UTF-8 and become U+FFFD.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")
_INVISIBLE = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\U000e0000-\U000e007f]")


def clean_text(text: str) -> str:
    return _CONTROL.sub("\ufffd", _INVISIBLE.sub("", text))


def truncate(text: str, limit: int = EXAMPLE_CHARS) -> tuple[str, bool]:
    """(text cut to about `limit` characters, whether it was cut). Python strings are cut
    between code points; the cut also steps back over combining marks, so an accent is never
    separated from its letter."""
    if len(text) <= limit:
        return text, False
    cut = limit
    while cut > 0 and unicodedata.combining(text[cut]):
        cut -= 1
    return text[:cut], True


@dataclass(frozen=True)
class RunPoint:
    run_id: int
    at: datetime
    passed: int
    failed: int
    errors: int
    identity: str | None

    @property
    def pass_rate(self) -> float | None:
        """Passed over judged results; None for a run with errors only (nothing judged)."""
        judged = self.passed + self.failed
        return self.passed / judged if judged else None


@dataclass(frozen=True)
class Event:
    """A moment worth marking on the history: kind is identity, opened, firing or resolved."""

    at: datetime
    kind: str
    label: str


@dataclass(frozen=True)
class Series:
    target: str
    probe_set: str
    points: tuple[RunPoint, ...]
    events: tuple[Event, ...]


@dataclass(frozen=True)
class Example:
    run_id: int
    verdict: str
    reason: str | None
    output: str  # cleaned, at most EXAMPLE_CHARS characters
    truncated: bool


@dataclass(frozen=True)
class ProbeChange:
    """One probe version's pass rate in the baseline runs and in the evaluated window."""

    probe_id: str
    version: str
    baseline_passed: int
    baseline_judged: int
    current_passed: int
    current_judged: int
    before: Example | None
    after: Example | None

    @property
    def baseline_rate(self) -> float:
        return self.baseline_passed / self.baseline_judged

    @property
    def current_rate(self) -> float:
        return self.current_passed / self.current_judged

    @property
    def change(self) -> float:
        return self.current_rate - self.baseline_rate


@dataclass(frozen=True)
class EvaluationView:
    record: EvaluationRecord
    baseline_run_ids: tuple[int, ...]
    changes: tuple[ProbeChange, ...]  # the probes whose pass rate moved most, largest first
    compared: int  # probe versions judged on both sides


@dataclass(frozen=True)
class ReportData:
    generated_at: datetime
    since: datetime
    database: str  # the URL, password hidden
    targets: tuple[str, ...]
    series: tuple[Series, ...]
    evaluations: tuple[EvaluationView, ...]


def load_report(
    engine: Engine, *, since: datetime, now: datetime, target: str | None = None
) -> ReportData:
    evaluations = latest_evaluations(engine, target=target)
    with Session(engine) as s:
        query = select(Target).order_by(col(Target.name))
        if target is not None:
            query = query.where(col(Target.name) == target)
        targets = list(s.execute(query).scalars())
        series = [one for t in targets for one in _series(s, t, since)]
        views = [_view(s, record) for record in evaluations]
    names = tuple(t.name for t in targets) or ((target,) if target is not None else ())
    return ReportData(
        generated_at=now,
        since=since,
        database=engine.url.render_as_string(hide_password=True),
        targets=names,
        series=tuple(series),
        evaluations=tuple(views),
    )


def _series(s: Session, target: Target, since: datetime) -> list[Series]:
    """One series per probe set of the target that has complete runs since `since`."""
    rows = s.execute(
        select(Run, col(ModelIdentity.model), col(ModelIdentity.fingerprint))
        .outerjoin(ModelIdentity, col(ModelIdentity.id) == col(Run.identity_id))
        .where(
            col(Run.target_id) == target.id,
            col(Run.status) == RunStatus.COMPLETE,
            col(Run.started_at) >= since,
        )
        .order_by(col(Run.id))
    ).all()
    points: dict[str, list[RunPoint]] = {}
    for run, model, fingerprint in rows:
        assert run.id is not None
        identity = None
        if run.identity_id is not None:
            identity = clean_text(identity_label(model, fingerprint))
        points.setdefault(run.probe_set, []).append(
            RunPoint(
                run.id,
                run.finished_at or run.started_at,
                run.passed,
                run.failed,
                run.errors,
                identity,
            )
        )
    identity_events = _identity_events(s, target, since)
    series = []
    for probe_set, set_points in sorted(points.items()):
        events = [*identity_events, *_alert_events(s, target, probe_set, since)]
        events.sort(key=lambda e: e.at)
        series.append(Series(target.name, probe_set, tuple(set_points), tuple(events)))
    return series


def _identity_events(s: Session, target: Target, since: datetime) -> list[Event]:
    """Identity changes, placed at the start of the first run under the new identity: the
    change happened between that run and the one before."""
    old, new = aliased(ModelIdentity), aliased(ModelIdentity)
    rows = s.execute(
        select(
            col(Run.started_at),
            col(old.model),
            col(old.fingerprint),
            col(new.model),
            col(new.fingerprint),
        )
        .select_from(IdentityEvent)
        .join(Run, col(Run.id) == col(IdentityEvent.first_run_id))
        .outerjoin(old, col(old.id) == col(IdentityEvent.from_identity_id))
        .join(new, col(new.id) == col(IdentityEvent.to_identity_id))
        .where(col(IdentityEvent.target_id) == target.id, col(Run.started_at) >= since)
        .order_by(col(IdentityEvent.id))
    ).all()
    events = []
    for at, old_model, old_fp, new_model, new_fp in rows:
        before = identity_label(old_model, old_fp) if old_model is not None else "unknown"
        after = identity_label(new_model, new_fp)
        events.append(Event(at, "identity", clean_text(f"{before} → {after}")))
    return events


def _alert_events(s: Session, target: Target, probe_set: str, since: datetime) -> list[Event]:
    alerts = s.execute(
        select(Alert)
        .where(
            col(Alert.target_id) == target.id,
            col(Alert.probe_set) == probe_set,
            or_(
                col(Alert.opened_at) >= since,
                col(Alert.fired_at) >= since,
                col(Alert.resolved_at) >= since,
            ),
        )
        .order_by(col(Alert.id))
    ).scalars()
    events = []
    for alert in alerts:
        family = "outage" if alert.family == Family.OPERATIONAL else "drift"
        for kind, at in (
            ("opened", alert.opened_at),
            ("firing", alert.fired_at),
            ("resolved", alert.resolved_at),
        ):
            if at is not None and at >= since:
                label = f"#{alert.id} {family} {kind}"
                if kind != "resolved" and alert.metrics:
                    label += ": " + ", ".join(alert.metrics)
                events.append(Event(at, kind, clean_text(label)))
    return events


def _view(s: Session, record: EvaluationRecord, top: int = TOP_PROBES) -> EvaluationView:
    baseline = s.get(Baseline, record.baseline_id) if record.baseline_id is not None else None
    baseline_runs = tuple(baseline.run_ids) if baseline is not None else ()
    before, after = _rates(s, baseline_runs), _rates(s, record.run_ids)
    paired = sorted(before.keys() & after.keys())

    def change(version_id: int) -> float:
        (old_passed, old_judged), (new_passed, new_judged) = before[version_id], after[version_id]
        return new_passed / new_judged - old_passed / old_judged

    moved = sorted((v for v in paired if change(v) != 0), key=lambda v: -abs(change(v)))[:top]
    names = _probe_names(s, moved)
    changes = []
    for version_id in moved:
        # Show what changed: a pass before and a fail after when the rate fell, and the
        # reverse when it rose.
        fell = (ResultVerdict.PASS, ResultVerdict.FAIL)
        old, new = fell if change(version_id) < 0 else fell[::-1]
        changes.append(
            ProbeChange(
                *names[version_id],
                *before[version_id],
                *after[version_id],
                before=_example(s, baseline_runs, version_id, old),
                after=_example(s, record.run_ids, version_id, new),
            )
        )
    return EvaluationView(record, baseline_runs, tuple(changes), len(paired))


def _rates(s: Session, run_ids: Sequence[int]) -> dict[int, tuple[int, int]]:
    """probe version -> (passed, judged) over the runs; errors are not judgements."""
    if not run_ids:
        return {}
    passed = func.sum(case((col(Result.verdict) == ResultVerdict.PASS, 1), else_=0))
    rows = s.execute(
        select(col(Result.probe_version_id), passed, func.count())
        .where(col(Result.run_id).in_(list(run_ids)), col(Result.verdict).in_(JUDGED))
        .group_by(col(Result.probe_version_id))
    ).all()
    return {version: (int(ok), int(judged)) for version, ok, judged in rows}


def _probe_names(s: Session, version_ids: Sequence[int]) -> dict[int, tuple[str, str]]:
    if not version_ids:
        return {}
    rows = s.execute(
        select(ProbeVersion).where(col(ProbeVersion.id).in_(list(version_ids)))
    ).scalars()
    return {p.id: (p.probe_id, p.version) for p in rows if p.id is not None}


def _example(
    s: Session, run_ids: Sequence[int], version_id: int, verdict: ResultVerdict
) -> Example | None:
    """One stored output of the probe version in these runs, preferring the given verdict."""
    if not run_ids:
        return None
    preferred = case((col(Result.verdict) == verdict, 0), else_=1)
    row = s.execute(
        select(col(Result.run_id), col(Result.verdict), col(Result.reason), col(Result.output))
        .where(
            col(Result.run_id).in_(list(run_ids)),
            col(Result.probe_version_id) == version_id,
            col(Result.verdict).in_(JUDGED),
        )
        .order_by(preferred, col(Result.id))
        .limit(1)
    ).first()
    if row is None:
        return None
    run_id, found, reason, output = row
    text, cut = truncate(clean_text(output or ""))
    return Example(run_id, found, clean_text(reason) if reason else None, text, cut)
