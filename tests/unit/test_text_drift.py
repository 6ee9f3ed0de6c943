"""The text drift test (monitor/drift/text.py): kernel and p-values against hand-computed values
and brute-force permutation, null calibration, power against a swapped model, determinism."""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np
import pytest
from scipy.stats import binomtest, kstest, moment, pearson3

from monitor.drift.text import (
    ENUMERATION_LIMIT,
    character_kernel,
    exponentiated,
    mmd_cumulants,
    statistic_kernel,
    text_kernel,
    text_test,
    word_kernel,
)

LETTERS = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz     ", np.uint8)  # spaces ~ word breaks


def noisy_copies(rng: np.random.Generator, base: np.ndarray, n: int, rate: float) -> list[str]:
    """n samples of one probe: the base text with a share `rate` of characters redrawn and, half
    the time, one character dropped (which shifts the rest, as a longer or shorter word does)."""
    texts = np.tile(base, (n, 1))
    redrawn = rng.random(texts.shape) < rate
    texts[redrawn] = rng.choice(LETTERS, int(redrawn.sum()))
    dropped = np.where(rng.random(n) < 0.5, rng.integers(len(base), size=n), len(base))
    return [
        (text[:k].tobytes() + text[k + 1 :].tobytes()).decode()
        for text, k in zip(texts, dropped, strict=True)
    ]


def null_data(
    rng: np.random.Generator, strata: int, shapes: Sequence[tuple[int, int]], rate: float = 0.05
) -> tuple[list[list[str]], list[list[str]]]:
    """No change: both sides of a stratum are samples of one probe (exchangeable)."""
    base, cur = [], []
    for _ in range(strata):
        n_b, n_c = shapes[int(rng.integers(len(shapes)))]
        texts = noisy_copies(rng, rng.choice(LETTERS, int(rng.integers(20, 300))), n_b + n_c, rate)
        base.append(texts[:n_b])
        cur.append(texts[n_b:])
    return base, cur


def all_labellings(gram: np.ndarray, n_b: int) -> np.ndarray:
    """T_h = a^T K a for every choice of the current positions, one at a time."""
    n = len(gram)
    values = []
    for chosen in itertools.combinations(range(n), n - n_b):
        a = np.full(n, 1.0 / n_b)
        a[list(chosen)] = -1.0 / (n - n_b)
        values.append(a @ gram @ a)
    return np.array(values)


def brute_force_cumulants(base: list[list[str]], cur: list[list[str]]) -> tuple[float, ...]:
    """(T, mean, variance, third central moment) of the joint permutation distribution, from
    every combination of every stratum's labellings."""
    per_stratum = [
        all_labellings(statistic_kernel([*b, *c]), len(b)) for b, c in zip(base, cur, strict=True)
    ]
    observed = 0.0
    for b, c in zip(base, cur, strict=True):
        a = np.r_[np.full(len(b), 1.0 / len(b)), np.full(len(c), -1.0 / len(c))]
        observed += a @ statistic_kernel([*b, *c]) @ a
    joint = np.array([sum(t) for t in itertools.product(*per_stratum)])
    return observed, joint.mean(), joint.var(), float(moment(joint, order=3))


