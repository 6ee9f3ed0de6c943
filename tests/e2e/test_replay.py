"""`driftmon run` end to end: the real CLI, the simulated provider over a real socket, and
the database on both backends."""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from monitor.store.db import normalise_url
from tests.e2e.conftest import SECRET, Project

SCHEMA = """
    schema:
      type: object
      required: [total, currency]
      properties:
        total: { type: number }
        currency: { enum: [USD, EUR] }
    expect:
      - { field: total, equals: 1234.5 }
      - { field: currency, one_of: [USD] }
    track: [currency]"""

KINDS = [
    "valid",
    "schema_invalid",
    "wrong_value",
    "non_json",
    "fenced",
    "prose",
    "refusal",
    "empty",
]

KIND_PROBES = (
    "set: kinds\nprobes:\n"
    + "".join(
        f"  - id: {kind.replace('_', '-')}\n"
        f'    prompt: "Extract the invoice, case kind-{kind}."\n'
        f"    response_format: json_schema{SCHEMA}\n"
        for kind in KINDS
    )
    + """  - id: text-yes
    response_format: text
    prompt: "Is 17077 prime? case text-yes. Answer [Yes] or [No]."
    extract: "\\\\[(Yes|No)\\\\]"
    expect: [{ equals: "Yes" }]
  - id: text-no
    response_format: text
    prompt: "Is 17077 prime? case text-no. Answer [Yes] or [No]."
    extract: "\\\\[(Yes|No)\\\\]"
    expect: [{ equals: "Yes" }]
"""
)

KIND_SCENARIO = (
    "seed: 1\nmodel: gpt-4o-2024-05-13\nfingerprint: fp_one\nrules:\n"
    + "".join(
        f"  - name: {kind}\n    match: 'kind-{kind}\\b'\n    behaviour: {kind}\n"
        f"    fields: {{ total: 1234.5, currency: USD }}\n"
        f"    wrong_fields: {{ currency: EUR }}\n"
        for kind in KINDS
    )
    + """  - name: text-yes
    match: 'case text-yes'
    output: "17077 has no divisor up to its square root. [Yes]"
  - name: text-no
    match: 'case text-no'
    behaviour: wrong_value
    output: "17077 has no divisor up to its square root. [Yes]"
    wrong_output: "17077 is divisible by 7. [No]"
"""
)


def rows(db_url: str, sql: str) -> list[Any]:
    engine = create_engine(normalise_url(db_url))
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(sql)).all())
    finally:
        engine.dispose()


def results_by_probe(db_url: str) -> dict[str, Any]:
    found = rows(
        db_url,
        """
        SELECT pv.probe_id, r.verdict, r.format_kind, r.parsed, r.schema_valid, r.checks,
               r.refusal, r.answer, r.error_class, r.reason, r.tracked
        FROM result r JOIN probe_version pv ON pv.id = r.probe_version_id""",
    )
    return {r[0]: r for r in found}


def test_every_output_kind_is_judged_right(make_project: Any, db_url: str) -> None:
    project: Project = make_project(KIND_PROBES, KIND_SCENARIO, db_url=db_url)
    data = project.run_json()
    run = data["runs"][0]
    assert (run["results"], run["passed"], run["failed"], run["errors"]) == (10, 4, 6, 0)
    assert run["identity"] == {"model": "gpt-4o-2024-05-13", "fingerprint": "fp_one"}
    got = results_by_probe(project.db_url)
    verdicts = {probe: (r[1], r[2]) for probe, r in got.items()}
    assert verdicts == {
        "valid": ("pass", "clean"),
        "schema-invalid": ("fail", "clean"),
        "wrong-value": ("fail", "clean"),
        "non-json": ("fail", "not_json"),
        "fenced": ("pass", "fenced"),  # extracted and judged; the format is its own signal
        "prose": ("pass", "prose"),
        "refusal": ("fail", "not_json"),
        "empty": ("fail", "empty"),
        "text-yes": ("pass", "text"),
        "text-no": ("fail", "text"),
    }
    assert not got["schema-invalid"][4] and got["wrong-value"][4]  # schema_valid
    assert got["wrong-value"][5] in ([True, False], "[true, false]")  # second check failed
    assert got["refusal"][6] in (True, 1)
    assert got["text-no"][7] == "No" and got["text-yes"][7] == "Yes"
    assert "currency" in str(got["wrong-value"][10]) and "EUR" in str(got["wrong-value"][10])


