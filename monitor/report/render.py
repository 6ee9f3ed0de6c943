"""The report as one self-contained HTML file: Jinja2 templates with autoescaping, CSS inline,
charts as inline SVG, a Content-Security-Policy that allows no script and no request.

Only the chart SVG from `monitor.report.charts` is marked safe (it escapes its own text);
every other value, model outputs above all, reaches the page through autoescaping. Jinja2 is
imported here, when a report is built, so `driftmon --help` never pays for it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from monitor import __version__
from monitor.drift.model import Family, State, Verdict
from monitor.drift.present import fmt_effect, fmt_value
from monitor.report import charts
from monitor.report.data import (
    EvaluationView,
    ReportData,
    Series,
    clean_text,
    load_report,
)

if TYPE_CHECKING:
    from markupsafe import Markup

BAR_WIDTH = 300  # the narrowest distribution chart: one group of two bars
MAX_CATEGORIES = 8  # more categories than this are summed up as "other" in a chart
_STATE_ORDER = {
    State.DRIFTED: 0,
    State.PENDING: 1,
    State.NO_MEANINGFUL_CHANGE: 2,
    State.NOT_SIGNIFICANT: 3,
    State.INSUFFICIENT_DATA: 4,
}
_SHORT_LABELS = {
    "identity": "model changed",
    "opened": "opened",
    "firing": "firing",
    "resolved": "resolved",
}


@dataclass(frozen=True)
class HistoryView:
    series: Series
    chart: Markup  # SVG from monitor.report.charts, which escapes its own text


@dataclass(frozen=True)
class MetricChart:
    verdict: Verdict
    chart: Markup
    width: int  # of the chart, so its caption wraps to the same width


def write_report(
    engine: Engine,
    out: Path,
    *,
    since: datetime,
    target: str | None = None,
    now: datetime | None = None,
) -> Path:
    """Build the report and write it to `out` atomically (a reader, or a link in an alert,
    never sees half a file); returns the absolute path written."""
    data = load_report(engine, since=since, now=now or datetime.now(UTC), target=target)
    html = render_html(data)
    out = out.expanduser().absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
            handle.write(html)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; a report is meant to be read
        os.replace(temporary, out)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return out


def render_html(data: ReportData) -> str:
    from jinja2 import Environment, PackageLoader, StrictUndefined
    from markupsafe import Markup

    env = Environment(
        loader=PackageLoader("monitor.report", "templates"),
        autoescape=True,  # always, whatever the template's name
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(when=_when, pct=_pct, pval=_pval, value=_value, effect=fmt_effect)
    span = _span(data)
    history = [HistoryView(s, Markup(_history_chart(s, span))) for s in data.series]
    metrics = {
        view.record.evaluation_id: [
            MetricChart(v, Markup(svg), width)
            for v in view.record.drifted
            for svg, width in [_distribution_chart(v)]
        ]
        for view in data.evaluations
    }
    template = env.get_template("report.html")
    return template.render(
        data=data,
        history=history,
        metrics=metrics,
        identity_changes=[
            (v.record.target, v.record.probe_set, v.record.identity_change)
            for v in data.evaluations
            if v.record.identity_change
        ],
        verdicts={v.record.evaluation_id: _ordered(v) for v in data.evaluations},
        version=__version__,
    )


def _ordered(view: EvaluationView) -> list[Verdict]:
    """Quality first, most serious first; operational metrics (errors, latency) at the end."""
    return sorted(
        view.record.verdicts,
        key=lambda v: (v.family is Family.OPERATIONAL, _STATE_ORDER.get(v.state, 5)),
    )


def _value(value: Any, effect_name: str | None) -> str:
    # Categories are model output (a tracked field's values): cleaned like any other.
    return clean_text(fmt_value(value, effect_name))


def _when(moment: datetime | None) -> str:
    return "–" if moment is None else f"{moment.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1%}"


def _pval(value: float | None) -> str:
    if value is None:
        return "–"
    return f"{value:.2g}" if value < 0.001 else f"{value:.3f}"


def _span(data: ReportData) -> float:
    """Seconds covered by the history, to choose how times along the x axis are written."""
    moments = [p.at for s in data.series for p in s.points]
    return (max(moments) - min(moments)).total_seconds() if moments else 0.0


def _time_format(span: float) -> charts.Format:
    pattern = "%H:%M:%S" if span < 3600 else "%m-%d %H:%M" if span < 3 * 86400 else "%Y-%m-%d"
    return lambda x: datetime.fromtimestamp(x, UTC).strftime(pattern)


def _history_chart(series: Series, span: float) -> str:
    points = [
        charts.Point(
            p.at.timestamp(),
            p.pass_rate,
            f"run {p.run_id} · {_when(p.at)} · pass rate {_pct(p.pass_rate)} "
            f"({p.passed}/{p.passed + p.failed}, {p.errors} errors) · {p.identity or 'unknown'}",
        )
        for p in series.points
    ]
    markers = [
        charts.Marker(e.at.timestamp(), _SHORT_LABELS.get(e.kind, e.kind), e.kind, e.label)
        for e in series.events
    ]
    return charts.line_chart(
        [charts.Line("pass rate", points)],
        markers,
        title=f"{series.target} / {series.probe_set}: pass rate per complete run",
        x_format=_time_format(span),
        width=1000,
        empty="no judged results yet (every request failed)",
    )


def _distribution_chart(verdict: Verdict) -> tuple[str, int]:
    """Baseline beside current: rates and shares in percent, numeric metrics by median.
    Returns the SVG and its width."""
    title = f"{verdict.metric}: baseline vs current"
    base, current = verdict.baseline_value, verdict.current_value
    series = ("baseline", "current")
    if isinstance(base, dict) or isinstance(current, dict):
        groups = _shares(_as_dict(base), _as_dict(current))
        width = max(BAR_WIDTH, 60 + 90 * len(groups))
        svg = charts.bar_chart(
            groups, series, title=title + " (share of outputs)", y_max=1.0, width=width
        )
        return svg, width
    values = [v if isinstance(v, int | float) else None for v in (base, current)]
    if verdict.effect_name == "rate difference":
        group = charts.BarGroup(verdict.metric.replace("_", " "), values)
        return charts.bar_chart([group], series, title=title, y_max=1.0, width=BAR_WIDTH), BAR_WIDTH
    group = charts.BarGroup("median", values)
    svg = charts.bar_chart([group], series, title=title, y_format=charts.number, width=BAR_WIDTH)
    return svg, BAR_WIDTH


def _as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _shares(base: dict[str, Any], current: dict[str, Any]) -> list[charts.BarGroup]:
    def share(d: dict[str, Any], key: str) -> float:
        value = d.get(key, 0.0)
        return float(value) if isinstance(value, int | float) else 0.0

    keys = sorted(
        base.keys() | current.keys(), key=lambda k: (-max(share(base, k), share(current, k)), k)
    )
    shown, rest = keys[: MAX_CATEGORIES - 1], keys[MAX_CATEGORIES - 1 :]
    if len(rest) == 1:
        shown, rest = keys, []
    groups = [
        charts.BarGroup(clean_text(str(k)), [share(base, k), share(current, k)]) for k in shown
    ]
    if rest:
        totals: Sequence[float] = [sum(share(d, k) for k in rest) for d in (base, current)]
        groups.append(charts.BarGroup(f"other ({len(rest)})", totals))
    return groups
