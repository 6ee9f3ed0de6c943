"""Calibration of the [drift] defaults: false alarms under no change, detection and delay.

Simulates hourly runs of one target against the real detector (monitor.drift.evaluate) with
the default DriftConfig, on synthetic but realistic probe sets (see make_world):
  - no change for a month (720 hourly evaluations), automatic baseline. evaluate() takes no
    identity: the engine records an identity event and attaches it to the same evaluation
    against the same baseline, so weekly identity changes that change nothing give exactly
    this stream. Row 2: an operator accepts a new baseline after each weekly identity change
    (the alarm rule's evidence restarts). Rows 3-5: every run shares a random shift (pass
    logit, log length, label logits), as load or routing might cause, at 0.5, 1 and 2 times
    the size of RUN_LOGIT_SD / RUN_LOG_SD; the baseline's runs estimate its variance.
    A false alarm is the onset of an episode in which any quality metric is DRIFTED.
  - a change at run 0 (pass rate -5/-10/-20 points, one category +15 points, length -20%;
    the 10-point drop and the length change also with run effects x1): detection within 24
    runs and the median delay in runs (misses count as never).
  - text rows (--only text, or with the rest; bench/results/calibration_text.txt): at 100 x 3,
    every result also carries an output text from bench/text_power.py's generator, so the
    text_distribution metric runs under the alarm rule beside the others: a month without
    change (sampling regime with and without run effects x1, low temperature), and a
    quantization-like change (outputs stray from the usual wording 1.5 times as often). The
    "code fences" rows make them text probes whose outputs some probes wrap in Markdown fences
    (see fence_rates), so code_fence_rate runs too: a month without change, with and without
    run effects, and a model that starts fencing the answers of 10% of the probes.
Goals: <= 0.5 false alarms per target per month at every size, with and without run effects;
a 10-point drop at 100 probes x 3 samples detected with median delay 1 run. The table also
goes to bench/results/calibration.txt.

    .venv/bin/python bench/calibration.py [--quick] [--months N] [--sims N] [--set K=V]
        [--only false-alarms|detection|text] [--text-months N]
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import sys
import time
from collections import Counter, deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats
from text_power import TextChange, TextWorld, quantized_texts, text_world

from monitor.drift.evaluate import baseline_dispersion, evaluate
from monitor.drift.model import Carry, Evaluation, Observation
from monitor.drift.power import PassRateModel, probe_rates
from monitor.drift.settings import DriftConfig

REPO = Path(__file__).resolve().parent.parent
RUNS_PER_MONTH = 720  # hourly, 30 days
IDENTITY_EVERY = 168  # weekly
HORIZON = 24  # runs after a change within which it counts as detected
# A 24-run baseline makes every evaluation compare ~25 runs: 200 x 3 costs ~0.3 s, so the big
# size runs for false alarms only, and the detection rows (a new baseline per simulation,
# with its run-to-run variation estimated leave-one-run-out) use the smaller sizes.
SIZES = ((100, 3), (50, 1), (100, 1), (200, 3))
# 200 x 3 costs ~4 minutes a month: it runs for the no-run-effect and the x1 rows, 2 months each.
LARGE = {(200, 3): (2, ("events", "run-effects-1"))}
DETECTION_SIZES = ((50, 1), (100, 1), (100, 3))
CATEGORIES = ("positive", "negative", "neutral")
SHARES = np.array([0.5, 0.3, 0.2])
PASS_MODEL = PassRateModel(baseline_rate=0.85, flaky=0.10, noise=0.01)  # as at temperature 0
CHANGES = (
    ("pass", -0.05, 0.0),
    ("pass", -0.10, 0.0),
    ("pass", -0.20, 0.0),
    ("category", 0.15, 0.0),
    ("length", -0.2, 0.0),
    ("pass", -0.10, 1.0),
    ("length", -0.2, 1.0),
)
# Run effects of size 1: one shift per run of the pass logit (sd 0.2: about 2.5 points at an 85%
# pass rate, as a provider whose valid share swings ~3 points from run to run), of the log length
# (sd 0.03: +-3%) and of the label logits (sd 0.2). Rows scale all three.
RUN_LOGIT_SD, RUN_LOG_SD = 0.2, 0.03
RUN_EFFECT_SIZES = {"run-effects-0.5": 0.5, "run-effects-1": 1.0, "run-effects-2": 2.0}
VARIANTS = {
    "events": "auto/events",
    "accept": "weekly accept",
    "run-effects-0.5": "run effects x0.5",
    "run-effects-1": "run effects x1",
    "run-effects-2": "run effects x2",
}
LABELS = {"pass": "pass rate", "category": "label share", "length": "length"}
TARGET_METRIC = {
    "pass": "pass_rate",
    "category": "field:label",
    "length": "length_chars",
    "text": "text_distribution",
    "fences": "code_fence_rate",
}
# Text rows (--only text, or with the rest): every result also carries an output text from
# bench/text_power.py's generator, at 100 probes x 3 samples; mean per-word divergence of each
# regime as there. The text test compares at most 10 baseline outputs per probe version.
TEXT_REGIMES = {"sampling": 0.10, "low": 0.02}
TEXT_SIZE = (100, 3)
TEXT_NULL = (
    ("text-sampling", "text, sampling"),
    ("text-sampling-run-effects-1", "text, sampling, run effects x1"),
    ("text-low", "text, low temperature"),
    ("text-sampling-fences", "code fences, sampling"),
    ("text-sampling-fences-run-effects-1", "code fences, sampling, run effects x1"),
)
TEXT_CHANGES = (("text-sampling", 1.5), ("text-low", 1.5), ("text-sampling-fences", 0.10))


@dataclass(frozen=True)
class World:
    """Per-probe behaviour: pass probability, length distribution, tracked-label distribution."""

    pass_p: np.ndarray  # (n,)
    log_median: np.ndarray  # (n,) log of the median output length in characters
    log_sigma: np.ndarray  # (n,) run-to-run spread of the log length
    label_p: np.ndarray  # (n, 3) label probabilities


def make_world(n: int, rng: np.random.Generator) -> World:
    pass_p = rng.permutation(probe_rates(PASS_MODEL, n, 0.0, rng)[0])
    # Probes ask for different things: medians spread widely (30 to 3,000 chars); a probe's
    # own length varies a little between runs, more for a few chatty probes.
    log_median = rng.normal(math.log(300), 0.8, n)
    log_sigma = rng.uniform(0.02, 0.25, n)
    dominant = rng.choice(len(CATEGORIES), n, p=SHARES)
    label_p = np.full((n, 3), 0.01)
    label_p[np.arange(n), dominant] = 0.98
    flaky = rng.random(n) < 0.10
    label_p[flaky] = rng.dirichlet(np.ones(3), int(flaky.sum()))
    return World(pass_p, log_median, log_sigma, label_p)


def fence_rates(n: int, rng: np.random.Generator) -> np.ndarray:
    """Per-probe probability of a fenced answer, for the code-fence rows: most probes never
    fence (0.01), a fifth always do (0.99: code, asked for in Markdown), 10% are flaky
    (uniform 0.2-0.8), the mix of near-deterministic and flaky probes of the pass rates."""
    rates = np.where(rng.random(n) < 0.2, 0.99, 0.01)
    flaky = rng.random(n) < 0.10
    rates[flaky] = rng.uniform(0.2, 0.8, int(flaky.sum()))
    return rates


def _take(capacity: np.ndarray, amount: float) -> np.ndarray:
    """How far each probe moves: whole capacities in order, the remainder on the next one."""
    return np.minimum(capacity, np.maximum(0.0, amount - (np.cumsum(capacity) - capacity)))


def shifted(world: World, kind: str, size: float, rng: np.random.Generator) -> World:
    n = len(world.pass_p)
    if kind == "pass":  # break passing probes outright: the flip model of monitor/drift/power
        order = np.argsort(-world.pass_p, kind="stable")
        pass_p = world.pass_p.copy()
        pass_p[order] -= _take(pass_p[order] - 0.01, abs(size) * n)
        return replace(world, pass_p=pass_p)
    if kind == "category":  # probes that answered another label now answer "neutral"
        order = rng.permutation(n)
        label_p = world.label_p.copy()
        move = _take(np.maximum(0.0, 0.98 - label_p[order, 2]), size * n)
        others = label_p[order, :2] / label_p[order, :2].sum(axis=1, keepdims=True)
        label_p[order, :2] -= move[:, None] * others
        label_p[order, 2] += move
        return replace(world, label_p=label_p)
    return replace(world, log_median=world.log_median + math.log1p(size))  # every probe shorter


def run_observations(
    world: World,
    samples: int,
    rng: np.random.Generator,
    run_effect: float = 0.0,
    run_id: int = 0,
    texts: list[list[str]] | None = None,
    text_probes: bool = False,
) -> list[Observation]:
    """One run's results; `texts[probe][sample]`, when given, is each result's output text (the
    text rows), else results carry no text, as in the other rows. text_probes: the results are
    text probes' (format_kind "text"), else JSON probes'."""
    n = len(world.pass_p)
    out: list[Observation] = []
    pass_p, log_median, label_p = world.pass_p, world.log_median, world.label_p
    if run_effect:  # one shift shared by every result of this run (load, batching, routing)
        logit = np.log(pass_p / (1 - pass_p)) + rng.normal(0, RUN_LOGIT_SD * run_effect)
        pass_p = 1 / (1 + np.exp(-logit))
        log_median = log_median + rng.normal(0, RUN_LOG_SD * run_effect)
        label_p = label_p * np.exp(rng.normal(0, RUN_LOGIT_SD * run_effect, 3))
    for sample in range(samples):
        passed = rng.random(n) < pass_p
        chars = np.maximum(1, np.exp(rng.normal(log_median, world.log_sigma))).astype(int)
        tokens = np.maximum(1, (chars / rng.uniform(3.6, 4.4, n)).astype(int))
        cum = label_p.cumsum(axis=1)
        labels = np.minimum(2, (rng.random(n)[:, None] > cum / cum[:, -1:]).sum(axis=1))
        # JSON probes that always parse, finish with "stop" and track one label field (text
        # probes: neither parsed nor a format of JSON, the label as if extracted).
        common: dict[str, Any] = {"format_kind": "clean", "parsed": True, "finish_reason": "stop"}
        if text_probes:
            common |= {"format_kind": "text", "parsed": None}
        out += [
            Observation(
                p,
                "pass" if passed[p] else "fail",
                **common,
                output_chars=int(chars[p]),
                output_tokens=int(tokens[p]),
                tracked={"label": CATEGORIES[labels[p]]},
                run_id=run_id,
                output=None if texts is None else texts[p][sample],
            )
            for p in range(n)
        ]
    return out


class History:
    """The runs a target has made so far: the baseline and current windows are cut from it."""

    def __init__(
        self,
        n: int,
        samples: int,
        config: DriftConfig,
        seed: int,
        jitter: float,
        text_divergence: float | None = None,
        fences: bool = False,
    ):
        self.rng = np.random.default_rng(seed)
        self.world, self.samples, self.jitter = make_world(n, self.rng), samples, jitter
        self.config, self.count = config, 0
        # Text rows: every result also carries an output text from bench/text_power.py's
        # generator, at this mean per-word divergence; `text_change` is the model's.
        self.text: TextWorld | None = None
        self.text_change = TextChange()
        if text_divergence is not None:
            self.text = text_world(n, self.rng, divergence=text_divergence)
        # Code-fence rows: text probes, each answer fenced with the probe's probability.
        self.fence_p = fence_rates(n, self.rng) if fences else None
        keep = max(config.baseline_runs, config.window_runs)
        self.runs: deque[list[Observation]] = deque(maxlen=keep)
        for _ in range(config.baseline_runs):
            self.run()
        self.accept()

    def run(self) -> None:
        self.count += 1
        texts = None
        if self.text is not None:
            texts = quantized_texts(self.text, self.samples, self.rng, self.text_change)
        if texts is not None and self.fence_p is not None:
            texts = self.fenced(texts)
        observations = run_observations(
            self.world,
            self.samples,
            self.rng,
            self.jitter,
            run_id=self.count,
            texts=texts,
            text_probes=self.fence_p is not None,
        )
        self.runs.append(observations)

    def fenced(self, texts: list[list[str]]) -> list[list[str]]:
        """The texts, each wrapped in a fence with its probe's probability; with run effects,
        one shift of every probe's fence logit per run, as for the pass rates."""
        assert self.fence_p is not None
        rates = np.clip(self.fence_p, 1e-6, 1 - 1e-6)
        if self.jitter:
            logit = np.log(rates / (1 - rates)) + self.rng.normal(0, RUN_LOGIT_SD * self.jitter)
            rates = 1 / (1 + np.exp(-logit))
        wrap = self.rng.random((len(texts), self.samples)) < rates[:, None]
        return [
            [f"```\n{t}\n```" if wrap[p, k] else t for k, t in enumerate(row)]
            for p, row in enumerate(texts)
        ]

    def accept(self) -> None:
        """The newest baseline_runs runs become the baseline; its dispersion is computed once
        (it depends on the baseline alone, as in the daemon, where each evaluation recomputes
        it at the cost of baseline_runs more tests)."""
        self.baseline = self.last(self.config.baseline_runs)
        versions = sorted({o.probe_version_id for o in self.baseline})
        self.dispersion = baseline_dispersion(self.baseline, versions, self.config)
        self.carried: dict[str, Carry] = {}
        self.cache: dict[Any, Any] = {}

    def evaluate(self) -> Evaluation:
        result = evaluate(
            self.baseline,
            self.last(self.config.window_runs),
            self.config,
            previous=self.carried,
            dispersion=self.dispersion,
            baseline_cache=self.cache,
        )
        self.carried = {v.metric: v.carry for v in result.verdicts}
        return result

    def last(self, count: int) -> list[Observation]:
        return [o for run in list(self.runs)[-count:] for o in run]


