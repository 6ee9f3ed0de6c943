"""Replay throughput: `driftmon run` beside a bare httpx loop, same requests, same server.

Starts the simulated provider as its own process (zero latency, every answer valid), then in
alternating rounds:
  - bare:   an httpx.AsyncClient loop sending the same 1,000 chat-completion requests at
            concurrency 16 and parsing each JSON body (the least any client must do), timed
            inside this process;
  - ours:   the same loop on driftmon's pooled transport (monitor/providers/transport.py),
            which checks idle connections more cheaply than stock httpx: it shows how much of
            the runner's time is transport and how much is judging and storing;
  - script: the same loop as a program of its own, timed from outside (interpreter start and
            the httpx import included, as for the command);
  - runner: driftmon's Runner in-process (send, judge against the schema, store every result
            in SQLite with synchronous=FULL);
  - cli:    the `driftmon run` command as a user runs it (process start, imports, loading the
            probes, and the drift evaluation that follows every run once a baseline exists).
Prints the median wall time of each and the ratios to the bare loop, then where the time of one
more `driftmon run` goes (its steps timed inside the process). Goals: the runner within
1.25x the bare loop, and the command within 1.25x the bare script (each beside its like, run
back to back in every round; the goal is the median of the per-round ratios, since the wall
times of a shared 2-core machine drift by tens of percent from minute to minute).

    .venv/bin/python bench/replay.py [--calls 1000] [--concurrency 16] [--rounds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
PROBES_PER_SET = 100
# [drift] baseline_runs of the bench's project. The default (24) would make every size run 24
# warm-up rounds first (16 minutes at 10,000 calls); the evaluation then reads 8 times the
# baseline results measured here.
BASELINE_RUNS = 3

PROBE_SET = """set: bench
defaults:
  response_format: json_schema
  schema:
    type: object
    required: [label, score]
    properties:
      label: {{ enum: [positive, negative, neutral] }}
      score: {{ type: number, minimum: 0, maximum: 1 }}
  expect:
    - {{ field: label, one_of: [positive, negative, neutral] }}
    - {{ field: score, range: [0, 1] }}
  track: [label]
