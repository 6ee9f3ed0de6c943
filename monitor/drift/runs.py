"""Run-to-run variation: how much more runs differ than the sampling inside a run explains.

The tests in tests.py assume that, within a probe version, every sample of every run is an
exchangeable draw. Real providers add a shift shared by all results of one run (load, batching,
routing, a replica with other settings): the valid share is 80% in one run and 84% in the next.
Such a shift is a random *run effect*. It inflates the variance of every comparison by the same
factor phi = 1 + n tau^2 / sigma^2 (tau^2 the between-run variance, sigma^2 / n the sampling
variance of one run), whether one run is compared with k others or a window with a baseline:
both variance terms scale with (1/w + 1/k) alike.

phi is estimated from the baseline alone, by the test itself: each baseline run in turn is
compared with the other baseline runs (leave one run out), and each p-value becomes its
chi-square(1) equivalent z^2. Without run effects these average 1; with them, phi. The mean is
the quasi-likelihood dispersion estimate (with k runs, k - 1 degrees of freedom: the k
contrasts sum to zero). A comparison's evidence is then divided by it: z^2 / phi, the
Hartung-Knapp idea of scaling by the observed heterogeneity, floored at 1 so that a baseline
quieter than sampling noise never sharpens a test (the conservative "modified" version), and
referred to Student's t (F(1, df)) instead of the normal: phi is an estimate. Its degrees of
freedom follow Satterthwaite: the sampling part of the variance is known exactly (the tests'
own null), only the excess phi - 1 is estimated from the k runs, so
df = (k - 1) (phi / (phi - 1))^2: the normal again when the runs agree, k - 1 when run effects
dominate. Without the t reference an underestimated phi (a quiet baseline) would turn every
run's ordinary swing into a first-run alarm.

So a shift no larger than the baseline's own run-to-run swings is not significant, and a shift
beyond them still is. It needs at least MIN_RUNS baseline runs with run ids; with fewer
(backtests on recorded data have one) phi is 1 and the evaluation's notes say so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from scipy.special import chdtrc, chdtri, fdtrc

from monitor.drift.decide import paired
from monitor.drift.metrics import build_metrics, group_by_version
from monitor.drift.model import Dispersion, MetricData, Observation, TestResult
from monitor.drift.settings import DriftConfig

Tester = Callable[[MetricData, Sequence[int]], TestResult]
UPPER_CONFIDENCE = 0.9  # of the run-to-run excess used (see inflation)
# Fewer baseline runs leave too few degrees of freedom: the 90% bound multiplies the excess by
# 9.5 at 3 runs (2.5 at 8), so a baseline that is quiet by chance would cost most of the power
# of clean data. Below this the tests run without the correction, and the notes say so.
MIN_RUNS = 8


def by_run(observations: Sequence[Observation]) -> list[list[Observation]]:
    """The observations of each run, in run id order; None counts as one run."""
    runs: dict[int | None, list[Observation]] = {}
    for o in observations:
        runs.setdefault(o.run_id, []).append(o)
    return [runs[r] for r in sorted(runs, key=lambda r: (r is not None, r or 0))]


def run_dispersion(
    baseline: Sequence[Observation],
    versions: Sequence[int],
    config: DriftConfig,
    test: Tester,
) -> dict[str, Dispersion]:
    """phi per metric from the baseline's runs, over the probe versions being compared."""
    runs = by_run(baseline)
    if len(runs) < MIN_RUNS:
        return {}
    wanted = set(versions)
    totals: dict[str, list[float]] = {}
    for i, held_out in enumerate(runs):
        rest = [o for j, run in enumerate(runs) if j != i for o in run]
        b, c = group_by_version(rest), group_by_version(held_out)
        both = sorted(wanted & b.keys() & c.keys())
        for metric in build_metrics(b, c, both):
            sizes = paired(metric)
            if len(sizes.versions) < config.min_probes:
                continue
            p = test(metric, sizes.versions).p_value
            totals.setdefault(metric.name, []).append(chi_square_of(p))
    return {name: Dispersion(sum(xs) / len(xs), len(xs)) for name, xs in totals.items()}


def chi_square_of(p_value: float) -> float:
    """The chi-square(1) value with this upper tail: z^2 for a two-sided normal p."""
    if p_value >= 1.0:
        return 0.0
    return float(chdtri(1, max(p_value, 1e-300)))


def corrected(p_value: float, dispersion: Dispersion) -> float:
    """The p-value with the evidence divided by the conservative phi (see inflation), on
    F(1, df) with Satterthwaite's df (see the module docstring)."""
    factor = inflation(dispersion)
    if factor <= 1.0 or p_value >= 1.0:
        return p_value
    chi_square = chi_square_of(p_value) / factor
    excess = max(dispersion.factor - 1.0, 1e-12)
    df = max(1.0, dispersion.runs - 1.0) * (dispersion.factor / excess) ** 2
    if df > 1e6:
        return float(chdtrc(1, chi_square))
    return float(fdtrc(1, df, chi_square))


def inflation(dispersion: Dispersion) -> float:
    """phi to divide the evidence by: 1 + UPPER x (phi_hat - 1), at least 1.

    Why not phi_hat itself: one baseline is compared with every run for weeks, so an estimate
    that happens to be low is not averaged out; it makes every evaluation of those weeks
    too confident, and the CUSUM adds that up into alarms. The excess over sampling noise is
    raised to its one-sided 90% upper confidence bound (chi-square with k - 1 df); a baseline
    whose runs agree (phi_hat <= 1) is left alone, so data without run effects keeps its power.
    """
    if dispersion.factor <= 1.0:
        return 1.0
    df = max(1.0, dispersion.runs - 1.0)
    upper = df / float(chdtri(df, UPPER_CONFIDENCE))  # df over the lower 10% quantile
    return 1.0 + upper * (dispersion.factor - 1.0)
