"""Schemas and $ref: local files only, nothing fetched, every refusal names file, key and ref."""

from __future__ import annotations

import json
import socket
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jsonschema.exceptions import ValidationError

from monitor.errors import ProbeFileError
from monitor.probes.loader import load_probe_sets
from monitor.probes.model import Probe
from monitor.probes.schemas import file_uri, inline_uri
from monitor.validation.schema import compile_validator

PROBE_WITH_REF = """
probes:
  - id: p
    prompt: x
    schema:
      type: object
      properties:
        a: {{ $ref: '{ref}' }}
"""


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """Any attempt to connect fails the test, and is recorded."""
    attempts: list[Any] = []

    def refuse(self: socket.socket, address: Any) -> None:
        attempts.append(address)
        raise AssertionError(f"network connection attempted to {address!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: refuse(None, a))  # type: ignore[arg-type]
    yield attempts
    assert attempts == []


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def write_json(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2), encoding="utf-8")
    return path


def load_one(root: Path) -> Probe:
    (probe_set,) = load_probe_sets([root])
    return probe_set.probes[0]


def ref_error(root: Path, ref: str) -> ProbeFileError:
    path = write(root / "set.yaml", PROBE_WITH_REF.format(ref=ref))
    with pytest.raises(ProbeFileError) as info:
        load_probe_sets([root])
    assert info.value.file == str(path)
    return info.value


@pytest.mark.parametrize(
    "ref",
    [
        "http://example.com/schema.json",
        "https://json-schema.org/draft/2020-12/schema",
        "file:///etc/passwd",
        "urn:example:thing",
        "//example.com/schema.json",
        "ftp://example.com/x.json",
        "C:\\schemas\\x.json",
    ],
)
def test_remote_refs_are_refused_without_any_connection(
    tmp_path: Path, no_network: list[Any], ref: str
) -> None:
    err = ref_error(tmp_path / "probes", ref)
    assert (err.key, err.line) == ("probes[0].schema.properties.a.$ref", 7)
    assert repr(ref) in err.problem
    assert str(err).startswith(f"{err.file}:7: probes[0].schema.properties.a.$ref: ")


@pytest.mark.parametrize(
    ("ref", "problem"),
    [
        ("../../etc/passwd", "points outside the probes folder"),
        ("sub/../../outside.json", "points outside the probes folder"),
        ("driftmon-probes:///../outside.json", "points outside the probes folder"),
        ("/etc/passwd", "absolute path"),
    ],
)
def test_escaping_refs_are_refused(tmp_path: Path, ref: str, problem: str) -> None:
    write_json(tmp_path / "outside.json", {"type": "string"})  # exists, must not be read
    err = ref_error(tmp_path / "probes", ref)
    assert err.key == "probes[0].schema.properties.a.$ref" and err.line == 7
    assert problem in err.problem and repr(ref) in err.problem


def test_escape_through_a_symlink_is_refused(tmp_path: Path) -> None:
    outside = write_json(tmp_path / "outside.json", {"type": "string"})
    root = tmp_path / "probes"
    root.mkdir()
    (root / "link.json").symlink_to(outside)
    err = ref_error(root, "link.json")
    assert "outside the probes folder" in err.problem


def test_refused_ref_inside_a_schema_file_names_that_file_key_and_line(
    tmp_path: Path, no_network: list[Any]
) -> None:
    root = tmp_path / "probes"
    write(
        root / "schemas" / "a.json",
        """
        {
          "type": "object",
          "properties": {
            "b": { "$ref": "https://example.com/b.json" }
          }
        }
    """,
    )
    write(root / "set.yaml", "probes:\n  - {id: p, prompt: x, schema_file: schemas/a.json}\n")
    with pytest.raises(ProbeFileError) as info:
        load_probe_sets([root])
    err = info.value
    assert (err.file, err.key, err.line) == (
        str(root / "schemas" / "a.json"),
        "properties.b.$ref",
        4,
    )
    assert "'https://example.com/b.json'" in err.problem


def test_nested_refs_cycles_and_fragments(tmp_path: Path, no_network: list[Any]) -> None:
    root = tmp_path / "probes"
    write_json(
        root / "schemas" / "tree.json",
        {
            "type": "object",
            "properties": {
                "label": {"$ref": "parts/label.yaml"},
                "children": {"type": "array", "items": {"$ref": "#"}},
            },
            "$defs": {"allowed": {"not": {"const": "forbidden"}}},
        },
    )
    write(
        root / "schemas" / "parts" / "label.yaml",
        """
        $defs:
          text: { type: string, minLength: 1 }
        allOf:
          - $ref: "#/$defs/text"
          - $ref: "../tree.json#/$defs/allowed"   # back into the referring file: a cycle
    """,
    )
    # The data keywords are not walked: this "$ref" is an expected value, not a reference.
    write(
        root / "set.yaml",
        """
        probes:
          - id: p
            prompt: x
            schema:
              $ref: schemas/tree.json
              const: { $ref: "https://example.com/not-a-ref" }
    """,
    )
    probe = load_one(root)
    assert set(probe.schema_resources) == {
        "driftmon-probes:///schemas/tree.json",
        "driftmon-probes:///schemas/parts/label.yaml",
    }
    validator = compile_validator(probe.schema, probe.schema_resources)
    good = {"$ref": "https://example.com/not-a-ref"}
    assert list(validator.iter_errors(good)) == []
    tree_validator = compile_validator(
        probe.schema_resources["driftmon-probes:///schemas/tree.json"], probe.schema_resources
    )

    def valid(instance: object) -> bool:
        return not list(tree_validator.iter_errors(instance))

    assert valid({"label": "root", "children": [{"label": "leaf"}]})
    assert not valid({"label": "root", "children": [{"label": ""}]})
    assert not valid({"label": "forbidden"})


