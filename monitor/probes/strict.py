"""Whether a schema can be sent for constrained decoding ("strict" structured output).

OpenAI (strict structured outputs and strict function tools) and Anthropic (structured
outputs and strict tools) each accept a subset of JSON Schema for constrained decoding. A probe
must measure the same thing on every provider, so one rule decides for all of them: the
intersection of the published subsets, read conservatively. A schema is strict-compatible when

- the root is an object schema (`type: object`, not an `anyOf`);
- every object has `additionalProperties: false` and lists each of its properties in
  `required` (optional fields are written as required and nullable, with `anyOf`);
- every node uses only `type` (one name, not a list), `properties`, `required`,
  `additionalProperties`, `items`, `enum`/`const` (of strings, numbers, booleans, null),
  `anyOf`, `$ref` (alone, to `#/$defs/...`, not recursive), `description`, `title`, and
  `minItems` of 0 or 1; `$defs` only at the root;
- it stays within OpenAI's size limits (objects nested at most 10 deep, at most 5,000
  properties and 1,000 enum values in all).

Everything else (numeric, string and array bounds, `pattern`, `format`, `oneOf`, `allOf`,
`not`, `if`/`then`, `patternProperties`, `default`, `$schema`, recursion, ...) is not compatible,
even where one provider would accept it. `strict_problem` says why, naming the JSON pointer of
the first offending node; None means the schema can be sent strict to every provider.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from monitor.probes.bundle import bundle_schema
from monitor.probes.model import Probe, Tool

TYPES = frozenset({"object", "array", "string", "number", "integer", "boolean", "null"})
KEYWORDS = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "description",
        "title",
        "minItems",
    }
)
ROOT_KEYWORDS = KEYWORDS | {"$defs"}
MAX_OBJECT_DEPTH = 10
MAX_PROPERTIES = 5_000
MAX_ENUM_VALUES = 1_000
DEFS_PREFIX = "#/$defs/"


class _NotStrict(Exception):
    pass


def strict_problem(
    schema: Mapping[str, Any], resources: Mapping[str, dict[str, Any]] | None = None
) -> str | None:
    """None when `schema` (with the schema files it references) is strict-compatible on every
    provider; else a short reason starting with the JSON pointer of the offending node."""
    bundled = bundle_schema(dict(schema), resources or {})
    try:
        _Walk(bundled).run()
    except _NotStrict as problem:
        return str(problem)
    return None


def resolve_strict(
    explicit: bool | None,
    schema: Mapping[str, Any],
    resources: Mapping[str, dict[str, Any]] | None = None,
) -> bool:
    """A probe's `strict` when it gives one, else whether the schema is strict-compatible."""
    if explicit is not None:
        return explicit
    return strict_problem(schema, resources) is None


def probe_strict(probe: Probe) -> bool:
    """Whether `probe` asks for constrained decoding: of its schema (json_schema probes) or of
    every tool's arguments (tool_call probes). Text and json probes send no schema natively."""
    if probe.response_format == "json_schema" and probe.schema is not None:
        return resolve_strict(probe.strict, probe.schema, probe.schema_resources)
    if probe.response_format == "tool_call" and probe.tools:
        return all(tool_strict(probe, tool) for tool in probe.tools)
    return False


def tool_strict(probe: Probe, tool: Tool) -> bool:
    """Whether `tool`'s arguments are decoded under its schema (`parameters` is bundled)."""
    return resolve_strict(probe.strict, tool.parameters)


def _pointer(path: tuple[str, ...]) -> str:
    return "#" + "".join("/" + part.replace("~", "~0").replace("/", "~1") for part in path)


