"""The OpenAI Responses API: `POST {base_url}/responses` (target kind "openai-responses").

Some current OpenAI models are offered only here. Messages go out as `input` items (a system
message keeps its role; the API accepts "system" and "developer" there), params as the table in
`monitor.providers.params` says (the cap as `max_output_tokens`, `reasoning_effort` as
`reasoning.effort`, `verbosity` as `text.verbosity`; `stop` and `seed` do not exist here), and
`store: false` unless params say otherwise.

Structured output is `text.format: {type: "json_schema", name, schema, strict}`; tools are
function definitions at the top level of each tool. The answer is the concatenated
`output_text` parts of the output's message items; `function_call` items are the tool calls;
a `refusal` part is the model declining. Status maps to finish_reason: "completed" → "stop"
(or "tool_calls" when the output calls a tool); "incomplete" → "length" for
max_output_tokens, "content_filter" for content_filter. A "failed" response or an error object
is a `ProviderError` classed by its error code.
"""

from __future__ import annotations

from typing import Any, ClassVar

from monitor.errors import ErrorClass, PermanentProviderError
from monitor.providers.base import ChatRequest, ProviderResponse, ToolCall
from monitor.providers.openai import OpenAIProvider, arguments_text, function_definition
from monitor.providers.params import TOKEN_CAP_PARAMS, token_cap
from monitor.providers.wire import (
    JsonReply,
    as_int,
    as_str,
    clip,
    nested_int,
    protocol_error,
    provider_error,
)

_RESERVED_PARAMS = frozenset({"model", "input", "stream", "text", "tools", "tool_choice"})
# Roles an input message item may have.
_ROLES = frozenset({"user", "assistant", "system", "developer"})

_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}

# `error.code` of a failed response → error class; any other code counts as a server fault.
_FAILED_CODES = {
    "rate_limit_exceeded": ErrorClass.RATE_LIMIT,
    "server_error": ErrorClass.SERVER,
    "vector_store_timeout": ErrorClass.TIMEOUT,
    "invalid_prompt": ErrorClass.BAD_REQUEST,
}


