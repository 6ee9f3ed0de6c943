"""A short string matching a regular expression, for JSON Schema `pattern` keywords.

Walks the parse tree of Python's own regex parser (`re._parser`; there is no public API for
it) taking the first branch and the minimum repeat count everywhere. The result is checked
with `re.search`, so anything unusual (lookarounds, backreferences to optional groups) yields
None rather than a wrong answer.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

# Imported by name because typeshed ships no stubs for re._parser.
_parser: Any = importlib.import_module("re._parser")

_CATEGORY_CHAR = {
    "CATEGORY_DIGIT": "0",
    "CATEGORY_NOT_DIGIT": "a",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_SPACE": "a",
    "CATEGORY_WORD": "a",
    "CATEGORY_NOT_WORD": " ",
}
_CATEGORY_RE = {
    "CATEGORY_DIGIT": r"\d",
    "CATEGORY_NOT_DIGIT": r"\D",
    "CATEGORY_SPACE": r"\s",
    "CATEGORY_NOT_SPACE": r"\S",
    "CATEGORY_WORD": r"\w",
    "CATEGORY_NOT_WORD": r"\W",
}
_CANDIDATES = "a0A _-.x1Z"


def example_for(pattern: str) -> str | None:
    """A short string that `re.search(pattern, ...)` accepts, or None if we cannot make one."""
    try:
        tree = _parser.parse(pattern)
        groups: dict[int, str] = {}
        text = _emit(tree, groups)
    except (re.error, _Unsupported, RecursionError):
        return None
    return text if re.search(pattern, text) else None


class _Unsupported(Exception):
    pass


def _emit(subpattern: Any, groups: dict[int, str]) -> str:
    return "".join(_emit_one(op.name, av, groups) for op, av in subpattern)


def _emit_one(op: str, av: Any, groups: dict[int, str]) -> str:
    if op == "LITERAL":
        return chr(av)
    if op == "NOT_LITERAL":
        return next(c for c in _CANDIDATES if ord(c) != av)
    if op == "ANY":
        return "a"
    if op == "IN":
        return _one_of(av)
    if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        low, _high, sub = av
        return _emit(sub, groups) * int(low)
    if op == "SUBPATTERN":
        group, _add, _del, sub = av
        text = _emit(sub, groups)
        if group is not None:
            groups[group] = text
        return text
    if op == "ATOMIC_GROUP":
        return _emit(av, groups)
    if op == "BRANCH":
        _none, branches = av
        return _emit(branches[0], groups)
    if op == "GROUPREF":
        return groups.get(av, "")
    if op in ("AT", "ASSERT", "ASSERT_NOT"):
        return ""  # anchors match by position; lookarounds are left to the final check
    raise _Unsupported(op)


def _one_of(items: Any) -> str:
    negate = bool(items) and items[0][0].name == "NEGATE"
    body = items[1:] if negate else items
    if not negate:
        op, av = body[0][0].name, body[0][1]
        if op == "LITERAL":
            return chr(av)
        if op == "RANGE":
            return chr(av[0])
        if op == "CATEGORY":
            return str(_CATEGORY_CHAR.get(av.name, "a"))
        raise _Unsupported(op)
    for c in _CANDIDATES:
        if not _in_set(c, body):
            return c
    raise _Unsupported("negated set")


def _in_set(c: str, items: Any) -> bool:
    for op, av in items:
        name = op.name
        if name == "LITERAL" and ord(c) == av:
            return True
        if name == "RANGE" and av[0] <= ord(c) <= av[1]:
            return True
        if name == "CATEGORY" and re.fullmatch(_CATEGORY_RE.get(av.name, "(?!)"), c):
            return True
    return False
