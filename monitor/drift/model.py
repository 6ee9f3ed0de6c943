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


class Family(StrEnum):
    QUALITY = "quality"  # behaviour drift: alerts as drift
    OPERATIONAL = "operational"  # error_rate, latency: reported and alertable, never drift


class State(StrEnum):
    DRIFTED = "drifted"  # significant after correction, above the effect floor, persistent
    PENDING = "pending"  # significant and meaningful, but not yet for `persistence` windows
    NO_MEANINGFUL_CHANGE = "no_meaningful_change"  # significant but below the effect floor
    NOT_SIGNIFICANT = "not_significant"
    INSUFFICIENT_DATA = "insufficient_data"  # below the minimum sample sizes: no test run


@dataclass(frozen=True)
class Observation:
    """One stored result, reduced to what the metrics need."""

    probe_version_id: int
    verdict: str  # pass | fail | error
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


@dataclass(frozen=True)
class MetricData:
    """One metric's values on both sides, per probe version (paired)."""

    name: str  # pass_rate, check:1, json_parse_rate, format, refusal_rate, finish_reason,
    # field:<name>, length_chars, length_tokens, tool_call_rate, tool_name, tool_args_valid,
    # error_rate, latency
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
    streak: int = 0  # consecutive evaluations (this one included) significant and meaningful
    note: str | None = None  # e.g. why data was insufficient

    @property
    def drifted(self) -> bool:
        return self.state is State.DRIFTED


@dataclass(frozen=True)
class Evaluation:
    verdicts: tuple[Verdict, ...]
    paired_probes: int  # probe versions on both sides
    excluded_probes: int  # probe versions on one side only
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def drifted(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if v.drifted and v.family is Family.QUALITY)
