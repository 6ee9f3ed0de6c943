"""driftmon's detector beside Evidently's default data drift detection, on the same windows.

Both see the same simulated hourly runs (the probe-set model of bench/calibration.py):
a baseline of `baseline_runs` runs, then current windows of one run, as a dataframe with
columns passed (categorical), length (numerical) and label (the tracked field, categorical).
  - Evidently: Report([DataDriftPreset()]) with every default (per column: Z-test / chi-square
    / K-S at p < 0.05 for a reference of <= 1,000 rows; Wasserstein / Jensen-Shannon distance
    >= 0.1 above that). It is unpaired and judges each window on its own. An alarm is any
    column drifted; "dataset drift" (>= 50% of columns drifted) is shown too.
  - driftmon: monitor.drift.evaluate with the default DriftConfig, the alarm rule's evidence
    carried over consecutive windows; an alarm is any quality metric DRIFTED.
No change: days of 24 hourly windows; false alarms = alarm onsets, scaled to a 30-day month;
again with the run effects of bench/calibration.py (one shift shared by a run's results).
Change at run 0: detected = the changed column/metric flagged within WITHIN (2) runs
(Evidently gets the same number of windows, each judged on its own).

Evidently is not a driftmon dependency; install it with driftmon in a separate venv for this
bench only (its own pins must not move driftmon's):
    python3 -m venv ev && ev/bin/pip install -e . evidently==0.7.23 'pandas<3'
    ev/bin/python bench/evidently_compare.py [--quick] [--days N] [--sims N]
Writes the table to bench/results/evidently_compare.txt as well.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
import warnings
from pathlib import Path
from typing import Any

os.environ.setdefault("DO_NOT_TRACK", "1")  # Evidently's usage telemetry: off
os.environ.setdefault("ITERATIVE_DO_NOT_TRACK", "1")

import numpy as np
from calibration import REPO, History, shifted
from scipy import stats

from monitor.drift.model import Observation, State
from monitor.drift.power import DEFAULT_WITHIN
from monitor.drift.settings import DriftConfig

try:
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset
except ImportError as exc:
    print(
        f"Evidently is needed for this bench only and is not importable ({exc}).\n"
        "Install it with driftmon in a separate venv:  python3 -m venv ev && "
        "ev/bin/pip install -e . evidently==0.7.23 'pandas<3'",
        file=sys.stderr,
    )
    sys.exit(1)

COLUMN = {"pass": "passed", "category": "label", "length": "length"}
METRIC = {"pass": "pass_rate", "category": "field:label", "length": "length_chars"}
WITHIN = DEFAULT_WITHIN  # runs after a change within which it counts as detected
CHANGES = (("pass", -0.10), ("pass", -0.05), ("category", 0.15), ("length", -0.20))
DEFINITION = DataDefinition(numerical_columns=["length"], categorical_columns=["passed", "label"])


def frame(observations: list[Observation]) -> Any:
    return pd.DataFrame(
        {
            "passed": [o.verdict == "pass" for o in observations],
            "length": [float(o.output_chars or 0) for o in observations],
            "label": [(o.tracked or {}).get("label") for o in observations],
        }
    )


def evidently_flags(reference: list[Observation], current: list[Observation]) -> set[str]:
    """Columns Evidently's default preset calls drifted; "dataset" when >= half of them are."""
    snapshot = Report([DataDriftPreset()]).run(
        Dataset.from_pandas(frame(current), data_definition=DEFINITION),
        Dataset.from_pandas(frame(reference), data_definition=DEFINITION),
    )
    flagged: set[str] = set()
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        value, threshold = float(metric["value"]), float(config["threshold"])
        # p-value methods drift below the threshold; distance methods at or above it.
        drifted = value < threshold if "p_value" in config["method"] else value >= threshold
        if drifted:
            flagged.add(config["column"])
    if len(flagged) * 2 >= len(COLUMN):
        flagged.add("dataset")
    return flagged


