"""The cip transport (AT+CIP*, multi link) end to end: Modem → AT bytes → emulator → real loopback peers."""

from __future__ import annotations

import asyncio
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.connection import Connection
from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer
from sim7020_core.exceptions import ConnectionClosedError, PayloadError, SocketError, UnsupportedError
from sim7020_core.modem import Modem
from sim7020_plugins._cipcore import split_link
from sim7020_plugins.cip import MAX_LINKS, MAX_TCP_SEND, CipConnection

from .cip_support import GUARD, echo_tcp, messages, module_output, read_exactly, receive_stream, sent_commands
from .conftest import WAIT

# ------------------------------------------------------------------------------------ data integrity


def echo(data: bytes) -> bytes:
    """A peer's answer: the datagram itself."""
    return data


async def test_tcp_round_trip_of_1000_random_messages(modem: Modem, tcp_peer: TcpPeer) -> None:
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    reader, writer = await tcp_peer.accept()
    echo = asyncio.create_task(echo_tcp(reader, writer))
    msgs = messages(seed=41)
    expected = b"".join(msgs)
    received = asyncio.create_task(receive_stream(conn, len(expected)))
    for msg in msgs:
        await conn.send(msg)
    assert await received == expected  # in order, every byte value intact
    assert conn.dropped_bytes == 0
    await conn.close()
    echo.cancel()


async def test_udp_round_trip_of_1000_random_datagrams(modem: Modem, udp_peer: UdpPeer) -> None:
    udp_peer.reply = echo
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    for msg in messages(seed=42):
        await conn.send(msg)
        assert await conn.receive(timeout=WAIT) == msg  # one datagram back, boundaries kept
    await conn.close()


async def test_large_tcp_send_is_split_into_1460_byte_cipsends(
    modem: Modem, emulator: Emulator, tcp_peer: TcpPeer
) -> None:
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    reader, _ = await tcp_peer.accept()
    payload = bytes(range(256)) * 20  # 5120 bytes
    await conn.send(payload)
    assert await read_exactly(reader, len(payload)) == payload
    sends = [c for c in sent_commands(emulator) if c.startswith("AT+CIPSEND=")]
    assert sends == ["AT+CIPSEND=0,1460"] * 3 + ["AT+CIPSEND=0,740"]


# --------------------------------------------------------------------------------- close handling


async def test_peer_close_reaches_the_owner_when_it_arrives(modem: Modem, tcp_peer: TcpPeer) -> None:
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    _, writer = await tcp_peer.accept()
    closed: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    conn.add_close_callback(closed.set_result)
    writer.write(b"last words")
    await writer.drain()
    writer.close()
    assert await asyncio.wait_for(closed, WAIT) is conn  # no send or receive needed to notice it
    assert isinstance(conn.error, ConnectionClosedError)
    assert await conn.receive(timeout=WAIT) == b"last words"  # what came before the close is kept
    with pytest.raises(ConnectionClosedError):
        await conn.receive(timeout=WAIT)
    with pytest.raises(ConnectionClosedError):
        await conn.send(b"x")
    # the modem and the link number stay usable
    assert await modem.command("AT+CSQ")
    again = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    assert isinstance(again, CipConnection)
    assert again.link == 0
    await again.close()


async def test_owner_close_frees_the_link(modem: Modem, emulator: Emulator, tcp_peer: TcpPeer) -> None:
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    reader, _ = await tcp_peer.accept()
    await conn.close()
    assert conn.closed
    assert conn.error is None
    assert await reader.read() == b""  # the peer sees the connection end (FIN)
    assert "AT+CIPCLOSE=0,0" in sent_commands(emulator)
    assert b"0, CLOSE OK" in module_output(emulator)


# ------------------------------------------------------------------------------------- bad input


async def test_a_seventh_link_is_refused_and_nothing_leaks(modem: Modem, udp_peer: UdpPeer) -> None:
    conns = [
        await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
        for _ in range(MAX_LINKS)
    ]
    assert [c.link for c in conns if isinstance(c, CipConnection)] == list(range(MAX_LINKS))
    with pytest.raises(SocketError, match="all 6 CIP links are in use"):
        await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    await conns[3].close()
    seventh = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    assert isinstance(seventh, CipConnection)
    assert seventh.link == 3
    await seventh.send(b"still works")
    assert (await udp_peer.next())[0] == b"still works"
    for conn in [*conns, seventh]:
        await conn.close()