def test_kernel_known_values() -> None:
    # L = 3; "ab" is padded with the sentinel, which matches no character.
    gram = character_kernel(["abc", "abd", "ab", "xbc"])
    thirds = [[3, 2, 2, 2], [2, 3, 2, 1], [2, 2, 3, 1], [2, 1, 1, 3]]
    assert gram.tolist() == [[float(Fraction(v, 3)) for v in row] for row in thirds]
    # Padding matches padding: two short strings agree beyond their ends.
    assert character_kernel(["a", "a", "abc"]).tolist() == [
        [1.0, 1.0, 1 / 3],
        [1.0, 1.0, 1 / 3],
        [1 / 3, 1 / 3, 1.0],
    ]
    # Characters, not bytes: "é" and "😀" are one position each (as UTF-8, 2 and 4 bytes).
    assert character_kernel(["é😀x", "é😀y"])[0, 1] == pytest.approx(2 / 3)
    # Cut to max_chars before comparing.
    assert character_kernel(["abX", "abY"], max_chars=2)[0, 1] == 1.0
    assert character_kernel(["abX", "abYZ"])[0, 1] == 0.5
    assert character_kernel(["", ""]).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    assert character_kernel(["", "a"])[0, 1] == 0.0
    # A lone surrogate (possible after JSON decoding) is a character like any other.
    assert character_kernel(["a\ud800", "a\ud800"])[0, 1] == 1.0
    # Words: runs of letters and digits, and single punctuation marks; a longer word does not
    # shift the ones after it. "the cat sat." is 4 units; "the big cat sat." 5.
    words = word_kernel(["the cat sat.", "the dog sat.", "the big cat sat.", "the cat sat."])
    # L = 5 for the whole group: the, sat, "." and the padding agree; cat/dog differ.
    assert words[0, 1] == pytest.approx(4 / 5)
    assert words[0, 2] == pytest.approx(1 / 5)  # padded to 5: only "the" in line
    assert words[0, 3] == 1.0 and words[0, 0] == 1.0
    assert word_kernel(["aa bb", "aaX bb"])[0, 1] == 0.5  # the longer word costs its own place
    # Characters: the extra "X" shifts " bb" by one; only "aa" and one "b" stay in line.
    assert character_kernel(["aa bb", "aaX bb"])[0, 1] == pytest.approx(3 / 6)
    assert word_kernel(["", ""]).tolist() == [[1.0, 1.0], [1.0, 1.0]]
    # The text kernel is their mean.
    strings = ["the cat sat.", "the dog sat.", "a", ""]
    assert text_kernel(strings) == pytest.approx(
        (character_kernel(strings) + word_kernel(strings)) / 2
    )


def test_exponentiated_kernel_known_values() -> None:
    # Distances 1 - k over the 3 distinct pairs: 0.2, 0.4, 0.6; median s = 0.4.
    similarity = np.array([[1.0, 0.8, 0.6], [0.8, 1.0, 0.4], [0.6, 0.4, 1.0]])
    expected = np.exp(-np.array([[0.0, 0.2, 0.4], [0.2, 0.0, 0.6], [0.4, 0.6, 0.0]]) / 0.4)
    assert exponentiated(similarity) == pytest.approx(expected)
    # Most pairs identical (median distance 0): s = the mean of the non-zero distances.
    # Four equal strings and one at distance 0.4 from them: 6 of 10 pairs at 0.
    similarity = np.ones((5, 5))
    similarity[4, :4] = similarity[:4, 4] = 0.6
    assert exponentiated(similarity)[0, 1] == 1.0
    assert exponentiated(similarity)[0, 4] == pytest.approx(math.exp(-1.0))
    # All identical: all ones.
    assert exponentiated(np.ones((3, 3))).tolist() == np.ones((3, 3)).tolist()
    # The statistic's kernel is the mean of the two exponentiated Hamming kernels.
    strings = ["the cat sat.", "the dog sat.", "a", ""]
    assert statistic_kernel(strings) == pytest.approx(
        (exponentiated(character_kernel(strings)) + exponentiated(word_kernel(strings))) / 2
    )


@pytest.mark.parametrize("kernel", [text_kernel, statistic_kernel])
def test_kernel_is_positive_semi_definite_with_unit_diagonal(kernel: object) -> None:
    assert callable(kernel)
    rng = np.random.default_rng(5)
    for _ in range(20):
        strings = [
            rng.choice(LETTERS[:3], int(rng.integers(0, 40))).tobytes().decode() for _ in range(15)
        ]
        gram = kernel(strings)
        assert np.allclose(gram, gram.T)
        assert np.all(np.diag(gram) == 1.0)
        assert np.linalg.eigvalsh(gram).min() > -1e-12


