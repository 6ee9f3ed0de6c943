"""The stratified tests against known values (calibration: test_drift_calibration.py).

Each hand-rolled test reduces to a scipy test in its special case (one sample per probe:
McNemar = binomtest; one stratum: CMH = Pearson x (N-1)/N, van Elteren = Mann-Whitney) and is
checked against brute-force enumeration or an independent textbook implementation written here.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from fractions import Fraction

import numpy as np
import pytest
from scipy.spatial.distance import jensenshannon
from scipy.stats import binomtest, chi2, chi2_contingency, hypergeom, mannwhitneyu, norm, rankdata

from monitor.drift.tests import (
    binary_p_value,
    binary_test,
    categorical_p_value,
    categorical_test,
    hypergeom_sum,
    numeric_scale,
    numeric_test,
    typical_shift,
    van_elteren_p_value,
)


def ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_one_sample_per_probe_is_exact_mcnemar() -> None:
    rng = np.random.default_rng(1)
    for _ in range(400):
        probes = int(rng.integers(1, 120))
        base = rng.random(probes) < rng.random()
        flip = rng.random(probes) < rng.random() * 0.5
        cur = np.where(flip, ~base, base) if rng.random() < 0.5 else rng.random(probes) < 0.5
        b = int((base & ~cur).sum())  # discordant: pass -> fail
        c = int((~base & cur).sum())  # discordant: fail -> pass
        expected = binomtest(c, b + c, 0.5).pvalue if b + c else 1.0
        one = np.ones(probes, dtype=np.int64)
        got = binary_p_value(one, base.astype(np.int64), one, cur.astype(np.int64))
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-300)


def test_mcnemar_tiny_p_values_are_computed_exactly() -> None:
    # 70 discordant probes all one way: p = 2 / 2^70, far below the FFT's accuracy.
    one = np.ones(200, dtype=np.int64)
    base = np.r_[np.ones(70), np.zeros(130)].astype(np.int64)
    cur = np.zeros(200, dtype=np.int64)
    assert binary_p_value(one, base, one, cur) == pytest.approx(2 * 0.5**70, rel=1e-9)


def brute_force_p(strata: list[tuple[list[int], list[int]]]) -> float:
    """Every relabelling of the pooled results of each stratum, counted exactly."""
    per_stratum = [
        Counter(sum(pick) for pick in itertools.combinations(base + cur, len(cur)))
        for base, cur in strata
    ]
    total: Counter[int] = Counter()
    for combo in itertools.product(*(s.items() for s in per_stratum)):
        total[sum(k for k, _ in combo)] += math.prod(n for _, n in combo)
    size = sum(total.values())
    x = sum(sum(cur) for _, cur in strata)
    lower = Fraction(sum(n for k, n in total.items() if k <= x), size)
    upper = Fraction(sum(n for k, n in total.items() if k >= x), size)
    return float(min(Fraction(1), 2 * min(lower, upper)))


def test_stratified_exact_matches_brute_force_enumeration() -> None:
    rng = np.random.default_rng(2)
    for _ in range(150):
        strata = []
        for _ in range(int(rng.integers(1, 5))):
            n_b, n_c = int(rng.integers(1, 5)), int(rng.integers(1, 4))
            outcomes = (rng.random(n_b + n_c) < rng.random()).astype(int).tolist()
            strata.append((outcomes[:n_b], outcomes[n_b:]))
        n_b, k_b = ints(*(len(b) for b, _ in strata)), ints(*(sum(b) for b, _ in strata))
        n_c, k_c = ints(*(len(c) for _, c in strata)), ints(*(sum(c) for _, c in strata))
        assert binary_p_value(n_b, k_b, n_c, k_c) == pytest.approx(brute_force_p(strata), rel=1e-9)


def test_hypergeom_sum_fft_agrees_with_direct_convolution_and_scipy() -> None:
    rng = np.random.default_rng(3)
    total = rng.integers(2, 15, 80)
    good = rng.integers(1, total)
    drawn = rng.integers(1, total)
    exact, offset = hypergeom_sum(total, good, drawn)
    fast, offset2 = hypergeom_sum(total, good, drawn, exact=False)
    assert offset == offset2 and len(exact) == len(fast)
    assert np.abs(exact - fast).max() < 1e-12
    assert exact.sum() == pytest.approx(1.0, abs=1e-12)
    one, off1 = hypergeom_sum(total[:1], good[:1], drawn[:1])
    support = np.arange(off1, off1 + len(one))
    np.testing.assert_allclose(one, hypergeom.pmf(support, total[0], good[0], drawn[0]), rtol=1e-12)


def test_binary_effect_weighs_probes_equally() -> None:
    # Probe 1: 9 baseline results, rate 1 -> 0; probe 2: 3 results, rate 0 -> 0.
    r = binary_test(ints(9, 3), ints(9, 0), ints(3, 3), ints(0, 0))
    assert r.effect == pytest.approx(-0.5) and r.baseline_value == pytest.approx(0.5)
    assert (r.baseline_n, r.current_n, r.strata) == (12, 6, 2)


def test_cmh_one_stratum_is_pearson_times_n_minus_1_over_n() -> None:
    rng = np.random.default_rng(6)
    for _ in range(100):
        k = int(rng.integers(2, 6))
        table = rng.integers(8, 60, (2, k))
        n = table.sum()
        pearson = chi2_contingency(table, correction=False).statistic
        p, method, q = categorical_p_value(table[:1], table[1:], resamples=100, seed=0)
        assert q == pytest.approx(pearson * (n - 1) / n, rel=1e-9)
        assert "chi-square" in method
        assert p == pytest.approx(chi2.sf(q, k - 1), rel=1e-9)


def test_cmh_two_categories_is_the_mantel_haenszel_statistic() -> None:
    """Against the textbook 2x2xH formula, written out independently."""
    rng = np.random.default_rng(7)
    base = rng.integers(0, 12, (30, 2))
    cur = rng.integers(0, 6, (30, 2))
    base[:, 0] += 1
    cur[:, 1] += 1
    a, n1, n2 = cur[:, 0], cur.sum(1), base.sum(1)
    m1 = base[:, 0] + cur[:, 0]
    m2 = (base + cur).sum(1) - m1
    n = n1 + n2
    expected = n1 * m1 / n
    var = n1 * n2 * m1 * m2 / (n**2 * (n - 1))
    mh = (a - expected).sum() ** 2 / var.sum()
    _, _, q = categorical_p_value(base, cur, resamples=100, seed=0)
    assert q == pytest.approx(mh, rel=1e-9)


def cmh_reference(base: np.ndarray, cur: np.ndarray) -> tuple[float, np.ndarray]:
    """Textbook generalized CMH: (Q, pseudo-inverse of V), stratum by stratum."""
    g = np.zeros(base.shape[1])
    v = np.zeros((base.shape[1], base.shape[1]))
    for b, c in zip(base, cur, strict=True):
        m, n, nc = b + c, (b + c).sum(), c.sum()
        if n < 2:
            continue
        g += c - nc * m / n
        v += (n - nc) * nc / (n**2 * (n - 1)) * (n * np.diag(m) - np.outer(m, m))
    inv = np.linalg.pinv(v)
    return float(g @ inv @ g), inv


def test_cmh_matches_the_textbook_statistic_for_many_categories() -> None:
    rng = np.random.default_rng(8)
    for _ in range(50):
        k = int(rng.integers(3, 6))
        base = rng.integers(0, 8, (int(rng.integers(1, 20)), k))
        cur = rng.integers(0, 4, base.shape)
        cur[:, 0] += 1
        base[:, 1] += 1
        _, _, q = categorical_p_value(base, cur, resamples=100, seed=0)
        assert q == pytest.approx(cmh_reference(base, cur)[0], rel=1e-8, abs=1e-10)


def brute_permutation_p(base: np.ndarray, cur: np.ndarray) -> float:
    """Exact permutation p of the CMH statistic, over every within-stratum relabelling.

    Margins are fixed by relabelling, so Q depends only on the current totals: the exact
    distribution of those totals is a convolution of per-stratum counts of relabellings."""
    q, inv = cmh_reference(base, cur)
    centre = sum(c.sum() * (b + c) / (b + c).sum() for b, c in zip(base, cur, strict=True))
    totals: Counter[tuple[int, ...]] = Counter({(0,) * base.shape[1]: 1})
    for b, c in zip(base, cur, strict=True):
        labels = np.repeat(np.arange(len(b)), b + c)
        picks = Counter(
            tuple(np.bincount(labels[list(pick)], minlength=len(b)))
            for pick in itertools.combinations(range(len(labels)), c.sum())
        )
        step: Counter[tuple[int, ...]] = Counter()
        for (t, n), (d, m) in itertools.product(totals.items(), picks.items()):
            step[tuple(np.add(t, d))] += n * m
        totals = step
    hits = sum(
        n for t, n in totals.items() if (g := np.subtract(t, centre)) @ inv @ g >= q * (1 - 1e-9)
    )
    return hits / sum(totals.values())


def test_small_counts_two_categories_use_the_exact_permutation_distribution() -> None:
    rng = np.random.default_rng(16)
    compared = 0
    for _ in range(40):
        base = rng.integers(0, 3, (4, 2))
        cur = rng.integers(0, 2, (4, 2))
        base[:, 0] += 1
        cur[:, 1] += 1
        p, method, _ = categorical_p_value(base, cur, resamples=100, seed=0)
        if "chi-square" not in method:
            assert "exact permutation" in method
            assert p == pytest.approx(brute_permutation_p(base, cur), rel=1e-9)
            compared += 1
    assert compared >= 20


def test_small_counts_more_categories_use_monte_carlo_permutations() -> None:
    base = np.array([[3, 0, 1], [2, 1, 0], [1, 1, 1], [2, 0, 1], [3, 1, 0]])
    cur = np.array([[0, 2, 0], [0, 1, 1], [0, 2, 0], [1, 1, 0], [0, 1, 1]])
    exact = brute_permutation_p(base, cur)
    p, method, _ = categorical_p_value(base, cur, resamples=5000, seed=3)
    assert "permutation" in method and 0.001 < exact < 0.2
    # Sequential stopping after 20 hits: p = 20 / L, relative SE ~ 1 / sqrt(20).
    assert p == pytest.approx(exact, rel=4 / math.sqrt(20))
    again, _, _ = categorical_p_value(base, cur, resamples=5000, seed=3)
    assert again == p  # seeded: same data, same p
    # Nothing reaches the statistic of an extreme table: p = (1 + 0) / (1 + B), never 0.
    extreme_b = np.array([[4, 0, 0]] * 5 + [[3, 1, 0]])
    extreme_c = np.array([[0, 0, 2]] * 6)
    p, method, _ = categorical_p_value(extreme_b, extreme_c, resamples=100, seed=3)
    assert "permutation" in method and p == 1 / 101


def test_js_effect_pools_probes_with_equal_weight() -> None:
    base = np.array([[6, 0], [0, 2]])  # probe 1 all "a" (6 samples), probe 2 all "b" (2)
    cur = np.array([[0, 3], [0, 3]])
    r = categorical_test(base, cur, ["a", "b"], resamples=100, seed=0)
    assert r.baseline_value == {"a": 0.5, "b": 0.5}
    assert r.current_value == {"a": 0.0, "b": 1.0}
    assert r.effect == pytest.approx(jensenshannon([0.5, 0.5], [0.0, 1.0], base=2))
    disjoint = categorical_test(
        np.array([[4, 0]]), np.array([[0, 4]]), ["a", "b"], resamples=100, seed=0
    )
    assert disjoint.effect == pytest.approx(1.0)


def test_van_elteren_one_stratum_is_mann_whitney() -> None:
    rng = np.random.default_rng(11)
    for _ in range(200):
        x = rng.integers(0, int(rng.integers(2, 30)), int(rng.integers(1, 30))).astype(float)
        y = rng.integers(0, int(rng.integers(2, 30)), int(rng.integers(1, 30))).astype(float)
        values = np.r_[x, y]
        if np.ptp(values) == 0:
            continue
        current = np.r_[np.zeros(len(x), bool), np.ones(len(y), bool)]
        expected = mannwhitneyu(x, y, method="asymptotic", use_continuity=False).pvalue
        got = van_elteren_p_value(values, np.zeros(len(values), np.int64), current)
        assert got == pytest.approx(expected, rel=1e-9)


def textbook_van_elteren(values: np.ndarray, stratum: np.ndarray, current: np.ndarray) -> float:
    """Per-stratum rankdata and the explicit tie correction sum(t^3 - t)."""
    t = v = 0.0
    for h in np.unique(stratum):
        x, c = values[stratum == h], current[stratum == h]
        n, nc = len(x), int(c.sum())
        nb = n - nc
        w = rankdata(x)[c].sum()
        _, ties = np.unique(x, return_counts=True)
        var = nb * nc * (n + 1) / 12 - nb * nc * (ties**3 - ties).sum() / (12 * n * (n - 1))
        t += (w - nc * (n + 1) / 2) / (n + 1)
        v += var / (n + 1) ** 2
    return float(2 * norm.sf(abs(t) / math.sqrt(v)))


def test_van_elteren_matches_the_textbook_formula_with_ties() -> None:
    rng = np.random.default_rng(12)
    for _ in range(50):
        probes = int(rng.integers(2, 30))
        sizes = rng.integers(2, 12, probes)
        stratum = np.repeat(np.arange(probes), sizes)
        values = np.round(rng.normal(stratum * 3.0, 2.0)).astype(float)
        current = np.zeros(len(values), bool)
        for h in range(probes):  # at least one observation on each side
            idx = np.flatnonzero(stratum == h)
            current[rng.choice(idx[1:], int(rng.integers(1, len(idx))), replace=False)] = True
        order = rng.permutation(len(values))  # any input order
        expected = textbook_van_elteren(values, stratum, current)
        got = van_elteren_p_value(values[order], stratum[order], current[order])
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-14)


def test_numeric_effect_is_normalised_and_safe_for_deterministic_outputs() -> None:
    stratum = np.repeat(np.arange(10), 4)
    current = np.tile([False, False, False, True], 10)
    noisy = np.random.default_rng(13).normal(100, 5, 40) + current * 5
    r = numeric_test(noisy, stratum, current)
    assert 0.3 < r.effect < 2.0  # a one-SD shift, in within-probe SD units
    flat = np.full(40, 200.0) + current * 2.0  # deterministic: +1% length
    r = numeric_test(flat, stratum, current)
    assert r.effect == pytest.approx(2.0 / (0.1 * 200.0))  # floor: 10% of the median
    assert r.baseline_value == 200.0 and r.current_value == 202.0
    zeros = numeric_test(np.zeros(40) + current * 3.0, stratum, current)
    assert zeros.effect == pytest.approx(3.0)  # no scale at all: the metric's own unit
    assert numeric_scale(np.r_[np.zeros(30), 1e6], np.repeat(np.arange(31), 1)) == 1.0


def test_typical_shift_is_the_median_over_probes_of_the_shift_of_their_medians() -> None:
    # Probe 0: median 2 -> 5 (+3); probe 1: 15 -> 12 (-3); probe 2: 0 -> 1 (+1). Median: +1.
    values = np.array([1, 2, 3, 5, 10, 20, 11, 13, 0, 0, 0, 1, 1], dtype=float)
    stratum = ints(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2)
    current = np.array([0, 0, 0, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1], dtype=bool)
    assert typical_shift(values, stratum, current) == 1.0
    rng = np.random.default_rng(14)
    stratum = rng.permutation(np.repeat(np.arange(25), 7))  # unsorted, as the layout allows
    current = rng.random(stratum.size) < 0.4
    # Every probe on both sides: its first value in the baseline, its last in the current.
    current[np.unique(stratum, return_index=True)[1]] = False
    current[stratum.size - 1 - np.unique(stratum[::-1], return_index=True)[1]] = True
    values = rng.integers(0, 50, stratum.size).astype(float)
    by_probe = [
        np.median(values[(stratum == h) & current]) - np.median(values[(stratum == h) & ~current])
        for h in range(25)
    ]
    assert typical_shift(values, stratum, current) == pytest.approx(np.median(by_probe))


def test_numeric_test_reports_the_shift_for_counts_only() -> None:
    stratum = np.repeat(np.arange(10), 4)
    current = np.tile([False, False, False, True], 10)
    chars = np.full(40, 6.0) + current * 1.0  # one character more on every probe
    counted = numeric_test(chars, stratum, current, counts=True)
    assert counted.shift == 1.0 and counted.effect > 1.0  # a large effect of one unit
    assert numeric_test(chars, stratum, current).shift is None
