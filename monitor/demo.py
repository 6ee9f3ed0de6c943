"""`driftmon demo`: a real model update, caught as drift, offline, in well under a minute.

The simulated provider replays real answers of GPT-4 to 50 "is N prime?" questions, recorded
by the LLMDrift study (Chen, Zaharia & Zou, 2023; see monitor/demo_assets/llmdrift/): the
March 2023 snapshot as the model before an update, the June 2023 snapshot after it, both
served under the alias "gpt-4", as a provider re-pointing an alias would. The demo writes a
config, the probe set and the simulator scenario into a working folder, starts the simulated
provider and a simulated Slack on loopback, and then does what the daemon does with every
run: replay and store it, then (`monitor.after_run`) evaluate drift, update alerts, deliver
them. It prints the verdicts, the identity change, the Slack message as Slack received it,
and the path of the HTML report.

Every step goes through the same code as `driftmon run` and `driftmon serve`; only the
providers on the other end of the sockets are simulated.
"""

from __future__ import annotations

import asyncio
import csv
import io
import os
import shlex
import shutil
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.exc import SQLAlchemyError

from monitor.cli.output import fmt_rate, safe_text
from monitor.drift.model import State
from monitor.errors import DriftmonError, UsageError

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from monitor.drift.queries import EvaluationRecord
    from monitor.runner import RunOutcome

BASELINE_RUNS = 3  # the [drift] baseline_runs of the demo config
MAX_UPDATE_RUNS = 4  # persistence 2 needs two; more means the demo is broken
KEY_ENV = "DRIFTMON_DEMO_KEY"
SLACK_TOKEN_ENV = "DRIFTMON_DEMO_SLACK_TOKEN"
SLACK_CHANNEL = "C0DEMO"
MARKER = ".driftmon-demo"  # marks a folder as the demo's own, so it may be rewritten
CONFIG_NAME, SCENARIO_NAME, DB_NAME, REPORT_NAME = (
    "driftmon.toml",
    "scenario.yaml",
    "driftmon.db",
    "report.html",
)
PROBE_FILE = Path("probes") / "prime.yaml"
DATA = "llmdrift/prime_gpt4.csv"
# Placeholders in the config asset, replaced by the real loopback URLs when the servers start.
ASSET_PROVIDER_URL, ASSET_SLACK_URL = "http://127.0.0.1:8787", "http://127.0.0.1:8788"
MARCH, JUNE = "gpt-4-0314", "gpt-4-0613"
# The answer is the last "[Yes]"/"[No]" (or a bare "Yes"/"No") at the end of the text.
EXTRACT = r"(?i)\[?\b(yes|no)\b\]?\W*$"


class DemoFailed(DriftmonError):
    """The demo could not run or did not find what the recorded data must show."""

    exit_code = 1


@dataclass(frozen=True)
class Question:
    id: int
    query: str
    prime: bool
    march: str
    june: str


@dataclass(frozen=True)
class Step:
    phase: str
    outcome: RunOutcome
    record: EvaluationRecord | None


def load_questions() -> list[Question]:
    text = resources.files("monitor.demo_assets").joinpath(DATA).read_text(encoding="utf-8")
    return [
        Question(
            int(r["id"]),
            r["query"],
            r["ref_answer"].strip().lower() == "yes",
            r["march_answer"],
            r["june_answer"],
        )
        for r in csv.DictReader(io.StringIO(text, newline=""))
    ]


def probe_set_yaml(questions: Sequence[Question]) -> str:
    """The probe set: each question, its answer extracted from the end of the text."""
    probes = [
        {
            "id": f"prime-{q.id:03d}",
            "prompt": q.query,
            "expect": [{"one_of": ["Yes", "yes", "YES"] if q.prime else ["No", "no", "NO"]}],
        }
        for q in questions
    ]
    data = {
        "set": "prime",
        "description": "Is N prime? Questions from the LLMDrift study.",
        "defaults": {
            "response_format": "text",
            "extract": EXTRACT,
            "params": {"temperature": 0.1, "max_tokens": 1000},
        },
        "probes": probes,
    }
    return _yaml(data, "# Written by `driftmon demo` from monitor/demo_assets/" + DATA + "\n")


def scenario_yaml(questions: Sequence[Question]) -> str:
    """The simulated provider: each question answered with the recorded March or June text."""
    rules = [
        {"name": f"q{q.id}", "match": _literal(q.query), "output": q.march, "latency_ms": 0}
        for q in questions
    ]
    data = {
        "name": "llmdrift-gpt4-prime",
        "description": "GPT-4 answers recorded in March and June 2023 (LLMDrift).",
        "rules": rules,
        "phases": {
            "march": {"model": {"gpt-4": MARCH}},
            "june": {
                "model": {"gpt-4": JUNE},
                "rules": {f"q{q.id}": {"output": q.june} for q in questions},
            },
        },
    }
    return _yaml(data, "# Written by `driftmon demo`: real answers, replayed.\n")


def _literal(text: str) -> str:
    import re

    return "^" + re.escape(text) + "$"