probes:
{probes}
"""


def write_project(folder: Path, base_url: str, calls: int, concurrency: int) -> Path:
    samples = calls // PROBES_PER_SET
    probes = "\n".join(
        f'  - {{ id: p{i:03d}, prompt: "Classify the sentiment of review #{i}: '
        f'the product arrived on time and works." }}'
        for i in range(PROBES_PER_SET)
    )
    (folder / "probes").mkdir()
    (folder / "probes" / "bench.yaml").write_text(PROBE_SET.format(probes=probes))
    config = folder / "driftmon.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///bench.db"\n[probes]\npaths = ["probes"]\n'
        f'[defaults]\nsamples = {samples}\nconcurrency = {concurrency}\ntimeout = "30s"\n'
        f"params = {{ temperature = 0.0, max_tokens = 64 }}\n"
        f'[[targets]]\nname = "sim"\nkind = "openai"\nmodel = "sim-model"\n'
        f'base_url = "{base_url}/v1"\n'
        f"[drift]\nbaseline_runs = {BASELINE_RUNS}\n"
    )
    return config


def start_simulator() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "monitor", "simulate", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"simulator did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1]


def build_requests(config_path: Path) -> list[dict[str, object]]:
    """The exact JSON bodies driftmon sends, built by the same provider code path."""
    from monitor.config import load_config
    from monitor.probes.loader import load_probe_sets
    from monitor.runner import build_request

    config = load_config(str(config_path))
    target = config.effective(config.settings.targets[0])
    bodies = []
    for probe in load_probe_sets(config.probe_paths)[0].probes:
        request = build_request(target, probe)
        body = {
            "model": target.model,
            "messages": [{"role": role, "content": content} for role, content in request.messages],
            **request.params,
            "response_format": {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.schema,
                    "strict": False,
                },
            },
        }
        bodies += [body] * target.samples
    return bodies


async def bare_loop(
    url: str, bodies: list[dict[str, object]], concurrency: int, our_transport: bool = False
) -> float:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    if our_transport:  # driftmon's pooled transport (monitor/providers/transport.py)
        from monitor.providers.transport import pooled_transport
        from monitor.replay import tls_context

        client = httpx.AsyncClient(timeout=30, transport=pooled_transport(tls_context(), limits))
    else:
        client = httpx.AsyncClient(timeout=30, limits=limits)
    async with client:
        gate = asyncio.Semaphore(concurrency)

        async def one(body: dict[str, object]) -> None:
            async with gate:
                response = await client.post(f"{url}/v1/chat/completions", json=body)
                response.raise_for_status()
                json.loads(response.json()["choices"][0]["message"]["content"])

        start = time.perf_counter()
        await asyncio.gather(*(one(b) for b in bodies))
        return time.perf_counter() - start


async def runner_once(config_path: Path, db_url: str) -> tuple[float, int]:
    from monitor.config import load_config
    from monitor.probes.loader import load_probe_sets
    from monitor.replay import Job, run_jobs, runner_for
    from monitor.store.db import make_engine
    from monitor.store.migrate import ensure_schema

    config = load_config(str(config_path))
    engine = make_engine(db_url)
    ensure_schema(engine)
    job = Job(config.effective(config.settings.targets[0]), load_probe_sets(config.probe_paths)[0])
    start = time.perf_counter()
    outcome = (await run_jobs(runner_for(config, engine), [job]))[0]
    elapsed = time.perf_counter() - start
    engine.dispose()
    return elapsed, outcome.results


def script_once(url: str, bodies_file: Path, concurrency: int) -> float:
    """The bare loop as a program of its own, wall time measured from outside."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, __file__, "--bare-child", url, str(bodies_file), str(concurrency)],
        check=True,
    )
    return time.perf_counter() - start


def bare_child(url: str, bodies_file: str, concurrency: str) -> None:
    bodies = json.loads(Path(bodies_file).read_text())
    asyncio.run(bare_loop(url, bodies, int(concurrency)))


def cli_once(config_path: Path) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "monitor", "--config", str(config_path), "run", "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - start
    run = json.loads(done.stdout)["runs"][0]
    # Every timed command compares its run with a complete baseline, as it will in use.
    assert run["drift"]["status"] == "evaluated", run["drift"]["status"]
    return elapsed, run["results"]


PHASES = (
    ("_prestart_statistics", "baseline check, statistics child started"),
    ("_replay", "requests, judging, storing"),
    ("_evaluate", "drift evaluation"),
)


def phases_child(config_path: str) -> None:
    """`driftmon run` in this process, its steps timed: marks (wall-clock times, so that the
    parent can place them from its own start) go to stderr as JSON."""
    import monitor.cli.runs as runs
    from monitor.cli.main import main as driftmon

    marks: list[tuple[str, float, float]] = []

    def timed(name: str) -> None:
        step = getattr(runs, name)

        def wrapper(*args: object, **kwargs: object) -> object:
            begin = time.time()
            try:
                return step(*args, **kwargs)
            finally:
                marks.append((name, begin, time.time()))

        setattr(runs, name, wrapper)

    for name, _label in PHASES:
        timed(name)
    sys.argv = ["driftmon", "--config", config_path, "run", "--json"]
    try:
        driftmon()
    except SystemExit:
        pass
    finally:
        print(json.dumps(marks), file=sys.stderr)