class ResponsesProvider(OpenAIProvider):
    kind: ClassVar[str] = "openai-responses"

    async def _send(self, request: ChatRequest) -> ProviderResponse:
        body, origins = self._responses_body(request)
        reply = await self._post_json("responses", body, self._auth_headers(), origins)
        return self._parse_response(reply)

    def _responses_body(self, request: ChatRequest) -> tuple[dict[str, Any], dict[str, str]]:
        params = self._own_params(request, _RESERVED_PARAMS)
        for role, _ in request.messages:
            if role not in _ROLES:
                raise PermanentProviderError(
                    ErrorClass.BAD_REQUEST, f"openai-responses: no message role {role!r}"
                )
        body: dict[str, Any] = {
            "model": self.model,
            "input": [
                {"type": "message", "role": role, "content": content}
                for role, content in request.messages
            ],
        }
        origins: dict[str, str] = {}
        cap = token_cap(params, "max_output_tokens")
        for name in TOKEN_CAP_PARAMS:
            params.pop(name, None)
        effort = params.pop("reasoning_effort", None)
        verbosity = params.pop("verbosity", None)
        if not request.tools:
            params.pop("parallel_tool_calls", None)  # refused without tools, as on chat
        for name, value in params.items():
            body[name] = value
            origins[name] = name
        # A monitor must not fill the account's stored responses.
        body.setdefault("store", False)
        if cap is not None:
            body["max_output_tokens"] = cap[1]
            origins["max_output_tokens"] = cap[0]
        if effort is not None:
            reasoning = body.get("reasoning")
            body["reasoning"] = {**(reasoning if isinstance(reasoning, dict) else {})}
            body["reasoning"]["effort"] = effort
            origins["reasoning.effort"] = "reasoning_effort"
        text: dict[str, Any] = {}
        if verbosity is not None:
            text["verbosity"] = verbosity
            origins["text.verbosity"] = "verbosity"

        owned: list[tuple[str, ...]] = []
        if request.response_format == "json_schema":
            if request.schema is None:
                raise PermanentProviderError(
                    ErrorClass.BAD_REQUEST, "a json_schema request needs a schema"
                )
            text["format"] = {
                "type": "json_schema",
                "name": request.schema_name,
                "schema": request.schema,
                "strict": request.strict,
            }
            owned.append(("text", "format"))
        if text:
            body["text"] = text
        if request.tools:
            body["tools"] = [
                {"type": "function", **function_definition(tool)} for tool in request.tools
            ]
            choice = self._checked_tool_choice(request)
            body["tool_choice"] = (
                choice
                if choice in ("auto", "required", "none")
                else {"type": "function", "name": choice}
            )
            owned += [("tools",), ("tool_choice",)]
        return self._with_extra_body(body, owned, origins), origins

    def _parse_response(self, reply: JsonReply) -> ProviderResponse:
        data = reply.body
        if not isinstance(data, dict):
            raise protocol_error("response is not a JSON object", reply=reply)
        status = as_str(data.get("status"))
        error = data.get("error")
        if status == "failed" or isinstance(error, dict):
            raise _failed(error, reply)
        output = data.get("output")
        if not isinstance(output, list):
            raise protocol_error("response has no output list", reply=reply)
        if status not in (None, "completed", "incomplete"):
            # queued / in_progress / cancelled: only background mode answers before the end.
            raise protocol_error(f"response status is {status!r}, not a finished one", reply=reply)

        texts: list[str] = []
        refusals: list[str] = []
        calls: list[ToolCall] = []
        for item in output:
            if not isinstance(item, dict):
                continue
            if item.get("type") == "message" and isinstance(item.get("content"), list):
                for part in item["content"]:
                    if not isinstance(part, dict):
                        continue
                    if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                        texts.append(part["text"])
                    elif part.get("type") == "refusal":
                        refusals.append(as_str(part.get("refusal")) or "")
            elif item.get("type") == "function_call":
                name = item.get("name")
                if not isinstance(name, str):
                    raise protocol_error("a function_call item has no name", reply=reply)
                calls.append(ToolCall(name=name, arguments=arguments_text(item.get("arguments"))))
        text = "".join(texts)
        refused = bool(refusals)
        if status == "incomplete":
            details = data.get("incomplete_details")
            reason = as_str(details.get("reason")) if isinstance(details, dict) else None
            finish_reason = _INCOMPLETE_REASONS.get(reason or "", reason or "incomplete")
        elif refused:
            finish_reason = "refusal"
        else:
            finish_reason = "tool_calls" if calls else "stop"
        if refused and not text:
            text = "".join(refusals)
        usage = data.get("usage")
        usage = usage if isinstance(usage, dict) else {}
        return ProviderResponse(
            text=text,
            model=as_str(data.get("model")),
            fingerprint=None,  # the Responses API has no system_fingerprint
            finish_reason=finish_reason,
            input_tokens=as_int(usage.get("input_tokens")),
            output_tokens=as_int(usage.get("output_tokens")),
            http_status=reply.status,
            request_id=reply.request_id,
            identity_hints=self._identity_hints(reply.headers),
            refused=refused,
            tool_calls=tuple(calls),
            reasoning_tokens=nested_int(usage, "output_tokens_details", "reasoning_tokens"),
            cached_tokens=nested_int(usage, "input_tokens_details", "cached_tokens"),
        )


def _failed(error: Any, reply: JsonReply) -> Exception:
    """The ProviderError for a failed response (status "failed" or an error object)."""
    code = as_str(error.get("code")) if isinstance(error, dict) else None
    message = as_str(error.get("message")) if isinstance(error, dict) else None
    error_class = _FAILED_CODES.get(code or "")
    if error_class is None:
        # invalid_image, empty_image_file, ...: the request's content; else the service's fault.
        bad_input = code is not None and code.startswith(("invalid_", "empty_", "image_"))
        error_class = ErrorClass.BAD_REQUEST if bad_input else ErrorClass.SERVER
    detail = clip(": ".join(part for part in (code, message) if part) or "no error detail")
    return provider_error(
        error_class,
        f"HTTP {reply.status}: response failed: {detail}",
        http_status=reply.status,
        request_id=reply.request_id,
    )