class _Walk:
    """One pass over a bundled schema; raises _NotStrict at the first problem."""

    def __init__(self, root: dict[str, Any]) -> None:
        self.root = root
        self.defs: Mapping[str, Any] = {}
        # definition -> the deepest depth it was checked from without a problem
        self.checked_defs: dict[str, int] = {}
        self.properties = 0
        self.enum_values = 0

    def run(self) -> None:
        root = self.root
        if root.get("type") != "object" or "anyOf" in root:
            raise _NotStrict("#: the root must be an object schema (type: object)")
        defs = root.get("$defs", {})
        if not isinstance(defs, dict):
            raise _NotStrict("#/$defs: must be a mapping of schemas")
        self.defs = defs
        self.node(root, (), depth=0, refs=(), is_root=True)
        for name in defs:  # definitions nobody references are still sent, so still checked
            if name not in self.checked_defs:
                self.definition(name, depth=0, refs=())

    def fail(self, path: tuple[str, ...], problem: str) -> _NotStrict:
        return _NotStrict(f"{_pointer(path)}: {problem}")

    def node(
        self, node: Any, path: tuple[str, ...], *, depth: int, refs: tuple[str, ...], is_root: bool
    ) -> None:
        if not isinstance(node, dict):
            raise self.fail(path, "a schema here must be a mapping, not true/false")
        allowed = ROOT_KEYWORDS if is_root else KEYWORDS
        for key in node:
            if key not in allowed:
                where = "below the root" if key == "$defs" else "in strict mode"
                raise self.fail(path, f"`{key}` is not supported {where}")
        if "$ref" in node:
            self.ref(node, path, depth=depth, refs=refs)
            return
        if "enum" in node:
            self.literals(node["enum"], (*path, "enum"))
        if "const" in node and not _is_primitive(node["const"]):
            raise self.fail((*path, "const"), "must be a string, number, boolean or null")
        if "anyOf" in node:
            variants = node["anyOf"]
            if not isinstance(variants, list) or not variants:
                raise self.fail((*path, "anyOf"), "must be a non-empty list of schemas")
            for i, variant in enumerate(variants):
                self.node(variant, (*path, "anyOf", str(i)), depth=depth, refs=refs, is_root=False)
        kind = node.get("type")
        if kind is None:
            if not any(k in node for k in ("anyOf", "enum", "const")):
                raise self.fail(path, "needs a `type` (or anyOf, enum, const)")
            return
        if not isinstance(kind, str) or kind not in TYPES:
            raise self.fail(
                (*path, "type"),
                f"type must be one type name, found {kind!r} (write a nullable field as"
                " anyOf: [{type: ...}, {type: 'null'}])",
            )
        if kind == "object":
            self.object(node, path, depth=depth + 1, refs=refs)
        elif kind == "array":
            self.array(node, path, depth=depth, refs=refs)

    def object(
        self, node: dict[str, Any], path: tuple[str, ...], *, depth: int, refs: tuple[str, ...]
    ) -> None:
        if depth > MAX_OBJECT_DEPTH:
            raise self.fail(path, f"objects nest more than {MAX_OBJECT_DEPTH} levels deep")
        if node.get("additionalProperties") is not False:
            raise self.fail(path, "an object needs additionalProperties: false")
        properties = node.get("properties", {})
        if not isinstance(properties, dict):
            raise self.fail((*path, "properties"), "must be a mapping of schemas")
        required = node.get("required", [])
        missing = [name for name in properties if name not in required]
        if missing:
            raise self.fail(
                path,
                f"every property must be in required (missing: {', '.join(missing[:5])});"
                " write an optional field as required and nullable",
            )
        extra = [name for name in required if name not in properties]
        if extra:
            raise self.fail((*path, "required"), f"names undeclared properties: {extra[:5]}")
        self.properties += len(properties)
        if self.properties > MAX_PROPERTIES:
            raise self.fail(path, f"more than {MAX_PROPERTIES} properties in all")
        for name, schema in properties.items():
            self.node(schema, (*path, "properties", name), depth=depth, refs=refs, is_root=False)

    def array(
        self, node: dict[str, Any], path: tuple[str, ...], *, depth: int, refs: tuple[str, ...]
    ) -> None:
        if "items" not in node:
            raise self.fail(path, "an array needs `items`")
        min_items = node.get("minItems")
        if min_items is not None and min_items not in (0, 1):
            raise self.fail((*path, "minItems"), "only 0 or 1 is supported")
        self.node(node["items"], (*path, "items"), depth=depth, refs=refs, is_root=False)

    def ref(
        self, node: dict[str, Any], path: tuple[str, ...], *, depth: int, refs: tuple[str, ...]
    ) -> None:
        ref = node["$ref"]
        if len(node) > 1:
            others = ", ".join(sorted(k for k in node if k != "$ref"))
            raise self.fail(path, f"$ref must stand alone (found also: {others})")
        if not isinstance(ref, str) or not ref.startswith(DEFS_PREFIX):
            raise self.fail(
                (*path, "$ref"), f"only references to #/$defs/... are supported: {ref!r}"
            )
        name = ref[len(DEFS_PREFIX) :]
        if "/" in name or name not in self.defs:
            raise self.fail((*path, "$ref"), f"must name one definition in #/$defs: {ref!r}")
        if name in refs:
            raise self.fail((*path, "$ref"), f"recursive reference {ref!r}")
        self.definition(name, depth=depth, refs=refs)

    def definition(self, name: str, *, depth: int, refs: tuple[str, ...]) -> None:
        # A definition that passed from some depth passes from any shallower one (a cycle
        # through it would have been found then), so each is walked a bounded number of
        # times however often it is referenced.
        if self.checked_defs.get(name, -1) >= depth:
            return
        self.node(self.defs[name], ("$defs", name), depth=depth, refs=(*refs, name), is_root=False)
        self.checked_defs[name] = depth

    def literals(self, values: Any, path: tuple[str, ...]) -> None:
        if not isinstance(values, list) or not values:
            raise self.fail(path, "must be a non-empty list")
        if not all(_is_primitive(value) for value in values):
            raise self.fail(path, "values must be strings, numbers, booleans or null")
        self.enum_values += len(values)
        if self.enum_values > MAX_ENUM_VALUES:
            raise self.fail(path, f"more than {MAX_ENUM_VALUES} enum values in all")


def _is_primitive(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | bool)
