"""The daemon's Prometheus metrics, in a registry of its own (no process-global state).

Counters count what this process did since it started; gauges show the latest known state.
Label values are target and probe-set names from the config, never model output. Beside
driftmon's own metrics the registry holds prometheus-client's process collector (`process_*`:
memory, CPU, open files; Linux only), its Python collectors (`python_info`, `python_gc_*`) and
`driftmon_build_info`.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable, Iterator, Mapping
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import RestrictedRegistry

from monitor import __version__

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)
# An evaluation is the statistics of one run against its baseline: well under a second in
# the statistics child once it is loaded, several seconds while it starts.
EVALUATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)
DISTRIBUTION = "llm-driftmon"
# The types whose samples include a `<name>_created` timestamp in prometheus-client.
_WITH_CREATED = frozenset({"counter", "histogram", "summary"})


def _without_created(metrics: Iterable[Metric]) -> Iterator[Metric]:
    """The metrics without their `_created` samples: one extra series per counter and
    histogram child that dashboards never use and Prometheus stores as an ordinary gauge."""
    for metric in metrics:
        created = metric.name + "_created"
        if metric.type not in _WITH_CREATED or all(s.name != created for s in metric.samples):
            yield metric
            continue
        kept = Metric(metric.name, metric.documentation, metric.type, metric.unit)
        kept.samples = [s for s in metric.samples if s.name != created]
        yield kept


class _RestrictedWithoutCreated(RestrictedRegistry):
    def collect(self) -> Iterable[Metric]:
        return _without_created(super().collect())


class RegistryWithoutCreated(CollectorRegistry):
    """A registry that never exposes `_created` series.

    prometheus-client's own switch (`disable_created_metrics()`, or the environment variable
    PROMETHEUS_DISABLE_CREATED_SERIES read at import) is process-global: it would change
    every registry in the process, including any a library or a test builds. Filtering at
    collection keeps the choice to this registry, and covers `/metrics?name[]=...`, which
    prometheus-client answers from `restricted_registry`.
    """

    def collect(self) -> Iterable[Metric]:
        return _without_created(super().collect())

    def restricted_registry(self, names: Iterable[str]) -> RestrictedRegistry:
        return _RestrictedWithoutCreated(names, self)


def installed_version() -> str:
    """The installed distribution's version; the package's own from a bare source tree."""
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return __version__


class DaemonMetrics:
    def __init__(self) -> None:
        self.registry = r = RegistryWithoutCreated()
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        GCCollector(registry=r)
        self.build = Info("driftmon_build", "driftmon and Python versions; value 1.", registry=r)
        self.build.info({"version": installed_version(), "python": platform.python_version()})
        self.runs = Counter(
            "driftmon_runs",
            "Runs finished, by outcome.",
            ["target", "probe_set", "status"],
            registry=r,
        )
        self.results = Counter(
            "driftmon_results",
            "Results stored, by verdict and error class.",
            ["target", "verdict", "error_class"],
            registry=r,
        )
        self.pass_rate = Gauge(
            "driftmon_pass_rate",
            "Pass rate of the latest complete run.",
            ["target", "probe_set"],
            registry=r,
        )
        self.drifted = Gauge(
            "driftmon_drift_state",
            "1 when the latest evaluation found quality drift, else 0.",
            ["target", "probe_set"],
            registry=r,
        )
        self.last_run = Gauge(
            "driftmon_last_run_timestamp_seconds",
            "When the latest run of a target and set finished.",
            ["target", "probe_set"],
            registry=r,
        )
        self.schedule_period = Gauge(
            "driftmon_schedule_period_seconds",
            "Period of each scheduled target and set, from the running config.",
            ["target", "probe_set"],
            registry=r,
        )
        self.skipped = Counter(
            "driftmon_runs_skipped",
            "Scheduled runs not started, by reason.",
            ["target", "probe_set", "reason"],
            registry=r,
        )
        self.latency = Histogram(
            "driftmon_provider_latency_seconds",
            "Provider request latency of stored results.",
            ["target"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.evaluation = Histogram(
            "driftmon_evaluation_duration_seconds",
            "Time to evaluate a complete run for drift and update its alerts.",
            ["target"],
            buckets=EVALUATION_BUCKETS,
            registry=r,
        )
        self.deliveries = Counter(
            "driftmon_alert_deliveries",
            "Alert delivery attempts, by outcome (sent, transient, permanent).",
            ["outcome"],
            registry=r,
        )
        self.outbox = Gauge(
            "driftmon_outbox_messages",
            "Alert messages in the outbox, by status.",
            ["status"],
            registry=r,
        )
        self.identity_changes = Counter(
            "driftmon_identity_changes",
            "Model identity changes seen after a run.",
            ["target"],
            registry=r,
        )
        self.scheduler_up = Gauge(
            "driftmon_scheduler_running", "1 while the scheduler runs.", registry=r
        )
        self.heartbeat = Gauge(
            "driftmon_heartbeat_timestamp_seconds",
            "When this daemon last wrote its heartbeat to the database.",
            registry=r,
        )
        self.reloads = Counter(
            "driftmon_config_reloads", "SIGHUP reloads, by outcome.", ["outcome"], registry=r
        )
        self.job_errors = Counter(
            "driftmon_job_errors",
            "Scheduled jobs that failed with an unexpected error.",
            ["job"],
            registry=r,
        )

    def set_schedule(self, periods: Mapping[tuple[str, str], float]) -> None:
        """The periods, in seconds, of the jobs now scheduled, by (target, probe set); jobs a
        reload removed disappear."""
        self.schedule_period.clear()
        for (target, probe_set), seconds in periods.items():
            self.schedule_period.labels(target, probe_set).set(seconds)
