"""The resolved scenario: what the simulator consults on every request.

`monitor.simulator.scenario` parses and checks a scenario file, then flattens every
(phase, rule) pair into one `RuleSpec` here, so serving a request never merges overrides,
parses YAML or compiles a regex: it looks up a frozen object.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Behaviour = Literal[
    "valid",
    "schema_invalid",
    "wrong_value",
    "non_json",
    "fenced",
    "prose",
    "refusal",
    "empty",
    "truncated",
]
BEHAVIOURS: tuple[Behaviour, ...] = (
    "valid",
    "schema_invalid",
    "wrong_value",
    "non_json",
    "fenced",
    "prose",
    "refusal",
    "empty",
    "truncated",
)
FaultKind = Literal["rate_limit", "server_error", "error", "hang", "malformed", "disconnect"]
Api = Literal["openai", "anthropic"]
DEFAULT_RULE = "default"


@dataclass(frozen=True)
class Dist:
    """A fixed value (sd = 0) or a normal distribution, clipped at zero."""

    mean: float
    sd: float = 0.0

    def draw(self, rng: random.Random) -> float:
        if self.sd <= 0:
            return self.mean
        return max(0.0, rng.gauss(self.mean, self.sd))


@dataclass(frozen=True)
class FaultSpec:
    """One fault of a rule. Exactly one of `rate` and `first_n` is set."""

    kind: FaultKind
    rate: float | None = None
    first_n: int | None = None
    status: int = 0  # for rate_limit / server_error / error
    retry_after: float | None = None  # seconds, sent as Retry-After
    variant: Literal["not_json", "wrong_shape"] = "not_json"  # for malformed
    hang_seconds: float = 600.0  # a hang gives up after this even if the client never does


@dataclass(frozen=True)
class RuleSpec:
    """How one rule answers in one phase, every override already applied."""

    behaviour: Behaviour = "valid"
    # (behaviour, probability) pairs; the remainder of 1 goes to `behaviour`.
    mix: tuple[tuple[Behaviour, float], ...] = ()
    output: tuple[str, ...] = ()
    wrong_output: tuple[str, ...] = ()
    pick: Literal["cycle", "random"] = "cycle"
    fields: Mapping[str, Any] = field(default_factory=dict)
    wrong_fields: Mapping[str, Any] = field(default_factory=dict)
    wrong_paths: tuple[str, ...] = ()  # wrong_fields given as a list: values chosen for us
    schema: Mapping[str, Any] | None = None  # used when the request carries no schema
    length: Dist | None = None
    latency_ms: Dist | None = None
    finish_reason: str | None = None
    faults: tuple[FaultSpec, ...] = ()

    def draw_behaviour(self, rng: random.Random) -> Behaviour:
        if not self.mix:
            return self.behaviour
        u = rng.random()
        for name, p in self.mix:
            if u < p:
                return name
            u -= p
        return self.behaviour


@dataclass(frozen=True)
class Rule:
    """Which requests a rule takes: all given filters must match."""

    name: str
    pattern: re.Pattern[str] | None = None  # searched in the last user message
    model_pattern: re.Pattern[str] | None = None  # searched in the requested model name
    api: Api | None = None

    def matches(self, api: Api, model: str, last_user: str) -> bool:
        if self.api is not None and self.api != api:
            return False
        if self.model_pattern is not None and not self.model_pattern.search(model):
            return False
        return self.pattern is None or self.pattern.search(last_user) is not None


@dataclass(frozen=True)
class Phase:
    name: str
    # None echoes the requested model; a mapping renames known models and echoes the rest.
    model: str | Mapping[str, str] | None = None
    fingerprint: str | None = None
    after_requests: int | None = None  # switch to `next` once this phase served this many
    next: str | None = None

    def served_model(self, requested: str) -> str:
        if self.model is None:
            return requested
        if isinstance(self.model, str):
            return self.model
        return self.model.get(requested, requested)


@dataclass(frozen=True)
class Scenario:
    name: str
    seed: int
    rules: tuple[Rule, ...]  # in match order; the default rule (matches everything) is last
    phases: tuple[Phase, ...]
    start_phase: str
    specs: Mapping[tuple[str, str], RuleSpec]  # (phase, rule) -> spec
    source: str | None = None  # the file it came from

    def phase(self, name: str) -> Phase:
        for phase in self.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    @property
    def phase_names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.phases)

    def match(self, api: Api, model: str, last_user: str) -> Rule:
        for rule in self.rules:
            if rule.matches(api, model, last_user):
                return rule
        return self.rules[-1]
