"""What driftmon sends and parses conforms to the providers' published definitions.

The definitions are the request TypedDicts and response models of the official SDKs (`openai`,
`anthropic`; test-only dependencies, never imported by driftmon itself). Every request body
goes over a real loopback socket to tests/fakes/provider_shapes.py and is then checked three
ways: pydantic validates it against the create-params TypedDict (Iterable fields are validated
lazily, so they are forced, recursively); every top-level key must be one the TypedDict
declares; and no nested key may be one the definition does not know (pydantic drops unknown
keys of a TypedDict, so a key missing after validation is one the definition lacks).

Documented exemptions: keys a test puts in a target's `extra_body` on purpose (sent unchecked,
e.g. vLLM's `top_k`), and Anthropic's sampling params temperature/top_p/top_k, which the
Messages API still accepts from models before Opus 4.7 but the SDK no longer declares (see
monitor/providers/params.py).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from anthropic.types import Message
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import CompletionCreateParamsNonStreaming
from openai.types.responses import Response
from openai.types.responses.response_create_params import ResponseCreateParamsNonStreaming
from pydantic import TypeAdapter

from monitor.providers import ChatRequest, Provider, RetryPolicy, make_provider
from monitor.providers.base import ToolSpec
from monitor.providers.params import ALL_PARAMS, KIND_PARAMS, REASONING_EFFORTS
from tests.fakes import provider_shapes as shapes

PARAMS_TYPES: dict[str, Any] = {
    "openai": CompletionCreateParamsNonStreaming,
    "openai-responses": ResponseCreateParamsNonStreaming,
    "anthropic": MessageCreateParamsNonStreaming,
}
ADAPTERS = {kind: TypeAdapter(t) for kind, t in PARAMS_TYPES.items()}
DECLARED = {kind: set(typing.get_type_hints(t)) for kind, t in PARAMS_TYPES.items()}
# Sent when a config sets them; see the module docstring.
UNDECLARED_BUT_ACCEPTED = {"anthropic": {"temperature", "top_p", "top_k"}}
KINDS = tuple(PARAMS_TYPES)

SCHEMA = {
    "type": "object",
    "properties": {"total": {"type": "number"}, "currency": {"enum": ["USD", "EUR"]}},
    "required": ["total", "currency"],
    "additionalProperties": False,
}
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
        "additionalProperties": False,
    },
    strict=True,
)
TIME = ToolSpec(name="get_time", parameters={"type": "object", "properties": {}})
MESSAGES = (("system", "Be terse."), ("user", "Is 17077 prime?"))

# A [defaults].params table naming every param some kind knows: no kind may send a field its
# definition lacks, whatever the others use.
EVERY_PARAM: dict[str, Any] = {
    "temperature": 0.0,
    "top_p": 1.0,
    "max_tokens": 512,
    "stop": "###",
    "seed": 7,
    "reasoning_effort": "low",
    "frequency_penalty": 0.0,
    "presence_penalty": 0.0,
    "logit_bias": {},
    "logprobs": False,
    "top_logprobs": 0,
    "n": 1,
    "response_format": {"type": "text"},
    "service_tier": "auto",
    "user": "driftmon",
    "metadata": {"user_id": "driftmon"},
    "store": False,
    "parallel_tool_calls": True,
    "verbosity": "low",
    "prompt_cache_key": "driftmon",
    "safety_identifier": "driftmon",
    "reasoning": {"summary": "auto"},
    "truncation": "disabled",
    "max_tool_calls": 3,
    "top_k": 5,
    "stop_sequences": ["END"],
    "thinking": {"type": "enabled", "budget_tokens": 1024},
}
# max_completion_tokens and max_output_tokens are aliases of max_tokens, tested apart.
assert set(EVERY_PARAM) | {"max_completion_tokens", "max_output_tokens"} == ALL_PARAMS


@dataclass(frozen=True)
class Case:
    name: str
    request: ChatRequest
    provider_kwargs: dict[str, Any] = field(default_factory=dict)
    user_keys: frozenset[str] = frozenset()  # extra_body keys exempt from the declared check


def text(params: dict[str, Any], **kwargs: Any) -> ChatRequest:
    return ChatRequest(messages=MESSAGES, params=params, response_format="text", **kwargs)


def tools(choice: str) -> ChatRequest:
    return ChatRequest(
        messages=MESSAGES,
        params={"parallel_tool_calls": False},
        response_format="tool_call",
        tools=(WEATHER, TIME),
        tool_choice=choice,
    )


def schema(strict: bool) -> ChatRequest:
    return ChatRequest(
        messages=MESSAGES,
        params={"max_tokens": 256},
        response_format="json_schema",
        schema=SCHEMA,
        schema_name="invoice",
        strict=strict,
    )


CASES = [
    Case("text", text({"temperature": 0.0, "max_tokens": 64, "top_p": 1.0, "seed": 7})),
    Case("json", ChatRequest(messages=MESSAGES, params={}, response_format="json")),
    Case("json_schema_strict", schema(True)),
    Case("json_schema_loose", schema(False)),
    *[Case(f"tools_{choice}", tools(choice)) for choice in ("auto", "required", "none")],
    Case("tools_named", tools("get_time")),
    *[Case(f"effort_{e}", text({"reasoning_effort": e})) for e in REASONING_EFFORTS],
    Case("verbosity", text({"verbosity": "high", "max_tokens": 100})),
    Case("cap_completion", text({"max_completion_tokens": 300})),
    Case("cap_output", text({"max_output_tokens": 300})),
    Case(
        "cap_forced_completion",
        text({"max_tokens": 300}),
        {"token_limit_param": "max_completion_tokens"},
    ),
    Case("cap_forced_max_tokens", text({"max_tokens": 300}), {"token_limit_param": "max_tokens"}),
    Case("stop_list", text({"stop": ["a", "b"]})),
    Case("every_param", text(EVERY_PARAM)),
    Case("every_param_tools", dataclasses.replace(tools("required"), params=EVERY_PARAM)),
    Case(
        "extra_body_server_field",
        text({}),
        {"extra_body": {"top_k": 40, "metadata": {"user_id": "ops"}}},
        user_keys=frozenset({"top_k"}),
    ),
]
KIND_EXTRA_BODY: dict[str, dict[str, Any]] = {
    # Native fields a user may add through extra_body: they must still conform.
    "openai": {"prompt_cache_retention": "24h"},
    "openai-responses": {"reasoning": {"summary": "auto"}, "include": []},
    "anthropic": {"output_config": {"effort": "high"}},
}


def force(value: Any) -> Any:
    """Plain data from a validated value: consume pydantic's lazy iterators, recursively."""
    # pydantic returns a lazy validating iterator for each Iterable field.
    if isinstance(value, Iterator):
        return [force(item) for item in value]
    if isinstance(value, dict):
        return {key: force(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [force(item) for item in value]
    return value


def unknown_keys(sent: Any, validated: Any, path: str = "") -> list[str]:
    """Keys of `sent` that validation dropped: the definition does not know them."""
    missing: list[str] = []
    if isinstance(sent, dict) and isinstance(validated, dict):
        for key, value in sent.items():
            where = f"{path}.{key}" if path else key
            if key not in validated:
                missing.append(where)
            else:
                missing += unknown_keys(value, validated[key], where)
    elif isinstance(sent, list) and isinstance(validated, list):
        for index, (a, b) in enumerate(zip(sent, validated, strict=False)):
            missing += unknown_keys(a, b, f"{path}[{index}]")
    return missing


def assert_conforms(kind: str, body: dict[str, Any], exempt: set[str]) -> None:
    checked = {key: value for key, value in body.items() if key not in exempt}
    validated = force(ADAPTERS[kind].validate_python(checked))
    undeclared = set(checked) - DECLARED[kind]
    assert not undeclared, f"{kind} does not declare {sorted(undeclared)}"
    assert unknown_keys(checked, validated) == [], body


@pytest.fixture(scope="module")
def server() -> Iterator[shapes.ShapesServer]:
    with shapes.shapes_server() as running:
        yield running


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def provider(
    kind: str, server: shapes.ShapesServer, client: httpx.AsyncClient, **kwargs: Any
) -> Provider:
    return make_provider(
        kind,
        model="a-model",
        base_url=server.base_url,
        api_key="sk-conformance-0123456789",
        client=client,
        timeout=5.0,
        concurrency=1,
        retry=RetryPolicy(max_attempts=1),
        **kwargs,
    )


async def sent_body(
    kind: str, case: Case, server: shapes.ShapesServer, client: httpx.AsyncClient, **extra: Any
) -> dict[str, Any]:
    response = await provider(kind, server, client, **{**case.provider_kwargs, **extra}).complete(
        case.request
    )
    assert response.ok, response.error_message
    body = server.last.body
    assert isinstance(body, dict)
    return body


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
async def test_request_bodies_conform(
    kind: str, case: Case, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    body = await sent_body(kind, case, server, client)
    exempt = set(case.user_keys) | UNDECLARED_BUT_ACCEPTED.get(kind, set())
    assert_conforms(kind, body, exempt)


@pytest.mark.parametrize("kind", KINDS)
async def test_native_fields_through_extra_body_conform(
    kind: str, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    case = Case("extra", schema(True), {"extra_body": KIND_EXTRA_BODY[kind]})
    body = await sent_body(kind, case, server, client)
    for key in KIND_EXTRA_BODY[kind]:
        assert key in body
    assert_conforms(kind, body, UNDECLARED_BUT_ACCEPTED.get(kind, set()))


@pytest.mark.parametrize("kind", KINDS)
async def test_the_checks_catch_a_field_the_definition_lacks(
    kind: str, server: shapes.ShapesServer, client: httpx.AsyncClient
) -> None:
    # The same checks on a body with an undeclared key, top-level and nested, must fail:
    # otherwise the conformance test above could not fail either.
    body = await sent_body(kind, Case("tools", tools("auto")), server, client)
    with pytest.raises(AssertionError, match="does not declare"):
        assert_conforms(kind, {**body, "frobnicate": 1}, set())
    nested = dict(body)
    nested["tools"] = [{**body["tools"][0], "frobnicate": 1}]
    with pytest.raises(AssertionError):
        assert_conforms(kind, nested, set())


def test_every_native_field_from_kind_params_is_declared() -> None:
    """Each name an adapter can emit for a param of its kind exists in that kind's
    TypedDict (nested ones, like reasoning.effort, in the field's own TypedDict)."""
    emitted: dict[str, dict[str, str | None]] = {
        "openai": {
            "max_tokens": "max_completion_tokens",
            "max_completion_tokens": "max_completion_tokens",
            "max_output_tokens": "max_completion_tokens",
        },
        "openai-responses": {
            "max_tokens": "max_output_tokens",
            "max_completion_tokens": "max_output_tokens",
            "max_output_tokens": "max_output_tokens",
            "reasoning_effort": "reasoning.effort",
            "verbosity": "text.verbosity",
            "stop": None,
            "seed": None,
        },
        "anthropic": {
            "max_tokens": "max_tokens",
            "max_completion_tokens": "max_tokens",
            "max_output_tokens": "max_tokens",
            "stop": "stop_sequences",
            "reasoning_effort": "thinking",
            "seed": None,
        },
    }
    for kind, known in KIND_PARAMS.items():
        hints = typing.get_type_hints(PARAMS_TYPES[kind])
        for param in sorted(known):
            native = emitted[kind].get(param, param)
            if native is None or param in UNDECLARED_BUT_ACCEPTED.get(kind, set()):
                continue
            top, _, nested = native.partition(".")
            assert top in hints, f"{kind}: {param} → {native} is not declared"
            if nested:
                options = typing.get_args(hints[top]) or (hints[top],)
                inner = [t for t in options if hasattr(t, "__annotations__")]
                assert any(nested in typing.get_type_hints(t) for t in inner), native
    # openai's "auto" cap on other hosts, and an explicit choice, use max_tokens: declared too.
    assert "max_tokens" in DECLARED["openai"]


# --- the fake server's answers are real shapes ------------------------------------------------

CANNED = [
    (ChatCompletion, shapes.chat_completion()),
    (ChatCompletion, shapes.chat_completion(None, refusal="I can't help with that.")),
    (
        ChatCompletion,
        shapes.chat_completion(
            None, tool_calls=[("get_weather", '{"city": "Oslo"}')], finish_reason="tool_calls"
        ),
    ),
    (Response, shapes.responses_response()),
    (
        Response,
        shapes.responses_response(
            shapes.reasoning_item(),
            shapes.function_call("get_weather", '{"city": "Oslo"}'),
            reasoning_tokens=64,
        ),
    ),
    (Response, shapes.responses_response(shapes.output_message(shapes.refusal_part("No.")))),
    (
        Response,
        shapes.responses_response(
            shapes.output_message(shapes.output_text("cut")),
            status="incomplete",
            incomplete_reason="max_output_tokens",
        ),
    ),
    (
        Response,
        shapes.responses_response(
            status="failed", error={"code": "server_error", "message": "boom"}
        ),
    ),
    (Message, shapes.anthropic_message()),
    (Message, shapes.anthropic_message(shapes.text_block("I can't."), stop_reason="refusal")),
    (
        Message,
        shapes.anthropic_message(
            shapes.tool_use_block("get_weather", {"city": "Zürich"}), stop_reason="tool_use"
        ),
    ),
]


@pytest.mark.parametrize(("model", "body"), CANNED)
def test_canned_responses_are_real_shapes(model: Any, body: dict[str, Any]) -> None:
    validated = model.model_validate(body)
    dumped = validated.model_dump(mode="json", exclude_unset=True)
    assert unknown_keys(body, dumped) == []
