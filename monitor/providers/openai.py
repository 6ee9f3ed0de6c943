"""OpenAI-compatible chat completions: `POST {base_url}/chat/completions`.

Works with OpenAI and the many servers that copy its wire format (vLLM, Ollama, OpenRouter,
the driftmon simulator, ...). `params` go into the body as given, so a target can use
whatever its server understands (`max_completion_tokens`, `seed`, `response_format`, ...).
"""

from __future__ import annotations

from typing import Any, ClassVar

from monitor.errors import ErrorClass, PermanentProviderError
from monitor.providers.base import ChatRequest, Provider, ProviderResponse
from monitor.providers.wire import (
    JsonReply,
    as_int,
    as_str,
    classify_status,
    clip,
    describe_error_body,
    protocol_error,
    provider_error,
)

# Keys the adapter itself owns; taking them from params would break the request or its parsing.
_RESERVED_PARAMS = frozenset({"model", "messages", "stream"})


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
        reply = await self._post_json("chat/completions", self._body(request), self._auth_headers())
        return self._parse(reply)

    def _auth_headers(self) -> dict[str, str]:
        # Local compatible servers often run without a key: then no Authorization at all.
        return {"authorization": f"Bearer {self._api_key}"} if self._api_key else {}

    def _body(self, request: ChatRequest) -> dict[str, Any]:
        clash = _RESERVED_PARAMS.intersection(request.params)
        if clash:
            raise PermanentProviderError(
                ErrorClass.BAD_REQUEST,
                f"params may not set {', '.join(sorted(clash))}: the adapter sets them",
            )
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": role, "content": content} for role, content in request.messages],
        }
        body.update(request.params)
        if request.response_format == "json_schema":
            if request.schema is None:
                raise PermanentProviderError(
                    ErrorClass.BAD_REQUEST, "a json_schema request needs a schema"
                )
            # strict=False: strict mode accepts only a subset of JSON Schema (every property
            # required, additionalProperties false, no pattern/format/... on some models), which
            # arbitrary user schemas rarely meet; a strict request with such a schema is a 400.
            # Non-strict still steers the model, and our own validator judges the output.
            # The probe's structured-output request wins over a response_format in params.
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": request.schema_name,
                    "schema": request.schema,
                    "strict": False,
                },
            }
        # "json": no response_format. The spec defines it as JSON asked for in plain text (the
        # prompt says so); JSON mode ({"type": "json_object"}) would change what is measured,
        # is missing on many compatible servers and 400s unless a message says "JSON". A target
        # that wants JSON mode can still put response_format in its params.
        # "text": nothing to add.
        return body

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
            refusal = message.get("refusal")
            if isinstance(refusal, str) and refusal:
                # A structured-output refusal: no content, the explanation in `refusal`.
                text, finish_reason = refusal, "refusal"
            else:
                text = ""  # e.g. only tool calls; an empty answer, not a protocol fault
        elif isinstance(content, list):
            # Some compatible servers return content parts like the request format allows.
            text = "".join(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
        else:
            raise protocol_error("choices[0].message.content is not text", reply=reply)
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
        )


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
