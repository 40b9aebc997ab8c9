"""The native transport (AT+CSO*) end to end: Modem → AT bytes → emulator → real loopback peers."""

from __future__ import annotations

import asyncio
import random

import pytest

from sim7020_core.connection import Connection, ReceiveTimeoutError
from sim7020_core.exceptions import (
    ConnectionClosedError,
    PayloadError,
    PluginError,
    SocketError,
    UnsupportedError,
)
from sim7020_plugins.native import CSOSEND_CHUNK, MAX_DATAGRAM, MAX_SOCKETS, NativeConnection

from .conftest import WAIT

MESSAGES = 1000


def echo(data: bytes) -> bytes:
    """A peer's answer: the datagram itself."""
    return data


def _messages(seed: int, count: int = MESSAGES, max_size: int = 1400) -> list[bytes]:
    """Random payloads of 1..max_size bytes; together they hold every byte value (and CR, LF, Ctrl-Z, ESC)."""
    rnd = random.Random(seed)
    msgs = [bytes(range(256)), b"\r\n\x1a\x1b\x00", b"\r"]
    for _ in range(count - len(msgs)):
        msgs.append(rnd.randbytes(rnd.randint(1, max_size)))
    rnd.shuffle(msgs)
    return msgs


async def _read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    async with asyncio.timeout(WAIT):
        return await reader.readexactly(n)


def _received_by_module(emulator) -> bytes:
    return b"".join(data for direction, data in emulator.transcript if direction == "rx")


