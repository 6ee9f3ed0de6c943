"""Hostile output is judged or rejected, never crashes judge(). No timing assertions here,
except for regex timeouts (at the end): each case would take seconds (or recurse out) if a
bound were missing, which shows up as a slow or failing run rather than as a flaky threshold.
The regex cases assert a wall-time bound 20 times the timeout, as without the timeout they
would run for hours."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine

from monitor.providers.base import ProviderResponse
from monitor.runner import Runner
from monitor.validation import FormatKind, Judgement, OutputLimits, judge
from tests.unit.test_validation import INVOICE_SCHEMA, check, invoice_probe, make_probe

ARRAY_OF_ANYTHING = {"type": "array"}


def judge_json(text: str, *, limits: OutputLimits | None = None) -> Judgement:
    probe = make_probe(
        schema=INVOICE_SCHEMA,
        expect=(check(0, field="total", range=(0, 10)), check(1, regex=r"(a|aa)+$")),
        track=("total", "currency"),
    )
    return judge(probe, text, limits=limits or OutputLimits())


def assert_storable(result: Judgement) -> None:
    for text in [result.reason or "", result.answer or "", *result.schema_errors]:
        text.encode("utf-8")
        assert "\x00" not in text
    for value in result.tracked.values():
        if isinstance(value, str):
            value.encode("utf-8")
            assert "\x00" not in value


def test_one_megabyte_is_rejected_unparsed() -> None:
    text = '{"total": 1, "currency": "USD", "pad": "' + "a" * 1_048_576 + '"}'
    result = judge_json(text)
    assert (result.verdict, result.parsed, result.format_kind) == (
        "fail",
        False,
        FormatKind.NOT_JSON,
    )
    assert result.reason == f"output too large ({len(text)} chars > 200000)"
    assert result.checks == [None, None]


def test_text_probe_over_the_limit() -> None:
    probe = make_probe(response_format="text", extract="(x)")
    result = judge(probe, "x" * 300_000)
    assert (result.format_kind, result.parsed, result.answer) == (FormatKind.TEXT, False, None)


def test_limit_is_inclusive_of_max_chars() -> None:
    text = '{"total": 1, "currency": "USD"}'
    assert judge_json(text, limits=OutputLimits(max_chars=len(text))).parsed
    assert not judge_json(text, limits=OutputLimits(max_chars=len(text) - 1)).parsed


@pytest.mark.parametrize(
    "text",
    [
        "[" * 10_000 + "]" * 10_000,
        '{"a":' * 10_000 + "1" + "}" * 10_000,
        "[" * 100_000,  # unbalanced
        "Here it is: " + "[" * 10_000 + "]" * 10_000,  # in prose
        "```json\n" + "[" * 10_000 + "]" * 10_000 + "\n```",  # in a fence
        'He said "' + "{" * 10_000,  # an open quote hides brackets from the first scan
        '"' + "[" * 150_000 + "]" * 49_000,
    ],
)
def test_deep_nesting_is_rejected(text: str) -> None:
    result = judge_json(text)
    assert result.parsed is False
    assert result.format_kind is FormatKind.NOT_JSON
    assert result.reason == "too deeply nested (depth > 64)"
    assert result.checks == [None, False]  # the raw-text regex still ran, on bounded text


def test_depth_limit_boundary() -> None:
    probe = make_probe(
        schema={
            "$ref": "#/$defs/node",
            "$defs": {"node": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        }
    )
    at_limit = judge(probe, "[" * 64 + "]" * 64)
    assert (at_limit.format_kind, at_limit.schema_valid) == (FormatKind.CLEAN, True)
    over = judge(probe, "[" * 65 + "]" * 65)
    assert over.reason == "too deeply nested (depth > 64)"
    # brackets inside strings do not count
    assert judge(probe, '["' + "[" * 100 + '"]').format_kind is FormatKind.CLEAN


@pytest.mark.parametrize(
    "number", ["1e999999", "-1e999", "9" * 10_000, "-" + "9" * 5_000, "1" + "0" * 400 + "e999"]
)
def test_huge_numbers(number: str) -> None:
    result = judge_json(f'{{"total": {number}, "currency": "USD"}}')
    assert result.parsed is False
    assert result.reason == "number out of range"


def test_big_but_convertible_numbers_are_judged() -> None:
    result = judge_json('{"total": ' + "9" * 4000 + ', "currency": "USD"}')
    assert result.parsed and result.schema_valid is True
    assert result.checks[0] is False  # out of range, compared exactly
    assert result.tracked["total"].startswith("999")  # beyond int64: a (clipped) string
    assert judge_json('{"total": 1e-999999, "currency": "USD"}').tracked["total"] == 0.0


@pytest.mark.parametrize(
    "text",
    [
        '{"total": 1, "currency": "\udc80\udcff"}',  # surrogateescape'd invalid UTF-8
        '{"total": 1, "currency": "\\ud800"}',  # a lone surrogate escape
        '{"total": 1, "currency": "\ufffd\ufffd"}',  # replacement characters
        '\udc80{"total": 1, "currency": "USD"}',
        "\ud83d" * 1000,
    ],
)
def test_invalid_unicode_never_crashes(text: str) -> None:
    result = judge_json(text)
    assert_storable(result)


def test_surrogates_in_schema_errors_are_storable() -> None:
    result = judge_json('{"total": "\\udc80", "currency": "\\ud800"}')
    assert result.schema_valid is False
    assert_storable(result)


@pytest.mark.parametrize(
    "text",
    [
        '{"total": 1, "currency": "US\x00D"}',  # raw NUL inside a string: invalid JSON
        '{"total": 1,\x00 "currency": "USD"}',
        "\x00" * 1000,
        "\x1b[31m{}\x1b[0m",
        '{"total": 1, "currency": "a\nb"}',  # raw newline in a string: invalid JSON
        "".join(chr(c) for c in range(32)) * 100,
    ],
)
def test_control_characters(text: str) -> None:
    result = judge_json(text)
    assert result.format_kind in (FormatKind.NOT_JSON, FormatKind.PROSE, FormatKind.EMPTY)
    assert_storable(result)


def test_escaped_nul_is_valid_json_and_tracked_safely() -> None:
    result = judge_json('{"total": 1, "currency": "US\\u0000D"}')
    assert result.parsed and result.tracked["currency"] == "US\ufffdD"
    assert_storable(result)


@pytest.mark.parametrize(
    "text",
    [
        '"\\"' * 60_000,  # quotes and escapes that never close
        '"' + "\\" * 99_999,
        "{" + '"a": 1, ' * 20_000,  # an object that never closes
        "[]" * 90_000,
        "][" * 90_000,
        "{]" * 90_000,
        "```" * 60_000,
        "```json\n" * 20_000,
        "Sure! " * 30_000,
        "a" * 150_000 + "!",  # the raw-text regex check (a|aa)+$ is bounded too
    ],
)
def test_pathological_shapes_return(text: str) -> None:
    assert_storable(judge_json(text))


def test_schema_error_flood_is_counted_not_formatted_forever() -> None:
    probe = make_probe(schema={"type": "array", "items": {"type": "string"}})
    result = judge(probe, "[" + "1," * 90_000 + "1]")
    assert len(result.schema_errors) == 51
    assert result.schema_errors[-1] == "... 950+ more"
    assert result.reason == "schema: 1000+ errors"


def test_many_candidates_in_prose_stop_early() -> None:
    text = "{x} " * 40_000 + '{"total": 1, "currency": "USD"}'
    result = judge_json(text)
    assert result.format_kind is FormatKind.NOT_JSON  # gave up after a bounded search


def test_text_probe_hostile() -> None:
    probe = make_probe(
        response_format="text", extract=r"\[(\w+)\]", expect=(check(0, range=(0, 1)),)
    )
    for text in ["[" * 10_000 + "1" + "]" * 10_000, "\x00[1]\udc80", "[" + "9" * 10_000 + "]"]:
        assert_storable(judge(probe, text))
    assert judge(probe, "[" + "9" * 10_000 + "]").checks == [False]


# --- regexes that backtrack catastrophically -------------------------------------------------

# `^(a|aa)+$` tries every way to split the a's before failing at the "b": about 1.6^n steps,
# hours for Python's `re` at n = 60. (The classic `^(a+)+$` is no test: the `regex` engine
# answers that one at once.)
CATASTROPHIC = r"^(a|aa)+$"
EVIL = "a" * 60 + "b"
TIMED_OUT = "regex timed out after 100 ms"


@contextmanager
def returns_within(seconds: float) -> Iterator[None]:
    start = time.monotonic()
    yield
    elapsed = time.monotonic() - start
    assert elapsed < seconds, f"took {elapsed:.2f} s"


def test_raw_text_regex_times_out_on_unparsed_output() -> None:
    with returns_within(2):
        result = judge(invoice_probe(check(0, regex=CATASTROPHIC)), EVIL)
    assert (result.verdict, result.parsed, result.format_kind) == (
        "fail",
        False,
        FormatKind.NOT_JSON,
    )
    assert result.checks == [False]  # not met, not "not evaluable"
    assert result.reason == f"not JSON; check 1 failed: raw text ~ /{CATASTROPHIC}/ ({TIMED_OUT})"


def test_field_regex_times_out_and_is_named_past_the_cap_on_problems() -> None:
    probe = invoice_probe(
        check(0, field="total", equals=1),
        check(1, field="currency", equals="EUR"),
        check(2, field="note", regex=CATASTROPHIC),
        check(3, field="note", regex="^a"),
    )
    with returns_within(2):
        result = judge(probe, f'{{"total": 2, "currency": "USD", "note": "{EVIL}"}}')
    assert (result.verdict, result.parsed, result.schema_valid) == ("fail", True, True)
    assert result.checks == [False, False, False, True]  # later checks still run
    assert result.reason == (
        "check 1 failed: total == 1; check 2 failed: currency == 'EUR'; "
        f"check 3 failed: note ~ /{CATASTROPHIC}/ ({TIMED_OUT})"
    )


def test_text_probe_check_times_out() -> None:
    probe = make_probe(
        response_format="text", extract=r"answer: (\w+)", expect=(check(0, regex=CATASTROPHIC),)
    )
    with returns_within(2):
        result = judge(probe, f"answer: {EVIL}")
    assert (result.verdict, result.parsed, result.answer, result.checks) == (
        "fail",
        True,
        EVIL,
        [False],
    )
    assert result.reason == f"check 1 failed: raw text ~ /{CATASTROPHIC}/ ({TIMED_OUT})"


def test_text_probe_extract_times_out_like_no_match() -> None:
    extract = r"^((a|aa)+)$"
    probe = make_probe(response_format="text", extract=extract, expect=(check(0, equals="a"),))
    with returns_within(2):
        result = judge(probe, EVIL)
    assert (result.verdict, result.parsed, result.answer, result.checks) == (
        "fail",
        False,
        None,
        [None],  # no answer: the checks cannot be evaluated
    )
    assert result.format_kind is FormatKind.TEXT
    assert result.reason == f"extract /{extract}/ timed out after 100 ms"


def test_the_timeout_is_a_limit() -> None:
    probe = invoice_probe(check(0, regex=CATASTROPHIC))
    with returns_within(1):
        result = judge(probe, EVIL, limits=OutputLimits(regex_timeout=0.02))
    assert result.reason is not None and result.reason.endswith("(regex timed out after 20 ms)")
    # The same pattern on a harmless output needs no time at all.
    assert judge(probe, "a" * 60, limits=OutputLimits(regex_timeout=0.02)).checks == [True]


def test_every_timed_out_check_costs_one_timeout_at_most() -> None:
    probe = invoice_probe(*(check(i, regex=CATASTROPHIC) for i in range(5)))
    with returns_within(5 * 0.1 * 20):
        result = judge(probe, EVIL)
    assert result.checks == [False] * 5


@pytest.mark.parametrize(
    ("pattern", "text", "ok"),
    [
        (r"^(a+)+$", EVIL, False),  # exponential in `re`, answered at once by `regex`
        (r"(a|aa)+$", "a" * 150_000, True),  # only the first 20,000 characters are searched
        (r"\[(Yes|No)\]", "[" * 20_000, False),
    ],
)
def test_hostile_but_answerable_patterns_give_the_right_answer(
    pattern: str, text: str, ok: bool
) -> None:
    probe = make_probe(response_format="text", extract=None, expect=(check(0, regex=pattern),))
    with returns_within(2):
        result = judge(probe, text)
    assert result.checks == [ok]
    assert "timed out" not in (result.reason or "")


async def test_a_timed_out_check_is_a_stored_fail_not_a_provider_error() -> None:
    runner = Runner(create_engine("sqlite://"))  # no identity to store: the engine is unused
    probe = make_probe(response_format="text", extract=None, expect=(check(0, regex=CATASTROPHIC),))
    with returns_within(2):
        row = await runner._row(ProviderResponse(text=EVIL), probe, 1, 1, 1, 0, {})
    assert row["verdict"] == "fail"
    assert "error_class" not in row and "error_message" not in row
    assert row["checks"] == [False]
    assert row["reason"] == f"check 1 failed: raw text ~ /{CATASTROPHIC}/ ({TIMED_OUT})"