FAULT_PROBES = "set: faults\nprobes:\n" + "".join(
    f"  - id: {name}\n    response_format: text\n    prompt: 'case {name}'\n"
    for name in ["server-error", "unauthorized", "malformed", "hang", "rate-limited", "healthy"]
)

FAULT_SCENARIO = """seed: 2
rules:
  - { name: server-error, match: 'case server-error', faults: [{ kind: server_error, rate: 1.0 }] }
  - name: unauthorized
    match: 'case unauthorized'
    faults: [{ kind: error, status: 401, rate: 1.0 }]
  - { name: malformed, match: 'case malformed', faults: [{ kind: malformed, rate: 1.0 }] }
  - { name: hang, match: 'case hang', faults: [{ kind: hang, rate: 1.0 }] }
  - name: rate-limited
    match: 'case rate-limited'
    output: "fine"
    faults: [{ kind: rate_limit, first_n: 2, retry_after: 1 }]
default: { output: "fine" }
"""


def test_provider_faults_are_errors_not_failures_and_retry_after_is_honoured(
    make_project: Any,
) -> None:
    project: Project = make_project(
        FAULT_PROBES, FAULT_SCENARIO, extra_config='retries = 2\ntimeout = "1s"'
    )
    data = project.run_json()
    run = data["runs"][0]
    assert (run["passed"], run["failed"], run["errors"]) == (2, 0, 4)
    assert run["error_classes"] == {"server": 1, "auth": 1, "protocol": 1, "timeout": 1}
    got = {
        r[0]: r
        for r in rows(
            project.db_url,
            """
        SELECT pv.probe_id, r.verdict, r.error_class, r.attempts, r.http_status, r.format_kind
        FROM result r JOIN probe_version pv ON pv.id = r.probe_version_id""",
        )
    }
    assert got["server-error"][1:4] == ("error", "server", 3)  # retried twice, then given up
    assert got["unauthorized"][1:5] == ("error", "auth", 1, 401)  # permanent: not retried
    assert got["malformed"][1:3] == ("error", "protocol")
    assert got["hang"][1:3] == ("error", "timeout")
    assert got["rate-limited"][1:4] == ("pass", None, 3)
    for name in ("server-error", "unauthorized", "malformed", "hang"):
        assert got[name][5] is None, "an error must never be judged"
    arrivals = project.sim.stats()["recent"]["rate-limited"]
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert len(gaps) == 2 and min(gaps) >= 1.0, f"Retry-After: 1 not waited out: {gaps}"


SLOW_SCENARIO = "seed: 3\ndefault: { output: 'fine', latency_ms: 40 }\n"
SLOW_PROBES = "set: slow\nprobes:\n" + "".join(
    f"  - {{ id: p{i:02d}, response_format: text, prompt: 'question {i}' }}\n" for i in range(50)
)


