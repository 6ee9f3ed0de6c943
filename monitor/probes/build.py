"""One probe: merge the set's `defaults` into a probe mapping and build the resolved `Probe`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.probes import fields
from monitor.probes._located import Loc, check_keys, type_name
from monitor.probes._refs import SchemaFiles
from monitor.probes.model import Message, Probe
from monitor.probes.schemas import LoadedSchema, load_inline_schema, load_schema_file
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
    rf_pair = get("response_format")
    if rf_pair is not None:
        response_format = fields.response_format(*rf_pair)
    else:
        response_format = "json_schema" if schema is not None else "text"
    text_probe = response_format == "text"
    if text_probe and schema is not None:
        where = (get("schema") or get("schema_file") or (None, loc))[1]
        hint = (
            " (`schema: ~` in the probe clears the default)"
            if where.path.startswith("defaults")
            else ""
        )
        raise where.error(
            f"a text probe has no schema: drop it or use response_format json / json_schema{hint}"
        )
    if not text_probe and schema is None:
        where = rf_pair[1] if rf_pair is not None else loc
        raise where.error(f"a {response_format} probe needs a schema or schema_file")

    expect = fields.checks(*given["expect"], text_probe=text_probe) if "expect" in given else ()
    track: tuple[str, ...] = ()
    if "track" in given:
        if text_probe:
            raise given["track"][1].error("a text probe has no JSON fields to track")
        track = fields.track(*given["track"])
    extract = None
    if "extract" in given:
        if not text_probe:
            raise given["extract"][1].error("extract is for text probes; json probes are parsed")
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
    )


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
