"""Run-to-run variation: the chi-square conversions, the leave-one-run-out estimate, its upper
confidence bound, and its purpose through evaluate(): with a shift shared by all results of a
run, null runs are rejected no more often than nominal once corrected (the bound makes it
conservative), far more often without the correction, and a shift beyond the run-to-run swings
is still found."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pytest
from scipy.special import chdtrc, chdtri
from scipy.stats import binomtest, chi2, f

from monitor.drift.evaluate import baseline_dispersion, evaluate
from monitor.drift.model import Dispersion, MetricData, Observation, Verdict
from monitor.drift.model import TestResult as Result  # not Test*: pytest would collect it
from monitor.drift.runs import (
    by_run,
    chi_square_of,
    corrected,
    inflation,
    run_dispersion,
)
from monitor.drift.settings import DriftConfig

CONFIG = DriftConfig()


def test_chi_square_of_a_p_value() -> None:
    assert chi_square_of(0.05) == pytest.approx(3.8415, abs=1e-4)  # 1.96^2
    assert chi_square_of(0.01) == pytest.approx(6.6349, abs=1e-4)
    assert chi_square_of(1.0) == 0.0
    assert np.isfinite(chi_square_of(0.0)) and chi_square_of(0.0) > chi_square_of(1e-200)


def test_inflation_raises_the_excess_to_its_90_percent_upper_bound() -> None:
    """1 + (k - 1) / chi2_{0.1, k-1} x (phi_hat - 1): the excess phi_hat - 1 is a mean of k - 1
    chi-square degrees of freedom, so its one-sided 90% upper bound scales it by that factor."""
    assert inflation(Dispersion(1.0, 8)) == 1.0
    assert inflation(Dispersion(0.4, 8)) == 1.0  # runs quieter than sampling never sharpen
    for phi, runs in ((4.0, 8), (1.5, 24), (2.0, 2), (1.001, 8)):
        df = runs - 1
        expected = 1.0 + df / chi2.ppf(0.1, df) * (phi - 1.0)
        assert inflation(Dispersion(phi, runs)) == pytest.approx(expected, rel=1e-12)
    # Known values: from 8 runs the excess counts 2.47 times (7 / 2.833), from 24 runs 1.55
    # times, from 2 runs (one degree of freedom) 63 times; from very many, phi_hat itself.
    assert inflation(Dispersion(4.0, 8)) == pytest.approx(1 + 3 * 2.4708, abs=1e-3)
    assert inflation(Dispersion(2.0, 24)) == pytest.approx(2.549, abs=1e-3)
    assert inflation(Dispersion(2.0, 2)) == pytest.approx(64.33, abs=1e-2)
    assert inflation(Dispersion(4.0, 10**7)) == pytest.approx(4.0, rel=1e-3)
    bounds = [inflation(Dispersion(4.0, runs)) for runs in (2, 4, 8, 24, 100, 10**7)]
    assert bounds == sorted(bounds, reverse=True) and bounds[-1] > 4.0


@pytest.mark.parametrize("p", [1e-12, 0.001, 0.05, 0.3, 0.9])
def test_corrected_divides_the_chi_square_by_the_inflated_factor(p: float) -> None:
    assert corrected(p, Dispersion(1.0, 8)) == p
    assert corrected(p, Dispersion(0.4, 8)) == p  # runs quieter than sampling never sharpen
    # Estimated from very many runs, phi is known: chi-square(1) of z^2 / phi, the bound on
    # the excess adding next to nothing.
    many = Dispersion(4.0, 10**7)
    exact = chdtrc(1, chdtri(1, p) / inflation(many))
    assert corrected(p, many) == pytest.approx(exact, rel=1e-12)
    assert corrected(p, many) == pytest.approx(chdtrc(1, chdtri(1, p) / 4.0), rel=1e-2)
    # From 8 runs: z^2 over the bound, on Student's t with Satterthwaite's df from phi_hat,
    # 7 (phi / (phi - 1))^2, for the excess.
    eight = Dispersion(4.0, 8)
    df = 7 * (4.0 / 3.0) ** 2
    estimated = f.sf(chdtri(1, p) / inflation(eight), 1, df)
    assert corrected(p, eight) == pytest.approx(estimated, rel=1e-9)
    # Each step only makes the test more conservative: t for the normal, then the bound.
    assert p < exact <= f.sf(chdtri(1, p) / 4.0, 1, df) < corrected(p, eight)
    assert corrected(1.0, eight) == 1.0


def test_corrected_known_values() -> None:
    # z = 1.96 with four times the variance the test assumed: z = 0.98, two-sided p = 0.327.
    assert corrected(0.05, Dispersion(4.0, 10**7)) == pytest.approx(0.3272, abs=1e-4)
    # phi_hat = 4 from 8 runs, bound 1 + 3 x 2.47 = 8.41: t = 1.96 / sqrt(8.41) = 0.676 on
    # 12.4 df, p = 0.512.
    assert corrected(0.05, Dispersion(4.0, 8)) == pytest.approx(0.5116, abs=1e-3)
    # Runs barely noisier than sampling: df grows without bound, the normal is back, and the
    # bound moves the factor only to 1 + 0.001 x 2.47.
    close = corrected(0.01, Dispersion(1.001, 8))
    assert close == pytest.approx(chdtrc(1, chdtri(1, 0.01) / 1.00247), rel=1e-4)


def test_by_run_groups_in_run_id_order_and_none_is_one_run() -> None:
    a, b, c, d, e = (Observation(i, "pass", run_id=r) for i, r in enumerate((7, 3, 7, None, 3)))
    assert by_run([a, b, c, d, e]) == [[d], [b, e], [a, c]]
    assert by_run([Observation(1, "pass"), Observation(2, "fail")]) == [
        [Observation(1, "pass"), Observation(2, "fail")]
    ]
    assert by_run([]) == []


def passing(runs: int, probes: int = 12) -> list[Observation]:
    return [Observation(pv, "pass", run_id=r) for r in range(runs) for pv in range(probes)]


def test_run_dispersion_averages_the_leave_one_run_out_chi_squares() -> None:
    seen: list[tuple[int, int]] = []

    def fixed_p(metric: MetricData, versions: Sequence[int]) -> Result:
        held_out = sum(map(len, metric.current.values()))
        seen.append((held_out, sum(map(len, metric.baseline.values()))))
        return Result("t", 0.05, 0.0, "e", 0, 0, 0, 0, len(versions))

    config = DriftConfig(min_samples=1)
    found = run_dispersion(passing(8), range(12), config, fixed_p)
    assert found["pass_rate"].factor == pytest.approx(3.8415, abs=1e-4)
    assert found["pass_rate"].runs == 8
    # Each of the 8 runs is compared, for each metric, with the other 7.
    assert set(seen) == {(12, 84)} and len(seen) == 8 * len(found)
    # One run: nothing to compare it with. Too few probe versions: no test, no estimate.
    assert run_dispersion(passing(1), range(12), config, fixed_p) == {}
    assert run_dispersion(passing(8), range(5), config, fixed_p) == {}


# --- the property, through evaluate() -------------------------------------------------------

PROBES, RUNS, SAMPLES = 60, 8, 3
WITHIN, RUN_EFFECT = 0.2, 0.05  # log-length SDs: between samples, between runs


def lengths(
    log_medians: np.ndarray,
    runs: range,
    rng: np.random.Generator,
    run_effect: float,
    shift: float = 0.0,
) -> list[Observation]:
    """SAMPLES log-normal output lengths per probe in each run; every result of a run shares the
    run's shift of the log length (sd run_effect), as load or a replica would cause."""
    out = []
    for run in runs:
        logs = log_medians + rng.normal(0, run_effect) + shift
        chars = np.rint(np.exp(logs + rng.normal(0, WITHIN, (SAMPLES, log_medians.size))))
        out += [
            Observation(pv, "pass", output_chars=int(chars[s, pv]), run_id=run)
            for s in range(SAMPLES)
            for pv in range(log_medians.size)
        ]
    return out


