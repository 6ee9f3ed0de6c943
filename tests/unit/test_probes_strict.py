"""strict_problem: one conservative rule for constrained decoding on every provider.

Compatible schemas are also checked against what the providers' own SDK helpers make of them:
OpenAI's `to_strict_json_schema` rewrite and Anthropic's `transform_schema` leave a compatible
schema as it is (nothing to move into a description, nothing to add), so what driftmon sends
strict is what those helpers would send.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from anthropic.lib._parse._transform import transform_schema
from openai.lib._pydantic import _ensure_strict_json_schema

from monitor.probes.strict import resolve_strict, strict_problem


def obj(**properties: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def nested(names: str) -> dict[str, Any]:
    """Objects inside objects: nested("ab") is {a: {b: {}}} as strict object schemas."""
    return obj(**{names[0]: nested(names[1:])}) if names else obj()


COMPATIBLE: list[dict[str, Any]] = [
    obj(),
    obj(name={"type": "string", "description": "who", "title": "Name"}),
    obj(
        total={"type": "number"},
        count={"type": "integer"},
        ok={"type": "boolean"},
        note={"anyOf": [{"type": "string"}, {"type": "null"}]},
        currency={"enum": ["USD", "EUR", None]},
        kind={"const": "invoice"},
        tags={"type": "array", "items": {"type": "string"}, "minItems": 1},
        lines={"type": "array", "items": {"$ref": "#/$defs/line"}},
    )
    | {
        "$defs": {
            "line": obj(sku={"type": "string"}, qty={"type": "integer"}),
        }
    },
    obj(inner=obj(deeper=obj(x={"type": "null"}))),
    nested("abcdefghi"),  # ten objects: the deepest allowed
]


@pytest.mark.parametrize("schema", COMPATIBLE)
def test_compatible_schemas(schema: dict[str, Any]) -> None:
    assert strict_problem(schema) is None


def _strip_string_formats(node: Any) -> Any:
    # Anthropic's helper tags plain strings with format "text", an addition of its own.
    if isinstance(node, dict):
        out = {k: _strip_string_formats(v) for k, v in node.items()}
        if out.get("format") == "text":
            del out["format"]
        return out
    if isinstance(node, list):
        return [_strip_string_formats(v) for v in node]
    return node


@pytest.mark.parametrize("schema", COMPATIBLE)
def test_compatible_schemas_need_no_rewrite_by_either_sdk(schema: dict[str, Any]) -> None:
    as_openai = _ensure_strict_json_schema(copy.deepcopy(schema), path=(), root=schema)
    assert as_openai == schema
    as_anthropic = _strip_string_formats(transform_schema(copy.deepcopy(schema)))
    assert as_anthropic == schema


INCOMPATIBLE = [
    # (schema, the reason's start)
    ({"type": "array", "items": {"type": "string"}}, "#: the root must be an object schema"),
    (
        {"anyOf": [obj(), obj(a={"type": "string"})]},
        "#: the root must be an object schema",
    ),
    (
        {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
        "#: an object needs additionalProperties: false",
    ),
    (
        obj(a={"type": "string"}) | {"required": []},
        "#: every property must be in required (missing: a)",
    ),
    (obj(a={"type": "string"}) | {"required": ["a", "b"]}, "#/required: names undeclared"),
    (obj(n={"type": "number", "minimum": 0}), "#/properties/n: `minimum` is not supported"),
    (obj(s={"type": "string", "maxLength": 5}), "#/properties/s: `maxLength` is not supported"),
    (obj(s={"type": "string", "pattern": "^a"}), "#/properties/s: `pattern` is not supported"),
    (obj(d={"type": "string", "format": "date"}), "#/properties/d: `format` is not supported"),
    (
        obj(t={"type": "array", "items": {"type": "string"}, "minItems": 2}),
        "#/properties/t/minItems: only 0 or 1",
    ),
    (
        obj(t={"type": "array", "items": {"type": "string"}, "maxItems": 2}),
        "#/properties/t: `maxItems` is not supported",
    ),
    (obj(t={"type": "array"}), "#/properties/t: an array needs `items`"),
    (obj(u={"oneOf": [{"type": "string"}]}), "#/properties/u: `oneOf` is not supported"),
    (obj(u={"allOf": [{"type": "string"}]}), "#/properties/u: `allOf` is not supported"),
    (obj(u={"not": {"type": "string"}}), "#/properties/u: `not` is not supported"),
    (
        obj(u={"type": "string", "if": {}, "then": {}}),
        "#/properties/u: `if` is not supported",
    ),
    (
        {
            "type": "object",
            "properties": {},
            "patternProperties": {"^x": {"type": "string"}},
            "additionalProperties": False,
        },
        "#: `patternProperties` is not supported",
    ),
    (obj(u={"type": "string", "default": "x"}), "#/properties/u: `default` is not supported"),
    (obj() | {"$schema": "https://json-schema.org/draft/2020-12/schema"}, "#: `$schema`"),
    (obj(u={"type": ["string", "null"]}), "#/properties/u/type: type must be one type name"),
    (obj(u={"description": "anything"}), "#/properties/u: needs a `type`"),
    (obj(u=True), "#/properties/u: a schema here must be a mapping"),
    (obj(u={"enum": [{"a": 1}]}), "#/properties/u/enum: values must be strings"),
    (
        obj(u={"$ref": "#/$defs/x", "description": "d"}) | {"$defs": {"x": {"type": "string"}}},
        "#/properties/u: $ref must stand alone",
    ),
    (obj(u={"$ref": "#/properties/v"}), "#/properties/u/$ref: only references to #/$defs/"),
    (
        obj(node={"$ref": "#/$defs/node"})
        | {"$defs": {"node": obj(children={"type": "array", "items": {"$ref": "#/$defs/node"}})}},
        "#/$defs/node/properties/children/items/$ref: recursive reference '#/$defs/node'",
    ),
    (
        obj(a={"type": "string"}) | {"$defs": {"unused": {"type": "string", "minLength": 1}}},
        "#/$defs/unused: `minLength` is not supported",
    ),
    (
        obj(a={"type": "object", "$defs": {}, "properties": {}, "additionalProperties": False}),
        "#/properties/a: `$defs` is not supported below the root",
    ),
    (
        nested("abcdefghij"),
        "#/properties/a/properties/b/properties/c/properties/d/properties/e/properties/f"
        "/properties/g/properties/h/properties/i/properties/j: objects nest more than 10",
    ),
    (
        obj(**{f"p{i}": {"enum": list(range(100))} for i in range(11)}),
        "#/properties/p10/enum: more than 1000 enum values",
    ),
]


@pytest.mark.parametrize(
    ("schema", "reason"), INCOMPATIBLE, ids=[reason[:50] for _, reason in INCOMPATIBLE]
)
def test_incompatible_schemas_say_where_and_why(schema: dict[str, Any], reason: str) -> None:
    problem = strict_problem(schema)
    assert problem is not None and problem.startswith(reason), problem


def test_referenced_schema_files_are_judged_as_bundled() -> None:
    root = obj(money={"$ref": "money.json"}) | {"$id": "driftmon-probes:///set.yaml?probe=p"}
    money = obj(amount={"type": "number"})
    resources = {"driftmon-probes:///money.json": money | {"$id": "driftmon-probes:///money.json"}}
    assert strict_problem(root, resources) is None
    loose = {**money, "additionalProperties": True}
    bad = {"driftmon-probes:///money.json": loose | {"$id": "driftmon-probes:///money.json"}}
    problem = strict_problem(root, bad)
    assert problem == "#/$defs/money.json: an object needs additionalProperties: false"


def test_a_definition_used_many_times_is_walked_a_bounded_number_of_times() -> None:
    # d0 uses d1 twice, d1 uses d2 twice, ...: 2**40 walks if every use were walked again.
    defs: dict[str, Any] = {
        f"d{i}": {"anyOf": [{"$ref": f"#/$defs/d{i + 1}"}, {"$ref": f"#/$defs/d{i + 1}"}]}
        for i in range(40)
    }
    defs["d40"] = {"type": "string"}
    assert strict_problem(obj(x={"$ref": "#/$defs/d0"}) | {"$defs": defs}) is None
    defs["d40"] = {"type": "string", "maxLength": 1}
    problem = strict_problem(obj(x={"$ref": "#/$defs/d0"}) | {"$defs": defs})
    assert problem == "#/$defs/d40: `maxLength` is not supported in strict mode"


def test_resolve_strict_prefers_the_explicit_choice() -> None:
    loose = {"type": "object"}
    assert resolve_strict(None, obj()) is True
    assert resolve_strict(None, loose) is False
    assert resolve_strict(True, loose) is True
    assert resolve_strict(False, obj()) is False
