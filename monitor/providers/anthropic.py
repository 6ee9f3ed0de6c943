"""Anthropic Messages API: `POST {base_url}/messages`.

Probe sets are shared between targets of both kinds, so `params` written for OpenAI must not
make every Anthropic request a 400. The adapter therefore translates the two parameters that
have an Anthropic equivalent (`stop` → `stop_sequences`, `max_completion_tokens` →
`max_tokens`) and drops the OpenAI-only ones listed in `_OPENAI_ONLY_PARAMS` (the Messages
API rejects unknown fields; it has no `seed`, penalties, logprobs or `n`). Everything else
(temperature, top_p, top_k, stop_sequences, metadata, thinking, ...) passes through as given.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from monitor.errors import ErrorClass, PermanentProviderError
from monitor.providers.base import ChatRequest, Provider, ProviderResponse
from monitor.providers.wire import (
    JsonReply,
    as_int,
    as_str,
    clip,
    describe_error_body,
    protocol_error,
)

API_VERSION = "2023-06-01"
# The Messages API requires max_tokens; 1024 fits the short structured answers probes ask for.
DEFAULT_MAX_TOKENS = 1024

_RESERVED_PARAMS = frozenset({"model", "messages", "system", "stream"})
_OPENAI_ONLY_PARAMS = frozenset(
    {
        "seed",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "n",
        "response_format",
        "user",
        "parallel_tool_calls",
    }
)

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "refusal",
    # Same meaning as OpenAI's name, so the finish_reason metric speaks one vocabulary.
    "tool_use": "tool_calls",
}

# Anthropic has no response_format (the adapter predates its structured-outputs beta and keeps
# to the stable API), so a json_schema probe gets the schema as an instruction appended to its
# last user message. The text is fixed and the schema is serialised with sorted keys, so the
# same probe always sends byte-identical prompts and cannot look like drift by itself.
SCHEMA_INSTRUCTION = (
    "\n\nRespond with only a JSON value that conforms to the following JSON Schema, "
    "with no other text before or after it.\n"
    "JSON Schema:\n{schema}"
)


class AnthropicProvider(Provider):
    kind: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com/v1"
    supports_json_schema: ClassVar[bool] = False
    request_id_header: ClassVar[str] = "request-id"
    # Anthropic names the model in the body only; gateways in front of it may add a header.
    identity_headers: ClassVar[tuple[str, ...]] = ("x-model", "x-served-model")

    async def _send(self, request: ChatRequest) -> ProviderResponse:
        reply = await self._post_json("messages", self._body(request), self._auth_headers())
        return self._parse(reply)

    def _auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        clash = _RESERVED_PARAMS.intersection(request.params)
        if clash:
            raise PermanentProviderError(
                ErrorClass.BAD_REQUEST,
                f"params may not set {', '.join(sorted(clash))}: the adapter sets them",
            )
        messages = list(request.messages)
        system_parts: list[str] = []
        while messages and messages[0][0] == "system":
            system_parts.append(messages.pop(0)[1])
        if any(role == "system" for role, _ in messages):
            # The API has no system role inside `messages`; say so before spending a request.
            raise PermanentProviderError(
                ErrorClass.BAD_REQUEST, "anthropic: system messages are only allowed first"
            )
        if request.response_format == "json_schema":
            messages = _with_schema_instruction(messages, request.schema)

        params = {k: v for k, v in request.params.items() if k not in _OPENAI_ONLY_PARAMS}
        if "stop" in params:
            stop = params.pop("stop")
            if stop is not None and "stop_sequences" not in params:
                params["stop_sequences"] = [stop] if isinstance(stop, str) else stop
        if "max_completion_tokens" in params:
            max_completion = params.pop("max_completion_tokens")
            params.setdefault("max_tokens", max_completion)
        params.setdefault("max_tokens", DEFAULT_MAX_TOKENS)

        body: dict[str, Any] = {"model": self.model}
        if system_parts:
            body["system"] = "\n\n".join(system_parts)
        body["messages"] = [{"role": role, "content": content} for role, content in messages]
        body.update(params)
        return body

    def _parse(self, reply: JsonReply) -> ProviderResponse:
        data = reply.body
        if not isinstance(data, dict):
            raise protocol_error("response is not a JSON object", reply=reply)
        content = data.get("content")
        if not isinstance(content, list):
            if data.get("type") == "error":
                detail = clip(describe_error_body(data) or "error")
                raise protocol_error(f"HTTP {reply.status} with error: {detail}", reply=reply)
            raise protocol_error("response has no content list", reply=reply)
        # Text blocks joined as they come; thinking and tool_use blocks are not the answer.
        text = "".join(
            block["text"]
            for block in content
            if isinstance(block, dict)
            and block.get("type") == "text"
            and isinstance(block.get("text"), str)
        )
        stop_reason = as_str(data.get("stop_reason"))
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return ProviderResponse(
            text=text,
            model=as_str(data.get("model")),
            fingerprint=None,  # Anthropic returns nothing like system_fingerprint
            finish_reason=_STOP_REASONS.get(stop_reason, stop_reason) if stop_reason else None,
            input_tokens=as_int(usage.get("input_tokens")),
            output_tokens=as_int(usage.get("output_tokens")),
            http_status=reply.status,
            request_id=reply.request_id,
            identity_hints=self._identity_hints(reply.headers),
        )


def _with_schema_instruction(
    messages: list[tuple[str, str]], schema: dict[str, Any] | None
) -> list[tuple[str, str]]:
    if schema is None:
        raise PermanentProviderError(ErrorClass.BAD_REQUEST, "a json_schema request needs a schema")
    for index in range(len(messages) - 1, -1, -1):
        role, content = messages[index]
        if role == "user":
            rendered = json.dumps(schema, sort_keys=True, ensure_ascii=False)
            instructed = content + SCHEMA_INSTRUCTION.format(schema=rendered)
            return [*messages[:index], (role, instructed), *messages[index + 1 :]]
    raise PermanentProviderError(
        ErrorClass.BAD_REQUEST, "a json_schema request needs a user message"
    )
