"""The statistical tests, each stratified by probe version (the stratum).

Why stratified: the probe set is fixed, so both windows hold the same probe versions. Probes
differ wildly (one always passes, another half the time) and the samples of one probe are not
independent draws from a common population: pooled tests (Fisher, chi-square, Mann-Whitney on
pooled data) take that heterogeneity for noise and lose most of their power, and counting the
samples of one probe as independent units inflates false alarms. Each test here compares
baseline with current samples *within* a probe version and sums the evidence over versions.

H0 for all three: within a probe version, baseline and current samples are exchangeable
(independent draws from one distribution, which may differ arbitrarily between versions); sample
counts per side may differ (3 runs x 3 samples vs 1 x 3). Not modelled: correlation among the
samples of one run (a shared backend state) would make every test liberal; persistence and
effect floors (decide.py) guard against it, backtests on recorded data measure it.

BINARY       exact conditional test: given stratum h's successes K_h, its current successes are
             Hypergeometric(N_h, K_h, n_c) under H0 whatever the probe's rate, so the null law
             of their sum is exact (the convolution of the strata pmfs). Two-sided p =
             min(1, 2 min(P(X <= x), P(X >= x))). With one sample per side it is the exact
             McNemar test; like McNemar it is conservative (discrete), never liberal.
CATEGORICAL  generalized Cochran-Mantel-Haenszel (general association) statistic; chi-square
             with rank(V) df (k - 1 unless categories are collinear; pseudo-inverse). When the
             Mantel-Fleiss criterion fails for a category (_small_counts), the stratified
             permutation p-value instead: exact by convolution for two categories, Monte Carlo
             for more.
NUMERIC      van Elteren's stratified Wilcoxon rank-sum: rank-based, so robust to the heavy
             tails of lengths and latencies; weights 1/(N_h + 1) are locally most powerful
             against a shift shared by all probes; the tie-corrected variance keeps it valid
             for deterministic (heavily tied) outputs; normal approximation of the sum.

scipy has no stratified exact binary test, no generalized CMH and no van Elteren test: they are
written here from their textbook definitions, on scipy's hypergeom, rankdata, jensenshannon and
wasserstein_distance. Tails use scipy.special.chdtrc / ndtr, the functions scipy.stats.chi2.sf /
norm.sf call, without ~60 us of argument handling (evaluate() runs ~10^6 times in calibration).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.fft import next_fast_len
from scipy.spatial.distance import jensenshannon
from scipy.special import chdtrc, ndtr
from scipy.stats import hypergeom, rankdata, wasserstein_distance

from monitor.drift.model import TestResult

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Seed = int | Sequence[int]  # anything numpy.random.default_rng takes

MANTEL_FLEISS_MIN = 5.0  # summed counts must lie this far from both ends of their range
# Besag-Clifford sequential Monte Carlo stops once this many resamples reach the statistic.
PERMUTATION_HITS = 20
# Least normalising scale, as a share of the median magnitude (see numeric_test).
RELATIVE_SCALE_FLOOR = 0.1
_SHAMOS = float(np.sqrt(2.0) * 0.6744897501960817)  # median |X - X'| / sigma for normal X
# FFT convolution is accurate to ~1e-14 absolute: smaller p-values are recomputed exactly.
FFT_TRUSTED = 1e-3
DIRECT_STRATA = 32  # up to this many informative strata, convolving directly is faster
_TIE = 1e-9  # relative tolerance: equal statistics computed along different paths stay equal


def hypergeom_sum(
    total: Ints, good: Ints, drawn: Ints, *, exact: bool = True
) -> tuple[Floats, int]:
    """pmf of a sum of independent Hypergeometric(total_h, good_h, drawn_h).

    Returns (pmf, offset): pmf[i] = P(sum = offset + i). Each stratum's pmf is trimmed to its
    support. exact=True convolves directly (numpy.convolve); exact=False multiplies FFTs (equal
    strata, common with equal sample counts, by powers), ~5x faster for 100 strata but only
    accurate to ~1e-14 absolute: callers recompute small tails exactly.
    """
    base = int(total.max()) + 1
    _, first, inverse, count = np.unique(
        (total * base + good) * base + drawn,
        return_index=True,
        return_inverse=True,
        return_counts=True,
    )
    lo = np.maximum(0, drawn - (total - good))
    width = np.minimum(good, drawn) - lo + 1
    t, g, d = total[first, None], good[first, None], drawn[first, None]
    pmf = hypergeom.pmf(lo[first, None] + np.arange(int(width.max())), t, g, d)
    if exact:
        dist = np.ones(1)
        for i in inverse.reshape(-1):
            dist = np.convolve(dist, pmf[i, : width[first[i]]])
        return dist, int(lo.sum())
    n = int((width - 1).sum()) + 1  # the full linear convolution: no wrap-around
    fast = next_fast_len(n, real=True)
    spectrum = np.fft.rfft(pmf, n=fast, axis=1)
    dist = np.fft.irfft((spectrum ** count[:, None]).prod(axis=0), n=fast)[:n]
    return np.clip(dist, 0.0, None), int(lo.sum())


def _paths(strata: int) -> tuple[bool, ...]:
    """exact= values to try in turn: direct convolution is the cheaper one for few strata."""
    return (True,) if strata <= DIRECT_STRATA else (False, True)


def binary_p_value(n_b: Ints, k_b: Ints, n_c: Ints, k_c: Ints) -> float:
    """Two-sided exact conditional p-value; arrays hold per-stratum sizes and successes."""
    total, good = n_b + n_c, k_b + k_c
    # A stratum whose results all agree is fixed given its margins: it carries no evidence.
    keep = (good > 0) & (good < total)
    if not keep.any():
        return 1.0
    p = 1.0
    for exact in _paths(int(keep.sum())):
        dist, offset = hypergeom_sum(total[keep], good[keep], n_c[keep], exact=exact)
        x = int(k_c[keep].sum()) - offset
        p = min(1.0, 2.0 * min(float(dist[: x + 1].sum()), float(dist[x:].sum())))
        if p >= FFT_TRUSTED:
            break
    return p


def binary_test(n_b: Ints, k_b: Ints, n_c: Ints, k_c: Ints) -> TestResult:
    """Stratified exact test; the effect weighs every probe version equally."""
    rate_b, rate_c = float(np.mean(k_b / n_b)), float(np.mean(k_c / n_c))
    mcnemar = bool((n_b == 1).all() and (n_c == 1).all())
    # TestResult fields in order: test, p, effect, effect name, values, counts, strata.
    return TestResult(
        "exact McNemar" if mcnemar else "stratified exact conditional",
        binary_p_value(n_b, k_b, n_c, k_c),
        rate_c - rate_b,
        "rate difference",
        rate_b,
        rate_c,
        int(n_b.sum()),
        int(n_c.sum()),
        len(n_b),
    )


def _small_counts(table: Ints, n_c: Ints, expected: Floats) -> bool:
    """Mantel-Fleiss (1980), per category against the rest: the summed expected current count
    must be >= 5 from both ends of the sum's range. Cruder "expected >= 5" rules are fooled by
    strata with one category, which add to expected counts but carry no information."""
    size = table.sum(axis=1, keepdims=True)
    lo = np.maximum(0, n_c[:, None] - (size - table)).sum(axis=0)
    hi = np.minimum(table, n_c[:, None]).sum(axis=0)
    total = expected.sum(axis=0)
    return bool(np.any(total - lo < MANTEL_FLEISS_MIN) or np.any(hi - total < MANTEL_FLEISS_MIN))


def _draw_totals(rng: np.random.Generator, table: Ints, n_c: Ints, size: int) -> Floats:
    """Current category totals after `size` random relabellings within every stratum: the
    multivariate hypergeometric, drawn one category at a time (k - 1 vectorised calls)."""
    out = np.empty((size, table.shape[1]))
    left_pop, left_n = table.sum(axis=1), np.broadcast_to(n_c, (size, len(n_c)))
    for j in range(table.shape[1] - 1):
        left_pop = left_pop - table[:, j]
        x = rng.hypergeometric(table[:, j], left_pop, left_n)
        out[:, j] = x.sum(axis=1)
        left_n = left_n - x
    out[:, -1] = left_n.sum(axis=1)
    return out


def _monte_carlo(
    table: Ints, n_c: Ints, centre: Floats, inv: Floats, q: float, resamples: int, seed: Seed
) -> float:
    """Stratified permutation p-value, sequential after Besag & Clifford (1991): (1 + hits) /
    (1 + B) over B resamples, but drawing stops at the h-th T* >= T, at draw L, with p = h / L:
    just as valid, and a null evaluation needs ~100 draws, not B. Batching changes nothing."""
    rng = np.random.default_rng(seed)
    drawn = hits = 0
    batch = 64
    while drawn < resamples:
        size = min(batch, resamples - drawn)
        d = _draw_totals(rng, table, n_c, size) - centre
        reach = np.einsum("bi,ij,bj->b", d, inv, d) >= q * (1 - _TIE)
        running = hits + np.cumsum(reach)
        if running[-1] >= PERMUTATION_HITS:
            return PERMUTATION_HITS / (drawn + int(np.argmax(running >= PERMUTATION_HITS)) + 1)
        hits, drawn, batch = int(running[-1]), drawn + size, batch * 2
    return (1 + hits) / (1 + resamples)


def categorical_p_value(
    base: Ints, cur: Ints, *, resamples: int, seed: Seed
) -> tuple[float, str, float]:
    """(p, method, statistic) of the generalized CMH test; tables are strata x categories."""
    table = base + cur
    informative = (table > 0).sum(axis=1) >= 2  # one-category strata: G and V get nothing
    table, cur = table[informative], cur[informative]
    table, cur = table[:, table.sum(axis=0) > 0], cur[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 1.0, "generalized CMH (no variation within probes)", 0.0
    size, n_c = table.sum(axis=1), cur.sum(axis=1)
    share = table / size[:, None]
    expected = n_c[:, None] * share
    g = (cur - expected).sum(axis=0)
    f = (size - n_c) * n_c / (size - 1)  # multivariate hypergeometric covariance factor
    cov = np.diag(f @ share) - (share * f[:, None]).T @ share
    val, vec = np.linalg.eigh(cov)
    pos = val > max(float(val.max()), 0.0) * 1e-10
    if not pos.any():
        return 1.0, "generalized CMH (no variation within probes)", 0.0
    inv = (vec[:, pos] / val[pos]) @ vec[:, pos].T  # pseudo-inverse: V is singular by design
    q, df = float(g @ inv @ g), int(pos.sum())
    if not _small_counts(table, n_c, expected):
        return float(chdtrc(df, q)), f"generalized CMH (chi-square, {df} df)", q
    if table.shape[1] == 2:
        # Q is monotone in |S - E[S]| for two categories: the permutation distribution of S is
        # the exact hypergeometric convolution, no sampling needed.
        centre = float(expected[:, 0].sum())
        for exact in _paths(len(size)):
            dist, offset = hypergeom_sum(size, table[:, 0], n_c, exact=exact)
            far = np.abs(offset + np.arange(len(dist)) - centre)
            p = min(1.0, float(dist[far >= abs(cur[:, 0].sum() - centre) * (1 - _TIE)].sum()))
            if p >= FFT_TRUSTED:
                break
        return p, "generalized CMH (exact permutation, small counts)", q
    p = _monte_carlo(table, n_c, expected.sum(axis=0), inv, q, resamples, seed)
    return p, f"generalized CMH (permutation, B={resamples}, small counts)", q


def categorical_test(
    base: Ints, cur: Ints, categories: list[str], *, resamples: int, seed: Seed
) -> TestResult:
    """CMH p-value; effect = Jensen-Shannon distance (base 2) between the pooled distributions,
    each probe version weighing 1 on both sides: a probe that lost samples to errors in one
    window must not shift the pooled mix and fake an effect."""
    p, method, _ = categorical_p_value(base, cur, resamples=resamples, seed=seed)
    dist_b = (base / base.sum(axis=1, keepdims=True)).mean(axis=0)
    dist_c = (cur / cur.sum(axis=1, keepdims=True)).mean(axis=0)
    values_b = dict(zip(categories, dist_b.tolist(), strict=True))
    values_c = dict(zip(categories, dist_c.tolist(), strict=True))
    effect = float(jensenshannon(dist_b, dist_c, base=2))
    return TestResult(
        method,
        p,
        effect,
        "Jensen-Shannon distance",
        values_b,
        values_c,
        int(base.sum()),
        int(cur.sum()),
        len(base),
    )


def van_elteren_p_value(values: Floats, stratum: Ints, current: NDArray[np.bool_]) -> float:
    """Two-sided p of van Elteren's test; stratum codes are 0..H-1, values finite."""
    strata = int(stratum.max()) + 1
    size = np.bincount(stratum, minlength=strata)
    n_c = np.bincount(stratum[current], minlength=strata)
    # Ranks within strata from one global ranking of (stratum, value): tied values share a
    # code, so rankdata averages exactly the ties inside a stratum; then shift each stratum
    # down by the observations of the strata before it.
    _, tie = np.unique(values, return_inverse=True)
    key = stratum * (int(tie.max()) + 1) + tie.reshape(-1)
    rank = rankdata(key) - (np.cumsum(size) - size)[stratum]
    dev = rank - (size[stratum] + 1) / 2  # centred: W_h - E[W_h] sums it over current
    w = np.bincount(stratum[current], weights=dev[current], minlength=strata)
    # Var of a sum of n_c ranks drawn without replacement; the ranks' own spread carries the
    # tie correction, so no tie counting is needed.
    spread = np.bincount(stratum, weights=dev * dev, minlength=strata)
    var = (size - n_c) * n_c / (size * (size - 1.0)) * spread
    weight = 1.0 / (size + 1.0)
    total_var = float((weight * weight * var).sum())
    if total_var <= 0:  # every stratum is one tied value: nothing can differ
        return 1.0
    return float(2.0 * ndtr(-abs(float((weight * w).sum())) / np.sqrt(total_var)))


