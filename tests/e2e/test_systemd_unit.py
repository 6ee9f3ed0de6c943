"""systemd/driftmon.service: its directives, its exposure score, and the daemon under its filters.

`systemd-analyze security --offline=yes` scores the unit file without a running systemd, and
`systemd-analyze verify` checks it. Both come with Debian's `systemd` package; the tests that
need them are skipped, with the reason, where it is not installed.

systemd cannot start the unit here (it is not PID 1), so the last tests rebuild the unit's
seccomp filters with libseccomp (SystemCallFilter=, SystemCallErrorNumber=,
MemoryDenyWriteExecute=, as systemd builds them) and run the real `driftmon demo`, `db upgrade`
and `serve` under them: a Python library that needed a blocked system call or writable and
executable memory would fail there as it would under systemd.

Run as a script, this file is that launcher:
    python tests/e2e/test_systemd_unit.py systemd/driftmon.service COMMAND [ARG...]
"""

from __future__ import annotations

import ctypes
import errno
import json
import mmap
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "driftmon.service"
OPERATIONS = ROOT / "docs" / "operations.md"
MAX_EXPOSURE = 2.5
DEFAULT_DRAIN_S = 30  # server.drain default
SANDBOX_READY = "[unit-filters] loaded"


# --- the unit file ---------------------------------------------------------------------------
def parse_unit(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Section -> [(key, value)] in order; repeated keys kept (systemd's own semantics)."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None, f"{path}: {line!r} is outside any section"
        key, sep, value = line.partition("=")
        assert sep, f"{path}: {line!r} is not KEY=VALUE"
        current.append((key.strip(), value.strip()))
    return sections


def values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


def one(section: list[tuple[str, str]], key: str) -> str:
    found = values(section, key)
    assert len(found) == 1, f"expected exactly one {key}=, found {found}"
    return found[0]


def seconds(value: str) -> float:
    """A systemd time span such as "90s", "2min", "1min 30s" or "90"."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", value)
    assert parts, f"not a time span: {value!r}"
    return sum(float(n) * units[u] for n, u in parts)


def test_the_unit_has_the_required_directives() -> None:
    unit = parse_unit(UNIT)
    service = unit["Service"]
    config = "--config /etc/driftmon/driftmon.toml"

    assert one(service, "Type") == "exec"
    assert one(service, "DynamicUser") == "yes" or values(service, "User")
    assert one(service, "StateDirectory") == "driftmon"
    assert one(service, "ConfigurationDirectory") == "driftmon"
    pre = values(service, "ExecStartPre")
    assert any("db upgrade" in cmd and config in cmd for cmd in pre), pre
    start = one(service, "ExecStart")
    assert start.startswith("/opt/driftmon/bin/driftmon ") and config in start
    assert start.split()[-1] == "serve"
    assert one(service, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(service, "KillSignal") == "SIGTERM"
    assert seconds(one(service, "TimeoutStopSec")) >= DEFAULT_DRAIN_S + 60
    assert one(service, "Restart") == "on-failure"
    assert seconds(one(service, "RestartSec")) > 0

    expected = {
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "PrivateDevices": "yes",
        "NoNewPrivileges": "yes",
        "CapabilityBoundingSet": "",
        "SystemCallArchitectures": "native",
        "LockPersonality": "yes",
        "MemoryDenyWriteExecute": "yes",
        "ProtectKernelTunables": "yes",
        "ProtectKernelModules": "yes",
        "ProtectKernelLogs": "yes",
        "ProtectControlGroups": "yes",
        "ProtectClock": "yes",
        "ProtectHostname": "yes",
        "RestrictNamespaces": "yes",
        "RestrictRealtime": "yes",
        "RestrictSUIDSGID": "yes",
        "UMask": "0077",
    }
    for key, value in expected.items():
        assert one(service, key) == value, key
    families = one(service, "RestrictAddressFamilies").split()
    assert sorted(families) == ["AF_INET", "AF_INET6", "AF_UNIX"]
    filters = values(service, "SystemCallFilter")
    assert filters[0] == "@system-service", filters
    removed = {name for f in filters if f.startswith("~") for name in f[1:].split()}
    assert {"@privileged", "@resources"} <= removed, filters

    credentials = [v.partition(":") for v in values(service, "LoadCredential")]
    assert credentials, "no LoadCredential="
    docs = OPERATIONS.read_text(encoding="utf-8")
    for name, sep, source in credentials:
        assert sep and source.startswith("/"), f"LoadCredential={name}: needs NAME:/PATH"
        assert f"/run/credentials/driftmon.service/{name}" in docs, name


# --- systemd-analyze -------------------------------------------------------------------------
def systemd_analyze() -> str:
    tool = shutil.which("systemd-analyze")
    if tool is None:
        pytest.skip(
            "systemd-analyze is not installed (Debian package `systemd`: apt-get install systemd)"
        )
    return tool


def test_the_exposure_score_is_at_most_2_5() -> None:
    tool = systemd_analyze()
    done = subprocess.run(
        [tool, "security", "--offline=yes", str(UNIT)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if "--offline" in done.stderr and done.returncode != 0:
        pytest.skip(f"this systemd-analyze cannot score unit files offline: {done.stderr.strip()}")
    summary = r"Overall exposure level for driftmon\.service: (\d+\.\d+) (\w+)"
    match = re.search(summary, done.stdout)
    assert match, f"no score in the output:\n{done.stdout}\n{done.stderr}"
    score = float(match.group(1))
    assert score <= MAX_EXPOSURE, f"exposure {score} > {MAX_EXPOSURE}:\n{done.stdout}"

    # docs/operations.md quotes the summary line with the systemd version that printed it.
    version = subprocess.run([tool, "--version"], capture_output=True, text=True, timeout=60)
    docs = OPERATIONS.read_text(encoding="utf-8")
    recorded = re.search(r"systemd (\d+) \(", docs)
    assert recorded, "docs/operations.md does not say which systemd scored the unit"
    if version.stdout.startswith(f"systemd {recorded.group(1)} "):
        assert match.group(0) in docs, f"docs/operations.md should quote: {match.group(0)}"


def test_systemd_analyze_verify_reports_nothing(tmp_path: Path) -> None:
    tool = systemd_analyze()
    # verify checks that every Exec*= program exists: stand in for /opt/driftmon/bin/driftmon.
    stub = tmp_path / "driftmon"
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    text = UNIT.read_text(encoding="utf-8").replace("/opt/driftmon/bin/driftmon", str(stub))
    copy = tmp_path / "driftmon.service"
    copy.write_text(text, encoding="utf-8")
    done = subprocess.run(
        [tool, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stdout and not done.stderr, (
        f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    )


# --- the unit's seccomp filters, rebuilt ------------------------------------------------------
class _Cmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


_ALLOW = 0x7FFF0000
_KILL_PROCESS = 0x80000000
_CMP_MASKED_EQ = 7


def _act_errno(number: int) -> int:
    return 0x00050000 | (number & 0xFFFF)


def _libseccomp() -> Any:
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_Cmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    return lib


def _syscall_groups() -> dict[str, list[str]]:
    """The groups (@system-service, ...) as this systemd defines them."""
    out = subprocess.run(
        ["systemd-analyze", "syscall-filter"], capture_output=True, text=True, check=True
    ).stdout
    groups: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in out.splitlines():
        if line and not line[0].isspace():
            current = groups.setdefault(line, []) if line.startswith("@") else None
        elif current is not None and line.strip() and not line.strip().startswith("#"):
            current.append(line.strip())
    return groups


def _expand(names: list[str], groups: dict[str, list[str]]) -> set[str]:
    out: set[str] = set()
    for name in names:
        out |= _expand(groups[name], groups) if name.startswith("@") else {name}
    return out


def exec_under_unit_filters(unit: Path, argv: list[str]) -> None:
    """Load the seccomp filters systemd would build for `unit`, check them, exec `argv`."""
    service = parse_unit(unit)["Service"]
    groups = _syscall_groups()
    filters = values(service, "SystemCallFilter")
    assert filters and not filters[0].startswith("~"), "only an allow list is rebuilt here"
    allowed = _expand(["@default"], groups)  # systemd adds @default to every allow list
    for item in filters:
        names = _expand(item.lstrip("~").split(), groups)
        allowed = allowed - names if item.startswith("~") else allowed | names
    errno_name = values(service, "SystemCallErrorNumber")
    default = _act_errno(getattr(errno, errno_name[-1])) if errno_name else _KILL_PROCESS

    lib = _libseccomp()
    contexts = []
    if values(service, "MemoryDenyWriteExecute") == ["yes"]:
        # As systemd: no mapping both writable and executable, no mprotect() adding PROT_EXEC.
        mdwe = lib.seccomp_init(_ALLOW)
        prot_wx = mmap.PROT_WRITE | mmap.PROT_EXEC
        shm_exec = 0o100000
        rules = [
            ("mmap", prot_wx, prot_wx),
            ("mprotect", mmap.PROT_EXEC, mmap.PROT_EXEC),
            ("pkey_mprotect", mmap.PROT_EXEC, mmap.PROT_EXEC),
            ("shmat", shm_exec, shm_exec),
        ]
        for name, mask, value in rules:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            cmp = (_Cmp * 1)(_Cmp(2, _CMP_MASKED_EQ, mask, value))
            assert lib.seccomp_rule_add_array(mdwe, _act_errno(errno.EPERM), number, 1, cmp) == 0
        contexts.append(mdwe)
    allow_list = lib.seccomp_init(default)
    count = 0
    for name in sorted(allowed):
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number >= 0:  # skip names this architecture does not have
            assert lib.seccomp_rule_add_array(allow_list, _ALLOW, number, 0, None) == 0, name
            count += 1
    contexts.append(allow_list)  # last: it no longer allows seccomp() itself
    for ctx in contexts:
        assert lib.seccomp_load(ctx) == 0, f"seccomp_load: {os.strerror(ctypes.get_errno())}"

    # The filters bite: W+X memory and a call from @resources are refused.
    if values(service, "MemoryDenyWriteExecute") == ["yes"]:
        try:
            mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        except PermissionError:
            pass
        else:
            raise AssertionError("a writable and executable mapping was allowed")
    try:
        os.sched_setaffinity(0, os.sched_getaffinity(0))
    except PermissionError:
        pass
    else:
        raise AssertionError("sched_setaffinity (@resources) was allowed")
    print(f"{SANDBOX_READY}: {count} system calls allowed", file=sys.stderr, flush=True)
    os.execv(argv[0], argv)


def _seccomp_or_skip() -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("seccomp filters exist only on Linux")
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed: it lists the system call groups")
    try:
        _libseccomp()
    except OSError as exc:
        pytest.skip(f"libseccomp.so.2 is not installed (Debian package libseccomp2): {exc}")


def _filtered(*argv: str) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), str(UNIT), *argv]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DRIFTMON_CONFIG"}
    env["PYTHONPATH"] = str(ROOT)
    return env


DRIFTMON = [sys.executable, "-m", "monitor"]


@pytest.mark.slow
def test_the_demo_runs_under_the_units_seccomp_filters(tmp_path: Path) -> None:
    """numpy, scipy, SQLite in WAL mode, HTTP client and server, a child process: all of it
    runs with the unit's system call allow list and MemoryDenyWriteExecute=yes."""
    _seccomp_or_skip()
    done = subprocess.run(
        _filtered(*DRIFTMON, "demo", "--dir", str(tmp_path / "demo")),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env=_env(),
    )
    assert SANDBOX_READY in done.stderr, done.stderr
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    db = sqlite3.connect(tmp_path / "demo" / "driftmon.db")
    try:
        assert db.execute("SELECT count(*) FROM result").fetchone()[0] > 0
    finally:
        db.close()


PROBES = """set: unit
probes:
  - id: prime
    response_format: text
    prompt: "Is 17077 prime? Answer [Yes] or [No]."
    extract: "\\\\[(Yes|No)\\\\]"
    expect: [{ equals: "Yes" }]
"""

SCENARIO = """seed: 1
model: gpt-4o-2024-05-13
default: { output: "17077 has no divisor up to its square root. [Yes]" }
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.mark.slow
def test_serve_runs_reloads_and_stops_under_the_units_seccomp_filters(make_project: Any) -> None:
    """The unit's own sequence: ExecStartPre (db upgrade), ExecStart (serve), ExecReload
    (SIGHUP), stop (SIGTERM, exit 0 well within TimeoutStopSec)."""
    _seccomp_or_skip()
    from monitor.cli.main import COMMANDS

    if "serve" not in COMMANDS:
        pytest.skip("this driftmon has no `serve` command")
    port = _free_port()
    project = make_project(
        PROBES,
        SCENARIO,
        extra_config=f'timeout = "2s"\n[server]\nlisten = "127.0.0.1:{port}"\ndrain = "5s"\n',
    )
    config = str(project.root / "driftmon.toml")
    env = {**_env(), **project.env}

    pre = subprocess.run(
        _filtered(*DRIFTMON, "--config", config, "db", "upgrade"),
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert pre.returncode == 0, f"db upgrade: exit {pre.returncode}\n{pre.stderr}"

    log = project.root / "serve.log"
    with log.open("w", encoding="utf-8") as stderr:
        proc = subprocess.Popen(
            _filtered(*DRIFTMON, "--config", config, "serve"),
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            env=env,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        _wait(lambda: _get(base + "/healthz")[0] == 200, 60, "/healthz to answer 200")
        status, metrics = _get(base + "/metrics")
        assert status == 200 and "# TYPE" in metrics

        def stored_runs() -> int:
            db = sqlite3.connect(project.root / "driftmon.db")
            try:
                return int(db.execute("SELECT count(*) FROM run").fetchone()[0])
            finally:
                db.close()

        _wait(lambda: stored_runs() > 0, 60, "the catch-up run to be stored")

        proc.send_signal(signal.SIGHUP)  # ExecReload=/bin/kill -HUP $MAINPID
        _wait(lambda: "reloaded" in log.read_text(encoding="utf-8"), 30, "the reload to be logged")
        assert proc.poll() is None, log.read_text(encoding="utf-8")
        assert _get(base + "/healthz")[0] == 200

        proc.send_signal(signal.SIGTERM)  # KillSignal=SIGTERM
        started = time.monotonic()
        code = proc.wait(timeout=seconds(one(parse_unit(UNIT)["Service"], "TimeoutStopSec")))
        assert code == 0, f"exit {code}\n{log.read_text(encoding='utf-8')}"
        assert time.monotonic() - started < 30
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

    text = log.read_text(encoding="utf-8")
    assert SANDBOX_READY in text
    lines = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    assert lines, f"no JSON log lines on stderr:\n{text}"
    assert "Operation not permitted" not in text, text
    assert "refused" not in text, text


if __name__ == "__main__":
    exec_under_unit_filters(Path(sys.argv[1]), sys.argv[2:])
