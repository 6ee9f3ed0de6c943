"""The pure evaluation: baseline + current observations -> Evaluation.

No I/O, no global state: the same input gives the same Evaluation (the one Monte Carlo p-value,
CMH with small counts, draws from a generator seeded by config.seed and the metric's name, so
metrics don't share one random stream). It runs after every scheduled run and up to 10^6 times
in calibration, so it turns each metric into flat numpy arrays once and lets numpy do the rest.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import replace
from itertools import chain
from typing import Any

import numpy as np
from numpy.typing import NDArray

from monitor.drift.decide import Untested, decide, insufficiency, paired
from monitor.drift.metrics import Groups, build_metrics, group_by_version, pair_versions
from monitor.drift.model import (
    Carry,
    Dispersion,
    Evaluation,
    MetricData,
    MetricKind,
    Observation,
    TestResult,
)
from monitor.drift.runs import MIN_RUNS, corrected, inflation, run_dispersion
from monitor.drift.settings import DriftConfig
from monitor.drift.tests import binary_test, categorical_test, numeric_test

LENGTHS = ("length_chars", "length_tokens")
# Baseline outputs per probe version the text test compares: its kernel costs O(n^2) per probe
# version, and a 24-run baseline at 3 samples would hold 72. Ten already give the test most of
# its power (bench/text_power.py); they are spread evenly over the baseline's outputs.
TEXT_BASELINE_OUTPUTS = 10


def evaluate(
    baseline: Sequence[Observation],
    current: Sequence[Observation],
    config: DriftConfig,
    *,
    previous: Mapping[str, Carry] | None = None,
    dispersion: Mapping[str, Dispersion] | None = None,
    baseline_cache: dict[Any, Any] | None = None,
) -> Evaluation:
    """Compare the current window with the baseline, paired by probe version.

    previous: metric name -> Carry of the previous evaluation against the same baseline
    (Verdict.carry); verdicts carry the new state. dispersion: the baseline's run-to-run
    variation per metric (baseline_dispersion); it depends on the baseline alone, so a caller
    evaluating many windows against one baseline may compute it once. baseline_cache: a dict
    kept for one baseline by a caller that compares many windows with it (see build_metrics);
    it must not be shared between baselines.
    """
    b: Groups | None = baseline_cache.get("groups") if baseline_cache is not None else None
    if b is None:
        b = group_by_version(baseline)
        if baseline_cache is not None:
            baseline_cache["groups"] = b
    c = group_by_version(current)
    versions, excluded = pair_versions(b, c)
    if dispersion is None:
        dispersion = baseline_dispersion(baseline, versions, config)
    tested: list[tuple[MetricData, TestResult | Untested]] = []
    factors: dict[str, float] = {}
    for metric in build_metrics(b, c, versions, baseline_cache):
        sizes = paired(metric)
        why = insufficiency(metric, sizes, config)
        if why is not None:
            tested.append((metric, why))
            continue
        result = run_test(metric, config, sizes.versions)
        if (found := dispersion.get(metric.name)) is not None:
            factors[metric.name] = inflation(found)
            result = replace(result, p_value=corrected(result.p_value, found))
        tested.append((metric, result))
    notes: list[str] = []
    only_b, only_c = len(b.keys() - c.keys()), len(c.keys() - b.keys())
    if excluded:
        notes.append(
            f"{excluded} probe version{'s' if excluded != 1 else ''} excluded (changed since the "
            f"baseline: {only_b} only in the baseline, {only_c} only in the current window)"
        )
    if not versions:
        notes.append("no probe version is in both windows: nothing to compare")
    elif not dispersion:
        notes.append(
            f"run-to-run variation not estimated: the baseline has fewer than {MIN_RUNS} runs; "
            "the tests assume runs differ only by sampling"
        )
    return Evaluation(
        verdicts=decide(tested, config, previous, factors),
        paired_probes=len(versions),
        excluded_probes=excluded,
        notes=tuple(notes),
        dispersion=dict(dispersion),
    )


def baseline_dispersion(
    baseline: Sequence[Observation], versions: Sequence[int], config: DriftConfig
) -> dict[str, Dispersion]:
    """run_dispersion with this module's tests: phi per metric over `versions`."""
    return run_dispersion(baseline, versions, config, lambda m, vs: run_test(m, config, vs))


def run_test(metric: MetricData, config: DriftConfig, both: Sequence[int]) -> TestResult:
    """The metric's test over `both`: probe versions with data on both sides (at least one)."""
    base = [metric.baseline[pv] for pv in both]
    cur = [metric.current[pv] for pv in both]
    if metric.kind is MetricKind.BINARY:
        n_b, k_b = _counts(base)
        n_c, k_c = _counts(cur)
        return binary_test(n_b, k_b, n_c, k_c)
    if metric.kind is MetricKind.CATEGORICAL:
        categories = sorted({v for vs in chain(base, cur) for v in vs})
        code = {v: i for i, v in enumerate(categories)}
        seed = [config.seed, zlib.crc32(metric.name.encode())]
        return categorical_test(
            _table(base, code),
            _table(cur, code),
            categories,
            resamples=config.permutations,
            seed=seed,
        )
    if metric.kind is MetricKind.TEXT:
        from monitor.drift.text import text_test  # loaded only for metrics that need it

        picked = [spread_pick(vs, TEXT_BASELINE_OUTPUTS) for vs in base]
        return text_test(picked, cur, seed=config.seed)
    lengths = np.array([len(vs) for vs in chain(base, cur)])
    values = np.fromiter(chain.from_iterable(chain(base, cur)), float, int(lengths.sum()))
    stratum = np.tile(np.arange(len(both)), 2).repeat(lengths)
    is_current = np.arange(len(values)) >= int(lengths[: len(both)].sum())
    # Lengths count tokens or characters: one unit is their resolution (a tokenizer detail, a
    # trailing newline). A tracked field's unit may be a whole rating step: no such rule there.
    return numeric_test(values, stratum, is_current, counts=metric.name in LENGTHS)


def spread_pick(values: list[str], most: int) -> list[str]:
    """At most `most` of the values, evenly spaced, the same ones every time."""
    if len(values) <= most:
        return values
    step = len(values) / most
    return [values[int(i * step)] for i in range(most)]


def _counts(side: list[list[bool]]) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    n = np.array([len(vs) for vs in side], dtype=np.int64)
    k = np.array([sum(vs) for vs in side], dtype=np.int64)
    return n, k


def _table(side: list[list[str]], code: dict[str, int]) -> NDArray[np.int64]:
    flat = np.array([code[v] for vs in side for v in vs], dtype=np.int64)
    row = np.arange(len(side)).repeat([len(vs) for vs in side])
    return np.bincount(row * len(code) + flat, minlength=len(side) * len(code)).reshape(
        len(side), len(code)
    )