def _median(x: Floats, w: Floats | None) -> float:
    """Median, each value weighing w (None: equally)."""
    if w is None:
        return float(np.median(x))
    order = np.argsort(x, kind="stable")
    cum = np.cumsum(w[order])
    return float(x[order][np.searchsorted(cum, 0.5 * cum[-1])])


def numeric_scale(values: Floats, stratum: Ints) -> float:
    """Robust within-probe spread of baseline values, floored (see numeric_test)."""
    if np.any(stratum[1:] < stratum[:-1]):
        order = np.argsort(stratum, kind="stable")
        stratum, values = stratum[order], values[order]
    diffs = np.abs(np.diff(values))[stratum[1:] == stratum[:-1]]
    spread = float(np.median(diffs)) / _SHAMOS if diffs.size else 0.0
    scale = max(spread, RELATIVE_SCALE_FLOOR * float(np.median(np.abs(values))))
    return scale if scale > 0 else 1.0


def typical_shift(values: Floats, stratum: Ints, current: NDArray[np.bool_]) -> float:
    """Median over strata of (median current - median baseline) within the stratum."""
    strata = int(stratum.max()) + 1
    medians = []
    for side in (~current, current):
        v, h = values[side], stratum[side]
        order = np.lexsort((v, h))  # by stratum, then value
        v = v[order]
        n = np.bincount(h, minlength=strata)
        start = np.cumsum(n) - n
        medians.append((v[start + (n - 1) // 2] + v[start + n // 2]) / 2.0)
    return float(np.median(medians[1] - medians[0]))


def numeric_test(
    values: Floats, stratum: Ints, current: NDArray[np.bool_], *, counts: bool = False
) -> TestResult:
    """van Elteren p-value; effect = normalised Wasserstein distance; values = medians.

    Wasserstein distance between the pooled sides, each probe version weighing 1 on each side
    (so a probe that lost samples to errors does not shift the mix), divided by a scale: the
    median absolute difference between successive baseline samples of one probe version over
    sqrt(2) x 0.6745, i.e. the within-probe SD for normal noise, robust to a runaway output or
    two; at least RELATIVE_SCALE_FLOOR x the median |baseline value|, so deterministic outputs
    don't divide by ~0; 1 (the metric's unit) if both are 0. Medians weigh probes alike too.
    counts: the values are counts (tokens, characters); the result then carries the typical
    per-probe shift, which decide.py requires to exceed one unit.
    """
    strata = int(stratum.max()) + 1
    size = np.bincount(stratum, minlength=strata)
    n_c = np.bincount(stratum[current], minlength=strata)
    n_b = size - n_c
    base, cur = ~current, current
    # Equal sample counts per probe weigh probes equally already; scipy is faster unweighted.
    w_b = None if n_b.min() == n_b.max() else 1.0 / n_b[stratum[base]]
    w_c = None if n_c.min() == n_c.max() else 1.0 / n_c[stratum[cur]]
    distance = wasserstein_distance(values[base], values[cur], w_b, w_c)
    scale = numeric_scale(values[base], stratum[base])
    return TestResult(
        "van Elteren (stratified Wilcoxon)",
        van_elteren_p_value(values, stratum, current),
        float(distance) / scale,
        "normalised Wasserstein",
        _median(values[base], w_b),
        _median(values[cur], w_c),
        int(n_b.sum()),
        int(n_c.sum()),
        strata,
        typical_shift(values, stratum, current) if counts else None,
    )
