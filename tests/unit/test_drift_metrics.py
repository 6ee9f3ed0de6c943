"""Observations -> MetricData: pairing, which results feed which metric, kinds, SPEC names."""

from __future__ import annotations

import math
from typing import Any

from monitor.drift.metrics import (
    build_metrics,
    canonical,
    compute_metrics,
    group_by_version,
    has_code_fence,
    pair_versions,
)
from monitor.drift.model import Family, MetricData, MetricKind, Observation


def ok(pv: int, verdict: str = "pass", **kw: Any) -> Observation:
    defaults: dict[str, Any] = {
        "format_kind": "clean",
        "parsed": True,
        "refusal": False,
        "finish_reason": "stop",
        "output_chars": 100,
        "output_tokens": 25,
        "latency_ms": 800.0,
    }
    return Observation(probe_version_id=pv, verdict=verdict, **(defaults | kw))


def error(pv: int) -> Observation:
    return Observation(pv, "error", latency_ms=30_000.0, error_class="timeout")


def by_name(metrics: list[MetricData]) -> dict[str, MetricData]:
    return {m.name: m for m in metrics}


def test_versions_on_one_side_only_are_excluded_and_counted() -> None:
    b = group_by_version([ok(1), ok(2), ok(3)])
    c = group_by_version([ok(2), ok(3), ok(4), ok(5)])
    paired, excluded = pair_versions(b, c)
    assert (paired, excluded) == ([2, 3], 3)
    pass_rate = by_name(build_metrics(b, c, paired))["pass_rate"]
    assert set(pass_rate.baseline) == set(pass_rate.current) == {2, 3}


def test_errors_count_only_in_error_rate() -> None:
    base = [ok(1), ok(1, "fail"), error(1)]
    cur = [error(1), error(1), ok(1)]
    m = by_name(compute_metrics(base, cur))
    assert m["pass_rate"].baseline == {1: [True, False]}
    assert m["pass_rate"].current == {1: [True]}
    assert m["error_rate"].baseline == {1: [False, False, True]}
    assert m["error_rate"].current == {1: [True, True, False]}
    assert m["error_rate"].family is Family.OPERATIONAL
    assert m["latency"].family is Family.OPERATIONAL
    assert m["latency"].current == {1: [800.0]}  # the timeouts' 30 s are not latency
    assert m["length_chars"].baseline == {1: [100, 100]}


def test_checks_are_one_based_and_skip_unevaluated_entries() -> None:
    base = [ok(1, checks=(True, None, False)), ok(1, checks=(True,))]
    cur = [ok(1, checks=(False, True, None))]
    m = by_name(compute_metrics(base, cur))
    assert m["check:1"].baseline == {1: [True, True]} and m["check:1"].current == {1: [False]}
    assert m["check:2"].baseline == {} and m["check:2"].current == {1: [True]}
    assert m["check:3"].baseline == {1: [False]} and m["check:3"].current == {}
    assert all(m[f"check:{i}"].kind is MetricKind.BINARY for i in (1, 2, 3))


def test_json_metrics_skip_text_probe_versions_even_when_their_output_is_empty() -> None:
    base = [
        ok(1, format_kind="clean"),
        ok(1, "fail", format_kind="empty", parsed=False),
        ok(2, format_kind="text", parsed=True),
        ok(2, "fail", format_kind="empty", parsed=False),
    ]
    cur = [ok(1, format_kind="fenced"), ok(2, "fail", format_kind="empty", parsed=False)]
    m = by_name(compute_metrics(base, cur))
    assert m["json_parse_rate"].baseline == {1: [True, False]}
    assert m["json_parse_rate"].current == {1: [True]}
    assert m["format"].baseline == {1: ["clean", "empty"]}
    assert m["format"].current == {1: ["fenced"]}
    assert m["format"].kind is MetricKind.CATEGORICAL
    assert m["pass_rate"].current == {1: [True], 2: [False]}  # text probes still count here


