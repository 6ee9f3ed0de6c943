"""Probe versions: stable under formatting; sensitive to what shapes the request or judging."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from monitor.probes.loader import load_probe_sets
from monitor.probes.model import Check, Message
from monitor.probes.versions import probe_version, version_of

BASE = """
set: s
description: the set
defaults:
  samples: 3
  params: { temperature: 0 }
probes:
  - id: inv
    prompt: "Extract the invoice."
    schema:
      type: object
      properties:
        total: { type: number }
        money: { $ref: "schemas/money.json" }
    expect:
      - { field: total, equals: 12.5 }
      - { field: total, range: [0, 100] }
    track: [total, money.currency]
  - id: prime
    response_format: text
    prompt: "Is 7 prime? Answer [Yes] or [No]."
    extract: "\\\\[(Yes|No)\\\\]"
    expect:
      - { equals: "Yes" }
"""

# The same content: other quoting, block vs flow, key order, comments, blank lines, indentation.
REFORMATTED = """
# a comment that changes nothing
description: the set, described differently   # not hashed
set: s

defaults:
    params:
        temperature: 0
    samples: 5          # samples are not hashed

probes:
-   prompt: Extract the invoice.
    id: inv
    enabled: false      # nor is enabled
    description: a description is not hashed either
    track: [money.currency, total]   # tracked fields are a set
    expect:
    -   equals: 12.5
        field: total
    -   range: [0, 100]
        field: total
    schema: {properties: {money: {$ref: 'schemas/money.json'}, total: {type: number}},
             type: object}

-   {id: prime, response_format: text, prompt: 'Is 7 prime? Answer [Yes] or [No].',
     extract: '\\[(Yes|No)\\]', expect: [{equals: 'Yes'}]}
"""

MONEY = {"type": "object", "properties": {"currency": {"$ref": "currency.json"}}}
CURRENCY = {"enum": ["USD", "EUR"]}


def versions(tmp_path: Path, text: str, *, currency: object = CURRENCY) -> dict[str, str]:
    root = tmp_path / "probes"
    (root / "schemas").mkdir(parents=True, exist_ok=True)
    (root / "schemas" / "money.json").write_text(json.dumps(MONEY), encoding="utf-8")
    (root / "schemas" / "currency.json").write_text(json.dumps(currency), encoding="utf-8")
    (root / "set.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    (probe_set,) = load_probe_sets([root])
    for probe in probe_set.probes:
        assert version_of(probe) == probe.version
    return {p.id: p.version for p in probe_set.probes}


def test_version_is_16_hex_digits(tmp_path: Path) -> None:
    for version in versions(tmp_path, BASE).values():
        assert len(version) == 16 and int(version, 16) >= 0


def test_formatting_comments_order_enabled_samples_do_not_change_it(tmp_path: Path) -> None:
    assert versions(tmp_path, REFORMATTED) == versions(tmp_path, BASE)


def test_moving_the_probes_folder_does_not_change_it(tmp_path: Path) -> None:
    assert versions(tmp_path / "a", BASE) == versions(tmp_path / "b" / "c", BASE)


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ('"Extract the invoice."', '"Extract the invoice!"', "inv"),
        ("set: s", "set: t", "both"),
        ("- id: inv", "- id: inv2", "inv2"),
        ("{ temperature: 0 }", "{ temperature: 0.5 }", "both"),
        ("total: { type: number }", "total: { type: integer }", "inv"),
        ("equals: 12.5", "equals: 12.6", "inv"),
        ("equals: 12.5", "one_of: [12.5]", "inv"),
        ("range: [0, 100]", "range: [0, 101]", "inv"),
        ("track: [total, money.currency]", "track: [total]", "inv"),
        ('"\\\\[(Yes|No)\\\\]"', '"\\\\[(Yes|No|Maybe)\\\\]"', "prime"),
        ('{ equals: "Yes" }', '{ equals: "No" }', "prime"),
        ("response_format: text", "response_format: text\n    params: { max_tokens: 9 }", "prime"),
        (
            'prompt: "Extract the invoice."',
            "messages: [{role: system, content: Be exact.},"
            " {role: user, content: Extract the invoice.}]",
            "inv",
        ),
    ],
)
def test_each_relevant_edit_changes_it(tmp_path: Path, old: str, new: str, changed: str) -> None:
    assert old in BASE
    before = versions(tmp_path, BASE)
    after = versions(tmp_path, BASE.replace(old, new, 1))
    if changed == "both":
        assert before["inv"] != after["inv"] and before["prime"] != after["prime"]
        return
    renamed = changed not in before
    assert after[changed] != before["inv" if renamed else changed]
    for other in before.keys() - {changed, "inv" if renamed else changed}:
        assert after[other] == before[other]


def test_expect_order_matters(tmp_path: Path) -> None:
    swapped = BASE.replace(
        "      - { field: total, equals: 12.5 }\n      - { field: total, range: [0, 100] }",
        "      - { field: total, range: [0, 100] }\n      - { field: total, equals: 12.5 }",
    )
    assert swapped != BASE
    assert versions(tmp_path, swapped)["inv"] != versions(tmp_path, BASE)["inv"]


def test_editing_a_referenced_schema_file_changes_it(tmp_path: Path) -> None:
    before = versions(tmp_path, BASE)
    after = versions(tmp_path, BASE, currency={"enum": ["USD", "EUR", "GBP"]})
    assert after["inv"] != before["inv"] and after["prime"] == before["prime"]


def test_json_and_json_schema_differ(tmp_path: Path) -> None:
    explicit = BASE.replace(
        '"Extract the invoice."', '"Extract the invoice."\n    response_format: json_schema'
    )
    as_json = BASE.replace(
        '"Extract the invoice."', '"Extract the invoice."\n    response_format: json'
    )
    assert versions(tmp_path, explicit)["inv"] == versions(tmp_path, BASE)["inv"]  # the default
    assert versions(tmp_path, as_json)["inv"] != versions(tmp_path, BASE)["inv"]


def test_the_canonical_form_is_pinned() -> None:
    """A change here re-versions every stored probe: bump HASH_FORMAT on purpose only."""
    version = probe_version(
        set_name="s",
        probe_id="p",
        messages=[Message("user", "Hi ✓")],
        response_format="json",
        schema={"$id": "driftmon-probes:///x.yaml?probe=p", "type": "object"},
        schema_resources={},
        expect=[Check(index=0, field="a", equals=1, has_equals=True)],
        track=["a"],
        extract=None,
        params={"temperature": 0},
    )
    assert version == "11407ef7b54ba6e8"
