"""The LLMDrift backtest table of docs/statistics.md: the real detector on real March -> June
2023 outputs of GPT-4 and GPT-3.5, five tasks, windows of 20 random probes.

Each row is `driftmon backtest` on one task and model pair (seed 0, 100 random 20-probe
samples, the window evaluated 2 and 3 times); `flagged` is the share of samples in which the
metric is DRIFTED. The data (github.com/lchen001/LLMDrift, `generation/`) is not in this
repository: it is read from DRIFTMON_LLMDRIFT or ../shared/datasets/llmdrift/generation.
Output also goes to bench/results/llmdrift_backtest.txt.

    .venv/bin/python bench/llmdrift_backtest.py [--repeats N] [--probes N]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from monitor.drift.backtest import (
    BacktestReport,
    make_scorer,
    pair_records,
    read_rows,
    run_backtest,
)
from monitor.drift.settings import DriftConfig

REPO = Path(__file__).resolve().parent.parent
DATA = Path(
    os.environ.get("DRIFTMON_LLMDRIFT")
    or REPO.parent / "shared" / "datasets" / "llmdrift" / "generation"
)
TASKS = (
    ("prime", "PRIME_FULL_EVAL.csv"),
    ("happy", "COUNTAHAPPYNUMBER_EVAL.csv"),
    ("opinion", "OPINIONQA_EVAL.csv"),
    ("code", "LEETCODE_EASY_EVAL.csv"),
    ("sensitive", "SENSITIVEQ_EVAL.csv"),
)
MODELS = (
    ("GPT-4", "openaichat/gpt-4-0314", "openaichat/gpt-4-0613"),
    ("GPT-3.5", "openaichat/gpt-3.5-turbo-0301", "openaichat/gpt-3.5-turbo-0613"),
)
COLUMNS = (
    "task",
    "model",
    "pass rate (seed-0 window)",
    "pass_rate state, p_adj (2 runs)",
    "pass_rate flagged",
    "code fences (seed 0)",
    "code_fence_rate flagged",
    "median chars (seed 0)",
    "length_chars state",
    "length_chars flagged",
    "length_tokens flagged",
    "any quality metric flagged, 2 runs",
    "3 runs",
)


def _pct(value: float) -> str:
    return f"{round(value * 100)}%"


def _p(value: float | None) -> str:
    return "–" if value is None else f"{value:.2g}"


def row(task: str, model: str, two: BacktestReport, three: BacktestReport) -> str:
    by_metric = {r.metric: r for r in two.rows}
    passed, fences = by_metric["pass_rate"], by_metric["code_fence_rate"]
    chars, tokens = by_metric["length_chars"], by_metric["length_tokens"]
    cells = (
        task,
        model,
        f"{_pct(passed.baseline_value)} → {_pct(passed.current_value)}",
        f"{passed.state}, {_p(passed.p_adjusted)}",
        _pct(passed.flagged),
        f"{_pct(fences.baseline_value)} → {_pct(fences.current_value)}",
        _pct(fences.flagged),
        f"{chars.baseline_value:g} → {chars.current_value:g}",
        chars.state,
        _pct(chars.flagged),
        _pct(tokens.flagged),
        _pct(two.any_flagged),
        _pct(three.any_flagged),
    )
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=100, help="random probe samples per row")
    parser.add_argument("--probes", type=int, default=20, help="probes per window")
    parser.add_argument("--out", help="default: bench/results/llmdrift_backtest.txt")
    args = parser.parse_args()
    if not DATA.is_dir():
        sys.exit(f"LLMDrift data not found at {DATA} (set DRIFTMON_LLMDRIFT)")
    started = time.monotonic()
    config = DriftConfig()
    lines = [
        f"$ .venv/bin/python bench/llmdrift_backtest.py --repeats {args.repeats} "
        f"--probes {args.probes}",
        f"{args.probes} probes per window, {args.repeats} random samples per row, seed 0, "
        "default [drift] settings",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for task, name in TASKS:
        rows = read_rows(DATA / name)
        scorer = make_scorer(task, None, None)[1]
        for label, old, new in MODELS:
            pairs = pair_records(rows, scorer, old, new)
            two, three = (
                run_backtest(
                    pairs, config, probes=args.probes, repeats=args.repeats, seed=0, runs=runs
                )
                for runs in (2, 3)
            )
            lines.append(row(task, label, two, three))
            print(lines[-1], file=sys.stderr, flush=True)
    lines += ["", f"({time.monotonic() - started:.0f} s)"]
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out or REPO / "bench" / "results" / "llmdrift_backtest.txt")
    out.write_text(text)


if __name__ == "__main__":
    main()
