"""httpx's connection-pooling transport, with a cheaper check of pooled connections.

Before it hands out a connection, httpcore's pool asks every pooled connection whether the
server has closed it: `get_extra_info("is_readable")`, about 32 times per request at
concurrency 16. On httpcore's anyio stream each ask builds anyio's whole table of socket
attributes, a getpeername() system call included, to fetch the raw socket: about a sixth of the
CPU of a run against a fast server (bench/replay.py). The streams here keep the raw socket from
the connection and answer that one question with the same zero-timeout poll httpcore makes;
everything else (reads, writes, TLS, timeouts) is httpcore's anyio backend unchanged.
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


def pooled_transport(ssl_context: ssl.SSLContext, limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """An `httpx.AsyncHTTPTransport` (HTTP/1.1) whose pool connects through `_Backend`.

    httpx builds its pool without a way to pass a network backend, so the pool is built here
    with the same settings and put in its place; `tests/unit/test_transport.py` fails if an
    httpx release stops using it.
    """
    transport = httpx.AsyncHTTPTransport(verify=ssl_context, limits=limits)
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=ssl_context,
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=_Backend(),
    )
    return transport
