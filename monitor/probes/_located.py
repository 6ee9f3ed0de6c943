"""YAML with line numbers: parsing, locating keys, and converting nodes to plain JSON data.

Every problem in a probe file must name the file, the key path and the line, so the loader
walks ruamel's round-trip nodes (which remember where they came from) through a `Loc`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from monitor.errors import ProbeFileError


def yaml_rt() -> YAML:
    """A round-trip parser: keeps line numbers, comments and quoting."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    return yaml


def parse_yaml(text: str, *, file: str) -> Any:
    try:
        return yaml_rt().load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(p for p in (exc.context, exc.problem) if p) or str(exc)
        line = mark.line + 1 if mark is not None else None
        raise ProbeFileError(f"invalid YAML: {problem}", file=file, line=line) from None
    except YAMLError as exc:
        raise ProbeFileError(f"invalid YAML: {exc}", file=file) from None


def key_line(container: Any, key: Any) -> int | None:
    """The 1-based line of `key` (a mapping key or a sequence index) in a ruamel node."""
    lc = getattr(container, "lc", None)
    if lc is None:
        return None
    try:
        pos = lc.item(key) if isinstance(key, int) and isinstance(container, list) else lc.key(key)
        return int(pos[0]) + 1
    except (KeyError, IndexError, TypeError, AttributeError):
        # Keys pulled in through a YAML merge (<<) have no position of their own.
        return node_line(container)


def node_line(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    line = getattr(lc, "line", None)
    return line + 1 if isinstance(line, int) else None


def join_key(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


Locator = Callable[[tuple[Any, ...]], "int | None"]


@dataclass(frozen=True)
class Loc:
    """Where a value sits: file, key path and line. `error()` builds the exception.

    `locate`, if set, finds the line from the keys only when an error needs it: JSON schema
    files are parsed with the fast json module, and with ruamel only to report an error.
    """

    file: str
    path: str = ""
    line: int | None = None
    keys: tuple[Any, ...] = ()
    locate: Locator | None = field(default=None, compare=False)

    def child(self, container: Any, key: Any) -> Loc:
        line = key_line(container, key)
        return Loc(
            self.file,
            join_key(self.path, key),
            line if line is not None else self.line,
            (*self.keys, key),
            self.locate,
        )

    def error(self, problem: str) -> ProbeFileError:
        line = self.line
        if line is None and self.locate is not None:
            line = self.locate(self.keys)
        return ProbeFileError(problem, file=self.file, key=self.path or None, line=line)


def check_keys(node: Mapping[Any, Any], allowed: Iterable[str], loc: Loc, what: str) -> None:
    """Refuse unknown keys, suggesting the closest known one (a typo must not be ignored)."""
    known = list(allowed)
    for key in node:
        if key in known:
            continue
        hint = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
        suggestion = (
            f"; did you mean {hint[0]!r}?" if hint else f" (known keys: {', '.join(known)})"
        )
        raise loc.child(node, key).error(f"unknown key {key!r} in {what}{suggestion}")


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool | ScalarBoolean):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def to_plain(node: Any, loc: Loc) -> Any:
    """ruamel nodes -> plain JSON data (dict, list, str, int, float, bool, None).

    Anything JSON cannot carry (dates, NaN, tagged or binary values, non-string keys) is an
    error, because schemas, expected values and params must mean the same thing everywhere.
    """
    if node is None or isinstance(node, bool):
        return node
    if isinstance(node, ScalarBoolean):  # a boolean with an anchor; an int subclass
        return bool(node)
    if isinstance(node, Mapping):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if not isinstance(key, str):
                raise loc.child(node, key).error(
                    f"keys must be strings, found {type_name(key)} {key!r}; quote it"
                )
            out[str(key)] = to_plain(value, loc.child(node, key))
        return out
    if isinstance(node, list):
        return [to_plain(item, loc.child(node, i)) for i, item in enumerate(node)]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        if not math.isfinite(node):
            raise loc.error(f"{node!r} is not a JSON number")
        return float(node)
    raise loc.error(
        f"YAML reads this value as {type(node).__name__}, which JSON cannot carry; quote it"
    )
