"""Power of the pass-rate test, by simulating the real detector (monitor.drift.evaluate).

The model of a probe set (stated in docs/statistics.md, section "Power"):
  - A share `flaky` of probes is flaky: each has its own pass probability, drawn uniformly in
    [0.2, 0.8] in every simulation.
  - Every other probe is near-deterministic, as probes on a temperature-0 model are: it passes
    with probability 1 - noise ("stable pass") or noise ("stable fail"). The number of stable
    passes is set so the expected pass rate is `baseline_rate`.
  - `other_metrics` unchanged numeric quality metrics share the Benjamini-Hochberg family, as
    length_chars, length_tokens and tracked fields do in production.
  - A change of d points breaks (d < 0) or fixes (d > 0) stable probes outright: |d| * probes
    worth of probability moves, whole probes first and the remainder on one probe. This is how
    a model update behaves at temperature 0: some answers flip, most do not move at all.
The detector sees an automatic baseline of `baseline_runs` runs, then one new current window
of `window_runs` runs per evaluation, with the alarm rule's evidence carried, exactly as the
daemon would, except for the run-to-run variation (see NO_RUN_EFFECTS). Power is the
probability that pass_rate is DRIFTED within `within` evaluations after the change (by
default DEFAULT_WITHIN).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from monitor.drift.model import Carry, Observation, State
from monitor.drift.settings import DriftConfig
from monitor.store.states import ResultVerdict

FLAKY_LOW, FLAKY_HIGH = 0.2, 0.8
DEFAULT_WITHIN = 2  # runs after the change: an alarm on the first or the second
# The model has no run effects, so the daemon's estimate of the run-to-run variation would be
# ~1 (floored at 1): it is left out, which saves baseline_runs tests per simulation and makes
# power slightly optimistic (the estimate exceeds 1 by chance about half the time).
NO_RUN_EFFECTS: dict[str, Any] = {}


@dataclass(frozen=True)
class PassRateModel:
    baseline_rate: float
    flaky: float = 0.0  # share of flaky probes
    noise: float = 0.01  # failure (or pass) probability of a near-deterministic probe
    # Unchanged quality metrics sharing the BH family with pass_rate (length_chars,
    # length_tokens, tracked fields...): each makes a lone pass-rate change need a smaller p.
    other_metrics: int = 0

    def check(self) -> None:
        if not 0 <= self.flaky <= 1 or not 0 <= self.noise < 0.5 or self.other_metrics < 0:
            raise ValueError("flaky must be in [0, 1], noise in [0, 0.5), other_metrics >= 0")
        low = self.flaky * 0.5 + (1 - self.flaky) * self.noise
        if not low <= self.baseline_rate <= 1 - low:
            raise ValueError(
                f"a baseline rate of {self.baseline_rate:.2f} is impossible with {self.flaky:.0%} "
                f"flaky probes and noise {self.noise}: it must be in [{low:.3f}, {1 - low:.3f}]"
            )


def composition(model: PassRateModel, probes: int) -> tuple[int, int]:
    """(flaky probes, stable-pass probes): the stable passes make the expected rate
    baseline_rate, rounded to whole probes; the rest are stable fails."""
    model.check()
    n_flaky = round(model.flaky * probes)
    hi, lo = 1 - model.noise, model.noise
    flaky_share = n_flaky / probes
    stable_share = (model.baseline_rate - flaky_share * 0.5 - lo * (1 - flaky_share)) / (hi - lo)
    return n_flaky, min(probes - n_flaky, max(0, round(stable_share * probes)))


def largest_change(model: PassRateModel, probes: int, direction: int) -> float:
    """The largest |change| the model allows: every stable pass broken (or fail fixed)."""
    n_flaky, n_pass = composition(model, probes)
    movable = n_pass if direction < 0 else probes - n_flaky - n_pass
    return movable * (1 - 2 * model.noise) / probes


def probe_rates(
    model: PassRateModel, probes: int, change: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Per-probe pass probabilities before and after the change."""
    n_flaky, n_pass = composition(model, probes)
    hi, lo = 1 - model.noise, model.noise
    before = np.full(probes, lo)
    before[:n_pass] = hi
    before[probes - n_flaky :] = rng.uniform(FLAKY_LOW, FLAKY_HIGH, n_flaky)
    after = before.copy()
    amount = abs(change) * probes  # probability mass to move
    # Which stable probes can move: passing ones for a drop, failing ones for a rise.
    movable = np.arange(n_pass) if change < 0 else np.arange(n_pass, probes - n_flaky)
    if amount > len(movable) * (hi - lo) + 1e-9:
        raise ValueError(
            f"a change of {change:+.2f} needs more stable probes than the model has "
            f"({len(movable)} of {probes})"
        )
    whole = min(len(movable), math.floor(amount / (hi - lo) + 1e-9))
    step = -(hi - lo) if change < 0 else hi - lo
    after[movable[:whole]] += step
    rest = amount - whole * (hi - lo)
    if rest > 1e-9:
        after[movable[whole]] += math.copysign(rest, step)
    return before, after