async def test_payload_limits_are_clear_errors(modem: Modem, udp_peer: UdpPeer, tcp_peer: TcpPeer) -> None:
    udp = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    with pytest.raises(PayloadError, match="1461 bytes is larger than 1460"):
        await udp.send(b"x" * 1461)
    with pytest.raises(PayloadError, match="empty"):
        await udp.send(b"")
    with pytest.raises(UnsupportedError, match="wait_ack needs a TCP"):
        await udp.send(b"x", wait_ack=True)
    await udp.send(b"y" * 1460)  # the largest datagram goes through, the link is fine
    assert (await udp_peer.next())[0] == b"y" * 1460
    tcp = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    reader, _ = await tcp_peer.accept()
    with pytest.raises(PayloadError, match="larger than"):
        await tcp.send(b"z" * (MAX_TCP_SEND + 1))
    await tcp.send(b"fine")
    assert await read_exactly(reader, 4) == b"fine"
    await udp.close()
    await tcp.close()


async def test_bad_arguments_name_what_was_wrong(modem: Modem, udp_peer: UdpPeer) -> None:
    with pytest.raises(UnsupportedError, match="no option"):
        await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip", colour="red")
    with pytest.raises(ValueError, match="receive_mode"):
        await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip", receive_mode="later")
    with pytest.raises(ValueError, match="close_mode"):
        await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip", close_mode="soon")
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    assert isinstance(conn, CipConnection)
    assert conn.link == 0  # the refused opens held no link
    await conn.close()


async def test_connect_failure_climbs_the_recovery_ladder(
    modem: Modem, emulator: Emulator, tcp_peer: TcpPeer
) -> None:
    # 10.9.9.9 is neither loopback nor routed: the emulated module cannot reach it (CONNECT FAIL)
    with pytest.raises(SocketError, match=r"CONNECT FAIL.*Modem\.reboot"):
        await modem.open_connection("tcp", "10.9.9.9", 80, transport="cip")
    commands = sent_commands(emulator)
    starts = [i for i, c in enumerate(commands) if c.startswith('AT+CIPSTART=0,"TCP","10.9.9.9"')]
    assert len(starts) == 3
    between = commands[starts[0] : starts[-1]]
    assert "AT+CIPCLOSE=0,1" in between  # note 6.13: CIPCLOSE, retry ...
    assert "AT+CIPSHUT" in between  # ... then CIPSHUT ...
    assert "AT+CIICR" in between  # ... and a new context
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    reader, _ = await tcp_peer.accept()
    await conn.send(b"recovered")
    assert await read_exactly(reader, 9) == b"recovered"
    await conn.close()


async def test_connect_failure_with_other_links_open_keeps_them(
    modem: Modem, emulator: Emulator, tcp_peer: TcpPeer
) -> None:
    first = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    reader, _ = await tcp_peer.accept()
    with pytest.raises(SocketError, match="CONNECT FAIL"):
        await modem.open_connection("tcp", "10.9.9.9", 80, transport="cip")
    assert "AT+CIPSHUT" not in sent_commands(emulator)  # would have killed the open link
    await first.send(b"alive")
    assert await read_exactly(reader, 5) == b"alive"
    await first.close()


# ------------------------------------------------------------------------ quick send, manual receive


async def test_quick_send_and_wait_ack(modem: Modem, emulator: Emulator, tcp_peer: TcpPeer) -> None:
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip", quick_send=True)
    assert isinstance(conn, CipConnection)
    reader, _ = await tcp_peer.accept()
    await conn.send(b"a" * 100, wait_ack=True)
    assert await conn.ack_status() == (100, 100, 0)
    assert await read_exactly(reader, 100) == b"a" * 100
    commands = sent_commands(emulator)
    assert "AT+CIPQSEND=1" in commands
    assert "AT+CIPACK=0" in commands
    assert b"DATA ACCEPT: 0,100" in module_output(emulator)
    await conn.close()


