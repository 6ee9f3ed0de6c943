"""The OpenAI chat completions wire format: what is sent, and how answers are read."""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from monitor.errors import ErrorClass
from monitor.providers import ChatRequest, ProviderResponse, RetryPolicy
from monitor.providers.openai import OpenAIProvider

API_KEY = "sk-test-SECRET-0123456789abcdef"
SCHEMA = {
    "type": "object",
    "required": ["total", "currency"],
    "properties": {"total": {"type": "number"}, "currency": {"enum": ["USD", "EUR"]}},
}


class Capture:
    """A MockTransport handler that records requests and answers with a fixed response."""

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
    client_for: Any,
    request: ChatRequest,
    response: httpx.Response,
    *,
    api_key: str | None = API_KEY,
) -> tuple[ProviderResponse, Capture]:
    capture = Capture(response)

    async def no_sleep(delay: float) -> None:
        pass

    provider = OpenAIProvider(
        model="gpt-4o",
        base_url="https://llm.example/v1/",
        api_key=api_key,
        client=client_for(capture),
        timeout=10.0,
        concurrency=2,
        retry=RetryPolicy(max_attempts=1),
        sleep=no_sleep,
        rng=random.Random(0),
    )
    return await provider.complete(request), capture


def completion(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "chatcmpl-AB12",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_a7d06e42a7",
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40},
    }
    body.update(extra)
    return body


OK = httpx.Response(200, json=completion({"role": "assistant", "content": "Yes"}))

# --- the request -----------------------------------------------------------------------------


async def test_text_request_wire_format(client_for: Any) -> None:
    request = ChatRequest(
        messages=(("system", "Be terse."), ("user", "Is 17077 prime?")),
        params={"temperature": 0.0, "max_tokens": 64, "top_p": 1, "seed": 7},
        response_format="text",
    )
    response, capture = await call(client_for, request, OK)
    assert response.ok
    sent = capture.requests[0]
    assert sent.method == "POST"
    assert str(sent.url) == "https://llm.example/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["content-type"] == "application/json"
    assert "x-api-key" not in sent.headers
    assert capture.body == {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Is 17077 prime?"},
        ],
        "temperature": 0.0,
        "max_tokens": 64,
        "top_p": 1,
        "seed": 7,
    }


async def test_json_schema_request_asks_for_non_strict_structured_output(
    client_for: Any,
) -> None:
    request = ChatRequest(
        messages=(("user", "Extract the invoice"),),
        params={"temperature": 0},
        response_format="json_schema",
        schema=SCHEMA,
        schema_name="invoice",
    )
    _, capture = await call(client_for, request, OK)
    assert capture.body == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Extract the invoice"}],
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "invoice", "schema": SCHEMA, "strict": False},
        },
    }


async def test_json_request_sends_no_response_format(client_for: Any) -> None:
    request = ChatRequest(
        messages=(("user", "Reply in JSON: {...}"),), params={}, response_format="json"
    )
    _, capture = await call(client_for, request, OK)
    assert capture.body == {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": "Reply in JSON: {...}"}],
    }


async def test_no_api_key_means_no_authorization_header(client_for: Any) -> None:
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    response, capture = await call(client_for, request, OK, api_key=None)
    assert response.ok
    assert "authorization" not in capture.requests[0].headers


@pytest.mark.parametrize("param", ["model", "messages", "stream"])
async def test_params_may_not_override_what_the_adapter_owns(client_for: Any, param: str) -> None:
    request = ChatRequest(messages=(("user", "hi"),), params={param: 1}, response_format="text")
    response, capture = await call(client_for, request, OK)
    assert response.error_class is ErrorClass.BAD_REQUEST
    assert response.error_message is not None and param in response.error_message
    assert capture.requests == []


async def test_json_schema_without_schema_is_a_bad_request(client_for: Any) -> None:
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="json_schema")
    response, capture = await call(client_for, request, OK)
    assert response.error_class is ErrorClass.BAD_REQUEST
    assert capture.requests == []


