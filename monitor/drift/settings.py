"""The [drift] settings. Every default is justified by bench/calibration.py, whose output is
in docs/statistics.md: change a default only together with that table."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import ConfigError


class DriftConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    alpha: float = Field(default=0.01, gt=0, lt=0.5)  # BH false-discovery rate: `pending`
    # Average evaluations of one target between false alarms when nothing changed (the
    # in-control run length of the CUSUM rule, split over the metrics tested); sets the
    # evidence threshold. 20,000 is 2.3 years of hourly runs: see docs/statistics.md.
    runs_between_false_alarms: int = Field(default=20_000, ge=10, le=10_000_000)
    # Evidence (standard-normal units) one evaluation must bring to add to the CUSUM. Above the
    # textbook 0.5-1: it absorbs the small common offset a fixed baseline gives every evaluation
    # and lowers the threshold for strong changes (docs/statistics.md, "The alarm rule").
    cusum_reference: float = Field(default=1.5, gt=0, le=5)
    persistence: int = Field(default=1, ge=1, le=24)  # consecutive alarming evaluations
    baseline_runs: int = Field(default=24, ge=1, le=100)  # runs in an automatic baseline
    window_runs: int = Field(default=1, ge=1, le=100)  # runs in the current window
    min_probes: int = Field(default=10, ge=1)  # paired probe versions needed for any test
    min_samples: int = Field(default=20, ge=1)  # observations per side needed for a metric
    min_rate_change: float = Field(default=0.05, ge=0, le=1)  # binary effect floor (points/100)
    min_js_distance: float = Field(default=0.1, ge=0, le=1)  # categorical effect floor
    min_wasserstein: float = Field(default=0.25, ge=0)  # numeric effect floor (normalised)
    min_text_change: float = Field(default=0.01, ge=0, le=1)  # text similarity drop floor
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
