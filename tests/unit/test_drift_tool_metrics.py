"""Tool-call metrics: tool_call_rate, tool_name and tool_args_valid, from observations to
verdicts; and that they stay out of every probe set without tool_call probes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from monitor.drift.evaluate import evaluate
from monitor.drift.metrics import compute_metrics
from monitor.drift.model import Carry, Family, MetricData, MetricKind, Observation, State
from monitor.drift.settings import DriftConfig


def judged(pv: int, **kw: Any) -> Observation:
    defaults: dict[str, Any] = {
        "format_kind": "clean",
        "parsed": True,
        "refusal": False,
        "finish_reason": "stop",
        "output_chars": 100,
        "output_tokens": 25,
        "latency_ms": 800.0,
    }
    return Observation(probe_version_id=pv, verdict="pass", **(defaults | kw))


def call(pv: int, name: str = "get_weather", valid: bool = True) -> Observation:
    return judged(
        pv,
        format_kind="tool_call",
        parsed=valid,
        finish_reason="tool_calls",
        tool_called=True,
        tool_name=name,
        tool_args_valid=valid,
    )


def no_call(pv: int) -> Observation:
    return judged(pv, format_kind="no_tool_call", parsed=False, tool_called=False)


def by_name(metrics: list[MetricData]) -> dict[str, MetricData]:
    return {m.name: m for m in metrics}


def test_tool_metrics_count_tool_probes_only_and_names_and_arguments_over_calls() -> None:
    base = [call(1), call(1, "lookup", valid=False), no_call(1), judged(2)]
    cur = [no_call(1), no_call(1), judged(2, format_kind="fenced")]
    m = by_name(compute_metrics(base, cur))
    assert m["tool_call_rate"].baseline == {1: [True, True, False]}
    assert m["tool_call_rate"].current == {1: [False, False]}
    assert m["tool_call_rate"].kind is MetricKind.BINARY
    assert m["tool_call_rate"].family is Family.QUALITY
    assert m["tool_name"].baseline == {1: ["get_weather", "lookup"]}
    assert m["tool_name"].current == {}  # no call made: nothing to name
    assert m["tool_name"].kind is MetricKind.CATEGORICAL
    assert m["tool_args_valid"].baseline == {1: [True, False]}
    assert m["tool_args_valid"].kind is MetricKind.BINARY
    # A tool_call probe is no JSON probe: its calls are not parse failures or formats.
    assert m["json_parse_rate"].baseline == {2: [True]}
    assert m["format"].baseline == {2: ["clean"]} and m["format"].current == {2: ["fenced"]}
    assert m["pass_rate"].baseline == {1: [True] * 3, 2: [True]}  # pass_rate keeps them


def test_tool_metrics_follow_the_spec_metrics_and_are_absent_without_tool_probes() -> None:
    names = [m.name for m in compute_metrics([call(1), judged(2)], [call(1), judged(2)])]
    assert names == [
        "pass_rate",
        "json_parse_rate",
        "format",
        "refusal_rate",
        "finish_reason",
        "length_chars",
        "length_tokens",
        "tool_call_rate",
        "tool_name",
        "tool_args_valid",
        "error_rate",
        "latency",
    ]
    plain = [m.name for m in compute_metrics([judged(1)], [judged(1)])]
    assert not {"tool_call_rate", "tool_name", "tool_args_valid"} & set(plain)


def tool_window(
    rate: float, samples: int, rng: np.random.Generator, *, runs: bool = False
) -> list[Observation]:
    """30 tool_call probe versions; each result calls the tool with probability `rate`.
    runs: sample s of each probe is in run s (a baseline of `samples` runs), else no run ids."""
    return [
        replace(call(pv) if rng.random() < rate else no_call(pv), run_id=s if runs else None)
        for s in range(samples)
        for pv in range(30)
    ]


def states(ev: Any) -> dict[str, State]:
    return {v.metric: v.state for v in ev.verdicts}


def test_a_drop_in_tool_calls_from_90_to_40_percent_drifts_at_once_and_stays_drifted() -> None:
    rng = np.random.default_rng(12)
    baseline = tool_window(0.9, 9, rng, runs=True)
    config = DriftConfig()  # the shipped defaults: the CUSUM rule, persistence 1
    carried: dict[str, Carry] = {}
    seen = []
    for _ in range(2):
        ev = evaluate(baseline, tool_window(0.4, 3, rng), config, previous=carried)
        carried = {v.metric: v.carry for v in ev.verdicts}
        seen.append(next(v for v in ev.verdicts if v.metric == "tool_call_rate"))
    assert [(v.state, v.streak) for v in seen] == [(State.DRIFTED, 1), (State.DRIFTED, 2)]
    rate = seen[-1]
    assert rate.baseline_value > 0.8 and rate.current_value < 0.6
    assert rate.dispersion is not None  # nine baseline runs: run-to-run variation estimated
    assert "tool_call_rate" in [v.metric for v in ev.drifted]


def test_identical_windows_do_not_drift() -> None:
    rng = np.random.default_rng(13)
    window = tool_window(0.9, 9, rng)
    ev = evaluate(window, list(window), DriftConfig())
    assert ev.drifted == ()
    found = states(ev)
    assert found["tool_call_rate"] is State.NOT_SIGNIFICANT
    assert found["tool_args_valid"] is not State.DRIFTED
    assert found["tool_name"] is not State.DRIFTED


def test_a_changed_tool_name_or_invalid_arguments_drift() -> None:
    right = [call(pv) for pv in range(30) for _ in range(3)]
    wrong_tool = [call(pv, "search") for pv in range(30) for _ in range(3)]
    bad_args = [call(pv, valid=False) for pv in range(30) for _ in range(3)]
    config = DriftConfig()
    assert states(evaluate(right, wrong_tool, config))["tool_name"] is State.DRIFTED
    assert states(evaluate(right, bad_args, config))["tool_args_valid"] is State.DRIFTED
