"""httpx's connection-pooling transport, with the pool's bookkeeping made linear.

Two costs of httpcore 1.0's pool grow with the number of pooled connections, and at the
concurrency driftmon runs at they took about half of a run's CPU against a fast server
(bench/replay.py):
- Before it hands out a connection, the pool asks every pooled connection whether the server
  has closed it: `get_extra_info("is_readable")`. On httpcore's anyio stream each ask builds
  anyio's whole table of socket attributes, a getpeername() system call included. The streams
  here keep the raw socket and answer with the same zero-timeout poll httpcore makes.
- Each pass that assigns requests to connections is quadratic: for every idle connection it
  counts all connections again, and for every queued request it filters all connections
  again; there are several passes per request. `_Pool` makes one pass over the connections
  and one over the queued requests, with the same outcome (encode/httpcore#1035 describes the
  problem; pydantic/httpx2#974 merged the same rewrite).
Reads, writes, TLS and timeouts are httpcore's anyio backend, unchanged.
"""

from __future__ import annotations

import select
import socket
import ssl
from collections.abc import Iterable

import httpcore
import httpx

IS_READABLE = "is_readable"


def socket_readable(sock: socket.socket | None) -> bool:
    """True when a read would not block: data, or the end of the stream (the server closed
    it). A missing or closed socket counts as readable, so the pool drops the connection."""
    if sock is None or sock.fileno() < 0:
        return True
    poll = select.poll()
    poll.register(sock, select.POLLIN)
    return bool(poll.poll(0))


class _Stream(httpcore.AsyncNetworkStream):
    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> object:
        if info == IS_READABLE:
            return socket_readable(self._socket)
        return self._inner.get_extra_info(info)


class _Backend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(
            await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _Pool(httpcore.AsyncConnectionPool):
    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        """httpcore's pass, linear: drop closed connections, close expired ones and idle ones
        beyond the keep-alive limit, then give each queued request an available connection,
        a new one, or a new one in place of an idle connection to another origin. As in
        httpcore, an idle connection may be given to more than one queued request in a pass:
        the first to start on it wins and the others are queued again."""
        closing: list[httpcore.AsyncConnectionInterface] = []
        kept: list[httpcore.AsyncConnectionInterface] = []
        for connection in self._connections:
            if connection.is_closed():
                continue
            if connection.has_expired():
                closing.append(connection)
            else:
                kept.append(connection)
        idle = [c for c in kept if c.is_idle()]
        surplus = len(idle) - (self._max_keepalive_connections or 0)
        if surplus > 0:
            for connection in idle[:surplus]:
                kept.remove(connection)
                closing.append(connection)
            idle = idle[surplus:]
        self._connections = kept

        queued = [request for request in self._requests if request.is_queued()]
        if not queued:
            return closing
        available = [c for c in kept if c.is_available()]
        for pool_request in queued:
            origin = pool_request.request.url.origin
            chosen = next((c for c in available if c.can_handle_request(origin)), None)
            if chosen is None:
                if len(self._connections) >= self._max_connections:
                    if not idle:
                        continue  # stays queued until a connection frees up
                    victim = idle.pop(0)
                    self._connections.remove(victim)
                    if victim in available:
                        available.remove(victim)
                    closing.append(victim)
                chosen = self.create_connection(origin)
                self._connections.append(chosen)
            pool_request.assign_to_connection(chosen)
        return closing


def pooled_transport(ssl_context: ssl.SSLContext, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """An `httpx.AsyncHTTPTransport` (HTTP/1.1) on a `_Pool` that connects through `_Backend`.

    httpx builds its pool without a way to pass a network backend, so the pool is built here
    with the same settings and put in its place; `tests/unit/test_transport.py` fails if an
    httpx release stops using it.
    """
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)
    transport._pool = _Pool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=_Backend(),
    )
    return transport
