"""judge(): one model output against one probe -> a Judgement. Never raises on any output.

A tool_call probe is judged on the first tool call of the answer: which tool it called, and
its arguments, parsed strictly and validated against that tool's parameters; `expect` checks
and `track` paths read the arguments document. Every other probe is judged on the text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from monitor.probes.model import Probe
from monitor.validation.checks import TimedOut, bounded_search, describe_timeout
from monitor.validation.compiled import CompiledProbe, prepare
from monitor.validation.fields import MISSING, lookup, safe_text, tracked_value
from monitor.validation.jsontext import Extraction, extract_json, parse_document
from monitor.validation.refusal import looks_like_refusal
from monitor.validation.result import FormatKind, Judgement, OutputLimits
from monitor.validation.schema import SchemaValidator, schema_errors

DEFAULT_LIMITS = OutputLimits()
# The longest tool name a probe can declare (and the width of the stored column).
MAX_TOOL_NAME = 64  # the width of Result.tool_name: a longer name (the model's invention) is cut
PROVIDER_REFUSAL = "refused by the provider"
_HEURISTIC_REFUSAL = " (looks like a refusal)"


def judge(
    probe: Probe,
    text: str | None,
    *,
    limits: OutputLimits = DEFAULT_LIMITS,
    tool_calls: Sequence[tuple[str, str]] = (),
    provider_refusal: bool = False,
) -> Judgement:
    """Judge one output. `text` None (no content) is judged like "": an EMPTY fail.

    tool_calls: the (name, arguments JSON text) of each tool call in the answer, in order;
        only tool_call probes read them (the first call is judged).
    provider_refusal: the provider itself said the model declined (OpenAI `refusal`,
        Anthropic stop_reason "refusal"). The judgement is then a fail with `refusal` set,
        whatever the language of the text; the English heuristic only reads the text.

    Raises TypeError for a non-str `text` (bytes must be decoded by the provider adapter) and
    ProbeFileError for a probe whose schema or regexes do not compile (see `prepare`);
    whatever the output contains, it returns a Judgement.
    """
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise TypeError(f"judge() needs the output as str, not {type(text).__name__}")
    compiled = prepare(probe)
    if compiled.tool_call:
        judgement = _judge_tool_call(compiled, text, tool_calls, limits)
    else:
        judgement = _judge_output(compiled, text, limits)
    return _refused_by_provider(judgement) if provider_refusal else judgement


def _judge_output(compiled: CompiledProbe, text: str, limits: OutputLimits) -> Judgement:
    if len(text) > limits.max_chars:
        return _unjudged(
            compiled,
            FormatKind.TEXT if compiled.text else FormatKind.NOT_JSON,
            f"output too large ({len(text)} chars > {limits.max_chars})",
            looks_like_refusal(text),
        )
    stripped = text.strip()
    if not stripped:
        return _unjudged(compiled, FormatKind.EMPTY, "empty output", False)
    refusal = looks_like_refusal(stripped)
    if compiled.text:
        return _judge_text(compiled, stripped, refusal, limits)
    return _judge_json(compiled, text, stripped, refusal, limits)


def _judge_json(
    compiled: CompiledProbe, text: str, stripped: str, refusal: bool, limits: OutputLimits
) -> Judgement:
    raw_head = text[: limits.max_check_text]
    found = extract_json(stripped, limits.max_depth)
    if not found.parsed:
        raw_checks, timeouts = _raw_text_checks(compiled, raw_head, limits)
        return Judgement(
            verdict="fail",
            format_kind=found.kind,
            parsed=False,
            schema_valid=None,
            checks=raw_checks,
            refusal=refusal,
            reason=_with_refusal("; ".join([found.problem or "not JSON", *timeouts]), refusal),
        )
    document = _judge_document(compiled, compiled.validator, found.value, raw_head, limits)
    return Judgement(
        verdict=_verdict(document.problems),
        format_kind=found.kind,
        parsed=True,
        schema_valid=document.schema_valid,
        schema_errors=document.schema_errors,
        checks=document.checks,
        tracked=document.tracked,
        refusal=refusal,
        reason=_reason(document.problems, refusal),
    )


@dataclasses.dataclass
class _Document:
    """What judging a parsed JSON document found: an output's, or a tool call's arguments."""

    problems: list[str]
    schema_valid: bool | None
    schema_errors: list[str]
    checks: list[bool | None]
    tracked: dict[str, Any]


def _judge_document(
    compiled: CompiledProbe,
    validator: SchemaValidator | None,
    document: Any,
    raw_head: str,
    limits: OutputLimits,
    problems: Sequence[str] = (),
) -> _Document:
    found = list(problems)
    schema_valid: bool | None = None
    errors: list[str] = []
    if validator is not None:
        errors, count = schema_errors(validator, document, keep=limits.max_schema_errors)
        schema_valid = count == 0
        if count:
            plus = "+" if count >= 1_000 else ""
            found.append(f"schema: {count}{plus} error{'s' if count != 1 else ''}")
    checks: list[bool | None] = []
    cap = len(problems) + 2
    for check in compiled.checks:
        outcome = check.on_document(document, raw_head, limits.max_check_text, limits.regex_timeout)
        checks.append(outcome is True)
        # At most two problems keep the reason short, but a timeout is always named.
        if outcome is not True and (len(found) < cap or isinstance(outcome, TimedOut)):
            note = outcome if isinstance(outcome, str) else None
            found.append(_failed(check.position, check.description, note))
    tracked: dict[str, Any] = {}
    for name, path in compiled.track:
        value = lookup(document, path)
        if value is not MISSING:
            tracked[name] = tracked_value(value, limits.max_tracked_chars)
    return _Document(found, schema_valid, [safe_text(error) for error in errors], checks, tracked)


def _raw_text_checks(
    compiled: CompiledProbe, raw_head: str, limits: OutputLimits
) -> tuple[list[bool | None], list[str]]:
    """For a document that did not parse: only a raw-text regex can still be evaluated."""
    raw_checks: list[bool | None] = []
    timeouts: list[str] = []
    for check in compiled.checks:
        raw = check.raw_text_only(raw_head, limits.regex_timeout)
        if isinstance(raw, TimedOut):
            # The parse problem is the reason; a timeout is named too, or it would be
            # invisible in the stored result (checks only says False).
            timeouts.append(_failed(check.position, check.description, raw))
            raw = False
        raw_checks.append(raw)
    return raw_checks, timeouts


def _judge_tool_call(
    compiled: CompiledProbe,
    text: str,
    tool_calls: Sequence[tuple[str, str]],
    limits: OutputLimits,
) -> Judgement:
    stripped = text[: limits.max_chars].strip()
    refusal = bool(stripped) and looks_like_refusal(stripped)
    if not tool_calls:
        answered = "answered in text" if stripped else "empty output"
        return Judgement(
            verdict="fail",
            format_kind=FormatKind.NO_TOOL_CALL,
            parsed=False,
            schema_valid=None,
            checks=[None] * len(compiled.checks),
            refusal=refusal,
            reason=_with_refusal(f"no tool call: {answered}", refusal),
            tool_called=False,
        )
    name, arguments = tool_calls[0]
    shown = safe_text(name[:MAX_TOOL_NAME])
    problems: list[str] = []
    validator = compiled.tool_validators.get(name)
    undeclared = "" if validator is not None else " (not one of the probe's tools)"
    if compiled.expect_tool is not None and name != compiled.expect_tool:
        problems.append(f"called {shown!r}, expected {compiled.expect_tool!r}{undeclared}")
    elif undeclared:
        problems.append(f"called {shown!r}{undeclared}")
    raw_head = arguments[: limits.max_check_text]
    found = _parse_arguments(arguments, limits)
    if not found.parsed:
        raw_checks, timeouts = _raw_text_checks(compiled, raw_head, limits)
        problems.append(f"tool arguments: {found.problem or 'not JSON'}")
        return Judgement(
            verdict="fail",
            format_kind=FormatKind.TOOL_CALL,
            parsed=False,
            schema_valid=None,
            checks=raw_checks,
            refusal=refusal,
            reason=_with_refusal("; ".join([*problems, *timeouts]), refusal),
            tool_called=True,
            tool_name=shown,
            tool_args_valid=False,
        )
    document = _judge_document(compiled, validator, found.value, raw_head, limits, problems)
    return Judgement(
        verdict=_verdict(document.problems),
        format_kind=FormatKind.TOOL_CALL,
        parsed=True,
        schema_valid=document.schema_valid,
        schema_errors=document.schema_errors,
        checks=document.checks,
        tracked=document.tracked,
        refusal=refusal,
        reason=_reason(document.problems, refusal),
        tool_called=True,
        tool_name=shown,
        tool_args_valid=validator is not None and document.schema_valid is True,
    )


def _parse_arguments(arguments: str, limits: OutputLimits) -> Extraction:
    if len(arguments) > limits.max_chars:
        problem = f"too large ({len(arguments)} chars > {limits.max_chars})"
        return Extraction(FormatKind.NOT_JSON, False, problem=problem)
    # A call without arguments may come as "" (a function that takes none): that is {}.
    return parse_document(arguments if arguments.strip() else "{}", limits.max_depth)


def _refused_by_provider(judgement: Judgement) -> Judgement:
    """The provider's own refusal signal: a fail, flagged as a refusal in any language."""
    own = judgement.reason
    if own is not None:
        own = own.removesuffix(_HEURISTIC_REFUSAL)
    if judgement.format_kind == FormatKind.EMPTY or not own:
        reason = PROVIDER_REFUSAL  # "empty output" says nothing more
    else:
        reason = f"{PROVIDER_REFUSAL}; {own}"
    return dataclasses.replace(judgement, verdict="fail", refusal=True, reason=reason)