async def test_unserialisable_params_are_a_bad_request(client_for: Any) -> None:
    request = ChatRequest(
        messages=(("user", "hi"),), params={"temperature": float("nan")}, response_format="text"
    )
    response, capture = await call(client_for, request, OK)
    assert response.error_class is ErrorClass.BAD_REQUEST
    assert capture.requests == []


# --- the response ----------------------------------------------------------------------------


async def test_response_fields(client_for: Any) -> None:
    answer = httpx.Response(
        200,
        json=completion({"role": "assistant", "content": '{"total": 1234.5}'}),
        headers={"x-request-id": "req_77", "openai-model": "gpt-4o-2024-08-06"},
    )
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="json")
    response, _ = await call(client_for, request, answer)
    assert response.ok
    assert response.text == '{"total": 1234.5}'
    assert response.model == "gpt-4o-2024-08-06"
    assert response.fingerprint == "fp_a7d06e42a7"
    assert response.finish_reason == "stop"
    assert (response.input_tokens, response.output_tokens) == (31, 9)
    assert response.http_status == 200
    assert response.request_id == "req_77"
    assert response.identity_hints == {"openai-model": "gpt-4o-2024-08-06"}
    assert response.error_class is None and response.error_message is None


async def test_refusal(client_for: Any) -> None:
    message = {"role": "assistant", "content": None, "refusal": "I can't help with that."}
    request = ChatRequest(
        messages=(("user", "hi"),), params={}, response_format="json_schema", schema=SCHEMA
    )
    response, _ = await call(client_for, request, httpx.Response(200, json=completion(message)))
    assert response.ok
    assert response.text == "I can't help with that."
    assert response.finish_reason == "refusal"


async def test_missing_usage_and_fingerprint(client_for: Any) -> None:
    body = completion({"role": "assistant", "content": "ok"}, system_fingerprint=None)
    del body["usage"]
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    response, _ = await call(client_for, request, httpx.Response(200, json=body))
    assert response.ok and response.text == "ok"
    assert response.input_tokens is None and response.output_tokens is None
    assert response.fingerprint is None
    assert response.request_id is None
    assert response.identity_hints == {}


async def test_odd_usage_values_are_ignored(client_for: Any) -> None:
    body = completion({"role": "assistant", "content": "ok"})
    body["usage"] = {"prompt_tokens": "31", "completion_tokens": True}
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    response, _ = await call(client_for, request, httpx.Response(200, json=body))
    assert response.ok
    assert response.input_tokens is None and response.output_tokens is None


async def test_length_finish_reason_and_null_content(client_for: Any) -> None:
    body = completion({"role": "assistant", "content": None})
    body["choices"][0]["finish_reason"] = "length"
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    response, _ = await call(client_for, request, httpx.Response(200, json=body))
    assert response.ok
    assert response.text == ""
    assert response.finish_reason == "length"


async def test_content_parts_are_joined(client_for: Any) -> None:
    parts = [{"type": "text", "text": "Hel"}, {"type": "image"}, {"type": "text", "text": "lo"}]
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    response, _ = await call(
        client_for, request, httpx.Response(200, json=completion({"content": parts}))
    )
    assert response.text == "Hello"


async def test_error_object_in_a_200_is_classified_by_its_code(client_for: Any) -> None:
    body = {"error": {"message": "Provider returned error", "code": 429}}
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    response, _ = await call(client_for, request, httpx.Response(200, json=body))
    assert response.error_class is ErrorClass.RATE_LIMIT
    assert response.error_message == "HTTP 200 with error: Provider returned error"


async def test_openai_error_body_message(client_for: Any) -> None:
    body = {
        "error": {
            "message": "Incorrect API key provided: sk-test***cdef.",
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    request = ChatRequest(messages=(("user", "hi"),), params={}, response_format="text")
    response, _ = await call(
        client_for, request, httpx.Response(401, json=body, headers={"x-request-id": "req_1"})
    )
    assert response.error_class is ErrorClass.AUTH
    assert response.error_message == (
        "HTTP 401: invalid_request_error: Incorrect API key provided: sk-test***cdef."
    )
    assert response.request_id == "req_1"
    assert response.http_status == 401