def null_month(
    task: tuple[int, int, str, int, DriftConfig],
) -> tuple[int, list[str], list[dict[str, float]]]:
    """One month without change: the alarms raised, the metrics that raised them, and each
    evaluation's quality p-values (the metrics the alarm rule counted), for replaying the
    rule at other thresholds (bench/cusum_replay.py). A variant "text-<regime>[-<run
    effects>]" adds output texts (TEXT_REGIMES) to every result."""
    n, samples, variant, seed, config = task
    divergence, fences = None, False
    if variant.startswith("text-"):
        regime, _, variant = variant.removeprefix("text-").partition("-")
        divergence = TEXT_REGIMES[regime]
        fences = variant.startswith("fences")
        variant = variant.removeprefix("fences").removeprefix("-")
    jitter = RUN_EFFECT_SIZES.get(variant, 0.0)
    history = History(
        n, samples, config, seed, jitter=jitter, text_divergence=divergence, fences=fences
    )
    alarms, was_drifted, metrics = 0, False, []
    trace: list[dict[str, float]] = []
    for run in range(RUNS_PER_MONTH):
        weekly = run > IDENTITY_EVERY and run % IDENTITY_EVERY == config.baseline_runs
        if variant == "accept" and weekly:  # `baseline accept` of the runs since the event
            history.accept()
            trace.append({})  # an empty evaluation marks the restart
        history.run()
        result = history.evaluate()
        trace.append(
            {
                v.metric: float(v.p_value)
                for v in result.verdicts
                if v.family == "quality" and v.threshold is not None and v.p_value is not None
            }
        )
        if result.drifted and not was_drifted:
            alarms += 1
            metrics.extend(v.metric for v in result.drifted)
        was_drifted = bool(result.drifted)
    return alarms, metrics, trace