def _judge_text(
    compiled: CompiledProbe, stripped: str, refusal: bool, limits: OutputLimits
) -> Judgement:
    answer: str | None = stripped
    if compiled.extract is not None:
        pattern = compiled.extract.pattern
        match = bounded_search(
            compiled.extract, stripped[: limits.max_check_text], limits.regex_timeout
        )
        if isinstance(match, TimedOut):
            # Like no match: there is no answer, so the checks cannot be evaluated (None).
            took = describe_timeout(limits.regex_timeout)
            return _unjudged(
                compiled, FormatKind.TEXT, f"extract /{pattern}/ timed out after {took}", refusal
            )
        if match is None:
            return _unjudged(
                compiled, FormatKind.TEXT, f"extract /{pattern}/ did not match", refusal
            )
        # The first group that took part, so `(Yes)|(No)` works like `(Yes|No)`; the whole
        # match when the pattern has no group.
        answer = next((g for g in match.groups() if g is not None), match.group(0))
    assert answer is not None
    problems: list[str] = []
    checks: list[bool | None] = []
    for check in compiled.checks:
        outcome = check.on_answer(
            answer, limits.max_check_text, limits.max_depth, limits.regex_timeout
        )
        checks.append(outcome is True)
        # The first failure makes the reason, but a timeout is always named.
        if outcome is not True and (not problems or isinstance(outcome, TimedOut)):
            note = outcome if isinstance(outcome, TimedOut) else None
            problems.append(_failed(check.position, check.description, note))
    return Judgement(
        verdict=_verdict(problems),
        format_kind=FormatKind.TEXT,
        parsed=True,
        schema_valid=None,
        checks=checks,
        answer=safe_text(answer),
        refusal=refusal,
        reason=_reason(problems, refusal),
    )


def _unjudged(compiled: CompiledProbe, kind: FormatKind, reason: str, refusal: bool) -> Judgement:
    return Judgement(
        verdict="fail",
        format_kind=kind,
        parsed=False,
        schema_valid=None,
        checks=[None] * len(compiled.checks),
        refusal=refusal,
        reason=_with_refusal(reason, refusal),
    )


def _failed(position: int, description: str, note: str | None) -> str:
    return f"check {position} failed: {description}" + (f" ({note})" if note else "")


def _verdict(problems: list[str]) -> Literal["pass", "fail"]:
    return "fail" if problems else "pass"


def _reason(problems: list[str], refusal: bool) -> str | None:
    return _with_refusal("; ".join(problems), refusal) if problems else None


def _with_refusal(reason: str, refusal: bool) -> str:
    return f"{reason}{_HEURISTIC_REFUSAL}" if refusal else reason
