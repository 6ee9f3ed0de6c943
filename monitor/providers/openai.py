"""OpenAI-compatible chat completions: `POST {base_url}/chat/completions`.

Works with OpenAI, Azure OpenAI and the many servers that copy its wire format (vLLM, Ollama,
llama.cpp, OpenRouter, the driftmon simulator, ...). Params are translated as the table in
`monitor.providers.params` says: the output cap goes out as `max_completion_tokens` or
`max_tokens` according to the target's `token_limit_param`, the rest under their own names.

Structured output is OpenAI's `response_format: {type: "json_schema", json_schema: {name,
schema, strict}}`, strict as the request says (strict mode accepts only a subset of JSON
Schema, so the caller decides). Tools are function definitions; calls come back as
`message.tool_calls`. A structured-output refusal comes back in `message.refusal`.
"""

from __future__ import annotations

import functools
import json
from typing import Any, ClassVar

from monitor.errors import ErrorClass, PermanentProviderError
from monitor.providers.base import ChatRequest, Provider, ProviderResponse, ToolCall, ToolSpec
from monitor.providers.params import TOKEN_CAP_PARAMS, cap_field, token_cap
from monitor.providers.wire import (
    JsonReply,
    as_int,
    as_str,
    classify_status,
    clip,
    describe_error_body,
    nested_int,
    protocol_error,
    provider_error,
)

# Keys the adapter itself owns; taking them from params would break the request or its parsing.
_RESERVED_PARAMS = frozenset({"model", "messages", "stream", "tools", "tool_choice"})


