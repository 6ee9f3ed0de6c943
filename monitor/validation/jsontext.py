"""Finding and decoding the JSON in a model's output, safely.

Strict JSON (RFC 8259) with three deliberate rules:
- NaN / Infinity literals are rejected, and so are numbers that overflow a double
  (`1e999999` would become inf): neither is JSON that can be stored, compared or re-emitted.
- Integers beyond Python's 4,300-digit conversion limit are rejected the same way.
- Duplicate keys: the last one wins, as in `json` and most other parsers.
Raw control characters inside strings stay invalid (`strict=True`): a model that starts
emitting them has changed, and we want to see it.

Nesting is bounded before anything recursive runs: the C decoder and jsonschema both recurse
per level, and a 10,000-deep array would otherwise hit RecursionError (or worse, in a
validator that is already deep in the stack).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import accumulate
from typing import Any, NoReturn

from monitor.validation.result import FormatKind

NOT_JSON = "not JSON"
NUMBER_OUT_OF_RANGE = "number out of range"

# How much searching prose and fences may do before giving up; keeps hostile output cheap.
_MAX_FENCES = 8
_MAX_PROSE_ATTEMPTS = 16
_MAX_PROSE_STRUCTURES = 64  # bracketed structures scanned, parseable or not ("{]{]{]...")

# A JSON string, possessive so it never backtracks; an unterminated string runs to the end
# (optionally through a final lone backslash), so every quote starts a match and scanning
# stays linear even for text like '"\\"\\"\\"...'.
_STRING = r'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)'
_STRING_RE = re.compile(_STRING, re.DOTALL)
_TOKEN_RE = re.compile(_STRING + r"|[\[\]{}]", re.DOTALL)
_NOT_BRACKETS_RE = re.compile(r"[^\[\]{}]+")
_OPEN_RE = re.compile(r"[\[{]")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_JSON_START = frozenset('{["-0123456789tfn')
_INFO_STRING_RE = re.compile(r"[A-Za-z0-9_+.-]*")


class _Rejected(Exception):
    """The candidate cannot be decoded; `reason` says why, `final` stops further searching."""

    def __init__(self, reason: str, *, final: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.final = final


def _finite_float(literal: str) -> float:
    value = float(literal)
    if math.isinf(value):
        raise _Rejected(NUMBER_OUT_OF_RANGE)
    return value


def _reject_constant(literal: str) -> NoReturn:
    raise _Rejected(NOT_JSON)  # NaN, Infinity, -Infinity: not JSON


_DECODER = json.JSONDecoder(parse_float=_finite_float, parse_constant=_reject_constant)


def too_deep_message(max_depth: int) -> str:
    return f"too deeply nested (depth > {max_depth})"


def nesting_exceeds(text: str, max_depth: int) -> bool:
    """Whether brackets outside JSON strings nest deeper than max_depth.

    Counting brackets is C-speed and settles almost every real output; only texts with more
    brackets than the limit pay for the scan, which is also C-level (regex substitution and
    itertools) rather than a Python loop per character.
    """
    if text.count("[") + text.count("{") <= max_depth:
        return False
    brackets = _NOT_BRACKETS_RE.sub("", _STRING_RE.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0) > max_depth


def decode(candidate: str, max_depth: int) -> Any:
    """Strictly decode one candidate document, or raise _Rejected."""
    if nesting_exceeds(candidate, max_depth):
        raise _Rejected(too_deep_message(max_depth), final=True)
    try:
        return _DECODER.decode(candidate)
    except _Rejected:
        raise
    except json.JSONDecodeError:
        raise _Rejected(NOT_JSON) from None
    except ValueError:
        # int() past Python's 4,300-digit limit raises a plain ValueError inside the decoder.
        raise _Rejected(NUMBER_OUT_OF_RANGE) from None
    except RecursionError:
        # Unreachable after the depth scan; kept so a scanner bug can never crash a run.
        raise _Rejected(too_deep_message(max_depth), final=True) from None


def decode_or_none(text: str, max_depth: int) -> tuple[bool, Any]:
    """(True, value) when `text` is one JSON document, else (False, None). Never raises."""
    try:
        return True, decode(text.strip(), max_depth)
    except _Rejected:
        return False, None


@dataclass(frozen=True, slots=True)
class Extraction:
    kind: FormatKind
    parsed: bool
    value: Any = None
    problem: str | None = None  # why nothing parsed: NOT_JSON, too deep, number out of range


def extract_json(stripped: str, max_depth: int) -> Extraction:
    """Find the JSON in a non-empty, stripped output: CLEAN, then FENCED, then PROSE."""
    if not stripped:
        return Extraction(FormatKind.EMPTY, False, problem="empty output")
    problem = NOT_JSON
    # A JSON document starts with one of these; skipping the doomed decode of fenced or prose
    # output saves building a JSONDecodeError, a third of the cost of judging such output.
    if stripped[0] in _JSON_START:
        try:
            return Extraction(FormatKind.CLEAN, True, decode(stripped, max_depth))
        except _Rejected as rejected:
            if rejected.final:
                return Extraction(FormatKind.NOT_JSON, False, problem=rejected.reason)
            problem = _more_telling(problem, rejected.reason)
    for candidate in _fenced_blocks(stripped):
        try:
            return Extraction(FormatKind.FENCED, True, decode(candidate, max_depth))
        except _Rejected as rejected:
            if rejected.final:
                return Extraction(FormatKind.NOT_JSON, False, problem=rejected.reason)
            problem = _more_telling(problem, rejected.reason)
    try:
        for start, end in _prose_candidates(stripped, max_depth):
            try:
                return Extraction(FormatKind.PROSE, True, decode(stripped[start:end], max_depth))
            except _Rejected as rejected:
                if rejected.final:
                    raise
                problem = _more_telling(problem, rejected.reason)
    except _Rejected as rejected:
        return Extraction(FormatKind.NOT_JSON, False, problem=rejected.reason)
    return Extraction(FormatKind.NOT_JSON, False, problem=problem)


def parse_document(text: str, max_depth: int) -> Extraction:
    """`text` as exactly one JSON document (whitespace aside): CLEAN, or NOT_JSON with the
    problem. For text that is meant to be JSON as a whole, such as a tool call's arguments,
    where JSON found inside prose or fences would not be what was sent."""
    stripped = text.strip()
    if not stripped:
        return Extraction(FormatKind.EMPTY, False, problem="empty")
    try:
        return Extraction(FormatKind.CLEAN, True, decode(stripped, max_depth))
    except _Rejected as rejected:
        return Extraction(FormatKind.NOT_JSON, False, problem=rejected.reason)


def _more_telling(current: str, new: str) -> str:
    # "number out of range" explains a fail better than the generic "not JSON".
    return new if current == NOT_JSON else current


def _fenced_blocks(text: str) -> list[str]:
    """Contents of ``` fenced blocks marked json (any case) or unmarked, in order.

    Splitting on the fence marker is linear and cannot backtrack; odd parts are the insides
    of fences (a trailing unclosed fence is ignored). A block whose first line is not a
    plausible info string (```{"a": 1}``` on one line) is taken whole.
    """
    if "```" not in text:
        return []
    parts = text.split("```", 2 * _MAX_FENCES + 1)
    blocks: list[str] = []
    for inside in parts[1 : len(parts) - 1 : 2]:
        first_line, newline, rest = inside.partition("\n")
        info = first_line.strip()
        if newline and _INFO_STRING_RE.fullmatch(info):
            if info.lower() == "json" or not info:
                blocks.append(rest)
        elif info:
            blocks.append(inside)
    return blocks