def test_hand_computed_p_values() -> None:
    # Labellings of {aa, aa, bb, bb} with two current: T = 2 for the two that keep the pairs
    # together, 0 for the other four. Mean 2/3, variance 8/9, third moment 16/27: z = sqrt(2),
    # skewness 1/sqrt(2).
    result = text_test([["aa", "aa"]], [["bb", "bb"]])
    assert result.p_value == pytest.approx(float(pearson3.sf(math.sqrt(2), 1 / math.sqrt(2))))
    assert (result.effect, result.baseline_value, result.current_value) == (1.0, 1.0, 0.0)
    # The strings of test_kernel_known_values: the character kernel averaged with the word
    # kernel, which is the identity here (each string is one word). The p-value's cumulants
    # come from enumerating all labellings (brute_force_cumulants). Within baseline
    # k(abc, abd) = (2/3 + 0) / 2 = 1/3; across sides (2 + 2 + 2 + 1) / 12 / 2 = 7/24.
    result = text_test([["abc", "abd"]], [["ab", "xbc"]])
    observed, mean, variance, third = brute_force_cumulants([["abc", "abd"]], [["ab", "xbc"]])
    expected = float(pearson3.sf((observed - mean) / math.sqrt(variance), third / variance**1.5))
    assert result.p_value == pytest.approx(expected)
    assert result.baseline_value == pytest.approx(1 / 3)
    assert result.current_value == pytest.approx(7 / 24)
    assert result.effect == pytest.approx(1 / 24)
    assert result.test == "stratified MMD (exponentiated character and word Hamming kernels)"
    assert result.effect_name == "text similarity drop"
    assert (result.baseline_n, result.current_n, result.strata) == (2, 2, 1)


def test_exact_enumeration_matches_brute_force() -> None:
    rng = np.random.default_rng(11)
    shapes = [(2, 2), (3, 1), (2, 3), (1, 3), (4, 2)]
    for _ in range(5):
        base, cur = null_data(rng, len(shapes), shapes, rate=0.2)
        observed, mean, variance, third = brute_force_cumulants(base, cur)
        z = (observed - mean) / math.sqrt(variance)
        expected = float(pearson3.sf(z, third / variance**1.5))
        assert text_test(base, cur).p_value == pytest.approx(expected, rel=1e-9)
        # The per-stratum cumulants add up to the joint distribution's (strata independent).
        parts = [
            mmd_cumulants(statistic_kernel([*b, *c])[None], len(b), rng)
            for b, c in zip(base, cur, strict=True)
        ]
        summed = [sum(float(part[i][0]) for part in parts) for i in range(4)]
        assert summed == pytest.approx([observed, mean, variance, third], rel=1e-9, abs=1e-15)


def test_sampled_cumulants_estimate_the_exact_ones() -> None:
    # 7 + 7 strings: C(14, 7) = 3432 labellings, more than are enumerated.
    assert math.comb(14, 7) > ENUMERATION_LIMIT
    rng = np.random.default_rng(2)
    base, cur = null_data(rng, 8, [(7, 7)], rate=0.1)
    grams = np.stack([statistic_kernel([*b, *c]) for b, c in zip(base, cur, strict=True)])
    exact = [all_labellings(g, 7) for g in grams]
    _, mean, variance, third = mmd_cumulants(grams, 7, np.random.default_rng(0))
    # 2000 draws per stratum: ~5% error on one stratum's variance, more on its third moment.
    assert mean.sum() == pytest.approx(sum(v.mean() for v in exact), rel=0.02)
    assert variance.sum() == pytest.approx(sum(v.var() for v in exact), rel=0.1)
    assert third.sum() == pytest.approx(sum(moment(v, order=3) for v in exact), rel=0.25)


def brute_force_monte_carlo_p(
    base: list[list[str]], cur: list[list[str]], resamples: int, rng: np.random.Generator
) -> float:
    """Permutation p-value from random relabellings within every stratum."""
    observed, total = 0.0, np.zeros(resamples)
    for b, c in zip(base, cur, strict=True):
        gram = statistic_kernel([*b, *c])
        a = np.r_[np.full(len(b), 1.0 / len(b)), np.full(len(c), -1.0 / len(c))]
        observed += a @ gram @ a
        relabelled = rng.permuted(np.broadcast_to(a, (resamples, len(a))), axis=1)
        total += np.einsum("ri,ij,rj->r", relabelled, gram, relabelled)
    return (1 + int((total >= observed - 1e-12).sum())) / (1 + resamples)


