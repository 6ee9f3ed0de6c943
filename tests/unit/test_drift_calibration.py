"""Calibration by simulation: under H0 (no change), with heterogeneous probes and unequal
sample counts per side, the realized rejection rate at alpha = 0.05 over 2,000 simulated tables
must not exceed the 99% binomial upper bound of a correct level-alpha test. Power: a real change
of the size on-call cares about is found nearly always.

The realized rates are printed (pytest -s). The bounds bite both ways: a liberal test (a wrong
variance, no small-count rule) rejects too often; an unpaired variant that ignores the strata
turns conservative and weak, and the well-sized asymptotic tests must not fall below the lower
99% bound either.
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from scipy.stats import binom

from monitor.drift.tests import binary_p_value, categorical_p_value, van_elteren_p_value

ALPHA = 0.05
REPS = 2000


def max_rejections(reps: int = REPS, alpha: float = ALPHA) -> float:
    """Most rejections a level-alpha test shows in `reps` null tables, 99% of the time."""
    return float(binom.ppf(0.99, reps, alpha))


def min_rejections(reps: int = REPS, alpha: float = ALPHA) -> float:
    """Fewest rejections an exactly sized test shows, 99% of the time: the asymptotic tests
    are sized well here, and an unpaired variant (ignoring the strata) falls far below."""
    return float(binom.ppf(0.01, reps, alpha))


def test_binary_calibration_under_h0() -> None:
    """Heterogeneous per-probe rates (U-shaped, like real probes), 6 or 9 vs 3 samples."""
    rng = np.random.default_rng(4)
    probes = 40
    rate = rng.beta(0.5, 0.5, (REPS, probes))
    n_b = rng.choice([6, 9], (REPS, probes))
    n_c = np.full((REPS, probes), 3)
    k_b, k_c = rng.binomial(n_b, rate), rng.binomial(n_c, rate)
    p = np.array([binary_p_value(n_b[i], k_b[i], n_c[i], k_c[i]) for i in range(REPS)])
    print(f"binary: null rejection rate {np.mean(p <= ALPHA):.4f}")
    assert (p <= ALPHA).sum() <= max_rejections()
    assert np.mean(p <= ALPHA) > 0.02  # conservative (discrete), not dead: pooled gives ~0.01


def test_binary_power_for_a_20_point_drop() -> None:
    rng = np.random.default_rng(5)
    reps, probes = 200, 100
    rate = rng.uniform(0.4, 0.95, (reps, probes))
    n = np.full((reps, probes), 3)
    k_b, k_c = rng.binomial(n, rate), rng.binomial(n, rate - 0.2)
    p = np.array([binary_p_value(n[i], k_b[i], n[i], k_c[i]) for i in range(reps)])
    assert np.mean(p <= ALPHA) >= 0.98


def _categorical_null(
    rng: np.random.Generator, shares: np.ndarray, n_b: int, n_c: int
) -> tuple[np.ndarray, Counter[str]]:
    """p-values of REPS null tables, and the methods used; shares: (REPS, probes, k)."""
    base, cur = rng.multinomial(n_b, shares), rng.multinomial(n_c, shares)
    out = [categorical_p_value(base[i], cur[i], resamples=200, seed=i) for i in range(REPS)]
    methods = Counter(m.split(" (")[1].split(",")[0].rstrip(")") for _, m, _ in out)
    return np.array([p for p, _, _ in out]), methods


def test_categorical_calibration_under_h0_large_counts() -> None:
    rng = np.random.default_rng(8)
    shares = rng.dirichlet([0.7, 0.7, 0.7], (REPS, 60))
    p, methods = _categorical_null(rng, shares, 9, 3)
    print(f"categorical (chi-square): null rejection rate {np.mean(p <= ALPHA):.4f} {methods}")
    assert methods["chi-square"] == REPS
    assert min_rejections() <= (p <= ALPHA).sum() <= max_rejections()


def test_categorical_calibration_under_h0_small_counts() -> None:
    """A rare third category (finish_reason "length", format "prose"): permutation path."""
    rng = np.random.default_rng(9)
    rare = rng.uniform(0, 0.03, (REPS, 20))
    second = rng.uniform(0, 0.5, (REPS, 20))
    shares = np.stack([1 - rare - second, second, rare], axis=2)
    p, methods = _categorical_null(rng, shares, 6, 3)
    print(f"categorical (small counts): null rejection rate {np.mean(p <= ALPHA):.4f} {methods}")
    assert methods["chi-square"] < REPS / 10
    assert (p <= ALPHA).sum() <= max_rejections()


def test_categorical_calibration_under_h0_two_rare_categories() -> None:
    """A rare second category (exact permutation path), 15 probes, 9 vs 3."""
    rng = np.random.default_rng(17)
    rare = rng.uniform(0, 0.1, (REPS, 15))
    p, methods = _categorical_null(rng, np.stack([1 - rare, rare], axis=2), 9, 3)
    print(f"categorical (exact, k=2): null rejection rate {np.mean(p <= ALPHA):.4f} {methods}")
    assert methods["exact permutation"] > REPS * 0.8
    assert (p <= ALPHA).sum() <= max_rejections()


def test_categorical_power() -> None:
    rng = np.random.default_rng(10)
    reps, probes = 200, 100
    before = rng.dirichlet([2, 2, 2], (reps, probes))
    after = 0.7 * before + 0.3 * np.array([0.0, 0.0, 1.0])  # 30% of outputs move to "c"
    base, cur = rng.multinomial(3, before), rng.multinomial(3, after)
    p = [categorical_p_value(base[i], cur[i], resamples=200, seed=i)[0] for i in range(reps)]
    assert np.mean(np.array(p) <= ALPHA) >= 0.98


def test_numeric_calibration_under_h0() -> None:
    """Probes on very different scales, some deterministic, integer values (ties), 6|9 vs 3."""
    rng = np.random.default_rng(14)
    probes = 50
    p = np.empty(REPS)
    for i in range(REPS):
        n_b = rng.choice([6, 9], probes)
        sizes = np.r_[n_b, np.full(probes, 3)]
        stratum = np.tile(np.arange(probes), 2).repeat(sizes)
        loc = rng.lognormal(5, 1, probes)[stratum]
        sd = (rng.random(probes) > 0.2) * rng.uniform(0.2, 0.3, probes) * loc[:probes]
        values = np.round(rng.standard_t(4, len(stratum)) * sd[stratum] + loc)
        p[i] = van_elteren_p_value(values, stratum, np.arange(len(values)) >= n_b.sum())
    print(f"numeric: null rejection rate {np.mean(p <= ALPHA):.4f}")
    assert min_rejections() <= (p <= ALPHA).sum() <= max_rejections()


def test_numeric_power() -> None:
    rng = np.random.default_rng(15)
    probes, reps = 100, 200
    stratum = np.tile(np.arange(probes), 2).repeat(3)
    current = np.arange(len(stratum)) >= 3 * probes
    hits = 0
    for _ in range(reps):
        values = rng.normal(rng.normal(500, 100, probes)[stratum], 20) + current * 10
        hits += van_elteren_p_value(values, stratum, current) <= ALPHA
    assert hits / reps >= 0.98