def detection(task: tuple[int, int, str, float, float, int, DriftConfig]) -> float:
    """Runs from a change to the alarm on its metric; inf when not within HORIZON runs. Kind
    "text-<regime>": outputs stray from the usual wording `size` times as often (a
    quantization-like change, bench/text_power.py), every other behaviour the same. Kind
    "text-<regime>-fences": text probes with code fences (fence_rates), and `size` of the
    probes (as a share of all) that never fenced start fencing every answer."""
    n, samples, kind, size, jitter, seed, config = task
    if kind.endswith("-fences"):
        regime = kind.removeprefix("text-").removesuffix("-fences")
        history = History(
            n,
            samples,
            config,
            seed,
            jitter=jitter,
            text_divergence=TEXT_REGIMES[regime],
            fences=True,
        )
        assert history.fence_p is not None
        never = np.flatnonzero(history.fence_p < 0.02)
        history.fence_p[never[: round(size * n)]] = 0.99
        kind = "fences"
    elif kind.startswith("text-"):
        history = History(
            n, samples, config, seed, jitter=jitter, text_divergence=TEXT_REGIMES[kind[5:]]
        )
        history.text_change = TextChange(divergence=size)
        kind = "text"
    else:
        history = History(n, samples, config, seed, jitter=jitter)
        history.world = shifted(history.world, kind, size, history.rng)
    for run in range(1, HORIZON + 1):
        history.run()
        result = history.evaluate()
        if any(v.metric == TARGET_METRIC[kind] and v.drifted for v in result.verdicts):
            return float(run)
    return math.inf


