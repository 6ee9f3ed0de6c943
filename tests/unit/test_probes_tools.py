"""Probe keys for tool calls and constrained decoding: tools, tool_choice, expect_tool, strict,
and the params name check. Valid forms, versions, and errors naming file, key and line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from monitor.errors import ProbeFileError
from monitor.probes.loader import load_probe_sets
from monitor.probes.model import Probe
from monitor.probes.strict import probe_strict, tool_strict
from monitor.probes.versions import probe_version, version_of

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}


def write(folder: Path, text: str, name: str = "set.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str) -> dict[str, Probe]:
    write(tmp_path, text)
    (probe_set,) = load_probe_sets([tmp_path])
    for probe in probe_set.probes:
        assert version_of(probe) == probe.version
    return {p.id: p for p in probe_set.probes}


def load_error(tmp_path: Path, text: str) -> ProbeFileError:
    path = write(tmp_path, text)
    with pytest.raises(ProbeFileError) as info:
        load_probe_sets([tmp_path])
    assert info.value.file == str(path)
    return info.value


def assert_located(err: ProbeFileError, *, key: str, line: int, problem: str) -> None:
    assert (err.key, err.line) == (key, line), str(err)
    assert problem in err.problem, str(err)
    assert str(err).startswith(f"{err.file}:{line}: {key}: "), str(err)


TOOL_PROBE = """
probes:
  - id: weather
    prompt: "Weather in Paris?"
    tools:
      - name: get_weather
        description: Current weather
        parameters:
          type: object
          properties:
            city: { type: string }
            unit: { enum: [c, f] }
          required: [city, unit]
          additionalProperties: false
      - name: get_forecast
        parameters_file: schemas/forecast.json
    expect:
      - { field: city, equals: Paris }
    track: [unit]
