"""`driftmon power`: probes needed to detect a pass-rate change, or the change a set can see."""

from __future__ import annotations

from typing import Any

import click

from monitor.cli.backtest import resolve_drift_config
from monitor.cli.context import AppContext
from monitor.cli.output import print_json


@click.command("power")
@click.option(
    "--baseline-rate",
    default=0.9,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Expected pass rate before the change.",
)
@click.option("--change", type=float, help="Pass-rate change in rate units, e.g. -0.10.")
@click.option("--probes", type=click.IntRange(1, 100_000), help="Probes per window.")
@click.option(
    "--samples",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100),
    help="Samples per probe per run.",
)
@click.option(
    "--power",
    "target",
    default=0.8,
    show_default=True,
    type=click.FloatRange(0.05, 0.99),
    help="Target power.",
)
@click.option(
    "--flaky",
    default=0.1,
    show_default=True,
    type=click.FloatRange(0, 1),
    help="Share of flaky probes (pass probability uniform in 0.2-0.8).",
)
@click.option(
    "--noise",
    default=0.01,
    show_default=True,
    type=click.FloatRange(0, 0.49),
    help="Flip probability of a near-deterministic probe.",
)
@click.option(
    "--other-metrics",
    default=2,
    show_default=True,
    type=click.IntRange(0, 50),
    help="Unchanged quality metrics sharing the BH family (2: length_chars, length_tokens).",
)
@click.option(
    "--within",
    type=click.IntRange(1, 1000),
    help="Runs after the change within which the alarm must come (default: 2).",
)
@click.option(
    "--direction",
    type=click.Choice(["down", "up"]),
    default="down",
    show_default=True,
    help="Without --change: which way the change goes.",
)
@click.option(
    "--max-probes",
    default=2000,
    show_default=True,
    type=click.IntRange(2),
    help="Search limit for the sample size.",
)
@click.option(
    "--sims",
    default=100,
    show_default=True,
    type=click.IntRange(20, 100_000),
    help="Simulations per power estimate (Monte Carlo SE about 4 points at 100).",
)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def power_command(
    app: AppContext,
    baseline_rate: float,
    change: float | None,
    probes: int | None,
    samples: int,
    target: float,
    flaky: float,
    noise: float,
    other_metrics: int,
    within: int | None,
    direction: str,
    max_probes: int,
    sims: int,
    seed: int,
    as_json: bool,
) -> None:
    """Power of the pass-rate test, simulated with the real detector.

    \b
    --change only:            probes needed to reach --power
    --probes only:            smallest change detected with --power
    --change and --probes:    the power (and median delay) at that point
    The probe model (near-deterministic probes plus a flaky share) is in docs/statistics.md.
    """
    from monitor.drift.power import (
        DEFAULT_WITHIN,
        PassRateModel,
        detectable_change,
        required_probes,
        simulate_power,
    )

    config, source = resolve_drift_config(app)
    model = PassRateModel(baseline_rate, flaky=flaky, noise=noise, other_metrics=other_metrics)
    try:
        model.check()
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--baseline-rate/--flaky") from None
    horizon = within or max(DEFAULT_WITHIN, config.persistence)
    out: dict[str, Any] = {
        "baseline_rate": baseline_rate,
        "samples": samples,
        "flaky": flaky,
        "noise": noise,
        "other_metrics": other_metrics,
        "target_power": target,
        "within_runs": horizon,
        "sims": sims,
        "seed": seed,
        "alpha": config.alpha,
        "persistence": config.persistence,
        "runs_between_false_alarms": config.runs_between_false_alarms,
        "baseline_runs": config.baseline_runs,
        "config": source,
    }
    common: dict[str, Any] = {"within": horizon, "sims": sims, "seed": seed}
    try:
        if change is None and probes is None:
            raise click.UsageError("give --change, --probes, or both")
        if change is not None and probes is None:
            needed = required_probes(
                model, change, samples, config, target=target, max_probes=max_probes, **common
            )
            out.update(mode="probes_needed", change=change, probes=needed)
            text = (
                f"{needed} probes × {samples} sample(s) detect a {change:+.1%} change with "
                f"power ≥ {target:.0%}"
                if needed is not None
                else f"even {max_probes} probes do not reach power {target:.0%} (--max-probes)"
            )
            if abs(change) < config.min_rate_change * 1.5:
                # The observed change scatters around the true one: near the floor it falls
                # below it about half the time, in any evaluation.
                text += (
                    f"\nnote: {change:+.1%} is close to the effect floor min_rate_change "
                    f"({config.min_rate_change:.0%}); such changes are often not flagged however "
                    "many probes you have"
                )
        elif change is None:
            assert probes is not None
            sign = -1 if direction == "down" else 1
            found = detectable_change(
                model, probes, samples, config, target=target, direction=sign, **common
            )
            out.update(mode="detectable_change", probes=probes, change=found)
            text = (
                f"{probes} probes × {samples} sample(s) detect a change of {found:+.1%} or "
                f"more with power ≥ {target:.0%}"
                if found is not None
                else f"no change the model allows reaches power {target:.0%} at {probes} probes"
            )
        else:
            assert probes is not None
            result = simulate_power(model, change, probes, samples, config, **common)
            out.update(
                mode="power",
                probes=probes,
                change=change,
                power=result.power,
                power_stderr=result.stderr,
                median_delay_runs=result.median_delay,
            )
            text = (
                f"power {result.power:.0%} (± {result.stderr:.0%}) to detect {change:+.1%} at "
                f"{probes} probes × {samples} sample(s)"
            )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    if as_json:
        print_json(out)
        return
    click.echo(text)
    click.echo(
        f"within {horizon} run(s) of the change; alarm rule: {config.runs_between_false_alarms} "
        f"runs between false alarms, persistence {config.persistence}, baseline "
        f"{config.baseline_runs} runs ({source}); "
        f"{flaky:.0%} flaky probes, noise {noise}, {other_metrics} other quality metrics; "
        f"{sims} simulations, seed {seed}"
    )
