"""text_distribution through evaluate(): the metric, its floor and the alarm rule."""

from __future__ import annotations

import numpy as np

from monitor.drift.evaluate import evaluate
from monitor.drift.model import Observation, State
from monitor.drift.settings import DriftConfig

WORDS = ["the", "answer", "is", "yes", "no", "maybe", "because", "it", "rains", "today"]


def outputs(probe: int, rng: np.random.Generator, stray: float, n: int) -> list[str]:
    """n samples of one probe's answer: its usual words, each replaced with probability
    `stray` by another word (sampling at temperature > 0)."""
    usual = [WORDS[(probe * 7 + i * 3) % len(WORDS)] for i in range(12)]
    out = []
    for _ in range(n):
        words = [rng.choice(WORDS) if rng.random() < stray else w for w in usual]
        out.append(" ".join(words))
    return out


def window(
    probes: int, runs: range, samples: int, rng: np.random.Generator, stray: float
) -> list[Observation]:
    return [
        Observation(probe, "pass", format_kind="text", output=text, run_id=run)
        for run in runs
        for probe in range(probes)
        for text in outputs(probe, rng, stray, samples)
    ]


def text_verdict(baseline: list[Observation], current: list[Observation]) -> object:
    config = DriftConfig(baseline_runs=4)
    result = evaluate(baseline, current, config)
    return next(v for v in result.verdicts if v.metric == "text_distribution")


def test_a_model_that_words_things_differently_drifts_on_text_alone() -> None:
    rng = np.random.default_rng(3)
    baseline = window(40, range(4), 3, rng, stray=0.05)
    same = text_verdict(baseline, window(40, range(4, 5), 3, rng, stray=0.05))
    changed = text_verdict(baseline, window(40, range(5, 6), 3, rng, stray=0.4))
    assert same.state is State.NOT_SIGNIFICANT
    assert changed.state is State.DRIFTED
    assert changed.effect > DriftConfig().min_text_change
    assert changed.test == "stratified MMD (exponentiated character and word Hamming kernels)"


def test_identical_outputs_leave_the_text_metric_out_of_the_count() -> None:
    rng = np.random.default_rng(4)
    baseline = window(20, range(3), 2, rng, stray=0.0)
    verdict = text_verdict(baseline, window(20, range(3, 4), 2, rng, stray=0.0))
    assert verdict.p_value == 1.0
    assert verdict.threshold is None  # fixed: no evidence, no share of the alarm budget
    assert verdict.note is not None and "no variation" in verdict.note