"""


@pytest.fixture
def probes_dir(tmp_path: Path) -> Path:
    root = tmp_path / "probes"
    (root / "schemas").mkdir(parents=True)
    forecast = {
        "type": "object",
        "properties": {"city": {"$ref": "city.json"}, "days": {"type": "integer", "minimum": 1}},
        "required": ["city", "days"],
        "additionalProperties": False,
    }
    (root / "schemas" / "forecast.json").write_text(json.dumps(forecast), encoding="utf-8")
    (root / "schemas" / "city.json").write_text('{"type": "string"}', encoding="utf-8")
    return root


# --- valid forms ------------------------------------------------------------------------------


def test_tools_parse_with_defaults(probes_dir: Path) -> None:
    probe = load(probes_dir, TOOL_PROBE)["weather"]
    assert probe.response_format == "tool_call" and probe.schema is None
    assert [t.name for t in probe.tools] == ["get_weather", "get_forecast"]
    weather, forecast = probe.tools
    assert weather.description == "Current weather" and weather.parameters == WEATHER
    assert (probe.tool_choice, probe.expect_tool, probe.strict) == ("required", None, None)
    # parameters_file is bundled: its $ref is embedded under $defs, no driftmon URI is left.
    assert forecast.parameters["properties"]["city"] == {"$ref": "#/$defs/city.json"}
    assert forecast.parameters["$defs"]["city.json"] == {"type": "string"}
    assert "driftmon-probes" not in json.dumps(forecast.parameters)
    # Per tool: the weather schema is strict-compatible, the forecast's `minimum` is not.
    assert (tool_strict(probe, weather), tool_strict(probe, forecast)) == (True, False)
    assert probe_strict(probe) is False


def test_tool_choice_naming_a_tool_makes_it_the_expected_tool(probes_dir: Path) -> None:
    text = TOOL_PROBE.replace("    expect:\n", "    tool_choice: get_forecast\n    expect:\n")
    probe = load(probes_dir, text)["weather"]
    assert (probe.tool_choice, probe.expect_tool) == ("get_forecast", "get_forecast")
    auto = load(probes_dir, text.replace("tool_choice: get_forecast", "tool_choice: auto"))
    assert (auto["weather"].tool_choice, auto["weather"].expect_tool) == ("auto", None)
    both = text.replace(
        "tool_choice: get_forecast", "tool_choice: auto\n    expect_tool: get_weather"
    )
    assert load(probes_dir, both)["weather"].expect_tool == "get_weather"


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("false", False), ("auto", None)])
def test_strict_values(probes_dir: Path, value: str, expected: bool | None) -> None:
    text = TOOL_PROBE.replace("    expect:\n", f"    strict: {value}\n    expect:\n")
    probe = load(probes_dir, text)["weather"]
    assert probe.strict is expected
    if expected is not None:
        assert all(tool_strict(probe, tool) is expected for tool in probe.tools)


def test_tools_and_strict_from_defaults(probes_dir: Path) -> None:
    probes = load(
        probes_dir,
        """
        defaults:
          strict: false
          tool_choice: auto
          tools:
            - { name: ping, parameters: { type: object, properties: {} } }
        probes:
          - { id: a, prompt: hi }
          - { id: b, prompt: hi, tools: ~, response_format: text }
        """,
    )
    assert probes["a"].response_format == "tool_call" and probes["a"].strict is False
    assert probes["a"].tool_choice == "auto"
    # A default strict / tool_choice does not apply to a probe without tools.
    assert probes["b"].response_format == "text" and probes["b"].tools == ()
    assert (probes["b"].strict, probes["b"].tool_choice) == (None, "required")


def test_params_known_to_some_kind_are_accepted(probes_dir: Path) -> None:
    probes = load(
        probes_dir,
        """
        probes:
          - id: a
            prompt: hi
            params: { temperature: 0, reasoning_effort: low, top_k: 5, max_completion_tokens: 9 }
        """,
    )
    assert probes["a"].params["top_k"] == 5


# --- errors, each with file, key and line -----------------------------------------------------

BAD = [
    # (yaml, key, line, problem)
    (
        "probes:\n  - id: a\n    prompt: hi\n    params: { temprature: 0 }\n",
        "probes[0].params.temprature",
        4,
        "unknown param 'temprature' for any target kind (did you mean 'temperature'?)",
    ),
    (
        "defaults:\n  params:\n    max_tokenz: 5\nprobes:\n  - { id: a, prompt: hi }\n",
        "defaults.params.max_tokenz",
        3,
        "unknown param 'max_tokenz'",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tools: []\n",
        "probes[0].tools",
        4,
        "tools must be a non-empty list",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tools:\n      - name: bad name\n"
        "        parameters: { type: object }\n",
        "probes[0].tools[0].name",
        5,
        "a tool name must be 1 to 64 letters",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tools:\n      - name: " + "x" * 65 + "\n"
        "        parameters: { type: object }\n",
        "probes[0].tools[0].name",
        5,
        "a tool name must be 1 to 64",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tools:\n      - name: required\n"
        "        parameters: { type: object }\n",
        "probes[0].tools[0].name",
        5,
        "'required' cannot be a tool name",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tools:\n"
        "      - { name: t, parameters: { type: object } }\n"
        "      - { name: t, parameters: { type: object } }\n",
        "probes[0].tools[1].name",
        6,
        "duplicate tool name 't' (first at line 5)",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tools:\n      - name: t\n",
        "probes[0].tools[0]",
        5,
        "a tool needs parameters (an inline JSON Schema) or parameters_file, found neither",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tools:\n      - name: t\n"
        "        parameters: { type: object }\n        parametres: {}\n",
        "probes[0].tools[0].parametres",
        7,
        "unknown key 'parametres' in a tool; did you mean 'parameters'?",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tools:\n      - name: t\n"
        "        parameters: { type: string }\n",
        "probes[0].tools[0].parameters",
        6,
        "a tool's parameters must be an object schema (type: object)",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tools:\n      - name: t\n"
        "        parameters:\n          type: object\n          properties:\n"
        "            n: { type: 5 }\n",
        "probes[0].tools[0].parameters.properties.n.type",
        9,
        "invalid JSON Schema",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tools:\n      - name: t\n"
        "        parameters_file: schemas/missing.json\n",
        "probes[0].tools[0].parameters_file",
        6,
        "missing.json",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    response_format: json_schema\n"
        "    tools:\n      - { name: t, parameters: { type: object } }\n",
        "probes[0].response_format",
        4,
        "a probe with tools has response_format tool_call, found 'json_schema'",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    response_format: tool_call\n",
        "probes[0].response_format",
        4,
        "a tool_call probe needs tools",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    schema: { type: object }\n"
        "    tools:\n      - { name: t, parameters: { type: object } }\n",
        "probes[0].schema",
        4,
        "a tool_call probe has no schema",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n"
        "    tools:\n      - { name: t, parameters: { type: object } }\n"
        "    tool_choice: other\n",
        "probes[0].tool_choice",
        6,
        "tool_choice must be auto, required, none or the name of one of the probe's tools (t)",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n"
        "    tools:\n      - { name: t, parameters: { type: object } }\n"
        "    expect_tool: other\n",
        "probes[0].expect_tool",
        6,
        "expect_tool must be the name of one of the probe's tools (t), found 'other'",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n"
        "    tools:\n      - { name: t, parameters: { type: object } }\n"
        "      - { name: u, parameters: { type: object } }\n"
        "    tool_choice: t\n    expect_tool: u\n",
        "probes[0].expect_tool",
        8,
        "tool_choice forces 't', so expect_tool 'u' can never be met",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n"
        "    tools:\n      - { name: t, parameters: { type: object } }\n"
        "    tool_choice: none\n    expect_tool: t\n",
        "probes[0].expect_tool",
        7,
        "expect_tool can never be met with tool_choice: none",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    tool_choice: auto\n",
        "probes[0].tool_choice",
        4,
        "tool_choice is for probes with tools",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    expect_tool: t\n",
        "probes[0].expect_tool",
        4,
        "expect_tool is for probes with tools",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    schema: { type: object }\n    strict: yes\n",
        "probes[0].strict",
        5,
        "strict must be true, false or auto, found 'yes'",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n    strict: true\n",
        "probes[0].strict",
        4,
        "strict is for json_schema and tool_call probes: a text probe sends no schema",
    ),
    (
        "probes:\n  - id: a\n    prompt: hi\n"
        "    tools:\n      - { name: t, parameters: { type: object } }\n"
        "    extract: '(x)'\n",
        "probes[0].extract",
        6,
        "extract is for text probes; tool_call probes are parsed as JSON",
    ),
]


@pytest.mark.parametrize(("text", "key", "line", "problem"), BAD, ids=[b[1] for b in BAD])
def test_bad_keys_are_located(
    probes_dir: Path, text: str, key: str, line: int, problem: str
) -> None:
    assert_located(load_error(probes_dir, text), key=key, line=line, problem=problem)


# --- versions ---------------------------------------------------------------------------------

STRICT_READY = """
probes:
  - id: j
    prompt: "Extract."
    schema:
      type: object
      properties: { total: { type: number } }
      required: [total]
      additionalProperties: false