async def test_manual_receive_pulls_only_what_the_owner_has_room_for(
    modem: Modem, emulator: Emulator, tcp_peer: TcpPeer
) -> None:
    conn = await modem.open_connection(
        "tcp", "127.0.0.1", tcp_peer.port, transport="cip", receive_mode="manual", buffer_limit=3000
    )
    _, writer = await tcp_peer.accept()
    blob = bytes(range(256)) * 80  # 20480 bytes, far more than the owner's buffer
    writer.write(blob)
    await writer.drain()
    await asyncio.sleep(0.3)  # let the module and the transport do what they would do unattended
    assert conn.queued_bytes <= 3000  # flow control: the rest waits in the module
    assert await receive_stream(conn, len(blob)) == blob
    assert conn.dropped_bytes == 0
    assert "AT+CIPRXGET=1" in sent_commands(emulator)
    assert any(c.startswith("AT+CIPRXGET=2,0,") for c in sent_commands(emulator))
    assert b"+RECEIVE" not in module_output(emulator)
    await conn.close()


# ------------------------------------------------------------------------------------------- server


async def test_server_accepts_clients_on_free_links(
    modem: Modem, emulator: Emulator, tcp_peer: TcpPeer
) -> None:
    outgoing = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    server = await modem.listen(8888, transport="cip")
    with pytest.raises(SocketError, match="already runs its one CIP TCP server"):
        await modem.listen(8889, transport="cip")
    host, port = emulator.server_address(8888)
    reader, writer = await asyncio.open_connection(host, port)
    client = await server.accept(timeout=WAIT)
    assert isinstance(client, CipConnection)
    assert client.link == 1  # link 0 is the outgoing connection
    assert (client.remote_host, client.remote_port) == writer.get_extra_info("sockname")[:2]
    writer.write(b"hello server")
    await writer.drain()
    assert await receive_stream(client, 12) == b"hello server"
    await client.send(b"hello client\x00\xff")
    assert await read_exactly(reader, 14) == b"hello client\x00\xff"
    closed: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    client.add_close_callback(closed.set_result)
    writer.close()
    await asyncio.wait_for(closed, WAIT)
    await server.close()
    assert "AT+CIPSERVER=0" in sent_commands(emulator)
    with pytest.raises(ConnectionClosedError):
        await server.accept(timeout=WAIT)
    again = await modem.listen(8889, transport="cip")  # a new server after the old one closed
    await again.close()
    await outgoing.close()


# ----------------------------------------------------------------------------------- layer sharing


async def test_transparent_is_refused_while_cip_links_are_open(
    modem: Modem, emulator: Emulator, tcp_peer: TcpPeer
) -> None:
    emulator.command_sets["cip"].guard_time = GUARD  # type: ignore[attr-defined]
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    await tcp_peer.accept()
    with pytest.raises(SocketError, match="in use by transport 'cip'"):
        await modem.open_connection(
            "tcp", "127.0.0.1", tcp_peer.port, transport="transparent", guard_time=GUARD
        )
    with pytest.raises(SocketError, match="in use by transport 'cip'"):
        await modem.open_connection("udp", "127.0.0.1", tcp_peer.port, transport="udp_extended")
    await conn.send(b"cip link untouched")
    await conn.close()
    transparent = await modem.open_connection(
        "tcp", "127.0.0.1", tcp_peer.port, transport="transparent", guard_time=GUARD
    )
    reader, _ = await tcp_peer.accept()
    await transparent.send(b"now transparent")
    assert await read_exactly(reader, 15) == b"now transparent"
    await transparent.close()
    back = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")  # and back again
    await back.close()


async def test_manual_receive_keeps_what_arrived_before_the_peer_closed(
    modem: Modem, tcp_peer: TcpPeer
) -> None:
    conn = await modem.open_connection(
        "tcp", "127.0.0.1", tcp_peer.port, transport="cip", receive_mode="manual", buffer_limit=3000
    )
    _, writer = await tcp_peer.accept()
    blob = bytes(range(256)) * 40  # 10240 bytes, more than the owner's buffer holds
    writer.write(blob)
    await writer.drain()
    writer.close()
    closed: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    conn.add_close_callback(closed.set_result)
    assert await receive_stream(conn, len(blob)) == blob
    await asyncio.wait_for(closed, WAIT)
    with pytest.raises(ConnectionClosedError):
        await conn.receive(timeout=WAIT)
    assert conn.dropped_bytes == 0


