"""`driftmon backtest`: the real detector over recorded outputs of two model versions."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from monitor.cli.context import AppContext
from monitor.cli.output import fmt_rate, print_json, print_table

if TYPE_CHECKING:
    from monitor.drift.backtest import BacktestReport
    from monitor.drift.settings import DriftConfig

SCORER_NAMES = ("prime", "happy", "opinion", "code", "sensitive")


def resolve_drift_config(app: AppContext) -> tuple[DriftConfig, str]:
    """The [drift] table of the config file when there is one, else the defaults."""
    from monitor.config import load_config
    from monitor.drift.settings import drift_config

    loaded = load_config(app.config_path, required=False)
    source = str(loaded.path) if loaded.path else "defaults (no config file)"
    return drift_config(loaded.settings.drift, file=source), source


def fmt_value(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, dict):
        top = sorted(value.items(), key=lambda kv: -float(kv[1]))[:3]
        return ", ".join(f"{k} {float(v):.0%}" for k, v in top)
    if isinstance(value, float) and 0 <= value <= 1:
        return fmt_rate(value)
    if isinstance(value, int | float):
        return f"{value:.1f}"
    return str(value)


def fmt_num(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def report_json(report: BacktestReport, config_source: str) -> dict[str, Any]:
    return {
        "data": report.data,
        "scorer": report.scorer,
        "from": report.from_model,
        "to": report.to_model,
        "paired_prompts": report.paired,
        "probes": report.probes,
        "repeats": report.repeats,
        "seed": report.seed,
        "runs": report.runs,
        "config": config_source,
        "any_flagged_fraction": report.any_flagged,
        "shown_sample": list(report.shown_sample),  # row indices of the (id, query)-sorted pairs
        "verdicts": [
            {
                "metric": r.metric,
                "family": r.family,
                "state": r.state,
                "drifted": r.state == "drifted",
                "baseline": {"value": r.baseline_value},
                "current": {"value": r.current_value},
                "effect": r.effect,
                "effect_name": r.effect_name,
                "p_adjusted": r.p_adjusted,
                "flagged_fraction": r.flagged,
            }
            for r in report.rows
        ],
    }


@click.command("backtest")
@click.option("--data", "data", required=True, type=click.Path(dir_okay=False), help="CSV file.")
@click.option("--scorer", type=click.Choice(SCORER_NAMES), help="Built-in scorer for the task.")
@click.option("--column", metavar="NAME", help="Score by a 1/0 column instead.")
@click.option("--regex", metavar="PATTERN", help="Pass when the answer matches PATTERN.")
@click.option("--from", "from_model", required=True, metavar="MODEL", help="Old version.")
@click.option("--to", "to_model", required=True, metavar="MODEL", help="New version.")
@click.option("--probes", default=30, show_default=True, type=click.IntRange(1), help="Per window.")
@click.option(
    "--repeats",
    default=20,
    show_default=True,
    type=click.IntRange(1, 10_000),
    help="Random probe samples; the share flagged is reported.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the probe samples.")
@click.option(
    "--runs",
    default=2,  # monitor.drift.backtest.RUNS (not imported: it loads the statistics)
    show_default=True,
    type=click.IntRange(1, 100),
    help="Evaluations of each window, as runs of the new model after the swap.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def backtest_command(
    app: AppContext,
    data: str,
    scorer: str | None,
    column: str | None,
    regex: str | None,
    from_model: str,
    to_model: str,
    probes: int,
    repeats: int,
    seed: int,
    runs: int,
    as_json: bool,
) -> None:
    """Run the detector over recorded outputs of two model versions (LLMDrift CSV layout).

    Rows are paired on (id, query). Baseline = --from outputs, current = --to outputs, one
    sample per probe; the current window is evaluated --runs times in a row, as the daemon
    would after the provider swapped the model. See docs/statistics.md.
    """
    from monitor.drift.backtest import make_scorer, pair_records, read_rows, run_backtest

    config, source = resolve_drift_config(app)
    scorer_name, score = make_scorer(scorer, column, regex)
    pairs = pair_records(read_rows(data), score, from_model, to_model)
    report = run_backtest(
        pairs,
        config,
        probes=probes,
        repeats=repeats,
        seed=seed,
        runs=runs,
        data=data,
        scorer=scorer_name,
        from_model=from_model,
        to_model=to_model,
    )
    if as_json:
        print_json(report_json(report, source))
        return
    click.echo(
        f"{from_model} → {to_model}: {report.paired} paired prompts, {report.probes} probes per "
        f"window, scorer {scorer_name}, {report.runs} evaluations, alpha {config.alpha} "
        f"({source})"
    )
    rows = [
        (
            r.metric,
            r.state,
            f"{fmt_value(r.baseline_value)} → {fmt_value(r.current_value)}",
            fmt_num(r.effect, "+.3f"),
            r.effect_name or "",
            fmt_num(r.p_adjusted, ".2g"),
            f"{r.flagged:.0%}",
        )
        for r in report.rows
    ]
    columns = ("metric", "state", "baseline → current", "effect", "effect is", "p_adj")
    print_table(
        f"seed {seed}; flagged = share of {report.repeats} random probe samples DRIFTED",
        (*columns, "flagged"),
        rows,
    )
    click.echo(f"any quality metric DRIFTED in {report.any_flagged:.0%} of the samples")