"""


def test_a_strict_compatible_json_schema_probe_versions_its_strictness(tmp_path: Path) -> None:
    auto = load(tmp_path / "a", STRICT_READY)["j"]
    assert probe_strict(auto) is True
    explicit_true = load(tmp_path / "b", STRICT_READY + "    strict: true\n")["j"]
    explicit_false = load(tmp_path / "c", STRICT_READY + "    strict: false\n")["j"]
    assert auto.version == explicit_true.version  # the same request
    assert explicit_false.version != auto.version  # another request
    # Not strict is how every json_schema probe was sent before `strict` existed, so that
    # version is the one it always had: the hash of the content without any new key.
    loose = STRICT_READY.replace("      additionalProperties: false\n", "")
    assert probe_strict(load(tmp_path / "d", loose)["j"]) is False


def test_probes_without_the_new_keys_keep_their_versions(tmp_path: Path) -> None:
    text = STRICT_READY + "    strict: false\n"
    probe = load(tmp_path, text)["j"]
    # The canonical form without strict/tools: what every stored probe was hashed with.
    assert probe.version == probe_version(
        set_name=probe.set_name,
        probe_id=probe.id,
        messages=probe.messages,
        response_format=probe.response_format,
        schema=probe.schema,
        schema_resources=probe.schema_resources,
        expect=probe.expect,
        track=probe.track,
        extract=probe.extract,
        params=probe.params,
    )


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("description: Current weather", "description: Weather now"),
        ("unit: { enum: [c, f] }", "unit: { enum: [c, f, k] }"),
        ("  - name: get_forecast", "  - name: get_forecast2"),
        ("    expect:\n", "    tool_choice: auto\n    expect:\n"),
        ("    expect:\n", "    expect_tool: get_weather\n    expect:\n"),
        ("    expect:\n", "    strict: true\n    expect:\n"),
    ],
)
def test_tool_edits_change_the_version(probes_dir: Path, old: str, new: str) -> None:
    assert old in TOOL_PROBE
    before = load(probes_dir, TOOL_PROBE)["weather"].version
    assert load(probes_dir, TOOL_PROBE.replace(old, new, 1))["weather"].version != before


def test_editing_a_tool_parameters_file_changes_the_version(probes_dir: Path) -> None:
    before = load(probes_dir, TOOL_PROBE)["weather"].version
    (probes_dir / "schemas" / "city.json").write_text('{"type": "string", "maxLength": 9}')
    assert load(probes_dir, TOOL_PROBE)["weather"].version != before
