"""judge(): format kinds, schema errors, checks, tracked fields, text probes.

Probes are built directly from the model (no loader), as the runner receives them.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from monitor.probes.model import Check, Message, Probe, ResponseFormat
from monitor.validation import FormatKind, Judgement, OutputLimits, judge
from monitor.validation.checks import TimedOut, bounded_search, compile_regex

_versions = itertools.count()

INVOICE_SCHEMA: dict[str, Any] = {
    "$id": "driftmon-probes:///invoices.yaml#acme-invoice",
    "type": "object",
    "required": ["total", "currency"],
    "properties": {
        "total": {"type": "number"},
        "currency": {"enum": ["USD", "EUR"]},
    },
}
GOOD = '{"total": 1234.5, "currency": "USD"}'


def check(position: int = 0, **fields: Any) -> Check:
    """A Check; `equals=` sets has_equals like the loader does."""
    if "equals" in fields:
        fields["has_equals"] = True
    return Check(index=position, **fields)


def make_probe(
    *,
    schema: dict[str, Any] | None = None,
    expect: tuple[Check, ...] = (),
    track: tuple[str, ...] = (),
    response_format: ResponseFormat = "json_schema",
    extract: str | None = None,
    schema_resources: dict[str, dict[str, Any]] | None = None,
    version: str | None = None,
) -> Probe:
    """A probe with a fresh version (the compile cache key) unless one is given."""
    return Probe(
        id="p",
        set_name="tests",
        messages=(Message("user", "hi"),),
        response_format=response_format,
        schema=schema,
        expect=expect,
        track=track,
        extract=extract,
        samples=None,
        params={},
        enabled=True,
        version=version or f"test-{next(_versions)}",
        source_file="tests.yaml",
        schema_resources=schema_resources or {},
    )


def invoice_probe(*expect: Check, track: tuple[str, ...] = ()) -> Probe:
    return make_probe(schema=INVOICE_SCHEMA, expect=expect, track=track)


# --- the spec example, end to end -----------------------------------------------------------


def test_spec_example_passes_and_reports_everything() -> None:
    probe = invoice_probe(
        check(0, field="total", equals=1234.5),
        check(1, field="currency", one_of=("USD",)),
        check(2, field="total", range=(0, 10000)),
        check(3, regex=r"^\{"),
        track=("currency", "total"),
    )
    result = judge(probe, GOOD)
    assert result == Judgement(
        verdict="pass",
        format_kind=FormatKind.CLEAN,
        parsed=True,
        schema_valid=True,
        schema_errors=[],
        checks=[True, True, True, True],
        tracked={"currency": "USD", "total": 1234.5},
        answer=None,
        refusal=False,
        reason=None,
    )
    assert result.passed


def test_reason_names_the_failing_check_one_based() -> None:
    probe = invoice_probe(
        check(0, field="total", equals=1234.5), check(1, field="currency", one_of=("USD",))
    )
    result = judge(probe, '{"total": 1234.5, "currency": "EUR"}')
    assert result.verdict == "fail"
    assert result.checks == [True, False]
    assert result.reason == "check 2 failed: currency in ['USD']"


# --- format kinds ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        (GOOD, FormatKind.CLEAN),
        (f"\n  {GOOD}  \n", FormatKind.CLEAN),
        (f"```json\n{GOOD}\n```", FormatKind.FENCED),
        (f"```JSON\n{GOOD}\n```", FormatKind.FENCED),
        (f"```\n{GOOD}\n```", FormatKind.FENCED),
        (f"Here you go:\n```json\n{GOOD}\n```\nAnything else?", FormatKind.FENCED),
        (f"```{GOOD}```", FormatKind.FENCED),
        (f"Sure! The invoice is {GOOD}. Hope that helps.", FormatKind.PROSE),
        (f'He wrote "total" {{ with a brace; the data: {GOOD}', FormatKind.PROSE),
        (f"A [bad] list, {{not json}}, then {GOOD}", FormatKind.PROSE),
    ],
)
def test_format_kinds_that_parse(text: str, kind: FormatKind) -> None:
    result = judge(invoice_probe(check(0, field="total", equals=1234.5)), text)
    assert result.format_kind is kind
    assert result.parsed
    # Extraction is allowed: the content is judged, the kind stays visible on its own.
    assert result.schema_valid is True
    assert result.checks == [True]
    assert result.verdict == "pass"


def test_python_fence_is_not_json_fence() -> None:
    result = judge(invoice_probe(), f"```python\nx = {GOOD}\n```")
    assert result.format_kind is FormatKind.PROSE  # found in the prose scan, not as a fence


@pytest.mark.parametrize(
    ("text", "kind", "reason"),
    [
        ("The total is 1234.5 USD.", FormatKind.NOT_JSON, "not JSON"),
        ('{"total": 1234.5, "currency": "USD"', FormatKind.NOT_JSON, "not JSON"),
        ("{'total': 1234.5}", FormatKind.NOT_JSON, "not JSON"),
        ("```json\n{oops}\n```", FormatKind.NOT_JSON, "not JSON"),
        ("", FormatKind.EMPTY, "empty output"),
        (" \n\t ", FormatKind.EMPTY, "empty output"),
        (None, FormatKind.EMPTY, "empty output"),
    ],
)
def test_format_kinds_that_do_not_parse(text: str | None, kind: FormatKind, reason: str) -> None:
    result = judge(invoice_probe(check(0, field="total", equals=1234.5)), text)
    assert result.format_kind is kind
    assert not result.parsed
    assert result.verdict == "fail"
    assert result.schema_valid is None
    assert result.checks == [None]
    assert result.tracked == {}
    assert result.reason == reason


def test_scalar_json_is_clean_and_judged_by_the_schema() -> None:
    result = judge(invoice_probe(), "42")
    assert result.format_kind is FormatKind.CLEAN
    assert result.schema_valid is False
    assert result.schema_errors == ["$: 42 is not of type 'object'"]


def test_duplicate_keys_last_wins() -> None:
    result = judge(
        invoice_probe(check(0, field="currency", equals="EUR")),
        '{"total": 1, "currency": "USD", "currency": "EUR"}',
    )
    assert result.checks == [True]


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json(literal: str) -> None:
    result = judge(invoice_probe(), f'{{"total": {literal}, "currency": "USD"}}')
    assert result.format_kind is FormatKind.NOT_JSON
    assert result.reason == "not JSON"


def test_json_probe_without_schema_has_no_schema_verdict() -> None:
    probe = make_probe(response_format="json", expect=(check(0, field="a", equals=1),))
    result = judge(probe, '{"a": 1}')
    assert result.schema_valid is None
    assert result.verdict == "pass"


# --- schema errors --------------------------------------------------------------------------


def test_all_schema_errors_are_collected_with_paths() -> None:
    schema = {
        "type": "object",
        "required": ["total", "currency", "lines"],
        "properties": {
            "total": {"type": "number"},
            "currency": {"enum": ["USD", "EUR"]},
            "lines": {
                "type": "array",
                "items": {"type": "object", "properties": {"qty": {"type": "integer"}}},
            },
            "odd key": {"type": "string"},
        },
    }
    result = judge(
        make_probe(schema=schema),
        '{"total": "abc", "currency": "GBP", "lines": [{"qty": 1}, {"qty": 1.5}], "odd key": 3}',
    )
    assert result.schema_valid is False
    assert sorted(result.schema_errors) == sorted(
        [
            "$.total: 'abc' is not of type 'number'",
            "$.currency: 'GBP' is not one of ['USD', 'EUR']",
            "$.lines[1].qty: 1.5 is not of type 'integer'",
            "$[\"odd key\"]: 3 is not of type 'string'",
        ]
    )
    assert result.reason == "schema: 4 errors"
    assert result.verdict == "fail"


def test_missing_required_is_reported_at_the_parent() -> None:
    result = judge(invoice_probe(), '{"total": 1}')
    assert result.schema_errors == ["$: 'currency' is a required property"]
    assert result.reason == "schema: 1 error"


def test_schema_errors_are_capped_with_a_count() -> None:
    schema = {"type": "array", "items": {"type": "string"}}
    result = judge(make_probe(schema=schema), "[" + ",".join(["1"] * 60) + "]")
    assert len(result.schema_errors) == 51
    assert result.schema_errors[0] == "$[0]: 1 is not of type 'string'"
    assert result.schema_errors[-1] == "... 10 more"
    assert result.reason == "schema: 60 errors"

    few = judge(make_probe(schema=schema), "[1, 2]", limits=OutputLimits(max_schema_errors=1))
    assert few.schema_errors == ["$[0]: 1 is not of type 'string'", "... 1 more"]


def test_schema_and_check_failures_both_show_in_reason() -> None:
    probe = invoice_probe(check(0, field="currency", one_of=("USD",)))
    result = judge(probe, '{"total": "x", "currency": "EUR"}')
    assert result.reason == "schema: 1 error; check 1 failed: currency in ['USD']"
    assert result.checks == [False]  # checks are still evaluated when the schema fails


def test_long_error_messages_are_clipped() -> None:
    result = judge(invoice_probe(), "[" + ",".join(['"abcdefghij"'] * 500) + "]")
    assert len(result.schema_errors) == 1
    assert len(result.schema_errors[0]) < 320
    assert result.schema_errors[0].endswith("…")


# --- checks ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "output_value", "ok"),
    [
        (1, "1", True),
        (1, "1.0", True),
        (1.0, "1", True),
        (True, "true", True),
        (True, "1", False),
        (1, "true", False),
        (False, "0", False),
        (0, "false", False),
        (None, "null", True),
        (None, "0", False),
        ("1", "1", False),
        ([1, 2], "[1, 2.0]", True),
        ((1, 2), "[1, 2]", True),  # YAML lists may arrive as tuples
        ([True], "[1]", False),
        ({"a": [1, {"b": True}]}, '{"a": [1.0, {"b": true}]}', True),
        ({"a": 1}, '{"a": 1, "b": 2}', False),
        ("x", '"x"', True),
    ],
)
def test_equals_is_json_equality(expected: Any, output_value: str, ok: bool) -> None:
    probe = make_probe(response_format="json", expect=(check(0, field="v", equals=expected),))
    assert judge(probe, f'{{"v": {output_value}}}').checks == [ok]


def test_equals_null_is_a_real_expectation() -> None:
    probe = make_probe(response_format="json", expect=(check(0, field="v", equals=None),))
    assert judge(probe, '{"v": null}').checks == [True]
    assert judge(probe, '{"v": 0}').checks == [False]
    assert judge(probe, "{}").checks == [False]  # missing is not null


def test_one_of_uses_json_equality() -> None:
    probe = make_probe(response_format="json", expect=(check(0, field="v", one_of=(1, "a")),))
    assert [judge(probe, f'{{"v": {v}}}').checks[0] for v in ("1.0", '"a"', "true", "2")] == [
        True,
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0", True),
        ("10000", True),
        ("10000.0001", False),
        ("-0.5", False),
        ("5", True),
        ('"5"', False),
        ("true", False),
        ("null", False),
        ("[5]", False),
        ("1" + "0" * 400, False),  # a huge int compares exactly, no overflow
    ],
)
def test_range_is_inclusive_and_numeric_only(value: str, ok: bool) -> None:
    probe = make_probe(response_format="json", expect=(check(0, field="v", range=(0, 10000)),))
    assert judge(probe, f'{{"v": {value}}}').checks == [ok]


def test_regex_on_field_and_on_raw_text() -> None:
    probe = make_probe(
        response_format="json",
        expect=(
            check(0, field="name", regex=r"^[A-Z][a-z]+$"),
            check(1, field="flag", regex=r"^true$"),  # non-strings: their JSON spelling
            check(2, field="n", regex=r"^\d+\.5$"),
            check(3, regex=r"^\{"),
        ),
    )
    assert judge(probe, '{"name": "Acme", "flag": true, "n": 12.5}').checks == [
        True,
        True,
        True,
        True,
    ]
    fenced = judge(probe, '```json\n{"name": "acme", "flag": false, "n": 12}\n```')
    assert fenced.checks == [False, False, False, False]


# Probe regexes run on the `regex` package (for its timeout) in VERSION0 mode; these are the
# kinds of `re` syntax probe files use, each of which must find the same match as `re` did.
RE_COMPATIBLE = [
    (r"^\{", GOOD),
    (r"^[A-Z][a-z]+$", "Acme"),
    (r"^\d+\.5$", "12.5"),
    (r"\[(Yes|No)\]", "so: [No] wait [Yes]"),
    (r"\[(?:Yes|No)\]", "ok [Yes]"),
    (r"(yes)|(no)", "no"),
    (r"answer: (\S+)", "the answer: 42.0\n"),
    (r"(?i)^paris$", "PARIS"),
    (r"(?m)^b$", "a\nb\nc"),
    (r"(?s)a.c", "a\nc"),
    (r"(?x) \d+ \s* (?# a comment ) USD", "total 12 USD"),
    (r"(?P<word>\w+) (?P=word)", "it is is so"),
    (r"(?<=\$)\d+(?!\d)", "cost $1234"),
    (r"\bcat\b", "concat cat"),
    (r"^\w+$", "café"),  # \w is Unicode for str patterns, as in re
    (r"\d", "٣"),  # so is \d (an Arabic-Indic digit)
    (r"(?a)\w+", "café"),
    (r"[^\W\d_]+", "__abc123"),
    (r"a{2,3}?", "aaaa"),
    (r"(?>a+)b", "aaab"),  # atomic groups and possessive quantifiers: re 3.11
    (r"a++b", "aab"),
    (r"\Aab\Z", "ab"),
    (r"\N{EM DASH}", "a—b"),
    (r"(a)|b", "b"),  # a group that did not take part
    (r"x*", "abc"),  # an empty match at 0
    (r"^$", ""),
    (r"\\", "a\\b"),
    (r"[\]-]+", "a]-]b"),
    (r"\u00e9|\x41", "A"),
]


@pytest.mark.parametrize(("pattern", "subject"), RE_COMPATIBLE)
def test_probe_regexes_match_exactly_like_re(pattern: str, subject: str) -> None:
    expected = re.search(pattern, subject)
    got = bounded_search(compile_regex(pattern), subject, 1.0)
    assert expected is not None, "each case is meant to match"
    assert got is not None and not isinstance(got, TimedOut)
    assert (got.span(), got.group(0), got.groups()) == (
        expected.span(),
        expected.group(0),
        expected.groups(),
    )
    assert compile_regex(pattern).groups == re.compile(pattern).groups


@pytest.mark.parametrize(
    ("pattern", "subject"), [(r"^\d+$", "12a"), (r"(?i)x", "y"), (r"a\Z", "a\n")]
)
def test_probe_regexes_miss_like_re(pattern: str, subject: str) -> None:
    assert re.search(pattern, subject) is None
    assert bounded_search(compile_regex(pattern), subject, 1.0) is None


def test_raw_text_regex_runs_on_the_text_as_received() -> None:
    probe = invoice_probe(check(0, regex=r"^\{"))
    assert judge(probe, "\n" + GOOD).checks == [False]
    assert judge(probe, GOOD).checks == [True]


def test_raw_text_regex_is_evaluated_even_when_not_json() -> None:
    probe = invoice_probe(check(0, regex=r"total"), check(1, field="total", equals=1))
    result = judge(probe, "the total is unknown")
    assert result.checks == [True, None]


def test_missing_field_is_false_and_named_in_reason() -> None:
    probe = invoice_probe(
        check(0, field="missing", equals=1),
        check(1, field="missing", regex="x"),
        check(2, field="missing", range=(0, 1)),
        check(3, field="missing", one_of=(1,)),
    )
    result = judge(probe, GOOD)
    assert result.checks == [False, False, False, False]
    assert result.reason == (
        "check 1 failed: missing == 1 (field missing); "
        "check 2 failed: missing ~ /x/ (field missing)"
    )


def test_checks_without_field_on_json_compare_the_whole_document() -> None:
    probe = make_probe(response_format="json", expect=(check(0, equals=[1, 2]),))
    assert judge(probe, "[1, 2]").checks == [True]
    assert judge(probe, "[2, 1]").checks == [False]


@pytest.mark.parametrize(
    ("path", "ok"),
    [
        ("a.b.0.c", True),
        ("a.b.1", True),
        ("a.b.2", False),  # out of range
        ("a.b.-1", False),  # no negative indexing
        ("a.b.x", False),  # not an index
        ("a.0", False),  # an object is not indexed
        ("a.b.0.c.d", False),  # through a scalar
        ("m.0", True),  # on an object, digits are a key
    ],
)
def test_dotted_paths(path: str, ok: bool) -> None:
    probe = make_probe(response_format="json", expect=(check(0, field=path, regex="."),))
    result = judge(probe, '{"a": {"b": [{"c": "x"}, 2]}, "m": {"0": "zero"}}')
    assert result.checks == [ok]


# --- tracked fields -------------------------------------------------------------------------


def test_tracked_fields_scalars_nested_and_missing() -> None:
    probe = make_probe(
        response_format="json",
        track=("currency", "total", "lines.0.sku", "flag", "none", "obj", "list", "gone", "a.b"),
    )
    result = judge(
        probe,
        '{"currency": "USD", "total": 12, "lines": [{"sku": "A-1"}], "flag": false,'
        ' "none": null, "obj": {"z": 1, "a": [1, 2]}, "list": ["x", 1.5], "a": {}}',
    )
    assert result.tracked == {
        "currency": "USD",
        "total": 12,
        "lines.0.sku": "A-1",
        "flag": False,
        "none": None,
        "obj": '{"a":[1,2],"z":1}',  # canonical: sorted keys, compact
        "list": '["x",1.5]',
    }


def test_tracked_fields_survive_schema_failure() -> None:
    result = judge(invoice_probe(track=("currency",)), '{"total": "x", "currency": "GBP"}')
    assert result.schema_valid is False
    assert result.tracked == {"currency": "GBP"}


def test_tracked_values_are_bounded_and_storable() -> None:
    probe = make_probe(response_format="json", track=("long", "other", "big", "bad"))
    long_a, long_b = "a" * 5000, "a" * 4999 + "b"
    big = "1" + "0" * 30
    result = judge(
        probe,
        f'{{"long": "{long_a}", "other": "{long_b}", "big": {big}, "bad": "x\\u0000\\ud800"}}',
    )
    tracked = result.tracked
    assert len(tracked["long"]) == 1000
    assert tracked["long"] != tracked["other"]  # the hash keeps distinct values distinct
    assert tracked["big"] == "1" + "0" * 30  # beyond int64: its decimal string
    assert tracked["bad"] == "x\ufffd\ufffd"
    tracked["bad"].encode("utf-8")


# --- text probes ----------------------------------------------------------------------------


def text_probe(*expect: Check, extract: str | None = r"\[(Yes|No)\]") -> Probe:
    return make_probe(response_format="text", schema=None, expect=expect, extract=extract)


def test_text_probe_extract_and_check() -> None:
    probe = text_probe(check(0, equals="Yes"))
    result = judge(probe, "17077 has no divisor up to its square root, so: [Yes]")
    assert result.format_kind is FormatKind.TEXT
    assert result.parsed
    assert result.answer == "Yes"
    assert result.checks == [True]
    assert result.verdict == "pass"
    assert result.schema_valid is None

    wrong = judge(probe, "It is divisible by 7. [No]")
    assert (wrong.verdict, wrong.answer, wrong.checks) == ("fail", "No", [False])
    assert wrong.reason == "check 1 failed: answer == 'Yes'"


def test_text_probe_extract_takes_the_first_match() -> None:
    assert judge(text_probe(), "[No] wait... [Yes]").answer == "No"


def test_text_probe_extract_without_match() -> None:
    result = judge(text_probe(check(0, equals="Yes")), "Yes, it is prime.")
    assert result.verdict == "fail"
    assert not result.parsed
    assert result.answer is None
    assert result.checks == [None]
    assert result.reason == r"extract /\[(Yes|No)\]/ did not match"


def test_text_probe_extract_group_choice() -> None:
    assert judge(text_probe(extract=r"\[(?:Yes|No)\]"), "ok [Yes]").answer == "[Yes]"
    assert judge(text_probe(extract=r"(yes)|(no)"), "no").answer == "no"


def test_text_probe_without_extract_uses_the_stripped_text() -> None:
    probe = text_probe(check(0, regex=r"^Paris$"), extract=None)
    result = judge(probe, "  Paris\n")
    assert (result.answer, result.checks, result.verdict) == ("Paris", [True], "pass")


def test_text_probe_non_string_expectations_read_the_answer_as_json() -> None:
    probe = text_probe(
        check(0, equals=42),
        check(1, range=(40, 50)),
        check(2, one_of=(41, "42")),
        check(3, equals=True),
        extract=r"answer: (\S+)",
    )
    assert judge(probe, "answer: 42").checks == [True, True, True, False]
    assert judge(probe, "answer: 42.0").checks == [True, True, False, False]
    assert judge(probe, "answer: true").checks == [False, False, False, True]
    assert judge(probe, "answer: forty-two").checks == [False, False, False, False]


def test_text_probe_empty_output() -> None:
    result = judge(text_probe(check(0, equals="Yes")), "   ")
    assert result.format_kind is FormatKind.EMPTY
    assert (result.verdict, result.parsed, result.checks) == ("fail", False, [None])
    assert result.reason == "empty output"


def test_text_probe_answer_is_storable() -> None:
    result = judge(text_probe(extract="(.+)"), "a\x00b\udc80c")
    assert result.answer == "a\ufffdb\ufffdc"


# --- API ------------------------------------------------------------------------------------


def test_format_kind_values_are_the_stored_strings() -> None:
    assert [k.value for k in FormatKind] == [
        "clean",
        "fenced",
        "prose",
        "not_json",
        "empty",
        "text",
        "tool_call",
        "no_tool_call",
    ]


def test_non_str_output_is_a_programming_error() -> None:
    with pytest.raises(TypeError):
        judge(invoice_probe(), b"{}")  # type: ignore[arg-type]