def _yaml(data: dict[str, Any], header: str) -> str:
    from ruamel.yaml import YAML

    out = io.StringIO()
    yaml = YAML()
    yaml.width = 4096  # one question per line
    yaml.dump(data, out)
    return header + out.getvalue()


def prepare_folder(folder: Path, questions: Sequence[Question]) -> None:
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
    for name in (DB_NAME, DB_NAME + "-wal", DB_NAME + "-shm", DB_NAME + "-journal", REPORT_NAME):
        (folder / name).unlink(missing_ok=True)
    shutil.rmtree(folder / "probes", ignore_errors=True)
    _copy_tree(resources.files("monitor.demo_assets"), folder)
    (folder / "probes").mkdir(exist_ok=True)
    (folder / PROBE_FILE).write_text(probe_set_yaml(questions), encoding="utf-8")
    (folder / SCENARIO_NAME).write_text(scenario_yaml(questions), encoding="utf-8")


def _copy_tree(source: Traversable, dest: Path) -> None:
    for item in source.iterdir():
        if item.name.startswith(("_", ".")):  # __init__.py, __pycache__
            continue
        if item.is_dir():
            (dest / item.name).mkdir(exist_ok=True)
            _copy_tree(item, dest / item.name)
        else:
            (dest / item.name).write_bytes(item.read_bytes())


def point_config_at(config_path: Path, provider_url: str, slack_url: str) -> None:
    text = config_path.read_text(encoding="utf-8")
    for placeholder in (ASSET_PROVIDER_URL, ASSET_SLACK_URL):
        if text.count(placeholder) != 1:
            raise DemoFailed(f"the demo config asset must contain {placeholder} exactly once")
    text = text.replace(ASSET_PROVIDER_URL, provider_url).replace(ASSET_SLACK_URL, slack_url)
    config_path.write_text(text, encoding="utf-8")


def run_demo(folder: Path, console: Console) -> None:
    """The whole demo; raises UsageError for a bad folder and DemoFailed for anything else."""
    from monitor.simulator.server import SimulatorServer
    from monitor.simulator.slack import FakeSlack

    started = time.monotonic()
    folder = folder.resolve()
    questions = load_questions()
    prepare_folder(folder, questions)
    config_path = folder / CONFIG_NAME
    console.print(f"Demo files written to {escape(_shown(folder))}")
    # The simulators check no secret, but the config only takes secrets by reference.
    os.environ.setdefault(KEY_ENV, "demo-key-not-a-secret")
    os.environ.setdefault(SLACK_TOKEN_ENV, "xoxb-demo-not-a-secret")
    engine: Engine | None = None
    try:
        with SimulatorServer(folder / SCENARIO_NAME) as sim, FakeSlack() as slack:
            point_config_at(config_path, sim.url, slack.url)
            console.print(f"Simulated provider on {sim.url}, simulated Slack on {slack.url}")
            steps, engine = asyncio.run(_replay(config_path, sim.set_phase, console))
            posted = slack.messages(SLACK_CHANNEL)
        report = _write_report(engine, folder / REPORT_NAME)
        _print_outcome(console, steps, posted, folder, report)
    except DriftmonError as exc:
        if isinstance(exc, DemoFailed):
            raise
        # The demo's own files are the only input, so any such error is a demo bug: exit 1.
        raise DemoFailed(f"{exc.__class__.__name__}: {exc}") from exc
    except (OSError, RuntimeError, SQLAlchemyError) as exc:
        raise DemoFailed(f"could not run the simulated provider, Slack or store: {exc}") from exc
    finally:
        if engine is not None:
            engine.dispose()
    console.print(f"\nDemo finished in {time.monotonic() - started:.1f} s.")


async def _replay(config_path: Path, set_phase: Any, console: Console) -> tuple[list[Step], Engine]:
    """Baseline runs on the March snapshot, then runs on June until drift is found; after
    each run what the daemon does: evaluate, update alerts, deliver."""
    from monitor.after_run import deliver, evaluate_and_alert, notifier_for
    from monitor.alerts.manager import AlertPolicy
    from monitor.config import load_config
    from monitor.probes.loader import load_probe_sets
    from monitor.replay import run_jobs, runner_for, select_jobs
    from monitor.store.db import make_engine
    from monitor.store.migrate import ensure_schema

    config = load_config(str(config_path))
    engine = make_engine(config.storage_url())
    ensure_schema(engine)
    jobs = select_jobs(config, load_probe_sets(config.probe_paths))
    runner = runner_for(config, engine)
    policy = AlertPolicy.from_settings(config.settings.alerts)
    notifier = notifier_for(config)
    assert notifier is not None  # the demo config names the simulated Slack
    steps: list[Step] = []
    for phase, most in (("march", BASELINE_RUNS), ("june", MAX_UPDATE_RUNS)):
        set_phase(phase)
        console.print(f"[bold]{phase.capitalize()} 2023 snapshot[/bold]")
        for _ in range(most):
            [outcome] = await run_jobs(runner, jobs)
            record = await asyncio.to_thread(
                evaluate_and_alert, engine, outcome.id, config.settings.drift, policy
            )
            await asyncio.to_thread(deliver, engine, notifier, deadline=None)
            steps.append(Step(phase, outcome, record))
            console.print(
                f"  run {outcome.id}: {outcome.results} answers, pass rate "
                f"{fmt_rate(outcome.pass_rate)}, model {_clean(outcome.model)}; "
                f"{escape(_drift_line(record))}"
            )
            if record is not None and record.drifted:
                break
    if not steps[-1].record or not steps[-1].record.drifted:
        raise DemoFailed("the June answers were not found to drift: the detector is broken")
    return steps, engine