def length_chars(verdicts: Sequence[Verdict]) -> Verdict:
    return next(v for v in verdicts if v.metric == "length_chars")


class Simulated(NamedTuple):
    p: np.ndarray  # corrected p-values of length_chars
    raw: np.ndarray  # the same, uncorrected (dispersion={}), for the first `raw` pairs
    recorded: np.ndarray  # Verdict.dispersion: the factor applied
    found: list[Dispersion]  # the baseline's estimate (Evaluation.dispersion)


def simulate(
    sims: int,
    run_effect: float,
    rng: np.random.Generator,
    shift: float = 0.0,
    raw: int = 0,
    runs: int = RUNS,
) -> Simulated:
    """length_chars for `sims` fresh (baseline of `runs` runs, current run) pairs."""
    corrected_p, raw_p, recorded, found = [], [], [], []
    for i in range(sims):
        log_medians = rng.uniform(np.log(200), np.log(800), PROBES)
        baseline = lengths(log_medians, range(runs), rng, run_effect)
        current = lengths(log_medians, range(runs, runs + 1), rng, run_effect, shift)
        ev = evaluate(baseline, current, CONFIG)
        verdict = length_chars(ev.verdicts)
        corrected_p.append(verdict.p_value)
        recorded.append(verdict.dispersion)
        found.append(ev.dispersion["length_chars"])
        if i < raw:
            raw_p.append(length_chars(evaluate(baseline, current, CONFIG, dispersion={}).verdicts))
    return Simulated(
        np.array(corrected_p),
        np.array([v.p_value for v in raw_p]),
        np.array(recorded),
        found,
    )


