"""judge() on tool_call probes (the first call: its tool and arguments) and provider refusals."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from monitor.probes.model import Check, Tool
from monitor.validation import FormatKind, OutputLimits, judge
from tests.unit.test_validation import check, invoice_probe, make_probe, text_probe

WEATHER = Tool(
    name="get_weather",
    description="Current weather",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
)
FORECAST = Tool(
    name="get_forecast",
    parameters={
        "type": "object",
        "properties": {"days": {"type": "integer", "minimum": 1}},
        "required": ["days"],
    },
)
GOOD_ARGS = '{"city": "Paris", "unit": "c"}'


def tool_probe(
    *expect: Check, track: tuple[str, ...] = (), expect_tool: str | None = "get_weather"
) -> Any:
    probe = make_probe(response_format="tool_call", expect=expect, track=track)
    return dataclasses.replace(probe, tools=(WEATHER, FORECAST), expect_tool=expect_tool)


def test_the_right_tool_with_valid_arguments_passes() -> None:
    probe = tool_probe(check(0, field="city", equals="Paris"), track=("unit", "city"))
    result = judge(probe, "", tool_calls=[("get_weather", GOOD_ARGS)])
    assert result.verdict == "pass" and result.reason is None
    assert result.format_kind is FormatKind.TOOL_CALL
    assert (result.tool_called, result.tool_name, result.tool_args_valid) == (
        True,
        "get_weather",
        True,
    )
    assert (result.parsed, result.schema_valid, result.schema_errors) == (True, True, [])
    assert result.checks == [True]
    assert result.tracked == {"unit": "c", "city": "Paris"}


def test_only_the_first_call_is_judged() -> None:
    calls = [("get_weather", GOOD_ARGS), ("get_forecast", "not json")]
    assert judge(tool_probe(), None, tool_calls=calls).verdict == "pass"
    result = judge(tool_probe(), None, tool_calls=list(reversed(calls)))
    assert result.verdict == "fail" and result.tool_name == "get_forecast"


def test_another_declared_tool_than_expected_fails() -> None:
    result = judge(tool_probe(), "", tool_calls=[("get_forecast", '{"days": 3}')])
    assert result.verdict == "fail"
    assert result.reason == "called 'get_forecast', expected 'get_weather'"
    # The arguments are still judged against the tool that was called.
    assert (result.tool_name, result.tool_args_valid, result.schema_valid) == (
        "get_forecast",
        True,
        True,
    )


def test_any_declared_tool_passes_without_expect_tool() -> None:
    probe = tool_probe(expect_tool=None)
    assert judge(probe, "", tool_calls=[("get_forecast", '{"days": 3}')]).verdict == "pass"


def test_an_undeclared_tool_is_invalid() -> None:
    result = judge(tool_probe(expect_tool=None), "", tool_calls=[("rm_rf", "{}")])
    assert result.verdict == "fail"
    assert result.reason == "called 'rm_rf' (not one of the probe's tools)"
    assert (result.tool_called, result.tool_name, result.tool_args_valid) == (True, "rm_rf", False)
    assert result.schema_valid is None
    expected = judge(tool_probe(), "", tool_calls=[("rm_rf", "{}")])
    assert (
        expected.reason == "called 'rm_rf', expected 'get_weather' (not one of the probe's tools)"
    )


def test_invalid_arguments_fail_with_schema_errors() -> None:
    result = judge(tool_probe(), "", tool_calls=[("get_weather", '{"city": 5, "unit": "k"}')])
    assert result.verdict == "fail" and result.reason == "schema: 2 errors"
    assert (result.parsed, result.schema_valid, result.tool_args_valid) == (True, False, False)
    assert result.schema_errors == [
        "$.city: 5 is not of type 'string'",
        "$.unit: 'k' is not one of ['c', 'f']",
    ]


@pytest.mark.parametrize(
    ("arguments", "problem"),
    [
        ('{"city": "Paris", ', "tool arguments: not JSON"),
        ('Sure! {"city": "Paris", "unit": "c"}', "tool arguments: not JSON"),  # no extraction
        ('{"n": 1e999}', "tool arguments: number out of range"),
        ("[" * 100 + "]" * 100, "tool arguments: too deeply nested (depth > 64)"),
    ],
)
def test_arguments_that_do_not_parse(arguments: str, problem: str) -> None:
    result = judge(tool_probe(), "", tool_calls=[("get_weather", arguments)])
    assert result.verdict == "fail" and result.reason == problem
    assert (result.parsed, result.schema_valid, result.tool_args_valid) == (False, None, False)
    assert result.format_kind is FormatKind.TOOL_CALL


def test_oversized_arguments_are_not_parsed() -> None:
    limits = OutputLimits(max_chars=100)
    big = '{"city": "' + "x" * 200 + '", "unit": "c"}'
    result = judge(tool_probe(), "", tool_calls=[("get_weather", big)], limits=limits)
    assert result.reason == f"tool arguments: too large ({len(big)} chars > 100)"
    assert result.tool_args_valid is False


def test_empty_arguments_are_an_empty_object() -> None:
    probe = dataclasses.replace(
        tool_probe(expect_tool=None),
        tools=(Tool(name="ping", parameters={"type": "object", "properties": {}}),),
    )
    result = judge(probe, "", tool_calls=[("ping", "")])
    assert (result.verdict, result.tool_args_valid) == ("pass", True)


def test_no_call_fails() -> None:
    probe = tool_probe(check(0, field="city", equals="Paris"), check(1, regex="x"))
    result = judge(probe, "It is sunny in Paris.", tool_calls=())
    assert result.verdict == "fail" and result.reason == "no tool call: answered in text"
    assert result.format_kind is FormatKind.NO_TOOL_CALL
    assert (result.tool_called, result.tool_name, result.tool_args_valid) == (False, None, None)
    assert (result.parsed, result.checks) == (False, [None, None])
    assert judge(probe, None).reason == "no tool call: empty output"


def test_checks_and_tracking_read_the_arguments() -> None:
    probe = tool_probe(
        check(0, field="city", equals="Paris"),
        check(1, field="unit", one_of=("f",)),
        check(2, regex=r'^\{"city"'),  # no field: the arguments text as sent
        track=("city", "missing"),
    )
    result = judge(probe, "Calling the tool now.", tool_calls=[("get_weather", GOOD_ARGS)])
    assert result.checks == [True, False, True]
    assert result.reason == "check 2 failed: unit in ['f']"
    assert result.tracked == {"city": "Paris"}
    assert result.tool_args_valid is True  # the arguments are valid; an expectation failed


def test_a_tool_name_is_cut_to_the_stored_width_and_made_safe() -> None:
    result = judge(tool_probe(expect_tool=None), "", tool_calls=[("x\x00" + "y" * 100, "{}")])
    assert result.tool_name == "x\ufffd" + "y" * 62


def test_non_tool_probes_ignore_tool_calls() -> None:
    result = judge(invoice_probe(), '{"total": 1, "currency": "USD"}', tool_calls=[("t", "{}")])
    assert result.verdict == "pass"
    assert (result.tool_called, result.tool_name, result.tool_args_valid) == (None, None, None)


# --- provider refusals ------------------------------------------------------------------------


def test_a_provider_refusal_is_a_refusal_in_any_language() -> None:
    german = "Es tut mir leid, dabei kann ich nicht helfen."
    heuristic = judge(text_probe(extract=None), german)
    assert heuristic.refusal is False  # the English heuristic does not read German
    result = judge(text_probe(extract=None), german, provider_refusal=True)
    assert (result.verdict, result.refusal) == ("fail", True)
    assert result.reason == "refused by the provider"


def test_a_provider_refusal_with_no_content() -> None:
    result = judge(invoice_probe(), None, provider_refusal=True)
    assert (result.verdict, result.refusal, result.reason) == (
        "fail",
        True,
        "refused by the provider",
    )
    assert result.format_kind is FormatKind.EMPTY


def test_a_provider_refusal_keeps_the_other_problems_once() -> None:
    english = "I'm sorry, but I can't help with that."
    assert judge(invoice_probe(), english).reason == "not JSON (looks like a refusal)"
    result = judge(invoice_probe(), english, provider_refusal=True)
    assert result.reason == "refused by the provider; not JSON"
    tool = judge(tool_probe(), "Désolé, je ne peux pas.", provider_refusal=True)
    assert tool.reason == "refused by the provider; no tool call: answered in text"
    assert tool.refusal is True and tool.tool_called is False


def test_the_english_heuristic_still_flags_text_without_changing_the_verdict() -> None:
    result = judge(text_probe(extract=None), "I'm sorry, but I can't help with that.")
    assert (result.verdict, result.refusal) == ("pass", True)
