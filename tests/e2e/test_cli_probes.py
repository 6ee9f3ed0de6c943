"""`driftmon probes ...` end to end: the real CLI in a subprocess, a project on disk, and (for
`probes show`) results from a run against the simulated provider on a loopback socket."""

from __future__ import annotations

import difflib
import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pytest
from ruamel.yaml import YAML

from monitor.probes.loader import load_probe_file
from monitor.simulator.server import SimulatorServer
from tests.conftest import driftmon

SIM_KEY = "sim-key-e2e-probes-5c1d"
VERSION = re.compile(r"^[0-9a-f]{16}$")
T = TypeVar("T")

# What the simulator answers: the sky probe passes, the markup probe's answer carries rich
# markup, the invoice probe gets the expected fields; anything else (grass) gets the stock
# text answer "This is a simulated answer.", which has no [Yes]/[No] to extract.
SCENARIO = """\
name: e2e-cli-probes
seed: 3
rules:
  - name: sky
    match: "(?i)the sky"
    output: "The sky is blue. [Yes]"
  - name: markup
    match: "(?i)markup"
    output: "[bold]styled[/bold] answer [Yes]"
  - name: invoice
    match: "(?i)invoice"
    fields: { total: 1234.5, currency: USD }
"""

QA = r"""# Yes/no questions, answered in text.
set: qa
description: yes/no questions   # a trailing comment
defaults:
  samples: 2
  response_format: text

probes:
  # The sky probe: the simulator answers [Yes].
  - id: sky
    prompt: "Is the sky blue? Answer [Yes] or [No]."   # keep this comment
    extract: '\[(Yes|No)\]'
    expect:
      - { equals: "Yes" }

  # Nothing in the scenario matches grass.
  - id: grass
    prompt: 'Is grass red? Answer [Yes] or [No].'
    extract: '\[(Yes|No)\]'
    expect:
      - { equals: "No" }
"""

BILLING = """\
set: billing
probes:
  - id: acme
    prompt: "Extract the invoice total and currency as JSON."
    samples: 1
    schema:
      type: object
      required: [total, currency]
      properties:
        total: { type: number }
        currency: { enum: [USD, EUR] }
    expect:
      - { field: total, equals: 1234.5 }
"""


_TEMPLATE_DB: list[Path] = []  # a migrated database, set up once per module


@pytest.fixture(scope="module", autouse=True)
def template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    # Every project starts from a copy of one migrated database instead of migrating its own
    # in its first command (which `test_list_text_...` still does, through `init`).
    from monitor.store.db import make_engine
    from monitor.store.migrate import upgrade

    path = tmp_path_factory.mktemp("template") / "driftmon.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    _TEMPLATE_DB.append(path)
    yield
    _TEMPLATE_DB.clear()


def write_project(
    root: Path,
    *,
    base_url: str = "http://127.0.0.1:9/v1",
    sets: dict[str, str] | None = None,
    with_db: bool = True,
) -> Path:
    """driftmon.toml + probes/ (+ an empty migrated driftmon.db) in `root`; returns the probes
    folder."""
    probes = root / "probes"
    probes.mkdir(parents=True, exist_ok=True)
    if with_db:
        shutil.copyfile(_TEMPLATE_DB[0], root / "driftmon.db")
    for name, text in (sets if sets is not None else {"qa": QA, "billing": BILLING}).items():
        (probes / f"{name}.yaml").write_text(text, encoding="utf-8", newline="")
    (root / "driftmon.toml").write_text(
        f"""[storage]
url = "sqlite:///driftmon.db"

[probes]
paths = ["probes"]

[defaults]
samples = 1
concurrency = 4
timeout = "5s"

[[targets]]
name = "sim"
kind = "openai"
model = "gpt-4o"
base_url = "{base_url}"
api_key = {{ env = "SIM_KEY" }}
""",
        encoding="utf-8",
    )
    return probes


