"""Scenario loading and JSON Schema synthesis, without a server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from monitor.errors import ConfigError
from monitor.simulator.model import Dist, RuleSpec
from monitor.simulator.regexgen import example_for
from monitor.simulator.scenario import default_scenario, load_scenario, parse_scenario
from monitor.simulator.synth import SchemaSynth

REPO = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "scenario.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "key", "line", "words"),
    [
        ("rules:\n  - name: a\n    behavior: valid\n", "rules[0].behavior", 3, "Extra inputs"),
        (
            "rules:\n  - name: a\n    mix: {valid: 0.5, bogus: 0.5}\n",
            "rules[0].mix.bogus",
            3,
            "valid",
        ),
        (
            "rules:\n  - name: a\n    mix: {valid: 0.9, fenced: 0.2}\n",
            "rules[0].mix",
            3,
            "more than 1",
        ),
        ('rules:\n  - name: a\n    match: "(x"\n', "rules[0].match", 3, "regular expression"),
        (
            "rules:\n  - name: a\n    faults:\n      - {kind: rate_limit}\n",
            "rules[0].faults[0]",
            4,
            "first_n",
        ),
        (
            "rules:\n  - name: a\n    faults:\n      - {kind: error, rate: 1}\n",
            "rules[0].faults[0]",
            4,
            "status",
        ),
        ("rules:\n  - name: a\n    length: {mean: -1}\n", "rules[0].length.mean", 3, "greater"),
        (
            "phases:\n  march:\n    rules:\n      nope: {behaviour: valid}\n",
            "phases.march.rules",
            3,
            "nope",
        ),
        ("phases:\n  a: {after_requests: 3}\n", "phases.a", 2, "next"),
        ("phases:\n  a: {next: b}\n", "phases.a.next", 2, "unknown phase 'b'"),
        ("start_phase: z\nphases:\n  a: {}\n", "start_phase", 1, "unknown phase"),
        (
            "rules:\n  - name: a\n    output: hi\n    mix: {wrong_value: 0.5}\n",
            "rules[0]",
            2,
            "wrong_output",
        ),
        ("rules:\n  - {name: a}\n  - {name: a}\n", "rules[1]", 3, "used twice"),
        ("seed: abc\n", "seed", 1, "integer"),
        ("default:\n  latency_ms: fast\n", "default.latency_ms", 2, "number"),
    ],
)
def test_bad_scenario_names_key_and_line(
    tmp_path: Path, text: str, key: str, line: int, words: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_scenario(path)
    err = info.value
    assert err.file == str(path)
    assert err.key == key
    assert err.line == line
    assert words in err.problem
    assert str(path) in str(err) and key in str(err)


def test_invalid_yaml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_scenario(write(tmp_path, "rules: [\n"))
    assert "invalid YAML" in info.value.problem and info.value.line == 2
    with pytest.raises(ConfigError, match="cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="mapping"):
        load_scenario(write(tmp_path, "- a\n"))


@pytest.mark.parametrize("path", sorted((REPO / "config" / "scenarios").glob("*.yaml")))
def test_example_scenarios_load(path: Path) -> None:
    scenario = load_scenario(path)
    assert scenario.phases and scenario.rules[-1].name == "default"


def test_layering_later_wins_key_by_key() -> None:
    scenario = parse_scenario(
        {
            "defaults": {"latency_ms": 5, "mix": {"fenced": 0.1}},
            "rules": [{"name": "a", "match": "x", "finish_reason": "stop"}],
            "phases": {
                "p1": {},
                "p2": {"defaults": {"latency_ms": 9}, "rules": {"a": {"mix": {"prose": 0.5}}}},
            },
        }
    )
    p1, p2 = scenario.specs[("p1", "a")], scenario.specs[("p2", "a")]
    assert p1.latency_ms == Dist(5) and p1.mix == (("fenced", 0.1),)
    assert p2.latency_ms == Dist(9) and p2.mix == (("prose", 0.5),)  # replaced, not added
    assert p2.finish_reason == "stop"  # untouched keys come through
    assert scenario.specs[("p2", "default")].mix == (("fenced", 0.1),)


def test_default_scenario_and_rule_order() -> None:
    scenario = default_scenario()
    assert scenario.phase_names == ("default",)
    assert scenario.specs[("default", "default")] == RuleSpec()
    s = parse_scenario(
        {
            "rules": [
                {"name": "anth", "match": "hello", "api": "anthropic"},
                {"name": "gpt", "match_model": "^gpt-"},
                {"name": "hello", "match": "hel+o"},
            ]
        }
    )
    assert s.match("anthropic", "claude", "say hello").name == "anth"
    assert s.match("openai", "gpt-4o", "say hello").name == "gpt"
    assert s.match("openai", "llama", "say hello").name == "hello"
    assert s.match("openai", "llama", "bye").name == "default"


SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "object",
        "required": ["total", "currency", "number", "date", "lines"],
        "additionalProperties": False,
        "properties": {
            "total": {"type": "number", "exclusiveMinimum": 0, "maximum": 0.5},
            "currency": {"enum": ["USD", "EUR"]},
            "number": {"type": "string", "pattern": "^INV-[0-9]{4}$"},
            "date": {"type": "string", "format": "date"},
            "lines": {
                "type": "array",
                "minItems": 2,
                "uniqueItems": True,
                "items": {"$ref": "#/$defs/line"},
            },
            "note": {"type": "string"},
        },
        "$defs": {
            "line": {
                "type": "object",
                "required": ["qty"],
                "properties": {"qty": {"type": "integer", "minimum": 3, "multipleOf": 5}},
            },
        },
    },
    {"type": "integer", "minimum": 7, "exclusiveMaximum": 9},
    {"type": ["null", "string"], "minLength": 12, "maxLength": 20},
    {
        "allOf": [
            {"type": "object", "required": ["a"], "properties": {"a": {"const": 1}}},
            {"required": ["b"], "properties": {"b": {"type": "boolean"}}},
        ]
    },
    {
        "anyOf": [
            {"type": "object", "required": ["x"], "properties": {"x": {"type": "string"}}},
            {"type": "number"},
        ]
    },
]


@pytest.mark.parametrize("schema", SCHEMAS)
def test_synth_valid_and_invalid(schema: dict[str, Any]) -> None:
    synth = SchemaSynth(schema)
    check = Draft202012Validator(schema, format_checker=FormatChecker())
    valid = synth.valid({})
    assert check.is_valid(valid), valid
    assert not check.is_valid(synth.invalid({}))


def test_synth_picks_documented_minimal_values() -> None:
    valid = SchemaSynth(SCHEMAS[0]).valid({"note": "n"})
    assert valid["currency"] == "USD"  # first enum value
    assert valid["number"] == "INV-0000"
    assert 0 < valid["total"] <= 0.5
    assert [line["qty"] for line in valid["lines"]] == [5, 10]  # unique, multiples of 5
    assert valid["note"] == "n"


def test_synth_wrong_value_keeps_shape() -> None:
    schema = SCHEMAS[0]
    synth = SchemaSynth(schema)
    check = Draft202012Validator(schema)
    base = synth.valid({})
    chosen = synth.wrong({}, {}, ("currency", "total"))
    assert check.is_valid(chosen)
    assert chosen["currency"] == "EUR" and chosen["total"] != base["total"]
    auto = synth.wrong({}, {}, ())
    assert check.is_valid(auto) and auto != base
    explicit = synth.wrong({}, {"currency": "EUR"}, ())
    assert explicit == {**base, "currency": "EUR"}


def test_invalid_schema_is_reported() -> None:
    from monitor.simulator.synth import SchemaError

    with pytest.raises(SchemaError):
        SchemaSynth({"type": "no-such-type"})


@pytest.mark.parametrize(
    "pattern",
    [r"^INV-\d{4}$", r"^[A-Z]{3}$", r"^(foo|bar)+baz$", r"^[^a]+$", r"(ab)\1", r"^\w+@\w+\.com$"],
)
def test_regex_examples_match(pattern: str) -> None:
    import re

    example = example_for(pattern)
    assert example is not None and re.search(pattern, example)


def test_regex_example_gives_up_honestly() -> None:
    assert example_for(r"^(?=x)y") is None