def test_run_killed_halfway_resumes_without_duplicates(make_project: Any, db_url: str) -> None:
    project: Project = make_project(SLOW_PROBES, SLOW_SCENARIO, db_url=db_url)
    planned = 50 * 4
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "monitor",
            "--config",
            str(project.root / "driftmon.toml"),
            "--db",
            project.db_url,
            "run",
            "--samples",
            "4",
        ],
        env={**os.environ, **project.env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    committed = 0
    while time.monotonic() < deadline and committed < planned // 3:
        time.sleep(0.05)
        try:
            committed = rows(project.db_url, "SELECT count(*) FROM result")[0][0]
        except Exception:  # tables not created yet
            committed = 0
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    committed = rows(project.db_url, "SELECT count(*) FROM result")[0][0]
    assert 0 < committed < planned, f"kill came too late or too early: {committed}"
    assert rows(project.db_url, "SELECT status FROM run") == [("running",)]
    sent_before = project.sim.stats()["total"]

    data = project.run_json("--samples", "4")
    run = data["runs"][0]
    assert run["resumed"] is True and run["status"] == "complete"
    assert run["results"] == planned
    sent_after = project.sim.stats()["total"] - sent_before
    assert sent_after == planned - committed, "only the missing samples may be sent again"
    total, distinct = rows(
        project.db_url,
        """
        SELECT count(*), count(DISTINCT probe_version_id * 1000 + sample_index) FROM result""",
    )[0]
    assert total == distinct == planned
    assert rows(project.db_url, "SELECT count(*) FROM run")[0][0] == 1


def test_bad_probe_file_exits_2_naming_file_key_and_line(make_project: Any) -> None:
    bad = KIND_PROBES.replace(
        "{ field: total, equals: 1234.5 }", "{ field: total, range: [10, 1] }", 1
    )
    project: Project = make_project(bad, KIND_SCENARIO)
    done = project.cli("run")
    assert done.returncode == 2
    probe_file = str(project.root / "probes" / "e2e.yaml")
    line = bad.splitlines().index("      - { field: total, range: [10, 1] }") + 1
    assert f"{probe_file}:{line}" in done.stderr
    assert "probes[0].expect[0].range" in done.stderr
    assert project.sim.stats()["total"] == 0


def test_bad_config_exits_2_naming_file_and_key(make_project: Any) -> None:
    project: Project = make_project(KIND_PROBES, KIND_SCENARIO)
    config = project.root / "driftmon.toml"
    config.write_text(config.read_text().replace("concurrency = 4", "concurrency = 0"))
    done = project.cli("run")
    assert done.returncode == 2
    assert f"{config}:" in done.stderr and "defaults.concurrency" in done.stderr


class CountingListener:
    """A TCP listener that only counts the connections it accepts."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.sock.settimeout(0.1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self.sock.close()


def test_remote_ref_is_refused_with_zero_connections(make_project: Any) -> None:
    listener = CountingListener()
    try:
        probes = f"""set: remote
probes:
  - id: remote-ref
    prompt: "Extract the invoice."
    schema:
      $ref: "http://127.0.0.1:{listener.port}/invoice.json"
"""
        project: Project = make_project(probes, "seed: 1\n")
        for args in (("run",), ("probes", "validate"), ("config", "check")):
            done = project.cli(*args)
            assert done.returncode == 2, (args, done.stdout, done.stderr)
            assert "e2e.yaml" in done.stderr and "$ref" in done.stderr
        time.sleep(0.3)
        assert listener.accepted == 0
        assert project.sim.stats()["total"] == 0
    finally:
        listener.close()


def test_secret_never_reaches_database_or_output(make_project: Any, tmp_path: Path) -> None:
    probes = FAULT_PROBES.replace("'case hang'", "'case healthy too'")
    project: Project = make_project(probes, FAULT_SCENARIO, extra_config="retries = 0")
    outputs = [
        project.cli("run"),
        project.cli("run", "--json"),
        project.cli("config", "check"),
        project.cli("config", "check", "--json"),
        project.cli("targets", "list", "--json"),
        project.cli("probes", "show", "unauthorized"),
    ]
    for done in outputs:
        assert done.returncode == 0, done.stderr
        assert SECRET not in done.stdout + done.stderr
    assert "env:SIM_KEY" in outputs[2].stdout  # where it comes from is shown
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("driftmon.db*"))
    assert len(stored) > 10_000 and SECRET.encode() not in stored