def test_a_run_effect_is_measured_and_null_runs_are_rejected_no_more_than_nominal() -> None:
    """150 null (baseline, current run) pairs, each with its own 8-run baseline; phi ~ 10 here
    (measured mean phi_hat 10.2, bound 23.7). Corrected, the share of p <= 0.01 is 1.3% (2 of
    150), of p <= 0.05 1.3%, of p <= 0.1 4%, of p <= 0.5 29%: at or below nominal, as the
    upper bound intends. The test as if runs differed by sampling alone rejects 36% of 50 at
    0.01."""
    sim = simulate(150, RUN_EFFECT, np.random.default_rng(0), raw=50)
    phi = np.array([d.factor for d in sim.found])
    assert np.mean(phi) > 5 and all(d.runs == RUNS for d in sim.found)
    np.testing.assert_allclose(sim.recorded, [inflation(d) for d in sim.found], rtol=1e-12)
    assert np.all(sim.recorded > phi)  # 8 runs: the bound is well above the estimate
    # At 0.05 and 0.1, 150 pairs resolve the rate to ~2 points: at most nominal. At 0.01 the
    # expected count is 1.5, so: no more rejections than a 1% rate gives by chance.
    assert np.mean(sim.p <= 0.05) <= 0.05 and np.mean(sim.p <= 0.1) <= 0.1
    assert binomtest(int(np.sum(sim.p <= 0.01)), sim.p.size, 0.01, "greater").pvalue > 0.05
    # Conservative, not blind: a correction that pushed every p-value to ~1 would fail here.
    assert np.mean(sim.p <= 0.5) >= 0.15
    assert np.mean(sim.raw <= 0.01) >= 0.2


def test_a_shift_beyond_the_run_to_run_swings_is_still_significant() -> None:
    """A current run 35% longer (log shift 0.3, six times the run effect's sd), against a
    baseline of the shipped size (baseline_runs, 24 runs): p <= 0.01 in 20 of 20 pairs
    (seeds 2-5: 19-20 of 20). Against 8 runs the bound (2.47 x the excess), F on ~8 df and the
    van Elteren statistic's ceiling (all current values above the baseline's) leave only 25%
    (50% for a 65% longer run): few baseline runs cost power by design."""
    runs = DriftConfig().baseline_runs
    assert runs > RUNS
    sim = simulate(20, RUN_EFFECT, np.random.default_rng(1), shift=0.3, runs=runs)
    assert np.mean(sim.p <= 0.01) >= 0.9


def test_without_run_effects_the_factor_is_near_one() -> None:
    """The estimate averages 1 (phi = 1: sampling alone) with 7 degrees of freedom; 40
    baselines measure its mean to ~0.09."""
    rng = np.random.default_rng(2)
    factors = []
    for _ in range(40):
        log_medians = rng.uniform(np.log(200), np.log(800), PROBES)
        baseline = lengths(log_medians, range(RUNS), rng, run_effect=0.0)
        found = baseline_dispersion(baseline, range(PROBES), CONFIG)["length_chars"]
        assert found.runs == RUNS
        factors.append(found.factor)
    assert np.mean(factors) == pytest.approx(1.0, abs=0.3)


def test_evaluate_applies_and_records_the_factor() -> None:
    rng = np.random.default_rng(3)
    log_medians = rng.uniform(np.log(200), np.log(800), PROBES)
    baseline = lengths(log_medians, range(RUNS), rng, RUN_EFFECT)
    current = lengths(log_medians, range(RUNS, RUNS + 1), rng, RUN_EFFECT)
    found = baseline_dispersion(baseline, range(PROBES), CONFIG)["length_chars"]
    with_it = length_chars(evaluate(baseline, current, CONFIG).verdicts)
    without = length_chars(evaluate(baseline, current, CONFIG, dispersion={}).verdicts)
    # The factor applied, the upper bound, is recorded; not the estimate.
    assert with_it.dispersion is not None and without.dispersion is None
    assert with_it.dispersion == pytest.approx(inflation(found))
    assert with_it.dispersion > found.factor > 1.0
    assert with_it.p_value is not None and without.p_value is not None
    assert with_it.p_value == pytest.approx(corrected(without.p_value, found), rel=1e-9)
    assert with_it.p_value > without.p_value  # phi ~ 10 here
    # One baseline run: no estimate, the tests as they are, and a note that says so.
    one_run = [o for o in baseline if o.run_id == 0]
    ev = evaluate(one_run, current, CONFIG.model_copy(update={"min_samples": 20}))
    assert length_chars(ev.verdicts).dispersion is None
    assert any("run-to-run variation not estimated" in note for note in ev.notes)


def test_too_few_baseline_runs_leave_the_tests_uncorrected() -> None:
    """Below MIN_RUNS the 90% bound would multiply a chance excess several-fold: no estimate."""
    from monitor.drift.runs import MIN_RUNS

    rng = np.random.default_rng(0)
    config = DriftConfig(min_probes=1)

    def runs(count: int) -> list[Observation]:
        return [
            Observation(p, "pass", output_chars=int(rng.integers(50, 60)), run_id=r)
            for r in range(count)
            for p in range(12)
        ]

    assert baseline_dispersion(runs(MIN_RUNS - 1), range(12), config) == {}
    found = baseline_dispersion(runs(MIN_RUNS), range(12), config)
    assert found["length_chars"].runs == MIN_RUNS
