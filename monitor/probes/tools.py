"""The `tools` key of a probe: functions offered to the model, each with a JSON Schema.

    tools:
      - name: lookup_invoice
        description: Find an invoice by its number
        parameters: { type: object, properties: {...}, required: [...] }
      - name: convert
        parameters_file: schemas/convert.json

`parameters` is an inline schema and `parameters_file` a schema file, loaded exactly like a
probe's `schema` / `schema_file` (meta-schema checked, local `$ref`s followed inside the probes
root). The parameters are stored bundled (`monitor.probes.bundle`): one self-contained
document, which is what providers receive, what arguments are validated against, and what the
probe version hashes.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monitor.probes import fields
from monitor.probes._located import Loc, check_keys, type_name
from monitor.probes.bundle import bundle_schema
from monitor.probes.model import Tool
from monitor.probes.schemas import LoadedSchema, load_inline_schema, load_schema_file

if TYPE_CHECKING:
    from monitor.probes._refs import SchemaFiles

# What OpenAI and Anthropic both accept as a function name.
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
TOOL_KEYS = ("name", "description", "parameters", "parameters_file")


def tools(
    value: Any, loc: Loc, *, probe_file: Path, root: Path, probe_id: str, files: SchemaFiles
) -> tuple[Tool, ...]:
    if not isinstance(value, list) or not value:
        raise loc.error(
            "tools must be a non-empty list of {name, description, parameters},"
            f" found {type_name(value)}"
        )
    out: list[Tool] = []
    first_line: dict[str, int | None] = {}
    for i, node in enumerate(value):
        item_loc = loc.child(value, i)
        tool = _tool(
            node, item_loc, probe_file=probe_file, root=root, probe_id=probe_id, files=files
        )
        if tool.name in first_line:
            raise item_loc.child(node, "name").error(
                f"duplicate tool name {tool.name!r} (first at line {first_line[tool.name]})"
            )
        first_line[tool.name] = item_loc.child(node, "name").line
        out.append(tool)
    return tuple(out)


def _tool(
    node: Any, loc: Loc, *, probe_file: Path, root: Path, probe_id: str, files: SchemaFiles
) -> Tool:
    if not isinstance(node, dict):
        raise loc.error(
            f"a tool must be a mapping {{name, description, parameters}}, found {type_name(node)}"
        )
    check_keys(node, TOOL_KEYS, loc, "a tool")
    if "name" not in node:
        raise loc.error("a tool needs a name")
    name = _name(node["name"], loc.child(node, "name"))
    description = ""
    if node.get("description") is not None:
        description = fields.text(
            node["description"], loc.child(node, "description"), "description", allow_empty=True
        )
    given = [key for key in ("parameters", "parameters_file") if node.get(key) is not None]
    if len(given) != 1:
        problem = "not both" if given else "found neither"
        raise loc.error(
            f"a tool needs parameters (an inline JSON Schema) or parameters_file, {problem}"
        )
    key = given[0]
    key_loc = loc.child(node, key)
    loaded: LoadedSchema
    if key == "parameters":
        if not isinstance(node[key], dict):
            raise key_loc.error(
                f"parameters must be a mapping (an inline JSON Schema), found"
                f" {type_name(node[key])}; to use a file, write parameters_file:"
            )
        loaded = load_inline_schema(
            node[key],
            key_loc,
            probe_file=probe_file,
            root=root,
            # Its own identity next to the probe's inline schema: only a label for $ref bases.
            probe_id=f"{probe_id}/tools/{name}",
            files=files,
        )
    else:
        loaded = load_schema_file(node[key], key_loc, probe_file=probe_file, root=root, files=files)
    if loaded.schema.get("type") != "object":
        raise key_loc.error(
            "a tool's parameters must be an object schema (type: object): the arguments are"
            f" a JSON object; found type {loaded.schema.get('type')!r}"
        )
    return Tool(
        name=name,
        parameters=bundle_schema(loaded.schema, loaded.resources),
        description=description,
    )


def _name(value: Any, loc: Loc) -> str:
    if not isinstance(value, str) or not TOOL_NAME_RE.match(value):
        raise loc.error(
            "a tool name must be 1 to 64 letters, digits, '_' or '-' ([A-Za-z0-9_-]),"
            f" found {value!r}"
        )
    if value in fields.TOOL_CHOICES:
        raise loc.error(
            f"{value!r} cannot be a tool name: tool_choice uses it"
            f" ({', '.join(fields.TOOL_CHOICES)} are reserved)"
        )
    return value
