"""The sequential alarm rule: a one-sided CUSUM over consecutive evaluations, per metric.

Why CUSUM: a fixed "k consecutive significant windows" rule must wait k runs even when one
run's evidence is overwhelming, and still alarms by chance when a borderline p-value repeats.
Page's CUSUM accumulates evidence as it arrives, so a large change alarms after its first run
and a small persistent one after several, with a false-alarm rate set in advance.

Each evaluation turns a metric's p-value into evidence q = Phi^-1(1 - p): standard normal when
nothing changed (p uniform), or stochastically smaller for the conservative discrete tests.
The statistic S_t = max(0, S_{t-1} + q_t - k) alarms once S_t >= h. k (`cusum_reference`)
is what a run must bring to add anything; h follows from the in-control average run length
(ARL0) wanted, by Siegmund's (1985) approximation for normal increments:

    ARL0 = (exp(2 k b) - 2 k b - 1) / (2 k^2),  b = h + 1.166

The target's ARL0 (`runs_between_false_alarms`) is split over the m metrics tested in the
family, each getting m x ARL0 (a Bonferroni split of the alarm rate). The statistic is held at h
after an alarm, so the alarm ends as soon as a run brings less than k, e.g. once a change is
reverted or accepted as the new baseline.

Not modelled by the formula: consecutive evaluations share the baseline, so their p-values are
a little correlated. bench/calibration.py measures the false alarms of the whole rule.
"""

from __future__ import annotations

import math
from functools import lru_cache

from scipy.optimize import brentq
from scipy.special import ndtri

_SIEGMUND = 1.166  # the overshoot correction of Siegmund's approximation for normal data
# Evidence is clipped to these bounds: p = 1 (a metric that cannot differ) would be -inf, and
# p below ~1e-300 underflows to 0 (+inf); neither may reach the stored statistic.
EVIDENCE_MIN, EVIDENCE_MAX = -8.0, 37.0


def in_control_run_length(reference: float, threshold: float) -> float:
    """Siegmund's approximation of the average evaluations to a false alarm, N(0,1) evidence."""
    b = 2.0 * reference * (threshold + _SIEGMUND)
    return _expm1_minus(b) / (2.0 * reference * reference)


def _expm1_minus(x: float) -> float:
    """exp(x) - x - 1 without cancellation for small x."""
    if x < 1e-3:
        return x * x / 2.0 + x**3 / 6.0
    return math.expm1(x) - x


@lru_cache(maxsize=1024)
def threshold(reference: float, run_length: float) -> float:
    """The h at which a CUSUM with reference k has the given in-control average run length."""
    if in_control_run_length(reference, 0.0) >= run_length:
        return 0.0
    high = 1.0
    while in_control_run_length(reference, high) < run_length:
        high *= 2.0
    return float(brentq(lambda h: in_control_run_length(reference, h) - run_length, 0.0, high))


def evidence(p_value: float) -> float:
    """Phi^-1(1 - p), clipped (see EVIDENCE_MIN)."""
    q = -float(ndtri(min(max(p_value, 0.0), 1.0)))
    return min(EVIDENCE_MAX, max(EVIDENCE_MIN, q))


def cusum(previous: float, p_value: float, reference: float, limit: float) -> float:
    """The statistic after one more evaluation, held at `limit` (the threshold) from above."""
    return min(limit, max(0.0, previous + evidence(p_value) - reference))
