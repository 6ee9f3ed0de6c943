"""Verdicts: minimum sizes, Benjamini-Hochberg per family, effect floors, the CUSUM alarm rule
and persistence; and the whole evaluate() on simulated windows (determinism, notes, speed)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest
from scipy.special import ndtri
from scipy.stats import false_discovery_control

from monitor.drift.decide import Untested, decide, insufficiency, meaningful, paired
from monitor.drift.evaluate import evaluate
from monitor.drift.model import (
    Carry,
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
from monitor.drift.sequential import threshold
from monitor.drift.settings import DriftConfig

CONFIG = DriftConfig(alpha=0.05, min_probes=10, min_samples=20)
# The threshold of a metric alone in its family, and the evidence a p-value adds to the CUSUM.
H1 = threshold(CONFIG.cusum_reference, CONFIG.runs_between_false_alarms)


def gain(p: float) -> float:
    return float(-ndtri(p)) - CONFIG.cusum_reference


# Significant at alpha, yet one evaluation of it stays under H1: PENDING, not yet DRIFTED.
SIGNIFICANT = 1e-3


def metric(
    name: str,
    kind: MetricKind = MetricKind.BINARY,
    family: Family = Family.QUALITY,
    probes: int = 20,
    per_side: int = 3,
) -> MetricData:
    values = {pv: [True] * per_side for pv in range(probes)}
    return MetricData(name, kind, family, values, dict(values))


def result(p: float, effect: float = 0.2, shift: float | None = None) -> Result:
    return Result("t", p, effect, "e", 0.5, 0.5 + effect, 60, 60, 20, shift)


def one(m: MetricData, r: Result | Untested, previous: Carry | None = None, **cfg: Any) -> Verdict:
    config = CONFIG.model_copy(update=cfg)
    return decide([(m, r)], config, {m.name: previous or Carry()})[0]


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


def test_the_threshold_splits_the_false_alarm_rate_over_the_metrics_of_a_family() -> None:
    """Each of m tested metrics gets m x runs_between_false_alarms; an outage raising the
    number of operational metrics leaves the quality threshold alone."""
    ops = Family.OPERATIONAL
    quality = [(metric(f"q{i}"), result(0.5)) for i in range(4)]
    untested = [(metric("few"), Untested("few", 3, 3))]
    arl, k = CONFIG.runs_between_false_alarms, CONFIG.cusum_reference
    for n_ops in (2, 12):
        operational = [(metric(f"o{i}", family=ops), result(1e-9)) for i in range(n_ops)]
        verdicts = decide([*quality, *untested, *operational], CONFIG)
        assert [v.threshold for v in verdicts[:4]] == [pytest.approx(threshold(k, 4 * arl))] * 4
        assert verdicts[4].threshold is None and verdicts[4].evidence is None
        assert all(v.threshold == pytest.approx(threshold(k, n_ops * arl)) for v in verdicts[5:])
    assert threshold(k, 4 * arl) > H1  # more metrics, each held to a stricter threshold


def test_untested_metrics_do_not_enter_the_correction() -> None:
    items: list[tuple[MetricData, Result | Untested]] = [
        (metric("a"), result(0.02)),
        (metric("b"), Untested("few", 3, 3)),
    ]
    verdicts = decide(items, CONFIG)
    assert verdicts[0].p_adjusted == pytest.approx(0.02)  # alone in its family
    assert verdicts[1].state is State.INSUFFICIENT_DATA and verdicts[1].p_adjusted is None
    assert verdicts[1].note == "few" and verdicts[1].streak == 0


def test_metrics_that_cannot_vary_are_left_out_of_the_correction() -> None:
    """refusal_rate all False etc.: p = 1 for sure given the margins (Tarone); they neither
    enter BH nor count towards the metrics the alarm threshold is split over."""
    varying = {pv: [True, False, True] for pv in range(20)}
    also_p1 = MetricData("check:1", MetricKind.BINARY, Family.QUALITY, varying, dict(varying))
    items = [(metric("pass_rate"), result(0.02))]
    items += [(metric(f"constant{i}"), result(1.0, 0.0)) for i in range(3)]
    verdicts = decide(items, CONFIG)
    assert verdicts[0].p_adjusted == pytest.approx(0.02) and verdicts[0].state is State.PENDING
    assert verdicts[0].threshold == pytest.approx(H1)
    assert all(v.p_adjusted == 1.0 and v.note and "left out" in v.note for v in verdicts[1:])
    assert all(v.state is State.NOT_SIGNIFICANT for v in verdicts[1:])
    assert all(v.evidence == 0.0 and v.threshold is None for v in verdicts[1:])
    # p = 1 by chance, with variation inside probes: still a test, still counted.
    verdicts = decide([*items[:1], (also_p1, result(1.0, 0.0))], CONFIG)
    assert verdicts[0].p_adjusted == pytest.approx(0.04) and verdicts[1].note is None
    both = threshold(CONFIG.cusum_reference, 2 * CONFIG.runs_between_false_alarms)
    assert verdicts[0].threshold == pytest.approx(both) and both > H1


def test_an_overwhelming_change_drifts_at_the_first_evaluation() -> None:
    m = metric("pass_rate")
    assert gain(1e-12) > H1  # one evaluation brings more than the threshold
    first = one(m, result(1e-12, -0.2))
    assert (first.state, first.streak) == (State.DRIFTED, 1) and first.drifted
    assert first.evidence == pytest.approx(H1) and first.threshold == pytest.approx(H1)  # held


def test_a_borderline_change_is_pending_first_and_drifts_as_evidence_accumulates() -> None:
    m = metric("pass_rate")
    carry, seen = Carry(), []
    for _ in range(3):
        verdict = one(m, result(0.005, -0.2), carry)
        carry = verdict.carry
        seen.append(verdict)
    assert 2 * gain(0.005) < H1 < 3 * gain(0.005)
    assert [(v.state, v.streak) for v in seen] == [
        (State.PENDING, 0),
        (State.PENDING, 0),
        (State.DRIFTED, 1),
    ]
    assert [v.evidence for v in seen] == pytest.approx([gain(0.005), 2 * gain(0.005), H1])


def test_a_small_persistent_change_alarms_though_no_evaluation_is_significant() -> None:
    """p = 0.06 each time (alpha 0.05): never PENDING on its own, but the CUSUM adds it up."""
    m = metric("pass_rate")
    needed = int(np.ceil(H1 / gain(0.06)))
    carry, states = Carry(), []
    for _ in range(needed):
        verdict = one(m, result(0.06, -0.2), carry)
        carry = verdict.carry
        states.append(verdict.state)
    assert needed > 3
    assert states == [State.NOT_SIGNIFICANT] * (needed - 1) + [State.DRIFTED]


def test_persistence_still_counts_alarming_evaluations() -> None:
    m = metric("pass_rate")
    first = one(m, result(1e-12, -0.2), persistence=2)
    assert (first.state, first.streak) == (State.PENDING, 1)
    second = one(m, result(1e-12, -0.2), first.carry, persistence=2)
    assert (second.state, second.streak) == (State.DRIFTED, 2)
    # An evaluation under the threshold between two alarming ones starts the count again.
    quiet = one(m, result(0.5, -0.2), first.carry, persistence=2)
    again = one(m, result(1e-12, -0.2), quiet.carry, persistence=2)
    assert (quiet.streak, again.state, again.streak) == (0, State.PENDING, 1)


def test_not_significant_not_meaningful_or_untested_resets_the_streak() -> None:
    m = metric("pass_rate")
    alarmed = Carry(5, H1)
    quiet = one(m, result(0.2, -0.2), alarmed)
    assert (quiet.state, quiet.streak) == (State.NOT_SIGNIFICANT, 0)
    assert quiet.evidence == pytest.approx(H1 + gain(0.2))  # less than k: below the threshold
    tiny = one(m, result(1e-6, -0.01), alarmed)
    assert (tiny.state, tiny.streak, tiny.evidence) == (State.NO_MEANINGFUL_CHANGE, 0, H1)
    assert one(m, Untested("few", 3, 3), alarmed).carry == Carry(0, 0.0)
    # The statistic never goes below 0, however strongly a run speaks for no change.
    assert one(m, result(0.999, -0.2)).evidence == 0.0


@pytest.mark.parametrize(
    ("kind", "floor_key"),
    [
        (MetricKind.BINARY, "min_rate_change"),
        (MetricKind.CATEGORICAL, "min_js_distance"),
        (MetricKind.NUMERIC, "min_wasserstein"),
        (MetricKind.TEXT, "min_text_change"),
    ],
)
def test_effect_floor_by_kind(kind: MetricKind, floor_key: str) -> None:
    m = metric("x", kind)
    floor = getattr(CONFIG, floor_key)
    assert CONFIG.alpha >= SIGNIFICANT and 0 < gain(SIGNIFICANT) < H1
    assert one(m, result(SIGNIFICANT, floor)).state is State.PENDING  # exactly on the floor
    assert one(m, result(SIGNIFICANT, -floor)).state is State.PENDING  # either direction
    assert one(m, result(SIGNIFICANT, floor * 0.99)).state is State.NO_MEANINGFUL_CHANGE
    # Over the alarm threshold, still below the floor: no alarm.
    below = one(m, result(1e-12, floor * 0.99))
    assert (below.state, below.streak) == (State.NO_MEANINGFUL_CHANGE, 0)
    assert one(m, result(1e-12, floor)).state is State.DRIFTED


def test_integer_lengths_need_a_typical_shift_of_more_than_one_unit() -> None:
    m = metric("length_chars", MetricKind.NUMERIC)
    for shift in (1.0, -1.0, 0.5, 0.0):
        verdict = one(m, result(1e-12, 2.0, shift))
        assert (verdict.state, verdict.streak) == (State.NO_MEANINGFUL_CHANGE, 0), shift
    for large in (1.5, -2.0, None):  # None: not a count, no such rule
        assert one(m, result(1e-12, 2.0, large)).state is State.DRIFTED, large
    # The effect floor still applies to a count that moved a lot.
    assert not meaningful(MetricKind.NUMERIC, result(1e-12, 0.2, 40.0), CONFIG)


def test_the_dispersion_applied_is_recorded() -> None:
    items = [(metric("a"), result(0.02)), (metric("b"), result(0.3))]
    verdicts = decide(items, CONFIG, dispersion={"a": 2.5})
    assert [v.dispersion for v in verdicts] == [2.5, None]


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
            out.append(
                Observation(
                    pv,
                    "pass" if passed else "fail",
                    format_kind="clean",
                    parsed=True,
                    finish_reason="stop",
                    output_chars=int(rng.normal(300 + 5 * pv, 20)),
                    latency_ms=float(rng.gamma(4, 200)),
                    **kw,
                )
            )
    return out


def runs(rates: np.ndarray, count: int, rng: np.random.Generator) -> list[Observation]:
    """A baseline of `count` runs with one sample per probe each, run ids 0..count-1."""
    return [o for run in range(count) for o in window(rates, 1, rng, run_id=run)]


def evaluations(
    baseline: list[Observation], rates: np.ndarray, count: int, rng: np.random.Generator
) -> list[dict[str, Verdict]]:
    """`count` evaluations of fresh current runs (3 samples per probe), carrying the state."""
    carried: dict[str, Carry] = {}
    out = []
    for run in range(count):
        current = window(rates, 3, rng, run_id=100 + run)
        ev = evaluate(baseline, current, DriftConfig(), previous=carried)  # shipped defaults
        carried = {v.metric: v.carry for v in ev.verdicts}
        out.append({v.metric: v for v in ev.verdicts})
    return out


def test_a_large_pass_rate_drop_drifts_at_once_and_nothing_else_moves() -> None:
    rng = np.random.default_rng(1)
    rates = rng.uniform(0.5, 0.95, 100)
    baseline = runs(rates, 9, rng)
    ev = evaluate(baseline, window(rates - 0.25, 3, rng, run_id=100), DriftConfig())
    assert [v.metric for v in ev.drifted] == ["pass_rate"]
    assert ev.paired_probes == 100 and ev.excluded_probes == 0 and ev.notes == ()
    quiet = {v.metric: v.state for v in ev.verdicts if v.metric != "pass_rate"}
    assert all(s is State.NOT_SIGNIFICANT for s in quiet.values()), quiet
    # Nine baseline runs: the run-to-run variation is estimated for every tested metric.
    assert all(v.dispersion is not None and v.dispersion >= 1.0 for v in ev.verdicts)


def test_a_10_point_drop_drifts_once_its_evidence_adds_up() -> None:
    rng = np.random.default_rng(2)
    rates = rng.uniform(0.5, 0.95, 100)
    seen = [e["pass_rate"] for e in evaluations(runs(rates, 9, rng), rates - 0.1, 5, rng)]
    first = next(i for i, v in enumerate(seen) if v.state is State.DRIFTED)
    assert first >= 1, "a borderline change should need more than one run here"
    growing = [v.evidence or 0.0 for v in seen[: first + 1]]
    assert 0 < growing[0] < (seen[0].threshold or 0.0)
    assert growing == sorted(growing)
    assert all(v.state is not State.DRIFTED for v in seen[:first])


def test_no_change_stays_quiet_and_evaluation_is_deterministic() -> None:
    rng = np.random.default_rng(2)
    rates = rng.uniform(0.2, 1.0, 60)
    baseline, current = window(rates, 9, rng), window(rates, 3, rng)
    current += [Observation(1000, "pass")]  # a probe edited since the baseline
    config = DriftConfig(permutations=500)
    carried = {"pass_rate": Carry(3, 2.0)}
    first = evaluate(baseline, current, config, previous=carried)
    assert first == evaluate(baseline, current, config, previous=carried)
    assert not first.drifted and first.excluded_probes == 1
    assert first.notes == (
        "1 probe version excluded (changed since the baseline: 0 only in the baseline, "
        "1 only in the current window)",
        "run-to-run variation not estimated: the baseline has fewer than 8 runs; the tests "
        "assume runs differ only by sampling",
    )
    assert all(v.streak == 0 and v.dispersion is None for v in first.verdicts)
    assert all((v.evidence or 0.0) < (v.threshold or np.inf) for v in first.verdicts)


def test_no_change_over_many_runs_never_alarms() -> None:
    rng = np.random.default_rng(6)
    rates = rng.uniform(0.5, 0.95, 100)
    for verdicts in evaluations(runs(rates, 8, rng), rates, 8, rng):
        assert not any(v.drifted for v in verdicts.values())


def lengths(base: np.ndarray, extra: int, samples: int, run: int) -> list[Observation]:
    """Short outputs (a few characters, as for multiple-choice answers): probe i has base[i]
    characters, plus 0 or 1 by sample, plus `extra`."""
    return [
        Observation(pv, "pass", output_chars=int(n) + extra + s % 2, run_id=run)
        for pv, n in enumerate(base)
        for s in range(samples)
    ]


def test_a_one_character_length_shift_is_never_drift_but_three_are() -> None:
    base = np.random.default_rng(7).integers(3, 9, 60)
    baseline = [o for run in range(4) for o in lengths(base, 0, 2, run)]

    def length_state(extra: int) -> tuple[State, float | None]:
        ev = evaluate(baseline, lengths(base, extra, 2, 9), DriftConfig())
        verdict = next(v for v in ev.verdicts if v.metric == "length_chars")
        return verdict.state, verdict.effect

    one_char, effect = length_state(1)
    assert (
        one_char is State.NO_MEANINGFUL_CHANGE and (effect or 0.0) > DriftConfig().min_wasserstein
    )
    assert length_state(3)[0] is State.DRIFTED
    assert length_state(0)[0] is State.NOT_SIGNIFICANT


def test_an_outage_is_operational_never_quality_drift() -> None:
    rng = np.random.default_rng(3)
    rates = rng.uniform(0.5, 1.0, 50)
    baseline = window(rates, 9, rng)
    current = window(rates, 1, rng) + [
        Observation(pv, "error") for pv in range(50) for _ in range(2)
    ]
    ev = evaluate(baseline, current, DriftConfig(min_samples=10))
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


def test_an_untested_metric_still_shows_what_each_side_was() -> None:
    # Too little data to test, but the reader sees the values, in the form the test reports.
    rates = MetricData(
        "pass_rate",
        MetricKind.BINARY,
        Family.QUALITY,
        {1: [True, True], 2: [True, False]},  # per-version rates 1 and 0.5: mean 0.75
        {1: [False, False], 2: [True, False]},  # 0 and 0.5: 0.25
    )
    verdict = one(rates, Untested("few", 4, 4))
    assert verdict.state is State.INSUFFICIENT_DATA
    assert (verdict.baseline_value, verdict.current_value) == (0.75, 0.25)
    assert verdict.effect_name == "rate difference" and verdict.effect is None
    labels = MetricData(
        "field:label",
        MetricKind.CATEGORICAL,
        Family.QUALITY,
        {1: ["a", "a"], 2: ["a", "b"]},
        {1: ["b"]},
    )
    verdict = one(labels, Untested("few", 4, 1))
    assert verdict.baseline_value == {"a": 0.75, "b": 0.25}
    assert verdict.current_value == {"b": 1.0}
    lengths = MetricData(
        "length_chars", MetricKind.NUMERIC, Family.QUALITY, {1: [10, 30], 2: [20]}, {}
    )
    verdict = one(lengths, Untested("no data in the current window", 3, 0))
    assert (verdict.baseline_value, verdict.current_value) == (20.0, None)
    text = MetricData("text_distribution", MetricKind.TEXT, Family.QUALITY, {1: ["x"]}, {1: ["y"]})
    assert one(text, Untested("few", 1, 1)).baseline_value is None
