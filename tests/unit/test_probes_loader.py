"""Probe set loading: every valid form, defaults, and errors naming file, key path and line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from monitor.errors import ProbeFileError
from monitor.probes.loader import find_probe_files, load_probe_file, load_probe_sets
from monitor.probes.model import Check, Message, ProbeSet

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "probes"
VALID = FIXTURES / "valid"
REPO = Path(__file__).resolve().parents[2]


def sets_by_name(sets: list[ProbeSet]) -> dict[str, ProbeSet]:
    return {s.name: s for s in sets}


def write(folder: Path, text: str, name: str = "set.yaml") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> ProbeFileError:
    path = write(tmp_path, text)
    with pytest.raises(ProbeFileError) as info:
        load_probe_sets([tmp_path])
    assert info.value.file == str(path)
    return info.value


def assert_located(err: ProbeFileError, *, key: str | None, line: int | None, problem: str) -> None:
    """The rendered message names file, line, key path and the problem (in that order)."""
    assert (err.key, err.line) == (key, line), str(err)
    assert problem in err.problem, str(err)
    where = f"{err.file}:{line}" if line else str(err.file)
    assert str(err).startswith(f"{where}: {key}: " if key else f"{where}: "), str(err)


# --- valid files ---------------------------------------------------------------------------


def test_folder_loads_every_yaml_sorted_and_skips_schemas() -> None:
    files = [p.relative_to(VALID).as_posix() for p in find_probe_files(VALID)]
    assert files == ["basic.yaml", "chat.yaml", "nested/orders.yaml"]  # schemas/*.yaml skipped
    names = [s.name for s in load_probe_sets([VALID])]
    assert names == ["basic", "chat", "orders"]


def test_inline_schema_defaults_and_checks() -> None:
    basic = sets_by_name(load_probe_sets([VALID]))["basic"]
    assert basic.description == "Plain prompts with inline schemas"
    assert basic.root == str(VALID)
    invoice, plain, nullable = basic.probes
    assert invoice.messages == (
        Message("user", "Extract the invoice fields from: ACME, total 1234.50 USD"),
    )
    assert invoice.response_format == "json_schema"
    assert invoice.schema is not None and invoice.schema["required"] == ["total", "currency"]
    assert invoice.expect == (
        Check(index=0, field="total", equals=1234.5, has_equals=True),
        Check(index=1, field="currency", one_of=("USD",)),
        Check(index=2, field="total", range=(0.0, 10000.0)),
        Check(index=3, regex="^\\{"),
    )
    assert invoice.track == ("currency", "total")
    assert invoice.params == {"temperature": 0, "max_tokens": 300}  # merged, the probe wins
    assert invoice.samples == 2 and invoice.enabled is True
    assert invoice.line == 11 and invoice.source_file == str(VALID / "basic.yaml")
    assert plain.response_format == "json" and plain.samples == 5 and plain.enabled is False
    assert basic.enabled_probes() == (invoice, nullable)
    assert nullable.expect == (Check(index=0, field="value", equals=None, has_equals=True),)


def test_messages_text_probes_and_set_name_from_file_name() -> None:
    chat = sets_by_name(load_probe_sets([VALID]))["chat"]
    prime, free = chat.probes
    assert [m.role for m in prime.messages] == ["system", "user"]
    assert prime.response_format == "text" and prime.schema is None
    assert prime.extract == "\\[(Yes|No)\\]"
    assert prime.expect == (Check(index=0, equals="Yes", has_equals=True),)
    assert prime.samples is None and prime.params == {}
    assert free.description.startswith("No checks") and free.expect == ()


def test_schema_file_with_nested_refs() -> None:
    orders = sets_by_name(load_probe_sets([VALID]))["orders"]
    from_file, inline = orders.probes
    assert from_file.schema is not None
    assert from_file.schema["$id"] == "driftmon-probes:///schemas/order.json"
    assert sorted(from_file.schema_resources) == [
        "driftmon-probes:///schemas/common/currency.yaml",
        "driftmon-probes:///schemas/common/money.json",
    ]
    assert inline.schema is not None
    assert inline.schema["$id"] == "driftmon-probes:///nested/orders.yaml?probe=order-inline"
    assert inline.schema_resources == from_file.schema_resources


def test_file_given_directly_uses_its_folder_as_root(tmp_path: Path) -> None:
    path = write(tmp_path / "sub", "probes:\n  - {id: a, prompt: hi}\n", name="one.yml")
    (only,) = load_probe_sets([path])
    assert (only.name, only.root) == ("one", str(tmp_path / "sub"))
    assert load_probe_file(path, probes_root=tmp_path).root == str(tmp_path)
    assert load_probe_sets([tmp_path / "sub"], root=tmp_path)[0].root == str(tmp_path)


def test_a_probe_file_linked_from_outside_the_root_is_not_read(tmp_path: Path) -> None:
    outside = write(tmp_path, "probes: []\n", name="outside.yaml")
    (tmp_path / "probes").mkdir()
    (tmp_path / "probes" / "link.yaml").symlink_to(outside)
    with pytest.raises(ProbeFileError, match="not inside its probes folder"):
        load_probe_sets([tmp_path / "probes"])


def test_a_file_named_twice_loads_once() -> None:
    sets = load_probe_sets([VALID, VALID / "chat.yaml"])
    assert [s.name for s in sets] == ["basic", "chat", "orders"]


def test_example_probe_set_in_the_repo_loads() -> None:
    (examples,) = load_probe_sets([REPO / "probes"])
    by_id = {p.id: p for p in examples.probes}
    assert set(by_id) == {
        "invoice-acme",
        "sentiment-mixed-review",
        "prime-17077",
        "prime-17078",
        "order-status-tool",
    }
    assert by_id["invoice-acme"].response_format == "json_schema"
    tool_probe = by_id["order-status-tool"]
    assert tool_probe.response_format == "tool_call"
    assert [t.name for t in tool_probe.tools] == ["lookup_order"]
    assert tool_probe.expect_tool == "lookup_order"

    assert by_id["sentiment-mixed-review"].response_format == "json"
    assert "sentiment" in by_id["sentiment-mixed-review"].track
    assert by_id["prime-17078"].params == {"temperature": 0, "max_tokens": 800}


def test_null_clears_a_default(tmp_path: Path) -> None:
    write(
        tmp_path,
        """
        defaults: { schema: { type: object }, params: { temperature: 0 } }
        probes:
          - { id: j, prompt: x }
          - { id: t, prompt: x, schema: ~, params: ~, response_format: text }
    """,
    )
    json_probe, text_probe = load_probe_sets([tmp_path])[0].probes
    assert json_probe.response_format == "json_schema" and json_probe.params == {"temperature": 0}
    assert text_probe.schema is None and text_probe.params == {}


def test_a_probe_replaces_a_defaulted_alternative(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"type": "object", "required": ["a"]}')
    write(
        tmp_path,
        """
        defaults:
          prompt: the default prompt
          schema: { type: object }
        probes:
          - { id: a }
          - id: b
            messages: [{ role: user, content: own }]
            schema_file: s.json
    """,
    )
    a, b = load_probe_sets([tmp_path])[0].probes
    assert a.messages == (Message("user", "the default prompt"),) and a.schema_resources == {}
    assert b.messages == (Message("user", "own"),)
    assert b.schema is not None and b.schema["required"] == ["a"]


def test_a_check_without_field_on_a_json_probe_judges_the_whole_document(tmp_path: Path) -> None:
    write(tmp_path, "probes:\n  - {id: a, prompt: x, schema: {}, expect: [{equals: [1, 2]}]}\n")
    (probe,) = load_probe_sets([tmp_path])[0].probes
    assert probe.expect == (Check(index=0, equals=[1, 2], has_equals=True),)


# --- errors: each names file, key path and line --------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "line", "problem"),
    [
        (
            "set: x\nprobes:\n  - id: a\n    prompt: hi\n    promt: typo\n",
            "probes[0].promt",
            5,
            "did you mean 'prompt'?",
        ),
        ("set: x\ndescripton: d\nprobes: []\n", "descripton", 2, "did you mean 'description'?"),
        ("set: Bad Name\nprobes: []\n", "set", 1, "[a-z0-9._-]+"),
        ("probes:\n  - id: A_1\n    prompt: hi\n", "probes[0].id", 2, "[a-z0-9._-]+"),
        ("probes:\n  - prompt: hi\n", "probes[0]", 2, "needs an id"),
        (
            "probes:\n  - id: a\n  - id: b\n    prompt: x\n",
            "probes[0]",
            2,
            "needs a prompt or messages",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    messages: [{role: user, content: y}]\n",
            "probes[0].messages",
            4,
            "either prompt or messages",
        ),
        (
            "probes:\n  - id: a\n    messages:\n      - {role: user, content: hi}\n"
            "      - {role: robot, content: hi}\n",
            "probes[0].messages[1].role",
            5,
            "role must be",
        ),
        (
            "probes:\n  - {id: a, prompt: x}\n  - {id: b, prompt: y}\n  - {id: a, prompt: z}\n",
            "probes[2].id",
            4,
            "duplicate probe id 'a'",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema: {type: object}\n    expect:\n"
            "      - {field: t, equals: 1}\n      - {field: t, range: [5, 1]}\n",
            "probes[0].expect[1].range",
            7,
            "low must be <= high",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema: {type: object}\n    expect:\n"
            "      - {field: t, range: [0, big]}\n",
            "probes[0].expect[0].range",
            6,
            "two numbers",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema: {type: object}\n    expect:\n"
            "      - {field: t, equals: 1, one_of: [1]}\n",
            "probes[0].expect[0]",
            6,
            "exactly one of",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema: {type: object}\n    expect:\n"
            "      - {field: t, regex: '(unclosed'}\n",
            "probes[0].expect[0].regex",
            6,
            "not a valid regular expression",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema: {type: object}\n    expect:\n"
            "      - {one_of: []}\n",
            "probes[0].expect[0].one_of",
            6,
            "non-empty list",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    expect:\n      - {feild: t, equals: 1}\n",
            "probes[0].expect[0].feild",
            5,
            "did you mean 'field'?",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    response_format: json\n",
            "probes[0].response_format",
            4,
            "needs a schema",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    response_format: xml\n",
            "probes[0].response_format",
            4,
            "must be one of json_schema, json, text",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    response_format: text\n    schema: {}\n",
            "probes[0].schema",
            5,
            "a text probe has no schema",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    extract: 'no group'\n",
            "probes[0].extract",
            4,
            "capturing group",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    extract: '(['\n",
            "probes[0].extract",
            4,
            "not a valid regular expression",
        ),
        (
            # valid for the `regex` package that judges, but not Python's `re` syntax
            "probes:\n  - id: a\n    prompt: x\n    extract: '(\\p{L}+)'\n",
            "probes[0].extract",
            4,
            "not a valid regular expression",
        ),
        ("probes:\n  - id: a\n    prompt: x\n    samples: 0\n", "probes[0].samples", 4, ">= 1"),
        ("probes:\n  - id: a\n    prompt: x\n    samples: true\n", "probes[0].samples", 4, ">= 1"),
        (
            "probes:\n  - id: a\n    prompt: x\n    enabled: 'no'\n",
            "probes[0].enabled",
            4,
            "true or false",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    params: [1]\n",
            "probes[0].params",
            4,
            "must be a mapping",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema: {type: object}\n"
            "    track: [a, 'a..b']\n",
            "probes[0].track[1]",
            5,
            "dotted field path",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    track: [a]\n",
            "probes[0].track",
            4,
            "no JSON fields to track",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema:\n      type: object\n"
            "      properties: {a: {type: 12}}\n",
            "probes[0].schema.properties.a.type",
            6,
            "invalid JSON Schema",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema: schemas/x.json\n",
            "probes[0].schema",
            4,
            "write schema_file",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema:\n      $schema: "
            "http://json-schema.org/draft-07/schema#\n",
            "probes[0].schema.$schema",
            5,
            "Draft 2020-12",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema: {type: object}\n    expect:\n"
            "      - {field: d, equals: 2024-01-15}\n",
            "probes[0].expect[0].equals",
            6,
            "quote it",
        ),
        ("defaults:\n  id: x\nprobes: []\n", "defaults.id", 2, "cannot have a default"),
        (
            "defaults:\n  samples: -1\nprobes:\n  - {id: a, prompt: x}\n",
            "defaults.samples",
            2,
            ">= 1",
        ),
        (
            "defaults:\n  expect: [{field: t, equals: 1}]\nprobes:\n  - {id: a, prompt: x}\n",
            "defaults.expect[0].field",
            2,
            "a text probe has no JSON fields",
        ),
        ("set: x\nprobes: {id: a}\n", "probes", 2, "must be a list"),
        ("set: x\n", "probes", 1, "needs a `probes:` list"),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema_file: /etc/passwd\n",
            "probes[0].schema_file",
            4,
            "absolute path",
        ),
        (
            "probes:\n  - id: a\n    prompt: x\n    schema_file: missing.json\n",
            "probes[0].schema_file",
            4,
            "no such schema file",
        ),
    ],
)
def test_errors_name_file_key_and_line(
    tmp_path: Path, text: str, key: str, line: int, problem: str
) -> None:
    assert_located(load_error(tmp_path, text), key=key, line=line, problem=problem)


def test_yaml_syntax_error_has_a_line(tmp_path: Path) -> None:
    err = load_error(tmp_path, "set: x\nprobes:\n  - id: a\n    prompt: 'unclosed\n")
    assert err.line is not None and "invalid YAML" in err.problem


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    err = load_error(tmp_path, "probes:\n  - id: a\n    prompt: x\n    prompt: y\n")
    assert err.line == 4 and "duplicate" in err.problem


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    assert "empty" in load_error(tmp_path, "# nothing yet\n").problem
    assert "must be a mapping" in load_error(tmp_path, "- id: a\n").problem


def test_invalid_file_name_as_set_name(tmp_path: Path) -> None:
    path = write(tmp_path, "probes: []\n", name="My Probes.yaml")
    with pytest.raises(ProbeFileError, match=r"My Probes.yaml:1: set: .*add `set: NAME`"):
        load_probe_sets([path])


def test_duplicate_set_names_name_both_files(tmp_path: Path) -> None:
    first = write(tmp_path, "set: same\nprobes: []\n", name="a.yaml")
    second = write(tmp_path, "description: d\nset: same\nprobes: []\n", name="b.yaml")
    with pytest.raises(ProbeFileError) as info:
        load_probe_sets([tmp_path])
    assert str(info.value).startswith(f"{second}:2: set: set 'same' is also defined in {first}:1")


def test_missing_path_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ProbeFileError, match="no such probe file or folder"):
        load_probe_sets([tmp_path / "nope"])


def test_default_error_points_at_the_defaults_line(tmp_path: Path) -> None:
    err = load_error(
        tmp_path,
        """
        defaults:
          response_format: json
        probes:
          - id: a
            prompt: x
    """,
    )
    assert_located(err, key="defaults.response_format", line=2, problem="needs a schema")
