"""Finding and rewriting lines of a probe file, guided by ruamel's positions (0-based here).

Used by `monitor.probes.editing`: ruamel tells where a node starts; these helpers find where
a sequence item's text begins and ends, and produce the replacement lines.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from io import StringIO
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import LiteralScalarString

_BOOL = re.compile(r"[A-Za-z]+")
# A scalar in a flow mapping: double-quoted, single-quoted or plain.
_FLOW_SCALAR = re.compile(r"\"(?:[^\"\\]|\\.)*\"|'(?:[^']|'')*'|[^\s,{}\[\]#]+")
_EMPTY_FLOW_SEQ = re.compile(r"\[\s*\]")


def is_blank(line: str) -> bool:
    return not line.strip()


def indent_of(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def is_comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def is_flow(node: Any) -> bool:
    fa = getattr(node, "fa", None)
    return bool(fa is not None and fa.flow_style())


def dash_line(lines: list[str], item_line: int, item_col: int) -> int:
    """The line holding the '- ' of a block sequence item whose content starts at (line, col)."""
    if lines[item_line][:item_col].strip().endswith("-"):
        return item_line
    for index in range(item_line - 1, -1, -1):  # "-" alone on its line, content below
        if lines[index].strip() == "-":
            return index
    return item_line


def dash_col(lines: list[str], seq: Any, index: int) -> int:
    line, col = seq.lc.item(index)
    start = dash_line(lines, line, col)
    return lines[start].index("-") if start != line else lines[line][:col].rindex("-")


def item_start(lines: list[str], seq: Any, index: int) -> int:
    """First line of item `index`, with the comment lines right above it at the dash's column."""
    line, col = seq.lc.item(index)
    start = dash_line(lines, line, col)
    column = dash_col(lines, seq, index)
    while start > 0 and is_comment(lines[start - 1]) and indent_of(lines[start - 1]) == column:
        start -= 1
    return start


def item_end(lines: list[str], root: Any, seq: Any, index: int) -> int:
    """One past the last line of item `index`.

    Blank lines and comments at the item's own column or left of it that follow the item
    belong to what comes next, so they are not part of it.
    """
    if index + 1 < len(seq):
        end = item_start(lines, seq, index + 1)
    else:
        end = len(lines)
        keys = list(root)
        position = keys.index("probes")
        if position + 1 < len(keys):
            end = root.lc.key(keys[position + 1])[0]
    column = dash_col(lines, seq, index)
    first = dash_line(lines, *seq.lc.item(index))
    while end - 1 > first and (
        is_blank(lines[end - 1])
        or (is_comment(lines[end - 1]) and indent_of(lines[end - 1]) <= column)
    ):
        end -= 1
    return end


def replace_bool(line: str, col: int, value: bool) -> str | None:
    """`line` with the boolean at `col` replaced, keeping its capitals; None if there is none."""
    match = _BOOL.match(line, col)
    if match is None or match.group().lower() not in ("true", "false"):
        return None
    old = match.group()
    new = "true" if value else "false"
    if old.isupper():
        new = new.upper()
    elif old[0].isupper():
        new = new.capitalize()
    return line[: match.start()] + new + line[match.end() :]


def flow_scalar_end(line: str, col: int) -> int | None:
    match = _FLOW_SCALAR.match(line, col)
    return match.end() if match else None


def drop_empty_flow_seq(line: str, col: int, eol: str) -> str | None:
    """'probes: []  # c' -> 'probes:  # c', so block items can follow; None if no [] at col."""
    match = _EMPTY_FLOW_SEQ.match(line, col)
    if match is None:
        return None
    head, tail = line[:col].rstrip(), line[match.end() :]
    return f"{head}  {tail.lstrip(' ')}" if tail.strip() else head + eol


def add_empty_flow_seq(line: str, key_col: int) -> str:
    """'probes:  # c' -> 'probes: []  # c' (the last probe was removed)."""
    colon = line.index(":", key_col)
    return line[: colon + 1] + " []" + line[colon + 1 :]


def item_lines(probe: Mapping[str, Any], column: int, eol: str) -> list[str]:
    """A probe mapping as the lines of a block sequence item whose '-' is at `column`."""
    yaml = YAML(typ="rt")
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # never fold long prompts
    yaml.default_flow_style = None  # leaf collections inline: track: [a, b], {field: x, ...}
    buffer = StringIO()
    item = CommentedMap(_literal_strings(dict(probe)))
    item.fa.set_block_style()  # the probe itself always in block style, even if all scalars
    yaml.dump({"probes": [item]}, buffer)
    dumped = buffer.getvalue().splitlines()[1:]  # without "probes:"; items are at column 2
    shift = column - 2
    return [(" " * shift + text if shift >= 0 else text[-shift:]) + eol for text in dumped]


def _literal_strings(value: Any) -> Any:
    # Multi-line prompts read best as literal blocks (|), as people write them.
    if isinstance(value, str) and "\n" in value:
        return LiteralScalarString(value)
    if isinstance(value, Mapping):
        return {str(k): _literal_strings(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_literal_strings(v) for v in value]
    return value