def _window(
    rates: np.ndarray, others: np.ndarray, runs: range, samples: int, rng: np.random.Generator
) -> list[Observation]:
    """`samples` results per probe in each of `runs` (their ids); others: (metrics, probes)
    log-medians of unchanged numeric fields, each result drawn with a 10% log-spread
    (continuous values: their null p-values are uniform, the full cost of one more metric)."""
    draws = len(runs) * samples
    passed = rng.random((draws, len(rates))) < rates
    values = np.exp(rng.normal(others, 0.1, (draws, *others.shape)))
    return [
        Observation(
            probe_version_id=p,
            verdict=ResultVerdict.PASS if passed[d, p] else ResultVerdict.FAIL,
            tracked={f"other{i}": float(values[d, i, p]) for i in range(len(others))} or None,
            run_id=runs[d // samples],
        )
        for d in range(draws)
        for p in range(len(rates))
    ]


@dataclass(frozen=True)
class PowerResult:
    power: float  # share of simulations DRIFTED on pass_rate within `within` evaluations
    median_delay: float | None  # in evaluations, over all simulations (misses count as never)
    sims: int
    within: int
    stderr: float  # Monte Carlo standard error of `power`


def _delays(
    model: PassRateModel,
    change: float,
    probes: int,
    samples: int,
    config: DriftConfig,
    horizon: int,
    seed: int,
) -> Iterator[float]:
    """Runs from the change to DRIFTED on pass_rate, one simulation after another (inf: never
    within the horizon)."""
    from monitor.drift.evaluate import evaluate

    rng = np.random.default_rng(seed)
    k, w = config.baseline_runs, config.window_runs
    while True:
        before, after = probe_rates(model, probes, change, rng)
        others = rng.normal(5.0, 1.0, (model.other_metrics, probes))
        baseline = _window(before, others, range(k), samples, rng)
        carried: dict[str, Carry] = {}
        cache: dict[Any, Any] = {}
        delay = math.inf
        for run in range(1, horizon + 1):
            runs = range(k + max(0, run - w), k + run)  # the newest w runs, ids after the baseline
            current = _window(after, others, runs, samples, rng)
            result = evaluate(
                baseline,
                current,
                config,
                previous=carried,
                dispersion=NO_RUN_EFFECTS,
                baseline_cache=cache,
            )
            carried = {v.metric: v.carry for v in result.verdicts}
            verdict = next((v for v in result.verdicts if v.metric == "pass_rate"), None)
            if verdict is not None and verdict.state is State.DRIFTED:
                delay = run
                break
        yield delay


def simulate_power(
    model: PassRateModel,
    change: float,
    probes: int,
    samples: int,
    config: DriftConfig,
    *,
    within: int | None = None,
    sims: int = 200,
    seed: int = 0,
) -> PowerResult:
    """Simulate the detector `sims` times; the same seed gives the same answer."""
    horizon = within or max(DEFAULT_WITHIN, config.persistence)
    stream = _delays(model, change, probes, samples, config, horizon, seed)
    delays = [next(stream) for _ in range(sims)]
    power = sum(d <= horizon for d in delays) / sims
    median = float(np.median(delays))
    return PowerResult(
        power=power,
        median_delay=median if math.isfinite(median) else None,
        sims=sims,
        within=horizon,
        stderr=math.sqrt(max(power * (1 - power), 1 / sims) / sims),
    )


def _reaches(
    target: float,
    model: PassRateModel,
    change: float,
    probes: int,
    samples: int,
    config: DriftConfig,
    horizon: int,
    sims: int,
    seed: int,
) -> bool:
    """simulate_power(...).power >= target, stopping as soon as the answer is certain: the same
    answer as the full run (same seed, same simulations), usually at a fraction of the cost."""
    need = math.ceil(target * sims - 1e-9)
    hits = 0
    for done, delay in enumerate(_delays(model, change, probes, samples, config, horizon, seed)):
        hits += delay <= horizon
        if hits >= need:
            return True
        if hits + sims - done - 1 < need:
            return False
    raise AssertionError("unreachable: _delays never ends")


def required_probes(
    model: PassRateModel,
    change: float,
    samples: int,
    config: DriftConfig,
    *,
    target: float = 0.8,
    within: int | None = None,
    sims: int = 200,
    seed: int = 0,
    max_probes: int = 2000,
) -> int | None:
    """Fewest probes whose simulated power reaches `target`; None beyond max_probes.

    Every candidate uses the same seed (common random numbers), so the power curve is smooth
    in the probe count. The search doubles from the smallest testable size, then bisects to
    2%: large probe counts are slow to simulate and are tried only when needed.
    """
    horizon = within or max(DEFAULT_WITHIN, config.persistence)

    def ok(n: int) -> bool:
        return _reaches(target, model, change, n, samples, config, horizon, sims, seed)

    # Fewer probes than this cannot be tested at all (minimum sizes): start the search there.
    lo = max(config.min_probes, math.ceil(config.min_samples / (samples * config.window_runs)))
    if lo > max_probes:
        return None
    if ok(lo):
        return lo
    hi = lo
    while True:  # invariant: not ok(lo)
        hi = min(max_probes, hi * 2)
        if ok(hi):
            break
        if hi == max_probes:
            return None
        lo = hi
    while hi - lo > max(1, round(0.02 * lo)):
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return hi


def detectable_change(
    model: PassRateModel,
    probes: int,
    samples: int,
    config: DriftConfig,
    *,
    target: float = 0.8,
    direction: int = -1,
    within: int | None = None,
    sims: int = 200,
    seed: int = 0,
) -> float | None:
    """Smallest |change| (in the given direction) detected with `target` power, to 0.5 point;
    None when even the largest change the model allows is not."""
    horizon = within or max(DEFAULT_WITHIN, config.persistence)
    steps = math.floor(largest_change(model, probes, direction) * 200 + 1e-9)  # half points

    def ok(step: int) -> bool:
        change = direction * step / 200
        return _reaches(target, model, change, probes, samples, config, horizon, sims, seed)

    if steps < 1 or not ok(steps):
        return None
    lo, hi = 0, steps  # invariant: not ok(lo) (no change is never "detected"), ok(hi)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if ok(mid) else (mid, hi)
    return direction * hi / 200
