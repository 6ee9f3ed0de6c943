"""`expect` checks, compiled once per probe version.

Semantics (SPEC "Probe set files", with the gaps filled in):
- equals / one_of compare as JSON (1 == 1.0, true != 1); range is inclusive and only numbers
  can meet it; regex is a search (`re.search` semantics).
- json probes: a `field` is a dotted path into the parsed document; a missing field makes the
  check False (the expectation is not met), not None. Without `field`, regex runs on the raw
  text exactly as received (so `^\\{` means "starts with a brace") and the others compare
  the whole document. A regex on a non-string field runs on its compact JSON spelling
  (true -> "true"), which matches what the author sees in the output.
- text probes: checks without `field` apply to the answer. A string expectation compares
  with the answer as is; any other (a number, true, a list) compares with the answer read as
  JSON, so `{equals: 42}` and `{range: [0, 100]}` work on an answer "42".
- A check is None only when there is nothing to evaluate: the output did not parse, or the
  text probe's `extract` did not match (or timed out).

Regexes run on the `regex` package (PyPI) in its `re`-compatible VERSION0 mode, because
Python's `re` has no timeout and judging runs in the replay's event loop: one model output
that sends a pattern such as `^(a|aa)+$` into catastrophic backtracking would otherwise
freeze every request of the run. Each evaluation gets `regex_timeout` seconds (see
OutputLimits) on at most the first `max_check_text` characters. A regex that times out is a
check that is not met (False, like a missing field): the output is there, so the check is not
"not evaluable" (None), and the verdict must not pass on an answer nobody could check. The
failure note "regex timed out after 100 ms" always reaches the reason (see judge.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import regex

from monitor.probes.model import Check
from monitor.validation.fields import (
    MISSING,
    FieldPath,
    canonical,
    is_number,
    json_equal,
    lookup,
    parse_path,
)
from monitor.validation.jsontext import decode_or_none

CheckKind = Literal["equals", "one_of", "range", "regex"]
Pattern = regex.Pattern[str]


class InvalidCheck(Exception):
    """The check cannot be compiled: no expectation, a bad regex or range, a misplaced field."""


class TimedOut(str):
    """The failure note of a regex that ran out of time: "regex timed out after 100 ms".

    A str like the other notes ("field missing"), so callers that only show notes need no
    change; its own type lets judge() name it in the reason even past its cap on problems,
    because a timeout points at a pathological output or pattern that someone should see.
    """

    __slots__ = ()


def compile_regex(pattern: str) -> Pattern:
    """`pattern` compiled the way every probe regex is (the loader validates with this too).

    VERSION0 keeps `re` semantics, so patterns written and tested against Python's `re` mean
    the same here; raises regex.error for an invalid pattern.
    """
    return regex.compile(pattern, flags=regex.VERSION0)


def bounded_search(
    pattern: Pattern, subject: str, timeout: float
) -> regex.Match[str] | TimedOut | None:
    """`pattern.search(subject)` bounded by `timeout` seconds: the match, None, or TimedOut."""
    try:
        return pattern.search(subject, timeout=timeout)
    except TimeoutError:
        return TimedOut(f"regex timed out after {describe_timeout(timeout)}")


def describe_timeout(seconds: float) -> str:
    """100 ms, 1.5 s: how reasons spell a regex timeout."""
    return f"{seconds * 1000:g} ms" if seconds < 1 else f"{seconds:g} s"


@dataclass(frozen=True, slots=True)
class CompiledCheck:
    position: int  # 1-based, as in reasons: "check 2 failed: ..."
    description: str
    path: FieldPath | None
    kind: CheckKind
    expected: Any
    pattern: Pattern | None

    @property
    def on_raw_text(self) -> bool:
        return self.path is None and self.kind == "regex"

    def on_document(
        self, document: Any, raw_head: str, max_check_text: int, regex_timeout: float
    ) -> bool | str:
        """True/False for a parsed json output, or a failure note: "field missing", TimedOut."""
        if self.on_raw_text:
            return self._search(raw_head, regex_timeout)
        value = document if self.path is None else lookup(document, self.path)
        if value is MISSING:
            return "field missing"
        return self._test(value, max_check_text, regex_timeout)

    def raw_text_only(self, raw_head: str, regex_timeout: float) -> bool | TimedOut | None:
        """For an output that did not parse: only a raw-text regex can still be evaluated."""
        if self.on_raw_text:
            return self._search(raw_head, regex_timeout)
        return None

    def on_answer(
        self, answer: str, max_check_text: int, max_depth: int, regex_timeout: float
    ) -> bool | TimedOut:
        if self.kind == "regex":
            return self._search(answer[:max_check_text], regex_timeout)
        as_json: list[Any] = []  # decoded at most once, and only if a non-string needs it

        def matches(expected: Any) -> bool:
            if isinstance(expected, str):
                return answer == expected
            if not as_json:
                ok, value = decode_or_none(answer, max_depth)
                as_json.append(value if ok else MISSING)
            return as_json[0] is not MISSING and json_equal(as_json[0], expected)

        if self.kind == "equals":
            return matches(self.expected)
        if self.kind == "one_of":
            return any(matches(option) for option in self.expected)
        ok, value = decode_or_none(answer, max_depth)
        # Only range is left, which never runs a regex: the result is a plain bool.
        return ok and self._test(value, max_check_text, regex_timeout) is True

    def _test(self, value: Any, max_check_text: int, regex_timeout: float) -> bool | TimedOut:
        if self.kind == "equals":
            return json_equal(value, self.expected)
        if self.kind == "one_of":
            return any(json_equal(value, option) for option in self.expected)
        if self.kind == "range":
            low, high = self.expected
            return is_number(value) and bool(low <= value <= high)
        subject = value if isinstance(value, str) else canonical(value)
        return self._search(subject[:max_check_text], regex_timeout)

    def _search(self, subject: str, regex_timeout: float) -> bool | TimedOut:
        assert self.pattern is not None
        found = bounded_search(self.pattern, subject, regex_timeout)
        return found if isinstance(found, TimedOut) else found is not None


def compile_check(check: Check, position: int, *, text_probe: bool) -> CompiledCheck:
    if text_probe and check.field is not None:
        raise InvalidCheck(f"check {position}: a text probe has no fields ({check.field!r})")
    path = parse_path(check.field) if check.field is not None else None
    description = check.describe()
    if check.has_equals:
        return CompiledCheck(position, description, path, "equals", check.equals, None)
    if check.one_of is not None:
        return CompiledCheck(position, description, path, "one_of", tuple(check.one_of), None)
    if check.range is not None:
        low, high = check.range
        if not (is_number(low) and is_number(high)):
            raise InvalidCheck(f"check {position}: range needs two numbers")
        return CompiledCheck(position, description, path, "range", (low, high), None)
    if check.regex is not None:
        try:
            pattern = compile_regex(check.regex)
        except regex.error as exc:
            raise InvalidCheck(f"check {position}: invalid regex: {exc}") from None
        return CompiledCheck(position, description, path, "regex", None, pattern)
    raise InvalidCheck(f"check {position}: none of equals, one_of, range, regex is set")
