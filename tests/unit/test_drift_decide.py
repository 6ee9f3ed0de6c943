"""Verdicts: minimum sizes, Benjamini-Hochberg per family, effect floors, persistence; and the
whole evaluate() on simulated windows (determinism, notes, speed)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from monitor.drift.decide import Untested, decide, insufficiency, paired
from monitor.drift.evaluate import evaluate
from monitor.drift.model import (
    Family,
    MetricData,
    MetricKind,
    Observation,
    State,
    Verdict,
)
from monitor.drift.model import (
    TestResult as Result,  # not Test*: pytest would try to collect it
)
from monitor.drift.settings import DriftConfig

CONFIG = DriftConfig(alpha=0.05, persistence=2, min_probes=10, min_samples=20)


def metric(name: str, kind: MetricKind = MetricKind.BINARY, family: Family = Family.QUALITY,
           probes: int = 20, per_side: int = 3) -> MetricData:  # fmt: skip
    values = {pv: [True] * per_side for pv in range(probes)}
    return MetricData(name, kind, family, values, dict(values))


def result(p: float, effect: float = 0.2) -> Result:
    return Result("t", p, effect, "e", 0.5, 0.5 + effect, 60, 60, 20)


def one(m: MetricData, r: Result | Untested, previous: int = 0, **cfg: Any) -> Verdict:
    config = CONFIG.model_copy(update=cfg)
    return decide([(m, r)], config, {m.name: previous})[0]


def test_bh_runs_within_each_family_only() -> None:
    quality = [0.001, 0.02, 0.04, 0.3]
    operational = [1e-9, 1e-8]
    items = [(metric(f"q{i}"), result(p)) for i, p in enumerate(quality)]
    ops = Family.OPERATIONAL
    items += [(metric(f"o{i}", family=ops), result(p)) for i, p in enumerate(operational)]
    verdicts = decide(items, CONFIG)
    got_q = [v.p_adjusted for v in verdicts[:4]]
    got_o = [v.p_adjusted for v in verdicts[4:]]
    np.testing.assert_allclose(got_q, false_discovery_control(quality, method="bh"), rtol=1e-12)
    np.testing.assert_allclose(got_o, false_discovery_control(operational, method="bh"), rtol=1e-12)
    assert [v.p_value for v in verdicts[:4]] == quality


def test_untested_metrics_do_not_enter_the_correction() -> None:
    items = [(metric("a"), result(0.02)), (metric("b"), Untested("few", 3, 3))]
    verdicts = decide(items, CONFIG)
    assert verdicts[0].p_adjusted == pytest.approx(0.02)  # alone in its family
    assert verdicts[1].state is State.INSUFFICIENT_DATA and verdicts[1].p_adjusted is None
    assert verdicts[1].note == "few" and verdicts[1].streak == 0


def test_metrics_that_cannot_vary_are_left_out_of_the_correction() -> None:
    """refusal_rate all False etc.: p = 1 for sure given the margins (Tarone)."""
    varying = {pv: [True, False, True] for pv in range(20)}
    also_p1 = MetricData("check:1", MetricKind.BINARY, Family.QUALITY, varying, dict(varying))
    items = [(metric("pass_rate"), result(0.02))]
    items += [(metric(f"constant{i}"), result(1.0, 0.0)) for i in range(3)]
    verdicts = decide(items, CONFIG)
    assert verdicts[0].p_adjusted == pytest.approx(0.02) and verdicts[0].state is State.PENDING
    assert all(v.p_adjusted == 1.0 and v.note and "left out" in v.note for v in verdicts[1:])
    assert all(v.state is State.NOT_SIGNIFICANT for v in verdicts[1:])
    # p = 1 by chance, with variation inside probes: still a test, still counted.
    verdicts = decide([*items[:1], (also_p1, result(1.0, 0.0))], CONFIG)
    assert verdicts[0].p_adjusted == pytest.approx(0.04) and verdicts[1].note is None


def test_persistence_pending_then_drifted() -> None:
    m = metric("pass_rate")
    first = one(m, result(0.001, -0.2), previous=0)
    assert (first.state, first.streak) == (State.PENDING, 1)
    second = one(m, result(0.001, -0.2), previous=first.streak)
    assert (second.state, second.streak) == (State.DRIFTED, 2) and second.drifted
    assert one(m, result(0.001, -0.2), previous=0, persistence=1).state is State.DRIFTED


def test_not_significant_or_not_meaningful_resets_the_streak() -> None:
    m = metric("pass_rate")
    quiet = one(m, result(0.2, -0.2), previous=5)
    assert (quiet.state, quiet.streak) == (State.NOT_SIGNIFICANT, 0)
    tiny = one(m, result(1e-6, -0.01), previous=5)
    assert (tiny.state, tiny.streak) == (State.NO_MEANINGFUL_CHANGE, 0)


@pytest.mark.parametrize(
    ("kind", "floor_key"),
    [
        (MetricKind.BINARY, "min_rate_change"),
        (MetricKind.CATEGORICAL, "min_js_distance"),
        (MetricKind.NUMERIC, "min_wasserstein"),
    ],
)
def test_effect_floor_by_kind(kind: MetricKind, floor_key: str) -> None:
    m = metric("x", kind)
    floor = getattr(CONFIG, floor_key)
    assert one(m, result(1e-6, floor)).state is State.PENDING  # exactly on the floor
    assert one(m, result(1e-6, -floor)).state is State.PENDING  # either direction
    assert one(m, result(1e-6, floor * 0.99)).state is State.NO_MEANINGFUL_CHANGE


def test_insufficiency_says_why() -> None:
    few_probes = metric("a", probes=5, per_side=10)
    assert insufficiency(few_probes, paired(few_probes), CONFIG) == Untested(
        "5 probe versions with data on both sides (need 10)", 50, 50
    )
    three, one_each = {pv: [True] * 3 for pv in range(12)}, {pv: [True] for pv in range(12)}
    few_samples = MetricData("b", MetricKind.BINARY, Family.QUALITY, three, one_each)
    why = insufficiency(few_samples, paired(few_samples), CONFIG)
    assert why is not None and why.why == "current window has 12 values (need 20)"
    one_sided = MetricData("c", MetricKind.BINARY, Family.QUALITY, {1: [True]}, {})
    why = insufficiency(one_sided, paired(one_sided), CONFIG)
    assert why is not None and why.why == "no data in the current window"
    disjoint = MetricData("e", MetricKind.BINARY, Family.QUALITY, {1: [True]}, {2: [True]})
    why = insufficiency(disjoint, paired(disjoint), CONFIG)
    assert why is not None and why.why == "no probe version has data on both sides"
    assert insufficiency(metric("d"), paired(metric("d")), CONFIG) is None


# --- evaluate() end to end -------------------------------------------------------------------


def window(
    rates: np.ndarray, samples: int, rng: np.random.Generator, **kw: Any
) -> list[Observation]:
    """`samples` results per probe version; probe i passes with rates[i]."""
    out = []
    for pv, rate in enumerate(rates):
        for _ in range(samples):
            passed = bool(rng.random() < rate)
            out.append(Observation(pv, "pass" if passed else "fail", format_kind="clean",
                                   parsed=True, finish_reason="stop",
                                   output_chars=int(rng.normal(300 + 5 * pv, 20)),
                                   latency_ms=float(rng.gamma(4, 200)), **kw))  # fmt: skip
    return out


def test_a_pass_rate_drop_drifts_after_persistence_and_nothing_else_moves() -> None:
    rng = np.random.default_rng(1)
    rates = rng.uniform(0.5, 0.95, 100)
    baseline = window(rates, 9, rng)
    config = DriftConfig()  # the shipped defaults
    streaks: dict[str, int] = {}
    states = []
    for _ in range(2):
        ev = evaluate(baseline, window(rates - 0.25, 3, rng), config, previous_streaks=streaks)
        streaks = {v.metric: v.streak for v in ev.verdicts}
        states.append({v.metric: v.state for v in ev.verdicts})
    assert states[0]["pass_rate"] is State.PENDING
    assert states[1]["pass_rate"] is State.DRIFTED
    assert [v.metric for v in ev.drifted] == ["pass_rate"]
    assert ev.paired_probes == 100 and ev.excluded_probes == 0 and ev.notes == ()
    quiet = {k: s for k, s in states[1].items() if k != "pass_rate"}
    assert all(s is State.NOT_SIGNIFICANT for s in quiet.values()), quiet


def test_no_change_stays_quiet_and_evaluation_is_deterministic() -> None:
    rng = np.random.default_rng(2)
    rates = rng.uniform(0.2, 1.0, 60)
    baseline, current = window(rates, 9, rng), window(rates, 3, rng)
    current += [Observation(1000, "pass")]  # a probe edited since the baseline
    config = DriftConfig(permutations=500)
    first = evaluate(baseline, current, config, previous_streaks={"pass_rate": 3})
    assert first == evaluate(baseline, current, config, previous_streaks={"pass_rate": 3})
    assert not first.drifted and first.excluded_probes == 1
    assert first.notes == (
        "1 probe version excluded (changed since the baseline: 0 only in the baseline, "
        "1 only in the current window)",
    )
    assert all(v.streak == 0 for v in first.verdicts)


def test_an_outage_is_operational_never_quality_drift() -> None:
    rng = np.random.default_rng(3)
    rates = rng.uniform(0.5, 1.0, 50)
    baseline = window(rates, 9, rng)
    current = window(rates, 1, rng) + [
        Observation(pv, "error") for pv in range(50) for _ in range(2)
    ]
    ev = evaluate(baseline, current, DriftConfig(persistence=1, min_samples=10))
    states = {v.metric: v.state for v in ev.verdicts}
    assert states["error_rate"] is State.DRIFTED
    assert ev.drifted == ()
    assert states["pass_rate"] is not State.DRIFTED


def test_too_little_data_is_insufficient_not_quiet() -> None:
    rng = np.random.default_rng(4)
    rates = np.full(5, 0.9)
    ev = evaluate(window(rates, 3, rng), window(np.zeros(5), 3, rng), DriftConfig())
    verdict = next(v for v in ev.verdicts if v.metric == "pass_rate")
    assert verdict.state is State.INSUFFICIENT_DATA
    assert verdict.note == "5 probe versions with data on both sides (need 10)"
    nothing = evaluate([], [], DriftConfig())
    assert nothing.notes == ("no probe version is in both windows: nothing to compare",)


def test_evaluate_is_fast_enough_to_run_in_calibration() -> None:
    """100 probes, 9 baseline vs 3 current samples: a loose bound, 5x the measured time."""
    rng = np.random.default_rng(5)
    rates = rng.uniform(0.3, 0.95, 100)
    baseline = window(rates, 9, rng, refusal=False, checks=(True, False), tracked={"k": "a"})
    current = window(rates, 3, rng, refusal=False, checks=(True, True), tracked={"k": "a"})
    config = DriftConfig()
    evaluate(baseline, current, config)
    start = time.process_time()
    for _ in range(20):
        evaluate(baseline, current, config)
    assert (time.process_time() - start) / 20 < 0.05
