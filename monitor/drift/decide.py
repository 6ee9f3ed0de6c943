"""From test results to verdicts: minimum sizes, multiplicity, effect floors, the alarm rule.

Per metric, in this order:
1. INSUFFICIENT_DATA (no test run; the note says why) unless the metric has data on both sides
   for at least `min_probes` probe versions and each side then has >= `min_samples` values.
2. A metric with no variation inside any probe version (refusal_rate all False, say) cannot be
   rejected and is left out of everything that counts metrics (see _fixed): NOT_SIGNIFICANT,
   p_adjusted 1, evidence 0, with a note.
3. Benjamini-Hochberg (scipy.stats.false_discovery_control) within each family, over the other
   tested metrics: significant = p_adjusted <= alpha. This labels a single evaluation (PENDING)
   and is what `drift` shows; it does not raise alarms.
4. The alarm rule (monitor.drift.sequential): each metric's CUSUM of evidence from its p-value,
   carried from the previous evaluation against the same baseline; the threshold splits the
   target's in-control run length over the m metrics tested in the family, so an outage (many
   operational metrics) cannot change a quality threshold.
5. meaningful: |effect| >= the floor of the metric's kind (min_rate_change, min_js_distance,
   min_wasserstein, min_text_change), and for integer-valued numeric data (lengths in tokens or
   characters) a typical per-probe shift of more than one unit. A tiny tolerance keeps an effect
   that lands on the floor exactly (5 of 100 probes = 0.05) from falling below it.
6. alarming = evidence >= threshold and meaningful; streak counts consecutive alarming
   evaluations; DRIFTED once streak >= persistence (default 1). Otherwise PENDING when alarming
   or significant and meaningful, NO_MEANINGFUL_CHANGE when significant or over the threshold
   but not meaningful, else NOT_SIGNIFICANT.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from scipy.stats import false_discovery_control

from monitor.drift.model import (
    Carry,
    Family,
    MetricData,
    MetricKind,
    State,
    TestResult,
    Verdict,
)
from monitor.drift.sequential import cusum, threshold
from monitor.drift.settings import DriftConfig

_FLOOR_TOLERANCE = 1e-12
_UNIT = 1.0  # the resolution of integer-valued data: a shift must exceed it to mean anything
_FIXED_NOTE = "no variation within any probe version: left out of the multiple-testing correction"


class Paired(NamedTuple):
    """A metric's probe versions with data on both sides (sorted) and its value counts there."""

    versions: list[int]
    baseline_n: int
    current_n: int


@dataclass(frozen=True)
class Untested:
    """Why a metric was not tested, with its value counts for the verdict."""

    why: str
    baseline_n: int
    current_n: int


def paired(metric: MetricData) -> Paired:
    both = sorted(metric.baseline.keys() & metric.current.keys())
    n_b = sum(map(len, (metric.baseline[pv] for pv in both)))
    return Paired(both, n_b, sum(map(len, (metric.current[pv] for pv in both))))


def insufficiency(metric: MetricData, sizes: Paired, config: DriftConfig) -> Untested | None:
    """Why the metric cannot be tested (None when it can); sizes = paired(metric)."""
    both, n_b, n_c = sizes
    if not both:
        why = (
            "no probe version has data on both sides"
            if metric.baseline and metric.current
            else f"no data in the {'current window' if metric.baseline else 'baseline'}"
        )
    elif len(both) < config.min_probes:
        versions = "probe version" if len(both) == 1 else "probe versions"
        why = f"{len(both)} {versions} with data on both sides (need {config.min_probes})"
    else:
        sides = (("baseline", n_b), ("current window", n_c))
        short = [f"{side} has {n} values" for side, n in sides if n < config.min_samples]
        if not short:
            return None
        why = f"{' and '.join(short)} (need {config.min_samples})"
    return Untested(why, n_b, n_c)


def floor(kind: MetricKind, config: DriftConfig) -> float:
    return {
        MetricKind.BINARY: config.min_rate_change,
        MetricKind.CATEGORICAL: config.min_js_distance,
        MetricKind.NUMERIC: config.min_wasserstein,
        MetricKind.TEXT: config.min_text_change,
    }[kind]


def meaningful(kind: MetricKind, result: TestResult, config: DriftConfig) -> bool:
    if abs(result.effect) < floor(kind, config) - _FLOOR_TOLERANCE:
        return False
    return result.shift is None or abs(result.shift) > _UNIT + _FLOOR_TOLERANCE


