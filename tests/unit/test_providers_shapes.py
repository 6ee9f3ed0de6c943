"""Adapters against tests/fakes/provider_shapes.py over real loopback sockets: the request
options of a target (headers, query, extra_body, secrets, token_limit_param), param
translation, native structured output, tool calls, refusals, usage details, the Responses
API, and naming the param a provider rejects."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from monitor.errors import ErrorClass
from monitor.providers import ChatRequest, Provider, ProviderResponse, RetryPolicy, make_provider
from monitor.providers.anthropic import SCHEMA_INSTRUCTION
from monitor.providers.base import ToolCall, ToolSpec
from monitor.providers.params import THINKING_BUDGETS, uses_max_completion_tokens
from monitor.simulator.scenario import parse_scenario
from monitor.simulator.server import SimulatorServer
from tests.fakes import provider_shapes as shapes

API_KEY = "sk-shapes-SECRET-0123456789"
SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}
WEATHER = ToolSpec(name="get_weather", description="Weather.", parameters=SCHEMA, strict=True)
TIME = ToolSpec(name="get_time", parameters={"type": "object", "properties": {}})
KINDS = ("openai", "openai-responses", "anthropic")


def text(params: dict[str, Any] | None = None) -> ChatRequest:
    return ChatRequest(messages=(("user", "hi"),), params=params or {}, response_format="text")


def structured(strict: bool) -> ChatRequest:
    return ChatRequest(
        messages=(("system", "Extract."), ("user", "Weather in Oslo?")),
        params={},
        response_format="json_schema",
        schema=SCHEMA,
        schema_name="place",
        strict=strict,
    )


def with_tools(choice: str = "auto", params: dict[str, Any] | None = None) -> ChatRequest:
    return ChatRequest(
        messages=(("user", "Weather in Oslo?"),),
        params=params or {},
        response_format="tool_call",
        tools=(WEATHER, TIME),
        tool_choice=choice,
    )


@pytest.fixture(scope="module")
def server() -> Iterator[shapes.ShapesServer]:
    with shapes.shapes_server() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def provider(
    kind: str,
    server: shapes.ShapesServer,
    client: httpx.AsyncClient,
    **kwargs: Any,
) -> Provider:
    settings: dict[str, Any] = {
        "model": "a-model",
        "base_url": server.base_url,
        "api_key": API_KEY,
        "client": client,
        "timeout": 5.0,
        "concurrency": 1,
        "retry": RetryPolicy(max_attempts=1),
    }
    settings.update(kwargs)
    return make_provider(kind, **settings)


async def complete(
    kind: str,
    server: shapes.ShapesServer,
    client: httpx.AsyncClient,
    request: ChatRequest,
    **kwargs: Any,
) -> tuple[ProviderResponse, dict[str, Any]]:
    before = len(server.requests)
    response = await provider(kind, server, client, **kwargs).complete(request)
    sent = server.requests[before:]
    return response, (sent[-1].body if sent else {})


# --- target options: headers, query, extra_body, secrets ---------------------------------------


@pytest.mark.parametrize("kind", KINDS)
async def test_query_params_go_on_every_url(
    kind: str, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    # Azure OpenAI: the deployment's base_url plus api-version as a query parameter.
    response, _ = await complete(
        kind, server, client, text(), query={"api-version": "2025-04-01-preview"}
    )
    assert response.ok, response.error_message
    path = {"openai": "/v1/chat/completions", "openai-responses": "/v1/responses"}
    assert server.last.path == path.get(kind, "/v1/messages")
    assert server.last.query == {"api-version": ["2025-04-01-preview"]}


async def test_headers_are_sent_after_the_adapters_own(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    headers = {
        "api-key": "azure-key-0123456789",
        "X-Gateway-Route": "eu",
        "Authorization": "Bearer gateway-token-0123",
        "Content-Type": "text/plain",  # never: the body is JSON
        "accept": "text/html",
    }
    response, _ = await complete("openai", server, client, text(), headers=headers)
    assert response.ok, response.error_message
    sent = server.last.headers
    assert sent["api-key"] == "azure-key-0123456789"
    assert sent["x-gateway-route"] == "eu"
    assert sent["authorization"] == "Bearer gateway-token-0123"
    assert sent["content-type"] == "application/json"
    assert sent["accept"] == "application/json"


async def test_anthropic_headers_keep_the_api_version(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    await complete("anthropic", server, client, text(), headers={"x-tenant": "t1"})
    sent = server.last.headers
    assert sent["x-api-key"] == API_KEY and sent["anthropic-version"] == "2023-06-01"
    assert sent["x-tenant"] == "t1"
    assert "anthropic-beta" not in sent  # structured outputs are GA: no beta header


@pytest.mark.parametrize("kind", KINDS)
async def test_a_secret_echoed_in_an_error_body_is_redacted(
    kind: str, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    secret = "gw-secret-value-42"
    server.reply(401, shapes.openai_error(f"bad key {secret} and {API_KEY}"))
    response, _ = await complete(
        kind, server, client, text(), headers={"x-gateway-key": secret}, secrets=[secret]
    )
    assert response.error_class is ErrorClass.AUTH
    assert response.error_message is not None
    assert secret not in response.error_message and API_KEY not in response.error_message
    assert response.error_message.count("[redacted]") == 2


async def test_short_secrets_are_not_redacted(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    # The api key's rule: under 8 characters is no secret worth mangling messages for.
    server.reply(400, shapes.openai_error("region eu is not enabled"))
    response, _ = await complete("openai", server, client, text(), secrets=["eu"])
    assert response.error_message is not None and "region eu is" in response.error_message


@pytest.mark.parametrize("kind", KINDS)
async def test_extra_body_is_merged_last(
    kind: str, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    extra = {"top_k": 40, "metadata": {"user_id": "ops"}, "temperature": 0.5}
    response, body = await complete(
        kind, server, client, text({"temperature": 0.0}), extra_body=extra
    )
    assert response.ok, response.error_message
    assert body["top_k"] == 40 and body["metadata"] == {"user_id": "ops"}
    assert body["temperature"] == 0.5


@pytest.mark.parametrize(
    ("kind", "request_", "extra"),
    [
        ("openai", text(), {"model": "other"}),
        ("openai", text(), {"messages": []}),
        ("openai", text(), {"stream": True}),
        ("openai", structured(True), {"response_format": {"type": "json_object"}}),
        ("openai", with_tools(), {"tool_choice": "none"}),
        ("openai-responses", text(), {"input": "x"}),
        ("openai-responses", structured(True), {"text": {"format": {"type": "text"}}}),
        ("openai-responses", with_tools(), {"tools": []}),
        ("anthropic", text(), {"system": "x"}),
        ("anthropic", structured(True), {"output_config": {"format": None}}),
        ("anthropic", with_tools(), {"tool_choice": {"type": "any"}}),
    ],
)
async def test_extra_body_may_not_replace_what_driftmon_sets(
    kind: str,
    request_: ChatRequest,
    extra: dict[str, Any],
    server: shapes.ShapesServer,
    client: httpx.AsyncClient,
) -> None:
    before = len(server.requests)
    response, _ = await complete(kind, server, client, request_, extra_body=extra)
    assert response.error_class is ErrorClass.BAD_REQUEST
    assert response.error_message is not None and "extra_body may not set" in (
        response.error_message
    )
    assert len(server.requests) == before  # refused before sending


async def test_extra_body_merges_into_an_object_driftmon_also_fills(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    # Anthropic's output_config holds the strict schema and the user's effort side by side.
    response, body = await complete(
        "anthropic",
        server,
        client,
        structured(True),
        extra_body={"output_config": {"effort": "high"}},
    )
    assert response.ok, response.error_message
    assert body["output_config"] == {
        "format": {"type": "json_schema", "schema": SCHEMA},
        "effort": "high",
    }


# --- param translation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("setting", "host", "expected"),
    [
        ("auto", "api.openai.com", True),
        ("auto", "myres.openai.azure.com", True),
        ("auto", "myres.cognitiveservices.azure.com", True),
        ("auto", "proj.services.ai.azure.com", True),
        ("auto", "API.OpenAI.com.", True),
        ("auto", "127.0.0.1", False),
        ("auto", "openrouter.ai", False),
        ("auto", "api.openai.com.evil.example", False),
        ("max_tokens", "api.openai.com", False),
        ("max_completion_tokens", "localhost", True),
    ],
)
def test_which_hosts_get_max_completion_tokens(setting: str, host: str, expected: bool) -> None:
    assert uses_max_completion_tokens(setting, host) is expected


@pytest.mark.parametrize(
    ("params", "setting", "field", "value"),
    [
        ({"max_tokens": 64}, "auto", "max_tokens", 64),  # loopback: not OpenAI's host
        ({"max_tokens": 64}, "max_completion_tokens", "max_completion_tokens", 64),
        ({"max_output_tokens": 64}, "max_tokens", "max_tokens", 64),
        ({"max_tokens": 1, "max_completion_tokens": 2}, "max_completion_tokens", None, 2),
        ({"max_tokens": 1, "max_completion_tokens": 2}, "max_tokens", None, 1),
    ],
)
async def test_openai_output_cap(
    params: dict[str, Any],
    setting: str,
    field: str | None,
    value: int,
    server: shapes.ShapesServer,
    client: httpx.AsyncClient,
) -> None:
    _, body = await complete("openai", server, client, text(params), token_limit_param=setting)
    sent = field or setting
    assert body[sent] == value
    others = {"max_tokens", "max_completion_tokens", "max_output_tokens"} - {sent}
    assert not others & set(body)


async def test_openai_drops_other_kinds_params(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    params = {
        "temperature": 0,
        "reasoning_effort": "high",
        "top_k": 5,
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "truncation": "auto",
        "parallel_tool_calls": False,  # only with tools
    }
    _, body = await complete("openai", server, client, text(params))
    assert {k: v for k, v in body.items() if k not in ("model", "messages")} == {
        "temperature": 0,
        "reasoning_effort": "high",
    }


async def test_responses_translation(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    params = {
        "max_tokens": 300,
        "reasoning_effort": "minimal",
        "verbosity": "low",
        "stop": "###",
        "seed": 7,
        "temperature": 1,
        "reasoning": {"summary": "auto"},
    }
    request = ChatRequest(
        messages=(("system", "Be terse."), ("user", "hi")), params=params, response_format="text"
    )
    response, body = await complete("openai-responses", server, client, request)
    assert response.ok, response.error_message
    assert server.last.path == "/v1/responses"
    assert body == {
        "model": "a-model",
        "input": [
            {"type": "message", "role": "system", "content": "Be terse."},
            {"type": "message", "role": "user", "content": "hi"},
        ],
        "temperature": 1,
        "reasoning": {"summary": "auto", "effort": "minimal"},
        "store": False,
        "max_output_tokens": 300,
        "text": {"verbosity": "low"},
    }


async def test_responses_store_is_the_users_when_set(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    _, body = await complete("openai-responses", server, client, text({"store": True}))
    assert body["store"] is True


async def test_anthropic_translation(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    params = {
        "max_completion_tokens": 500,
        "stop": "###",
        "seed": 7,
        "verbosity": "low",
        "reasoning_effort": "medium",
    }
    _, body = await complete("anthropic", server, client, text(params))
    assert body == {
        "model": "a-model",
        "max_tokens": 500 + THINKING_BUDGETS["medium"],  # the answer keeps its 500
        "messages": [{"role": "user", "content": "hi"}],
        "stop_sequences": ["###"],
        "thinking": {"type": "enabled", "budget_tokens": 4096},
    }


@pytest.mark.parametrize(
    ("effort", "budget"),
    [("minimal", 1024), ("low", 1024), ("medium", 4096), ("high", 16384), ("xhigh", 32768)],
)
async def test_anthropic_thinking_budgets(
    effort: str, budget: int, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    _, body = await complete("anthropic", server, client, text({"reasoning_effort": effort}))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == 1024 + budget


async def test_anthropic_effort_none_and_explicit_thinking(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    _, body = await complete("anthropic", server, client, text({"reasoning_effort": "none"}))
    assert "thinking" not in body and body["max_tokens"] == 1024
    explicit = {"type": "enabled", "budget_tokens": 2000}
    _, body = await complete(
        "anthropic",
        server,
        client,
        text({"reasoning_effort": "high", "thinking": explicit, "max_tokens": 3000}),
    )
    assert body["thinking"] == explicit and body["max_tokens"] == 3000


async def test_anthropic_unknown_effort_is_a_bad_request_naming_the_param(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    before = len(server.requests)
    response, _ = await complete("anthropic", server, client, text({"reasoning_effort": "max"}))
    assert response.error_class is ErrorClass.BAD_REQUEST
    assert response.error_param == "reasoning_effort"
    assert len(server.requests) == before


# --- structured output ------------------------------------------------------------------------


@pytest.mark.parametrize("strict", [True, False])
async def test_openai_json_schema_strictness_is_the_requests(
    strict: bool, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    response, body = await complete("openai", server, client, structured(strict))
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": SCHEMA, "strict": strict},
    }
    assert response.output_mode == ("strict_schema" if strict else "schema")


@pytest.mark.parametrize("strict", [True, False])
async def test_responses_json_schema(
    strict: bool, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    response, body = await complete("openai-responses", server, client, structured(strict))
    assert body["text"] == {
        "format": {"type": "json_schema", "name": "place", "schema": SCHEMA, "strict": strict}
    }
    assert response.output_mode == ("strict_schema" if strict else "schema")


async def test_anthropic_strict_schema_uses_output_config(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    response, body = await complete("anthropic", server, client, structured(True))
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert body["messages"] == [{"role": "user", "content": "Weather in Oslo?"}]
    assert response.output_mode == "strict_schema"


async def test_anthropic_loose_schema_stays_in_the_prompt(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    response, body = await complete("anthropic", server, client, structured(False))
    assert "output_config" not in body
    rendered = json.dumps(SCHEMA, sort_keys=True, ensure_ascii=False)
    assert body["messages"][0]["content"] == "Weather in Oslo?" + SCHEMA_INSTRUCTION.format(
        schema=rendered
    )
    assert response.output_mode == "prompt_schema"


@pytest.mark.parametrize("kind", KINDS)
async def test_output_mode_is_set_on_errors_too(
    kind: str, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    server.reply(500, shapes.openai_error("boom"))
    response, _ = await complete(kind, server, client, with_tools())
    assert response.error_class is ErrorClass.SERVER
    assert response.output_mode == "tools"
    response, _ = await complete(kind, server, client, text())
    assert response.ok and response.output_mode is None


async def test_simulator_answers_anthropic_output_config(client: httpx.AsyncClient) -> None:
    scenario = parse_scenario({"name": "t", "seed": 1, "rules": []})
    with SimulatorServer(scenario) as sim:
        adapter = make_provider(
            "anthropic",
            model="claude-x",
            base_url=sim.url + "/v1",
            api_key="k",
            client=client,
            timeout=5.0,
            concurrency=1,
            retry=RetryPolicy(max_attempts=1),
        )
        response = await adapter.complete(structured(True))
    assert response.ok, response.error_message
    assert isinstance(json.loads(response.text or "")["city"], str)


# --- tools ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("choice", "openai", "responses", "anthropic"),
    [
        ("auto", "auto", "auto", {"type": "auto"}),
        ("required", "required", "required", {"type": "any"}),
        ("none", "none", "none", {"type": "none"}),
        (
            "get_time",
            {"type": "function", "function": {"name": "get_time"}},
            {"type": "function", "name": "get_time"},
            {"type": "tool", "name": "get_time"},
        ),
    ],
)
async def test_tools_and_tool_choice_in_each_shape(
    choice: str,
    openai: Any,
    responses: Any,
    anthropic: Any,
    server: shapes.ShapesServer,
    client: httpx.AsyncClient,
) -> None:
    request = with_tools(choice, {"parallel_tool_calls": False})
    _, body = await complete("openai", server, client, request)
    assert body["tool_choice"] == openai and body["parallel_tool_calls"] is False
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather.",
                "parameters": SCHEMA,
                "strict": True,
            },
        },
        {
            "type": "function",
            "function": {"name": "get_time", "parameters": TIME.parameters, "strict": False},
        },
    ]
    _, body = await complete("openai-responses", server, client, request)
    assert body["tool_choice"] == responses
    assert body["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather.",
            "parameters": SCHEMA,
            "strict": True,
        },
        {"type": "function", "name": "get_time", "parameters": TIME.parameters, "strict": False},
    ]
    _, body = await complete("anthropic", server, client, request)
    assert body["tool_choice"] == anthropic
    assert body["tools"] == [
        {"name": "get_weather", "description": "Weather.", "input_schema": SCHEMA, "strict": True},
        {"name": "get_time", "input_schema": TIME.parameters},
    ]


@pytest.mark.parametrize("kind", KINDS)
async def test_tool_choice_must_name_a_sent_tool(
    kind: str, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    response, _ = await complete(kind, server, client, with_tools("launch_rockets"))
    assert response.error_class is ErrorClass.BAD_REQUEST


async def test_openai_tool_calls_are_parsed(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    server.reply(
        200,
        shapes.chat_completion(
            None,
            tool_calls=[("get_weather", '{"city": "Zürich"}'), ("get_time", "{}")],
            finish_reason="tool_calls",
        ),
    )
    response, _ = await complete("openai", server, client, with_tools("required"))
    assert response.ok, response.error_message
    assert response.tool_calls == (
        ToolCall("get_weather", '{"city": "Zürich"}'),
        ToolCall("get_time", "{}"),
    )
    assert response.finish_reason == "tool_calls" and response.text == ""


async def test_responses_tool_calls_are_parsed(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    server.reply(
        200,
        shapes.responses_response(
            shapes.reasoning_item(), shapes.function_call("get_weather", '{"city": "Oslo"}')
        ),
    )
    response, _ = await complete("openai-responses", server, client, with_tools("required"))
    assert response.tool_calls == (ToolCall("get_weather", '{"city": "Oslo"}'),)
    assert response.finish_reason == "tool_calls" and response.text == ""


async def test_anthropic_tool_use_is_parsed(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    server.reply(
        200,
        shapes.anthropic_message(
            shapes.text_block("Let me check."),
            shapes.tool_use_block("get_weather", {"city": "Zürich"}),
            stop_reason="tool_use",
        ),
    )
    response, _ = await complete("anthropic", server, client, with_tools("required"))
    assert response.tool_calls == (ToolCall("get_weather", '{"city": "Zürich"}'),)
    assert response.finish_reason == "tool_calls" and response.text == "Let me check."


# --- refusals, usage, the Responses answer ----------------------------------------------------


async def test_openai_refusal(server: shapes.ShapesServer, client: httpx.AsyncClient) -> None:
    server.reply(200, shapes.chat_completion(None, refusal="Ich kann dabei nicht helfen."))
    response, _ = await complete("openai", server, client, structured(True))
    assert response.refused is True
    assert response.text == "Ich kann dabei nicht helfen."
    assert response.finish_reason == "refusal"
    response, _ = await complete("openai", server, client, structured(True))
    assert response.refused is False


async def test_responses_refusal(server: shapes.ShapesServer, client: httpx.AsyncClient) -> None:
    server.reply(200, shapes.responses_response(shapes.output_message(shapes.refusal_part("Non."))))
    response, _ = await complete("openai-responses", server, client, structured(True))
    assert response.refused is True and response.text == "Non."


async def test_anthropic_refusal(server: shapes.ShapesServer, client: httpx.AsyncClient) -> None:
    server.reply(200, shapes.anthropic_message(shapes.text_block("Nein."), stop_reason="refusal"))
    response, _ = await complete("anthropic", server, client, text())
    assert response.refused is True and response.finish_reason == "refusal"
    assert response.text == "Nein."


@pytest.mark.parametrize(
    ("kind", "body", "reasoning", "cached"),
    [
        ("openai", shapes.chat_completion(reasoning_tokens=20, cached_tokens=8), 20, 8),
        (
            "openai-responses",
            shapes.responses_response(reasoning_tokens=21, cached_tokens=9),
            21,
            9,
        ),
        ("anthropic", shapes.anthropic_message(cache_read_input_tokens=10), None, 10),
    ],
)
async def test_usage_details(
    kind: str,
    body: Any,
    reasoning: int | None,
    cached: int | None,
    server: shapes.ShapesServer,
    client: httpx.AsyncClient,
) -> None:
    server.reply(200, body)
    response, _ = await complete(kind, server, client, text())
    assert (response.input_tokens, response.output_tokens) == (12, 30)
    assert response.reasoning_tokens == reasoning and response.cached_tokens == cached


async def test_responses_answer_fields(
    server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    server.reply(
        200,
        shapes.responses_response(
            shapes.reasoning_item(),
            shapes.output_message(shapes.output_text("Hel"), shapes.output_text("lo")),
            shapes.output_message(shapes.output_text("!")),
        ),
        {"x-request-id": "req_resp_1"},
    )
    response, _ = await complete("openai-responses", server, client, text())
    assert response.text == "Hello!" and response.finish_reason == "stop"
    assert response.model == "gpt-5-2025-08-07" and response.request_id == "req_resp_1"


@pytest.mark.parametrize(
    ("reason", "finish"), [("max_output_tokens", "length"), ("content_filter", "content_filter")]
)
async def test_responses_incomplete(
    reason: str, finish: str, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    server.reply(
        200,
        shapes.responses_response(
            shapes.output_message(shapes.output_text('{"ci')),
            status="incomplete",
            incomplete_reason=reason,
        ),
    )
    response, _ = await complete("openai-responses", server, client, text())
    assert response.ok and response.finish_reason == finish and response.text == '{"ci'


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        ("server_error", ErrorClass.SERVER),
        ("rate_limit_exceeded", ErrorClass.RATE_LIMIT),
        ("invalid_prompt", ErrorClass.BAD_REQUEST),
    ],
)
async def test_responses_failed(
    code: str, error_class: ErrorClass, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    server.reply(
        200, shapes.responses_response(status="failed", error={"code": code, "message": "no"})
    )
    response, _ = await complete("openai-responses", server, client, text())
    assert response.error_class is error_class
    assert response.error_message is not None and code in response.error_message


# --- naming the rejected param ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "params", "kwargs", "error", "expected"),
    [
        (
            "openai",
            {"max_tokens": 64},
            {"token_limit_param": "max_completion_tokens"},
            shapes.openai_error("Unsupported value", param="max_completion_tokens"),
            "max_tokens",
        ),
        (
            "openai",
            {"max_tokens": 64, "temperature": 0},
            {},
            shapes.openai_error(
                "Unsupported parameter: 'max_tokens' is not supported with this model. "
                "Use 'max_completion_tokens' instead.",
                param="max_tokens",
                code="unsupported_parameter",
            ),
            "max_tokens",
        ),
        (
            "openai",
            {"temperature": 0},
            {},
            shapes.openai_error(
                "Unsupported value: 'temperature' does not support 0 with this model.",
                param="temperature",
            ),
            "temperature",
        ),
        (
            "openai-responses",
            {"reasoning_effort": "minimal"},
            {},
            shapes.openai_error("Unsupported value.", param="reasoning.effort"),
            "reasoning_effort",
        ),
        (
            "openai-responses",
            {"max_completion_tokens": 5},
            {},
            shapes.openai_error("Integer below minimum value.", param="max_output_tokens"),
            "max_completion_tokens",
        ),
        (
            "anthropic",
            {"temperature": 0},
            {},
            shapes.anthropic_error("`temperature` is deprecated for this model."),
            "temperature",
        ),
        (
            "anthropic",
            {"max_output_tokens": 100000},
            {},
            shapes.anthropic_error(
                "max_tokens: 100000 > 64000, which is the maximum allowed for this model"
            ),
            "max_output_tokens",
        ),
        (
            "anthropic",
            {"reasoning_effort": "low"},
            {},
            shapes.anthropic_error("thinking.budget_tokens: Input should be >= 2048"),
            "reasoning_effort",
        ),
        (
            "openai",
            {},
            {"extra_body": {"top_k": 40}},
            shapes.openai_error("Unrecognized request argument supplied: top_k", param="top_k"),
            "extra_body.top_k",
        ),
    ],
)
async def test_a_rejected_param_is_named_in_drifmons_words(
    kind: str,
    params: dict[str, Any],
    kwargs: dict[str, Any],
    error: Any,
    expected: str,
    server: shapes.ShapesServer,
    client: httpx.AsyncClient,
) -> None:
    server.reply(400, error)
    response, _ = await complete(kind, server, client, text(params), **kwargs)
    assert response.error_class is ErrorClass.BAD_REQUEST
    assert response.error_param == expected
    assert response.error_message is not None
    assert f"rejected param {expected!r}" in response.error_message


@pytest.mark.parametrize(
    ("kind", "error"),
    [
        ("openai", shapes.openai_error("Invalid 'messages[0].content'", param="messages")),
        ("openai", shapes.openai_error("The model does not exist", param=None)),
        ("anthropic", shapes.anthropic_error("messages: at least one message is required")),
    ],
)
async def test_no_param_is_named_for_fields_driftmon_owns(
    kind: str, error: Any, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    server.reply(400, error)
    response, _ = await complete(kind, server, client, text({"temperature": 0}))
    assert response.error_class is ErrorClass.BAD_REQUEST and response.error_param is None
