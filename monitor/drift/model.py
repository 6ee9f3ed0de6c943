"""Types shared by the drift pieces. Pure data: no SQL, no I/O.

The probe set is fixed, so baseline and current windows are paired by probe version: every
per-probe structure below is keyed by probe_version_id, and a probe version present on only
one side is excluded from the comparison (and counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class MetricKind(StrEnum):
    BINARY = "binary"  # values are bool: pass_rate, check:<n>, json_parse_rate, refusal_rate...
    CATEGORICAL = "categorical"  # values are str: format, finish_reason, tool_name, field:...
    NUMERIC = "numeric"  # values are float: length_chars, length_tokens, field:<number>, latency
    TEXT = "text"  # values are str, the outputs themselves: text_distribution


class Family(StrEnum):
    QUALITY = "quality"  # behaviour drift: alerts as drift
    OPERATIONAL = "operational"  # error_rate, latency: reported and alertable, never drift


class State(StrEnum):
    DRIFTED = "drifted"  # significant after correction, above the effect floor, persistent
    PENDING = "pending"  # significant and meaningful, but the evidence is below the threshold
    NO_MEANINGFUL_CHANGE = "no_meaningful_change"  # significant but below the effect floor
    NOT_SIGNIFICANT = "not_significant"
    INSUFFICIENT_DATA = "insufficient_data"  # below the minimum sample sizes: no test run


@dataclass(frozen=True)
class Observation:
    """One stored result, reduced to what the metrics need."""

    probe_version_id: int
    verdict: str  # a monitor.store.states.ResultVerdict: pass | fail | error
    format_kind: str | None = None
    parsed: bool | None = None
    refusal: bool | None = None
    checks: tuple[bool | None, ...] | None = None
    tracked: dict[str, Any] | None = None
    finish_reason: str | None = None
    output_chars: int | None = None
    output_tokens: int | None = None
    latency_ms: float | None = None
    error_class: str | None = None
    # tool_call probes only (None elsewhere, and in results stored before they were recorded).
    tool_called: bool | None = None
    tool_name: str | None = None
    tool_args_valid: bool | None = None
    # The run the result belongs to: the baseline's run-to-run variation is estimated per run.
    # None (backtests, recorded data): all results count as one run.
    run_id: int | None = None
    output: str | None = None  # the output text (text_distribution); None where not kept


@dataclass(frozen=True)
class Carry:
    """What one evaluation passes to the next against the same baseline, per metric."""

    streak: int = 0  # consecutive evaluations at or above the alarm threshold, effect meaningful
    evidence: float = 0.0  # the CUSUM statistic after the evaluation (see decide.py)


@dataclass(frozen=True)
class Dispersion:
    """A baseline's run-to-run variation for one metric (monitor.drift.runs)."""

    factor: float  # the estimate of phi, not floored: < 1 when runs agree more than sampling
    runs: int  # leave-one-out comparisons it averages


@dataclass(frozen=True)
class MetricData:
    """One metric's values on both sides, per probe version (paired)."""

    name: str  # pass_rate, check:1, json_parse_rate, format, code_fence_rate, refusal_rate,
    # finish_reason, field:<name>, length_chars, length_tokens, text_distribution,
    # tool_call_rate, tool_name, tool_args_valid, error_rate, latency
    kind: MetricKind
    family: Family
    baseline: dict[int, list[Any]]
    current: dict[int, list[Any]]


@dataclass(frozen=True)
class TestResult:
    """What a statistical test found for one metric."""

    test: str  # e.g. "stratified exact (McNemar when 1 sample/probe)", "CMH", "van Elteren"
    p_value: float
    effect: float  # binary: current - baseline rate; categorical: Jensen-Shannon distance;
    # numeric: Wasserstein distance / baseline spread (normalised)
    effect_name: str  # "rate difference", "Jensen-Shannon distance", "normalised Wasserstein"
    baseline_value: Any  # rate, distribution {category: share}, or median
    current_value: Any
    baseline_n: int  # observations used
    current_n: int
    strata: int  # probe versions that contributed
    # Integer-valued numeric data only: the median over probe versions of the shift of the
    # probe's median (current - baseline), in the metric's unit. A typical shift of one unit
    # (one token, one character) is below the resolution of a count and never meaningful.
    shift: float | None = None


@dataclass(frozen=True)
class Verdict:
    metric: str
    family: Family
    state: State
    p_value: float | None
    p_adjusted: float | None  # Benjamini-Hochberg within the family of this evaluation
    effect: float | None
    effect_name: str | None
    test: str | None
    baseline_n: int
    baseline_value: Any
    current_n: int
    current_value: Any
    streak: int = 0  # consecutive evaluations (this one included) alarming: evidence at or
    # above the threshold and the effect meaningful
    note: str | None = None  # e.g. why data was insufficient
    evidence: float | None = None  # CUSUM statistic after this evaluation (None: not tested)
    threshold: float | None = None  # the evidence at which the metric alarms
    # The factor the evidence was divided by for run-to-run variation (monitor.drift.runs.
    # inflation, >= 1); None: not estimated. The p-value is already corrected by it.
    dispersion: float | None = None

    @property
    def carry(self) -> Carry:
        return Carry(self.streak, self.evidence or 0.0)

    @property
    def drifted(self) -> bool:
        return self.state is State.DRIFTED


@dataclass(frozen=True)
class Evaluation:
    verdicts: tuple[Verdict, ...]
    paired_probes: int  # probe versions on both sides
    excluded_probes: int  # probe versions on one side only
    notes: tuple[str, ...] = field(default_factory=tuple)
    # The baseline's run-to-run variation used (monitor.drift.runs.Dispersion per metric): a
    # caller may keep it for the next evaluation against the same baseline.
    dispersion: dict[str, Any] = field(default_factory=dict)

    @property
    def drifted(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.drifted and v.family is Family.QUALITY)
