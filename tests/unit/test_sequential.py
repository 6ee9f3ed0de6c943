"""The CUSUM alarm rule: Siegmund's threshold, evidence from p-values, the held statistic, and
the in-control run length measured by simulation against the target it was set for."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import norm

from monitor.drift.sequential import (
    EVIDENCE_MAX,
    EVIDENCE_MIN,
    cusum,
    evidence,
    in_control_run_length,
    threshold,
)


def test_the_shipped_threshold() -> None:
    """k = 1 and 20,000 evaluations between false alarms: h = 4.13 (docs/statistics.md)."""
    assert threshold(1.0, 20_000) == pytest.approx(4.1325, abs=5e-4)


def test_in_control_run_length_is_siegmunds_approximation() -> None:
    for k, h in ((1.0, 4.0), (0.5, 2.5), (0.25, 8.0)):
        b = h + 1.166
        expected = (math.exp(2 * k * b) - 2 * k * b - 1) / (2 * k * k)
        assert in_control_run_length(k, h) == pytest.approx(expected, rel=1e-12)
    # Small arguments: no cancellation, the series of exp(x) - x - 1.
    assert in_control_run_length(1e-6, 0.0) == pytest.approx(1.166**2, rel=1e-6)


@pytest.mark.parametrize("k", [0.25, 0.5, 1.0, 2.0])
@pytest.mark.parametrize("run_length", [50.0, 200.0, 20_000.0, 2e6])
def test_threshold_inverts_the_run_length(k: float, run_length: float) -> None:
    h = threshold(k, run_length)
    assert h > 0 and in_control_run_length(k, h) == pytest.approx(run_length, rel=1e-9)
    assert threshold(k, run_length * 2) > h


def test_a_target_already_met_without_any_evidence_needs_no_threshold() -> None:
    assert in_control_run_length(1.0, 0.0) > 3.0
    assert threshold(1.0, 3.0) == 0.0


def test_evidence_is_the_normal_quantile_of_the_p_value_clipped() -> None:
    assert evidence(0.5) == 0.0
    assert evidence(0.05) == pytest.approx(1.6449, abs=1e-4)
    assert evidence(0.975) == pytest.approx(-1.96, abs=1e-3)
    assert evidence(1.0) == EVIDENCE_MIN and evidence(0.0) == EVIDENCE_MAX
    assert evidence(1e-320) == EVIDENCE_MAX and evidence(1.5) == EVIDENCE_MIN
    assert evidence(-0.1) == EVIDENCE_MAX
    assert EVIDENCE_MIN < evidence(1 - 1e-15) < evidence(1e-200) < EVIDENCE_MAX


def test_cusum_adds_what_exceeds_the_reference_floors_at_zero_and_holds_at_the_limit() -> None:
    k, h = 1.0, 4.0
    assert cusum(0.0, 0.5, k, h) == 0.0  # q = 0 < k: nothing, and never below 0
    assert cusum(2.0, 0.05, k, h) == pytest.approx(2.0 + 1.6449 - 1.0, abs=1e-4)
    assert cusum(3.5, 0.001, k, h) == h  # over the threshold: held there
    assert cusum(0.0, 0.0, k, h) == h  # p = 0 cannot put infinity in the stored statistic
    assert cusum(h, 1e-12, k, h) == h
    # Held at h, the alarm ends with the first run that brings less than k.
    assert cusum(h, 0.5, k, h) == pytest.approx(h - 1.0)
    assert cusum(h, 0.16, k, h) < h  # q = 0.99 < k
    assert cusum(h, 1.0, k, h) == 0.0  # p = 1: the strongest evidence of no change


def mean_run_length(k: float, h: float, chains: int, rng: np.random.Generator) -> float:
    """Average evaluations to the first alarm of the rule itself (cusum) with uniform p-values,
    i.e. N(0, 1) evidence: nothing changed."""
    lengths = []
    for _ in range(chains):
        s, n = 0.0, 0
        while s < h:
            n += 1
            s = cusum(s, float(rng.random()), k, h)
        lengths.append(n)
    return float(np.mean(lengths))


@pytest.mark.parametrize(("k", "target"), [(1.0, 200.0), (0.5, 100.0)])
def test_the_in_control_run_length_matches_its_target(k: float, target: float) -> None:
    """Siegmund's approximation is good to a few percent for normal increments; 2,000 chains
    (run lengths about geometric: SD ~ mean) measure the mean to ~2.2%."""
    rng = np.random.default_rng(int(target))
    measured = mean_run_length(k, threshold(k, target), 2000, rng)
    assert measured == pytest.approx(target, rel=0.15)


def test_uniform_p_values_give_standard_normal_evidence() -> None:
    p = np.random.default_rng(3).random(20_000)
    q = np.array([evidence(float(x)) for x in p])
    assert abs(q.mean()) < 0.03 and abs(q.std() - 1.0) < 0.03
    assert np.mean(q > norm.ppf(0.99)) == pytest.approx(0.01, abs=0.003)
