"""Dotted field paths, JSON equality, and values made safe to store."""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

FieldPath = tuple[str, ...]

_MISSING: Any = object()
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_INT64 = range(-(2**63), 2**63)
_PLAIN_SCALARS = (str, int, float)  # exact types: bool is its own type


def parse_path(dotted: str) -> FieldPath:
    """`items.0.price` -> ("items", "0", "price"). Keys containing dots cannot be addressed."""
    return tuple(dotted.split("."))


def lookup(document: Any, path: FieldPath) -> Any:
    """The value at `path`, or MISSING. A segment indexes a list only when it is all digits
    (no sign, so `-1` is a missing field, not the last item); on an object it is a key."""
    current = document
    for segment in path:
        if isinstance(current, dict):
            current = current.get(segment, _MISSING)
            if current is _MISSING:
                return _MISSING
        elif isinstance(current, list) and segment.isdecimal() and segment.isascii():
            index = int(segment)
            if index >= len(current):
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


MISSING = _MISSING


def is_number(value: Any) -> bool:
    # bool is an int subclass in Python, but true is not a number in JSON.
    return isinstance(value, int | float) and not isinstance(value, bool)


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON means it: 1 == 1.0, but true != 1 and false != 0, at any depth.

    Expected values come from YAML (lists may arrive as tuples), outputs from JSON.
    """
    kind = type(a)
    if kind is type(b) and kind in _PLAIN_SCALARS:
        return bool(a == b)  # the hot path: same-typed str / int / float
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a is b
    if is_number(a) or is_number(b):
        return is_number(a) and is_number(b) and a == b
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple | dict) or isinstance(b, list | tuple | dict):
        return False
    return bool(a == b)  # str or None


def canonical(value: Any) -> str:
    """Compact JSON with sorted keys: one spelling per object, comparable across results."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def safe_text(text: str) -> str:
    """Replace what cannot be stored as text (NUL for PostgreSQL, lone surrogates for any
    UTF-8 encoder) with U+FFFD. Output that decoded with errors="surrogateescape", or JSON
    with a lone "\\ud800" escape, carries such surrogates."""
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _LONE_SURROGATE.sub("\ufffd", text)
    return text


def clip(text: str, limit: int) -> str:
    """Cut to `limit` characters, ending with a hash of the whole so distinct long values
    stay distinct."""
    if len(text) <= limit:
        return text
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{text[: max(limit - 18, 0)]}…#{digest}"


def tracked_value(value: Any, limit: int) -> Any:
    """A JSON scalar as is (strings made safe and clipped); objects and lists as canonical
    JSON. Integers outside int64 become their decimal string: SQL integer columns cannot
    hold them, and such a value is better seen than silently rounded."""
    if value is None or isinstance(value, bool | float):
        return value
    if isinstance(value, int):
        return value if value in _INT64 else clip(str(value), limit)
    if isinstance(value, str):
        return clip(safe_text(value), limit)
    return clip(safe_text(canonical(value)), limit)
