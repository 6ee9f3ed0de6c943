"""Running the simulator: in a background thread (`SimulatorServer`) or in the foreground
(`serve_forever`, behind `driftmon simulate`).

We bind the listening socket ourselves before uvicorn starts, so the port is known at once
(also for port 0) and connections made right after we report the URL queue in the backlog
instead of being refused.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from starlette.applications import Starlette

from monitor.simulator.app import create_app
from monitor.simulator.model import Scenario
from monitor.simulator.scenario import default_scenario, load_scenario
from monitor.simulator.state import SimState

__all__ = ["SimulatorServer", "create_app", "serve_forever"]

_START_TIMEOUT = 10.0
_STOP_TIMEOUT = 10.0


class _Server(uvicorn.Server):
    """uvicorn's server, releasing hanging requests as soon as shutdown begins."""

    def __init__(self, config: uvicorn.Config, state: SimState) -> None:
        super().__init__(config)
        self.sim_state = state

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.sim_state.release_hangs()
        await super().shutdown(sockets=sockets)
        # uvicorn re-raises the SIGINT/SIGTERM that stopped it once it is done, turning a
        # clean stop into a KeyboardInterrupt traceback or a death by signal; for
        # `driftmon simulate` a signal is the normal way to stop, so it should exit 0.
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


def _config(app: Starlette, *, library: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        # "auto" takes httptools and uvloop when installed (faster), else h11 and asyncio.
        http="auto",
        loop="auto",
        lifespan="off",
        access_log=False,  # a log line per request would dominate a zero-latency benchmark
        log_level="warning",
        # Inside another program (tests, benchmarks) leave its logging configuration alone.
        log_config=None if library else uvicorn.config.LOGGING_CONFIG,
        timeout_graceful_shutdown=2,
        backlog=2048,
    )


def _bind(host: str, port: int) -> socket.socket:
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _as_scenario(scenario: Scenario | str | Path | None) -> Scenario:
    if scenario is None:
        return default_scenario()
    if isinstance(scenario, Scenario):
        return scenario
    return load_scenario(scenario)


class SimulatorServer:
    """The simulator on a real loopback socket, served from a background thread.

        with SimulatorServer(load_scenario("config/scenarios/drift.yaml")) as sim:
            httpx.post(sim.url + "/v1/chat/completions", json=...)
            sim.set_phase("june")
            sim.stats()["total"]

    `scenario` may be a Scenario, a path to a scenario file, or None for the built-in one.
    """

    def __init__(
        self, scenario: Scenario | str | Path | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.scenario = _as_scenario(scenario)
        self.app = create_app(self.scenario)
        self.state: SimState = self.app.state.sim
        self.host, self.port = host, port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None
        self._url: str | None = None

    @property
    def url(self) -> str:
        """`http://HOST:PORT`, without a trailing slash or /v1; only once started."""
        if self._url is None:
            raise RuntimeError("the simulator is not running: use it as a context manager")
        return self._url

    def start(self) -> SimulatorServer:
        if self._thread is not None:
            raise RuntimeError("the simulator is already running")
        sock = _bind(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = _Server(_config(self.app, library=True), self.state)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"driftmon-simulator-{self.port}",
            daemon=True,  # never keep a test process alive because of a forgotten server
        )
        self._sock, self._server, self._thread = sock, server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the simulator did not start")
            time.sleep(0.002)
        self._url = _url(sock)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self.state.release_hangs()
            self._thread.join(_STOP_TIMEOUT)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None
        self._url = None

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def set_phase(self, name: str) -> None:
        """Switch phase; raises KeyError for an unknown phase."""
        self.state.set_phase(name)

    def stats(self) -> dict[str, Any]:
        """The same JSON as `GET /_sim/stats`."""
        return self.state.stats()

    def reset(self) -> None:
        """Zero counters and fault budgets, as `POST /_sim/reset`."""
        self.state.reset()


def serve_forever(scenario_path: str | None, host: str, port: int) -> None:
    """Serve in the foreground until SIGINT/SIGTERM; raises ConfigError for a bad scenario.

    The first line on stdout, flushed once the socket accepts connections, is
    `driftmon simulator listening on http://HOST:PORT`.
    """
    scenario = load_scenario(scenario_path) if scenario_path else default_scenario()
    app = create_app(scenario)
    sock = _bind(host, port)
    try:
        print(f"driftmon simulator listening on {_url(sock)}", flush=True)
        if scenario.source and scenario_path:
            phases = ", ".join(scenario.phase_names)
            print(
                f"scenario {scenario.name!r} from {scenario_path}; phases: {phases}",
                file=sys.stderr,
                flush=True,
            )
        _Server(_config(app, library=False), app.state.sim).run(sockets=[sock])
    finally:
        sock.close()
