"""`driftmon demo`: the whole replay pipeline on the embedded default, offline, in seconds.

It writes a config, a probe set and a simulator scenario into a working folder, starts the
simulated provider in-process, replays the probe set three times against its "march" snapshot
and three times after a silent "june" update, and prints what was measured. Every step goes
through the same service code as `driftmon run` (config loader, probe loader, replay runner,
store), so the demo shows the real thing rather than a mock of it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import TypeVar

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.cli.output import fmt_rate, safe_text
from monitor.errors import DriftmonError, UsageError
from monitor.runner import RunOutcome

PHASES = ("march", "june")
RUNS_PER_PHASE = 3
KEY_ENV = "DRIFTMON_DEMO_KEY"
MARKER = ".driftmon-demo"  # marks a folder as the demo's own, so it may be rewritten
CONFIG_NAME = "driftmon.toml"
SCENARIO_NAME = "scenario.yaml"
DB_NAME = "driftmon.db"
# The simulator URL in the config asset (before /v1), replaced by the real one: the port is
# chosen when the simulator starts.
ASSET_URL = "http://127.0.0.1:8787"
V = TypeVar("V")


class DemoFailed(DriftmonError):
    """The demo could not run or its results are not what the scenario must produce."""

    exit_code = 1


@dataclass(frozen=True)
class PhaseRun:
    phase: str
    outcome: RunOutcome


def prepare_folder(folder: Path) -> None:
    """Write fresh demo files into `folder`, refusing a folder that holds anything else.

    The demo deletes a database and overwrites a config there, so a mistyped `--dir` pointing
    at a real installation must not be touched: only a new, empty or marked folder is used.
    """
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not (folder / MARKER).exists():
        raise UsageError(
            f"{folder} is not empty and was not made by `driftmon demo`; "
            "choose another folder with --dir"
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARKER).write_text("This folder is rewritten by `driftmon demo`.\n")
    # A previous demo's results would mix with this one's; stale probe files would add sets.
    for suffix in ("", "-wal", "-shm", "-journal"):
        (folder / (DB_NAME + suffix)).unlink(missing_ok=True)
    shutil.rmtree(folder / "probes", ignore_errors=True)
    _copy_tree(resources.files("monitor.demo_assets"), folder)


def _copy_tree(source: Traversable, dest: Path) -> None:
    for item in source.iterdir():
        if item.name.startswith(("_", ".")):  # __init__.py, __pycache__
            continue
        if item.is_dir():
            (dest / item.name).mkdir(exist_ok=True)
            _copy_tree(item, dest / item.name)
        else:
            (dest / item.name).write_bytes(item.read_bytes())


def point_config_at(config_path: Path, base_url: str) -> None:
    text = config_path.read_text(encoding="utf-8")
    if text.count(ASSET_URL) != 1:
        raise DemoFailed(f"the demo config asset must contain {ASSET_URL} exactly once")
    config_path.write_text(text.replace(ASSET_URL, base_url), encoding="utf-8")


async def replay_phases(
    config_path: Path, set_phase: Callable[[str], None], console: Console
) -> tuple[list[PhaseRun], Engine]:
    """Load config and probes as the CLI does, then replay each phase RUNS_PER_PHASE times."""
    from monitor.config import load_config
    from monitor.probes.loader import load_probe_sets
    from monitor.replay import run_jobs, runner_for, select_jobs
    from monitor.store.db import make_engine
    from monitor.store.migrate import ensure_schema

    config = load_config(str(config_path))
    sets = load_probe_sets(config.probe_paths)
    engine = make_engine(config.storage_url())
    ensure_schema(engine)
    jobs = select_jobs(config, sets)
    runner = runner_for(config, engine)
    runs: list[PhaseRun] = []
    for phase in PHASES:
        set_phase(phase)
        console.print(f"[bold]Phase {phase}[/bold]: {RUNS_PER_PHASE} replays")
        for _ in range(RUNS_PER_PHASE):
            for outcome in await run_jobs(runner, jobs):
                runs.append(PhaseRun(phase, outcome))
                console.print(
                    f"  run {outcome.id}: {outcome.results} results, "
                    f"pass rate {fmt_rate(outcome.pass_rate)}, model {_identity(outcome)}"
                )
    return runs, engine


def run_demo(folder: Path, console: Console) -> None:
    """The whole demo; raises UsageError for a bad folder and DemoFailed for anything else."""
    from monitor.simulator.server import SimulatorServer

    started = time.monotonic()
    folder = folder.resolve()
    prepare_folder(folder)
    config_path, scenario_path = folder / CONFIG_NAME, folder / SCENARIO_NAME
    console.print(f"Demo files written to {escape(str(folder))}")
    # The simulator accepts any key, but the config only takes secrets by reference.
    os.environ.setdefault(KEY_ENV, "demo-key-not-a-secret")
    engine: Engine | None = None
    try:
        with SimulatorServer(scenario_path) as sim:
            point_config_at(config_path, sim.url)
            console.print(f"Simulated provider listening on {sim.url}")
            port = sim.port
            runs, engine = asyncio.run(replay_phases(config_path, sim.set_phase, console))
        print_summary(console, runs, engine, folder, sim_port=port)
    except DriftmonError as exc:
        if isinstance(exc, DemoFailed):
            raise
        # The demo's own files are the only input, so any such error is a demo bug: exit 1.
        raise DemoFailed(f"{exc.__class__.__name__}: {exc}") from exc
    except (OSError, RuntimeError, SQLAlchemyError) as exc:
        raise DemoFailed(f"could not run the simulated provider or store: {exc}") from exc
    finally:
        if engine is not None:
            engine.dispose()
    check_runs(runs)
    console.print(f"\nDemo finished in {time.monotonic() - started:.1f} s.")


def check_runs(runs: Sequence[PhaseRun]) -> None:
    """The scenario has no faults: an error or an unfinished run means the demo is broken."""
    expected = len(PHASES) * RUNS_PER_PHASE
    if len(runs) != expected:
        raise DemoFailed(f"expected {expected} runs, got {len(runs)}")
    bad = [r.outcome for r in runs if r.outcome.status != "complete" or r.outcome.errors]
    if bad:
        classes = sorted({k for o in bad for k in o.error_classes})
        raise DemoFailed(
            f"{len(bad)} run(s) incomplete or with provider errors ({', '.join(classes) or '?'});"
            " the simulator should answer every request — is a proxy intercepting 127.0.0.1?"
        )


def print_summary(
    console: Console, runs: Sequence[PhaseRun], engine: Engine, folder: Path, *, sim_port: int
) -> None:
    table = Table(title="Runs", header_style="bold")
    for name in ("run", "phase", "model", "fingerprint", "results", "pass", "fail", "errors"):
        table.add_column(name, justify="right" if name in ("results", "pass", "fail") else "left")
    table.add_column("pass rate", justify="right")
    for r in runs:
        o = r.outcome
        counts = (str(n) for n in (o.results, o.passed, o.failed, o.errors))
        table.add_row(str(o.id), r.phase, _clean(o.model), _clean(o.fingerprint), *counts,
                      fmt_rate(o.pass_rate))  # fmt: skip
    console.print()
    console.print(table)

    ids = {p: [r.outcome.id for r in runs if r.phase == p] for p in PHASES}
    rates = {p: _pass_rate([r.outcome for r in runs if r.phase == p]) for p in PHASES}
    before, after = (sorted({_identity(r.outcome) for r in runs if r.phase == p}) for p in PHASES)
    seen = ", ".join(before) + (f" → {', '.join(after)}" if after != before else "")
    console.print(f"Model identity {'changed' if after != before else 'unchanged'}: {seen}")
    console.print(
        f"Pass rate: march {fmt_rate(rates['march'])} → june {fmt_rate(rates['june'])} "
        f"(all results of the {RUNS_PER_PHASE} runs in each phase)"
    )

    with Session(engine) as session:
        shapes = {p: _formats(session, ids[p]) for p in PHASES}
        per_probe = {p: _probe_rates(session, ids[p]) for p in PHASES}

    formats = {p: {k: n for k, (n, _chars) in shapes[p].items()} for p in PHASES}
    console.print(_by_phase("Output format", "format", formats, lambda n: str(n or 0)))
    lengths = [f"{p} {shapes[p].get('text', (0, 0.0))[1]:.0f}" for p in PHASES]
    console.print(f"Mean length of text answers (chars): {' → '.join(lengths)}")
    console.print(_by_phase("Pass rate by probe", "probe", per_probe, fmt_rate))

    config, scenario = _shown(folder / CONFIG_NAME), _shown(folder / SCENARIO_NAME)
    console.print(
        "\nThese are measured rates only. Statistical drift tests (p-values, verdicts,\n"
        "alerts) are not part of this version of driftmon, so the demo gives no drift verdict.\n"
    )
    console.print(f"Database: {escape(_shown(folder / DB_NAME))}")
    console.print(f"Config:   {escape(config)}")
    console.print("Try next:")
    for command in (
        f"driftmon --config {config} probes list",
        f"driftmon --config {config} probes show invoice-globex",
        "# replay by hand: the simulator on the port in the config, then a run",
        f"{KEY_ENV}=dummy driftmon simulate --scenario {scenario} --port {sim_port} &",
        f"{KEY_ENV}=dummy driftmon --config {config} run",
    ):
        console.print(f"  {escape(command)}", soft_wrap=True)


def _by_phase(
    title: str, key: str, data: dict[str, dict[str, V]], show: Callable[[V | None], str]
) -> Table:
    """One row per key, one column per phase: the before/after view of a measurement."""
    table = Table(title=title, header_style="bold")
    table.add_column(key)
    for phase in PHASES:
        table.add_column(phase, justify="right")
    for name in sorted({k for values in data.values() for k in values}):
        table.add_row(name, *(show(data[p].get(name)) for p in PHASES))
    return table


def _shown(path: Path) -> str:
    """Paths under the current folder are shown relative to it, ready to paste."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _clean(value: str | None) -> str:
    """Model names come from the provider: untrusted text, kept away from rich markup."""
    return escape(safe_text(value, 80)) if value else "?"