# ------------------------------------------------------------------------------ bearer and module loss


async def test_pdp_deactivation_closes_every_link_and_the_next_open_recovers(
    modem: Modem, emulator: Emulator, tcp_peer: TcpPeer, udp_peer: UdpPeer
) -> None:
    tcp = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    await tcp_peer.accept()
    udp = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    ended: asyncio.Queue[Connection] = asyncio.Queue()
    tcp.add_close_callback(ended.put_nowait)
    udp.add_close_callback(ended.put_nowait)
    emulator.detach()  # PS service lost: CLOSED for each link, then +PDP: DEACT
    got = {await asyncio.wait_for(ended.get(), WAIT) for _ in range(2)}
    assert got == {tcp, udp}
    assert isinstance(tcp.error, SocketError)
    emulator.attach()
    await asyncio.sleep(0.1)
    again = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    assert isinstance(again, CipConnection)
    assert again.link == 0
    await again.send(b"new context")
    assert (await udp_peer.next())[0] == b"new context"
    assert "AT+CIPSHUT" in sent_commands(emulator)  # PDP DEACT is left with CIPSHUT (note 6.11)
    await again.close()


async def test_module_reboot_closes_links_and_the_layer_is_set_up_again(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer
) -> None:
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    ended: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    conn.add_close_callback(ended.set_result)
    emulator.reboot()
    await asyncio.wait_for(ended, WAIT)
    again = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    await again.send(b"after reboot")
    assert (await udp_peer.next())[0] == b"after reboot"
    await again.close()


# ------------------------------------------------------------------------------------------ parsing


@given(
    link=st.integers(0, 5),
    sep=st.sampled_from([", ", ",", "."]),
    text=st.sampled_from(["CLOSED", "SEND OK", "CONNECT OK", "REMOTE IP: 10.76.40.73"]),
)
def test_split_link_reads_every_form_of_the_note(link: int, sep: str, text: str) -> None:
    assert split_link(f"{link}{sep}{text}") == (link, text)


@given(st.text(max_size=30))
def test_split_link_never_raises_and_keeps_bare_lines(line: str) -> None:
    link, text = split_link(line)
    if link is None:
        assert text == line.strip()


@pytest.mark.parametrize("retention", [True, False])
async def test_cip_link_across_psm_follows_the_modules_retention(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer, retention: bool
) -> None:
    """AT+RETENTION is module-wide (set here through the native transport's option, which records it on the
    modem): with it a CIP link survives PSM and keeps working; without it the link is reported closed when the
    module goes to sleep. tests/plugins/test_retention.py sets it on the modem with no native transport."""
    native = await modem.open_connection(
        "udp", "127.0.0.1", udp_peer.port, transport="native", retention=retention
    )
    await native.close()
    assert modem.retention is retention
    assert emulator.state.retention == int(retention)
    udp_peer.reply = echo
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    emulator.enter_psm()
    async with asyncio.timeout(WAIT):
        while not (conn.closed or modem.state.value == "asleep"):
            await asyncio.sleep(0.01)
    emulator.exit_psm()
    async with asyncio.timeout(WAIT):
        while modem.state.value != "ready":
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the transports have been told of the PSM episode
    if retention:
        assert not conn.closed
        await conn.send(b"after psm")
        assert await conn.receive(timeout=WAIT) == b"after psm"
    else:
        assert conn.closed
        with pytest.raises(ConnectionClosedError):
            await conn.send(b"after psm")


# ------------------------------------------------------------------------ keepalive and timed send


