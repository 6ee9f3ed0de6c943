"""Parsers for the values of probe keys: each takes a ruamel node and its `Loc`, returns typed data.

Each parser raises `ProbeFileError` through `loc.error`, so every message names file, key path
and line. The rules here are the reference in docs/probes.md; keep the two in step.
"""

from __future__ import annotations

import re
from typing import Any, cast

import regex as regex_engine  # `regex` is also the name of this module's parser below

from monitor.probes._located import Loc, check_keys, to_plain, type_name
from monitor.probes.model import Check, Message, ResponseFormat
from monitor.providers.params import unknown_param_problem
from monitor.validation.checks import compile_regex

NAME_RE = re.compile(r"^[a-z0-9._-]+$")
MAX_NAME = 200  # the store keeps set names and probe ids in 200-character columns
ROLES = ("system", "user", "assistant")
RESPONSE_FORMATS: tuple[ResponseFormat, ...] = ("json_schema", "json", "text", "tool_call")
# tool_choice values that are not a tool's name; no tool may be called like them.
TOOL_CHOICES = ("auto", "required", "none")
STRICT_AUTO = "auto"
CHECK_KEYS = ("field", "equals", "one_of", "range", "regex")
CHECK_OPS = ("equals", "one_of", "range", "regex")


def name(value: Any, loc: Loc, what: str) -> str:
    if not isinstance(value, str) or not NAME_RE.match(value):
        raise loc.error(
            f"{what} must be lowercase letters, digits, '.', '_' or '-' ([a-z0-9._-]+),"
            f" found {value!r}"
        )
    if len(value) > MAX_NAME:
        raise loc.error(f"{what} is longer than {MAX_NAME} characters")
    return value