def poisson_ci(count: int, exposure: float) -> tuple[float, float]:
    """Exact (Garwood) 95% interval for a Poisson rate."""
    low = stats.chi2.ppf(0.025, 2 * count) / 2 if count else 0.0
    return low / exposure, stats.chi2.ppf(0.975, 2 * count + 2) / 2 / exposure


def seed_of(*key: int) -> int:
    return int(np.random.SeedSequence(list(key)).generate_state(1)[0] >> 2)


def emit(lines: list[str], text: str) -> None:
    lines.append(text.rstrip())
    print(text, file=sys.stderr, flush=True)  # progress: a full run takes a while


def false_alarms(
    pool: Any, config: DriftConfig, months: int, sizes: Any, trace_dir: Path | None = None
) -> list[str]:
    lines = [
        "False alarms per target per month, no behaviour change (hourly runs, 720/month)",
        f"{'probes x samples':>17} {'variant':>17} {'months':>6} {'alarms':>6} "
        f"{'per month':>9} {'95% CI':>15}  alarms by metric",
    ]
    total = exposure = 0
    for n, k in sizes:
        cap, only = LARGE.get((n, k), (months, tuple(VARIANTS)))
        for variant, label in VARIANTS.items():
            if variant not in only:
                continue
            rows = min(months, cap)
            tasks = [
                (n, k, variant, seed_of(1, n, k, list(VARIANTS).index(variant), m), config)
                for m in range(rows)
            ]
            results = list(pool.map(null_month, tasks))
            if trace_dir is not None:
                name = f"{n}x{k}-{variant}.pickle"
                (trace_dir / name).write_bytes(pickle.dumps([t for *_, t in results]))
            count = sum(a for a, *_ in results)
            total, exposure = total + count, exposure + rows
            low, high = poisson_ci(count, rows)
            by_metric = dict(Counter(m for _, ms, _ in results for m in ms))
            emit(
                lines,
                f"{f'{n} x {k}':>17} {label:>17} {rows:>6} {count:>6} "
                f"{count / rows:>9.2f} {f'[{low:.2f}, {high:.2f}]':>15}  "
                f"{by_metric or ''}",
            )
    low, high = poisson_ci(total, exposure)
    emit(
        lines,
        f"{'all rows':>17} {'':>17} {exposure:>6} {total:>6} {total / exposure:>9.2f} "
        f"{f'[{low:.2f}, {high:.2f}]':>15}",
    )
    return lines


