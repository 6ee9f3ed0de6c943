"""A simulated Slack on loopback, for the demo and the tests: the Web API methods driftmon uses
and an incoming webhook.

    with FakeSlack(token="xoxb-test") as slack:
        client = WebClient(token="xoxb-test", base_url=slack.api_url)
        slack.fail_next("ratelimited", status=429, retry_after=7)
        ...
        slack.calls("chat.postMessage")[0].body["thread_ts"]

It answers like Slack: Web API methods with `{"ok": true, ...}` or `{"ok": false, "error": ...}`,
the webhook with the text `ok` or an HTTP error status and the error code as text. Every request
is recorded (path, headers, decoded body); failures are programmed per request, in order.

With `validate=True` it also checks payloads the way Slack does (`slack_problems`, also used
by the tests as an oracle independent of the renderer): more than 50 blocks, a section text over
3,000 characters, a header over 150, ... give `invalid_blocks`; over 13,000 characters of block
text in all gives `msg_blocks_too_long` (what slackapi/bolt-js#2509 observed); a `text` over
40,000 gives `msg_too_long`. Lengths count UTF-16 code units, as Slack's JavaScript would.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

TOTAL_BLOCK_TEXT = 13_000
# The HTTP status an incoming webhook answers each error with (Slack changelog 2016-05-17).
WEBHOOK_STATUS = {
    "invalid_payload": 400,
    "invalid_blocks": 400,
    "invalid_blocks_format": 400,
    "msg_blocks_too_long": 400,
    "user_not_found": 400,
    "action_prohibited": 403,
    "invalid_token": 403,
    "channel_not_found": 404,
    "no_service": 404,
    "channel_is_archived": 410,
    "rate_limited": 429,
    "ratelimited": 429,
}


def _len16(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _text_of(obj: Any, limit: int, where: str, types: Sequence[str]) -> tuple[list[str], int]:
    if not isinstance(obj, Mapping) or obj.get("type") not in types:
        return [f"{where}: not a text object of type {'/'.join(types)}"], 0
    text = obj.get("text")
    if not isinstance(text, str) or not 0 < _len16(text) <= limit:
        size = _len16(text) if isinstance(text, str) else "no"
        return [f"{where}: text must be 1..{limit} characters, is {size}"], 0
    return [], _len16(text)


def slack_problems(text: Any, blocks: Any) -> list[tuple[str, str]]:
    """(error code, detail) for each way Slack would refuse this payload; empty: accepted."""
    problems: list[tuple[str, str]] = []
    if text is not None and (not isinstance(text, str) or _len16(text) > 40_000):
        problems.append(("msg_too_long", "text over 40,000 characters"))
    if blocks is None:
        return problems
    if isinstance(blocks, str):  # form-encoded requests carry blocks as a JSON string
        blocks = json.loads(blocks)
    if not isinstance(blocks, list) or not 0 < len(blocks) <= 50:
        return [*problems, ("invalid_blocks", "blocks must be a list of 1..50 blocks")]
    total = 0
    for i, block in enumerate(blocks):
        kind = block.get("type") if isinstance(block, Mapping) else None
        found: list[str] = []
        if kind == "header":
            found, size = _text_of(block.get("text"), 150, f"blocks[{i}].text", ["plain_text"])
            total += size
        elif kind == "section":
            found, size = _text_of(
                block.get("text"), 3000, f"blocks[{i}].text", ["mrkdwn", "plain_text"]
            )
            total += size
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not 0 < len(elements) <= 10:
                found = [f"blocks[{i}].elements: 1..10 elements"]
            for j, element in enumerate(elements if isinstance(elements, list) else []):
                more, size = _text_of(
                    element, 3000, f"blocks[{i}].elements[{j}]", ["mrkdwn", "plain_text"]
                )
                found, total = found + more, total + size
        elif kind != "divider":
            found = [f"blocks[{i}]: unsupported block type {kind!r}"]
        problems += [("invalid_blocks", f) for f in found]
    if total > TOTAL_BLOCK_TEXT:
        problems.append(("msg_blocks_too_long", f"{total} characters of block text"))
    return problems


@dataclass(frozen=True)
class Recorded:
    method: str  # "chat.postMessage", "chat.update", "auth.test", "webhook", ...
    path: str
    headers: dict[str, str]  # lower-case names
    body: dict[str, Any]  # the JSON object or the form fields


@dataclass
class _Planned:
    error: str | None
    status: int | None
    retry_after: float | None
    delay: float
    body: str | None


@dataclass
class _State:
    requests: list[Recorded] = field(default_factory=list)
    planned: list[_Planned] = field(default_factory=list)
    messages: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counter: int = 0


class FakeSlack:
    """The fake on a real loopback socket, served from a background thread."""

    def __init__(
        self,
        *,
        token: str | None = None,
        channels: set[str] | None = None,
        webhook_path: str = "/services/T0FAKE/B0FAKE/not-a-real-secret",
        validate: bool = False,
    ) -> None:
        self.token, self.webhook_path, self.channels = token, webhook_path, channels
        self.validate = validate
        self._state, self._lock, self._closing = _State(), threading.Lock(), threading.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self.url = ""
        # Called (in the server thread) with each request before it is answered: a test can
        # act at the exact moment between Slack accepting a message and the client knowing.
        self.on_request: Callable[[Recorded], None] | None = None
        self.app = Starlette(
            routes=[
                Route("/api/{method}", self._api, methods=["GET", "POST"]),
                Route("/{path:path}", self._webhook, methods=["POST"]),
            ]
        )

    # --- control -----------------------------------------------------------------------------
    @property
    def api_url(self) -> str:
        return self.url + "/api/"

    @property
    def webhook_url(self) -> str:
        return self.url + self.webhook_path

    def fail_next(
        self,
        error: str | None = None,
        *,
        status: int | None = None,
        times: int = 1,
        retry_after: float | None = None,
        delay: float = 0.0,
        body: str | None = None,
    ) -> None:
        """The next `times` requests fail with `error` (`{"ok": false}`, or a webhook's text),
        HTTP `status` (Web API default 200, webhook's by error), a Retry-After header, a raw
        `body` (an HTML page), after `delay` s. Only `delay`: they hang, then succeed."""
        with self._lock:
            self._state.planned += [_Planned(error, status, retry_after, delay, body)] * times

    def clear_failures(self) -> None:
        """Forget the failures still planned: Slack has recovered."""
        with self._lock:
            self._state.planned.clear()

    @property
    def requests(self) -> list[Recorded]:
        with self._lock:
            return list(self._state.requests)

    def calls(self, method: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method]

    def messages(self, channel: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(m) for m in self._state.messages.get(channel, [])]

    # --- serving -----------------------------------------------------------------------------
    async def _record(self, request: Request, method: str) -> tuple[Recorded, _Planned | None]:
        raw = (await request.body()).decode("utf-8", "surrogatepass")
        kind = request.headers.get("content-type", "")
        body = (
            dict(parse_qsl(raw))
            if "x-www-form-urlencoded" in kind
            else (json.loads(raw) if raw.strip() else {})
        )
        headers = {k.lower(): v for k, v in request.headers.items()}
        recorded = Recorded(method, request.url.path, headers, body)
        with self._lock:
            self._state.requests.append(recorded)
            planned = self._state.planned.pop(0) if self._state.planned else None
        if self.on_request is not None:
            self.on_request(recorded)
        deadline = time.monotonic() + (planned.delay if planned else 0)
        while time.monotonic() < deadline and not self._closing.is_set():  # hang, until stop()
            await asyncio.sleep(0.02)
        return recorded, planned

    def _planned_answer(self, planned: _Planned | None, webhook: bool) -> Response | None:
        if planned is None or (planned.error is None and planned.body is None):
            return None
        headers = {} if planned.retry_after is None else {"Retry-After": f"{planned.retry_after:g}"}
        if planned.body is not None:
            return Response(planned.body, planned.status or 500, headers, "text/html")
        assert planned.error is not None
        if webhook:
            status = planned.status or WEBHOOK_STATUS.get(planned.error, 400)
            return PlainTextResponse(planned.error, status, headers)
        return JSONResponse({"ok": False, "error": planned.error}, planned.status or 200, headers)

    def _next_ts(self) -> str:
        with self._lock:
            self._state.counter += 1
            return f"{int(time.time())}.{self._state.counter:06d}"

    async def _api(self, request: Request) -> Response:
        method = request.path_params["method"]
        recorded, planned = await self._record(request, method)
        if (answer := self._planned_answer(planned, webhook=False)) is not None:
            return answer
        body = recorded.body
        auth = recorded.headers.get("authorization", "")
        given = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else body.get("token")
        if self.token is not None and not given:
            return JSONResponse({"ok": False, "error": "not_authed"})
        if self.token is not None and given != self.token:
            return JSONResponse({"ok": False, "error": "invalid_auth"})
        if method == "auth.test":
            return JSONResponse(
                {
                    "ok": True,
                    "url": "https://fake.slack.test/",
                    "team": "Fake",
                    "user": "driftmon",
                    "team_id": "T0FAKE",
                    "user_id": "U0BOT",
                    "bot_id": "B0BOT",
                }
            )
        if method not in ("chat.postMessage", "chat.update"):
            return JSONResponse({"ok": False, "error": "unknown_method"}, 404)
        channel = body.get("channel")
        if not channel or (self.channels is not None and channel not in self.channels):
            return JSONResponse({"ok": False, "error": "channel_not_found"})
        if not body.get("text") and not body.get("blocks"):
            return JSONResponse({"ok": False, "error": "no_text"})
        if self.validate and (problems := slack_problems(body.get("text"), body.get("blocks"))):
            details = {"messages": [detail for _, detail in problems]}  # as Slack's own answer
            return JSONResponse(
                {"ok": False, "error": problems[0][0], "response_metadata": details}
            )
        with self._lock:
            stored = self._state.messages.setdefault(channel, [])
        if method == "chat.update":
            target = next((m for m in stored if m["ts"] == body.get("ts")), None)
            if target is None:
                return JSONResponse({"ok": False, "error": "message_not_found"})
            target.update(text=body.get("text"), blocks=body.get("blocks"), edited=True)
            return JSONResponse(
                {"ok": True, "channel": channel, "ts": target["ts"], "text": body.get("text")}
            )
        ts = self._next_ts()
        message = {
            "type": "message",
            "ts": ts,
            "text": body.get("text"),
            "blocks": body.get("blocks"),
            "thread_ts": body.get("thread_ts"),
        }
        with self._lock:
            stored.append(message)
        return JSONResponse({"ok": True, "channel": channel, "ts": ts, "message": message})

    async def _webhook(self, request: Request) -> Response:
        recorded, planned = await self._record(request, "webhook")
        if (answer := self._planned_answer(planned, webhook=True)) is not None:
            return answer
        if recorded.path != self.webhook_path:
            return PlainTextResponse("no_service", 404)
        body = recorded.body
        if not body.get("text") and not body.get("blocks"):
            return PlainTextResponse("missing_text_or_fallback_or_attachments", 400)
        if self.validate and (problems := slack_problems(body.get("text"), body.get("blocks"))):
            return PlainTextResponse(problems[0][0], 400)
        with self._lock:
            self._state.messages.setdefault("webhook", []).append(
                {"text": body.get("text"), "blocks": body.get("blocks")}
            )
        return PlainTextResponse("ok")

    def start(self) -> FakeSlack:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        sock.listen(128)  # bound before uvicorn starts: the port is known and connections queue
        config = uvicorn.Config(
            self.app,
            lifespan="off",
            access_log=False,
            log_level="warning",
            log_config=None,
            timeout_graceful_shutdown=1,
        )
        self._server, self._sock = uvicorn.Server(config), sock
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-slack", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the fake Slack server did not start")
            time.sleep(0.002)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        return self

    def stop(self) -> None:
        self._closing.set()
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
