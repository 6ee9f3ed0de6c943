"""A loopback HTTP server answering in each provider's shape, recording what it was sent.

`ShapesServer` listens on 127.0.0.1 and answers `POST .../chat/completions` (OpenAI chat
completions), `.../responses` (OpenAI Responses) and `.../messages` (Anthropic Messages). Each
request is recorded (method, path, query, headers, JSON body) and answered with the next queued
`Reply`, or with the default answer of the path's shape when none is queued. The builders below
make bodies in each shape; tests/unit/test_wire_conformance.py validates them against the
providers' published response models, so the shapes are real.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names lower-cased
    body: Any


@dataclass(frozen=True)
class Reply:
    status: int
    body: Any
    headers: Mapping[str, str] = field(default_factory=dict)


# --- bodies in each shape --------------------------------------------------------------------


def chat_completion(
    content: str | None = "hi",
    *,
    refusal: str | None = None,
    tool_calls: list[tuple[str, str]] | None = None,
    finish_reason: str = "stop",
    reasoning_tokens: int = 0,
    cached_tokens: int = 0,
    model: str = "gpt-5-2025-08-07",
) -> dict[str, Any]:
    """An OpenAI ChatCompletion; `tool_calls` as (name, arguments JSON text) pairs."""
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": refusal}
    if tool_calls:
        message["tool_calls"] = [
            {
                "id": f"call_{index}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
            for index, (name, arguments) in enumerate(tool_calls)
        ]
    return {
        "id": "chatcmpl-shape",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": model,
        "system_fingerprint": "fp_shape",
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}
        ],
        "usage": {
            "prompt_tokens": 12,
            "completion_tokens": 30,
            "total_tokens": 42,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        },
    }


def output_message(*parts: dict[str, Any]) -> dict[str, Any]:
    """A Responses output item of type message holding `parts`."""
    return {
        "id": "msg_shape",
        "type": "message",
        "role": "assistant",
        "status": "completed",
        "content": list(parts),
    }


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": []}


def refusal_part(text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text}


def function_call(name: str, arguments: str) -> dict[str, Any]:
    return {
        "id": "fc_shape",
        "type": "function_call",
        "call_id": "call_shape",
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def reasoning_item() -> dict[str, Any]:
    return {"id": "rs_shape", "type": "reasoning", "summary": []}


def responses_response(
    *output: dict[str, Any],
    status: str = "completed",
    incomplete_reason: str | None = None,
    error: dict[str, str] | None = None,
    reasoning_tokens: int = 0,
    cached_tokens: int = 0,
    model: str = "gpt-5-2025-08-07",
) -> dict[str, Any]:
    """An OpenAI Responses `Response`; with no `output`, one message saying "hi"."""
    items = list(output) if output else [output_message(output_text("hi"))]
    return {
        "id": "resp_shape",
        "object": "response",
        "created_at": 1_760_000_000,
        "model": model,
        "status": status,
        "error": error,
        "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
        "output": items,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": 12,
            "input_tokens_details": {"cached_tokens": cached_tokens, "cache_write_tokens": 0},
            "output_tokens": 30,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": 42,
        },
    }


def anthropic_message(
    *content: dict[str, Any],
    stop_reason: str = "end_turn",
    cache_read_input_tokens: int = 0,
    model: str = "claude-sonnet-4-6",
) -> dict[str, Any]:
    """An Anthropic Message; with no `content`, one text block saying "hi"."""
    return {
        "id": "msg_shape",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": list(content) if content else [text_block("hi")],
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": 12,
            "output_tokens": 30,
            "cache_read_input_tokens": cache_read_input_tokens,
            "cache_creation_input_tokens": 0,
        },
    }


def text_block(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text, "citations": None}


def tool_use_block(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_use", "id": "toolu_shape", "name": name, "input": arguments}


def openai_error(message: str, *, param: str | None = None, code: str | None = None) -> Any:
    """OpenAI's (and the Responses API's) error body."""
    return {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": param,
            "code": code,
        }
    }


def anthropic_error(message: str, kind: str = "invalid_request_error") -> Any:
    return {"type": "error", "error": {"type": kind, "message": message}}


_DEFAULTS: dict[str, Callable[[], dict[str, Any]]] = {
    "chat/completions": chat_completion,
    "responses": responses_response,
    "messages": anthropic_message,
}
_REQUEST_ID_HEADERS = {"messages": "request-id"}


# --- the server -------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.requests: list[Recorded] = []
        self.replies: deque[Reply] = deque()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("content-length", "0")))
        url = urlsplit(self.path)
        try:
            body = json.loads(raw)
        except ValueError:
            body = raw.decode("utf-8", "replace")
        shape = next((s for s in _DEFAULTS if url.path.endswith("/" + s)), None)
        with self.server.lock:
            self.server.requests.append(
                Recorded(
                    method="POST",
                    path=url.path,
                    query=parse_qs(url.query),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
            )
            queued = self.server.replies.popleft() if self.server.replies else None
        if queued is None:
            if shape is None:
                queued = Reply(404, {"error": {"message": f"no such path {url.path}"}})
            else:
                queued = Reply(200, _DEFAULTS[shape]())
        id_header = _REQUEST_ID_HEADERS.get(shape or "", "x-request-id")
        payload = json.dumps(queued.body).encode()
        self.send_response(queued.status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        if id_header not in {name.lower() for name in queued.headers}:
            self.send_header(id_header, "req_shape")
        for name, value in queued.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)


class ShapesServer:
    """Handle on a running server: its URL, the requests it saw, replies to queue."""

    def __init__(self, server: _Server) -> None:
        self._server = server

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    @property
    def requests(self) -> list[Recorded]:
        with self._server.lock:
            return list(self._server.requests)

    @property
    def last(self) -> Recorded:
        return self.requests[-1]

    def reply(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        """Answer the next request with this instead of the default."""
        with self._server.lock:
            self._server.replies.append(Reply(status, body, dict(headers or {})))


@contextmanager
def shapes_server() -> Iterator[ShapesServer]:
    server = _Server()
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield ShapesServer(server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
