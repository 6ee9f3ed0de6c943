"""Drift end to end: the real CLI against the simulated provider over a real socket, through
a model update that changes behaviour, and one that changes only the model's name."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.conftest import Project
from tests.e2e.test_replay import rows


def probe_lines(prefix: str, prompt: str, count: int = 30) -> str:
    """`count` probes <prefix>-00, -01, ...; `{i}` in the prompt is the same two digits."""
    return "".join(
        f'  - {{ id: {prefix}-{i:02d}, prompt: "{prompt.format(i=f"{i:02d}")}" }}\n'
        for i in range(count)
    )


PROBES = "set: invoices\ndefaults:\n" + (
    """  response_format: json_schema
  schema:
    type: object
    required: [total, currency]
    properties:
      total: { type: number }
      currency: { enum: [USD, EUR] }
  expect:
    - { field: total, equals: 1234.5 }
    - { field: currency, one_of: [USD] }
  track: [currency]
probes:
"""
    + probe_lines("inv", "Extract the invoice fields, case {i}.")
)

SCENARIO = """name: drift-e2e
seed: 11
rules:
  - name: invoice
    match: "invoice"
    fields: {{ total: 1234.5, currency: USD }}
    wrong_fields: {{ currency: EUR }}
phases:
  march:
    model: gpt-4o-2024-05-13
    fingerprint: fp_march
  june:
    model: gpt-4o-2024-08-06
    fingerprint: fp_june
{june_rules}"""

# The update ships a regression: 40% wrong currency and more output wrapped in a fence.
BEHAVIOUR_CHANGE = SCENARIO.format(
    june_rules="    rules:\n      invoice: { mix: { wrong_value: 0.4, fenced: 0.3 } }\n"
)
IDENTITY_ONLY = SCENARIO.format(june_rules="")
# Pinned, so the test does not move when the shipped defaults are re-tuned.
DRIFT_SETTINGS = 'timeout = "2s"\n[drift]\nbaseline_runs = 3\nwindow_runs = 1\npersistence = 2\n'
MARCH = "gpt-4o-2024-05-13 (fp_march)"
JUNE = "gpt-4o-2024-08-06 (fp_june)"


def run(project: Project, *args: str, expect: int = 0) -> dict[str, Any]:
    done = project.cli("run", "--json", "--samples", "3", *args)
    assert done.returncode == expect, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    [single] = data["runs"]
    assert single["status"] == "complete" and single["results"] == 90
    drift: dict[str, Any] = single["drift"]
    return drift


def drift_json(project: Project, *args: str) -> dict[str, Any]:
    done = project.cli("drift", "--json", *args)
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    return data


def test_behaviour_change_with_a_model_update_is_drift(make_project: Any) -> None:
    project: Project = make_project(PROBES, BEHAVIOUR_CHANGE, extra_config=DRIFT_SETTINGS)
    statuses = [run(project)["status"] for _ in range(3)]
    assert statuses == [f"building_baseline {k}/3" for k in (1, 2, 3)]
    assert drift_json(project) == {"verdicts": [], "evaluations": []}

    project.sim.set_phase("june")
    first = run(project, "--fail-on-drift")  # one window: significant, not yet persistent
    assert first["status"] == "evaluated" and first["drifted"] == []
    second = run(project, "--fail-on-drift", expect=3)
    assert "pass_rate" in second["drifted"]

    verdicts = drift_json(project)["verdicts"]
    drifted = {v["metric"]: v for v in verdicts if v["drifted"]}
    assert {"pass_rate", "format"} <= drifted.keys()
    pass_rate = drifted["pass_rate"]
    assert pass_rate["identity_change"] == {"from": MARCH, "to": JUNE}
    assert (pass_rate["target"], pass_rate["probe_set"]) == ("sim", "invoices")
    assert pass_rate["baseline"]["n"] == 270 and pass_rate["current"]["n"] == 90
    assert pass_rate["current"]["value"] < pass_rate["baseline"]["value"]
    assert pass_rate["p_adjusted"] < 0.01 and pass_rate["effect"] < 0
    assert all(v["family"] == "quality" for v in drifted.values())

    assert project.cli("drift", "--fail-on-drift").returncode == 3
    people = project.cli("drift")
    assert people.returncode == 0 and "DRIFT: " in people.stdout
    assert f"model changed: {MARCH} → {JUNE}" in people.stdout

    shown = json.loads(project.cli("baseline", "show", "--json").stdout)["baselines"]
    assert [(b["runs"], b["source"]) for b in shown] == [([1, 2, 3], "auto")]
    assert shown[0]["identity"] == {"model": "gpt-4o-2024-05-13", "fingerprint": "fp_march"}

    # The update is understood and accepted: june becomes the reference.
    accepted = project.cli("baseline", "accept")
    assert accepted.returncode == 0, accepted.stderr
    assert "run(s) 4, 5" in accepted.stdout
    assert project.cli("drift", "--fail-on-drift").returncode == 0
    after = run(project, "--fail-on-drift")
    assert after["status"] == "evaluated" and after["drifted"] == []
    assert after["identity_change"] is None


def test_a_new_model_name_alone_is_an_event_not_drift(make_project: Any) -> None:
    project: Project = make_project(PROBES, IDENTITY_ONLY, extra_config=DRIFT_SETTINGS)
    for _ in range(3):
        run(project)
    project.sim.set_phase("june")
    for _ in range(3):
        record = run(project, "--fail-on-drift")
        assert record["status"] == "evaluated" and record["drifted"] == []
    verdicts = drift_json(project)["verdicts"]
    assert verdicts and not [v["metric"] for v in verdicts if v["drifted"]]
    # Latency is wall-clock time on a shared machine: operational, and free to move.
    assert {v["state"] for v in verdicts if v["family"] == "quality"} <= {
        "not_significant",
        "no_meaningful_change",
        "insufficient_data",
    }
    assert all(v["identity_change"] == {"from": MARCH, "to": JUNE} for v in verdicts)
    assert project.cli("drift", "--fail-on-drift").returncode == 0
    events = rows(project.db_url, "SELECT from_identity_id, to_identity_id FROM identity_event")
    assert len(events) == 1


def test_unknown_names_and_runs_are_usage_errors(make_project: Any) -> None:
    project: Project = make_project(PROBES, IDENTITY_ONLY, extra_config=DRIFT_SETTINGS)
    for args in (
        ("drift", "--target", "nope"),
        ("drift", "--set", "nope"),
        ("baseline", "show", "--target", "nope"),
        ("baseline", "accept", "--run", "42"),
        ("baseline", "accept"),  # nothing has run yet
    ):
        done = project.cli(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "error" in done.stderr
    assert "nope" in project.cli("drift", "--target", "nope").stderr


def test_a_bad_drift_setting_is_refused_at_load_naming_file_key_and_line(
    make_project: Any,
) -> None:
    project: Project = make_project(PROBES, IDENTITY_ONLY, extra_config=DRIFT_SETTINGS)
    config = project.root / "driftmon.toml"
    text = config.read_text().replace("persistence = 2", "persistense = 2")
    config.write_text(text)
    line = text.splitlines().index("persistense = 2") + 1
    for args in (("run",), ("config", "check")):
        done = project.cli(*args)
        assert done.returncode == 2
        assert f"{config}:{line}: drift.persistense: unknown key" in done.stderr
    assert project.sim.stats()["total"] == 0


CODE_PROBES = "set: snippets\ndefaults:\n  response_format: text\nprobes:\n" + probe_lines(
    "code", "Write a Python function for task {i}."
)
CODE_SCENARIO = """name: fences-e2e
seed: 5
rules:
  - name: code
    match: "Python function"
    output: "def solve(values):\\n    return sorted(values)[0]"
