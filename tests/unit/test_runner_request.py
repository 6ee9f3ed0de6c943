"""build_request: what a probe asks of a target (schema, strict, tools, tool_choice)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.config import ResolvedTarget
from monitor.probes.loader import load_probe_sets
from monitor.probes.model import Probe
from monitor.providers.base import ToolSpec
from monitor.runner import build_request

PROBES = """
probes:
  - id: strict-ready
    prompt: Extract.
    schema:
      type: object
      properties: { total: { type: number } }
      required: [total]
      additionalProperties: false
  - id: loose
    prompt: Extract.
    schema: { type: object, properties: { total: { type: number, minimum: 0 } } }
  - id: opted-out
    prompt: Extract.
    strict: false
    schema:
      type: object
      properties: { total: { type: number } }
      required: [total]
      additionalProperties: false
  - id: plain-json
    prompt: Extract as JSON.
    response_format: json
    schema: { type: object }
  - id: call
    prompt: Weather?
    tools:
      - name: get_weather
        description: Current weather
        parameters:
          type: object
          properties: { city: { type: string } }
          required: [city]
          additionalProperties: false
      - name: get_forecast
        parameters: { type: object, properties: { days: { type: integer, minimum: 1 } } }
    tool_choice: get_weather
"""


def target(strict: bool | None = None) -> ResolvedTarget:
    return ResolvedTarget(
        name="t",
        kind="openai",
        model="m",
        base_url=None,
        api_key=None,
        probe_sets=None,
        params={"temperature": 0},
        strict=strict,
        samples=1,
        every=None,
        cron=None,
        timeout=10,
        concurrency=1,
        retries=0,
    )


@pytest.fixture(scope="module")
def probes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Probe]:
    root = tmp_path_factory.mktemp("probes")
    (root / "set.yaml").write_text(textwrap.dedent(PROBES).lstrip(), encoding="utf-8")
    (probe_set,) = load_probe_sets([Path(root)])
    return {p.id: p for p in probe_set.probes}


@pytest.mark.parametrize(
    ("probe_id", "expected"),
    [("strict-ready", True), ("loose", False), ("opted-out", False), ("plain-json", False)],
)
def test_strict_follows_the_probe(probes: dict[str, Probe], probe_id: str, expected: bool) -> None:
    request = build_request(target(), probes[probe_id])
    assert request.strict is expected
    assert request.tools == () and request.tool_choice == "auto"


@pytest.mark.parametrize("override", [True, False])
def test_the_target_overrides_strict(probes: dict[str, Probe], override: bool) -> None:
    for probe_id in ("strict-ready", "loose", "opted-out"):
        assert build_request(target(override), probes[probe_id]).strict is override
    # A json probe sends no schema natively: nothing to decode strictly.
    assert build_request(target(True), probes["plain-json"]).strict is False
    call = build_request(target(override), probes["call"])
    assert [tool.strict for tool in call.tools] == [override, override]


def test_a_tool_call_probe_sends_its_tools(probes: dict[str, Probe]) -> None:
    request = build_request(target(), probes["call"])
    assert request.response_format == "tool_call" and request.schema is None
    weather, forecast = request.tools
    assert weather == ToolSpec(
        name="get_weather",
        description="Current weather",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        strict=True,
    )
    assert (forecast.name, forecast.strict) == ("get_forecast", False)  # `minimum`: not strict
    assert request.tool_choice == "get_weather"
    assert request.strict is False  # not every tool is strict
    assert request.params == {"temperature": 0}


def test_drop_params_removes_a_param_whoever_set_it(probes: dict[str, Probe]) -> None:
    probe = next(p for p in probes.values() if not p.tools)
    with_probe_params = Probe(**{**vars(probe), "params": {"temperature": 0.5, "top_p": 0.9}})
    dropping = target().model_copy(update={"drop_params": ["temperature", "top_p"]})
    assert build_request(target(), with_probe_params).params["temperature"] == 0.5
    assert build_request(dropping, with_probe_params).params == {}
