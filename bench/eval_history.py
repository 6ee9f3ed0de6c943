"""Drift evaluation time as a target's history grows.

The engine evaluates each run against a fixed-size baseline and window, reads the previous
evaluation's verdicts for the alarm rule's evidence, and computes the baseline's run-to-run
variation once (stored with the baseline). So the time per evaluation should not grow with the
number of runs stored. This bench stores synthetic runs of one target (100 probes x 3 samples,
results written as the runner writes them, text outputs included) in a SQLite file, and times
`evaluate_run` (in process, the real statistics) for the newest run at growing history sizes,
with the default [drift] settings (24 baseline runs).

    .venv/bin/python bench/eval_history.py [--probes N] [--samples N] [--sizes 30,100,300,1000]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert, update
from sqlmodel import col

from monitor.drift.engine import evaluate_run
from monitor.drift.settings import DriftConfig
from monitor.store.db import make_engine, session_scope
from monitor.store.migrate import upgrade
from monitor.store.models import Result, Run, utcnow
from monitor.store.writes import ensure_identity, ensure_probe_versions, ensure_target

REPO = Path(__file__).resolve().parent.parent
WORDS = [
    "the",
    "total",
    "is",
    "due",
    "on",
    "the",
    "first",
    "of",
    "the",
    "month",
    "and",
    "paid",
    "in",
    "full",
    "by",
    "card",
]


def store_run(
    engine: Any, target: int, versions: list[int], samples: int, rng: random.Random, identity: int
) -> int:
    rows: list[dict[str, Any]] = []
    with session_scope(engine) as s:
        run = Run(
            target_id=target,
            probe_set="bench",
            status="complete",
            samples=samples,
            planned=len(versions) * samples,
        )
        s.add(run)
        s.flush()
        assert run.id is not None
        for pv in versions:
            for k in range(samples):
                ok = rng.random() > 0.1
                text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30)))
                rows.append(
                    {
                        "run_id": run.id,
                        "target_id": target,
                        "probe_version_id": pv,
                        "sample_index": k,
                        "created_at": utcnow(),
                        "identity_id": identity,
                        "verdict": "pass" if ok else "fail",
                        "format_kind": "text",
                        "refusal": False,
                        "finish_reason": "stop",
                        "output": text,
                        "output_chars": len(text),
                        "output_tokens": len(text) // 4,
                        "latency_ms": rng.gauss(300, 30),
                    }
                )
        s.execute(insert(Result), rows)
        passed = sum(r["verdict"] == "pass" for r in rows)
        s.execute(
            update(Run)
            .where(col(Run.id) == run.id)
            .values(
                passed=passed, failed=len(rows) - passed, identity_id=identity, finished_at=utcnow()
            )
        )
        return run.id


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--probes", type=int, default=100)
    parser.add_argument("--samples", type=int, default=3)
    parser.add_argument("--sizes", default="30,100,300,1000", help="history sizes to time at")
    args = parser.parse_args()
    sizes = sorted(int(x) for x in args.sizes.split(","))
    config = DriftConfig()
    rng = random.Random(0)
    lines = [
        f"$ .venv/bin/python bench/eval_history.py {' '.join(sys.argv[1:])}".rstrip(),
        f"{args.probes} probes x {args.samples} samples per run, SQLite, default [drift] "
        f"(baseline_runs {config.baseline_runs}); seconds per evaluate_run of the newest run",
        f"{'runs stored':>12} {'results stored':>15} {'evaluation s':>13}  note",
    ]
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{folder}/bench.db")
        upgrade(engine)
        target = ensure_target(engine, name="bench", kind="openai", model="m", base_url=None)
        ids = ensure_probe_versions(
            engine, [("bench", f"p{i:03d}", "v1", {"i": i}) for i in range(args.probes)]
        )
        versions = sorted(ids.values())
        identity = ensure_identity(engine, target, "m", "fp", utcnow())
        stored = 0
        for size in sizes:
            while stored < size:
                run_id = store_run(engine, target, versions, args.samples, rng, identity)
                stored += 1
                if stored <= config.baseline_runs + 1 or stored == size - 1:
                    first = time.perf_counter()
                    evaluate_run(engine, run_id, config)  # builds the baseline, then evaluates
                    took = time.perf_counter() - first
                    if stored == config.baseline_runs + 1:
                        lines.append(
                            f"{stored:>12} {stored * args.probes * args.samples:>15} "
                            f"{took:>13.2f}  first evaluation: the run-to-run variation is "
                            "computed and stored with the baseline"
                        )
                        print(lines[-1], file=sys.stderr, flush=True)
            started = time.perf_counter()
            record = evaluate_run(engine, run_id, config)
            took = time.perf_counter() - started
            assert record is not None and record.status == "evaluated"
            lines.append(f"{stored:>12} {stored * args.probes * args.samples:>15} {took:>13.2f}")
            print(lines[-1], file=sys.stderr, flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    (REPO / "bench" / "results" / "eval_history.txt").write_text(text)


if __name__ == "__main__":
    main()
