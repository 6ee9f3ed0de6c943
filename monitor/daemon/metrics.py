"""The daemon's Prometheus metrics, in a registry of its own (no process-global state).

Counters count what this process did since it started; gauges show the latest known state.
Label values are target and probe-set names from the config, never model output.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120)


class DaemonMetrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry()
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
        self.reloads = Counter(
            "driftmon_config_reloads", "SIGHUP reloads, by outcome.", ["outcome"], registry=r
        )
        self.job_errors = Counter(
            "driftmon_job_errors",
            "Scheduled jobs that failed with an unexpected error.",
            ["job"],
            registry=r,
        )