phases:
  march:
    model: gpt-4-0314
  june:
    model: gpt-4-0613
    rules:
      code: { mix: { fenced: 0.9, valid: 0.1 } }
"""


def test_code_wrapped_in_fences_after_an_update_is_drift(make_project: Any) -> None:
    """The LLMDrift finding, on the wire: after the update the model wraps 90% of its code in
    Markdown fences. Every output still passes (a text probe without checks), so only the
    output's shape says what changed: code_fence_rate drifts on the first run after the swap."""
    project: Project = make_project(CODE_PROBES, CODE_SCENARIO, extra_config=DRIFT_SETTINGS)
    for _ in range(3):
        run(project)
    quiet = {v["metric"]: v for v in drift_json(project)["verdicts"]}
    assert quiet == {}  # still building the baseline
    project.sim.set_phase("june")
    first = run(project)
    assert first["status"] == "evaluated", first
    verdicts = {v["metric"]: v for v in drift_json(project)["verdicts"]}
    fences = verdicts["code_fence_rate"]
    assert fences["family"] == "quality" and fences["state"] in ("pending", "drifted")
    assert fences["baseline"]["value"] == 0.0 and fences["current"]["value"] > 0.8
    assert fences["p_adjusted"] < 1e-6
    assert verdicts["pass_rate"]["state"] != "drifted"
    second = run(project, "--fail-on-drift", expect=3)
    assert "code_fence_rate" in second["drifted"], second
