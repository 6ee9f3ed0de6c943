"""The scenario file format as pydantic models: types, ranges and cross-field rules.

Unknown keys are refused (`extra="forbid"`), so a typo such as `behavior:` is an error naming
the key rather than a silently ignored setting. Resolution into the runtime model is in
`monitor.simulator.scenario`.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from monitor.simulator.model import Api, Behaviour, FaultKind

_STATUS_KIND: dict[int, FaultKind] = {429: "rate_limit"}


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class DistIn(_In):
    mean: float = Field(ge=0)
    sd: float = Field(0.0, ge=0)


class FaultIn(_In):
    kind: FaultKind
    rate: float | None = Field(None, ge=0, le=1)
    first_n: int | None = Field(None, ge=1)
    status: int | None = Field(None, ge=400, le=599)
    retry_after: float | None = Field(None, ge=0)
    variant: Literal["not_json", "wrong_shape"] = "not_json"
    hang_seconds: float = Field(600.0, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _status_as_kind(cls, data: Any) -> Any:
        # `kind: 503` is shorthand for `kind: server_error, status: 503`.
        if isinstance(data, dict) and isinstance(data.get("kind"), int):
            status = data["kind"]
            kind = _STATUS_KIND.get(status, "server_error" if status >= 500 else "error")
            data = {**data, "kind": kind, "status": status}
        return data

    @model_validator(mode="after")
    def _check(self) -> FaultIn:
        if (self.rate is None) == (self.first_n is None):
            raise ValueError("give exactly one of `rate` (a probability) or `first_n`")
        if self.kind == "error" and self.status is None:
            raise ValueError("a fault of kind `error` needs a `status` (e.g. 401)")
        return self


class SpecIn(_In):
    behaviour: Behaviour | None = None
    mix: dict[Behaviour, float] | None = None
    output: str | list[str] | None = None
    wrong_output: str | list[str] | None = None
    pick: Literal["cycle", "random"] | None = None
    fields: dict[str, Any] | None = None
    wrong_fields: dict[str, Any] | list[str] | None = None
    schema_: dict[str, Any] | None = Field(None, alias="schema")
    length: int | DistIn | None = None
    latency_ms: float | DistIn | None = None
    finish_reason: str | None = None
    faults: list[FaultIn] | None = None

    @field_validator("mix")
    @classmethod
    def _check_mix(cls, mix: dict[Behaviour, float] | None) -> dict[Behaviour, float] | None:
        if mix is not None:
            if any(p < 0 for p in mix.values()):
                raise ValueError("mix probabilities must be >= 0")
            if sum(mix.values()) > 1 + 1e-9:
                raise ValueError(
                    f"mix probabilities add up to {sum(mix.values()):g}, more than 1 "
                    "(what is left below 1 goes to `behaviour`)"
                )
        return mix


class RuleIn(SpecIn):
    name: str | None = Field(None, min_length=1)
    match: str | None = None
    match_model: str | None = None
    api: Api | None = None


class PhaseIn(_In):
    model: str | dict[str, str] | None = None
    fingerprint: str | None = None
    after_requests: int | None = Field(None, ge=1)
    next: str | None = None
    defaults: SpecIn | None = None
    rules: dict[str, SpecIn] = Field(default_factory=dict)


class ScenarioIn(_In):
    name: str = "scenario"
    description: str = ""
    seed: int = 0
    model: str | dict[str, str] | None = None
    fingerprint: str | None = None
    start_phase: str | None = None
    defaults: SpecIn | None = None
    rules: list[RuleIn] = Field(default_factory=list)
    default: SpecIn | None = None
    phases: dict[str, PhaseIn] | None = None
