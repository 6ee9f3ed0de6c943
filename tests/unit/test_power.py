"""Power: the probe model, monotonicity, limit cases, the search and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from monitor.cli.main import cli
from monitor.drift.power import (
    DEFAULT_WITHIN,
    PassRateModel,
    detectable_change,
    largest_change,
    probe_rates,
    required_probes,
    simulate_power,
)
from monitor.drift.settings import DriftConfig

CONFIG = DriftConfig()
MODEL = PassRateModel(0.9, flaky=0.1)


@pytest.mark.parametrize("change", [0.0, -0.1, -0.237, 0.03])
def test_probe_model_moves_the_rate_by_the_change(change: float) -> None:
    before, after = probe_rates(MODEL, 200, change, np.random.default_rng(1))
    assert after.mean() - before.mean() == pytest.approx(change, abs=1e-9)
    # Near-deterministic probes: 90% of them sit at noise or 1 - noise before the change.
    assert np.isin(before, [0.01, 0.99]).sum() == 180
    assert abs(before.mean() - 0.9) < 0.02  # flaky draws average 0.5 only in expectation


def test_probe_model_rejects_the_impossible() -> None:
    with pytest.raises(ValueError, match="impossible"):
        PassRateModel(0.99, flaky=0.5).check()
    with pytest.raises(ValueError, match="stable probes"):
        probe_rates(MODEL, 100, 0.2, np.random.default_rng(0))  # only ~5 stable fails to fix


def test_largest_change_is_exactly_what_the_model_allows() -> None:
    model = PassRateModel(0.85, flaky=0.1)
    for probes in (37, 200):  # rounding to whole probes differs with the count
        most = largest_change(model, probes, -1)
        rng = np.random.default_rng(0)
        probe_rates(model, probes, -most, rng)
        with pytest.raises(ValueError):
            probe_rates(model, probes, -most - 0.005, rng)


def power(change: float, probes: int, samples: int = 1, sims: int = 60) -> float:
    return simulate_power(MODEL, change, probes, samples, CONFIG, sims=sims, seed=5).power


def test_more_probes_and_samples_give_more_power() -> None:
    small, medium, large = power(-0.1, 30), power(-0.1, 60), power(-0.1, 150)
    assert small <= medium <= large
    assert small < large  # the range is wide enough for a strict difference
    assert power(-0.1, 30, samples=3) >= small


def test_other_metrics_cost_power() -> None:
    """Benjamini-Hochberg over more unchanged metrics: a lone change needs a smaller p."""
    alone = simulate_power(MODEL, -0.1, 60, 1, CONFIG, sims=80, seed=3).power
    shared = PassRateModel(0.9, flaky=0.1, other_metrics=4)
    crowded = simulate_power(shared, -0.1, 60, 1, CONFIG, sims=80, seed=3).power
    assert crowded < alone


def test_limit_cases() -> None:
    assert power(0.0, 100) <= 0.05  # no change: alarms only by chance, and rarely
    assert power(-0.5, 100) == 1.0  # half the probes break: always seen
    assert power(-0.5, CONFIG.min_probes - 1) == 0.0  # below the minimum sizes: no test
    # Below the effect floor nothing alarms, however many probes: the floor is the point.
    assert power(-(CONFIG.min_rate_change * 0.6), 400, sims=20) == 0.0


def test_a_longer_horizon_never_loses_power() -> None:
    early = simulate_power(MODEL, -0.06, 60, 1, CONFIG, sims=60, seed=2)
    late = simulate_power(MODEL, -0.06, 60, 1, CONFIG, within=6, sims=60, seed=2)
    assert early.within == DEFAULT_WITHIN and late.power >= early.power
    # The default horizon is never shorter than an explicit persistence can alarm in.
    strict = CONFIG.model_copy(update={"persistence": 3})
    assert simulate_power(MODEL, -0.06, 60, 1, strict, sims=2, seed=2).within == 3


def test_an_overwhelming_change_alarms_at_the_first_run() -> None:
    """The CUSUM rule: one run's evidence is enough when it is large, with persistence 1."""
    result = simulate_power(MODEL, -0.5, 100, 1, CONFIG, within=1, sims=30, seed=4)
    assert result.power == 1.0 and result.median_delay == 1
    late = simulate_power(
        MODEL, -0.5, 100, 1, CONFIG.model_copy(update={"persistence": 2}), within=1, sims=10, seed=4
    )
    assert late.power == 0.0  # two alarming runs asked for: none within one


def test_searches() -> None:
    big = required_probes(MODEL, -0.2, 1, CONFIG, sims=40, seed=1)
    small = required_probes(MODEL, -0.1, 1, CONFIG, sims=40, seed=1)
    assert big is not None and small is not None and big < small
    assert simulate_power(MODEL, -0.1, small, 1, CONFIG, sims=40, seed=1).power >= 0.8
    assert required_probes(MODEL, -0.03, 1, CONFIG, sims=20, max_probes=300) is None
    found = detectable_change(MODEL, 100, 1, CONFIG, sims=40, seed=1)
    assert found is not None and -0.5 < found <= -CONFIG.min_rate_change


def test_cli_json_and_errors() -> None:
    runner = CliRunner()
    args = ["power", "--change", "-0.2", "--probes", "50", "--sims", "40", "--json"]
    result = runner.invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    assert out["mode"] == "power" and 0.5 < out["power"] <= 1
    assert out["within_runs"] == DEFAULT_WITHIN
    result = runner.invoke(cli, ["power", "--baseline-rate", "0.999", "--change", "-0.1"])
    assert result.exit_code == 2 and "impossible" in result.output
    assert runner.invoke(cli, ["power"]).exit_code == 2
