"""Locating errors in a ruamel.yaml round-trip tree: key paths and line numbers.

Pydantic reports an error location as a tuple that mixes real keys with union-member tags
(`("rules", 0, "length", "DistIn", "mean")`). We walk the YAML tree alongside it and keep only
the parts that exist in the file, so messages name keys the user actually wrote.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def plain(value: Any) -> Any:
    """The tree as builtin dicts, lists and scalars (ruamel's subclasses carry formatting)."""
    if isinstance(value, Mapping):
        return {plain(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    for kind in (int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return value


def _walk(tree: Any, loc: Sequence[str | int], missing: bool) -> tuple[list[str], int | None]:
    parts: list[str] = []
    line: int | None = None
    node = tree
    for i, step in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, Mapping):
            if step in node:
                parts.append(f".{step}" if parts else str(step))
                lc = getattr(node, "lc", None)
                if lc is not None:
                    line = lc.key(step)[0] + 1
                node = node[step]
            elif last and missing:
                parts.append(f".{step}" if parts else str(step))
            # else: a union-member tag from pydantic, not a key in the file
        elif isinstance(node, list) and isinstance(step, int) and 0 <= step < len(node):
            parts.append(f"[{step}]")
            lc = getattr(node, "lc", None)
            if lc is not None:
                line = lc.item(step)[0] + 1
            node = node[step]
        else:
            break
    return parts, line


def render_loc(tree: Any, loc: Sequence[str | int], *, missing: bool = False) -> str | None:
    """`rules[0].mix.valid` for loc ("rules", 0, "mix", "valid"); None for the top level."""
    parts, _ = _walk(tree, loc, missing)
    return "".join(parts) or None


def line_of(tree: Any, loc: Sequence[str | int]) -> int | None:
    """1-based line of the deepest key of `loc` present in the file, if the tree knows lines."""
    _, line = _walk(tree, loc, False)
    return line