def cli_phases(config_path: Path) -> str:
    """One more `driftmon run`, and where its time goes."""
    start = time.time()
    done = subprocess.run(
        [sys.executable, __file__, "--phases-child", str(config_path)],
        capture_output=True,
        text=True,
        check=True,
    )
    total = time.time() - start
    marks = {
        name: (begin - start, end - start)
        for name, begin, end in json.loads(done.stderr.splitlines()[-1])
    }
    first = marks[PHASES[0][0]][0]
    last = marks[PHASES[-1][0]][1]
    rows = [("start-up: interpreter, imports, config, probes", first)]
    rows += [(label, marks[name][1] - marks[name][0]) for name, label in PHASES]
    rows += [("alerts, output, exit", total - last), ("total", total)]
    lines = ["one more `driftmon run`, timed inside (seconds):"]
    lines += [f"  {label:48}{seconds:6.2f}" for label, seconds in rows]
    return "\n".join(lines)


def main() -> None:
    if sys.argv[1:2] == ["--bare-child"]:
        bare_child(*sys.argv[2:5])
        return
    if sys.argv[1:2] == ["--phases-child"]:
        phases_child(sys.argv[2])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    proc, url = start_simulator()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            config = write_project(folder, url, args.calls, args.concurrency)
            bodies = build_requests(config)
            bodies_file = folder / "bodies.json"
            bodies_file.write_text(json.dumps(bodies))
            subprocess.run(
                [sys.executable, "-m", "monitor", "--config", str(config), "db", "upgrade"],
                check=True,
                capture_output=True,
            )
            asyncio.run(bare_loop(url, bodies[:100], args.concurrency))  # warm-up
            for _ in range(BASELINE_RUNS):  # the baseline each timed command is compared with
                asyncio.run(runner_once(config, f"sqlite:///{folder}/bench.db"))
            times: dict[str, list[float]] = {
                "bare": [],
                "ours": [],
                "script": [],
                "runner": [],
                "cli": [],
            }
            for _ in range(args.rounds):
                # Each goal's pair runs back to back, so both see the machine in the same
                # state; the goals use the median of the per-round ratios.
                times["bare"].append(asyncio.run(bare_loop(url, bodies, args.concurrency)))
                elapsed, stored = asyncio.run(runner_once(config, f"sqlite:///{folder}/bench.db"))
                assert stored == len(bodies), f"runner stored {stored} of {len(bodies)}"
                times["runner"].append(elapsed)
                times["script"].append(script_once(url, bodies_file, args.concurrency))
                elapsed, stored = cli_once(config)
                assert stored == len(bodies), f"cli stored {stored} of {len(bodies)}"
                times["cli"].append(elapsed)
                times["ours"].append(asyncio.run(bare_loop(url, bodies, args.concurrency, True)))
            phases = cli_phases(config)  # printed after the table
    finally:
        proc.terminate()
        proc.wait(10)
    median = {k: statistics.median(v) for k, v in times.items()}
    print(
        f"{len(bodies)} calls, concurrency {args.concurrency}, {args.rounds} rounds "
        "(median wall time; simulator at zero latency in its own process)"
    )
    print(f"{'':33}{'seconds':>9}{'calls/s':>9}{'vs bare':>9}")
    labels = {
        "bare": "bare httpx loop",
        "ours": "bare loop, driftmon's transport",
        "runner": "driftmon runner (stores all)",
        "script": "bare httpx script incl. startup",
        "cli": "`driftmon run` incl. startup",
    }
    for key, label in labels.items():
        print(
            f"{label:33}{median[key]:9.2f}{len(bodies) / median[key]:9.0f}"
            f"{median[key] / median['bare']:8.2f}x"
        )
    met = True
    for name, (slow, fast), against in (
        ("runner", ("runner", "bare"), "bare loop"),
        ("`driftmon run`", ("cli", "script"), "bare script"),
    ):
        ratios = sorted(a / b for a, b in zip(times[slow], times[fast], strict=True))
        ratio = statistics.median(ratios)
        met = met and ratio <= 1.25
        print(
            f"goal {name} <= 1.25x {against}: {'met' if ratio <= 1.25 else 'NOT met'} "
            f"({ratio:.2f}x, median of rounds {ratios[0]:.2f}-{ratios[-1]:.2f})"
        )
    print(phases)
    raise SystemExit(0 if met else 1)


if __name__ == "__main__":
    main()
