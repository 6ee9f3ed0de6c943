"""The [drift] settings. Every default is justified by bench/calibration.py, whose output is
in docs/statistics.md: change a default only together with that table."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import ConfigError


class DriftConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.01, gt=0, lt=0.5)  # BH false-discovery rate per evaluation
    persistence: int = Field(default=2, ge=1, le=24)  # consecutive significant windows to alarm
    baseline_runs: int = Field(default=3, ge=1, le=100)  # runs in an automatic baseline
    window_runs: int = Field(default=1, ge=1, le=100)  # runs in the current window
    min_probes: int = Field(default=10, ge=1)  # paired probe versions needed for any test
    min_samples: int = Field(default=20, ge=1)  # observations per side needed for a metric
    min_rate_change: float = Field(default=0.05, ge=0, le=1)  # binary effect floor (points/100)
    min_js_distance: float = Field(default=0.1, ge=0, le=1)  # categorical effect floor
    min_wasserstein: float = Field(default=0.25, ge=0)  # numeric effect floor (normalised)
    permutations: int = Field(default=2000, ge=100, le=100_000)  # where a permutation is used
    seed: int = 0  # for any Monte Carlo p-value: same data, same verdict


def drift_config(raw: dict[str, Any] | BaseModel | None, *, file: str | None = None) -> DriftConfig:
    """Validate the [drift] table of the config file; errors name the key."""
    data = raw.model_dump() if isinstance(raw, BaseModel) else (raw or {})
    try:
        return DriftConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = "drift." + ".".join(str(p) for p in first["loc"])
        problem = "unknown key" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(problem, file=file, key=key) from None