def test_unresolvable_pointer_is_a_load_error(tmp_path: Path) -> None:
    err = ref_error(tmp_path / "probes", "#/$defs/missing")
    assert "cannot be resolved" in err.problem and err.line == 7


def test_missing_ref_file_is_a_load_error(tmp_path: Path) -> None:
    err = ref_error(tmp_path / "probes", "schemas/nope.json")
    assert "no such schema file" in err.problem


def test_invalid_json_in_a_schema_file_has_its_line(tmp_path: Path) -> None:
    root = tmp_path / "probes"
    write(root / "bad.json", '{\n  "type": "object",\n  "type": "string"\n}\n')
    write(root / "set.yaml", "probes:\n  - {id: p, prompt: x, schema_file: bad.json}\n")
    with pytest.raises(ProbeFileError, match=r"bad.json: invalid JSON: duplicate key 'type'"):
        load_probe_sets([root])
    write(root / "bad.json", '{\n  "type": "object",\n  oops\n}\n')
    with pytest.raises(ProbeFileError, match=r"bad.json:3: invalid JSON"):
        load_probe_sets([root])


def test_user_id_is_replaced_on_a_copy(tmp_path: Path) -> None:
    root = tmp_path / "probes"
    schema_file = write_json(
        root / "s.json", {"$id": "https://example.com/s.json", "type": "object"}
    )
    write(root / "set.yaml", "probes:\n  - {id: p, prompt: x, schema_file: s.json}\n")
    probe = load_one(root)
    assert probe.schema == {"$id": "driftmon-probes:///s.json", "type": "object"}
    assert json.loads(schema_file.read_text())["$id"] == "https://example.com/s.json"


def test_uri_forms(tmp_path: Path) -> None:
    assert file_uri(tmp_path / "a b" / "x.json", tmp_path) == "driftmon-probes:///a%20b/x.json"
    assert (
        inline_uri(tmp_path / "sub" / "set.yaml", tmp_path, "p-1")
        == "driftmon-probes:///sub/set.yaml?probe=p-1"
    )


def test_validation_never_fetches_an_unknown_ref(no_network: list[Any]) -> None:
    """Even a schema that bypassed the loader cannot make the validator fetch anything."""
    probe = Probe(
        id="p",
        set_name="s",
        messages=(),
        response_format="json",
        expect=(),
        track=(),
        schema={"$id": "driftmon-probes:///x.yaml?probe=p", "$ref": "https://example.com/a.json"},
        extract=None,
        samples=None,
        params={},
        enabled=True,
        version="0",
        source_file="x.yaml",
    )
    with pytest.raises(Exception, match="Unresolvable") as info:
        list(compile_validator(probe.schema, probe.schema_resources).iter_errors({}))
    assert not isinstance(info.value, ValidationError)


def test_request_schema_is_self_contained(no_network: list[Any]) -> None:
    from jsonschema import Draft202012Validator
    from referencing import Registry

    from monitor.probes.bundle import request_schema

    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "probes" / "valid"
    orders = {s.name: s for s in load_probe_sets([fixtures])}["orders"]
    for probe in orders.probes:
        bundled = request_schema(probe)
        assert bundled is not None and "$id" not in bundled
        assert "driftmon-probes" not in json.dumps(bundled)
        refs = [r for r in _refs(bundled)]
        assert refs and all(r.startswith("#") for r in refs), refs
        # An empty registry: any non-local reference would fail to resolve.
        validator = Draft202012Validator(bundled, registry=Registry())
        good = {"id": "o1", "price": {"amount": 3, "currency": "EUR"}}
        assert validator.is_valid(good)
        assert not validator.is_valid({"id": "o1", "price": {"amount": 3, "currency": "JPY"}})
    assert probe.schema is not None and "$id" in probe.schema  # the probe is not altered


def test_request_schema_keeps_a_schema_without_files() -> None:
    from monitor.probes.bundle import request_schema

    fixtures = Path(__file__).resolve().parent.parent / "fixtures" / "probes" / "valid"
    basic = {s.name: s for s in load_probe_sets([fixtures])}["basic"]
    probe = basic.probes[0]
    assert probe.schema is not None
    assert request_schema(probe) == {k: v for k, v in probe.schema.items() if k != "$id"}


def _refs(node: Any) -> list[str]:
    if isinstance(node, list):
        return [r for item in node for r in _refs(item)]
    if not isinstance(node, dict):
        return []
    own = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
    return own + [r for value in node.values() for r in _refs(value)]


def test_invalid_schema_in_a_json_file_names_its_line(tmp_path: Path) -> None:
    root = tmp_path / "probes"
    write(
        root / "s.json",
        '{\n  "type": "object",\n  "properties": {\n    "a": {"type": 12}\n  }\n}\n',
    )
    write(root / "set.yaml", "probes:\n  - {id: p, prompt: x, schema_file: s.json}\n")
    with pytest.raises(ProbeFileError) as info:
        load_probe_sets([root])
    assert (info.value.file, info.value.key, info.value.line) == (
        str(root / "s.json"),
        "properties.a.type",
        4,
    )
    assert "invalid JSON Schema" in info.value.problem


def test_probes_sharing_a_schema_file_do_not_share_objects(tmp_path: Path) -> None:
    root = tmp_path / "probes"
    write_json(root / "s.json", {"type": "object", "properties": {"a": {"type": "string"}}})
    write(
        root / "set.yaml",
        """
        probes:
          - {id: p, prompt: x, schema_file: s.json}
          - {id: q, prompt: y, schema_file: s.json}
    """,
    )
    p, q = load_probe_sets([root])[0].probes
    assert p.schema == q.schema and p.schema is not None and q.schema is not None
    assert p.schema["properties"] is not q.schema["properties"]
