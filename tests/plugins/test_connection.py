"""Connection, Server and Transport base classes (the transport-plugin contract), without a module."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from sim7020_core.connection import (
    Capabilities,
    Connection,
    ReceiveTimeoutError,
    Server,
    Transport,
)
from sim7020_core.exceptions import (
    ConnectionClosedError,
    PayloadError,
    Sim7020Error,
    SocketError,
    UnsupportedError,
)


class Host:
    """The transport's host (a Modem in real use): it is told about received data."""

    def __init__(self) -> None:
        self.received: list[tuple[Connection, bytes]] = []

    def data_received(self, connection: Connection, data: bytes) -> None:
        self.received.append((connection, data))


class LoopConnection(Connection):
    """Whatever is sent comes back (so tests drive the receive side through the public API)."""

    sent: list[bytes]
    closes = 0

    async def _do_send(self, data: bytes, **options: Any) -> None:
        self.sent = [*getattr(self, "sent", []), data]
        self._feed(data)

    async def _do_close(self) -> None:
        type(self).closes += 1


class LoopTransport(Transport):
    name = "loop"
    capabilities = Capabilities(
        max_connections=3,
        server=True,
        binary_safe=True,
        acknowledged_send=False,
        peer_addressing=False,
        protocols=frozenset({"udp"}),
        max_payload=100,
    )

    async def open_connection(self, protocol: str, ip: str, port: int, **options: Any) -> Connection:
        conn = LoopConnection(self, self.check_protocol(protocol), ip, port, **options)
        self._register(conn)
        return conn

    async def listen(self, port: int, **options: Any) -> Server:
        server = Server(self, port, **options)
        self.servers.append(server)
        return server


@pytest.fixture
def transport() -> LoopTransport:
    return LoopTransport(Host())  # type: ignore[arg-type]


async def test_send_and_receive_in_order(transport):
    conn = await transport.open_connection("udp", "10.0.0.1", 5683)
    for i in range(5):
        await conn.send(bytes([i]) * (i + 1))
    assert [await conn.receive(timeout=1) for _ in range(5)] == [bytes([i]) * (i + 1) for i in range(5)]
    await conn.send(b"z")
    assert await conn.receive_from(timeout=1) == (b"z", ("10.0.0.1", 5683))


async def test_receive_timeout_is_a_sim7020_timeout(transport):
    conn = await transport.open_connection("UDP", "10.0.0.1", 1)
    assert conn.protocol == "udp"
    with pytest.raises(ReceiveTimeoutError) as info:
        await conn.receive(timeout=0.01)
    assert isinstance(info.value, TimeoutError)
    assert isinstance(info.value, Sim7020Error)
    assert "10.0.0.1:1" in str(info.value)


async def test_bad_payloads_are_refused_with_a_reason(transport):
    conn = await transport.open_connection("udp", "10.0.0.1", 1)
    with pytest.raises(PayloadError, match="empty"):
        await conn.send(b"")
    with pytest.raises(PayloadError, match="must be bytes, not str"):
        await conn.send("text")  # type: ignore[arg-type]
    with pytest.raises(PayloadError, match="101 bytes is larger than the 100 bytes"):
        await conn.send(b"x" * 101)
    assert not hasattr(conn, "sent")  # nothing reached the transport
    await conn.send(bytearray(b"ok"))
    assert conn.sent == [b"ok"]


async def test_unsupported_protocol_and_peer_addressing(transport):
    with pytest.raises(UnsupportedError, match=r"carries udp, not 'tcp'"):
        await transport.open_connection("tcp", "10.0.0.1", 1)
    conn = await transport.open_connection("udp", "10.0.0.1", 1)
    with pytest.raises(UnsupportedError, match="cannot send to another peer"):
        await conn.send_to(b"x", "10.0.0.2", 2)


async def test_local_close_keeps_queued_data_then_reports_closed(transport):
    conn = await transport.open_connection("udp", "10.0.0.1", 1)
    await conn.send(b"before close")
    closed_with: list[object] = []
    conn.add_close_callback(lambda c: closed_with.append(c.error))
    await conn.close()
    await conn.close()  # idempotent
    assert LoopConnection.closes >= 1
    assert conn.closed
    assert closed_with == [None]
    assert conn not in transport.connections
    assert await conn.receive(timeout=1) == b"before close"
    with pytest.raises(ConnectionClosedError):
        await conn.receive(timeout=1)
    with pytest.raises(ConnectionClosedError):
        await conn.send(b"after close")


async def test_error_reaches_a_waiting_receiver_and_the_callbacks_at_once(transport):
    conn = await transport.open_connection("udp", "10.0.0.1", 1)
    seen: list[SocketError | None] = []
    conn.add_close_callback(lambda c: seen.append(c.error))
    waiter = asyncio.create_task(conn.receive(timeout=5))
    await asyncio.sleep(0)
    conn._set_closed(SocketError("connection reset", 3))
    assert seen
    assert seen[0] is not None
    assert seen[0].code == 3
    with pytest.raises(SocketError) as info:
        await waiter
    assert info.value.code == 3
    assert not isinstance(info.value, ConnectionClosedError)
    assert "connection reset" in str(info.value)


