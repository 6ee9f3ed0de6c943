"""The simulator over a real loopback socket: behaviours, identity, phases, reproducibility."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from monitor.simulator.behaviours import NON_JSON, REFUSAL
from monitor.simulator.scenario import parse_scenario
from monitor.simulator.server import SimulatorServer

INVOICE: dict[str, Any] = {
    "type": "object",
    "required": ["total", "currency", "number", "issued"],
    "additionalProperties": False,
    "properties": {
        "total": {"type": "number", "minimum": 10, "maximum": 20},
        "currency": {"enum": ["USD", "EUR", "GBP"]},
        "number": {"type": "string", "pattern": "^INV-[0-9]{4}$"},
        "issued": {"type": "string", "format": "date"},
        "note": {"type": "string"},
        "lines": {"type": "array", "items": {"type": "integer"}},
    },
}
BEHAVIOURS = [
    "valid",
    "schema_invalid",
    "wrong_value",
    "non_json",
    "fenced",
    "prose",
    "refusal",
    "empty",
    "truncated",
]

SCENARIO: dict[str, Any] = {
    "name": "unit",
    "seed": 11,
    "rules": [
        *({"name": b, "match": f"^do {b}$", "behaviour": b} for b in BEHAVIOURS),
        {
            "name": "fields",
            "match": "^do fields$",
            "fields": {"currency": "GBP", "note": "hi"},
            "wrong_fields": ["currency"],
        },
        {
            "name": "text",
            "match": "^prime",
            "output": ["one [Yes]", "two [Yes]"],
            "wrong_output": "three [No]",
        },
        {"name": "long-text", "match": "^long text", "output": "Short.", "length": 400},
        {"name": "long-json", "match": "^long json", "length": 300},
        {"name": "mix", "match": "^mix", "mix": {"fenced": 0.3, "refusal": 0.2}},
        {"name": "slow", "match": "^slow", "latency_ms": 150},
        {"name": "anthropic-only", "match": "^api", "api": "anthropic", "behaviour": "prose"},
    ],
    "phases": {
        "march": {"model": {"gpt-4o": "gpt-4o-2024-05-13"}, "fingerprint": "fp_march"},
        "june": {
            "model": "snapshot-june",
            "fingerprint": "fp_june",
            "rules": {"valid": {"behaviour": "fenced"}},
        },
    },
}


@pytest.fixture(scope="module")
def sim() -> Iterator[SimulatorServer]:
    with SimulatorServer(parse_scenario(SCENARIO)) as server:
        yield server


@pytest.fixture
def client(sim: SimulatorServer) -> Iterator[httpx.Client]:
    sim.set_phase("march")
    with httpx.Client(base_url=sim.url, timeout=5) as c:
        yield c


def openai(
    client: httpx.Client, prompt: str, schema: dict[str, Any] | None = INVOICE, **extra: Any
) -> httpx.Response:
    body: dict[str, Any] = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be exact."},
            {"role": "user", "content": prompt},
        ],
    }
    if schema is not None:
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "out", "schema": schema, "strict": True},
        }
    return client.post("/v1/chat/completions", json={**body, **extra})


def anthropic(client: httpx.Client, prompt: str, **extra: Any) -> httpx.Response:
    body = {
        "model": "claude-x",
        "max_tokens": 256,
        "system": "Be exact.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": prompt}]}],
    }
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    return client.post("/v1/messages", json={**body, **extra}, headers=headers)


def content(response: httpx.Response) -> str:
    assert response.status_code == 200, response.text
    text: str = response.json()["choices"][0]["message"]["content"]
    return text


def check(instance: Any) -> bool:
    return Draft202012Validator(INVOICE, format_checker=FormatChecker()).is_valid(instance)


def test_valid_validates_against_the_sent_schema(client: httpx.Client) -> None:
    r = openai(client, "do valid")
    body = r.json()
    assert r.headers["x-request-id"].startswith("req_")
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"] > 0
    data = json.loads(content(r))
    assert check(data)
    assert data["currency"] == "USD" and 10 <= data["total"] <= 20
    assert re.fullmatch(r"INV-\d{4}", data["number"])


def test_schema_invalid_does_not_validate(client: httpx.Client) -> None:
    assert not check(json.loads(content(openai(client, "do schema_invalid"))))


def test_wrong_value_has_the_right_shape_and_a_different_value(client: httpx.Client) -> None:
    right = json.loads(content(openai(client, "do fields")))
    assert check(right) and right["currency"] == "GBP" and right["note"] == "hi"
    auto = json.loads(content(openai(client, "do wrong_value")))
    valid = json.loads(content(openai(client, "do valid")))
    assert check(auto) and auto != valid
    r = openai(client, "do fields", response_format=None)  # fields alone make it JSON
    assert json.loads(content(r)) == {"currency": "GBP", "note": "hi"}


def test_wrong_fields_list_changes_the_named_field() -> None:
    scenario = dict(SCENARIO, phases=None)
    scenario["rules"] = [
        {
            "match": "x",
            "behaviour": "wrong_value",
            "fields": {"currency": "GBP"},
            "wrong_fields": ["currency"],
        }
    ]
    with SimulatorServer(parse_scenario(scenario)) as other, httpx.Client(base_url=other.url) as c:
        data = json.loads(content(openai(c, "x")))
    assert check(data) and data["currency"] in ("USD", "EUR")


def test_format_behaviours(client: httpx.Client) -> None:
    non_json = content(openai(client, "do non_json"))
    assert non_json == NON_JSON and "{" not in non_json
    fenced = content(openai(client, "do fenced"))
    match = re.fullmatch(r"```json\n(.*)\n```", fenced, re.S)
    assert match and check(json.loads(match.group(1)))
    prose = content(openai(client, "do prose"))
    with pytest.raises(json.JSONDecodeError):
        json.loads(prose)
    assert check(json.loads(prose[prose.index("{") : prose.rindex("}") + 1]))
    r = openai(client, "do refusal")
    assert content(r) == REFUSAL == r.json()["choices"][0]["message"]["refusal"]
    assert content(openai(client, "do empty")) == ""
    r = openai(client, "do truncated")
    assert r.json()["choices"][0]["finish_reason"] == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(content(r))


def test_text_outputs_cycle_and_wrong_output(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.reset()
    texts = [content(openai(client, "prime?", schema=None)) for _ in range(3)]
    assert texts == ["one [Yes]", "two [Yes]", "one [Yes]"]


def test_length_pads_text_and_json(client: httpx.Client) -> None:
    text = content(openai(client, "long text", schema=None))
    assert text.startswith("Short.") and 390 <= len(text) <= 400
    raw = content(openai(client, "long json"))
    assert 280 <= len(raw) <= 300 and check(json.loads(raw))  # padded `note`, still valid
    assert len(json.loads(raw)["note"]) > 100


def test_max_tokens_cuts_the_answer(client: httpx.Client) -> None:
    r = openai(client, "long text", schema=None, max_tokens=10)
    assert len(content(r)) == 40 and r.json()["choices"][0]["finish_reason"] == "length"
    r = anthropic(client, "long text", max_tokens=10)
    assert r.json()["stop_reason"] == "max_tokens"


def test_anthropic_wire_format(client: httpx.Client) -> None:
    r = anthropic(client, "do valid")
    assert r.status_code == 200 and r.headers["request-id"].startswith("req_")
    body = r.json()
    assert body["type"] == "message" and body["role"] == "assistant"
    assert body["model"] == "claude-x"  # not in the phase's model map: echoed
    assert body["stop_reason"] == "end_turn" and body["usage"]["output_tokens"] > 0
    assert body["content"][0]["type"] == "text"
    structured = anthropic(
        client, "do valid", output_format={"type": "json_schema", "schema": INVOICE}
    )
    assert check(json.loads(structured.json()["content"][0]["text"]))
    assert anthropic(client, "do empty").json()["content"] == []
    assert anthropic(client, "api").json()["content"][0]["text"].startswith("Here is")
    assert "Here is" not in content(openai(client, "api"))  # the api filter


def test_bad_requests_get_each_apis_error_shape(client: httpx.Client) -> None:
    r = client.post("/v1/messages", json={"model": "m", "max_tokens": 5, "messages": []})
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert "anthropic-version" in r.json()["error"]["message"]
    r = anthropic(client, "hi", max_tokens=None)
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = client.post("/v1/chat/completions", json={"model": "gpt-4o"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = client.post("/v1/chat/completions", content=b"{not json")
    assert r.status_code == 400 and "not valid JSON" in r.json()["error"]["message"]
    r = openai(client, "do valid", stream=True)
    assert r.status_code == 400 and "stream" in r.json()["error"]["message"]
    r = openai(client, "do valid", schema={"type": "nonsense"})
    assert r.status_code == 400 and "Invalid schema" in r.json()["error"]["message"]


def test_phase_switch_changes_identity(sim: SimulatorServer, client: httpx.Client) -> None:
    march = openai(client, "do valid").json()
    assert (march["model"], march["system_fingerprint"]) == ("gpt-4o-2024-05-13", "fp_march")
    r = client.post("/_sim/phase", json={"phase": "june"})
    assert r.json()["phase"] == "june"
    june = openai(client, "do valid").json()
    assert (june["model"], june["system_fingerprint"]) == ("snapshot-june", "fp_june")
    assert june["choices"][0]["message"]["content"].startswith("```json")  # phase override
    assert anthropic(client, "hi").json()["model"] == "snapshot-june"
    assert client.get("/v1/models").json()["data"][0]["id"] == "snapshot-june"
    assert client.post("/_sim/phase", json={"phase": "july"}).status_code == 404
    assert client.post("/_sim/phase", json={}).status_code == 400
    sim.set_phase("march")
    assert client.get("/_sim/phase").json() == {"phase": "march", "phases": ["march", "june"]}
    with pytest.raises(KeyError):
        sim.set_phase("july")


def test_after_requests_switches_by_itself() -> None:
    scenario = parse_scenario(
        {"phases": {"a": {"model": "m-a", "after_requests": 2}, "b": {"model": "m-b"}}}
    )
    with SimulatorServer(scenario) as sim, httpx.Client(base_url=sim.url) as c:
        models = [openai(c, "hi", schema=None).json()["model"] for _ in range(3)]
        assert models == ["m-a", "m-a", "m-b"]
        assert sim.stats()["phases"] == {"a": 2, "b": 1}


def test_stats_and_reset(sim: SimulatorServer, client: httpx.Client) -> None:
    sim.reset()
    for _ in range(2):
        openai(client, "do valid")
    openai(client, "unmatched prompt")
    client.post("/v1/chat/completions", json={})
    stats = client.get("/_sim/stats").json()
    assert stats["total"] == 3 and stats["phase"] == "march"
    assert stats["rules"]["valid"] == 2 and stats["rules"]["default"] == 1
    assert stats["statuses"] == {"200": 3, "400": 1}
    assert len(stats["recent"]["valid"]) == 2 and stats["recent"]["valid"][0] > 1.7e9
    assert stats == sim.stats()
    assert client.post("/_sim/reset").json()["reset"] is True
    assert sim.stats()["total"] == 0 and sim.stats()["statuses"] == {}


def test_latency(client: httpx.Client) -> None:
    r = openai(client, "slow")
    assert r.status_code == 200 and r.elapsed.total_seconds() >= 0.14


MIXED = {"seed": 5, "rules": [{"match": "mix", "mix": {"fenced": 0.3, "refusal": 0.2}}]}


def kinds(c: httpx.Client, n: int, prompt: str = "mix") -> list[str]:
    out = []
    for _ in range(n):
        text = content(openai(c, prompt, schema=None))
        out.append(
            "fenced" if text.startswith("```") else "refusal" if text == REFUSAL else "valid"
        )
    return out


def test_seeded_mix_is_reproducible_and_matches_probabilities() -> None:
    with SimulatorServer(parse_scenario(MIXED)) as a, httpx.Client(base_url=a.url) as c:
        first = kinds(c, 600)
    with SimulatorServer(parse_scenario(MIXED)) as b, httpx.Client(base_url=b.url) as c:
        assert kinds(c, 600) == first
    counts = Counter(first)
    # Binomial sd at n=600: 11.2 for p=0.3, 9.8 for p=0.2; 4.5 sd bounds.
    assert 130 <= counts["fenced"] <= 230 and 76 <= counts["refusal"] <= 164
    other = dict(MIXED, seed=6)
    with SimulatorServer(parse_scenario(other)) as d, httpx.Client(base_url=d.url) as c:
        assert kinds(c, 60) != first[:60]


def test_concurrent_arrival_order_does_not_change_the_outcomes() -> None:
    with SimulatorServer(parse_scenario(MIXED)) as a, httpx.Client(base_url=a.url) as c:
        sequential = Counter(kinds(c, 80, "mix a") + kinds(c, 80, "mix b"))
    with SimulatorServer(parse_scenario(MIXED)) as b, httpx.Client(base_url=b.url) as c:

        def one(prompt: str) -> str:
            return kinds(c, 1, prompt)[0]

        with ThreadPoolExecutor(8) as pool:
            concurrent = Counter(pool.map(one, ["mix a", "mix b"] * 80))
    assert concurrent == sequential
