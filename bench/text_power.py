"""Power and calibration of the text drift test (monitor.drift.text.text_test) on synthetic
outputs that look like an LLM's at temperature > 0.

Generator, importable by other bench scripts (bench/calibration.py):

    world = text_world(probes: int, rng: np.random.Generator, *, divergence: float = 0.02,
                       median_chars: float = 300.0) -> TextWorld
    texts = quantized_texts(world, samples: int, rng: np.random.Generator,
                            change: TextChange = TextChange()) -> list[list[str]]
        # texts[probe] holds `samples` outputs of that probe
    TextChange(divergence: float = 1.0, reorder: float = 0.0, reword: float = 0.0,
               truncate: float = 0.0)

Each probe has a base answer of pseudo-words (length log-normal around median_chars, 20 to
3,000 characters; Zipf word frequencies, English-like word lengths and letters). A sample
follows the base word by word; at each position it diverges with that position's own
probability (mean `divergence`, gamma-distributed over positions: most words are near-certain,
a few are forks) and then takes one of the position's three alternatives by its preference
weights. Alternatives are drawn from the same vocabulary as the base words, so a sample's
expected length does not depend on how often it diverges.

A TextChange is the changed (e.g. quantized) model, the same for every call with the same world:
  divergence  factor on every position's divergence probability (quantization flattens the
              next-token distributions a little: more sampling noise);
  reorder     share of positions whose preferred alternative changes (the ranking among the
              runners-up moves);
  reword      share of base words replaced by another word of the same length: a model that
              phrases some things differently with exactly the same output lengths;
  truncate    share of the base answer's words dropped from its end: a pure length change,
              the same words, for comparison with the length test.
Pass rates are not modelled: none of these changes touches what the answer says.

Measured with text_test directly at 100 probes: the false-rejection rate at alpha = 0.01 under no
change, and power at alpha = 0.01 for samples per probe per side of 10, 5 and 3, in two regimes
of sampling noise; the existing length test (van Elteren on output characters) on the same data
shows what a length metric sees of the same changes. 95% Clopper-Pearson intervals. The table
goes to bench/results/text_power.txt.

    .venv/bin/python bench/text_power.py [--quick] [--sims N] [--null-sims N] [--workers N]

About 20 minutes on 2 cores (200 datasets per power cell, 1000 per no-change cell); --quick
(20 and 60): about 2 minutes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from monitor.drift.tests import numeric_test
from monitor.drift.text import text_test

REPO = Path(__file__).resolve().parent.parent
ALPHA = 0.01
PROBES = 100
SIZES = (10, 5, 3)  # samples per probe on each side
# Mean per-word divergence probability: "low temperature" (a sample differs from the base at
# about one word in 50) and "sampling" (one in 10, like temperature 0.7-1 on a chat model).
REGIMES = (("low temperature", 0.02), ("sampling", 0.10))
ALTERNATIVES = 3
FORK_SHAPE = 0.5  # gamma shape of the per-position divergence: small = a few forks carry most
VOCABULARY = 5000
# English letter frequencies (a-z, per cent), so chance agreement of misaligned text is realistic.
LETTER_FREQUENCIES = (
    8.2,
    1.5,
    2.8,
    4.3,
    12.7,
    2.2,
    2.0,
    6.1,
    7.0,
    0.15,
    0.77,
    4.0,
    2.4,
    6.7,
    7.5,
    1.9,
    0.095,
    6.0,
    6.3,
    9.1,
    2.8,
    0.98,
    2.4,
    0.15,
    2.0,
    0.074,
)


def _vocabulary() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pseudo-words (fixed: the same in every run), their lengths and Zipf frequencies."""
    rng = np.random.default_rng(20250413)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    freq = np.array(LETTER_FREQUENCIES) / sum(LETTER_FREQUENCIES)
    lengths = np.minimum(1 + rng.poisson(3.7, VOCABULARY), 14)  # mean ~4.7, as English
    words = np.array(["".join(rng.choice(letters, n, p=freq)) for n in lengths], dtype=object)
    zipf = 1.0 / np.arange(1, VOCABULARY + 1)
    return words, np.array([len(w) for w in words]), zipf / zipf.sum()


