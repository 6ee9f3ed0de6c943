"""Simulated provider faults over a real socket, and the `driftmon simulate` entry point."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from monitor.simulator.scenario import parse_scenario
from monitor.simulator.server import SimulatorServer

REPO = Path(__file__).resolve().parents[2]
FAULTS: dict[str, Any] = {
    "rules": [
        {
            "name": "limited",
            "match": "^limited",
            "faults": [{"kind": "rate_limit", "first_n": 2, "retry_after": 0.2}],
        },
        {
            "name": "sequence",
            "match": "^sequence",
            "faults": [{"kind": 429, "first_n": 1}, {"kind": 503, "first_n": 1, "retry_after": 3}],
        },
        {
            "name": "denied",
            "match": "^denied",
            "faults": [{"kind": "error", "status": 401, "rate": 1}],
        },
        {
            "name": "broken",
            "match": "^broken",
            "faults": [
                {"kind": "malformed", "first_n": 1},
                {"kind": "malformed", "variant": "wrong_shape", "first_n": 1},
            ],
        },
        {"name": "hang", "match": "^hang", "faults": [{"kind": "hang", "first_n": 1}]},
        {"name": "drop", "match": "^drop", "faults": [{"kind": "disconnect", "first_n": 1}]},
        {"name": "half", "match": "^half", "faults": [{"kind": 500, "rate": 0.5}]},
    ]
}


@pytest.fixture
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(parse_scenario(FAULTS)) as server:
        yield server


def post(base: str, prompt: str, api: str = "openai", timeout: float = 5) -> httpx.Response:
    if api == "openai":
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": prompt}]}
        return httpx.post(f"{base}/v1/chat/completions", json=body, timeout=timeout)
    body = {"model": "c", "max_tokens": 9, "messages": [{"role": "user", "content": prompt}]}
    headers = {"anthropic-version": "2023-06-01"}
    return httpx.post(f"{base}/v1/messages", json=body, headers=headers, timeout=timeout)


def test_first_n_rate_limits_then_recovers_with_retry_after(sim: SimulatorServer) -> None:
    r1, r2 = post(sim.url, "limited"), post(sim.url, "limited")
    for r in (r1, r2):
        assert r.status_code == 429
        assert r.headers["retry-after"] == "0.2" and r.headers["retry-after-ms"] == "200"
        assert r.json()["error"]["code"] == "rate_limit_exceeded"
    time.sleep(0.2)  # what a well-behaved client does
    assert post(sim.url, "limited").status_code == 200
    stats = sim.stats()
    assert stats["statuses"] == {"200": 1, "429": 2} and stats["faults"] == {"rate_limit": 2}
    first, _, third = stats["recent"]["limited"]
    assert third - first >= 0.2  # the gap a client under test must show
    sim.reset()  # budgets restart
    assert post(sim.url, "limited", api="anthropic").status_code == 429


def test_faults_apply_in_order(sim: SimulatorServer) -> None:
    statuses = [post(sim.url, "sequence") for _ in range(3)]
    assert [r.status_code for r in statuses] == [429, 503, 200]
    assert statuses[0].headers["retry-after"] == "1"  # the default for 429
    assert statuses[1].headers["retry-after"] == "3"
    assert statuses[1].json()["error"]["type"] == "server_error"


def test_error_bodies_in_each_api_shape(sim: SimulatorServer) -> None:
    r = post(sim.url, "denied")
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    r = post(sim.url, "denied", api="anthropic")
    assert r.status_code == 401 and r.headers["request-id"].startswith("req_")
    assert r.json() == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "Simulated error 401."},
    }


def test_malformed_bodies(sim: SimulatorServer) -> None:
    r = post(sim.url, "broken")
    assert r.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        r.json()
    r = post(sim.url, "broken")
    assert r.status_code == 200 and r.json()["choices"] == []
    assert post(sim.url, "broken").json()["choices"][0]["message"]["content"]


def test_hang_until_client_timeout_then_normal(sim: SimulatorServer) -> None:
    started = time.monotonic()
    with pytest.raises(httpx.ReadTimeout):
        post(sim.url, "hang", timeout=0.3)
    assert time.monotonic() - started < 2
    assert post(sim.url, "hang").status_code == 200
    assert sim.stats()["faults"] == {"hang": 1}


def test_disconnect_drops_the_connection(sim: SimulatorServer) -> None:
    with pytest.raises(httpx.RemoteProtocolError):
        post(sim.url, "drop")
    assert post(sim.url, "drop").status_code == 200


def test_rate_faults_are_roughly_the_rate(sim: SimulatorServer) -> None:
    with httpx.Client(base_url=sim.url) as c:
        body = {"model": "m", "messages": [{"role": "user", "content": "half"}]}
        codes = [c.post("/v1/chat/completions", json=body).status_code for _ in range(200)]
    assert 65 <= codes.count(500) <= 135 and set(codes) == {200, 500}  # sd 7: about 4.9 sd


def test_stopping_releases_a_hanging_request() -> None:
    scenario = parse_scenario({"rules": [{"match": "", "faults": [{"kind": "hang", "rate": 1}]}]})
    server = SimulatorServer(scenario).start()
    with httpx.Client(base_url=server.url, timeout=30) as client:
        import threading

        result: dict[str, Any] = {}

        def call() -> None:
            try:
                body = {"model": "m", "messages": [{"role": "user", "content": "x"}]}
                result["status"] = client.post("/v1/chat/completions", json=body).status_code
            except httpx.HTTPError as exc:
                result["error"] = exc

        thread = threading.Thread(target=call)
        thread.start()
        time.sleep(0.2)
        started = time.monotonic()
        server.stop()
        thread.join(5)
    # Without the release, uvicorn would wait out its 2 s graceful-shutdown timeout.
    assert time.monotonic() - started < 1.5
    assert result.get("status") == 504 or "error" in result


def test_serve_forever_prints_url_first_and_stops_cleanly(tmp_path: Path) -> None:
    scenario = REPO / "config" / "scenarios" / "demo.yaml"
    code = (
        "import sys; from monitor.simulator.server import serve_forever; "
        "serve_forever(sys.argv[1], '127.0.0.1', 0)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(scenario)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        prefix = "driftmon simulator listening on "
        assert line.startswith(prefix + "http://127.0.0.1:")
        url = line.removeprefix(prefix)
        body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "an invoice"}]}
        reply = httpx.post(url + "/v1/chat/completions", json=body, timeout=5).json()
        assert reply["model"] == "gpt-4o-2024-05-13"
        assert json.loads(reply["choices"][0]["message"]["content"])["currency"] == "USD"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