def decide(
    tested: Sequence[tuple[MetricData, TestResult | Untested]],
    config: DriftConfig,
    previous: Mapping[str, Carry] | None = None,
    dispersion: Mapping[str, float] | None = None,
) -> tuple[Verdict, ...]:
    """Verdicts in the order given; each item is (metric, its test result or why untested).

    previous: each metric's Carry from the previous evaluation against the same baseline.
    dispersion: the run-to-run factor already applied to a metric's p-value, to record it.
    """
    carried = previous or {}
    adjusted: dict[int, float] = {}
    limits: dict[Family, float] = {}
    fixed = {i for i, (m, r) in enumerate(tested) if isinstance(r, TestResult) and _fixed(m, r)}
    for family in Family:
        tested_here = [
            (i, r.p_value)
            for i, (m, r) in enumerate(tested)
            if m.family is family and isinstance(r, TestResult) and i not in fixed
        ]
        if tested_here:
            idx, ps = zip(*tested_here, strict=True)
            # One p-value adjusts to itself; scipy's call costs ~150 us, paid 10^6 times.
            p_adj = list(ps) if len(ps) == 1 else false_discovery_control(ps, method="bh")
            adjusted.update(zip(idx, map(float, p_adj), strict=True))
            run_length = float(config.runs_between_false_alarms * len(ps))
            limits[family] = threshold(config.cusum_reference, run_length)

    out: list[Verdict] = []
    for i, (metric, result) in enumerate(tested):
        if isinstance(result, Untested):
            out.append(_untested(metric, result))
            continue
        p_adj = min(1.0, adjusted.get(i, 1.0))
        before = carried.get(metric.name, Carry())
        limit = limits.get(metric.family)
        evidence = 0.0
        if i not in fixed and limit is not None:
            evidence = cusum(before.evidence, result.p_value, config.cusum_reference, limit)
        significant = p_adj <= config.alpha
        over = limit is not None and i not in fixed and evidence >= limit
        matters = meaningful(metric.kind, result, config)
        streak = before.streak + 1 if over and matters else 0
        if over and matters and streak >= config.persistence:
            state = State.DRIFTED
        elif matters and (over or significant):
            state = State.PENDING
        elif over or significant:
            state = State.NO_MEANINGFUL_CHANGE
        else:
            state = State.NOT_SIGNIFICANT
        out.append(
            Verdict(
                metric=metric.name,
                family=metric.family,
                state=state,
                p_value=result.p_value,
                p_adjusted=p_adj,
                effect=result.effect,
                effect_name=result.effect_name,
                test=result.test,
                baseline_n=result.baseline_n,
                baseline_value=result.baseline_value,
                current_n=result.current_n,
                current_value=result.current_value,
                streak=streak,
                note=_FIXED_NOTE if i in fixed else None,
                evidence=evidence,
                threshold=limit if i not in fixed else None,
                dispersion=(dispersion or {}).get(metric.name),
            )
        )
    return tuple(out)


def _fixed(metric: MetricData, result: TestResult) -> bool:
    """No probe version varies (pooled over both sides): given the margins, which the tests
    condition on, the statistic cannot move, so p = 1 for sure. Like Tarone (1990) for discrete
    tests, such a metric is left out of BH: it could never be rejected, only raise m."""
    if result.p_value < 1.0:
        return False
    if metric.kind is MetricKind.TEXT:
        return True  # p = 1 exactly: no stratum's permutation distribution has any spread
    b, c = metric.baseline, metric.current
    return all(len(set(b[pv]).union(c[pv])) == 1 for pv in b.keys() & c.keys())


# The effect each kind's test reports (monitor.drift.tests): an untested verdict names it too,
# so its values are shown in the same form (a rate as a percentage).
_EFFECT_NAMES = {
    MetricKind.BINARY: "rate difference",
    MetricKind.CATEGORICAL: "Jensen-Shannon distance",
    MetricKind.NUMERIC: "normalised Wasserstein",
}


def described(kind: MetricKind, side: Mapping[int, list[Any]]) -> Any:
    """What one side's values were, in the form its test reports them, for a metric with too
    little data to test: the mean rate over probe versions, the mean share of each category
    over probe versions, the median; None for text and for no values."""
    groups = [values for values in side.values() if values]
    if not groups or kind is MetricKind.TEXT:
        return None
    if kind is MetricKind.BINARY:
        return statistics.fmean(sum(map(bool, values)) / len(values) for values in groups)
    if kind is MetricKind.CATEGORICAL:
        categories = sorted({str(v) for values in groups for v in values})
        return {
            category: statistics.fmean(
                sum(str(v) == category for v in values) / len(values) for values in groups
            )
            for category in categories
        }
    return statistics.median(float(v) for values in groups for v in values)


def _untested(metric: MetricData, why: Untested) -> Verdict:
    """Not tested, but what each side showed is still reported: a reader can see whether the
    thin data hints at a change while more runs come in."""
    return Verdict(
        metric=metric.name,
        family=metric.family,
        state=State.INSUFFICIENT_DATA,
        p_value=None,
        p_adjusted=None,
        effect=None,
        effect_name=_EFFECT_NAMES.get(metric.kind),
        test=None,
        baseline_n=why.baseline_n,
        baseline_value=described(metric.kind, metric.baseline),
        current_n=why.current_n,
        current_value=described(metric.kind, metric.current),
        note=why.why,
    )