WORDS, WORD_LENGTHS, WORD_P = _vocabulary()


@dataclass(frozen=True)
class TextChange:
    divergence: float = 1.0  # factor on the per-position divergence probabilities
    reorder: float = 0.0  # share of positions whose preferred alternative changes
    reword: float = 0.0  # share of base words replaced by a same-length word
    truncate: float = 0.0  # share of the base answer's words dropped from its end


@dataclass(frozen=True)
class Probe:
    base: np.ndarray  # (W,) word ids of the base answer
    diverge: np.ndarray  # (W,) probability that a sample leaves the base word
    alternatives: np.ndarray  # (W, ALTERNATIVES) word ids
    cumulative: np.ndarray  # (W, ALTERNATIVES) cumulative preference weights


@dataclass(frozen=True)
class TextWorld:
    probes: tuple[Probe, ...]
    key: int  # seeds the changed model, so one world has one changed model


def text_world(
    probes: int,
    rng: np.random.Generator,
    *,
    divergence: float = 0.02,
    median_chars: float = 300.0,
) -> TextWorld:
    out = []
    for _ in range(probes):
        target = float(np.clip(rng.lognormal(np.log(median_chars), 0.8), 20, 3000))
        # Enough words for the target length (~5.7 characters a word with its space).
        count = max(3, int(target / 5.7))
        base = rng.choice(VOCABULARY, count, p=WORD_P)
        diverge = np.minimum(0.9, divergence * rng.gamma(FORK_SHAPE, 1 / FORK_SHAPE, count))
        alternatives = rng.choice(VOCABULARY, (count, ALTERNATIVES), p=WORD_P)
        weights = -np.sort(-rng.dirichlet(np.ones(ALTERNATIVES), count), axis=1)
        out.append(Probe(base, diverge, alternatives, np.cumsum(weights, axis=1)))
    return TextWorld(tuple(out), int(rng.integers(2**63)))


def _same_length_word(rng: np.random.Generator, word: int) -> int:
    candidates = np.flatnonzero(WORD_LENGTHS[word] == WORD_LENGTHS)
    candidates = candidates[candidates != word]
    return int(rng.choice(candidates)) if candidates.size else word


def _changed(world: TextWorld, change: TextChange) -> tuple[Probe, ...]:
    if change == TextChange():
        return world.probes
    rng = np.random.default_rng(world.key)
    out = []
    for probe in world.probes:
        count = len(probe.base)
        base = probe.base.copy()
        for i in np.flatnonzero(rng.random(count) < change.reword):
            base[i] = _same_length_word(rng, int(base[i]))
        weights = np.diff(probe.cumulative, prepend=0.0, axis=1)
        moved = rng.random(count) < change.reorder
        weights[moved] = np.roll(weights[moved], 1, axis=1)  # the runner-up now leads
        diverge = np.minimum(0.9, probe.diverge * change.divergence)
        keep = max(1, round(count * (1 - change.truncate)))
        out.append(
            Probe(
                base[:keep],
                diverge[:keep],
                probe.alternatives[:keep],
                np.cumsum(weights, axis=1)[:keep],
            )
        )
    return tuple(out)


def quantized_texts(
    world: TextWorld, samples: int, rng: np.random.Generator, change: TextChange = TextChange()
) -> list[list[str]]:
    """`samples` outputs of every probe, from the world's model changed by `change`."""
    texts = []
    for probe in _changed(world, change):
        count = len(probe.base)
        leave = rng.random((samples, count)) < probe.diverge
        pick = (rng.random((samples, count, 1)) > probe.cumulative[:, :-1]).sum(axis=2)
        ids = np.where(leave, probe.alternatives[np.arange(count), pick], probe.base)
        texts.append([" ".join(WORDS[row]) for row in ids])
    return texts


CHANGES = (
    ("no change", TextChange()),
    ("divergence x1.25", TextChange(divergence=1.25)),
    ("divergence x1.5", TextChange(divergence=1.5)),
    ("reorder 25% of positions", TextChange(reorder=0.25)),
    ("reword 5%, same lengths", TextChange(reword=0.05)),
    ("20% shorter, same words", TextChange(truncate=0.2)),
)