def test_tracked_fields_numeric_or_canonical_categories() -> None:
    base = [
        ok(1, tracked={"total": 10, "currency": "USD", "flag": True, "items": {"b": 1, "a": 2}}),
        ok(1, tracked={"total": 10.5, "currency": None, "flag": False, "mixed": 1}),
    ]
    cur = [ok(1, tracked={"total": 11, "flag": True, "items": {"a": 2, "b": 1}, "mixed": "1.0"})]
    m = by_name(compute_metrics(base, cur))
    assert m["field:total"].kind is MetricKind.NUMERIC
    assert m["field:total"].baseline == {1: [10, 10.5]} and m["field:total"].current == {1: [11]}
    assert m["field:currency"].kind is MetricKind.CATEGORICAL
    assert m["field:currency"].baseline == {1: ["USD", "null"]}  # JSON null is a value
    assert m["field:currency"].current == {}  # absent: no value at all
    assert m["field:flag"].kind is MetricKind.CATEGORICAL  # bools are categories
    assert m["field:flag"].baseline == {1: ["true", "false"]}
    assert m["field:items"].baseline == m["field:items"].current == {1: ['{"a":2,"b":1}']}
    assert m["field:mixed"].kind is MetricKind.CATEGORICAL
    assert m["field:mixed"].baseline == {1: ["1"]} and m["field:mixed"].current == {1: ["1.0"]}
    assert canonical(1.0) == canonical(1) == "1"


def test_metrics_in_spec_order_and_absent_ones_skipped() -> None:
    base = [ok(1, checks=(True,), tracked={"b": 1, "a": "x"}, output_tokens=None)]
    cur = [ok(1, checks=(False,), tracked={"b": 2, "a": "y"}, output_tokens=None)]
    names = [m.name for m in compute_metrics(base, cur)]
    assert names == [
        "pass_rate",
        "check:1",
        "json_parse_rate",
        "format",
        "refusal_rate",
        "finish_reason",
        "field:a",
        "field:b",
        "length_chars",
        "error_rate",
        "latency",
    ]


def test_non_finite_values_never_reach_the_numeric_tests() -> None:
    base = [ok(1, latency_ms=math.nan), ok(1, latency_ms=5.0), ok(1, tracked={"x": 1e400})]
    cur = [ok(1, latency_ms=math.inf), ok(1, tracked={"x": 2})]
    m = by_name(compute_metrics(base, cur))
    assert m["latency"].baseline == {1: [5.0, 800.0]} and m["latency"].current == {1: [800.0]}
    assert m["field:x"].kind is MetricKind.CATEGORICAL  # inf is no number to rank


def test_only_errors_on_one_side_keeps_the_metric_for_a_verdict() -> None:
    m = by_name(compute_metrics([ok(1)], [error(1)]))
    assert m["pass_rate"].baseline == {1: [True]} and m["pass_rate"].current == {}


def test_output_text_feeds_text_distribution_after_the_lengths() -> None:
    base = [ok(1, output="a"), ok(1, output="bb"), error(1), ok(2, output="")]
    cur = [ok(1, output="c"), ok(1), ok(2, output="d", run_id=7)]  # no text kept: skipped
    m = by_name(compute_metrics(base, cur))
    text = m["text_distribution"]
    assert (text.kind, text.family) == (MetricKind.TEXT, Family.QUALITY)
    assert text.baseline == {1: ["a", "bb"], 2: [""]} and text.current == {1: ["c"], 2: ["d"]}
    names = list(m)
    assert names.index("length_tokens") + 1 == names.index("text_distribution")
    assert names.index("text_distribution") + 1 == names.index("error_rate")


def test_code_fences_are_lines_opening_with_three_backticks_or_tildes() -> None:
    fenced = ["```python\nx = 1\n```", "Here:\n\n```\nx\n```", "   ~~~\nx", "a\n```"]
    plain = ["x = 1", "inline ```code``` in a line", "    ```\nindented code", "``", "~~ x"]
    assert all(has_code_fence(t) for t in fenced)
    assert not any(has_code_fence(t) for t in plain)


def test_code_fence_rate_counts_stored_text_outputs_only() -> None:
    text = {"format_kind": "text", "parsed": None}
    base = [ok(1, output="def f(): pass", **text), ok(1, output="```\nx\n```", **text)]
    base += [ok(1, **text), ok(2, output="```json\n{}\n```", format_kind="fenced")]
    base += [ok(1, "fail", output="", format_kind="empty", parsed=None)]
    cur = [ok(1, output="```python\ndef f(): pass\n```", **text), error(1)]
    cur += [ok(2, output="{}", format_kind="clean")]
    m = by_name(compute_metrics(base, cur))
    fences = m["code_fence_rate"]
    assert (fences.kind, fences.family) == (MetricKind.BINARY, Family.QUALITY)
    # Not the output kept nowhere, not the empty output, not the JSON probe's fenced JSON
    # (that is `format`'s "fenced"), not the error.
    assert fences.baseline == {1: [False, True]} and fences.current == {1: [True]}
    assert m["format"].baseline == {2: ["fenced"]}
    names = list(m)
    assert names.index("format") + 1 == names.index("code_fence_rate")
    json_only = by_name(compute_metrics([ok(1, output="{}")], [ok(1, output="```\n{}\n```")]))
    assert "code_fence_rate" not in json_only