def test_pearson_approximation_is_not_liberal_against_monte_carlo() -> None:
    rng = np.random.default_rng(3)
    resamples, compared = 4000, 0
    for _ in range(12):
        base, cur = [], []
        for _ in range(20):  # a small change: the current side is a little noisier
            text = rng.choice(LETTERS, int(rng.integers(30, 120)))
            base.append(noisy_copies(rng, text, 4, 0.10))
            cur.append(noisy_copies(rng, text, 4, 0.13))
        p = text_test(base, cur).p_value
        reference = brute_force_monte_carlo_p(base, cur, resamples, rng)
        if not 0.01 <= reference <= 0.5:
            continue
        compared += 1
        error = math.sqrt(reference * (1 - reference) / resamples)
        assert p >= reference - 3 * error, (p, reference)
        assert p == pytest.approx(reference, rel=0.25)
    assert compared >= 5, compared


@pytest.mark.parametrize(
    "shapes",
    [[(5, 5)], [(9, 3)], [(3, 3), (1, 2), (2, 4), (6, 2)], [(8, 8), (10, 4)]],
    ids=["5+5", "9+3", "small mixed", "sampled"],
)
def test_null_p_values_are_calibrated(shapes: list[tuple[int, int]]) -> None:
    rng = np.random.default_rng(len(shapes) * 100 + shapes[0][0])
    sims, strata = (80, 12) if shapes[0] == (8, 8) else (300, 15)
    p = np.array([text_test(*null_data(rng, strata, shapes)).p_value for _ in range(sims)])
    assert kstest(p, "uniform").pvalue > 0.001
    for alpha in (0.05, 0.01):
        rejections = int((p <= alpha).sum())
        # Not above nominal by more than Monte Carlo error (one-sided, at 0.001).
        assert binomtest(rejections, sims, alpha, alternative="greater").pvalue > 0.001


def test_identical_outputs_give_p_one() -> None:
    base = [["The answer is 42."] * 3, ["ok"] * 2]
    cur = [["The answer is 42."] * 3, ["ok"]]
    result = text_test(base, cur)
    assert result.p_value == 1.0
    assert (result.effect, result.baseline_value, result.current_value) == (0.0, 1.0, 1.0)
    # One output per side: swapping the labels changes nothing, so nothing can be tested.
    assert text_test([["yes"], ["a"]], [["no"], ["b"]]).p_value == 1.0
    # Deterministic strata add nothing; the varying ones are still tested.
    rng = np.random.default_rng(4)
    noisy_base, noisy_cur = null_data(rng, 15, [(4, 4)])
    alone = text_test(noisy_base, noisy_cur).p_value
    assert text_test(noisy_base + base, noisy_cur + cur).p_value == pytest.approx(alone)


def test_a_swapped_model_is_detected() -> None:
    rng = np.random.default_rng(8)
    base, cur = [], []
    for _ in range(30):
        length = int(rng.integers(50, 300))
        # Same lengths and letters, different text: no length test could see it.
        base.append(noisy_copies(rng, rng.choice(LETTERS, length), 5, 0.05))
        cur.append(noisy_copies(rng, rng.choice(LETTERS, length), 5, 0.05))
    result = text_test(base, cur)
    assert result.p_value < 1e-6
    # One "word" per output: the word kernel sees noisy copies as different words, so the
    # within-baseline similarity is about half the character kernel's ~0.9.
    assert result.effect > 0.3
    assert result.current_value < 0.2 < 0.4 < result.baseline_value


def test_same_input_same_p_value() -> None:
    rng = np.random.default_rng(9)
    base, cur = null_data(rng, 20, [(10, 10), (9, 3)])  # 10 + 10 is sampled, 9 + 3 enumerated
    first = text_test(base, cur)
    assert text_test(base, cur) == first
    other = text_test(base, cur, seed=1).p_value
    assert other != first.p_value  # the seed does reach the sampled strata...
    assert other == pytest.approx(first.p_value, rel=0.2, abs=0.02)  # ...and matters little


def test_rejects_missing_outputs() -> None:
    with pytest.raises(ValueError):
        text_test([["a"], []], [["b"], ["c"]])
    with pytest.raises(ValueError):
        text_test([["a"]], [["b"], ["c"]])
    with pytest.raises(ValueError):
        text_test([], [])