def detections(pool: Any, config: DriftConfig, sims: int, sizes: Any) -> list[str]:
    lines = [
        f"Detection within {HORIZON} runs of a change (baseline {config.baseline_runs} runs "
        "before it); delay = runs until DRIFTED, median over all simulations",
        f"{'change':>22} {'probes x samples':>17} {'sims':>5} {'detected':>8} "
        f"{'95% CI':>14} {'median delay':>12}",
    ]
    for kind, size, jitter in CHANGES:
        what = f"{LABELS[kind]} {size * 100:+.0f}{'%' if kind == 'length' else ' pts'}"
        what += f", run effects x{jitter:g}" if jitter else ""
        for n, k in sizes:
            key = (2, n, k, round(abs(size) * 100), "pcl".index(kind[0]), round(jitter * 10))
            tasks = [(n, k, kind, size, jitter, seed_of(*key, i), config) for i in range(sims)]
            delays = np.array(list(pool.map(detection, tasks, chunksize=4)))
            hits = int(np.isfinite(delays).sum())
            ci = stats.binomtest(hits, sims).proportion_ci(method="exact")
            median = float(np.median(delays))
            shown = f"{median:.0f}" if math.isfinite(median) else f">{HORIZON}"
            emit(
                lines,
                f"{what:>22} {f'{n} x {k}':>17} {sims:>5} {hits / sims:>8.0%} "
                f"{f'[{ci.low:.0%}, {ci.high:.0%}]':>14} {shown:>12}",
            )
    return lines


