"""One probe: merge the set's `defaults` into a probe mapping and build the resolved `Probe`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.probes import fields
from monitor.probes._located import Loc, check_keys, type_name
from monitor.probes._refs import SchemaFiles
from monitor.probes.model import Message, Probe, ResponseFormat, Tool
from monitor.probes.schemas import LoadedSchema, load_inline_schema, load_schema_file
from monitor.probes.strict import resolve_strict
from monitor.probes.tools import tools as parse_tools
from monitor.probes.versions import probe_version

PROBE_KEYS = (
    "id",
    "description",
    "prompt",
    "messages",
    "schema",
    "schema_file",
    "response_format",
    "expect",
    "track",
    "extract",
    "samples",
    "params",
    "enabled",
    "tools",
    "tool_choice",
    "expect_tool",
    "strict",
)
DEFAULT_KEYS = tuple(k for k in PROBE_KEYS if k not in ("id", "description"))
# Keys of which a probe names at most one. A probe giving either replaces both defaults.
EXCLUSIVE = (("prompt", "messages"), ("schema", "schema_file"))


@dataclass(frozen=True)
class SetContext:
    name: str
    file: Path  # as given, for messages
    root: Path  # the probes root: schema files must stay inside it
    defaults: dict[Any, Any] | None  # the ruamel mapping, keys already checked
    defaults_loc: Loc
    files: SchemaFiles = field(default_factory=SchemaFiles)  # shared by one load


def check_defaults(node: Any, loc: Loc) -> dict[Any, Any] | None:
    if node is None:
        return None
    if not isinstance(node, dict):
        raise loc.error(f"defaults must be a mapping of probe keys, found {type_name(node)}")
    for key in ("id", "description"):
        if key in node:
            raise loc.child(node, key).error(
                f"{key} cannot have a default: it belongs to one probe"
            )
    check_keys(node, DEFAULT_KEYS, loc, "defaults")
    _check_exclusive(node, loc)
    return node


def _check_exclusive(node: dict[Any, Any], loc: Loc) -> None:
    for a, b in EXCLUSIVE:
        if a in node and b in node:
            raise loc.child(node, b).error(f"give either {a} or {b}, not both")


def build_probe(node: Any, loc: Loc, ctx: SetContext) -> Probe:
    if not isinstance(node, dict):
        raise loc.error(f"a probe must be a mapping with id and prompt, found {type_name(node)}")
    check_keys(node, PROBE_KEYS, loc, "a probe")
    if "id" not in node:
        raise loc.error("a probe needs an id")
    probe_id = fields.name(node["id"], loc.child(node, "id"), "id")
    _check_exclusive(node, loc)

    # key -> (value node, where it is written): a default reports its own line in `defaults`.
    merged: dict[str, tuple[Any, Loc]] = {}
    defaults = ctx.defaults or {}
    for key in defaults:
        merged[str(key)] = (defaults[key], ctx.defaults_loc.child(defaults, key))
    for group in EXCLUSIVE:
        if any(key in node for key in group):
            for key in group:
                merged.pop(key, None)
    for key in node:
        merged[str(key)] = (node[key], loc.child(node, key))
    # An explicit null clears a default (e.g. `schema: ~` in a text probe of a json set).
    given = {key: pair for key, pair in merged.items() if pair[0] is not None}

    def get(key: str) -> tuple[Any, Loc] | None:
        return given.get(key)

    messages = _messages(get("prompt"), get("messages"), loc)
    schema = _schema(get("schema"), get("schema_file"), ctx, probe_id)
    tools: tuple[Tool, ...] = ()
    if "tools" in given:
        tools = parse_tools(
            *given["tools"], probe_file=ctx.file, root=ctx.root, probe_id=probe_id, files=ctx.files
        )
    response_format = _response_format(get("response_format"), schema, tools)
    text_probe = response_format == "text"
    if text_probe and schema is not None:
        where = (get("schema") or get("schema_file") or (None, loc))[1]
        raise where.error(
            "a text probe has no schema: drop it or use response_format json / json_schema"
            + _clear_hint(where, "schema")
        )
    if response_format == "tool_call":
        if schema is not None:
            where = (get("schema") or get("schema_file") or (None, loc))[1]
            raise where.error(
                "a tool_call probe has no schema: each tool's parameters are the schema of its"
                f" arguments{_clear_hint(where, 'schema')}"
            )
        if not tools:
            where = (get("response_format") or (None, loc))[1]
            raise where.error("a tool_call probe needs tools")
    elif schema is None and not text_probe:
        where = (get("response_format") or (None, loc))[1]
        raise where.error(f"a {response_format} probe needs a schema or schema_file")
    tool_choice, expect_tool = _tool_choice(get("tool_choice"), get("expect_tool"), tools)
    strict = _strict(get("strict"), response_format)

    expect = fields.checks(*given["expect"], text_probe=text_probe) if "expect" in given else ()
    track: tuple[str, ...] = ()
    if "track" in given:
        if text_probe:
            raise given["track"][1].error("a text probe has no JSON fields to track")
        track = fields.track(*given["track"])
    extract = None
    if "extract" in given:
        if not text_probe:
            raise given["extract"][1].error(
                f"extract is for text probes; {response_format} probes are parsed as JSON"
            )
        extract = fields.extract(*given["extract"])
    samples = fields.samples(*given["samples"]) if "samples" in given else None
    params = _params(defaults, ctx.defaults_loc, node, loc)
    enabled = fields.boolean(*given["enabled"], "enabled") if "enabled" in given else True
    description = (
        fields.text(*given["description"], "description", allow_empty=True)
        if "description" in given
        else ""
    )

    version = probe_version(
        set_name=ctx.name,
        probe_id=probe_id,
        messages=messages,
        response_format=response_format,
        schema=schema.schema if schema else None,
        schema_resources=schema.resources if schema else {},
        expect=expect,
        track=track,
        extract=extract,
        params=params,
        strict=(
            resolve_strict(strict, schema.schema, schema.resources)
            if response_format == "json_schema" and schema is not None
            else False
        ),
        tools=[(tool, resolve_strict(strict, tool.parameters)) for tool in tools],
        tool_choice=tool_choice,
        expect_tool=expect_tool,
    )
    return Probe(
        id=probe_id,
        set_name=ctx.name,
        messages=messages,
        response_format=response_format,
        schema=schema.schema if schema else None,
        expect=expect,
        track=track,
        extract=extract,
        samples=samples,
        params=params,
        enabled=enabled,
        version=version,
        source_file=str(ctx.file),
        line=loc.line,
        schema_resources=schema.resources if schema else {},
        description=description,
        tools=tools,
        tool_choice=tool_choice,
        expect_tool=expect_tool,
        strict=strict,
    )


def _response_format(
    pair: tuple[Any, Loc] | None, schema: LoadedSchema | None, tools: tuple[Tool, ...]
) -> ResponseFormat:
    if pair is None:
        if tools:
            return "tool_call"
        return "json_schema" if schema is not None else "text"
    response_format = fields.response_format(*pair)
    if tools and response_format != "tool_call":
        raise pair[1].error(
            f"a probe with tools has response_format tool_call, found {response_format!r};"
            f" drop response_format or tools{_clear_hint(pair[1], 'response_format')}"
        )
    return response_format


def _tool_choice(
    choice: tuple[Any, Loc] | None, expect: tuple[Any, Loc] | None, tools: tuple[Tool, ...]
) -> tuple[str, str | None]:
    """(tool_choice, expect_tool): expect_tool defaults to the tool tool_choice forces."""
    names = tuple(tool.name for tool in tools)
    if not tools:
        for pair, key in ((choice, "tool_choice"), (expect, "expect_tool")):
            # A set-wide default does not apply to the set's probes without tools.
            if pair is not None and not pair[1].path.startswith("defaults"):
                raise pair[1].error(f"{key} is for probes with tools")
        return "required", None
    tool_choice = fields.tool_choice(*choice, names) if choice is not None else "required"
    forced = tool_choice if tool_choice in names else None
    if expect is None:
        return tool_choice, forced
    expect_tool = fields.expect_tool(*expect, names)
    if tool_choice == "none":
        raise expect[1].error("expect_tool can never be met with tool_choice: none")
    if forced is not None and expect_tool != forced:
        raise expect[1].error(
            f"tool_choice forces {forced!r}, so expect_tool {expect_tool!r} can never be met"
        )
    return tool_choice, expect_tool


def _strict(pair: tuple[Any, Loc] | None, response_format: str) -> bool | None:
    if pair is None:
        return None
    strict = fields.strict(*pair)
    if response_format not in ("json_schema", "tool_call"):
        if pair[1].path.startswith("defaults"):
            return None  # a set-wide default does not apply to the set's text and json probes
        if strict is not None:
            raise pair[1].error(
                f"strict is for json_schema and tool_call probes: a {response_format} probe"
                " sends no schema to the provider"
            )
    return strict


def _clear_hint(where: Loc, key: str) -> str:
    if not where.path.startswith("defaults"):
        return ""
    return f" (`{key}: ~` in the probe clears the default)"


def _messages(
    prompt: tuple[Any, Loc] | None, messages: tuple[Any, Loc] | None, loc: Loc
) -> tuple[Message, ...]:
    if prompt is not None:
        return (Message(role="user", content=fields.text(*prompt, "prompt")),)
    if messages is not None:
        return fields.messages(*messages)
    raise loc.error("a probe needs a prompt or messages")


def _schema(
    inline: tuple[Any, Loc] | None, file: tuple[Any, Loc] | None, ctx: SetContext, probe_id: str
) -> LoadedSchema | None:
    if inline is not None:
        node, where = inline
        if not isinstance(node, dict):
            raise where.error(
                f"schema must be a mapping (an inline JSON Schema), found {type_name(node)};"
                " to use a file, write schema_file:"
            )
        return load_inline_schema(
            node, where, probe_file=ctx.file, root=ctx.root, probe_id=probe_id, files=ctx.files
        )
    if file is not None:
        return load_schema_file(
            file[0], file[1], probe_file=ctx.file, root=ctx.root, files=ctx.files
        )
    return None


def _params(
    defaults: dict[Any, Any], defaults_loc: Loc, node: dict[Any, Any], loc: Loc
) -> dict[str, Any]:
    """defaults.params, then the probe's params on top (key by key, the probe wins)."""
    if "params" in node and node["params"] is None:
        return {}  # `params: ~` clears the defaults
    out: dict[str, Any] = {}
    for source, where in ((defaults, defaults_loc), (node, loc)):
        if source.get("params") is not None:
            out.update(fields.params(source["params"], where.child(source, "params")))
    return out
