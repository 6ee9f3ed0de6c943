"""Soak: `driftmon serve` for thousands of short runs; is its memory and descriptor use flat?

Starts the simulated provider in its own process and a real `driftmon serve` on a fresh SQLite
database, with TARGETS targets that each run a 12-probe set every second (so every run is
stored, evaluated for drift with the real statistics, and checked for alerts). Every SAMPLE
seconds it reads the daemon's resident memory (VmRSS in /proc/PID/status) and its open file
descriptors (/proc/PID/fd), and counts the runs in the database. Linux only.

The daemon runs each drift evaluation in a short-lived child process (see
monitor/daemon/stats_worker.py); their combined RSS is polled every 0.2 s and its peak reported
beside the daemon's own.

Verdict: flat when the least-squares trend of RSS against runs, after the first quarter of
samples (warm-up: imports, caches, the first evaluations), adds up to at most 2 MB over the
rest of the soak, the median descriptor count of the last quarter is within 5 of the second
quarter's, and the peak RSS is under 150 MB.

    .venv/bin/python bench/soak.py [--minutes 15] [--targets 6] [--sample 10]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))

from replay import start_simulator  # noqa: E402  (bench/replay.py, beside this file)

PROBES = 'set: soak\ndefaults:\n  expect: [{ regex: "\\\\w" }]\nprobes:\n' + "".join(
    f'  - {{ id: p{i:02d}, prompt: "Name a colour, case {i}." }}\n' for i in range(12)
)
LIMIT_MB = 150.0
FLAT_MB = 2.0  # fitted RSS growth after warm-up that still counts as noise


def write_project(folder: Path, base_url: str, targets: int) -> Path:
    (folder / "probes").mkdir()
    (folder / "probes" / "soak.yaml").write_text(PROBES, encoding="utf-8")
    config = [
        '[storage]\nurl = "sqlite:///soak.db"\n[probes]\npaths = ["probes"]\n'
        '[defaults]\nsamples = 1\nevery = "1s"\ntimeout = "10s"\nretries = 0\n'
        '[server]\nlisten = "127.0.0.1:0"\n'
    ]
    for i in range(targets):
        config.append(
            f'[[targets]]\nname = "sim-{i}"\nkind = "openai"\nmodel = "gpt-4o"\n'
            f'base_url = "{base_url}/v1"\n'
            'api_key = { env = "SOAK_KEY" }\n'
        )
    path = folder / "driftmon.toml"
    path.write_text("".join(config), encoding="utf-8")
    return path


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def children_rss_mb(pid: int) -> float:
    """Total RSS of the daemon's child processes (its short-lived statistics workers)."""
    total = 0.0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                total += rss_mb(int(entry))
        except (OSError, ValueError, RuntimeError):
            continue  # it exited while we looked
    return total


def runs_done(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(
                conn.execute("SELECT count(*) FROM run WHERE status = 'complete'").fetchone()[0]
            )
    except sqlite3.OperationalError:
        return 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--targets", type=int, default=6)
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between samples")
    args = parser.parse_args()

    sim, url = start_simulator()
    folder = Path(tempfile.mkdtemp(prefix="driftmon-soak-"))
    config = write_project(folder, url, args.targets)
    log = (folder / "serve.log").open("w")
    daemon = subprocess.Popen(
        [sys.executable, "-m", "monitor", "--config", str(config), "serve"],
        env={**os.environ, "SOAK_KEY": "not-a-secret"},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    samples: list[tuple[float, int, float, int]] = []  # (seconds, runs, rss MB, fds)
    peak_children = 0.0  # statistics workers live about a second: polled every 0.2 s
    print(
        f"soak: {args.targets} targets x 12 probes every 1 s for {args.minutes:g} min "
        f"(daemon pid {daemon.pid}, folder {folder})"
    )
    print(f"{'minute':>7} {'runs':>7} {'runs/s':>7} {'RSS MB':>7} {'fds':>5} {'workers MB':>10}")
    t0 = time.monotonic()
    try:
        while (elapsed := time.monotonic() - t0) < args.minutes * 60:
            window_peak, until = 0.0, time.monotonic() + args.sample
            while time.monotonic() < until:
                window_peak = max(window_peak, children_rss_mb(daemon.pid))
                time.sleep(0.2)
            peak_children = max(peak_children, window_peak)
            if daemon.poll() is not None:
                raise SystemExit(f"the daemon exited with {daemon.returncode}; see {log.name}")
            elapsed = time.monotonic() - t0
            done = runs_done(folder / "soak.db")
            samples.append((elapsed, done, rss_mb(daemon.pid), fds(daemon.pid)))
            rate = done / elapsed
            print(
                f"{elapsed / 60:7.1f} {done:7d} {rate:7.1f} {samples[-1][2]:7.1f} "
                f"{samples[-1][3]:5d} {window_peak:10.1f}",
                flush=True,
            )
    finally:
        daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(60)
        sim.terminate()
        sim.wait(10)
    quarter = max(1, len(samples) // 4)
    warm, last = samples[quarter : 2 * quarter], samples[-quarter:]
    rss_warm, rss_last = (statistics.median(s[2] for s in part) for part in (warm, last))
    fd_warm, fd_last = (statistics.median(s[3] for s in part) for part in (warm, last))
    peak = max(s[2] for s in samples)
    growth = rss_last - rss_warm
    # The trend, not two medians: RSS against runs after warm-up, least squares.
    after = samples[quarter:]
    slope, _ = statistics.linear_regression([s[1] for s in after], [s[2] for s in after])
    fitted = slope * (after[-1][1] - after[0][1])
    flat_rss = fitted <= FLAT_MB
    flat_fds = fd_last - fd_warm <= 5
    errors = sum(
        1
        for line in (folder / "serve.log").read_text().splitlines()
        if json.loads(line).get("level") == "error"
    )
    print(
        f"runs: {samples[-1][1]} complete in {samples[-1][0] / 60:.1f} min; "
        f"daemon exit code {code} after SIGTERM; {errors} error log lines"
    )
    print(
        f"RSS: {rss_warm:.1f} MB after warm-up -> {rss_last:.1f} MB at the end "
        f"({growth:+.1f} MB), peak {peak:.1f} MB (limit {LIMIT_MB:g})"
    )
    print(
        f"RSS trend after warm-up: {slope * 1000:+.2f} MB per 1,000 runs "
        f"({fitted:+.1f} MB over {after[-1][1] - after[0][1]} runs; flat means <= {FLAT_MB:g})"
    )
    print(f"file descriptors: {fd_warm:g} -> {fd_last:g}")
    print(
        f"statistics workers (one short-lived process per evaluation): peak {peak_children:.1f}"
        f" MB at once; daemon + workers peak {peak + peak_children:.1f} MB"
    )
    verdict = flat_rss and flat_fds and peak < LIMIT_MB and code == 0
    problems = [
        p
        for p, bad in (
            ("RSS grows", not flat_rss),
            ("descriptors grow", not flat_fds),
            (f"over {LIMIT_MB:g} MB", peak >= LIMIT_MB),
            (f"exit code {code}", code != 0),
        )
        if bad
    ]
    print(f"verdict: {'flat, under the limit' if verdict else 'NO: ' + ', '.join(problems)}")
    raise SystemExit(0 if verdict else 1)


if __name__ == "__main__":
    main()
