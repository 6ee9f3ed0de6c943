"""Schema side of judging: local $ref only (proved without network), formats, compilation."""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from monitor.errors import ProbeFileError
from monitor.validation import FormatKind, judge, prepare
from tests.unit.test_validation import check, make_probe

ROOT_URI = "driftmon-probes:///invoices.yaml#acme-invoice"
LINE_URI = "driftmon-probes:///schemas/line.json"
MONEY_URI = "driftmon-probes:///schemas/common/money.json"

LINE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["sku", "price"],
    "properties": {"sku": {"type": "string"}, "price": {"$ref": "common/money.json"}},
}
MONEY_SCHEMA: dict[str, Any] = {
    "$defs": {"amount": {"type": "number", "minimum": 0}},
    "$ref": "#/$defs/amount",
}


def root_schema(**properties: Any) -> dict[str, Any]:
    return {"$id": ROOT_URI, "type": "object", "properties": properties}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Any connect or URL open fails the test (and is recorded, in case it gets swallowed)."""
    attempts: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(repr(args[1:2] or kwargs))
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with socket.socket() as sock, pytest.raises(AssertionError):  # the trap works
        sock.connect(("203.0.113.1", 80))
    attempts.clear()
    yield attempts
    assert attempts == []


def test_ref_into_schema_resources_resolves(no_network: list[str]) -> None:
    probe = make_probe(
        schema=root_schema(lines={"type": "array", "items": {"$ref": "schemas/line.json"}}),
        schema_resources={LINE_URI: LINE_SCHEMA, MONEY_URI: MONEY_SCHEMA},
    )
    good = judge(probe, '{"lines": [{"sku": "A", "price": 2.5}]}')
    assert (good.schema_valid, good.schema_errors) == (True, [])
    bad = judge(probe, '{"lines": [{"sku": 1, "price": -1}, {"price": "x"}]}')
    assert bad.schema_valid is False
    assert sorted(bad.schema_errors) == sorted(
        [
            "$.lines[0].sku: 1 is not of type 'string'",
            "$.lines[0].price: -1 is less than the minimum of 0",
            "$.lines[1]: 'sku' is a required property",
            "$.lines[1].price: 'x' is not of type 'number'",
        ]
    )


def test_absolute_local_ref_and_local_defs_resolve(no_network: list[str]) -> None:
    schema = root_schema(total={"$ref": MONEY_URI}, n={"$ref": "#/$defs/n"})
    schema["$defs"] = {"n": {"type": "integer"}}
    probe = make_probe(schema=schema, schema_resources={MONEY_URI: MONEY_SCHEMA})
    assert judge(probe, '{"total": 3, "n": 1}').schema_valid is True
    assert judge(probe, '{"total": -3, "n": 1.5}').schema_errors == [
        "$.total: -3 is less than the minimum of 0",
        "$.n: 1.5 is not of type 'integer'",
    ]


@pytest.mark.parametrize(
    "ref",
    [
        "https://example.com/x.json",
        "http://127.0.0.1:9/x.json",
        "schemas/unknown.json",
        "driftmon-probes:///elsewhere.json",
        "file:///etc/passwd",
        "../outside.json",
    ],
)
def test_unknown_or_remote_ref_is_a_schema_error_without_network(
    no_network: list[str], ref: str
) -> None:
    probe = make_probe(schema=root_schema(total={"$ref": ref}))
    result = judge(probe, '{"total": 1}')
    assert result.parsed
    assert result.schema_valid is False
    assert result.verdict == "fail"
    assert len(result.schema_errors) == 1
    assert result.schema_errors[0].startswith("$: cannot resolve $ref")
    assert ref.rsplit("/", 1)[-1] in result.schema_errors[0]
    # The ref is only followed where the instance goes: other outputs are unaffected.
    assert judge(probe, "{}").schema_valid is True


def test_errors_before_an_unresolvable_ref_are_kept(no_network: list[str]) -> None:
    schema = {
        "$id": ROOT_URI,
        "type": "object",
        "required": ["a"],
        "properties": {"b": {"$ref": "https://example.com/x.json"}},
    }
    result = judge(make_probe(schema=schema), '{"b": 1}')
    assert result.schema_errors[0] == "$: 'a' is a required property"
    assert result.schema_errors[1].startswith("$: cannot resolve $ref")
    assert result.reason == "schema: 2 errors"


def test_root_without_id_still_validates() -> None:
    probe = make_probe(
        schema={
            "type": "object",
            "properties": {"a": {"$ref": "#/$defs/a"}},
            "$defs": {"a": {"type": "string"}},
        }
    )
    assert judge(probe, '{"a": "x"}').schema_valid is True
    assert judge(probe, '{"a": 1}').schema_errors == ["$.a: 1 is not of type 'string'"]


# --- format ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "good", "bad"),
    [
        ("date", "2024-01-31", ["31/01/2024", "2024-02-30", "2024-1-31", "２０２４-01-31"]),
        (
            "date-time",
            "2024-01-31T12:30:00Z",
            ["2024-01-31 12:30:00Z", "2024-01-31T25:00:00Z", "2024-01-31T12:30:00"],
        ),
        ("time", "23:59:60+01:00", ["24:00:00Z", "12:00"]),
        ("email", "ap@acme.example", ["acme.example", "a p@acme.example", "@acme"]),
        ("ipv4", "192.168.0.1", ["192.168.0.256", "192.168.000.1"]),
        ("ipv6", "::1", ["::g", "fe80::1%eth0"]),
        ("uuid", "123e4567-e89b-12d3-a456-426614174000", ["123e4567e89b12d3a456426614174000"]),
        ("uri", "https://acme.example/a?b=c", ["/relative/path", "https://a b"]),
        ("hostname", "api.acme.example", ["-bad.example", "a_b.example"]),
        ("duration", "P1Y2M3DT4H", ["P", "PT", "1Y", "P1H"]),
    ],
)
def test_formats_are_asserted(fmt: str, good: str, bad: list[str]) -> None:
    probe = make_probe(schema={"type": "string", "format": fmt})
    assert judge(probe, f'"{good}"').schema_valid is True
    for value in bad:
        result = judge(probe, f'"{value}"')
        assert result.schema_errors == [f"$: '{value}' is not a '{fmt}'"], value


def test_unknown_format_is_an_annotation_and_non_strings_pass() -> None:
    probe = make_probe(schema={"type": ["string", "number"], "format": "shoe-size"})
    assert judge(probe, '"anything"').schema_valid is True
    dated = make_probe(schema={"type": ["string", "number"], "format": "date"})
    assert judge(dated, "20240131").schema_valid is True


# --- compilation ----------------------------------------------------------------------------


def test_invalid_schema_is_a_probe_file_error() -> None:
    with pytest.raises(ProbeFileError, match=r"tests\.yaml: probes\.p\.schema: invalid JSON"):
        judge(make_probe(schema={"type": "nonsense"}), "{}")


def test_invalid_referenced_schema_is_a_probe_file_error() -> None:
    probe = make_probe(
        schema=root_schema(a={"$ref": "schemas/line.json"}),
        schema_resources={LINE_URI: {"minimum": "zero"}},
    )
    with pytest.raises(ProbeFileError, match=r"line\.json"):
        prepare(probe)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"expect": (check(0, field="a", regex="("),)}, "expect"),
        ({"expect": (check(0, field="a"),)}, "expect"),
        ({"expect": (check(0, field="a", range=("a", 1)),)}, "expect"),
        ({"response_format": "text", "extract": "(", "expect": ()}, "extract"),
        ({"response_format": "text", "expect": (check(0, field="a", equals=1),)}, "expect"),
    ],
)
def test_bad_checks_are_probe_file_errors(kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ProbeFileError, match=rf"probes\.p\.{key}"):
        prepare(make_probe(**kwargs))


def test_compiled_once_per_version() -> None:
    probe = make_probe(schema={"type": "object"})
    assert prepare(probe) is prepare(probe)
    twin = make_probe(schema={"type": "object"}, version=probe.version)
    assert prepare(twin).validator is prepare(probe).validator  # same content: reused


def test_same_version_different_content_is_not_confused() -> None:
    strict = make_probe(schema={"type": "object"}, version="shared")
    loose = make_probe(schema={"type": "array"}, version="shared")
    assert judge(strict, "{}").schema_valid is True
    assert judge(loose, "{}").schema_valid is False
    assert judge(strict, "{}").schema_valid is True


def test_fenced_output_is_judged_like_clean(no_network: list[str]) -> None:
    probe = make_probe(
        schema=root_schema(price={"$ref": "schemas/common/money.json"}),
        schema_resources={MONEY_URI: MONEY_SCHEMA},
    )
    result = judge(probe, '```json\n{"price": -1}\n```')
    assert result.format_kind is FormatKind.FENCED
    assert result.schema_errors == ["$.price: -1 is less than the minimum of 0"]
