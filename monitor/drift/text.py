"""Drift in the output text itself: a stratified kernel two-sample test on the strings.

Why: a quantized or swapped model can keep every pass rate, format and length and still answer
differently. Gao, Liang & Guestrin ("Model Equality Testing", ICLR 2025) catch such changes with
the MMD between output distributions under a Hamming string kernel, at ~10 samples per prompt.

Kernel: the mean of two normalised Hamming kernels, over characters and over words (runs of
letters and digits, or single punctuation marks). For each, the outputs of one probe version
are cut to TEXT_MAX_CHARS characters, split into units and padded to L, the longest unit count
among them, with a sentinel that equals only itself; k(x, y) = (positions i with x_i == y_i) /
L. Each is a sum of indicator kernels (one per position), hence positive semi-definite, and
k(x, x) = 1; so is their mean. Why both: a word of another length puts every later character
out of line, so the character kernel reads a sampled alternative word as a large difference
and a shifted tail as noise, while the word kernel keeps the rest of the answer aligned; the
character kernel in turn sees changes inside words. bench/text_power.py measures them. L depends
on the pooled strings of the stratum only, never on which side a string came from, so the
kernel is the same under every relabelling and the permutation null below is exact.

Test kernel: exp(-(1 - k) / s) of each of the two kernels above, averaged, with s the median of
1 - k over the distinct pairs of the stratum's pooled strings (the median heuristic of Gretton et
al., "A Kernel Two-Sample Test", JMLR 2012); if most pairs are identical, the mean of the
non-zero distances. Why: the MMD of a Hamming kernel is the sum over positions of the squared
change of that position's word (or character) distribution, so a model that strays from its
usual wording a little more often everywhere spreads its signal thin over hundreds of positions.
The exponential is a product over positions, so it also sees how far a whole answer is from the
others: in bench/text_power.py, at one varying word in 50 and 10 samples, power against such a
change goes from 50% to 85% at the same false-rejection rate. It is positive semi-definite (the
exponential of a PSD kernel) with a unit diagonal, and s depends on the pooled strings only, so
the permutation null stays exact.

Statistic: T = sum over strata (probe versions) of the biased MMD^2 (V-statistic) a^T K a, with
a = 1/n_b on the baseline strings and -1/n_c on the current ones. T is an MRPP statistic
(Mielke): up to a constant it is N/(n_b n_c) x (sum of within-side similarities / side size).

H0, as for the other drift tests: within a probe version, baseline and current outputs are
exchangeable. p-value: the permutation distribution of T (labels permuted within strata) is
approximated by a Pearson type III curve with its first three cumulants, as Mielke does for
MRPP. Per stratum the cumulants are exact when all C(n, n_c) labellings can be enumerated
(ENUMERATION_LIMIT), else estimated (k-statistics) from RANDOM_ASSIGNMENTS random labellings of
a seeded generator, so the same data always gives the same p; strata are independent, so their
cumulants add. A stratum whose T cannot vary (identical outputs, or one string per side) adds
nothing; if none varies, p = 1. One-sided: only large T (outputs less alike across sides than
within) is evidence of drift.

Effect, "text similarity drop": per stratum, the mean similarity between distinct baseline
outputs minus the mean similarity between baseline and current outputs (with one baseline
output the first term is k(x, x) = 1), averaged over strata: 0 = current outputs resemble the
baseline as much as baseline outputs resemble each other; 1 = nothing in common.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.stats import kstat, moment, pearson3

from monitor.drift.model import TestResult

Floats = NDArray[np.float64]

# Characters of each output compared: the kernel costs O(n^2 L) per probe version, and the
# start of an answer carries most of what differs between models (Gao et al. compare prefixes).
TEXT_MAX_CHARS = 1000
# Labellings per stratum: enumerated up to this many, else this many drawn at random. 2000
# random draws estimate a stratum's variance to ~5% (T_h is skewed, heavy-tailed); summed over
# ~100 strata the errors average out.
ENUMERATION_LIMIT = 2000
RANDOM_ASSIGNMENTS = 2000
# Not a code point (those stop at 0x10FFFF): padding matches padding and nothing else.
_SENTINEL = np.uint32(0xFFFFFFFF)
# A range of T_h over labellings below this share of its scale (1/n_b + 1/n_c) is rounding, not
# variation: the smallest real one, one character of 1000 in one of 40 strings, is ~1e-5 of it.
_NO_SPREAD = 1e-9
# Floats held at once by the outer products of labellings: ~16 MB.
_CHUNK_FLOATS = 1 << 21


def _codes(strings: Sequence[str], max_chars: int) -> NDArray[np.uint32]:
    """(n, L) code points, cut to max_chars and padded with the sentinel; L >= 1, so empty
    outputs are equal to each other and unequal to any non-empty one."""
    cut = [s[:max_chars] for s in strings]
    # One encoding for all strings: len() counts code points, one UTF-32 unit each (a lone
    # surrogate, possible after JSON decoding, too: surrogatepass).
    flat = np.frombuffer("".join(cut).encode("utf-32-le", "surrogatepass"), np.uint32)
    lengths = np.fromiter(map(len, cut), np.intp, len(cut))
    codes = np.full((len(cut), max(1, int(lengths.max(initial=0)))), _SENTINEL, np.uint32)
    codes[np.arange(codes.shape[1]) < lengths[:, None]] = flat  # row-major: string by string
    return codes


def text_kernel(strings: Sequence[str], max_chars: int = TEXT_MAX_CHARS) -> Floats:
    """Gram matrix of the text similarity (module docstring): the mean of the character and the
    word Hamming kernels. The effect is measured in it."""
    return (character_kernel(strings, max_chars) + word_kernel(strings, max_chars)) / 2.0


def statistic_kernel(strings: Sequence[str], max_chars: int = TEXT_MAX_CHARS) -> Floats:
    """Gram matrix of the kernel the test statistic uses (module docstring): the mean of the
    exponentiated character and word Hamming kernels."""
    return _kernels(strings, max_chars)[1]


def _kernels(strings: Sequence[str], max_chars: int) -> tuple[Floats, Floats]:
    """(text similarity, test kernel) of one stratum's strings, each Hamming kernel computed
    once."""
    characters, words = character_kernel(strings, max_chars), word_kernel(strings, max_chars)
    return (characters + words) / 2.0, (exponentiated(characters) + exponentiated(words)) / 2.0


def exponentiated(similarity: Floats) -> Floats:
    """exp(-(1 - k) / s) for a Gram matrix k with unit diagonal; s: the median of 1 - k over
    distinct pairs, or the mean of its non-zero values when most pairs are identical (the
    kernel is then one on identical strings and e^-1 at a typical distance either way)."""
    distance = 1.0 - similarity
    pairs = distance[np.triu_indices(len(distance), 1)]
    scale = float(np.median(pairs)) if pairs.size else 0.0
    if scale <= 0.0:
        positive = pairs[pairs > 0.0]
        scale = float(positive.mean()) if positive.size else 1.0  # all equal: any s will do
    result: Floats = np.exp(-distance / scale)
    return result


_WORD = re.compile(r"\w+|[^\w\s]")


def word_kernel(strings: Sequence[str], max_chars: int = TEXT_MAX_CHARS) -> Floats:
    """Gram matrix of the normalised word Hamming kernel: words (runs of letters and digits)
    and punctuation marks of the outputs cut to max_chars, compared position by position."""
    vocabulary: dict[str, int] = {}
    rows = [
        [vocabulary.setdefault(w, len(vocabulary)) for w in _WORD.findall(s[:max_chars])]
        for s in strings
    ]
    codes = np.full((len(rows), max(1, max(map(len, rows), default=0))), _SENTINEL, np.uint32)
    for i, row in enumerate(rows):
        codes[i, : len(row)] = row
    return _hamming(codes)


def _hamming(codes: NDArray[np.uint32]) -> Floats:
    """Share of positions where two padded rows agree, for every pair of rows."""
    same: NDArray[np.intp] = np.count_nonzero(codes[:, None, :] == codes[None, :, :], axis=-1)
    return same / float(codes.shape[1])


def character_kernel(strings: Sequence[str], max_chars: int = TEXT_MAX_CHARS) -> Floats:
    """Gram matrix of the normalised character Hamming kernel for one probe version's outputs.
    Strings are cut to max_chars and padded to L = the longest (cut) length among them with a
    sentinel that matches only itself; k(x, y) = (positions where x_i == y_i) / L. PSD (a sum of
    indicator kernels), k(x, x) = 1."""
    return _hamming(_codes(strings, max_chars))


def _enumerated(grams: Floats, n_b: int) -> Floats:
    """T_h for every labelling: (strata, C(n, n_c)).

    With z the indicator of the smaller side (size g, the other o) and c = 1/g + 1/o,
    a = 1/o - c z up to sign, so T = S/o^2 - (2c/o) z.r + c^2 z'Kz (S: sum of K, r: its row
    sums), and z'Kz is a sum over the g(g-1)/2 pairs of the chosen strings: a gather, no matrix
    product (small matrix products are slow under multithreaded BLAS on a busy machine).
    """
    n = grams.shape[1]
    g = min(n_b, n - n_b)
    o = n - g
    c = 1.0 / g + 1.0 / o
    chosen = np.array(list(itertools.combinations(range(n), g)), dtype=np.intp)
    rows = grams.sum(axis=2)
    linear = rows[:, chosen].sum(axis=2)
    first, second = np.triu_indices(g, 1)
    quadratic = np.diagonal(grams, axis1=1, axis2=2)[:, chosen].sum(axis=2) + 2.0 * grams[
        :, chosen[:, first], chosen[:, second]
    ].sum(axis=2)
    values: Floats = rows.sum(axis=1)[:, None] / o**2 - (2.0 * c / o) * linear + c * c * quadratic
    return values


def _sampled(grams: Floats, n_b: int, rng: np.random.Generator) -> Floats:
    """T_h for RANDOM_ASSIGNMENTS random labellings: (strata, RANDOM_ASSIGNMENTS).

    One set of labellings serves every stratum, each applied to the stratum's strings in its own
    random order: drawing per stratum would take longer than all the rest, and without the
    reordering the strata's sampling errors would line up (a drifted stratum's outputs all sit
    at the same places).
    """
    strata, n, _ = grams.shape
    current = rng.permuted(np.broadcast_to(np.arange(n) >= n_b, (RANDOM_ASSIGNMENTS, n)), axis=1)
    a = np.where(current, -1.0 / (n - n_b), 1.0 / n_b)
    order = rng.permuted(np.broadcast_to(np.arange(n), (strata, n)), axis=1)
    grams = np.take_along_axis(
        np.take_along_axis(grams, order[:, :, None], 1), order[:, None, :], 2
    )
    # T = vec(a a') . vec(K): one matrix product for all strata and labellings, ~6x faster than
    # a K per stratum; the outer products are built a chunk of labellings at a time.
    flat = grams.reshape(strata, n * n)
    chunk = max(1, _CHUNK_FLOATS // (n * n))
    return np.concatenate(
        [
            flat @ (rows[:, :, None] * rows[:, None, :]).reshape(len(rows), n * n).T
            for rows in (a[i : i + chunk] for i in range(0, len(a), chunk))
        ],
        axis=1,
    )


def mmd_cumulants(
    grams: Floats, n_b: int, rng: np.random.Generator
) -> tuple[Floats, Floats, Floats, Floats]:
    """Observed T_h and the first three cumulants of its permutation distribution (mean,
    variance, third central moment) for strata of one shape: grams is (strata, n, n), the
    first n_b strings of each stratum are the baseline, the rest the current outputs."""
    strata, n, _ = grams.shape
    n_c = n - n_b
    observed = np.where(np.arange(n) < n_b, 1.0 / n_b, -1.0 / n_c)
    statistic = np.einsum("i,hij,j->h", observed, grams, observed)
    exact = math.comb(n, n_c) <= ENUMERATION_LIMIT
    values = _enumerated(grams, n_b) if exact else _sampled(grams, n_b, rng)
    mean = values.mean(axis=1)
    # Strata that cannot vary (identical outputs, one per side) get exactly 0: their rounding
    # noise must not add to the variance, nor set off scipy's cancellation warning.
    varies = np.ptp(values, axis=1) > _NO_SPREAD * (1.0 / n_b + 1.0 / n_c)
    variance, third = np.zeros(strata), np.zeros(strata)
    if varies.any():
        if exact:  # the whole permutation distribution: population moments
            variance[varies] = values[varies].var(axis=1)
            third[varies] = moment(values[varies], order=3, axis=1)
        else:  # a sample of it: unbiased estimates of the cumulants (k-statistics)
            variance[varies] = kstat(values[varies], 2, axis=1)
            third[varies] = kstat(values[varies], 3, axis=1)
    return statistic, mean, variance, third


def _similarities(grams: Floats, n_b: int) -> tuple[Floats, Floats]:
    """Per stratum: mean similarity between distinct baseline outputs (1 with one of them),
    and between baseline and current outputs."""
    if n_b > 1:
        base = grams[:, :n_b, :n_b]
        within = (base.sum(axis=(1, 2)) - np.trace(base, axis1=1, axis2=2)) / (n_b * (n_b - 1))
    else:
        within = np.ones(len(grams))
    return within, grams[:, :n_b, n_b:].mean(axis=(1, 2))


def text_test(
    base: Sequence[Sequence[str]],
    cur: Sequence[Sequence[str]],
    *,
    max_chars: int = TEXT_MAX_CHARS,
    seed: int = 0,
) -> TestResult:
    """base[h], cur[h]: the outputs of stratum h (a probe version) on each side; every stratum has
    >= 1 string on each side. seed: of the random labellings of strata too large to enumerate."""
    if len(base) != len(cur) or not base:
        raise ValueError("text_test needs the same strata, at least one, on both sides")
    if any(not b or not c for b, c in zip(base, cur, strict=True)):
        raise ValueError("every stratum needs at least one output on each side")
    by_shape: dict[tuple[int, int], list[tuple[Floats, Floats]]] = {}
    for b, c in zip(base, cur, strict=True):
        by_shape.setdefault((len(b), len(c)), []).append(_kernels([*b, *c], max_chars))
    rng = np.random.default_rng(seed)
    deviation = variance = third = 0.0
    within_sum = between_sum = 0.0
    for (n_b, _), kernels in sorted(by_shape.items()):
        similarities = np.stack([similarity for similarity, _ in kernels])
        grams = np.stack([gram for _, gram in kernels])
        statistic, mean, var, skew_moment = mmd_cumulants(grams, n_b, rng)
        varies = var > 0
        deviation += float((statistic - mean)[varies].sum())
        variance += float(var.sum())
        third += float(skew_moment.sum())
        within, between = _similarities(similarities, n_b)
        within_sum += float(within.sum())
        between_sum += float(between.sum())
    if variance > 0:
        z = deviation / math.sqrt(variance)
        p = min(1.0, max(0.0, float(pearson3.sf(z, third / variance**1.5))))
    else:  # no stratum can vary: every labelling gives the observed T
        p = 1.0
    strata = len(base)
    within_mean, between_mean = within_sum / strata, between_sum / strata
    return TestResult(
        test="stratified MMD (exponentiated character and word Hamming kernels)",
        p_value=p,
        effect=within_mean - between_mean,
        effect_name="text similarity drop",
        baseline_value=within_mean,
        current_value=between_mean,
        baseline_n=sum(len(b) for b in base),
        current_n=sum(len(c) for c in cur),
        strata=strata,
    )
