"""The daemon's HTTP endpoints over a real loopback socket: `/` links the others, `/metrics`
carries the process and Python collectors and `driftmon_build_info` and no `_created` series,
in both exposition formats and for `name[]` queries, without changing other registries."""

from __future__ import annotations

import platform
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry, Counter, generate_latest

from monitor.daemon.health import HealthServer
from monitor.daemon.metrics import DaemonMetrics, installed_version

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def healthy() -> tuple[bool, dict[str, Any]]:
    return True, {"reasons": []}


@pytest.fixture
def metrics() -> DaemonMetrics:
    """Metrics with a child of every kind that has a `_created` sample in prometheus-client."""
    m = DaemonMetrics()
    m.runs.labels("sim", "e2e", "complete").inc()
    m.latency.labels("sim").observe(0.3)
    m.evaluation.labels("sim").observe(0.2)
    m.reloads.labels("applied").inc()
    return m


@pytest.fixture
def server(metrics: DaemonMetrics) -> Iterator[str]:
    health = HealthServer("127.0.0.1:0", metrics.registry, healthy)
    health.start()
    try:
        yield f"http://{health.address}"
    finally:
        health.stop()


def test_root_is_a_page_linking_metrics_and_health(server: str) -> None:
    page = httpx.get(server + "/", timeout=5)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert {'href="/metrics"', 'href="/healthz"'} <= set(re.findall(r'href="[^"]*"', page.text))


def test_unknown_paths_are_still_not_found(server: str) -> None:
    for path in ("/nowhere", "/index.html", "/metrics/extra"):
        assert httpx.get(server + path, timeout=5).status_code == 404
    assert httpx.get(server + "/healthz", timeout=5).json()["status"] == "ok"


def test_metrics_carry_build_info_and_the_process_and_python_collectors(server: str) -> None:
    text = httpx.get(server + "/metrics", timeout=5).text
    python, driftmon = platform.python_version(), installed_version()
    build = f'driftmon_build_info{{python="{python}",version="{driftmon}"}} 1.0'
    assert build in text.splitlines()
    for name in (
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
        "python_info",
        "python_gc_collections_total",
    ):
        assert re.search(rf"^{name}[{{ ]", text, re.MULTILINE), f"{name} is not exposed"


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("", None),
        ("", OPENMETRICS),
        ("?name[]=driftmon_runs_total&name[]=driftmon_runs_created", None),
    ],
    ids=["text", "openmetrics", "restricted"],
)
def test_metrics_have_no_created_series(server: str, query: str, accept: str | None) -> None:
    headers = {"Accept": accept} if accept else {}
    text = httpx.get(server + "/metrics" + query, headers=headers, timeout=5).text
    assert "driftmon_runs_total" in text
    assert "_created" not in text


def test_dropping_created_series_leaves_other_registries_alone(metrics: DaemonMetrics) -> None:
    other = CollectorRegistry()
    Counter("elsewhere", "A counter of another registry.", registry=other).inc()
    assert b"elsewhere_created" in generate_latest(other)
    assert b"_created" not in generate_latest(metrics.registry)
    # The families themselves keep their samples.
    assert b'driftmon_provider_latency_seconds_count{target="sim"} 1.0' in generate_latest(
        metrics.registry
    )


def test_schedule_periods_follow_the_running_config() -> None:
    m = DaemonMetrics()
    m.set_schedule({("sim", "e2e"): 3600.0, ("sim", "other"): 60.0})
    m.set_schedule({("sim", "e2e"): 7200.0})  # a reload removed sim/other
    text = generate_latest(m.registry).decode()
    assert 'driftmon_schedule_period_seconds{probe_set="e2e",target="sim"} 7200.0' in text
    assert 'probe_set="other"' not in text
