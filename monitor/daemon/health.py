"""`/healthz` and `/metrics` on `server.listen`, served from a thread beside the event loop;
`/` is a page linking the two, for whoever opens the address in a browser.

The WSGI server is prometheus-client's own (a threading wsgiref server), so a slow scrape or
health check never blocks the scheduler, and the scheduler never blocks them. `/healthz` calls
`check()`, which the daemon provides: it may read the database (with a short timeout).
`last_runs` and `overdue_after` are what it judges the schedule by.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from sqlmodel import col

from monitor.daemon.schedule import Cadence
from monitor.store.models import Run, Target

log = logging.getLogger(__name__)
INDEX_PAGE = b"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>driftmon</title></head>
<body>
<h1>driftmon</h1>
<ul>
<li><a href="/metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="/healthz">/healthz</a>: health check (JSON; HTTP 200 while healthy)</li>
</ul>
</body>
</html>
"""
HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]  # (healthy, details)
StartResponse = Callable[..., Any]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes every 15 s would flood the journal; errors still surface via the app."""


class HealthServer:
    def __init__(self, listen: str, registry: CollectorRegistry, check: HealthCheck) -> None:
        host, _, port = listen.rpartition(":")
        self._metrics_app = make_wsgi_app(registry)
        self._check = check
        self._server = make_server(
            host.strip("[]"), int(port), self._app, ThreadingWSGIServer, handler_class=_QuietHandler
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="health", daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self._server.server_address[:2]
        return f"{host!s}:{port}" if isinstance(host, str) else f"{host.decode()}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _app(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return self._metrics_app(environ, start_response)  # type: ignore[no-any-return]
        if path == "/":
            start_response(
                "200 OK",
                [
                    ("Content-Type", "text/html; charset=utf-8"),
                    ("Content-Length", str(len(INDEX_PAGE))),
                ],
            )
            return [INDEX_PAGE]
        if path != "/healthz":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /healthz or /metrics\n"]
        try:
            healthy, details = self._check()
        except Exception as exc:  # the check itself failed: that is unhealthy, not a crash
            log.exception("health check failed")
            healthy, details = False, {"reasons": [f"health check failed: {type(exc).__name__}"]}
        body = json.dumps({"status": "ok" if healthy else "unhealthy", **details}).encode()
        start_response(
            "200 OK" if healthy else "503 Service Unavailable",
            [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
        )
        return [body]


def overdue_after(c: Cadence) -> timedelta:
    """How long without a run before a job counts as overdue: its period, its jitter, and as
    much again (a run takes time; one slow run is not an outage of the daemon)."""
    return 2 * c.period + timedelta(seconds=c.jitter + 60)


def last_runs(engine: Engine) -> dict[tuple[str, str], datetime]:
    """When each (target, probe set) last started a run."""
    with Session(engine) as s:
        rows = s.execute(
            select(col(Target.name), col(Run.probe_set), func.max(col(Run.started_at)))
            .join(Target, col(Target.id) == col(Run.target_id))
            .group_by(col(Target.name), col(Run.probe_set))
        ).all()
    return {(t, p): when for t, p, when in rows}