def text(value: Any, loc: Loc, what: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise loc.error(f"{what} must be a string, found {type_name(value)}")
    if not allow_empty and not value.strip():
        raise loc.error(f"{what} must not be empty")
    return str(value)


def boolean(value: Any, loc: Loc, what: str) -> bool:
    if not isinstance(value, bool):
        raise loc.error(f"{what} must be true or false, found {value!r}")
    return value


def samples(value: Any, loc: Loc) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise loc.error(f"samples must be a whole number >= 1, found {value!r}")
    return int(value)


def params(value: Any, loc: Loc) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise loc.error(f"params must be a mapping, found {type_name(value)}")
    # A probe is sent to targets of every kind, so a name any kind knows is accepted here;
    # the adapters translate or drop it per kind.
    for key in value:
        problem = unknown_param_problem(str(key), None)
        if problem is not None:
            raise loc.child(value, key).error(problem)
    return cast(dict[str, Any], to_plain(value, loc))


def strict(value: Any, loc: Loc) -> bool | None:
    """`strict`: true, false, or auto (None: decided by the schema, see monitor.probes.strict)."""
    if value == STRICT_AUTO:
        return None
    if not isinstance(value, bool):
        raise loc.error(f"strict must be true, false or auto, found {value!r}")
    return value


def tool_choice(value: Any, loc: Loc, tool_names: tuple[str, ...]) -> str:
    if value in TOOL_CHOICES or (isinstance(value, str) and value in tool_names):
        return str(value)
    raise loc.error(
        f"tool_choice must be {', '.join(TOOL_CHOICES)} or the name of one of the probe's tools"
        f" ({', '.join(tool_names)}), found {value!r}"
    )


def expect_tool(value: Any, loc: Loc, tool_names: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in tool_names:
        raise loc.error(
            f"expect_tool must be the name of one of the probe's tools ({', '.join(tool_names)}),"
            f" found {value!r}"
        )
    return value


def response_format(value: Any, loc: Loc) -> ResponseFormat:
    if value not in RESPONSE_FORMATS:
        raise loc.error(
            f"response_format must be one of {', '.join(RESPONSE_FORMATS)}, found {value!r}"
        )
    return cast(ResponseFormat, str(value))


def regex(value: Any, loc: Loc, what: str) -> str:
    # Judging runs patterns on the `regex` package (for its timeout), so a pattern must
    # compile there to be caught here, at load time, rather than when a run judges it. It
    # must also compile with `re`: the documented syntax stays Python's, and regex-only
    # extensions (`\p{L}`, ...) are refused rather than tying probe files to one engine.
    pattern = text(value, loc, what)
    try:
        re.compile(pattern)
        compile_regex(pattern)
    except (re.error, regex_engine.error) as exc:
        raise loc.error(f"{what} is not a valid regular expression: {exc}") from None
    return pattern


def extract(value: Any, loc: Loc) -> str:
    pattern = regex(value, loc, "extract")
    if compile_regex(pattern).groups < 1:
        raise loc.error(
            "extract needs a capturing group: its first group is the answer, e.g. \\[(Yes|No)\\]"
        )
    return pattern


def field_path(value: Any, loc: Loc, what: str) -> str:
    path = text(value, loc, what)
    if any(not part.strip() for part in path.split(".")):
        raise loc.error(
            f"{what} {path!r} is not a dotted field path like 'invoice.total' or 'items.0.sku'"
        )
    return path


def messages(value: Any, loc: Loc) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise loc.error(
            f"messages must be a non-empty list of {{role, content}}, found {type_name(value)}"
        )
    out = []
    for i, item in enumerate(value):
        item_loc = loc.child(value, i)
        if not isinstance(item, dict):
            raise item_loc.error(
                f"a message must be a mapping {{role, content}}, found {type_name(item)}"
            )
        check_keys(item, ("role", "content"), item_loc, "a message")
        for key in ("role", "content"):
            if key not in item:
                raise item_loc.error(f"a message needs {key!r}")
        role = item["role"]
        if role not in ROLES:
            raise item_loc.child(item, "role").error(
                f"role must be one of {', '.join(ROLES)}, found {role!r}"
            )
        content = text(item["content"], item_loc.child(item, "content"), "content")
        out.append(Message(role=str(role), content=content))
    return tuple(out)


def track(value: Any, loc: Loc) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise loc.error(f"track must be a list of field paths, found {type_name(value)}")
    fields: list[str] = []
    for i, item in enumerate(value):
        path = field_path(item, loc.child(value, i), "a tracked field")
        if path in fields:
            raise loc.child(value, i).error(f"{path!r} is tracked twice")
        fields.append(path)
    return tuple(fields)


def checks(value: Any, loc: Loc, *, text_probe: bool) -> tuple[Check, ...]:
    if not isinstance(value, list):
        raise loc.error(f"expect must be a list of checks, found {type_name(value)}")
    return tuple(_check(item, i, loc.child(value, i), text_probe) for i, item in enumerate(value))


def _check(node: Any, index: int, loc: Loc, text_probe: bool) -> Check:
    if not isinstance(node, dict):
        raise loc.error(
            f"a check must be a mapping like {{field: total, equals: 1}}, found {type_name(node)}"
        )
    check_keys(node, CHECK_KEYS, loc, "a check")
    ops = [op for op in CHECK_OPS if op in node]
    if len(ops) != 1:
        found = ", ".join(ops) if ops else "none"
        raise loc.error(
            f"a check needs exactly one of equals, one_of, range, regex (found: {found})"
        )
    op = ops[0]
    op_loc = loc.child(node, op)
    field = None
    if "field" in node:
        field = field_path(node["field"], loc.child(node, "field"), "field")
        if text_probe:
            raise loc.child(node, "field").error(
                "a text probe has no JSON fields: checks without field judge the extracted answer"
            )
    value = node[op]
    if op == "equals":
        return Check(index=index, field=field, equals=to_plain(value, op_loc), has_equals=True)
    if op == "one_of":
        if not isinstance(value, list) or not value:
            raise op_loc.error(f"one_of must be a non-empty list, found {type_name(value)}")
        return Check(index=index, field=field, one_of=tuple(to_plain(value, op_loc)))
    if op == "range":
        return Check(index=index, field=field, range=_range(value, op_loc))
    return Check(index=index, field=field, regex=regex(value, op_loc, "regex"))


def _range(value: Any, loc: Loc) -> tuple[float, float]:
    numbers = (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
    )
    if not numbers:
        raise loc.error(f"range must be [low, high] with two numbers, found {value!r}")
    low, high = (float(to_plain(v, loc)) for v in value)
    if low > high:
        raise loc.error(f"range [{value[0]}, {value[1]}] is empty: low must be <= high")
    return low, high