def _drift_line(record: EvaluationRecord | None) -> str:
    if record is None:
        return "no evaluation"
    if record.evaluation_id is None:
        return record.status.replace("_", " ")
    if record.drifted:
        return "DRIFT: " + ", ".join(v.metric for v in record.drifted)
    pending = [v.metric for v in record.verdicts if v.state is State.PENDING]
    return (
        "significant once, not yet persistent: " + ", ".join(pending) if pending else ("no drift")
    )


def _write_report(engine: Engine, path: Path) -> Path:
    """The HTML report of everything the demo stored, as `driftmon report` writes it."""
    from datetime import timedelta

    from monitor.report.render import write_report
    from monitor.store.models import utcnow

    return write_report(engine, path, since=utcnow() - timedelta(days=1))


def _print_outcome(
    console: Console,
    steps: Sequence[Step],
    posted: list[dict[str, Any]],
    folder: Path,
    report: Path,
) -> None:
    from monitor.drift.present import fmt_effect, fmt_value

    final = steps[-1].record
    assert final is not None
    table = Table(title="Drift verdicts (quality metrics that drifted)", header_style="bold")
    for name in ("metric", "baseline", "current", "effect", "p (adjusted)", "n"):
        table.add_column(name)
    for v in final.drifted:
        table.add_row(
            v.metric,
            escape(fmt_value(v.baseline_value, v.effect_name)),
            escape(fmt_value(v.current_value, v.effect_name)),
            escape(fmt_effect(v)),
            f"{v.p_adjusted:.2g}" if v.p_adjusted is not None else "–",
            f"{v.baseline_n} → {v.current_n}",
        )
    console.print()
    console.print(table)
    change = final.identity_change
    console.print(
        "Model identity changed: "
        + (f"{escape(change['from'])} → {escape(change['to'])}" if change else "no")
    )
    if not posted:
        raise DemoFailed("the drift alert did not reach the simulated Slack")
    blocks = len(posted[-1].get("blocks") or [])
    console.print(
        f"\nSlack message posted to the simulated Slack ({len(posted)} message(s); "
        f"{blocks} blocks, text version below):"
    )
    console.print(escape(posted[-1]["text"] or ""), soft_wrap=True)
    console.print()
    console.print(f"Report: {escape(_shown(report))} (open it in a browser; it needs no network)")
    console.print(f"Database: {escape(_shown(folder / DB_NAME))}")
    console.print("Try next:")
    for command in try_next(folder / CONFIG_NAME, report):
        console.print(f"  {escape(command)}", soft_wrap=True)


def try_next(config: Path, report: Path) -> list[str]:
    """Commands to explore the demo's results, runnable as printed from the current folder."""
    driftmon = driftmon_command()
    at = f"{driftmon} --config {shlex.quote(_shown(config))}"
    return [
        f"{at} drift",
        f"{at} alerts list",
        f"{at} baseline show",
        f"{at} report --out {shlex.quote(_shown(report))}",
    ]


def driftmon_command() -> str:
    """How to run this driftmon again from the current folder.

    `make demo` runs `.venv/bin/driftmon` without activating the venv, so a bare `driftmon`
    would not be found (or would be another installation): plain `driftmon` only when it is
    on PATH and is this very program, else the path it was started by.
    """
    on_path = shutil.which("driftmon")
    started_by = _started_by()
    if on_path is not None and started_by is not None and _same_file(on_path, started_by):
        return "driftmon"
    if started_by is not None:
        return shlex.quote(_shown(Path(os.path.abspath(started_by))))
    # `python -m monitor`: the interpreter of this installation runs it anywhere.
    return f"{shlex.quote(_shown(Path(os.path.abspath(sys.executable))))} -m monitor"


def _started_by() -> str | None:
    """The driftmon executable this process runs as: the console script it was started by,
    else (under `python -m monitor`) the one installed next to the interpreter."""
    script = sys.argv[0] if sys.argv else ""
    if script and Path(script).name.removesuffix(".exe") == "driftmon" and os.path.isfile(script):
        return script
    beside = Path(sys.executable).parent / "driftmon"
    return str(beside) if beside.is_file() else None


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _shown(path: Path) -> str:
    """Paths under the current folder are shown relative to it, ready to paste."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _clean(value: str | None) -> str:
    """Model names come from the provider: untrusted text, kept away from rich markup."""
    return escape(safe_text(value, 80)) if value else "?"
