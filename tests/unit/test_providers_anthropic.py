"""The Anthropic Messages wire format: what is sent, and how answers are read."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from monitor.errors import ErrorClass
from monitor.providers import ChatRequest, ProviderResponse, RetryPolicy
from monitor.providers.anthropic import SCHEMA_INSTRUCTION, AnthropicProvider

API_KEY = "sk-ant-test-SECRET-0123456789"
SCHEMA = {
    "type": "object",
    "required": ["total", "currency"],
    "properties": {"total": {"type": "number"}, "currency": {"enum": ["USD", "EUR"]}},
}


class Capture:
    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.response

    @property
    def body(self) -> Any:
        return json.loads(self.requests[-1].content)


@pytest.fixture
async def client_for() -> AsyncIterator[Any]:
    clients: list[httpx.AsyncClient] = []

    def build(capture: Capture) -> httpx.AsyncClient:
        client = httpx.AsyncClient(transport=httpx.MockTransport(capture))
        clients.append(client)
        return client

    yield build
    for client in clients:
        await client.aclose()


async def call(
    client_for: Any, request: ChatRequest, response: httpx.Response
) -> tuple[ProviderResponse, Capture]:
    capture = Capture(response)

    async def no_sleep(delay: float) -> None:
        pass

    provider = AnthropicProvider(
        model="claude-sonnet-4-5",
        base_url=None,
        api_key=API_KEY,
        client=client_for(capture),
        timeout=10.0,
        concurrency=2,
        retry=RetryPolicy(max_attempts=1),
        sleep=no_sleep,
        rng=random.Random(0),
    )
    return await provider.complete(request), capture


def message(*blocks: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": list(blocks) or [{"type": "text", "text": "Yes"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 21, "output_tokens": 4},
    }
    body.update(extra)
    return body


OK = httpx.Response(200, json=message())

# --- the request -----------------------------------------------------------------------------


async def test_text_request_wire_format(client_for: Any) -> None:
    request = ChatRequest(
        messages=(
            ("system", "Be terse."),
            ("user", "Is 17077 prime?"),
            ("assistant", "Let me think."),
            ("user", "Answer [Yes] or [No]."),
        ),
        params={"temperature": 0.0, "top_p": 1, "top_k": 5},
        response_format="text",
    )
    response, capture = await call(client_for, request, OK)
    assert response.ok
    sent = capture.requests[0]
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.anthropic.com/v1/messages"
    assert sent.headers["x-api-key"] == API_KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert capture.body == {
        "model": "claude-sonnet-4-5",
        "system": "Be terse.",
        "messages": [
            {"role": "user", "content": "Is 17077 prime?"},
            {"role": "assistant", "content": "Let me think."},
            {"role": "user", "content": "Answer [Yes] or [No]."},
        ],
        "max_tokens": 1024,
        "temperature": 0.0,
        "top_p": 1,
        "top_k": 5,
    }


async def test_max_tokens_from_params_and_no_system(client_for: Any) -> None:
    request = ChatRequest(
        messages=(("user", "hi"),), params={"max_tokens": 64}, response_format="json"
    )
    _, capture = await call(client_for, request, OK)
    assert capture.body == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 64,
    }


async def test_openai_only_params_are_translated_or_dropped(client_for: Any) -> None:
    request = ChatRequest(
        messages=(("user", "hi"),),
        params={
            "temperature": 0,
            "seed": 7,
            "frequency_penalty": 0.5,
            "response_format": {"type": "json_object"},
            "stop": "###",
            "max_completion_tokens": 99,
        },
        response_format="text",
    )
    _, capture = await call(client_for, request, OK)
    assert capture.body == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": "hi"}],
        "temperature": 0,
        "stop_sequences": ["###"],
        "max_tokens": 99,
    }


async def test_json_schema_becomes_an_instruction_on_the_last_user_message(
    client_for: Any,
) -> None:
    request = ChatRequest(
        messages=(
            ("system", "You extract invoices."),
            ("user", "Extract: ACME, 1234.50 USD"),
            ("assistant", "Sure."),
        ),
        params={},
        response_format="json_schema",
        schema=SCHEMA,
    )
    _, capture = await call(client_for, request, OK)
    rendered = (
        '{"properties": {"currency": {"enum": ["USD", "EUR"]}, "total": {"type": "number"}}, '
        '"required": ["total", "currency"], "type": "object"}'
    )
    expected = "Extract: ACME, 1234.50 USD" + SCHEMA_INSTRUCTION.format(schema=rendered)
    assert capture.body["messages"] == [
        {"role": "user", "content": expected},
        {"role": "assistant", "content": "Sure."},
    ]
    assert capture.body["system"] == "You extract invoices."
    assert "response_format" not in capture.body
    assert "Respond with only a JSON value" in expected


async def test_schema_instruction_does_not_depend_on_key_order(client_for: Any) -> None:
    reordered = {
        "properties": SCHEMA["properties"],
        "required": ["total", "currency"],
        "type": "object",
    }
    bodies = []
    for schema in (SCHEMA, reordered):
        request = ChatRequest(
            messages=(("user", "x"),), params={}, response_format="json_schema", schema=schema
        )
        _, capture = await call(client_for, request, OK)
        bodies.append(capture.requests[0].content)
    assert bodies[0] == bodies[1]


@pytest.mark.parametrize(
    "messages",
    [
        (("user", "hi"), ("system", "late system")),
        (("system", "first"), ("user", "hi"), ("system", "again")),
    ],
)
async def test_system_message_after_the_start_is_refused(
    client_for: Any, messages: tuple[tuple[str, str], ...]
) -> None:
    request = ChatRequest(messages=messages, params={}, response_format="text")
    response, capture = await call(client_for, request, OK)
    assert response.error_class is ErrorClass.BAD_REQUEST
    assert capture.requests == []


@pytest.mark.parametrize("param", ["model", "messages", "system", "stream"])
async def test_params_may_not_override_what_the_adapter_owns(client_for: Any, param: str) -> None:
    request = ChatRequest(messages=(("user", "hi"),), params={param: "x"}, response_format="text")
    response, capture = await call(client_for, request, OK)
    assert response.error_class is ErrorClass.BAD_REQUEST
    assert capture.requests == []


# --- the response ----------------------------------------------------------------------------


async def test_response_fields(client_for: Any) -> None:
    body = message(
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "text", "text": '{"total": '},
        {"type": "text", "text": "1234.5}"},
    )
    answer = httpx.Response(200, json=body, headers={"request-id": "req_011CX"})
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="json")
    response, _ = await call(client_for, request, answer)
    assert response.ok
    assert response.text == '{"total": 1234.5}'
    assert response.model == "claude-sonnet-4-5-20250929"
    assert response.fingerprint is None
    assert response.finish_reason == "stop"
    assert (response.input_tokens, response.output_tokens) == (21, 4)
    assert response.request_id == "req_011CX"
    assert response.http_status == 200


@pytest.mark.parametrize(
    ("stop_reason", "expected"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "refusal"),
        ("tool_use", "tool_calls"),
        ("pause_turn", "pause_turn"),
        (None, None),
    ],
)
async def test_stop_reason_is_normalised(
    client_for: Any, stop_reason: str | None, expected: str | None
) -> None:
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    answer = httpx.Response(200, json=message(stop_reason=stop_reason))
    response, _ = await call(client_for, request, answer)
    assert response.finish_reason == expected


async def test_missing_usage_and_empty_content(client_for: Any) -> None:
    body = message()
    body["content"] = []
    del body["usage"]
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    response, _ = await call(client_for, request, httpx.Response(200, json=body))
    assert response.ok
    assert response.text == ""
    assert response.input_tokens is None and response.output_tokens is None


@pytest.mark.parametrize(
    "body",
    [
        {"id": "msg_01", "type": "message"},
        {"content": "just a string"},
        {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
    ],
)
async def test_unusable_bodies_are_protocol_errors(client_for: Any, body: Any) -> None:
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    response, _ = await call(client_for, request, httpx.Response(200, json=body))
    assert response.error_class is ErrorClass.PROTOCOL


async def test_overloaded_529(client_for: Any) -> None:
    body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    answer = httpx.Response(529, json=body, headers={"request-id": "req_x"})
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    response, _ = await call(client_for, request, answer)
    assert response.error_class is ErrorClass.SERVER
    assert response.error_message == "HTTP 529: overloaded_error: Overloaded"
    assert response.request_id == "req_x"
