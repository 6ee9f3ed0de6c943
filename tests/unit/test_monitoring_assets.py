"""The Grafana dashboard and the Prometheus alerting rules in docs/ only use metrics the daemon
exposes, and are well formed (promtool is not available here: the rules' structure is checked
by hand). The metrics table in docs/operations.md lists exactly the daemon's driftmon_*
metrics, and the dashboard shows every one of them."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from ruamel.yaml import YAML

from monitor.daemon.metrics import DaemonMetrics
from tests.conftest import REPO

DASHBOARD = REPO / "docs" / "grafana" / "driftmon-dashboard.json"
RULES = REPO / "docs" / "prometheus" / "driftmon-alerts.yml"
OPERATIONS = REPO / "docs" / "operations.md"
DATASOURCE = "${DS_PROMETHEUS}"

# Series that exist without driftmon: Prometheus writes `up` for every scrape target.
PROMETHEUS_OWN = frozenset({"up"})
# PromQL words that look like identifiers but name no series. Functions and aggregations are
# recognised by the parenthesis that follows them.
KEYWORDS = frozenset(
    {"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring", "group_left"}
    | {"group_right", "atan2", "inf", "nan"}
)
SUFFIXES = {"histogram": ("_bucket", "_sum", "_count"), "summary": ("_sum", "_count")}


# --- what the daemon exposes ------------------------------------------------------------------


def exposed_families() -> dict[str, set[str]]:
    """Each metric family of the daemon's registry (as named on its TYPE line) with the series
    names it can have."""
    text = generate_latest(DaemonMetrics().registry).decode()
    families: dict[str, set[str]] = {}
    for name, kind in re.findall(r"^# TYPE (\S+) (\S+)$", text, re.MULTILINE):
        families[name] = {name, *(name + s for s in SUFFIXES.get(kind, ()))}
    # Sample lines too: a family's series are whatever it writes.
    for sample in re.findall(r"^([a-zA-Z_:][\w:]*)[{ ]", text, re.MULTILINE):
        owner = max((f for f in families if sample.startswith(f)), key=len, default=sample)
        families.setdefault(owner, set()).add(sample)
    return families


EXPOSED = frozenset(name for names in exposed_families().values() for name in names)


# --- metric names in PromQL -------------------------------------------------------------------


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects: every identifier that is not a string,
    a label matcher, a range, a grouping label list, a Grafana variable, a function or
    aggregation (followed by a parenthesis), or a keyword."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`', " ", expr)
    text = re.sub(r"\{[^}]*\}", " ", text)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\$\{?\w+\}?", " ", text)
    names = set()
    for name, call in re.findall(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        if not call and name.lower() not in KEYWORDS:
            names.add(name)
    return names


def unknown_metrics(expr: str) -> set[str]:
    return metric_names(expr) - EXPOSED - PROMETHEUS_OWN


# --- the assets -------------------------------------------------------------------------------


def load_rules() -> dict[str, Any]:
    rules: dict[str, Any] = YAML(typ="safe").load(RULES.read_text(encoding="utf-8"))
    return rules


def load_dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return dashboard


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def dashboard_queries(dashboard: dict[str, Any]) -> list[str]:
    """Every panel query, and the PromQL of every query variable (`label_values(expr, label)`
    selects from `expr`)."""
    queries = [node["expr"] for node in walk(dashboard["panels"]) if "expr" in node]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        query = variable["query"]
        query = query["query"] if isinstance(query, dict) else query
        found = re.fullmatch(r"\s*label_values\((.*),\s*\w+\s*\)\s*", query)
        queries.append(found.group(1) if found else query)
    return queries


def rule_expressions() -> list[tuple[str, str]]:
    return [
        (rule["alert"], rule["expr"]) for group in load_rules()["groups"] for rule in group["rules"]
    ]


# --- the extraction itself ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ('up{job="driftmon"} == 0', {"up"}),
        (
            'sum by (target, probe_set) (increase(driftmon_runs_total{status="complete"}[1h]))',
            {"driftmon_runs_total"},
        ),
        (
            "histogram_quantile(0.95, sum by (le) (rate(driftmon_provider_latency_seconds_bucket"
            '{job=~"$job"}[$window])))',
            {"driftmon_provider_latency_seconds_bucket"},
        ),
        (
            "a_metric * 2 < on() group_left() (time() - min(process_start_time_seconds)) "
            "unless ignoring(instance) b:recorded offset 5m",
            {"a_metric", "process_start_time_seconds", "b:recorded"},
        ),
        ("count(x == 1) or vector(0) and bool_metric > bool 1e3", {"x", "bool_metric"}),
    ],
)
def test_metric_names_are_the_series_an_expression_selects(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


@pytest.mark.parametrize(
    "expr",
    [
        "driftmon_runz_total > 0",  # a typo
        'sum(rate(driftmon_results{verdict="error"}[5m]))',  # a counter without _total
        "max(driftmon_outbox_depth) > 10",  # a metric that never existed
        "driftmon_runs_total_bucket",  # a histogram suffix on a counter
        "rate(driftmon_runs_created[5m])",  # a series the daemon drops
    ],
)
def test_an_expression_naming_a_missing_metric_is_caught(expr: str) -> None:
    assert unknown_metrics(expr), f"{expr!r} passed, but names no exposed metric"


def test_the_daemon_exposes_its_own_and_the_collectors_metrics() -> None:
    assert {
        "driftmon_runs_total",
        "driftmon_provider_latency_seconds_bucket",
        "driftmon_build_info",
        "process_resident_memory_bytes",
        "python_gc_collections_total",
    } <= EXPOSED
    assert not [name for name in EXPOSED if name.endswith("_created")]


# --- the alerting rules -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alert", "expr"), rule_expressions(), ids=[a for a, _ in rule_expressions()]
)
def test_every_rule_uses_only_exposed_metrics(alert: str, expr: str) -> None:
    assert metric_names(expr), f"{alert}: no metric found in {expr!r}"
    assert not unknown_metrics(expr), f"{alert} uses metrics the daemon does not expose"


def test_the_rules_file_has_the_structure_prometheus_loads() -> None:
    rules = load_rules()
    assert set(rules) == {"groups"} and rules["groups"]
    names: list[str] = []
    for group in rules["groups"]:
        assert set(group) == {"name", "rules"} and group["rules"], group.get("name")
        for rule in group["rules"]:
            name = rule.get("alert")
            assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}, name
            assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name), name
            assert isinstance(rule["expr"], str) and rule["expr"].strip(), name
            assert re.fullmatch(r"(\d+[smhdwy])+", str(rule["for"])), name
            assert rule["labels"]["severity"] in ("critical", "warning", "info"), name
            assert set(rule["annotations"]) == {"summary", "description"}, name
            assert all(isinstance(v, str) and v.strip() for v in rule["annotations"].values())
            assert rule["expr"].count("(") == rule["expr"].count(")"), name
            names.append(name)
    assert len(names) == len(set(names)), "two rules share an alert name"
    assert {"DriftmonDown", "DriftmonRunsOverdue", "DriftmonHeartbeatStale"} <= set(names)
    assert {"DriftmonOutboxBacklog", "DriftmonAlertDeliveriesFailed"} <= set(names)
    assert "DriftmonDriftDetected" in names


# --- the dashboard ----------------------------------------------------------------------------


@pytest.mark.parametrize("expr", dashboard_queries(load_dashboard()))
def test_every_dashboard_query_uses_only_exposed_metrics(expr: str) -> None:
    assert metric_names(expr), f"no metric found in {expr!r}"
    assert not unknown_metrics(expr)


def test_the_dashboard_asks_for_its_prometheus_on_import() -> None:
    dashboard = load_dashboard()
    [source] = dashboard["__inputs"]
    assert source["name"] == "DS_PROMETHEUS" and source["pluginId"] == "prometheus"
    sources = [node["datasource"] for node in walk(dashboard) if "datasource" in node]
    prometheus = [s for s in sources if s.get("type") == "prometheus"]
    assert prometheus and all(s["uid"] == DATASOURCE for s in prometheus)
    assert all(s["type"] in ("prometheus", "grafana") for s in sources)
    panels = list(walk(dashboard["panels"]))
    ids = [p["id"] for p in panels if "gridPos" in p]
    assert len(ids) == len(set(ids)), "two panels share an id"
    for panel in panels:
        if "gridPos" in panel and panel["type"] != "row":
            assert panel.get("targets"), f"panel {panel['title']!r} has no query"


def test_the_dashboard_shows_every_driftmon_metric() -> None:
    used = {name for expr in dashboard_queries(load_dashboard()) for name in metric_names(expr)}
    missing = [
        family
        for family, names in exposed_families().items()
        if family.startswith("driftmon_") and not names & used
    ]
    assert not missing, f"metrics without a dashboard panel: {missing}"


# --- the documentation ------------------------------------------------------------------------


def test_the_operations_guide_documents_exactly_the_driftmon_metrics() -> None:
    text = OPERATIONS.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(driftmon_\w+)` \|", text, re.MULTILINE))
    exposed = {family for family in exposed_families() if family.startswith("driftmon_")}
    assert documented == exposed
    assert "grafana/driftmon-dashboard.json" in text and "prometheus/driftmon-alerts.yml" in text
