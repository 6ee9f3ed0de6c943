"""Replay the alarm rule on recorded no-change p-values at other settings.

bench/calibration.py --trace DIR records, for every simulated no-change month, each
evaluation's quality p-values (after the run-to-run correction). This script runs the CUSUM of
monitor.drift.sequential over them for a grid of `cusum_reference` and
`runs_between_false_alarms` values, and counts alarm onsets per month (any metric at or above
its threshold). Effect floors are ignored here, so the counts are an upper bound on what the
detector would raise: a floor can only suppress an alarm.

    .venv/bin/python bench/cusum_replay.py DIR [--out FILE]
"""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

from monitor.drift.sequential import cusum, threshold

REFERENCES = (0.5, 1.0, 1.5, 2.0)
RUN_LENGTHS = (1000, 2000, 5000, 10000, 20000)


def month_alarms(trace: list[dict[str, float]], reference: float, run_length: int) -> int:
    """Alarm onsets of one recorded month; an empty evaluation restarts every statistic."""
    evidence: dict[str, float] = {}
    onsets, alarming = 0, False
    for pvalues in trace:
        if not pvalues:
            evidence, alarming = {}, False
            continue
        limit = threshold(reference, float(run_length * len(pvalues)))
        now = False
        for metric, p in pvalues.items():
            evidence[metric] = cusum(evidence.get(metric, 0.0), p, reference, limit)
            now |= evidence[metric] >= limit
        onsets += now and not alarming
        alarming = now
    return onsets


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("trace", help="the --trace directory of bench/calibration.py")
    parser.add_argument("--out", help="also write the table here")
    args = parser.parse_args()
    lines = [
        f"$ .venv/bin/python bench/cusum_replay.py {' '.join(sys.argv[1:])}",
        "False alarms per month (upper bound: effect floors ignored), by "
        "cusum_reference k and runs_between_false_alarms",
        f"{'row':>26} {'months':>6}  "
        + "  ".join(f"k={k:<3} " + " ".join(f"{a:>6}" for a in RUN_LENGTHS) for k in REFERENCES),
    ]
    for path in sorted(Path(args.trace).glob("*.pickle")):
        months = pickle.loads(path.read_bytes())
        cells = []
        for k in REFERENCES:
            rates = [sum(month_alarms(m, k, a) for m in months) / len(months) for a in RUN_LENGTHS]
            cells.append("      " + " ".join(f"{r:>6.2f}" for r in rates))
        lines.append(f"{path.stem:>26} {len(months):>6}  " + "  ".join(cells))
        print(lines[-1], file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
