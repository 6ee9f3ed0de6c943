"""The simulator's ASGI app: provider endpoints, faults, and the `/_sim` control endpoints.

Hot path per request: read the body, one `json.loads`, a rule lookup under a short lock, a
cached synthesised instance, one `json.dumps`. No file access, no YAML, no per-request logging.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from monitor.simulator import wire
from monitor.simulator.behaviours import Composer
from monitor.simulator.model import Api, FaultSpec, Scenario
from monitor.simulator.scenario import default_scenario
from monitor.simulator.state import SimState
from monitor.simulator.synth import SchemaError

_DROPPED = "ASGI callable returned without completing response."
_JSON = "application/json"


class _QuietDisconnects(logging.Filter):
    """uvicorn logs an error when a response is left unfinished, which is exactly how the
    `disconnect` fault works; that message is expected here and only noise."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _DROPPED


class _Disconnect(Response):
    """Start a response, then stop: uvicorn closes the connection mid-response, so the
    client sees the peer drop the connection before the body arrives."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})


def _retry_after(seconds: float) -> str:
    return f"{seconds:g}"


class _Handlers:
    def __init__(self, state: SimState) -> None:
        self.state = state
        self.composer = Composer()

    def _error(
        self, api: Api, status: int, message: str, extra: dict[str, str] | None = None
    ) -> Response:
        body, headers = wire.error_body(api, status, message)
        self.state.record_status(status)
        return Response(body, status, {**headers, **(extra or {})}, media_type=_JSON)

    async def openai(self, request: Request) -> Response:
        return await self._chat(request, "openai")

    async def anthropic(self, request: Request) -> Response:
        return await self._chat(request, "anthropic")

    async def _chat(self, request: Request, api: Api) -> Response:
        raw = await request.body()
        try:
            data = json.loads(raw)
            call = (
                wire.parse_openai(data)
                if api == "openai"
                else wire.parse_anthropic(data, request.headers)
            )
        except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
            return self._error(api, 400, f"the request body is not valid JSON: {exc}")
        except wire.BadRequest as exc:
            return self._error(api, exc.status, exc.message)
        ticket = self.state.admit(api, call.model, call.last_user)
        if ticket.fault is not None:
            return await self._fault(request, api, ticket.fault)
        spec = ticket.spec
        if spec.latency_ms is not None:
            delay = spec.latency_ms.draw(ticket.rng) / 1000
            if delay > 0:
                await asyncio.sleep(delay)
        try:
            answer = self.composer.compose(
                spec,
                ticket.behaviour,
                ticket.rng,
                schema=call.schema,
                json_requested=call.json_requested,
                cycle=ticket.cycle,
                max_tokens=call.max_tokens,
            )
        except SchemaError as exc:
            return self._error(api, 400, f"Invalid schema for response_format: {exc}")
        model = ticket.phase.served_model(call.model)
        if api == "openai":
            body, headers = wire.openai_body(call, answer, model, ticket.phase.fingerprint)
        else:
            body, headers = wire.anthropic_body(call, answer, model)
        self.state.record_status(200)
        return Response(body, 200, headers, media_type=_JSON)

    async def _fault(self, request: Request, api: Api, fault: FaultSpec) -> Response:
        extra: dict[str, str] = {}
        if fault.retry_after is not None:
            extra["retry-after"] = _retry_after(fault.retry_after)
            if api == "openai":
                extra["retry-after-ms"] = str(round(fault.retry_after * 1000))
        if fault.kind == "rate_limit":
            return self._error(api, fault.status, "Rate limit reached (simulated).", extra)
        if fault.kind in ("server_error", "error"):
            message = f"Simulated error {fault.status}."
            return self._error(api, fault.status, message, extra)
        if fault.kind == "malformed":
            self.state.record_status(200)
            return Response(wire.malformed_body(api, fault.variant), 200, media_type=_JSON)
        if fault.kind == "disconnect":
            return _Disconnect()
        return await self._hang(request, api, fault)

    async def _hang(self, request: Request, api: Api, fault: FaultSpec) -> Response:
        """Answer nothing until the client disconnects, the server stops, or hang_seconds."""
        loop = asyncio.get_running_loop()
        release = asyncio.Event()
        self.state.add_hang(loop, release)
        gone = asyncio.ensure_future(_wait_disconnect(request))
        woken = asyncio.ensure_future(release.wait())
        try:
            await asyncio.wait(
                {gone, woken}, timeout=fault.hang_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            gone.cancel()
            woken.cancel()
            self.state.remove_hang(loop, release)
        return self._error(api, 504, "Simulated hang: no answer was going to come.")

    async def models(self, request: Request) -> Response:
        api: Api = "anthropic" if "anthropic-version" in request.headers else "openai"
        phase = self.state.scenario.phase(self.state.phase)
        if phase.model is None:
            names = ["driftmon-simulated"]
        elif isinstance(phase.model, str):
            names = [phase.model]
        else:
            names = sorted(set(phase.model.values()))
        return Response(wire.models_body(api, names), 200, media_type=_JSON)

    async def stats(self, request: Request) -> Response:
        return JSONResponse(self.state.stats())

    async def phase(self, request: Request) -> Response:
        if request.method == "POST":
            try:
                data: Any = json.loads(await request.body())
            except ValueError:
                data = None
            name = data.get("phase") if isinstance(data, dict) else None
            if not isinstance(name, str):
                return JSONResponse({"error": 'send a JSON body {"phase": "NAME"}'}, 400)
            try:
                self.state.set_phase(name)
            except KeyError as exc:
                return JSONResponse({"error": str(exc.args[0])}, 404)
        return JSONResponse(
            {"phase": self.state.phase, "phases": list(self.state.scenario.phase_names)}
        )

    async def reset(self, request: Request) -> Response:
        self.state.reset()
        return JSONResponse({"reset": True, "phase": self.state.phase})


async def _wait_disconnect(request: Request) -> None:
    # The body is already read, so the next receive() returns only when the client goes away.
    while (await request.receive())["type"] != "http.disconnect":
        pass


def create_app(scenario: Scenario | None = None) -> Starlette:
    """The simulator as an ASGI app; `app.state.sim` is its `SimState`."""
    state = SimState(scenario if scenario is not None else default_scenario())
    h = _Handlers(state)
    error_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _QuietDisconnects) for f in error_log.filters):
        error_log.addFilter(_QuietDisconnects())
    routes = []
    # With and without /v1, so either style of base_url works.
    for prefix in ("/v1", ""):
        routes += [
            Route(f"{prefix}/chat/completions", h.openai, methods=["POST"]),
            Route(f"{prefix}/messages", h.anthropic, methods=["POST"]),
            Route(f"{prefix}/models", h.models, methods=["GET"]),
        ]
    routes += [
        Route("/_sim/stats", h.stats, methods=["GET"]),
        Route("/_sim/phase", h.phase, methods=["GET", "POST"]),
        Route("/_sim/reset", h.reset, methods=["POST"]),
    ]
    app = Starlette(routes=routes)
    app.state.sim = state
    return app
