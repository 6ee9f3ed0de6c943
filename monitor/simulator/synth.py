"""Instances of a JSON Schema: a minimal valid one, an invalid one, one with a wrong value.

`SchemaSynth` works on one schema (a request's `response_format` schema or a rule's
`schema:`). Every variant it returns is checked with jsonschema against that schema, so a
`schema_invalid` answer really is invalid and a `valid` one really validates, even for
schemas the generator only half understands. Only local `$ref`s (`#/...`) are followed: the
validator gets an empty registry, so nothing is ever fetched.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from jsonschema import exceptions as js_exceptions
from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from referencing import Registry
from referencing.exceptions import Unresolvable

from monitor.simulator.schemavalues import (
    get_path,
    merge_all_of,
    number_example,
    set_path,
    string_example,
    type_of,
)

_WRONG_TYPE = {
    "string": 12345,
    "number": "not a number",
    "integer": "not a number",
    "boolean": "yes",
    "array": "not a list",
    "object": "not an object",
    "null": "not null",
}
_MAX_DEPTH = 32


class SchemaError(ValueError):
    """The schema itself is not a valid JSON Schema."""


class SchemaSynth:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = dict(schema)
        cls = validator_for(self.schema)
        try:
            cls.check_schema(self.schema)
        except js_exceptions.SchemaError as exc:
            raise SchemaError(exc.message) from exc
        self.validator: Validator = cls(self.schema, registry=Registry())

    def is_valid(self, instance: Any) -> bool:
        try:
            return bool(self.validator.is_valid(instance))
        except Unresolvable:  # a $ref outside the schema: we never fetch, so it cannot pass
            return False

    # ---- valid -------------------------------------------------------------------------------
    def valid(self, fields: Mapping[str, Any]) -> Any:
        instance = self.example(self.schema)
        for path, value in fields.items():
            instance = set_path(instance, path, value)
        return instance

    def example(self, schema: Any, depth: int = 0) -> Any:
        s = self.resolve(schema)
        if not isinstance(s, Mapping) or depth > _MAX_DEPTH:
            return "example"
        if "const" in s:
            return s["const"]
        if s.get("enum"):
            return s["enum"][0]
        for key in ("anyOf", "oneOf"):
            if s.get(key):
                rest = {k: v for k, v in s.items() if k != key}
                return self.example({**rest, **self.resolve(s[key][0])}, depth + 1)
        if s.get("allOf"):
            merged = {k: v for k, v in s.items() if k != "allOf"}
            for sub in s["allOf"]:
                sub = self.resolve(sub)
                if isinstance(sub, Mapping):
                    merged = merge_all_of(merged, sub)
            return self.example(merged, depth + 1)
        kind = type_of(s)
        if kind == "object":
            return self._object(s, depth)
        if kind == "array":
            return self._array(s, depth)
        if kind == "string":
            return string_example(s)
        if kind in ("number", "integer"):
            return number_example(s, kind == "integer")
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return "example"

    def _object(self, s: Mapping[str, Any], depth: int) -> dict[str, Any]:
        props: Mapping[str, Any] = s.get("properties", {})
        names = list(s.get("required", []))
        for name in props:  # minProperties may ask for more than the required ones
            if len(names) >= s.get("minProperties", 0):
                break
            if name not in names:
                names.append(name)
        extra = s.get("additionalProperties", {})
        return {n: self.example(props.get(n, extra), depth + 1) for n in names}

    def _array(self, s: Mapping[str, Any], depth: int) -> list[Any]:
        items = [self.example(sub, depth + 1) for sub in s.get("prefixItems", [])]
        while len(items) < s.get("minItems", 0):
            item = self.example(s.get("items", {}), depth + 1)
            if s.get("uniqueItems"):
                item = self._distinct(item, len(items), s.get("items", {}))
            items.append(item)
        return items

    def _distinct(self, item: Any, index: int, schema: Any) -> Any:
        """The index-th of several different examples, for `uniqueItems` arrays."""
        s = self.resolve(schema)
        s = s if isinstance(s, Mapping) else {}
        if index == 0:
            return item
        if isinstance(item, bool):
            return not item
        if isinstance(item, int | float):
            return item + index * s.get("multipleOf", 1)
        if isinstance(item, str):
            return f"{item}{index}"
        if isinstance(item, dict):
            props = s.get("properties", {})
            for key, value in item.items():
                if isinstance(value, int | float | str) and not isinstance(value, bool):
                    return {**item, key: self._distinct(value, index, props.get(key, {}))}
        return item

    def resolve(self, schema: Any) -> Any:
        """Follow local `#/...` references; anything else is left for the validator to judge."""
        for _ in range(_MAX_DEPTH):
            if not isinstance(schema, Mapping) or not isinstance(schema.get("$ref"), str):
                return schema
            ref: str = schema["$ref"]
            if not ref.startswith("#"):
                return schema
            target: Any = self.schema
            for part in ref[1:].split("/")[1:] if ref != "#" else []:
                part = part.replace("~1", "/").replace("~0", "~")
                target = target[int(part)] if isinstance(target, list) else target.get(part, {})
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest} if isinstance(target, Mapping) else target
        return schema

    # ---- invalid ---------------------------------------------------------------------------
    def invalid(self, fields: Mapping[str, Any]) -> Any:
        """A near miss: the valid instance with one thing broken, checked to fail validation."""
        base = self.valid(fields)
        for candidate in self._breakages(base):
            if not self.is_valid(candidate):
                return candidate
        return base  # the schema accepts anything (e.g. `{}`): nothing can be invalid

    def _breakages(self, base: Any) -> Iterator[Any]:
        s = self.resolve(self.schema)
        props: Mapping[str, Any] = s.get("properties", {}) if isinstance(s, Mapping) else {}
        if isinstance(base, dict):
            for name in (s.get("required") or []) if isinstance(s, Mapping) else []:
                if name in base:
                    yield {k: v for k, v in base.items() if k != name}
            for name in base:
                sub = self.resolve(props.get(name, {}))
                kind = type_of(sub) if isinstance(sub, Mapping) else None
                wrong = _WRONG_TYPE.get(kind or "")
                if wrong is not None:
                    yield {**base, name: wrong}
                if isinstance(sub, Mapping) and ("enum" in sub or "const" in sub):
                    yield {**base, name: "__not_an_allowed_value__"}
            yield {**base, "unexpected_field": "surprise"}
        yield [] if isinstance(base, dict) else {"unexpected": base}

    # ---- wrong value -------------------------------------------------------------------------
    def wrong(
        self, fields: Mapping[str, Any], wrong_fields: Mapping[str, Any], paths: tuple[str, ...]
    ) -> Any:
        """The valid instance with some values changed; the shape stays valid where we choose."""
        instance = self.valid(fields)
        for path, value in wrong_fields.items():
            instance = set_path(instance, path, value)
        automatic = not wrong_fields and not paths
        if automatic:
            paths = self._leaf_paths(instance)
        for path in paths:
            changed = self._alternative(instance, path)
            if changed is not None:
                instance = changed
                if automatic:
                    break  # one changed field is enough
        return instance

    def _leaf_paths(self, instance: Any, prefix: str = "") -> tuple[str, ...]:
        if isinstance(instance, dict):
            out: list[str] = []
            for key, value in instance.items():
                out.extend(self._leaf_paths(value, f"{prefix}{key}."))
            return tuple(out)
        return (prefix[:-1],) if prefix else ()

    def _alternative(self, instance: Any, path: str) -> Any | None:
        current = get_path(instance, path)
        sub = self.resolve(self.schema_at(path))
        options: list[Any] = []
        if isinstance(sub, Mapping) and sub.get("enum"):
            options = [v for v in sub["enum"] if v != current]
        elif isinstance(current, bool):
            options = [not current]
        elif isinstance(current, int | float):
            s = sub if isinstance(sub, Mapping) else {}
            step = s.get("multipleOf", 1)
            options = [current + step, current - step, current * 2 + step, current / 2]
            options += [s[k] for k in ("minimum", "maximum") if k in s]
        elif isinstance(current, str):
            options = [current + "-changed", "changed", current[:-1], "x"]
        else:
            options = [None, "changed"]
        for option in options:
            candidate = set_path(instance, path, option)
            if option != current and self.is_valid(candidate):
                return candidate
        return None

    def schema_at(self, path: str) -> Any:
        s: Any = self.schema
        for part in path.split("."):
            s = self.resolve(s)
            if not isinstance(s, Mapping):
                return {}
            if part.isdigit() and "items" in s:
                s = s["items"]
            else:
                s = s.get("properties", {}).get(part, {})
        return s

    # ---- length ------------------------------------------------------------------------------
    def free_text_path(self, instance: Any) -> str | None:
        """A string field with no enum, pattern, format or maxLength: safe to pad. Fields
        already in the instance come first, then optional top-level ones the schema declares."""
        root = self.resolve(self.schema)
        declared = root.get("properties", {}) if isinstance(root, Mapping) else {}
        optional: list[str] = [
            p for p in declared if isinstance(instance, dict) and p not in instance
        ]
        for path in [*self._leaf_paths(instance), *optional]:
            sub = self.resolve(self.schema_at(path))
            value = get_path(instance, path)
            if (
                isinstance(value, str | None)
                and isinstance(sub, Mapping)
                and type_of(sub) == "string"
                and not {"enum", "const", "pattern", "format", "maxLength"} & set(sub)
            ):
                return path
        return None