async def test_keepalive_is_set_with_ciptka_and_applied_again_after_a_reboot(
    modem: Modem, emulator: Emulator, tcp_peer: TcpPeer
) -> None:
    conn = await modem.open_connection(
        "tcp", "127.0.0.1", tcp_peer.port, transport="cip", keepalive=[60, 30, 3]
    )  # a list, as YAML gives it
    await tcp_peer.accept()
    assert "AT+CIPTKA=1,60,30,3" in sent_commands(emulator)
    assert await modem.command("AT+CIPTKA?") == ["+CIPTKA: 1,60,30,3"]
    ended: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
    conn.add_close_callback(ended.set_result)
    emulator.reboot()  # the module forgets it (its default is off)
    await asyncio.wait_for(ended, WAIT)
    async with asyncio.timeout(WAIT):
        while await modem.command("AT+CIPTKA?") != ["+CIPTKA: 1,60,30,3"]:
            await asyncio.sleep(0.05)  # the modem applies the transport's session settings once it is up
    plain = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip", keepalive=False)
    await tcp_peer.accept()
    assert await modem.command("AT+CIPTKA?") == ["+CIPTKA: 0,60,30,3"]  # off (the last one asked for wins)
    await plain.close()


async def test_keepalive_and_timed_send_values_are_checked_before_anything_is_sent(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer, tcp_peer: TcpPeer
) -> None:
    port = tcp_peer.port
    with pytest.raises(UnsupportedError, match="keepalive is for TCP"):
        await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip", keepalive=True)
    bad_keepalive = {
        (10, 30, 3): "keepalive idle_s must be an integer from 30 to 7200 (AT+CIPTKA), not 10",
        (60, 601, 3): "keepalive interval_s must be an integer from 30 to 600 (AT+CIPTKA), not 601",
        (60, 30, 0): "keepalive count must be an integer from 1 to 9 (AT+CIPTKA), not 0",
        (60, 30): r"keepalive must be True, False or \(idle_s, interval_s, count\), not \(60, 30\)",
    }
    for value, message in bad_keepalive.items():
        with pytest.raises(ValueError, match=message if value == (60, 30) else re.escape(message)):
            await modem.open_connection("tcp", "127.0.0.1", port, transport="cip", keepalive=value)
    for value in (0, 101, "5", 2.5, True):
        with pytest.raises(
            ValueError, match=r"timed_send must be whole seconds from 1 to 100 \(AT\+CIPATS\)"
        ):
            await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip", timed_send=value)
    assert not [c for c in sent_commands(emulator) if c.startswith(("AT+CIPTKA", "AT+CIPATS", "AT+CIPSTART"))]
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    with pytest.raises(ValueError, match="timed_send must be"):
        await conn.send(b"x", timed_send=0)
    with pytest.raises(PayloadError, match=r"cannot carry 0x1A \(Ctrl\+Z.*found at byte 2"):
        await conn.send(b"ab\x1acd", timed_send=1)
    with pytest.raises(PayloadError, match="at most 1460 bytes"):
        await conn.send(b"a" * 1461, timed_send=1)
    with pytest.raises(UnsupportedError, match="has no option"):
        await conn.send(b"x", timed=1)
    await conn.close()


async def test_a_timed_send_goes_out_when_the_modules_timer_runs_out(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer
) -> None:
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    loop = asyncio.get_running_loop()
    started = loop.time()
    await conn.send(b"timed hello", timed_send=1)
    assert loop.time() - started >= 0.9  # the module held the data for its timer
    assert (await udp_peer.next())[0] == b"timed hello"
    commands = sent_commands(emulator)
    assert commands[-2:] == ["AT+CIPATS=1,1", "AT+CIPSEND=0"]  # the note's variable-length form
    await conn.send(b"plain")  # an ordinary send is not held by the timer
    assert (await udp_peer.next())[0] == b"plain"
    assert sent_commands(emulator)[-1] == "AT+CIPSEND=0,5"
    await conn.close()


async def test_timed_send_as_a_connection_option(modem: Modem, emulator: Emulator, tcp_peer: TcpPeer) -> None:
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip", timed_send=1)
    reader, _ = await tcp_peer.accept()
    await conn.send(b"every send is timed", wait_ack=True)
    assert await read_exactly(reader, 19) == b"every send is timed"
    assert sent_commands(emulator)[-3:-1] == ["AT+CIPATS=1,1", "AT+CIPSEND=0"]  # then AT+CIPACK=0
    await conn.send(b"not this one", timed_send=None)
    assert await read_exactly(reader, 12) == b"not this one"
    assert sent_commands(emulator)[-1] == "AT+CIPSEND=0,12"
    await conn.close()
