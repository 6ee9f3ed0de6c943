"""Provider adapters against a real HTTP server on 127.0.0.1: real sockets, real timeouts.

The server is `http.server` in a thread. Each test picks a behaviour through the first path
segment of its base_url (`http://127.0.0.1:PORT/<behaviour>/v1`).
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from monitor.errors import ErrorClass
from monitor.providers import ChatRequest, Provider, RetryPolicy, make_provider

API_KEY = "sk-loopback-SECRET-0123456789"
REQUEST = ChatRequest(messages=(("user", "Say hi"),), params={}, response_format="text")

OPENAI_BODY = {
    "model": "gpt-4o-2024-08-06",
    "system_fingerprint": "fp_loop",
    "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1},
}
ANTHROPIC_BODY = {
    "type": "message",
    "model": "claude-sonnet-4-5-20250929",
    "content": [{"type": "text", "text": "hi"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 3, "output_tokens": 1},
}


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.release = threading.Event()  # lets hanging handlers finish at teardown
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()
        self.seen_headers: list[dict[str, str]] = []


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean

    def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(raw)

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        self.rfile.read(length)
        behaviour = self.path.strip("/").split("/")[0]
        with self.server.lock:
            self.server.hits[behaviour] = self.server.hits.get(behaviour, 0) + 1
            hits = self.server.hits[behaviour]
            self.server.seen_headers.append(dict(self.headers.items()))
        if behaviour == "ok":
            body = ANTHROPIC_BODY if self.path.endswith("/messages") else OPENAI_BODY
            self._json(200, body, {"x-request-id": "req_loop", "request-id": "req_loop"})
        elif behaviour == "hang":
            self.server.release.wait(10)
            self._json(200, OPENAI_BODY)
        elif behaviour == "flaky":
            if hits == 1:
                self._json(503, {"error": {"message": "try again"}}, {"retry-after": "0"})
            else:
                self._json(200, OPENAI_BODY)
        elif behaviour == "huge":
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("transfer-encoding", "chunked")
            self.end_headers()
            chunk = b"x" * 65536
            try:
                for _ in range(1024):  # up to 64 MiB, far over the client's limit
                    if self.server.release.is_set():
                        break
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                pass  # the client hung up, as it should
            self.close_connection = True
        else:
            self._json(404, {"error": {"message": f"no behaviour {behaviour}"}})


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.release.set()
    srv.shutdown()
    srv.server_close()
    thread.join(5)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as c:
        yield c


def provider(
    client: httpx.AsyncClient, base_url: str, *, kind: str = "openai", **overrides: Any
) -> Provider:
    kwargs: dict[str, Any] = {
        "model": "m",
        "base_url": base_url,
        "api_key": API_KEY,
        "client": client,
        "timeout": 5.0,
        "concurrency": 2,
        "retry": RetryPolicy(max_attempts=1),
    }
    kwargs.update(overrides)
    return make_provider(kind, **kwargs)


def url(server: Server, behaviour: str) -> str:
    return f"http://127.0.0.1:{server.server_address[1]}/{behaviour}/v1/"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_real_round_trip(server: Server, client: httpx.AsyncClient, kind: str) -> None:
    response = await provider(client, url(server, "ok"), kind=kind).complete(REQUEST)
    assert response.ok, response.error_message
    assert response.text == "hi"
    assert response.request_id == "req_loop"
    assert response.input_tokens == 3
    assert response.latency_ms > 0
    headers = {k.lower(): v for k, v in server.seen_headers[-1].items()}
    if kind == "openai":
        assert headers["authorization"] == f"Bearer {API_KEY}"
    else:
        assert headers["x-api-key"] == API_KEY


async def test_real_timeout(server: Server, client: httpx.AsyncClient) -> None:
    slow = provider(client, url(server, "hang"), timeout=0.3)
    started = time.perf_counter()
    response = await slow.complete(REQUEST)
    elapsed = time.perf_counter() - started
    assert response.error_class is ErrorClass.TIMEOUT
    assert 0.25 < elapsed < 3
    assert response.attempts == 1


async def test_real_connection_refused(client: httpx.AsyncClient) -> None:
    # Bind a port, then close it: nothing listens there now.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = provider(client, f"http://127.0.0.1:{port}/v1", timeout=2.0)
    response = await closed.complete(REQUEST)
    assert response.error_class is ErrorClass.CONNECT
    assert response.http_status is None
    assert response.error_message is not None
    assert API_KEY not in response.error_message


async def test_real_retry_after_503(server: Server, client: httpx.AsyncClient) -> None:
    flaky = provider(
        client, url(server, "flaky"), retry=RetryPolicy(max_attempts=3, base_delay=0.01)
    )
    response = await flaky.complete(REQUEST)
    assert response.ok, response.error_message
    assert response.attempts == 2
    assert server.hits["flaky"] == 2


async def test_real_oversized_chunked_body_is_refused(
    server: Server, client: httpx.AsyncClient
) -> None:
    big = provider(client, url(server, "huge"), max_response_bytes=256 * 1024)
    started = time.perf_counter()
    response = await big.complete(REQUEST)
    assert response.error_class is ErrorClass.PROTOCOL
    assert response.error_message is not None and "larger than 262144 bytes" in (
        response.error_message
    )
    assert time.perf_counter() - started < 3
