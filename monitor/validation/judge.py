"""judge(): one model output against one probe -> a Judgement. Never raises on any output."""

from __future__ import annotations

from typing import Any, Literal

from monitor.probes.model import Probe
from monitor.validation.checks import TimedOut, bounded_search, describe_timeout
from monitor.validation.compiled import CompiledProbe, prepare
from monitor.validation.fields import MISSING, lookup, safe_text, tracked_value
from monitor.validation.jsontext import extract_json
from monitor.validation.refusal import looks_like_refusal
from monitor.validation.result import FormatKind, Judgement, OutputLimits
from monitor.validation.schema import schema_errors

DEFAULT_LIMITS = OutputLimits()


def judge(probe: Probe, text: str | None, *, limits: OutputLimits = DEFAULT_LIMITS) -> Judgement:
    """Judge one output. `text` None (no content) is judged like "": an EMPTY fail.

    Raises TypeError for a non-str `text` (bytes must be decoded by the provider adapter) and
    ProbeFileError for a probe whose schema or regexes do not compile (see `prepare`);
    whatever the output contains, it returns a Judgement.
    """
    if text is None:
        text = ""
    elif not isinstance(text, str):
        raise TypeError(f"judge() needs the output as str, not {type(text).__name__}")
    compiled = prepare(probe)
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
        return Judgement(
            verdict="fail",
            format_kind=found.kind,
            parsed=False,
            schema_valid=None,
            checks=raw_checks,
            refusal=refusal,
            reason=_with_refusal("; ".join([found.problem or "not JSON", *timeouts]), refusal),
        )
    document = found.value
    problems: list[str] = []
    schema_valid: bool | None = None
    errors: list[str] = []
    if compiled.validator is not None:
        errors, count = schema_errors(compiled.validator, document, keep=limits.max_schema_errors)
        schema_valid = count == 0
        if count:
            plus = "+" if count >= 1_000 else ""
            problems.append(f"schema: {count}{plus} error{'s' if count != 1 else ''}")
    checks: list[bool | None] = []
    for check in compiled.checks:
        outcome = check.on_document(document, raw_head, limits.max_check_text, limits.regex_timeout)
        checks.append(outcome is True)
        # At most two problems keep the reason short, but a timeout is always named.
        if outcome is not True and (len(problems) < 2 or isinstance(outcome, TimedOut)):
            note = outcome if isinstance(outcome, str) else None
            problems.append(_failed(check.position, check.description, note))
    tracked: dict[str, Any] = {}
    for name, path in compiled.track:
        value = lookup(document, path)
        if value is not MISSING:
            tracked[name] = tracked_value(value, limits.max_tracked_chars)
    return Judgement(
        verdict=_verdict(problems),
        format_kind=found.kind,
        parsed=True,
        schema_valid=schema_valid,
        schema_errors=[safe_text(error) for error in errors],
        checks=checks,
        tracked=tracked,
        refusal=refusal,
        reason=_reason(problems, refusal),
    )


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
    return f"{reason} (looks like a refusal)" if refusal else reason
