"""driftmon's pooled transport over real loopback sockets: httpx really uses it, and an idle
connection the server closed is noticed and replaced, as with stock httpx."""

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

    def __init__(self, hang_up: bool) -> None:
        self.hang_up = hang_up
        self.connections = 0

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY))  # fmt: skip
                await writer.drain()
                if self.hang_up:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
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