class OpenAIProvider(Provider):
    kind: ClassVar[str] = "openai"
    default_base_url: ClassVar[str] = "https://api.openai.com/v1"
    supports_json_schema: ClassVar[bool] = True
    request_id_header: ClassVar[str] = "x-request-id"
    # OpenAI reports the served model in the body; gateways and compatible servers sometimes
    # add a header naming the deployment that really answered.
    identity_headers: ClassVar[tuple[str, ...]] = (
        "openai-model",
        "x-model",
        "x-served-model",
        "x-model-id",
    )

    async def _send(self, request: ChatRequest) -> ProviderResponse:
        body, origins = self._body(request)
        reply = await self._post_json("chat/completions", body, self._auth_headers(), origins)
        return self._parse(reply)

    def _auth_headers(self) -> dict[str, str]:
        # Local compatible servers often run without a key: then no Authorization at all.
        return {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    @functools.cached_property
    def _cap_field(self) -> str:
        return cap_field(self.kind, self.base_url, self.token_limit_param)

    def _body(self, request: ChatRequest) -> tuple[dict[str, Any], dict[str, str]]:
        """The JSON body, and which driftmon param produced each field (for error_param)."""
        params = self._own_params(request, _RESERVED_PARAMS)
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": role, "content": content} for role, content in request.messages],
        }
        origins: dict[str, str] = {}
        cap = token_cap(params, self._cap_field)
        for name in TOKEN_CAP_PARAMS:
            params.pop(name, None)
        if not request.tools:
            # OpenAI refuses parallel_tool_calls on a request without tools.
            params.pop("parallel_tool_calls", None)
        for name, value in params.items():
            body[name] = value
            origins[name] = name
        if cap is not None:
            body[self._cap_field] = cap[1]
            origins[self._cap_field] = cap[0]

        owned: list[tuple[str, ...]] = []
        if request.response_format == "json_schema":
            if request.schema is None:
                raise PermanentProviderError(
                    ErrorClass.BAD_REQUEST, "a json_schema request needs a schema"
                )
            # The probe's structured-output request wins over a response_format in params.
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.schema,
                    "strict": request.strict,
                },
            }
            origins.pop("response_format", None)
            owned.append(("response_format",))
        # "json": no response_format. The spec defines it as JSON asked for in plain text (the
        # prompt says so); JSON mode ({"type": "json_object"}) would change what is measured,
        # is missing on many compatible servers and 400s unless a message says "JSON". A target
        # that wants JSON mode can still put response_format in its params.
        # "text": nothing to add.
        if request.tools:
            body["tools"] = [
                {"type": "function", "function": function_definition(tool)}
                for tool in request.tools
            ]
            choice = self._checked_tool_choice(request)
            body["tool_choice"] = (
                choice
                if choice in ("auto", "required", "none")
                else {"type": "function", "function": {"name": choice}}
            )
            owned += [("tools",), ("tool_choice",)]
        return self._with_extra_body(body, owned, origins), origins

    def _parse(self, reply: JsonReply) -> ProviderResponse:
        data = reply.body
        if not isinstance(data, dict):
            raise protocol_error("response is not a JSON object", reply=reply)
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices:
            _raise_error_in_body(data, reply)
            raise protocol_error("response has no choices", reply=reply)
        choice = choices[0]
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            raise protocol_error("response has no choices[0].message", reply=reply)
        finish_reason = as_str(choice.get("finish_reason"))
        content = message.get("content")
        if isinstance(content, str):
            text = content
        elif content is None:
            text = ""  # e.g. only tool calls, or a refusal (below)
        elif isinstance(content, list):
            # Some compatible servers return content parts like the request format allows.
            text = "".join(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
        else:
            raise protocol_error("choices[0].message.content is not text", reply=reply)
        refusal = message.get("refusal")
        refused = isinstance(refusal, str) and bool(refusal)
        if refused and not text:
            # A structured-output refusal: no content, the explanation in `refusal`.
            text, finish_reason = str(refusal), "refusal"
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return ProviderResponse(
            text=text,
            model=as_str(data.get("model")),
            fingerprint=as_str(data.get("system_fingerprint")) or None,
            finish_reason=finish_reason,
            input_tokens=as_int(usage.get("prompt_tokens")),
            output_tokens=as_int(usage.get("completion_tokens")),
            http_status=reply.status,
            request_id=reply.request_id,
            identity_hints=self._identity_hints(reply.headers),
            refused=refused,
            tool_calls=_tool_calls(message.get("tool_calls"), reply),
            reasoning_tokens=nested_int(usage, "completion_tokens_details", "reasoning_tokens"),
            cached_tokens=nested_int(usage, "prompt_tokens_details", "cached_tokens"),
        )


def _tool_calls(raw: Any, reply: JsonReply) -> tuple[ToolCall, ...]:
    """`message.tool_calls` as ToolCalls; entries of other types (custom tools) are skipped."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise protocol_error("choices[0].message.tool_calls is not a list", reply=reply)
    calls: list[ToolCall] = []
    for item in raw:
        function = item.get("function") if isinstance(item, dict) else None
        if not isinstance(function, dict):
            continue
        name = function.get("name")
        if not isinstance(name, str):
            raise protocol_error("a tool call has no function name", reply=reply)
        calls.append(ToolCall(name=name, arguments=arguments_text(function.get("arguments"))))
    return tuple(calls)


def function_definition(tool: ToolSpec) -> dict[str, Any]:
    """A tool as OpenAI's function definition (the description only when there is one)."""
    definition: dict[str, Any] = {"name": tool.name}
    if tool.description:
        definition["description"] = tool.description
    definition["parameters"] = tool.parameters
    definition["strict"] = tool.strict
    return definition


def arguments_text(arguments: Any) -> str:
    """A call's arguments as JSON text: as produced when text, re-serialised when decoded."""
    if isinstance(arguments, str):
        return arguments
    if arguments is None:
        return ""
    return json.dumps(arguments, ensure_ascii=False)


def _raise_error_in_body(data: dict[str, Any], reply: JsonReply) -> None:
    """Some gateways (OpenRouter, LiteLLM proxies) answer 200 with an error object inside."""
    error = data.get("error")
    if error is None:
        return
    detail = clip(describe_error_body(data) or "error object in a 2xx response")
    code = as_int(error.get("code")) if isinstance(error, dict) else None
    error_class = classify_status(code) if code is not None and 400 <= code < 600 else None
    raise provider_error(
        error_class or ErrorClass.PROTOCOL,
        f"HTTP {reply.status} with error: {detail}",
        http_status=reply.status,
        request_id=reply.request_id,
    )