def length_p(base: list[list[str]], cur: list[list[str]]) -> float:
    """The existing length_chars test (van Elteren) on the same outputs."""
    lengths = [len(t) for side in (base, cur) for texts in side for t in texts]
    stratum = [h for side in (base, cur) for h, texts in enumerate(side) for _ in texts]
    current = np.arange(len(lengths)) >= sum(len(t) for t in base)
    return numeric_test(np.array(lengths, float), np.array(stratum), current).p_value


def simulate(task: tuple[float, int, TextChange, int]) -> tuple[float, ...]:
    """(text p, length p, effect, within-baseline similarity, mean baseline length, mean
    current length) of one dataset."""
    divergence, samples, change, seed = task
    rng = np.random.default_rng(seed)
    world = text_world(PROBES, rng, divergence=divergence)
    base = quantized_texts(world, samples, rng)
    cur = quantized_texts(world, samples, rng, change)
    result = text_test(base, cur)
    mean_b = float(np.mean([len(t) for texts in base for t in texts]))
    mean_c = float(np.mean([len(t) for texts in cur for t in texts]))
    similarity = float(result.baseline_value)
    return result.p_value, length_p(base, cur), result.effect, similarity, mean_b, mean_c


def seed_of(*key: int) -> int:
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0] >> 2)


def rate(hits: int, sims: int) -> str:
    ci = stats.binomtest(hits, sims).proportion_ci(method="exact")
    return f"{hits / sims:6.1%} [{ci.low:5.1%}, {ci.high:5.1%}]"


def table(pool: Any, sims: int, null_sims: int) -> list[str]:
    lines = [
        f"{'regime':>15} {'change':>24} {'per side':>8} {'sims':>5} "
        f"{'text test rejects':>23} {'length test rejects':>23} {'effect':>6} {'sim b':>5} "
        f"{'length c/b':>10}"
    ]
    for r, (regime, divergence) in enumerate(REGIMES):
        for c, (label, change) in enumerate(CHANGES):
            for samples in SIZES:
                count = null_sims if change == TextChange() else sims
                tasks = [
                    (divergence, samples, change, seed_of(r, c, samples, i)) for i in range(count)
                ]
                out = np.array(list(pool.map(simulate, tasks, chunksize=4)))
                text_hits = int((out[:, 0] <= ALPHA).sum())
                length_hits = int((out[:, 1] <= ALPHA).sum())
                line = (
                    f"{regime:>15} {label:>24} {samples:>8} {count:>5} "
                    f"{rate(text_hits, count):>23} {rate(length_hits, count):>23} "
                    f"{np.median(out[:, 2]):6.3f} {np.median(out[:, 3]):5.2f} "
                    f"{out[:, 5].mean() / out[:, 4].mean():10.3f}"
                )
                lines.append(line)
                print(line, file=sys.stderr, flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few simulations (a smoke run)")
    parser.add_argument("--sims", type=int, help="datasets per power cell (default 200)")
    parser.add_argument("--null-sims", type=int, help="datasets per no-change cell (default 1000)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/text_power.txt")
    args = parser.parse_args()
    sims = args.sims or (20 if args.quick else 200)
    null_sims = args.null_sims or (60 if args.quick else 1000)
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        rows = table(pool, sims, null_sims)
    regimes = ", ".join(f"{name}: mean per-word divergence {d}" for name, d in REGIMES)
    header = [
        f"text_test at alpha={ALPHA}, {PROBES} probes, baseline and current with the same samples "
        "per probe; rejects: share of datasets with p <= alpha, 95% Clopper-Pearson interval.",
        f"regimes ({regimes}); outputs: log-normal length around 300 characters; "
        f"{ALTERNATIVES} alternatives per word position.",
        "length test: van Elteren on output characters (the length_chars metric's test); "
        "effect: median text similarity drop;",
        "sim b: median within-baseline similarity (the test's baseline_value); "
        "length c/b: mean current / baseline output length.",
        "",
    ]
    footer = ["", f"{time.perf_counter() - start:.0f} s, {args.workers} workers"]
    text = "\n".join(header + rows + footer) + "\n"
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