def text_rows(pool: Any, config: DriftConfig, months: int, sims: int) -> list[str]:
    """False alarms and detection with output texts on every result (TEXT_NULL, TEXT_CHANGES):
    the text_distribution and code_fence_rate metrics under the alarm rule, beside every other
    metric."""
    n, k = TEXT_SIZE
    lines = [
        f"Text rows: {n} x {k}, every result with an output text (bench/text_power.py's "
        "generator; sampling: 1 word in 10 strays, low temperature: 1 in 50; code fences: text "
        "probes, 20% fence every answer, 10% at random (20-80%), the rest never)",
        f"{'variant':>34} {'months':>6} {'alarms':>6} {'per month':>9} {'95% CI':>15}  "
        "alarms by metric",
    ]
    for index, (variant, label) in enumerate(TEXT_NULL):
        tasks = [(n, k, variant, seed_of(3, n, k, index, m), config) for m in range(months)]
        results = list(pool.map(null_month, tasks))
        count = sum(a for a, *_ in results)
        low, high = poisson_ci(count, months)
        by_metric = dict(Counter(m for _, ms, _ in results for m in ms))
        emit(
            lines,
            f"{label:>34} {months:>6} {count:>6} {count / months:>9.2f} "
            f"{f'[{low:.2f}, {high:.2f}]':>15}  {by_metric or ''}",
        )
    lines.append(f"{'change':>34} {'sims':>6} {'detected':>8} {'95% CI':>14} {'median delay':>12}")
    for index, (kind, size) in enumerate(TEXT_CHANGES):
        tasks = [(n, k, kind, size, 0.0, seed_of(4, index, i), config) for i in range(sims)]
        delays = np.array(list(pool.map(detection, tasks)))
        hits = int(np.isfinite(delays).sum())
        ci = stats.binomtest(hits, sims).proportion_ci(method="exact")
        median = float(np.median(delays))
        shown = f"{median:.0f}" if math.isfinite(median) else f">{HORIZON}"
        regime = "low temperature" if kind.startswith("text-low") else "sampling"
        what = (
            f"fences +{size:.0%} of probes, {regime}"
            if kind.endswith("-fences")
            else f"stray x{size:g}, {regime}"
        )
        emit(
            lines,
            f"{what:>34} {sims:>6} {hits / sims:>8.0%} {f'[{ci.low:.0%}, {ci.high:.0%}]':>14} "
            f"{shown:>12}",
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few months and simulations")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--months", type=int, help="simulated months per no-change row")
    parser.add_argument("--sims", type=int, help="simulations per detection row")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="calibrate another DriftConfig, e.g. --set min_wasserstein=1",
    )
    parser.add_argument("--only", choices=["false-alarms", "detection", "text"])
    parser.add_argument(
        "--text-months", type=int, help="simulated months per text no-change row (default 4)"
    )
    parser.add_argument("--out", help="default: bench/results/calibration[_quick].txt")
    parser.add_argument("--trace", help="directory for the no-change p-value streams")
    args = parser.parse_args(sys.argv[1:])
    months = args.months or (1 if args.quick else 4)
    sims = args.sims or (10 if args.quick else 40)
    sizes = ((50, 1), (100, 3)) if args.quick else SIZES
    detection_sizes = ((50, 1), (100, 3)) if args.quick else DETECTION_SIZES
    config = DriftConfig.model_validate(dict(kv.split("=", 1) for kv in args.set))
    started = time.perf_counter()
    lines = [
        f"$ .venv/bin/python bench/calibration.py {' '.join(sys.argv[1:])}".rstrip(),
        "DriftConfig: " + ", ".join(f"{k}={v}" for k, v in config.model_dump().items()),
        f"probe model: base pass rate {PASS_MODEL.baseline_rate}, {PASS_MODEL.flaky:.0%} "
        f"flaky, noise {PASS_MODEL.noise}; run effects: pass-logit sd {RUN_LOGIT_SD}, "
        f"log-length sd {RUN_LOG_SD}",
        "",
    ]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        if args.only not in ("detection", "text"):
            trace_dir = Path(args.trace) if args.trace else None
            if trace_dir is not None:
                trace_dir.mkdir(parents=True, exist_ok=True)
            lines += [*false_alarms(pool, config, months, sizes, trace_dir), ""]
        if args.only not in ("false-alarms", "text"):
            lines += [*detections(pool, config, sims, detection_sizes), ""]
        if args.only in (None, "text"):
            text_months = args.text_months or (1 if args.quick else 4)
            lines += [*text_rows(pool, config, text_months, sims), ""]
    lines.append(f"({time.perf_counter() - started:.0f} s, {args.workers} workers)")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out or REPO / "bench" / "results" / f"calibration{'_quick' * args.quick}.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