def cli(root: Path, *args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    """The CLI run from the project folder (so ./driftmon.toml is found), never a tty."""
    return driftmon(*args, cwd=root, env={"SIM_KEY": SIM_KEY, "COLUMNS": str(columns)})


def ok(done: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert done.returncode == 0, (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done


def usage_error(done: subprocess.CompletedProcess[str]) -> str:
    """Asserts exit code 2 without a traceback; returns stderr."""
    assert done.returncode == 2, (
        f"exit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stderr


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(done).stdout)


def listed(root: Path, *args: str) -> dict[tuple[str, str], dict[str, Any]]:
    """`probes list --json` keyed by (set, id), in output order."""
    return listing(cli(root, "probes", "list", "--json", *args))


def listing(done: subprocess.CompletedProcess[str]) -> dict[tuple[str, str], dict[str, Any]]:
    data = as_json(done)
    assert list(data) == ["probes"]
    return {(p["set"], p["id"]): p for p in data["probes"]}


def cli_all(root: Path, *commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Independent commands at once, in one project."""
    return parallel([partial(cli, root, *command) for command in commands])


def read(path: Path) -> str:
    with open(path, encoding="utf-8", newline="") as handle:
        return handle.read()


def diff(before: str, after: str) -> list[str]:
    """The changed lines only: '-old' / '+new'."""
    return [
        line
        for line in difflib.unified_diff(
            before.splitlines(keepends=True), after.splitlines(keepends=True), n=0
        )
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def parallel(calls: list[Callable[[], T]]) -> list[T]:
    """Independent CLI runs at once (each is mostly interpreter start-up)."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(lambda call: call(), calls))


def load_yaml(text: str) -> Any:
    return YAML(typ="safe", pure=True).load(text)


@pytest.fixture(scope="module")
def sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimulatorServer]:
    scenario = tmp_path_factory.mktemp("scenario") / "scenario.yaml"
    scenario.write_text(SCENARIO, encoding="utf-8")
    with SimulatorServer(scenario) as server:
        yield server


# --- probes list ------------------------------------------------------------------------------


def test_list_json_has_spec_keys_in_file_order_and_set_filter(tmp_path: Path) -> None:
    write_project(tmp_path)
    everything, only_qa_done, unknown_set, unknown_id = cli_all(
        tmp_path,
        ["probes", "list", "--json"],
        ["probes", "list", "--json", "--set", "qa"],
        ["probes", "list", "--set", "nope", "--json"],
        ["probes", "show", "skyy", "--json"],
    )
    probes = listing(everything)
    # Sets in sorted path order (billing.yaml, qa.yaml), probes in file order.
    assert list(probes) == [("billing", "acme"), ("qa", "sky"), ("qa", "grass")]
    for p in probes.values():
        assert {"id", "set", "version", "enabled"} <= set(p)
        assert VERSION.match(p["version"]), p
        assert p["enabled"] is True
    assert len({p["version"] for p in probes.values()}) == 3

    only_qa = listing(only_qa_done)
    assert list(only_qa) == [("qa", "sky"), ("qa", "grass")]
    assert only_qa[("qa", "sky")] == probes[("qa", "sky")]

    assert "'nope'" in usage_error(unknown_set)
    assert "'skyy'" in usage_error(unknown_id)


def test_list_text_shows_whole_ids_and_versions_when_piped(tmp_path: Path) -> None:
    # The starter set's ids and hashes must survive a pipe to grep/awk on an 80-column default.
    ok(driftmon("init", str(tmp_path)))
    as_json_done, as_text = cli_all(tmp_path, ["probes", "list", "--json"], ["probes", "list"])
    probes = listing(as_json_done)
    out = ok(as_text).stdout
    for (set_name, probe_id), p in probes.items():
        assert set_name in out
        assert probe_id in out, f"id {probe_id!r} cut in:\n{out}"
        assert p["version"] in out, f"version {p['version']!r} cut in:\n{out}"


# --- probes show, after runs against the simulator --------------------------------------------


def test_show_versions_and_results_after_runs(tmp_path: Path, sim: SimulatorServer) -> None:
    probes_dir = write_project(tmp_path, base_url=sim.url + "/v1")
    before = listed(tmp_path)
    for p in before.values():
        assert p.get("last_pass_rate") is None  # never run yet

    runs = as_json(cli(tmp_path, "run", "--json"))["runs"]
    assert sorted((r["probe_set"], r["status"], r["results"]) for r in runs) == [
        ("billing", "complete", 1),
        ("qa", "complete", 4),
    ]

    after_done, sky_done, text_done = cli_all(
        tmp_path,
        ["probes", "list", "--json"],
        ["probes", "show", "sky", "--json"],
        ["probes", "show", "sky"],
    )
    after = listing(after_done)
    assert after[("qa", "sky")]["last_pass_rate"] == 1.0
    assert after[("qa", "grass")]["last_pass_rate"] == 0.0
    assert after[("billing", "acme")]["last_pass_rate"] == 1.0

    sky = as_json(sky_done)
    assert (sky["id"], sky["set"], sky["enabled"]) == ("sky", "qa", True)
    assert sky["version"] == before[("qa", "sky")]["version"]
    assert [
        (v["version"], v["results"], v["pass_rate"], v["current"]) for v in sky["versions"]
    ] == [(sky["version"], 2, 1.0, True)]
    assert sorted((r["sample"], r["verdict"], r["target"]) for r in sky["recent"]) == [
        (0, "pass", "sim"),
        (1, "pass", "sim"),
    ]
    assert {r["output"] for r in sky["recent"]} == {"The sky is blue. [Yes]"}

    text = ok(text_done).stdout
    assert text.splitlines()[0].startswith(f"qa/sky  version {sky['version']}  enabled")

    # Editing the prompt starts a new series: a new version, the old one kept with its results.
    qa = probes_dir / "qa.yaml"
    qa.write_text(read(qa).replace("Is the sky blue?", "Is the sky blue today?"), "utf-8")
    edited = listed(tmp_path)
    assert edited[("qa", "sky")]["version"] != sky["version"]
    assert edited[("qa", "sky")]["last_pass_rate"] is None  # the new version has no results
    for key in [("qa", "grass"), ("billing", "acme")]:
        assert edited[key]["version"] == before[key]["version"]

    ok(cli(tmp_path, "run", "--set", "qa", "--json"))
    sky2 = as_json(cli(tmp_path, "probes", "show", "sky", "--json"))
    assert sky2["version"] == edited[("qa", "sky")]["version"]
    assert [(v["version"], v["results"], v["current"]) for v in sky2["versions"]] == [
        (sky["version"], 2, False),
        (sky2["version"], 2, True),
    ]
    assert len(sky2["recent"]) == 4


def test_show_prints_untrusted_text_literally(tmp_path: Path, sim: SimulatorServer) -> None:
    # Model output and failure reasons are data: `[bold]` and `\[` must reach the terminal as
    # written, not be eaten as rich markup (which could also forge hyperlinks on a tty).
    markup = r"""set: odd
probes:
  - id: markup
    prompt: "A markup question. Answer [Yes] or [No]."
    response_format: text
    extract: '\[(Yes|No)\]'
    expect:
      - { equals: "Yes" }
  - id: grass
    prompt: 'Is grass red? Answer [Yes] or [No].'
    response_format: text
    extract: '\[(Yes|No)\]'
"""
    write_project(tmp_path, base_url=sim.url + "/v1", sets={"odd": markup})
    ok(cli(tmp_path, "run", "--json"))

    problems: list[str] = []
    markup_done, grass_done = parallel(
        [
            partial(cli, tmp_path, "probes", "show", name, columns=300)
            for name in ("markup", "grass")
        ]
    )
    shown = ok(markup_done).stdout
    if "[bold]styled[/bold] answer [Yes]" not in shown:
        problems.append(f"model output not shown as written:\n{shown}")

    reason = r"extract /\[(Yes|No)\]/ did not match"  # what the judge says, stored as is
    shown = ok(grass_done).stdout
    if reason not in shown:
        problems.append(f"reason {reason!r} not shown as written:\n{shown}")
    assert problems == []


# --- probe versions ---------------------------------------------------------------------------


REFORMATTED_QA = r"""set: qa
description: something else entirely
defaults: {samples: 5, response_format: text}
probes:
- expect: [{equals: 'Yes'}]
  extract: "\\[(Yes|No)\\]"
  description: now described
  id: sky
  enabled: false
  prompt: >-
    Is the sky blue?
    Answer [Yes] or [No].
- {id: grass, prompt: "Is grass red? Answer [Yes] or [No].", extract: '\[(Yes|No)\]',
   expect: [{equals: No}], samples: 7}
"""


def test_version_ignores_formatting_comments_and_bookkeeping_keys(tmp_path: Path) -> None:
    # The same probes as QA: flow style, other quoting and key order, no comments, a folded
    # prompt, and changes to keys outside the version (description, samples, enabled). Then
    # what shapes the request or the judging: the prompt, a check.
    variants = {
        "original": QA,
        "reformatted": REFORMATTED_QA,
        "prompt": REFORMATTED_QA.replace("Is grass red?", "Is grass green?"),
        "expect": REFORMATTED_QA.replace("equals: No", "equals: 'Yes'"),
    }
    assert len(set(variants.values())) == len(variants)
    for name, text in variants.items():
        write_project(tmp_path / name, sets={"qa": text, "billing": BILLING})
    runs = parallel([partial(cli, tmp_path / v, "probes", "list", "--json") for v in variants])
    found = {name: listing(done) for name, done in zip(variants, runs, strict=True)}
    versions = {
        name: {k: p["version"] for k, p in probes.items()} for name, probes in found.items()
    }
    assert versions["reformatted"] == versions["original"]
    assert found["reformatted"][("qa", "sky")]["enabled"] is False
    grass = {versions[name][("qa", "grass")] for name in variants}
    assert len(grass) == 3, "a new prompt and a new check each make a new version"
    for name in ("prompt", "expect"):  # only the edited probe changes
        others = {k: v for k, v in versions[name].items() if k != ("qa", "grass")}
        assert others == {k: v for k, v in versions["original"].items() if k != ("qa", "grass")}


# --- probes validate --------------------------------------------------------------------------

INVOICE_SCHEMA_YAML = """\
# A schema in YAML: it lives in schemas/ and must never be read as a probe set.
type: object
required: [total]
properties:
  total: { type: number }
"""

USES_SCHEMA_FILE = """\
set: invoices
probes:
  - id: acme
    prompt: "Extract the invoice total as JSON."
    schema_file: schemas/invoice.yaml
"""


def test_validate_good_files_skips_schemas_folder_and_hidden_files(tmp_path: Path) -> None:
    probes_dir = write_project(tmp_path, sets={"qa": QA}, with_db=False)
    (probes_dir / "schemas").mkdir()
    (probes_dir / "schemas" / "invoice.yaml").write_text(INVOICE_SCHEMA_YAML, encoding="utf-8")
    (probes_dir / "nested" / "schemas").mkdir(parents=True)
    (probes_dir / "nested" / "schemas" / "other.yml").write_text("type: string\n", "utf-8")
    (probes_dir / "nested" / "invoices.yml").write_text(
        USES_SCHEMA_FILE.replace("schemas/invoice.yaml", "../schemas/invoice.yaml"), "utf-8"
    )
    (probes_dir / ".draft.yaml").write_text("not: [a, probe set\n", encoding="utf-8")

    done = ok(cli(tmp_path, "probes", "validate"))
    assert done.stdout.strip() == "2 file(s), 3 probe(s), 0 problem(s)"
    assert done.stderr == ""
    # Validation never touches the database.
    assert not (tmp_path / "driftmon.db").exists()


def test_validate_reports_every_bad_file_with_file_key_and_line(tmp_path: Path) -> None:
    probes_dir = write_project(tmp_path, sets={"qa": QA}, with_db=False)
    (probes_dir / "bad.yaml").write_text(
        """\
# a broken set
set: bad
probes:
  - id: ok-one
    prompt: "hello"
  - id: broken
    prompt: "x"
    samples: 0
""",
        encoding="utf-8",
    )
    (probes_dir / "worse.yaml").write_text(
        """\
set: worse
probes:
  - id: a
    prompt: "hello"
    expect:
      - { range: [5, 1] }
""",
        encoding="utf-8",
    )
    done = cli(tmp_path, "probes", "validate")
    stderr = usage_error(done)
    assert done.stdout.strip() == "3 file(s), 2 probe(s), 2 problem(s)"
    errors = [line for line in stderr.splitlines() if line.strip()]
    assert len(errors) == 2, stderr
    assert re.search(r"bad\.yaml:8: probes\[1\]\.samples: .*\b0\b", errors[0]), errors
    assert re.search(r"worse\.yaml:6: probes\[0\]\.expect\[0\]\.range: .*empty", errors[1]), errors
    assert not (tmp_path / "driftmon.db").exists()


def test_validate_path_arguments_without_config(tmp_path: Path) -> None:
    # No driftmon.toml anywhere: paths on the command line are enough.
    folder = tmp_path / "elsewhere"
    (folder / "schemas").mkdir(parents=True)
    (folder / "schemas" / "invoice.yaml").write_text(INVOICE_SCHEMA_YAML, encoding="utf-8")
    (folder / "invoices.yaml").write_text(USES_SCHEMA_FILE, encoding="utf-8")
    (folder / "qa.yaml").write_text(QA, encoding="utf-8")

    done = ok(driftmon("probes", "validate", "elsewhere", cwd=tmp_path))
    assert done.stdout.strip() == "2 file(s), 3 probe(s), 0 problem(s)"
    done = ok(driftmon("probes", "validate", "elsewhere/invoices.yaml", cwd=tmp_path))
    assert done.stdout.strip() == "1 file(s), 1 probe(s), 0 problem(s)"

    (folder / "qa.yaml").write_text(QA.replace("  - id: grass", "  - id: Grass"), "utf-8")
    stderr = usage_error(driftmon("probes", "validate", "elsewhere/qa.yaml", cwd=tmp_path))
    assert re.search(r"elsewhere/qa\.yaml:17: probes\[1\]\.id: ", stderr), stderr
    stderr = usage_error(driftmon("probes", "validate", "missing.yaml", cwd=tmp_path))
    assert "missing.yaml" in stderr


def test_validate_file_inside_configured_folder_uses_that_probes_root(tmp_path: Path) -> None:
    # probes/nested/invoices.yaml reaches ../schemas/: valid when loaded from the config, so
    # validating that one file must not report it as escaping its probes folder.
    probes_dir = write_project(tmp_path, sets={"qa": QA}, with_db=False)
    (probes_dir / "schemas").mkdir()
    (probes_dir / "schemas" / "invoice.yaml").write_text(INVOICE_SCHEMA_YAML, encoding="utf-8")
    (probes_dir / "nested").mkdir()
    (probes_dir / "nested" / "invoices.yaml").write_text(
        USES_SCHEMA_FILE.replace("schemas/invoice.yaml", "../schemas/invoice.yaml"), "utf-8"
    )
    ok(cli(tmp_path, "probes", "validate"))
    done = ok(cli(tmp_path, "probes", "validate", "probes/nested/invoices.yaml"))
    assert done.stdout.strip() == "1 file(s), 1 probe(s), 0 problem(s)"


# --- probes disable / enable / remove ---------------------------------------------------------


def test_disable_then_enable_edit_one_line_and_keep_comments(tmp_path: Path) -> None:
    probes_dir = write_project(tmp_path)
    qa = probes_dir / "qa.yaml"
    qa.chmod(0o640)
    original = read(qa)

    done = ok(cli(tmp_path, "probes", "disable", "sky"))
    assert "sky" in done.stdout
    disabled = read(qa)
    assert diff(original, disabled) == ["+    enabled: false\n"]
    # The new line sits right after the probe's id; everything else is byte-identical.
    assert disabled == original.replace("  - id: sky\n", "  - id: sky\n    enabled: false\n", 1)
    assert (qa.stat().st_mode & 0o777) == 0o640
    probes = listed(tmp_path)
    assert [(k, p["enabled"]) for k, p in probes.items()] == [
        (("billing", "acme"), True),
        (("qa", "sky"), False),
        (("qa", "grass"), True),
    ]

    ok(cli(tmp_path, "probes", "disable", "sky"))  # already disabled: nothing to change
    assert read(qa) == disabled

    ok(cli(tmp_path, "probes", "enable", "sky"))
    enabled = read(qa)
    assert diff(disabled, enabled) == ["-    enabled: false\n", "+    enabled: true\n"]
    reenabled = listed(tmp_path)
    assert reenabled[("qa", "sky")]["enabled"] is True
    # enabled is not part of the version: the series goes on.
    assert {k: p["version"] for k, p in reenabled.items()} == {
        k: p["version"] for k, p in probes.items()
    }
    assert (qa.stat().st_mode & 0o777) == 0o640
    assert not [p.name for p in probes_dir.iterdir() if p.name.startswith(".")]  # no temp files


def test_disable_changes_existing_enabled_value_keeping_its_comment(tmp_path: Path) -> None:
    text = QA.replace(
        "  - id: grass\n", "  - id: grass\n    enabled: true        # explicitly on\n"
    ).replace("\n", "\r\n")  # CRLF line endings are kept
    probes_dir = write_project(tmp_path, sets={"qa": text})
    ok(cli(tmp_path, "probes", "disable", "grass"))
    after = read(probes_dir / "qa.yaml")
    assert diff(text, after) == [
        "-    enabled: true        # explicitly on\r\n",
        "+    enabled: false        # explicitly on\r\n",
    ]
    assert listed(tmp_path)[("qa", "grass")]["enabled"] is False


def test_remove_takes_the_probe_and_its_comment(tmp_path: Path) -> None:
    probes_dir = write_project(tmp_path)
    qa = probes_dir / "qa.yaml"
    original = read(qa)
    ok(cli(tmp_path, "probes", "remove", "grass"))
    expected = original.replace(
        "\n  # Nothing in the scenario matches grass.\n"
        "  - id: grass\n"
        "    prompt: 'Is grass red? Answer [Yes] or [No].'\n"
        "    extract: '\\[(Yes|No)\\]'\n"
        "    expect:\n"
        '      - { equals: "No" }\n',
        "",
    )
    assert expected != original
    assert read(qa) == expected
    assert list(listed(tmp_path)) == [("billing", "acme"), ("qa", "sky")]

    stderr = usage_error(cli(tmp_path, "probes", "remove", "grass"))
    assert "'grass'" in stderr
    assert read(qa) == expected

    ok(cli(tmp_path, "probes", "remove", "sky"))  # the last probe leaves a valid empty set
    assert load_yaml(read(qa))["probes"] == []


# --- probes add -------------------------------------------------------------------------------


def test_add_from_options_appends_a_block_probe(tmp_path: Path) -> None:
    probes_dir = write_project(tmp_path)
    qa = probes_dir / "qa.yaml"
    original = read(qa)
    prompt = "Is water wet? Answer: [Yes] or [No] # \"quoted\" 'single'"
    ok(
        cli(
            tmp_path,
            "probes",
            "add",
            "--set",
            "qa",
            "--id",
            "water",
            "--prompt",
            prompt,
            "--format",
            "text",
            "--extract",
            r"\[(Yes|No)\]",
            "--expect",
            '{"equals": "Yes"}',
        )
    )
    after = read(qa)
    assert after.startswith(original)  # untouched lines are byte-identical
    added = after[len(original) :]
    assert added.startswith("\n  - id: water\n"), added  # blank line, like the other probes
    assert load_yaml(after)["probes"][-1] == {
        "id": "water",
        "prompt": prompt,
        "response_format": "text",
        "extract": r"\[(Yes|No)\]",
        "expect": [{"equals": "Yes"}],
    }
    list_done, show_done = cli_all(
        tmp_path, ["probes", "list", "--json"], ["probes", "show", "water", "--json"]
    )
    probes = listing(list_done)
    assert list(probes)[-1] == ("qa", "water")
    assert probes[("qa", "water")]["enabled"] is True
    shown = as_json(show_done)
    assert shown["definition"]["messages"] == [["user", prompt]]
    assert shown["definition"]["extract"] == r"\[(Yes|No)\]"

    # A YAML-looking string stays a string ('true', '123'), not a boolean or a number.
    ok(
        cli(
            tmp_path,
            "probes",
            "add",
            "--set",
            "qa",
            "--id",
            "tricky",
            "--prompt",
            "true",
            "--format",
            "text",
            "--expect",
            '{"equals": "true"}',
            "--expect",
            '{"one_of": ["123", "null", "2024-01-01", ""]}',
        )
    )
    tricky = load_yaml(read(qa))["probes"][-1]
    assert tricky["prompt"] == "true"
    assert tricky["expect"] == [{"equals": "true"}, {"one_of": ["123", "null", "2024-01-01", ""]}]


def test_add_from_file_and_to_a_new_set(tmp_path: Path) -> None:
    probes_dir = write_project(tmp_path)
    probe = {
        "id": "acme-currency",
        "prompt": "Extract the invoice currency as JSON.",
        "schema": {"type": "object", "properties": {"currency": {"enum": ["USD", "EUR"]}}},
        "expect": [{"field": "currency", "one_of": ["USD"]}],
        "track": ["currency"],
    }
    source = tmp_path / "probe.yaml"
    source.write_text(json.dumps(probe, indent=2), encoding="utf-8")  # JSON is YAML too
    billing = probes_dir / "billing.yaml"
    original = read(billing)
    for done in cli_all(
        tmp_path,
        ["probes", "add", "--set", "billing", "--from", str(source)],
        ["probes", "add", "--set", "fresh", "--id", "hello", "--prompt", "Say hi."],
    ):
        ok(done)
    after = read(billing)
    assert after.startswith(original)
    assert load_yaml(after)["probes"][-1] == probe
    created = probes_dir / "fresh.yaml"
    data = load_yaml(read(created))
    assert data["set"] == "fresh"
    assert data["probes"] == [{"id": "hello", "prompt": "Say hi."}]
    assert list(listed(tmp_path)) == [
        ("billing", "acme"),
        ("billing", "acme-currency"),
        ("fresh", "hello"),
        ("qa", "sky"),
        ("qa", "grass"),
    ]


def test_add_with_an_inline_schema_validates_and_runs_judged_by_it(
    tmp_path: Path, sim: SimulatorServer
) -> None:
    write_project(tmp_path, base_url=sim.url + "/v1", sets={"billing": BILLING})
    # The simulator answers invoice prompts with {"total": 1234.5, "currency": "USD"}.
    schemas = {
        "inline-usd": {"type": "object", "required": ["total"], "properties": {"total": {}}},
        "inline-gbp": {"type": "object", "properties": {"currency": {"const": "GBP"}}},
    }
    for probe_id, schema in schemas.items():
        ok(
            cli(
                tmp_path,
                "probes",
                "add",
                "--set",
                "billing",
                "--id",
                probe_id,
                "--prompt",
                "Extract the invoice total and currency; answer with JSON only.",
                "--format",
                "json",
                "--schema",
                json.dumps(schema),
                "--expect",
                '{"field": "total", "equals": 1234.5}',
            )
        )
    stored = {p["id"]: p for p in load_yaml(read(tmp_path / "probes" / "billing.yaml"))["probes"]}
    for probe_id, schema in schemas.items():
        # Written as the probe file format has it: a `schema` mapping in the probe.
        assert stored[probe_id]["schema"] == schema
        assert stored[probe_id]["response_format"] == "json"
    assert "0 problem(s)" in ok(cli(tmp_path, "probes", "validate")).stdout

    ok(cli(tmp_path, "run", "--set", "billing"))
    usd, gbp = (as_json(cli(tmp_path, "probes", "show", i, "--json")) for i in schemas)
    assert [r["verdict"] for r in usd["recent"]] == ["pass"]
    # The same answer fails the other probe: its own schema was the one judging it.
    [failed] = gbp["recent"]
    assert failed["verdict"] == "fail", failed


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        ('{"type": "objekt"}', "not a valid JSON Schema (Draft 2020-12)"),
        ('{"properties": {"a": {"minimum": "3"}}}', "'3' is not of type 'number'"),
        ('{"type": ', "--schema is not JSON"),
        ('["type"]', "--schema must be a JSON object"),
    ],
)
def test_add_refuses_a_bad_inline_schema(tmp_path: Path, schema: str, problem: str) -> None:
    probes_dir = write_project(tmp_path, with_db=False)
    before = read(probes_dir / "billing.yaml")
    args = ["probes", "add", "--set", "billing", "--id", "x", "--prompt", "p", "--format", "json"]
    assert problem in usage_error(cli(tmp_path, *args, "--schema", schema))
    assert read(probes_dir / "billing.yaml") == before


def test_add_refusals_leave_the_file_byte_identical(tmp_path: Path) -> None:
    probes_dir = write_project(tmp_path)
    qa = probes_dir / "qa.yaml"
    original = read(qa)
    base = ("probes", "add", "--set", "qa", "--format", "text")

    bad = tmp_path / "bad.yaml"
    bad.write_text("id: y\nprompt: p\nresponse_format: text\nsampels: 2\n", encoding="utf-8")
    duplicate, two_ops, not_json, unknown_key = parallel(
        [
            partial(cli, tmp_path, *base, "--id", "grass", "--prompt", "Again?"),
            partial(
                cli,
                *(tmp_path, *base, "--id", "x", "--prompt", "p"),
                "--expect",
                '{"equals": "Yes", "regex": "Y"}',
            ),
            partial(cli, tmp_path, *base, "--id", "x", "--prompt", "p", "--expect", "{not json"),
            partial(cli, tmp_path, "probes", "add", "--set", "qa", "--from", str(bad)),
        ]
    )
    stderr = usage_error(duplicate)
    assert "duplicate" in stderr and "'grass'" in stderr, stderr
    assert "qa.yaml" in stderr
    assert "equals" in usage_error(two_ops) and "regex" in two_ops.stderr
    assert "--expect" in usage_error(not_json)
    assert "sampels" in usage_error(unknown_key)
    assert read(qa) == original
    assert not [p.name for p in probes_dir.iterdir() if p.name.startswith(".")]


# --- ids in several sets ----------------------------------------------------------------------

OTHER = """\
set: other
probes:
  - id: sky
    prompt: "Is the sky green? Answer [Yes] or [No]."
    response_format: text
"""


def test_ambiguous_id_is_refused_and_set_selects(tmp_path: Path) -> None:
    probes_dir = write_project(tmp_path, sets={"qa": QA, "other": OTHER})
    qa, other = probes_dir / "qa.yaml", probes_dir / "other.yaml"
    for done in cli_all(tmp_path, ["probes", "disable", "sky"], ["probes", "remove", "sky"]):
        stderr = usage_error(done)
        assert "qa/sky" in stderr and "other/sky" in stderr, stderr
    assert read(qa) == QA and read(other) == OTHER

    ok(cli(tmp_path, "probes", "disable", "sky", "--set", "other"))
    assert read(qa) == QA
    assert diff(OTHER, read(other)) == ["+    enabled: false\n"]
    show_done, list_done = cli_all(
        tmp_path,
        ["probes", "show", "sky", "--set", "other", "--json"],
        ["probes", "list", "--json"],
    )
    shown = as_json(show_done)
    assert (shown["set"], shown["enabled"]) == ("other", False)
    probes = listing(list_done)
    assert probes[("qa", "sky")]["enabled"] is True
    assert probes[("other", "sky")]["enabled"] is False


def test_ambiguous_id_message_names_the_set_option(tmp_path: Path) -> None:
    write_project(tmp_path, sets={"qa": QA, "other": OTHER})
    commands = [
        ["probes", "disable", "sky"],
        ["probes", "remove", "sky"],
        ["probes", "show", "sky"],
    ]
    for command, done in zip(commands, cli_all(tmp_path, *commands), strict=True):
        stderr = usage_error(done)
        assert "--set" in stderr, f"{' '.join(command)}: {stderr}"


def test_qualified_set_slash_id_selects_the_probe(tmp_path: Path) -> None:
    # docs/probes.md: "A probe id found in several sets must be qualified: --set NAME or NAME/ID."
    probes_dir = write_project(tmp_path, sets={"qa": QA, "other": OTHER})
    ok(cli(tmp_path, "probes", "disable", "other/sky"))
    assert read(probes_dir / "qa.yaml") == QA
    assert diff(OTHER, read(probes_dir / "other.yaml")) == ["+    enabled: false\n"]
    ok(cli(tmp_path, "probes", "enable", "other/sky"))
    assert listed(tmp_path)[("other", "sky")]["enabled"] is True


# --- concurrent edits ---------------------------------------------------------------------------

CONCURRENT_ADDS = 8


def test_concurrent_adds_to_one_file_all_land(tmp_path: Path) -> None:
    # Each edit reads, changes and atomically replaces the file; without the edit lock the
    # processes read the same old text and every rename but the last drops the others' probe.
    probes_dir = write_project(tmp_path)
    qa = probes_dir / "qa.yaml"
    original = read(qa)
    ids = [f"added-{n}" for n in range(CONCURRENT_ADDS)]

    def add(probe_id: str) -> subprocess.CompletedProcess[str]:
        return driftmon(
            *("--config", str(tmp_path / "driftmon.toml"), "probes", "add", "--set", "qa"),
            *("--id", probe_id, "--prompt", f"Is {probe_id} here? [Yes] or [No]."),
            env={"SIM_KEY": SIM_KEY},
        )

    # All at once, so the processes' read-modify-write windows overlap.
    with ThreadPoolExecutor(max_workers=CONCURRENT_ADDS) as pool:
        for done in pool.map(add, ids):
            ok(done)

    after = read(qa)
    assert after.startswith(original)  # appended only: the original lines are untouched
    probes = load_probe_file(qa, probes_root=probes_dir).probes  # the file still loads
    assert sorted(p.id for p in probes) == sorted(["sky", "grass", *ids])
    assert list(listed(tmp_path)) == [
        ("billing", "acme"),
        ("qa", "sky"),
        ("qa", "grass"),
        *[("qa", probe_id) for probe_id in sorted(ids, key=[p.id for p in probes].index)],
    ]
    # No temporary file and no lock file is left behind.
    assert not [p.name for p in probes_dir.iterdir() if p.name.startswith(".")]
