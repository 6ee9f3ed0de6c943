"""Anthropic Messages API: `POST {base_url}/messages`.

Probe sets are shared between targets of every kind, so params written for OpenAI must not
make every Anthropic request a 400: the adapter translates the params that have an Anthropic
equivalent and drops the rest, as the table in `monitor.providers.params` says (`stop` →
`stop_sequences`, the output cap → `max_tokens`, `reasoning_effort` → extended thinking with a
budget, no `seed`, penalties, logprobs or `n`).

Structured output: a strict json_schema request uses the Messages API's own
`output_config.format` (constrained decoding, generally available, no beta header); a
non-strict one gets the schema as an instruction appended to its last user message, since not
every schema is accepted for constrained decoding. Tools go out as `tools` with an
`input_schema`; `tool_use` blocks come back as tool calls. `stop_reason: "refusal"` is the
model declining, whatever the language of its text.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from monitor.errors import ErrorClass, PermanentProviderError
from monitor.providers.base import ChatRequest, Provider, ProviderResponse, ToolCall, ToolSpec
from monitor.providers.params import THINKING_BUDGETS, TOKEN_CAP_PARAMS, token_cap
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

_RESERVED_PARAMS = frozenset(
    {"model", "messages", "system", "stream", "tools", "tool_choice", "output_config"}
)
_TOOL_CHOICES = {"auto": {"type": "auto"}, "required": {"type": "any"}, "none": {"type": "none"}}
# "temperature: Input should be ..." or "`temperature` is deprecated for this model."
_LEADING_FIELD = re.compile(r"\s*`?([A-Za-z_][\w.]*)`?\s*:")
_QUOTED_FIELD = re.compile(r"`([A-Za-z_][\w.]*)`")

_STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "refusal": "refusal",
    # Same meaning as OpenAI's name, so the finish_reason metric speaks one vocabulary.
    "tool_use": "tool_calls",
}

# A non-strict json_schema probe gets the schema as an instruction appended to its last user
# message. The text is fixed and the schema is serialised with sorted keys, so the
# same probe always sends byte-identical prompts and cannot look like drift by itself.
SCHEMA_INSTRUCTION = (
    "\n\nRespond with only a JSON value that conforms to the following JSON Schema, "
    "with no other text before or after it.\n"
    "JSON Schema:\n{schema}"
)


class AnthropicProvider(Provider):
    kind: ClassVar[str] = "anthropic"
    default_base_url: ClassVar[str] = "https://api.anthropic.com/v1"
    supports_json_schema: ClassVar[bool] = True
    request_id_header: ClassVar[str] = "request-id"
    # Anthropic names the model in the body only; gateways in front of it may add a header.
    identity_headers: ClassVar[tuple[str, ...]] = ("x-model", "x-served-model")

    async def _send(self, request: ChatRequest) -> ProviderResponse:
        body, origins = self._body(request)
        reply = await self._post_json("messages", body, self._auth_headers(), origins)
        return self._parse(reply)

    def output_mode(self, request: ChatRequest) -> str | None:
        if not request.tools and request.response_format == "json_schema" and not request.strict:
            return "prompt_schema"
        return super().output_mode(request)

    def _rejected_fields(self, data: Any) -> list[str]:
        """Anthropic names the field at the start of its message ("max_tokens: 100000 > 64000")
        or in backquotes ("`temperature` is deprecated for this model")."""
        error = data.get("error") if isinstance(data, dict) else None
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str):
            return []
        leading = _LEADING_FIELD.match(message)
        fields = [leading.group(1)] if leading else []
        return fields + _QUOTED_FIELD.findall(message)

    def _auth_headers(self) -> dict[str, str]:
        headers = {"anthropic-version": API_VERSION}
        if self._api_key:
            headers["x-api-key"] = self._api_key
        return headers

    def _body(self, request: ChatRequest) -> tuple[dict[str, Any], dict[str, str]]:
        """The JSON body, and which driftmon param produced each field (for error_param)."""
        params = self._own_params(request, _RESERVED_PARAMS)
        messages = list(request.messages)
        system_parts: list[str] = []
        while messages and messages[0][0] == "system":
            system_parts.append(messages.pop(0)[1])
        if any(role == "system" for role, _ in messages):
            # The API has no system role inside `messages`; say so before spending a request.
            raise PermanentProviderError(
                ErrorClass.BAD_REQUEST, "anthropic: system messages are only allowed first"
            )
        strict_schema = request.response_format == "json_schema" and request.strict
        if request.response_format == "json_schema" and not strict_schema:
            messages = _with_schema_instruction(messages, request.schema)

        origins = {name: name for name in params}
        if "stop" in params:
            stop = params.pop("stop")
            del origins["stop"]
            if stop is not None and "stop_sequences" not in params:
                params["stop_sequences"] = [stop] if isinstance(stop, str) else stop
                origins["stop_sequences"] = "stop"
        cap = token_cap(params, "max_tokens")
        for name in TOKEN_CAP_PARAMS:
            params.pop(name, None)
            origins.pop(name, None)
        # Without a cap in params the default is still the user's to change, under max_tokens.
        cap_param, max_tokens = cap if cap is not None else ("max_tokens", DEFAULT_MAX_TOKENS)
        origins["max_tokens"] = cap_param
        effort = params.pop("reasoning_effort", None)
        origins.pop("reasoning_effort", None)
        if effort is not None and "thinking" not in params:
            budget = _thinking_budget(effort)
            if budget is not None:
                params["thinking"] = {"type": "enabled", "budget_tokens": budget}
                origins["thinking"] = "reasoning_effort"
                # Thinking counts toward max_tokens: raise it so the answer keeps its cap.
                if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
                    max_tokens += budget

        body: dict[str, Any] = {"model": self.model, "max_tokens": max_tokens}
        if system_parts:
            body["system"] = "\n\n".join(system_parts)
        body["messages"] = [{"role": role, "content": content} for role, content in messages]
        body.update(params)
        owned: list[tuple[str, ...]] = []
        if strict_schema:
            if request.schema is None:
                raise PermanentProviderError(
                    ErrorClass.BAD_REQUEST, "a json_schema request needs a schema"
                )
            body["output_config"] = {"format": {"type": "json_schema", "schema": request.schema}}
            owned.append(("output_config", "format"))
        if request.tools:
            body["tools"] = [_tool(tool) for tool in request.tools]
            choice = self._checked_tool_choice(request)
            body["tool_choice"] = _TOOL_CHOICES.get(choice) or {"type": "tool", "name": choice}
            owned += [("tools",), ("tool_choice",)]
        return self._with_extra_body(body, owned, origins), origins

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
        calls: list[ToolCall] = []
        for block in content:
            if isinstance(block, dict) and block.get("type") == "tool_use":
                name = block.get("name")
                if not isinstance(name, str):
                    raise protocol_error("a tool_use block has no name", reply=reply)
                arguments = json.dumps(block.get("input"), ensure_ascii=False)
                calls.append(ToolCall(name=name, arguments=arguments))
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
            refused=stop_reason == "refusal",
            tool_calls=tuple(calls),
            reasoning_tokens=None,  # Anthropic does not count thinking apart
            cached_tokens=as_int(usage.get("cache_read_input_tokens")),
        )


def _tool(tool: ToolSpec) -> dict[str, Any]:
    definition: dict[str, Any] = {"name": tool.name}
    if tool.description:
        definition["description"] = tool.description
    definition["input_schema"] = tool.parameters
    if tool.strict:
        definition["strict"] = True
    return definition


def _thinking_budget(effort: Any) -> int | None:
    """The thinking budget for a reasoning_effort; None for "none" (no thinking)."""
    if effort == "none":
        return None
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        known = ", ".join(["none", *THINKING_BUDGETS])
        raise PermanentProviderError(
            ErrorClass.BAD_REQUEST,
            f"reasoning_effort {effort!r} has no Anthropic thinking budget; use one of {known}",
            error_param="reasoning_effort",
        )
    return budget


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
