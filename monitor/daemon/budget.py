"""Cost control: what a run will cost, what a target spent today, and whether a run fits.

A run that would exceed a target's daily budget (`daily_calls`, `daily_tokens`, per UTC day) is
skipped whole, never half-run: half a run cannot be compared with the baseline and would look
like missing data. Calls count every attempt (retries cost too); tokens are input + output as
the provider reported them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.config import ResolvedTarget
from monitor.probes.model import ProbeSet
from monitor.providers.params import token_cap
from monitor.store.models import Result, Run, Target

DEFAULT_OUTPUT_TOKENS = 256  # an assumption only used before any result has been stored
CHARS_PER_TOKEN = 4  # the usual rough rule for English text; for an estimate only


@dataclass(frozen=True)
class Estimate:
    calls: int
    tokens: int
    basis: str  # how the tokens were estimated


def plan_calls(target: ResolvedTarget, probe_set: ProbeSet, samples: int | None = None) -> int:
    return sum(samples or p.samples or target.samples for p in probe_set.enabled_probes())


def estimate(
    engine: Engine, target: ResolvedTarget, probe_set: ProbeSet, samples: int | None = None
) -> Estimate:
    """Calls and tokens of one run: tokens from this target and set's recent results when
    there are some, else from the prompt lengths and `max_tokens`."""
    calls = plan_calls(target, probe_set, samples)
    with Session(engine) as s:
        row = s.execute(
            select(func.count(), func.avg(col(Result.input_tokens) + col(Result.output_tokens)))
            .join(Run, col(Run.id) == col(Result.run_id))
            .join(Target, col(Target.id) == col(Result.target_id))
            .where(
                col(Target.name) == target.name,
                col(Run.probe_set) == probe_set.name,
                col(Result.input_tokens).is_not(None),
            )
        ).one()
    if row[0]:
        return Estimate(calls, round(calls * float(row[1])), f"average of {row[0]} results")
    per_call = []
    for probe in probe_set.enabled_probes():
        prompt = sum(len(m.content) for m in probe.messages) // CHARS_PER_TOKEN + 1
        # Any spelling of the output cap (max_tokens, max_completion_tokens, ...).
        cap = token_cap({**target.params, **probe.params}, "max_tokens")
        limit = cap[1] if cap is not None else DEFAULT_OUTPUT_TOKENS
        output = limit if isinstance(limit, int) and limit > 0 else DEFAULT_OUTPUT_TOKENS
        per_call.append((prompt + output) * (samples or probe.samples or target.samples))
    return Estimate(calls, sum(per_call), "prompt length and max_tokens (no results yet)")


def spent_today(engine: Engine, target: str, now: datetime) -> tuple[int, int]:
    """(calls, tokens) a target used since midnight UTC."""
    midnight = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    with Session(engine) as s:
        calls, tokens = s.execute(
            select(
                func.coalesce(func.sum(col(Result.attempts)), 0),
                func.coalesce(
                    func.sum(
                        func.coalesce(col(Result.input_tokens), 0)
                        + func.coalesce(col(Result.output_tokens), 0)
                    ),
                    0,
                ),
            )
            .join(Target, col(Target.id) == col(Result.target_id))
            .where(
                col(Target.name) == target,
                col(Result.created_at) >= midnight,
                col(Result.created_at) < midnight + timedelta(days=1),
            )
        ).one()
    return int(calls), int(tokens)


def over_budget(
    engine: Engine, target: ResolvedTarget, probe_set: ProbeSet, now: datetime
) -> str | None:
    """Why this run must be skipped, or None when it fits (or there is no budget)."""
    if target.daily_calls is None and target.daily_tokens is None:
        return None
    need = estimate(engine, target, probe_set)
    calls, tokens = spent_today(engine, target.name, now)
    if target.daily_calls is not None and calls + need.calls > target.daily_calls:
        return (
            f"daily call budget: {calls} used today + {need.calls} for this run > "
            f"{target.daily_calls}"
        )
    if target.daily_tokens is not None and tokens + need.tokens > target.daily_tokens:
        return (
            f"daily token budget: {tokens} used today + ~{need.tokens} for this run > "
            f"{target.daily_tokens}"
        )
    return None