async def test_async_iteration_ends_on_peer_close_and_raises_on_failure(transport):
    conn = await transport.open_connection("udp", "10.0.0.1", 1)
    await conn.send(b"a")
    await conn.send(b"b")
    conn._set_closed(ConnectionClosedError("closed by peer", 4))
    assert [d async for d in conn] == [b"a", b"b"]

    failing = await transport.open_connection("udp", "10.0.0.1", 2)
    await failing.send(b"x")
    failing._set_closed(SocketError("route error", 1))
    assert await anext(failing) == b"x"
    with pytest.raises(SocketError, match="route error"):
        await anext(failing)


async def test_close_callback_added_after_close_still_runs(transport):
    conn = await transport.open_connection("udp", "10.0.0.1", 1)
    await conn.close()
    ran = asyncio.Event()
    conn.add_close_callback(lambda c: ran.set())
    async with asyncio.timeout(1):
        await ran.wait()


async def test_close_callback_can_be_removed_and_failures_are_logged(transport, caplog):
    conn = await transport.open_connection("udp", "10.0.0.1", 1)
    calls: list[int] = []
    remove = conn.add_close_callback(lambda c: calls.append(1))
    remove()

    def broken(c):
        raise RuntimeError("owner bug")

    conn.add_close_callback(broken)
    conn.add_close_callback(lambda c: calls.append(2))
    with caplog.at_level(logging.ERROR):
        conn._set_closed(None)
    assert calls == [2]
    assert "owner bug" in caplog.text


async def test_receive_buffer_is_bounded_and_drops_the_oldest(transport, caplog):
    conn = await transport.open_connection("udp", "10.0.0.1", 1, buffer_limit=10)
    with caplog.at_level(logging.WARNING):
        for i in range(6):
            conn._feed(bytes([i]) * 3)
    assert conn.queued_bytes == 9
    assert conn.dropped_bytes == 9
    assert [await conn.receive(timeout=1) for _ in range(3)] == [b"\x03" * 3, b"\x04" * 3, b"\x05" * 3]
    assert caplog.text.count("receive buffer full") == 1
    conn._feed(b"y" * 25)  # larger than the whole buffer: its newest part is kept
    assert await conn.receive(timeout=1) == b"y" * 10
    assert conn.dropped_bytes == 24


async def test_host_is_told_of_data_and_owner_still_gets_it(caplog):
    host = Host()
    transport = LoopTransport(host)  # type: ignore[arg-type]
    conn = await transport.open_connection("udp", "10.9.9.9", 7)
    await conn.send(b"\x00\xff")
    assert host.received == [(conn, b"\x00\xff")]
    assert await conn.receive(timeout=1) == b"\x00\xff"

    def broken(connection: Connection, data: bytes) -> None:
        raise RuntimeError("host bug")

    host.data_received = broken  # type: ignore[method-assign]
    with caplog.at_level(logging.ERROR):
        await conn.send(b"again")
    assert "host bug" in caplog.text
    assert await conn.receive(timeout=1) == b"again"  # a failing host does not lose the owner's data


async def test_server_accepts_and_iterates_until_closed(transport):
    server = await transport.listen(5678, backlog=2)
    clients = [LoopConnection(transport, "udp", "10.0.0.5", 40000 + i) for i in range(3)]
    assert server._accepted(clients[0])
    assert server._accepted(clients[1])
    assert not server._accepted(clients[2])  # backlog full: the transport closes that client
    assert await server.accept(timeout=1) is clients[0]
    with pytest.raises(ReceiveTimeoutError):
        await Server(transport, 1).accept(timeout=0.01)

    async def close_soon() -> None:
        await asyncio.sleep(0.01)
        await server.close()

    closer = asyncio.create_task(close_soon())
    assert [c async for c in server] == [clients[1]]
    await closer
    assert server.closed
    assert server not in transport.servers
    with pytest.raises(ConnectionClosedError):
        await server.accept(timeout=1)


async def test_module_reset_closes_everything_with_the_cause(transport):
    conns = [await transport.open_connection("udp", "10.0.0.1", p) for p in (1, 2)]
    server = await transport.listen(80)
    await transport.on_psm(False)
    assert not any(c.closed for c in conns)
    await transport.on_psm(True)  # default transports do not survive PSM
    assert all(c.closed for c in conns)
    assert all(isinstance(c.error, ConnectionClosedError) for c in conns)
    assert server.closed
    assert transport.connections == []
    assert "reset" in str(conns[0].error)


async def test_transport_close_closes_connections(transport):
    conn = await transport.open_connection("udp", "10.0.0.1", 1)
    async with await transport.listen(80) as server:
        await transport.close()
        assert conn.closed
        assert conn.error is None
        assert server.closed


async def test_default_listen_is_unsupported():
    class NoServer(LoopTransport):
        name = "noserver"
        listen = Transport.listen  # type: ignore[assignment]

    with pytest.raises(UnsupportedError, match="'noserver' has no server mode"):
        await NoServer(Host()).listen(80)  # type: ignore[arg-type]


def test_bad_constructor_arguments(transport):
    with pytest.raises(ValueError, match="protocol"):
        Connection(transport, "sctp", "1.2.3.4", 1)
    with pytest.raises(ValueError, match="buffer_limit"):
        Connection(transport, "udp", "1.2.3.4", 1, buffer_limit=0)
