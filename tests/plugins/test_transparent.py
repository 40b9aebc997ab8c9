"""The transparent transport (AT+CIPMODE=1, data mode) end to end against the emulator and loopback peers."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.connection import Connection
from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer
from sim7020_core.exceptions import ConnectionClosedError, Sim7020Error, SocketError, UnsupportedError
from sim7020_core.modem import Modem
from sim7020_plugins.transparent import CLOSE_MARKERS, TransparentConnection, find_close_marker

from .cip_support import GUARD, echo_tcp, messages, read_exactly, receive_stream, sent_commands
from .conftest import WAIT


@pytest.fixture
def short_guard(emulator: Emulator) -> None:
    emulator.command_sets["cip"].guard_time = GUARD  # type: ignore[attr-defined]


async def _open(modem: Modem, protocol: str, port: int) -> TransparentConnection:
    conn = await modem.open_connection(protocol, "127.0.0.1", port, transport="transparent", guard_time=GUARD)
    assert isinstance(conn, TransparentConnection)
    return conn


async def test_tcp_round_trip_of_1000_random_messages(
    modem: Modem, tcp_peer: TcpPeer, short_guard: None
) -> None:
    conn = await _open(modem, "tcp", tcp_peer.port)
    reader, writer = await tcp_peer.accept()
    echo = asyncio.create_task(echo_tcp(reader, writer))
    msgs = messages(seed=51)  # includes "+++", "\r\nOK\r\n", every byte value
    expected = b"".join(msgs)
    received = asyncio.create_task(receive_stream(conn, len(expected)))
    for msg in msgs:
        await conn.send(msg)
    assert await received == expected
    assert conn.dropped_bytes == 0
    assert not conn.closed
    await conn.close()
    echo.cancel()


async def test_udp_datagrams_both_ways(modem: Modem, udp_peer: UdpPeer, short_guard: None) -> None:
    conn = await _open(modem, "udp", udp_peer.port)
    for msg in messages(seed=52, count=50, max_size=1000):
        await conn.send(msg)
        data, addr = await udp_peer.next()
        assert data == msg
        udp_peer.send(data[::-1], addr)
        assert await receive_stream(conn, len(msg)) == msg[::-1]
    await conn.close()


async def test_escape_at_command_and_resume(
    modem: Modem, emulator: Emulator, tcp_peer: TcpPeer, short_guard: None
) -> None:
    conn = await _open(modem, "tcp", tcp_peer.port)
    reader, writer = await tcp_peer.accept()
    with pytest.raises(Sim7020Error, match="transparent data mode"):
        await modem.command("AT+CSQ")  # refused at once, nothing leaks into the stream
    await conn.escape()
    assert modem.engine.in_data_mode is False
    assert any(line.startswith("+CSQ:") for line in await modem.command("AT+CSQ"))
    writer.write(b"sent while escaped")  # the module keeps it until ATO
    await writer.drain()
    await asyncio.sleep(0.1)
    assert conn.queued_bytes == 0
    await conn.resume()
    assert await receive_stream(conn, 18) == b"sent while escaped"
    await conn.send(b"after resume")
    assert await read_exactly(reader, 12) == b"after resume"
    await conn.escape()
    await conn.send(b"send resumes by itself")
    assert await read_exactly(reader, 22) == b"send resumes by itself"
    assert sent_commands(emulator).count("ATO") == 2
    await conn.close()
    assert await reader.read() == b""
    assert not modem.engine.in_data_mode


async def test_peer_close_returns_to_command_mode(modem: Modem, tcp_peer: TcpPeer, short_guard: None) -> None:
    conn = await _open(modem, "tcp", tcp_peer.port)
    _, writer = await tcp_peer.accept()
    closed: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    conn.add_close_callback(closed.set_result)
    writer.write(b"bye\r\n")
    await writer.drain()
    writer.close()
    assert await asyncio.wait_for(closed, WAIT) is conn
    assert isinstance(conn.error, ConnectionClosedError)
    assert await receive_stream(conn, 5) == b"bye\r\n"  # the data, without the module's CLOSED
    with pytest.raises(ConnectionClosedError):
        await conn.receive(timeout=WAIT)
    assert not modem.engine.in_data_mode
    assert any(line.startswith("+CSQ:") for line in await modem.command("AT+CSQ"))
    again = await _open(modem, "tcp", tcp_peer.port)  # the transport is free again
    await again.close()


async def test_peer_close_while_escaped_reaches_the_owner(
    modem: Modem, tcp_peer: TcpPeer, short_guard: None
) -> None:
    conn = await _open(modem, "tcp", tcp_peer.port)
    _, writer = await tcp_peer.accept()
    await conn.escape()
    closed: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    conn.add_close_callback(closed.set_result)
    writer.close()
    assert await asyncio.wait_for(closed, WAIT) is conn
    with pytest.raises(ConnectionClosedError):
        await conn.send(b"x")
    again = await _open(modem, "tcp", tcp_peer.port)
    await again.close()


async def test_one_link_only_and_bad_options(modem: Modem, tcp_peer: TcpPeer, short_guard: None) -> None:
    with pytest.raises(UnsupportedError, match="no option"):
        await modem.open_connection(
            "tcp", "127.0.0.1", tcp_peer.port, transport="transparent", quick_send=True
        )
    with pytest.raises(ValueError, match="guard_time"):
        await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="transparent", guard_time=0)
    conn = await _open(modem, "tcp", tcp_peer.port)
    reader, _ = await tcp_peer.accept()
    with pytest.raises(Sim7020Error, match=r"one link|transparent data mode"):
        await _open(modem, "tcp", tcp_peer.port)
    with pytest.raises(SocketError, match="in use by transport 'transparent'"):
        await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    await conn.send(b"unharmed")
    assert await read_exactly(reader, 8) == b"unharmed"
    await conn.escape()
    with pytest.raises(SocketError, match="in use by transport 'transparent'"):
        await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    await conn.close()


async def test_connect_failure_leaves_the_layer_usable(
    modem: Modem, tcp_peer: TcpPeer, short_guard: None
) -> None:
    with pytest.raises(SocketError, match="CONNECT FAIL"):
        await modem.open_connection("tcp", "10.9.9.9", 80, transport="transparent", guard_time=GUARD)
    assert not modem.engine.in_data_mode
    conn = await _open(modem, "tcp", tcp_peer.port)
    reader, _ = await tcp_peer.accept()
    await conn.send(b"ok")
    assert await read_exactly(reader, 2) == b"ok"
    await conn.close()


async def test_data_that_looks_like_the_start_of_closed_is_delivered(
    modem: Modem, tcp_peer: TcpPeer, short_guard: None
) -> None:
    conn = await _open(modem, "tcp", tcp_peer.port)
    _, writer = await tcp_peer.accept()
    writer.write(b"abc\r\nCLO")  # could be the start of the module's CLOSED line: held back briefly
    await writer.drain()
    assert await receive_stream(conn, 8) == b"abc\r\nCLO"
    writer.write(b"\r\nCLOSED\r\nmore")  # CLOSED inside the data, not at a line end of module output
    await writer.drain()
    assert await receive_stream(conn, 14) == b"\r\nCLOSED\r\nmore"
    assert not conn.closed
    await conn.close()


async def test_pdp_deactivation_leaves_data_mode(
    modem: Modem, emulator: Emulator, tcp_peer: TcpPeer, short_guard: None
) -> None:
    conn = await _open(modem, "tcp", tcp_peer.port)
    await tcp_peer.accept()
    ended: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    conn.add_close_callback(ended.set_result)
    emulator.detach()
    await asyncio.wait_for(ended, WAIT)
    assert isinstance(conn.error, SocketError)
    assert not modem.engine.in_data_mode
    assert any(line.startswith("+CSQ:") for line in await modem.command("AT+CSQ"))
    emulator.attach()
    await asyncio.sleep(0.1)
    again = await _open(modem, "tcp", tcp_peer.port)  # CIPSHUT, a new context, data mode again
    reader, _ = await tcp_peer.accept()
    await again.send(b"back")
    assert await read_exactly(reader, 4) == b"back"
    await again.close()


_no_marker = st.binary(max_size=300).filter(lambda b: all(m not in b for m in CLOSE_MARKERS))


@given(
    data=_no_marker,
    marker=st.sampled_from(CLOSE_MARKERS),
    tail=st.sampled_from([b"", b"\r", b"\r\n+PDP: DEACT\r\n", b"\r\n+CEREG: 0\r\n"]),
)
def test_find_close_marker_finds_the_module_line(data: bytes, marker: bytes, tail: bytes) -> None:
    # the data before the marker stays data, the marker is found, what follows is left for the AT parser
    assert find_close_marker(data + marker + tail) == (len(data), len(data) + len(marker))


@given(data=_no_marker)
def test_find_close_marker_ignores_plain_data(data: bytes) -> None:
    assert find_close_marker(data) is None


async def test_watchdog_survives_data_mode_and_still_catches_a_dead_module(
    emulator: Emulator, tcp_peer: TcpPeer, short_guard: None
) -> None:
    """While the line carries data the watchdog pauses (no AT may leak into the stream); afterwards it still
    notices a module that stopped answering and starts recovery."""
    from sim7020_core.models import LinkState
    from sim7020_core.modem import ModemOptions

    options = ModemOptions(
        registration_timeout=2.0, poll_interval=0.05, watchdog_interval=0.05, watchdog_max_failures=2
    )
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    async with await Modem.connect(f"socket://{host}:{port}", options=options) as modem:
        conn = await _open(modem, "tcp", tcp_peer.port)
        reader, _writer = await tcp_peer.accept()
        await asyncio.sleep(0.5)  # ~10 watchdog and poll intervals in data mode
        await conn.send(b"still data")
        assert await read_exactly(reader, 10) == b"still data"  # no "AT+CMEE?" leaked into the stream
        await conn.close()
        states: list[LinkState] = []
        modem.subscribe(lambda event: states.append(event.state))
        emulator.stall(None)  # the module goes silent
        async with asyncio.timeout(WAIT):
            while LinkState.RECOVERING not in states:
                await asyncio.sleep(0.02)