def _identity(outcome: RunOutcome) -> str:
    return _clean(outcome.model) + (
        f" ({_clean(outcome.fingerprint)})" if outcome.fingerprint else ""
    )


def _pass_rate(outcomes: Sequence[RunOutcome]) -> float | None:
    judged = sum(o.passed + o.failed for o in outcomes)
    return sum(o.passed for o in outcomes) / judged if judged else None


def _formats(session: Session, run_ids: list[int]) -> dict[str, tuple[int, float]]:
    """format kind -> (results, mean output characters); provider errors have no format."""
    from monitor.store.models import Result

    rows = session.execute(
        select(col(Result.format_kind), func.count(), func.avg(col(Result.output_chars)))
        .where(col(Result.run_id).in_(run_ids))
        .group_by(col(Result.format_kind))
    ).tuples()
    return {kind or "(error)": (int(n), float(chars or 0)) for kind, n, chars in rows}


def _probe_rates(session: Session, run_ids: list[int]) -> dict[str, float]:
    from monitor.store.models import ProbeVersion, Result

    rows = session.execute(
        select(col(ProbeVersion.probe_id), col(Result.verdict), func.count())
        .join(ProbeVersion, col(ProbeVersion.id) == col(Result.probe_version_id))
        .where(col(Result.run_id).in_(run_ids))
        .group_by(col(ProbeVersion.probe_id), col(Result.verdict))
    ).tuples()
    counts: dict[str, dict[str, int]] = {}
    for probe, verdict, n in rows:
        counts.setdefault(probe, {})[verdict] = int(n)
    # A probe with only errors has no pass rate; it shows as "–" in the table.
    judged = {probe: c.get("pass", 0) + c.get("fail", 0) for probe, c in counts.items()}
    return {p: counts[p].get("pass", 0) / n for p, n in judged.items() if n}
