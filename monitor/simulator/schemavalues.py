"""Pieces of JSON Schema synthesis that need no schema context: leaf values, the type a
schema describes, `allOf` merging, and dotted paths into instances."""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from typing import Any

from monitor.simulator.regexgen import example_for

_FORMATS = {
    "date": "2024-01-01",
    "date-time": "2024-01-01T00:00:00Z",
    "time": "00:00:00Z",
    "email": "user@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "hostname": "example.com",
}


def get_path(instance: Any, path: str) -> Any:
    for part in path.split("."):
        if isinstance(instance, list) and part.isdigit() and int(part) < len(instance):
            instance = instance[int(part)]
        elif isinstance(instance, dict):
            instance = instance.get(part)
        else:
            return None
    return instance


def set_path(instance: Any, path: str, value: Any) -> Any:
    """A copy of `instance` with the dotted `path` set (objects created on the way)."""
    root = copy.deepcopy(instance) if isinstance(instance, dict | list) else {}
    node: Any = root
    parts = path.split(".")
    for part in parts[:-1]:
        if isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
            continue
        if not isinstance(node.get(part), dict | list):
            node[part] = {}
        node = node[part]
    last = parts[-1]
    if isinstance(node, list) and last.isdigit() and int(last) < len(node):
        node[int(last)] = value
    elif isinstance(node, dict):
        node[last] = value
    return root


def type_of(s: Mapping[str, Any]) -> str | None:
    kind = s.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        return kinds[0] if kinds else "null"
    if isinstance(kind, str):
        return kind
    if "properties" in s or "required" in s:
        return "object"
    if "items" in s or "prefixItems" in s:
        return "array"
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"} & set(s):
        return "number"
    if {"minLength", "maxLength", "pattern", "format"} & set(s):
        return "string"
    return None


def string_example(s: Mapping[str, Any]) -> str:
    text = _FORMATS.get(str(s.get("format", "")), "example")
    if isinstance(s.get("pattern"), str):
        text = example_for(s["pattern"]) or text
    low, high = int(s.get("minLength", 0)), int(s.get("maxLength", len(text)))
    text = text[:high]
    return text + "x" * max(0, low - len(text))


def number_example(s: Mapping[str, Any], integer: bool) -> int | float:
    lo, hi = s.get("minimum"), s.get("maximum")
    xlo, xhi = s.get("exclusiveMinimum"), s.get("exclusiveMaximum")
    step = s.get("multipleOf")

    def fits(v: float) -> bool:
        return (
            (lo is None or v >= lo)
            and (hi is None or v <= hi)
            and (xlo is None or v > xlo)
            and (xhi is None or v < xhi)
            and (not step or math.isclose(v / step, round(v / step), abs_tol=1e-9))
            and (not integer or float(v).is_integer())
        )

    # Prefer 0, then the value nearest a lower bound, then anything between the bounds.
    bounds = [b for b in (lo, xlo, hi, xhi) if b is not None]
    candidates: list[float] = [0]
    for b in bounds:
        candidates += [b, math.floor(b) + 1, math.ceil(b) - 1, b + 0.5, b - 0.5]
        if step:
            candidates += [math.ceil(b / step) * step, math.floor(b / step) * step]
            candidates += [(math.floor(b / step) + 1) * step, (math.ceil(b / step) - 1) * step]
    if len(bounds) >= 2:
        candidates.append((min(bounds) + max(bounds)) / 2)
    if step:
        candidates += [step, -step]
    value = next((v for v in candidates if fits(v)), lo if lo is not None else 0)
    return int(value) if integer or float(value).is_integer() else value


def merge_all_of(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(a)
    for key, value in b.items():
        if key == "properties" and isinstance(out.get(key), Mapping):
            out[key] = {**out[key], **value}
        elif key == "required" and isinstance(out.get(key), list):
            out[key] = [*out[key], *[r for r in value if r not in out[key]]]
        else:
            out[key] = value
    return out