def _prose_candidates(text: str, max_depth: int) -> Iterator[tuple[int, int]]:
    """Balanced {...} / [...] regions, outermost and leftmost first, lazily per structure.

    Outside brackets we are in prose, where quotes are just punctuation; inside, JSON strings
    are skipped so brackets within them do not count. The scan advances monotonically, so it
    is linear in the text however the brackets are (mis)matched. Raises _Rejected (final)
    when a structure nests deeper than max_depth.
    """
    attempts_left = _MAX_PROSE_ATTEMPTS
    structures_left = _MAX_PROSE_STRUCTURES
    pos = 0
    while attempts_left > 0 and structures_left > 0:
        structures_left -= 1
        opener = _OPEN_RE.search(text, pos)
        if opener is None:
            break
        regions: list[tuple[int, int]] = []
        starts = [opener.start()]
        kinds = [opener.group()]
        pos = len(text)  # an unclosed structure swallows the rest of the text
        for token in _TOKEN_RE.finditer(text, opener.end()):
            char = text[token.start()]
            if char == '"':
                continue
            if char in "[{":
                starts.append(token.start())
                kinds.append(char)
                if len(starts) > max_depth:
                    raise _Rejected(too_deep_message(max_depth), final=True)
                continue
            if (kinds.pop() == "{") != (char == "}"):
                pos = token.end()  # mismatched: give up on this structure, back to prose
                break
            regions.append((starts.pop(), token.end()))
            if not starts:
                pos = token.end()
                break
        regions.sort()  # inner regions close first; outer (earlier start) must be tried first
        taken = regions[:attempts_left]
        attempts_left -= len(taken)
        yield from taken