async def _receive_stream(conn: Connection, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        buf += await conn.receive(timeout=WAIT)
    return bytes(buf)


# ------------------------------------------------------------------------------- data integrity


@pytest.mark.parametrize("receive_mode", ["hex", "raw"])
async def test_udp_datagrams_round_trip_intact(modem, udp_peer, receive_mode):
    udp_peer.reply = echo
    conn = await modem.open_connection(
        "udp", "127.0.0.1", udp_peer.port, transport="native", receive_mode=receive_mode
    )
    count = MESSAGES if receive_mode == "hex" else MESSAGES // 4
    msgs = _messages(1 if receive_mode == "hex" else 2, count, 1400)
    assert max(map(len, msgs)) > 1300
    for msg in msgs:
        await conn.send(msg)
        got, _addr = await udp_peer.next()
        assert got == msg  # one datagram, whole, never split in CSOSEND chunks
        assert await conn.receive(timeout=WAIT) == msg
    await conn.close()


@pytest.mark.parametrize("receive_mode", ["hex", "raw"])
async def test_tcp_stream_round_trips_in_order(modem, tcp_peer, receive_mode):
    conn = await modem.open_connection(
        "tcp", "127.0.0.1", tcp_peer.port, transport="native", receive_mode=receive_mode
    )
    reader, writer = await tcp_peer.accept()
    msgs = _messages(3 if receive_mode == "hex" else 4, MESSAGES if receive_mode == "hex" else MESSAGES // 4)
    up = b"".join(msgs)
    for msg in msgs:
        await conn.send(msg)
    assert await _read_exactly(reader, len(up)) == up
    for msg in msgs:
        writer.write(msg)
    await writer.drain()
    assert await _receive_stream(conn, len(up)) == up
    await conn.close()


async def test_large_tcp_send_is_split_into_256_byte_csosend_chunks(modem, tcp_peer, emulator):
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="native")
    reader, _writer = await tcp_peer.accept()
    emulator.transcript.clear()
    payload = bytes(range(256)) * 3 + b"tail"
    await conn.send(payload)
    assert await _read_exactly(reader, len(payload)) == payload
    wire = _received_by_module(emulator)
    assert wire.count(b"AT+CSOSEND=") == 4
    assert f"AT+CSOSEND={conn.socket_id},{2 * CSOSEND_CHUNK},".encode() in wire


# ------------------------------------------------------------------------------ bad input, limits


async def test_sixth_connection_is_refused_and_nothing_leaks(modem, udp_peer):
    conns = [
        await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
        for _ in range(MAX_SOCKETS)
    ]
    assert sorted(c.socket_id for c in conns) == list(range(MAX_SOCKETS))
    with pytest.raises(SocketError, match="all 5 native sockets are in use"):
        await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    await conns[2].close()
    again = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    assert again.socket_id == conns[2].socket_id
    await again.send(b"still works")
    assert (await udp_peer.next())[0] == b"still works"
    for conn in [*conns, again]:
        await conn.close()
    # every socket was released on the module: five fresh ones can be created again
    fresh = [await modem.open_connection("udp", "127.0.0.1", udp_peer.port) for _ in range(MAX_SOCKETS)]
    for conn in fresh:
        await conn.close()


async def test_payload_too_large_is_refused_and_the_connection_stays_usable(modem, udp_peer):
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    with pytest.raises(PayloadError, match=f"{MAX_DATAGRAM + 1} bytes is larger than {MAX_DATAGRAM}"):
        await conn.send(b"x" * (MAX_DATAGRAM + 1))
    with pytest.raises(PayloadError, match="empty"):
        await conn.send(b"")
    await conn.send(b"ok")
    assert (await udp_peer.next())[0] == b"ok"


async def test_udp_datagram_over_256_bytes_carries_every_byte(modem, udp_peer):
    """Datagrams over 256 bytes go in one AT+CSODSEND, which carries ESC, CR, LF and Ctrl-Z as data."""
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    blob = b"a" * 300 + b"\x1b\r\n\x1a" + bytes(range(256))
    await conn.send(blob)
    assert (await udp_peer.next())[0] == blob


async def test_tcp_data_mode_carries_escapes(modem, tcp_peer):
    conn = await modem.open_connection(
        "tcp", "127.0.0.1", tcp_peer.port, transport="native", send_mode="data"
    )
    reader, _writer = await tcp_peer.accept()
    payload = b"x" * 2000 + b"\x1b" + bytes(range(256)) * 4
    await conn.send(payload)
    assert await _read_exactly(reader, len(payload)) == payload


async def test_bad_arguments_name_what_is_wrong(modem):
    with pytest.raises(UnsupportedError, match="'native' has no option"):
        await modem.open_connection("udp", "127.0.0.1", 9, transport="native", colour="red")
    with pytest.raises(ValueError, match="port must be an integer"):
        await modem.open_connection("udp", "127.0.0.1", 70000, transport="native")
    with pytest.raises(UnsupportedError, match="carries tcp, udp, not 'sctp'"):
        await modem.open_connection("sctp", "127.0.0.1", 9, transport="native")
    with pytest.raises(ValueError, match="receive_mode"):
        await modem.open_connection("udp", "127.0.0.1", 9, transport="native", receive_mode="b64")
    with pytest.raises(PluginError, match=r"available: .*native"):
        await modem.open_connection("udp", "127.0.0.1", 9, transport="nativ")


async def test_failed_tcp_connect_reports_and_releases_the_socket(modem, udp_peer):
    closed_port = udp_peer.port  # nothing listens on this TCP port
    with pytest.raises(SocketError, match=f"127.0.0.1:{closed_port}"):
        await modem.open_connection("tcp", "127.0.0.1", closed_port, transport="native")
    conns = [await modem.open_connection("udp", "127.0.0.1", udp_peer.port) for _ in range(MAX_SOCKETS)]
    for conn in conns:
        await conn.close()


# ------------------------------------------------------------------------------------- errors


async def test_csoerr_reaches_the_owner_when_the_urc_arrives(modem, emulator, udp_peer):
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    told = asyncio.Event()
    conn.add_close_callback(lambda c: told.set())
    waiter = asyncio.create_task(conn.receive(timeout=WAIT))
    await asyncio.sleep(0.01)
    emulator.socket_error(conn.socket_id, 3)
    with pytest.raises(SocketError) as info:
        await waiter
    assert told.is_set()
    assert info.value.code == 3
    assert "connection reset" in str(info.value)
    assert conn.error is not None
    assert conn.error.code == 3
    with pytest.raises(SocketError):
        await conn.send(b"after the error")
    # the modem stays usable, and the failed socket was given back
    conns = [await modem.open_connection("udp", "127.0.0.1", udp_peer.port) for _ in range(MAX_SOCKETS)]
    await conns[0].send(b"alive")
    assert (await udp_peer.next())[0] == b"alive"
    for c in conns:
        await c.close()


async def test_peer_close_ends_the_connection_cleanly(modem, tcp_peer):
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="native")
    _reader, writer = await tcp_peer.accept()
    writer.write(b"last words")
    await writer.drain()
    writer.close()
    got = b"".join([chunk async for chunk in conn])  # iteration ends without an exception
    assert got == b"last words"
    assert isinstance(conn.error, ConnectionClosedError)
    assert conn.error.code == 4
    with pytest.raises(ConnectionClosedError):
        await conn.receive(timeout=WAIT)
    status = await modem.refresh()
    assert status.registration == "home"


