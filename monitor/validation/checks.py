"""`expect` checks, compiled once per probe version.

Semantics (SPEC "Probe set files", with the gaps filled in):
- equals / one_of compare as JSON (1 == 1.0, true != 1); range is inclusive and only numbers
  can meet it; regex is `re.search`.
- json probes: a `field` is a dotted path into the parsed document; a missing field makes the
  check False (the expectation is not met), not None. Without `field`, regex runs on the raw
  text exactly as received (so `^\\{` means "starts with a brace") and the others compare
  the whole document. A regex on a non-string field runs on its compact JSON spelling
  (true -> "true"), which matches what the author sees in the output.
- text probes: checks without `field` apply to the answer. A string expectation compares
  with the answer as is; any other (a number, true, a list) compares with the answer read as
  JSON, so `{equals: 42}` and `{range: [0, 100]}` work on an answer "42".
- A check is None only when there is nothing to evaluate: the output did not parse, or the
  text probe's `extract` did not match.

Python's `re` has no timeout: regexes only ever see the first `max_check_text` characters,
which bounds polynomial backtracking; exponential patterns (`(a+)+$`) must be avoided by
probe authors, as in any regex engine of this kind.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

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


class InvalidCheck(Exception):
    """The check cannot be compiled: no expectation, a bad regex or range, a misplaced field."""


@dataclass(frozen=True, slots=True)
class CompiledCheck:
    position: int  # 1-based, as in reasons: "check 2 failed: ..."
    description: str
    path: FieldPath | None
    kind: CheckKind
    expected: Any
    pattern: re.Pattern[str] | None

    @property
    def on_raw_text(self) -> bool:
        return self.path is None and self.kind == "regex"

    def on_document(self, document: Any, raw_head: str, max_check_text: int) -> bool | str:
        """True/False for a parsed json output, or a string: "field missing" (a failure)."""
        if self.on_raw_text:
            assert self.pattern is not None
            return self.pattern.search(raw_head) is not None
        value = document if self.path is None else lookup(document, self.path)
        if value is MISSING:
            return "field missing"
        return self._test(value, max_check_text)

    def raw_text_only(self, raw_head: str) -> bool | None:
        """For an output that did not parse: only a raw-text regex can still be evaluated."""
        if self.on_raw_text:
            assert self.pattern is not None
            return self.pattern.search(raw_head) is not None
        return None

    def on_answer(self, answer: str, max_check_text: int, max_depth: int) -> bool:
        if self.kind == "regex":
            assert self.pattern is not None
            return self.pattern.search(answer[:max_check_text]) is not None
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
        return ok and self._test(value, max_check_text)

    def _test(self, value: Any, max_check_text: int) -> bool:
        if self.kind == "equals":
            return json_equal(value, self.expected)
        if self.kind == "one_of":
            return any(json_equal(value, option) for option in self.expected)
        if self.kind == "range":
            low, high = self.expected
            return is_number(value) and bool(low <= value <= high)
        assert self.pattern is not None
        subject = value if isinstance(value, str) else canonical(value)
        return self.pattern.search(subject[:max_check_text]) is not None


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
            pattern = re.compile(check.regex)
        except re.error as exc:
            raise InvalidCheck(f"check {position}: invalid regex: {exc}") from None
        return CompiledCheck(position, description, path, "regex", None, pattern)
    raise InvalidCheck(f"check {position}: none of equals, one_of, range, regex is set")
