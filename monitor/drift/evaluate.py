"""The pure evaluation: baseline + current observations -> Evaluation.

No I/O, no global state: the same input gives the same Evaluation (the one Monte Carlo p-value,
CMH with small counts, draws from a generator seeded by config.seed and the metric's name, so
metrics don't share one random stream). It runs after every scheduled run and up to 10^6 times
in calibration, so it turns each metric into flat numpy arrays once and lets numpy do the rest.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from itertools import chain

import numpy as np
from numpy.typing import NDArray

from monitor.drift.decide import Untested, decide, insufficiency, paired
from monitor.drift.metrics import build_metrics, group_by_version, pair_versions
from monitor.drift.model import Evaluation, MetricData, MetricKind, Observation, TestResult
from monitor.drift.settings import DriftConfig
from monitor.drift.tests import binary_test, categorical_test, numeric_test


def evaluate(
    baseline: Sequence[Observation],
    current: Sequence[Observation],
    config: DriftConfig,
    *,
    previous_streaks: Mapping[str, int] | None = None,
) -> Evaluation:
    """Compare the current window with the baseline, paired by probe version.

    previous_streaks: metric name -> streak of the previous evaluation against the same
    baseline (Verdict.streak); verdicts carry the new streak.
    """
    b, c = group_by_version(baseline), group_by_version(current)
    versions, excluded = pair_versions(b, c)
    tested: list[tuple[MetricData, TestResult | Untested]] = []
    for metric in build_metrics(b, c, versions):
        sizes = paired(metric)
        why = insufficiency(metric, sizes, config)
        tested.append((metric, why or run_test(metric, config, sizes.versions)))
    notes: list[str] = []
    only_b, only_c = len(b.keys() - c.keys()), len(c.keys() - b.keys())
    if excluded:
        notes.append(
            f"{excluded} probe version{'s' if excluded != 1 else ''} excluded (changed since the "
            f"baseline: {only_b} only in the baseline, {only_c} only in the current window)"
        )
    if not versions:
        notes.append("no probe version is in both windows: nothing to compare")
    return Evaluation(
        verdicts=decide(tested, config, previous_streaks),
        paired_probes=len(versions),
        excluded_probes=excluded,
        notes=tuple(notes),
    )


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
    lengths = np.array([len(vs) for vs in chain(base, cur)])
    values = np.fromiter(chain.from_iterable(chain(base, cur)), float, int(lengths.sum()))
    stratum = np.tile(np.arange(len(both)), 2).repeat(lengths)
    is_current = np.arange(len(values)) >= int(lengths[: len(both)].sum())
    return numeric_test(values, stratum, is_current)


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