def null_day(n: int, k: int, seed: int, config: DriftConfig, jitter: bool) -> tuple[int, int, int]:
    """Alarm onsets over 24 hourly windows: driftmon, Evidently any column, Evidently dataset.
    jitter: the run effects of bench/calibration.py (one shared shift per run, size 1)."""
    history = History(n, k, config, seed, jitter=1.0 if jitter else 0.0)
    onsets = [0, 0, 0]
    previous = [False, False, False]
    for _ in range(24):
        history.run()
        result = history.evaluate()
        flags = evidently_flags(history.baseline, history.last(1))
        now = [bool(result.drifted), bool(flags - {"dataset"}), "dataset" in flags]
        for i in range(3):
            onsets[i] += now[i] and not previous[i]
        previous = now
    return onsets[0], onsets[1], onsets[2]


def change_sim(
    n: int, k: int, kind: str, size: float, seed: int, config: DriftConfig
) -> tuple[bool, bool, bool]:
    history = History(n, k, config, seed, jitter=0.0)
    history.world = shifted(history.world, kind, size, history.rng)
    found = [False, False, False]
    for _ in range(WITHIN):
        history.run()
        result = history.evaluate()
        found[0] |= any(
            v.metric == METRIC[kind] and v.state is State.DRIFTED for v in result.verdicts
        )
        flags = evidently_flags(history.baseline, history.last(1))
        found[1] |= COLUMN[kind] in flags
        found[2] |= "dataset" in flags
    return found[0], found[1], found[2]


def ci(hits: int, total: int) -> str:
    interval = stats.binomtest(hits, total).proportion_ci(method="exact")
    return f"{hits / total:.0%} [{interval.low:.0%}, {interval.high:.0%}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="few days and simulations")
    parser.add_argument("--days", type=int, help="simulated no-change days per size")
    parser.add_argument("--sims", type=int, help="simulations per change")
    parser.add_argument("--out", help="default: bench/results/evidently_compare[_quick].txt")
    args = parser.parse_args()
    days = args.days or (2 if args.quick else 15)
    sims = args.sims or (10 if args.quick else 60)
    config = DriftConfig()
    warnings.filterwarnings("ignore")  # Evidently's own deprecation chatter
    started = time.perf_counter()
    lines = [
        f"$ .venv/bin/python bench/evidently_compare.py {' '.join(sys.argv[1:])}".rstrip(),
        f"Evidently {__import__('evidently').__version__} DataDriftPreset() defaults; "
        f"driftmon DriftConfig() defaults (alpha {config.alpha}, "
        f"{config.runs_between_false_alarms} runs between false alarms, "
        f"baseline {config.baseline_runs} runs)",
        "",
    ]
    header = (
        f"{'scenario':>24} {'probes x samples':>16} {'driftmon':>17} "
        f"{'Evidently (any column)':>23} {'Evidently (dataset)':>20}"
    )
    lines += [
        "False alarms per month, no change (alarm onsets over hourly windows x 30 days)",
        header,
    ]
    for jitter, (n, k) in itertools.product((False, True), ((100, 1), (100, 3))):
        counts = np.array(
            [null_day(n, k, 1000 * n + 10 * k + d, config, jitter) for d in range(days)]
        )
        per_month = counts.sum(axis=0) / days * 30
        name = f"{days} days{', run effects' if jitter else ''}"
        lines.append(
            f"{name:>24} {f'{n} x {k}':>16} {per_month[0]:>17.1f} "
            f"{per_month[1]:>23.1f} {per_month[2]:>20.1f}"
        )
    lines += [
        "",
        f"Detected within {WITHIN} runs of a change (share of {sims} simulations, exact 95% CI)",
        header,
    ]
    for kind, size in CHANGES:
        name = {
            "pass": f"pass rate {size * 100:+.0f} pts",
            "category": f"label share {size * 100:+.0f} pts",
            "length": f"length {size:+.0%}",
        }[kind]
        for n, k in ((100, 1), (100, 3)):
            found = np.array(
                [change_sim(n, k, kind, size, 7 * i + n + k, config) for i in range(sims)]
            )
            hits = found.sum(axis=0)
            lines.append(
                f"{name:>24} {f'{n} x {k}':>16} {ci(int(hits[0]), sims):>17} "
                f"{ci(int(hits[1]), sims):>23} {ci(int(hits[2]), sims):>20}"
            )
    lines.append(f"\n({time.perf_counter() - started:.0f} s)")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(
        args.out or REPO / "bench" / "results" / f"evidently_compare{'_quick' * args.quick}.txt"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)


if __name__ == "__main__":
    main()