async def test_receive_timeout(modem, udp_peer):
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    with pytest.raises(ReceiveTimeoutError):
        await conn.receive(timeout=0.05)
    assert not conn.closed


# ------------------------------------------------------------------------- flow control, keepalive


async def test_manual_receive_keeps_data_in_the_module_until_there_is_room(modem, tcp_peer):
    conn = await modem.open_connection(
        "tcp", "127.0.0.1", tcp_peer.port, transport="native", manual_receive=True, buffer_limit=1000
    )
    _reader, writer = await tcp_peer.accept()
    payload = random.Random(5).randbytes(20_000)
    writer.write(payload)
    await writer.drain()
    got = bytearray()
    while len(got) < len(payload):
        got += await conn.receive(timeout=WAIT)
        assert conn.queued_bytes <= 1000  # never more than the bound here: the module holds the rest
    assert bytes(got) == payload
    assert conn.dropped_bytes == 0
    # data that arrives later (into the module's empty buffer) is announced and read as well
    writer.write(b"later")
    await writer.drain()
    assert await _receive_stream(conn, 5) == b"later"


async def test_manual_receive_and_keepalive_are_for_tcp(modem, udp_peer):
    with pytest.raises(UnsupportedError, match="manual_receive is for TCP"):
        await modem.open_connection(
            "udp", "127.0.0.1", udp_peer.port, transport="native", manual_receive=True
        )
    with pytest.raises(UnsupportedError, match="keepalive is for TCP"):
        await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native", keepalive=True)
    with pytest.raises(ValueError, match="keepalive must be"):
        await modem.open_connection("tcp", "127.0.0.1", udp_peer.port, transport="native", keepalive=(1, 2))


async def test_keepalive_is_set_on_the_socket(modem, tcp_peer, emulator):
    conn = await modem.open_connection(
        "tcp", "127.0.0.1", tcp_peer.port, transport="native", keepalive=(60, 10, 3)
    )
    assert f"AT+CSOALIVE={conn.socket_id},1,60,10,3\r".encode() in _received_by_module(emulator)
    await tcp_peer.accept()
    # values the module refuses: a clear error, and the socket is given back
    with pytest.raises(SocketError, match="keepalive"):
        await modem.open_connection(
            "tcp", "127.0.0.1", tcp_peer.port, transport="native", keepalive=(99999, 10, 3)
        )
    conns = [await modem.open_connection("udp", "127.0.0.1", 9) for _ in range(MAX_SOCKETS - 1)]
    for c in [conn, *conns]:
        await c.close()


# ------------------------------------------------------------------------------- acks, status


async def test_tcp_send_can_wait_for_the_peer_ack(modem, tcp_peer):
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="native", send_ack=True)
    assert isinstance(conn, NativeConnection)
    reader, _writer = await tcp_peer.accept()
    await conn.send(b"Hello World", wait_ack=True)
    assert conn.acked_bytes == 11
    assert conn.unacked_bytes == 0
    assert await _read_exactly(reader, 11) == b"Hello World"
    assert await conn.status() == 2
    assert await conn.ack_status() == (11, 11, 0)


async def test_wait_ack_needs_send_ack(modem, udp_peer):
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    with pytest.raises(UnsupportedError, match="send_ack"):
        await conn.send(b"x", wait_ack=True)


# ------------------------------------------------------------------------------------ server


