"""driftmon's pooled transport over real loopback sockets: httpx really uses it; an idle
connection the server closed is noticed and replaced; the linear pool keeps httpcore's limits
(connections, keep-alive) and its handling of queued requests and other origins."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import httpx
import pytest

from monitor.providers import transport
from monitor.providers.transport import pooled_transport, socket_readable
from monitor.replay import tls_context

BODY = b'{"ok": true}'


def test_socket_readable_is_true_for_data_end_of_stream_and_closed_sockets() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert not socket_readable(ours)  # nothing to read: a healthy idle connection
        theirs.sendall(b"x")
        assert socket_readable(ours)
        ours.recv(1)
        theirs.close()
        assert socket_readable(ours)  # end of stream: the server hung up
    assert socket_readable(ours)  # closed on our side
    assert socket_readable(None)


class Server:
    """HTTP/1.1 on 127.0.0.1 that answers keep-alive, and with `hang_up` closes each
    connection right after its response without saying so (as servers do on idle timeouts)."""

    def __init__(self, hang_up: bool = False, delay: float = 0.0) -> None:
        self.hang_up = hang_up
        self.delay = delay
        self.connections = 0
        self.open = 0
        self.most_open = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                await asyncio.sleep(self.delay)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY)
                )
                await writer.drain()
                if self.hang_up:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        self.open -= 1
        writer.close()


async def two_requests(hang_up: bool) -> tuple[list[int], int]:
    server = Server(hang_up)
    listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
    statuses = []
    async with listener, httpx.AsyncClient(transport=pooled_transport(tls_context(), limits)) as c:
        for _ in range(2):
            statuses.append((await c.get(f"http://127.0.0.1:{port}/")).status_code)
            await asyncio.sleep(0.05)  # the hang-up reaches the client's socket
    return statuses, server.connections


def counting(calls: list[int]) -> Callable[[socket.socket | None], bool]:
    real = transport.socket_readable

    def check(sock: socket.socket | None) -> bool:
        calls.append(1)
        return real(sock)

    return check


def test_httpx_checks_pooled_connections_through_our_streams(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[int] = []
    monkeypatch.setattr(transport, "socket_readable", counting(calls))
    statuses, connections = asyncio.run(two_requests(hang_up=False))
    assert statuses == [200, 200] and connections == 1  # kept alive and reused
    # If an httpx release stops using the pool put in place, this stays 0.
    assert calls


def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    statuses, connections = asyncio.run(two_requests(hang_up=True))
    assert statuses == [200, 200] and connections == 2


def test_without_the_check_the_dead_connection_would_be_reused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # What the test above guards against: a check that never sees the hang-up fails the
    # second request on the closed connection.
    monkeypatch.setattr(transport, "socket_readable", lambda sock: False)
    with pytest.raises(httpx.TransportError):
        asyncio.run(two_requests(hang_up=True))


def client(connections: int, keepalive: int | None = None) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=keepalive)
    return httpx.AsyncClient(transport=pooled_transport(tls_context(), limits))


def test_requests_beyond_the_pool_wait_for_a_connection_and_all_succeed() -> None:
    async def scenario() -> tuple[list[int], Server]:
        server = Server(delay=0.002)
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
        async with listener, client(4) as c:
            replies = await asyncio.gather(*(c.get(url) for _ in range(200)))
        return [r.status_code for r in replies], server

    statuses, server = asyncio.run(scenario())
    assert statuses == [200] * 200
    assert server.connections == server.most_open == 4  # the limit held, and was reused


def test_an_idle_connection_to_another_origin_makes_room_when_the_pool_is_full() -> None:
    async def scenario() -> tuple[Server, Server]:
        first, second = Server(), Server()
        a = await asyncio.start_server(first.handle, "127.0.0.1", 0)
        b = await asyncio.start_server(second.handle, "127.0.0.1", 0)
        async with a, b, client(1) as c:
            for listener in (a, b, a):
                port = listener.sockets[0].getsockname()[1]
                assert (await c.get(f"http://127.0.0.1:{port}/")).status_code == 200
                await asyncio.sleep(0.05)  # the closing reaches the server
        return first, second

    first, second = asyncio.run(scenario())
    # One connection at a time: each origin change closed the idle one and opened another.
    assert (first.connections, second.connections) == (2, 1)
    assert first.most_open == second.most_open == 1


def test_idle_connections_beyond_the_keepalive_limit_are_closed() -> None:
    async def scenario() -> tuple[int, Server]:
        server = Server(delay=0.05)
        listener = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}/"
        async with listener, client(4, keepalive=1) as c:
            await asyncio.gather(*(c.get(url) for _ in range(4)))  # four connections
            await c.get(url)  # the next pass closes the three surplus idle ones
            await asyncio.sleep(0.05)
            pooled = len(c._transport._pool.connections)  # type: ignore[attr-defined]
        return pooled, server

    pooled, server = asyncio.run(scenario())
    assert server.most_open == 4 and pooled == 1 and server.open <= 1


def test_a_proxy_named_in_the_environment_is_still_used(monkeypatch: pytest.MonkeyPatch) -> None:
    # httpx applies HTTP(S)_PROXY only to clients on its own transport: make_client keeps them.
    from types import SimpleNamespace
    from typing import Any

    from monitor.replay import make_client

    seen: list[bytes] = []

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[0])
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(BODY), BODY))
        await writer.drain()
        writer.close()

    async def scenario() -> int:
        listener = await asyncio.start_server(proxy, "127.0.0.1", 0)
        for name in ("NO_PROXY", "no_proxy", "http_proxy", "all_proxy", "ALL_PROXY"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{listener.sockets[0].getsockname()[1]}")
        target: Any = SimpleNamespace(concurrency=4, timeout=5.0)
        async with listener, make_client(target) as c:
            return (await c.get("http://provider.invalid/v1/models")).status_code

    assert asyncio.run(scenario()) == 200
    assert seen == [b"GET http://provider.invalid/v1/models HTTP/1.1"]
