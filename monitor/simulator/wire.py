"""The two wire formats: OpenAI chat completions and Anthropic Messages.

Requests are checked about as strictly as the real APIs check them (a missing `max_tokens` or
`anthropic-version` is a 400 there too), so the simulator catches adapter bugs instead of
hiding them. Errors come back in each API's own error body shape.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from monitor.simulator.behaviours import Answer, estimate_tokens
from monitor.simulator.model import Api


class BadRequest(Exception):
    """The request would be rejected by the real API with this status and message."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ChatCall:
    api: Api
    model: str
    last_user: str
    prompt_chars: int
    schema: Mapping[str, Any] | None
    json_requested: bool
    max_tokens: int | None


def _text_of(content: Any) -> str:
    """Message content as text: a string, or the text parts of a list of content blocks."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(part.get("text", "")) for part in content if isinstance(part, Mapping))
    raise BadRequest("message content must be a string or a list of content parts")


def _messages(data: Mapping[str, Any]) -> tuple[str, int]:
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("'messages' must be a non-empty array")
    last_user, chars = "", 0
    for m in messages:
        if not isinstance(m, Mapping) or not isinstance(m.get("role"), str):
            raise BadRequest("each message needs a 'role' and 'content'")
        text = _text_of(m.get("content", ""))
        chars += len(text)
        if m["role"] == "user":
            last_user = text
    return last_user, chars


def _model(data: Mapping[str, Any]) -> str:
    if data.get("stream"):
        raise BadRequest("the driftmon simulator does not stream: send stream=false")
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("you must provide a model parameter")
    return model


def parse_openai(data: Any) -> ChatCall:
    if not isinstance(data, Mapping):
        raise BadRequest("the request body must be a JSON object")
    model = _model(data)
    last_user, chars = _messages(data)
    max_tokens = data.get("max_completion_tokens", data.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise BadRequest("'max_tokens' must be a positive integer")
    schema: Mapping[str, Any] | None = None
    json_requested = False
    fmt = data.get("response_format")
    if fmt is not None:
        kind = fmt.get("type") if isinstance(fmt, Mapping) else None
        if kind == "json_schema":
            spec = fmt.get("json_schema")
            if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
                raise BadRequest("Missing required parameter: 'response_format.json_schema.name'.")
            schema = spec.get("schema", {})
            if not isinstance(schema, Mapping):
                raise BadRequest("'response_format.json_schema.schema' must be an object")
            json_requested = True
        elif kind == "json_object":
            json_requested = True
        elif kind != "text":
            raise BadRequest(f"Invalid value for 'response_format.type': {kind!r}")
    return ChatCall("openai", model, last_user, chars, schema, json_requested, max_tokens)


def parse_anthropic(data: Any, headers: Mapping[str, str]) -> ChatCall:
    if "anthropic-version" not in headers:
        raise BadRequest("anthropic-version: header is required")
    if not isinstance(data, Mapping):
        raise BadRequest("the request body must be a JSON object")
    model = _model(data)
    max_tokens = data.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise BadRequest("max_tokens: Field required (a positive integer)")
    last_user, chars = _messages(data)
    chars += len(_text_of(data.get("system", "")))
    schema: Mapping[str, Any] | None = None
    # Structured outputs: `output_config.format` (GA), or the beta's `output_format`.
    config = data.get("output_config")
    fmt = config.get("format") if isinstance(config, Mapping) else data.get("output_format")
    if isinstance(fmt, Mapping) and fmt.get("type") == "json_schema":
        schema = fmt.get("schema") if isinstance(fmt.get("schema"), Mapping) else {}
    return ChatCall("anthropic", model, last_user, chars, schema, schema is not None, max_tokens)


# Unique per process without a uuid4 per id: a random prefix and a counter.
_ID_PREFIX = secrets.token_hex(6)
_ids = itertools.count(1)


def _new_id() -> str:
    return f"{_ID_PREFIX}{next(_ids):012x}"


def openai_body(
    call: ChatCall, answer: Answer, model: str, fingerprint: str | None
) -> tuple[bytes, dict[str, str]]:
    prompt, completion = estimate_tokens(" " * call.prompt_chars), estimate_tokens(answer.text)
    body = {
        "id": f"chatcmpl-{_new_id()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": fingerprint,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": answer.text,
                    # Structured-output refusals carry the text here too; we also keep it in
                    # content so adapters that only read content see it.
                    "refusal": answer.text if answer.refusal else None,
                },
                "logprobs": None,
                "finish_reason": answer.finish_reason,
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return json.dumps(body).encode(), {"x-request-id": f"req_{_new_id()}"}


_STOP_REASON = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}


def anthropic_body(call: ChatCall, answer: Answer, model: str) -> tuple[bytes, dict[str, str]]:
    body = {
        "id": f"msg_{_new_id()}",
        "type": "message",
        "role": "assistant",
        "model": model,
        # The real API can answer with no content blocks at all; `empty` mimics that.
        "content": [{"type": "text", "text": answer.text}] if answer.text else [],
        "stop_reason": _STOP_REASON.get(answer.finish_reason, answer.finish_reason),
        "stop_sequence": None,
        "usage": {
            "input_tokens": estimate_tokens(" " * call.prompt_chars),
            "output_tokens": estimate_tokens(answer.text),
        },
    }
    return json.dumps(body).encode(), {"request-id": f"req_{_new_id()}"}


_OPENAI_ERROR = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "permission_denied"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_ANTHROPIC_ERROR = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def error_body(api: Api, status: int, message: str) -> tuple[bytes, dict[str, str]]:
    if api == "openai":
        kind, code = _OPENAI_ERROR.get(status, ("server_error", None))
        body: dict[str, Any] = {
            "error": {"message": message, "type": kind, "param": None, "code": code}
        }
        return json.dumps(body).encode(), {"x-request-id": f"req_{_new_id()}"}
    kind = _ANTHROPIC_ERROR.get(status, "api_error" if status >= 500 else "invalid_request_error")
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return json.dumps(body).encode(), {"request-id": f"req_{_new_id()}"}


def malformed_body(api: Api, variant: str) -> bytes:
    """HTTP 200 bodies a client must refuse: cut-off JSON, or JSON of the wrong shape."""
    if variant == "wrong_shape":
        if api == "openai":
            return json.dumps(
                {"id": f"chatcmpl-{_new_id()}", "object": "chat.completion", "choices": []}
            ).encode()
        return json.dumps(
            {"id": f"msg_{_new_id()}", "type": "message", "role": "assistant"}
        ).encode()
    head = '{"id": "chatcmpl-' if api == "openai" else '{"id": "msg_'
    return (head + _new_id() + '", "choices": [{"index": 0, "mess').encode()


def models_body(api: Api, models: list[str]) -> bytes:
    if api == "openai":
        data: list[dict[str, Any]] = [
            {"id": m, "object": "model", "created": 0, "owned_by": "driftmon-simulator"}
            for m in models
        ]
        return json.dumps({"object": "list", "data": data}).encode()
    data = [
        {"type": "model", "id": m, "display_name": m, "created_at": "2024-01-01T00:00:00Z"}
        for m in models
    ]
    return json.dumps(
        {
            "data": data,
            "has_more": False,
            "first_id": models[0] if models else None,
            "last_id": models[-1] if models else None,
        }
    ).encode()
