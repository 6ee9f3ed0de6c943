"""Where a key of the config file is: its dotted path as errors show it, and its line.

TOML parsers give values, not positions; an error that names file, key and line needs both, so
they are found here from the file's text (table headers, then key lines within the table).
"""

from __future__ import annotations

import re

from monitor.config_checks import toml_string


def key_path(loc: tuple[int | str, ...]) -> str:
    """A key's location as shown in errors: `targets[0].api_key`, quoted where TOML needs it."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        name = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else toml_string(part)
        out += f".{name}" if out else name
    return out


_KEY_PART = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_TABLE_HEADER = re.compile(rf"^\s*(\[\[?)\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*\]")
_KEY_LINE = re.compile(rf"^\s*({_KEY_PART}(?:\s*\.\s*{_KEY_PART})*)\s*=")


def _key_parts(dotted: str) -> list[str]:
    parts = re.findall(_KEY_PART, dotted)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def _tables(lines: list[str]) -> list[tuple[tuple[int | str, ...], int]]:
    """Each table header's full key path (arrays of tables with their index) and line index;
    the root table first, at line index -1."""
    tables: list[tuple[tuple[int | str, ...], int]] = [((), -1)]
    array_counts: dict[tuple[int | str, ...], int] = {}
    for index, line in enumerate(lines):
        match = _TABLE_HEADER.match(line)
        if match is None:
            continue
        names = _key_parts(match.group(2))
        path: list[int | str] = []
        for position, name in enumerate(names):
            path.append(name)
            key = tuple(path)
            if position == len(names) - 1 and match.group(1) == "[[":
                array_counts[key] = array_counts.get(key, -1) + 1
                path.append(array_counts[key])
            elif key in array_counts:
                path.append(array_counts[key])  # [a.b] under [[a]]: its newest element
        tables.append((tuple(path), index))
    return tables


def line_of(text: str, loc: tuple[int | str, ...]) -> int | None:
    """Best-effort line of a key: the table holding it (the longest table header that starts
    its path), then the line in that table whose key (dotted, quoted or bare) matches most of
    the rest of the path; an inline table's line when the key is inside one. A key that is
    missing points at its table's header."""
    lines = text.splitlines()
    tables = _tables(lines)
    best = max(
        (t for t in tables if loc[: len(t[0])] == t[0]), key=lambda t: len(t[0]), default=None
    )
    if best is None:
        return None
    path, header = best
    rest: list[str] = []
    for part in loc[len(path) :]:
        if isinstance(part, int):
            break
        rest.append(part)
    following = [i for _, i in tables if i > header]
    end = min(following, default=len(lines))
    found, found_len = None, 0
    for index in range(header + 1, end):
        match = _KEY_LINE.match(lines[index])
        if match is None:
            continue
        parts = _key_parts(match.group(1))
        if len(parts) > found_len and rest[: len(parts)] == parts:
            found, found_len = index, len(parts)
            if found_len == len(rest):
                break
    if found is not None:
        return found + 1
    return header + 1 if header >= 0 else None
