"""The udp_extended transport (AT+CIPUDPMODE, note 6.4) end to end against the emulator and loopback peers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.connection import Connection
from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import UdpPeer
from sim7020_core.exceptions import PayloadError, SocketError, UnsupportedError
from sim7020_core.modem import Modem
from sim7020_plugins.udp_extended import UdpExtendedConnection, parse_sender

from .cip_support import GUARD, messages, sent_commands
from .conftest import WAIT


def echo(data: bytes) -> bytes:
    """A peer's answer: the datagram itself."""
    return data


@pytest.fixture
async def other_peer() -> AsyncIterator[UdpPeer]:
    """A second real UDP socket on loopback."""
    async with UdpPeer() as peer:
        yield peer


async def _open(modem: Modem, port: int, **options: object) -> UdpExtendedConnection:
    conn = await modem.open_connection("udp", "127.0.0.1", port, transport="udp_extended", **options)
    assert isinstance(conn, UdpExtendedConnection)
    return conn


async def test_round_trip_of_1000_random_datagrams(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer
) -> None:
    udp_peer.reply = echo
    conn = await _open(modem, udp_peer.port)
    for msg in messages(seed=61):
        await conn.send(msg)
        data, sender = await conn.receive_from(timeout=WAIT)
        assert data == msg
        assert sender == ("127.0.0.1", udp_peer.port)
    commands = sent_commands(emulator)
    for setting in ("AT+CIPSRIP=1", "AT+CIPHEAD=1", "AT+CIPUDPMODE=1"):
        assert setting in commands
    await conn.close()


async def test_receive_from_names_each_sender(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer, other_peer: UdpPeer
) -> None:
    conn = await _open(modem, udp_peer.port, local_port=8888)
    assert 'AT+CLPORT="UDP",8888' in sent_commands(emulator)
    module = emulator.server_address(8888, "udp")  # where the module's UDP port 8888 really is
    other_peer.send(b"from a stranger", module)
    udp_peer.send(b"from the peer\r\n\x00", module)
    got = {await conn.receive_from(timeout=WAIT) for _ in range(2)}
    assert got == {
        (b"from a stranger", ("127.0.0.1", other_peer.port)),
        (b"from the peer\r\n\x00", ("127.0.0.1", udp_peer.port)),
    }
    await conn.close()


async def test_send_to_retargets_only_when_the_target_changes(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer, other_peer: UdpPeer
) -> None:
    conn = await _open(modem, udp_peer.port)
    await conn.send_to(b"one", "127.0.0.1", other_peer.port)
    await conn.send_to(b"two", "127.0.0.1", other_peer.port)
    assert [(await other_peer.next())[0] for _ in range(2)] == [b"one", b"two"]
    await conn.send(b"home")  # send() still goes to the connected peer
    data, addr = await udp_peer.next()
    assert data == b"home"
    udp_peer.send(b"reply", addr)
    assert await conn.receive_from(timeout=WAIT) == (b"reply", ("127.0.0.1", udp_peer.port))
    retargets = [c for c in sent_commands(emulator) if c.startswith("AT+CIPUDPMODE=2")]
    assert retargets == [
        f'AT+CIPUDPMODE=2,"127.0.0.1",{other_peer.port}',
        f'AT+CIPUDPMODE=2,"127.0.0.1",{udp_peer.port}',
    ]
    with pytest.raises(ValueError, match="IP address"):
        await conn.send_to(b"x", "example.com", 1)
    with pytest.raises(ValueError, match="port"):
        await conn.send_to(b"x", "127.0.0.1", 0)
    await conn.close()


async def test_bad_input_is_refused_and_nothing_leaks(modem: Modem, udp_peer: UdpPeer) -> None:
    with pytest.raises(UnsupportedError, match="carries udp, not 'tcp'"):
        await modem.open_connection("tcp", "127.0.0.1", udp_peer.port, transport="udp_extended")
    with pytest.raises(ValueError, match="local_port"):
        await _open(modem, udp_peer.port, local_port=70000)
    conn = await _open(modem, udp_peer.port)
    with pytest.raises(SocketError, match="one UDP link"):
        await _open(modem, udp_peer.port)
    with pytest.raises(PayloadError, match="1461 bytes"):
        await conn.send(b"x" * 1461)
    with pytest.raises(PayloadError, match="1461 bytes"):
        await conn.send_to(b"x" * 1461, "127.0.0.1", udp_peer.port)
    await conn.send(b"z" * 1460)
    assert (await udp_peer.next())[0] == b"z" * 1460
    await conn.close()
    again = await _open(modem, udp_peer.port)
    await again.send(b"again")
    assert (await udp_peer.next())[0] == b"again"
    await again.close()


async def test_closing_frees_the_layer_for_cip(modem: Modem, udp_peer: UdpPeer) -> None:
    conn = await _open(modem, udp_peer.port)
    closed: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    conn.add_close_callback(closed.set_result)
    with pytest.raises(SocketError, match="in use by transport 'udp_extended'"):
        await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    await conn.close()
    assert await asyncio.wait_for(closed, WAIT) is conn
    assert conn.error is None
    cip = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    await cip.send(b"multi link now")
    data, addr = await udp_peer.next()
    assert data == b"multi link now"
    udp_peer.send(b"reply to cip", addr)  # the module still shows senders (CIPSRIP=1): cip ignores them
    assert await cip.receive(timeout=WAIT) == b"reply to cip"
    await cip.close()


async def test_after_transparent_mode(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer, other_peer: UdpPeer
) -> None:
    emulator.command_sets["cip"].guard_time = GUARD  # type: ignore[attr-defined]
    transparent = await modem.open_connection(
        "udp", "127.0.0.1", other_peer.port, transport="transparent", guard_time=GUARD
    )
    await transparent.send(b"raw")
    assert (await other_peer.next())[0] == b"raw"
    await transparent.close()
    conn = await _open(modem, udp_peer.port)  # back to normal mode (AT+CIPMODE=0)
    assert "AT+CIPMODE=0" in sent_commands(emulator)
    await conn.send_to(b"framed", "127.0.0.1", other_peer.port)
    data, addr = await other_peer.next()
    assert data == b"framed"
    other_peer.send(b"answer", addr)
    assert await conn.receive_from(timeout=WAIT) == (b"answer", ("127.0.0.1", other_peer.port))
    await conn.close()


@given(
    ip=st.ip_addresses(v=4).map(str),
    port=st.integers(1, 65535),
    space=st.sampled_from(["", " "]),
    head=st.sampled_from(["RECV FROM:", "RECVFROM:", "RECV FROM: "]),
)
def test_parse_sender_reads_the_note_variants(ip: str, port: int, space: str, head: str) -> None:
    assert parse_sender(f"{head}{ip}:{space}{port}") == (ip, port)


@given(st.text(max_size=40))
def test_parse_sender_never_raises(line: str) -> None:
    result = parse_sender(line)
    assert result is None or (isinstance(result[1], int) and result[0])


async def test_pdp_deactivation_ends_the_link_and_the_next_open_recovers(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer
) -> None:
    conn = await _open(modem, udp_peer.port)
    ended: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    conn.add_close_callback(ended.set_result)
    emulator.detach()
    await asyncio.wait_for(ended, WAIT)
    assert isinstance(conn.error, SocketError)
    emulator.attach()
    await asyncio.sleep(0.1)
    again = await _open(modem, udp_peer.port)
    await again.send(b"new context")
    assert (await udp_peer.next())[0] == b"new context"
    await again.close()