async def test_tcp_server_accepts_clients_and_refuses_a_second_server(modem, emulator):
    server = await modem.listen(5678, transport="native")
    with pytest.raises(SocketError, match="one TCP server"):
        await modem.listen(5679, transport="native")
    host, port = emulator.server_address(5678)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        client = await server.accept(timeout=WAIT)
        assert client.protocol == "tcp"
        await client.send(b"Hello World")
        assert await _read_exactly(reader, 11) == b"Hello World"
        writer.write(b"123")
        await writer.drain()
        assert await _receive_stream(client, 3) == b"123"
        await client.close()
    finally:
        writer.close()
    # a second client that hangs up: its connection ends with "closed by peer"
    _reader2, writer2 = await asyncio.open_connection(host, port)
    client2 = await server.accept(timeout=WAIT)
    writer2.close()
    assert [chunk async for chunk in client2] == []
    assert isinstance(client2.error, ConnectionClosedError)
    assert client2.error.code == 4
    await server.close()
    again = await modem.listen(5679, transport="native")  # the one server slot is free again
    await again.close()


# --------------------------------------------------------------------------------------- PSM


async def test_udp_with_retention_survives_psm(modem, emulator, udp_peer):
    udp_peer.reply = echo
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native", retention=True)
    await conn.send(b"before PSM")
    _, module_addr = await udp_peer.next()
    assert await conn.receive(timeout=WAIT) == b"before PSM"
    udp_peer.reply = None
    emulator.enter_psm()
    await _wait_for(lambda: modem.status.psm.state == "asleep")
    udp_peer.send(b"while asleep", module_addr)  # the module keeps it and reports it after waking
    await asyncio.sleep(0.05)  # let the datagram land while the module sleeps
    emulator.exit_psm()
    await _wait_for(lambda: modem.status.psm.state == "awake")
    assert not conn.closed
    assert await conn.receive(timeout=WAIT) == b"while asleep"
    udp_peer.reply = echo
    await conn.send(b"after PSM")
    assert await conn.receive(timeout=WAIT) == b"after PSM"


async def test_without_retention_psm_reports_the_connection_closed(modem, emulator, udp_peer):
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native", retention=False)
    told = asyncio.Event()
    conn.add_close_callback(lambda c: told.set())
    emulator.enter_psm()
    async with asyncio.timeout(WAIT):
        await told.wait()
    assert isinstance(conn.error, ConnectionClosedError)
    assert "PSM" in str(conn.error)
    emulator.exit_psm()
    await _wait_for(lambda: modem.status.psm.state == "awake")
    again = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    await again.send(b"fresh")
    assert (await udp_peer.next())[0] == b"fresh"


async def _wait_for(predicate, timeout: float = WAIT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


# ------------------------------------------------------------------------- reboot, concurrency


async def test_module_reboot_closes_connections_and_resets_settings(modem, emulator, udp_peer):
    udp_peer.reply = echo
    conn = await modem.open_connection(
        "udp", "127.0.0.1", udp_peer.port, transport="native", receive_mode="raw"
    )
    told = asyncio.Event()
    conn.add_close_callback(lambda c: told.set())
    emulator.reboot()
    async with asyncio.timeout(WAIT):
        await told.wait()
    assert isinstance(conn.error, ConnectionClosedError)
    await _wait_for(lambda: modem.state == "ready")
    # the module is back in hex mode; the transport knows, so hex +CSONMI is decoded again
    again = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    await again.send(b"\x00\r\n\xff")
    assert await again.receive(timeout=WAIT) == b"\x00\r\n\xff"


async def test_concurrent_opens_get_distinct_sockets(modem, udp_peer):
    udp_peer.reply = echo
    conns = await asyncio.gather(
        *(
            modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
            for _ in range(MAX_SOCKETS)
        )
    )
    assert sorted(c.socket_id for c in conns) == list(range(MAX_SOCKETS))
    await asyncio.gather(*(c.send(bytes([c.socket_id])) for c in conns))
    for c in conns:
        assert await c.receive(timeout=WAIT) == bytes([c.socket_id])


async def test_clients_beyond_the_accept_backlog_are_closed(modem, emulator):
    server = await modem.listen(5680, transport="native", backlog=1)
    host, port = emulator.server_address(5680)
    first = await asyncio.open_connection(host, port)
    second_reader, second_writer = await asyncio.open_connection(host, port)
    try:
        async with asyncio.timeout(WAIT):
            assert await second_reader.read() == b""  # the module closed the client nobody could take
        client = await server.accept(timeout=WAIT)
        await client.send(b"hi")
        assert await _read_exactly(first[0], 2) == b"hi"
        with pytest.raises(ReceiveTimeoutError):
            await server.accept(timeout=0.05)
    finally:
        first[1].close()
        second_writer.close()
        await server.close()
