"""What a run stores per result, on SQLite and PostgreSQL: usage details, the structured-output
mode, provider refusals and tool calls, from a loopback server answering in OpenAI's shape."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.config import ResolvedTarget
from monitor.drift.metrics import compute_metrics
from monitor.drift.queries import load_observations
from monitor.probes.loader import load_probe_sets
from monitor.probes.model import ProbeSet
from monitor.runner import Runner
from monitor.store.models import Result
from monitor.store.queries import recent_results
from tests.fakes.provider_shapes import (
    ShapesServer,
    chat_completion,
    openai_error,
    shapes_server,
)

SETS = {
    "invoice": """
        probes:
          - id: total
            prompt: Extract the total.
            schema:
              type: object
              properties: { total: { type: number } }
              required: [total]
              additionalProperties: false
        """,
    "weather": """
        probes:
          - id: call
            prompt: What is the weather in Paris?
            tools:
              - name: get_weather
                parameters:
                  type: object
                  properties: { city: { type: string } }
                  required: [city]
                  additionalProperties: false
            tool_choice: required
        """,
    "chat": """
        probes:
          - id: hello
            prompt: Say hello.
            response_format: text
        """,
}


@pytest.fixture(scope="module")
def probe_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ProbeSet]:
    root = tmp_path_factory.mktemp("probes")
    for name, text in SETS.items():
        (root / f"{name}.yaml").write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return {s.name: s for s in load_probe_sets([Path(root)])}


@pytest.fixture
def server() -> Iterator[ShapesServer]:
    with shapes_server() as running:
        yield running


def target(base_url: str) -> ResolvedTarget:
    return ResolvedTarget(
        name="loopback",
        kind="openai",
        model="gpt-5",
        base_url=base_url,
        api_key=None,
        probe_sets=None,
        params={},
        samples=1,
        every=None,
        cron=None,
        timeout=10,
        concurrency=1,
        retries=0,
    )


async def run_once(engine: Engine, server: ShapesServer, probe_set: ProbeSet) -> Result:
    """One sample of the set's one probe; its stored result."""
    async with httpx.AsyncClient() as client:
        outcome = await Runner(engine).run(target(server.base_url), probe_set, client=client)
    with Session(engine) as s:
        return s.execute(select(Result).where(col(Result.run_id) == outcome.id)).scalar_one()


async def test_usage_details_and_output_mode_are_stored(
    engine: Engine, server: ShapesServer, probe_sets: dict[str, ProbeSet]
) -> None:
    server.reply(200, chat_completion('{"total": 3}', reasoning_tokens=64, cached_tokens=1024))
    stored = await run_once(engine, server, probe_sets["invoice"])
    assert stored.verdict == "pass"
    assert (stored.reasoning_tokens, stored.cached_tokens) == (64, 1024)
    sent = server.last.body["response_format"]
    assert sent["type"] == "json_schema" and sent["json_schema"]["strict"] is True
    assert stored.output_mode == "strict_schema"
    assert (stored.tool_called, stored.tool_name, stored.tool_args_valid) == (None, None, None)

    server.reply(200, chat_completion("Hello!"))
    plain = await run_once(engine, server, probe_sets["chat"])
    assert (plain.output_mode, plain.output, plain.output_chars) == (None, "Hello!", 6)
    assert (plain.reasoning_tokens, plain.cached_tokens) == (0, 0)  # reported, and zero


async def test_an_error_row_still_records_the_output_mode(
    engine: Engine, server: ShapesServer, probe_sets: dict[str, ProbeSet]
) -> None:
    server.reply(400, openai_error("strict schemas are not supported", param="response_format"))
    stored = await run_once(engine, server, probe_sets["invoice"])
    assert (stored.verdict, stored.error_class) == ("error", "bad_request")
    assert stored.output_mode == "strict_schema"


async def test_a_provider_refusal_sets_the_refusal_flag_in_any_language(
    engine: Engine, server: ShapesServer, probe_sets: dict[str, ProbeSet]
) -> None:
    server.reply(200, chat_completion(None, refusal="Je ne peux pas vous aider avec cela."))
    stored = await run_once(engine, server, probe_sets["invoice"])
    assert (stored.verdict, stored.refusal) == ("fail", True)
    # The flag is what refusal_rate reads.
    with Session(engine) as s:
        (observation,) = load_observations(s, [stored.run_id])
    metrics = {m.name: m for m in compute_metrics([observation], [observation])}
    assert metrics["refusal_rate"].current == {observation.probe_version_id: [True]}


async def test_a_tool_call_is_judged_stored_and_shown_as_the_call(
    engine: Engine, server: ShapesServer, probe_sets: dict[str, ProbeSet]
) -> None:
    arguments = '{"city": "Paris"}'
    server.reply(
        200,
        chat_completion(None, tool_calls=[("get_weather", arguments)], finish_reason="tool_calls"),
    )
    stored = await run_once(engine, server, probe_sets["weather"])
    assert stored.verdict == "pass", stored.reason
    assert (stored.tool_called, stored.tool_name, stored.tool_args_valid) == (
        True,
        "get_weather",
        True,
    )
    assert stored.output_mode == "tools"
    assert stored.output == f"get_weather({arguments})"
    assert stored.output_chars == len(stored.output)

    long_name = "x" * 80  # a tool the probe never offered, named beyond the column's width
    server.reply(200, chat_completion(None, tool_calls=[(long_name, "{}")]))
    wrong = await run_once(engine, server, probe_sets["weather"])
    assert wrong.verdict == "fail"
    assert wrong.tool_called is True and wrong.tool_name == "x" * 64

    server.reply(200, chat_completion("It is sunny."))
    answered = await run_once(engine, server, probe_sets["weather"])
    assert (answered.tool_called, answered.tool_name) == (False, None)
    assert answered.output == "It is sunny."

    # `probes show` lists them with what each result recorded.
    shown = recent_results(engine, "weather", "call")
    assert [(r.tool_name, r.output_mode, r.output) for r in shown] == [
        (None, "tools", "It is sunny."),
        ("x" * 64, "tools", f"{long_name}({{}})"),
        ("get_weather", "tools", f"get_weather({arguments})"),
    ]
    assert [(r.reasoning_tokens, r.cached_tokens) for r in shown] == [(0, 0)] * 3
