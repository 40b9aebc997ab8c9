"""Native sockets (AT+CSO*) against real loopback peers."""

from __future__ import annotations

import asyncio
import socket

import pytest

from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer
from tests.emulator.conftest import WAIT, TcpHost, framed

SERVER = ("116.247.119.165", 5245)
UDP_SERVER = ("116.247.119.165", 5246)


async def _tcp_socket(host: TcpHost, emu: Emulator, peer: TcpPeer) -> asyncio.StreamReader:
    emu.route(*SERVER, to=peer.address)
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
    await host.cmd(f'AT+CSOCON=0,{SERVER[1]},"{SERVER[0]}"', "OK")
    reader, _ = await peer.accept()
    return reader


async def _read(reader: asyncio.StreamReader, n: int) -> bytes:
    async with asyncio.timeout(WAIT):
        return await reader.readexactly(n)


async def test_tcp_round_trip_hex_and_ascii(host: TcpHost, emu: Emulator, tcp_server: TcpPeer) -> None:
    reader = await _tcp_socket(host, emu, tcp_server)
    await host.cmd('AT+CSOSEND=0,0,"Hello World"', "OK")
    assert await _read(reader, 11) == b"Hello World"
    await host.cmd("AT+CSOSEND=0,8,00FF0d0A", "OK")
    assert await _read(reader, 4) == b"\x00\xff\r\n"


async def test_tcp_downlink_is_hex_csonmi(host: TcpHost, emu: Emulator, tcp_server: TcpPeer) -> None:
    emu.route(*SERVER, to=tcp_server.address)
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
    await host.cmd(f'AT+CSOCON=0,{SERVER[1]},"{SERVER[0]}"', "OK")
    _, writer = await tcp_server.accept()
    writer.write(b"123")
    await host.expect(framed("+CSONMI: 0,6,313233"))


async def test_raw_csonmi_carries_exact_bytes(host: TcpHost, emu: Emulator, tcp_server: TcpPeer) -> None:
    emu.route(*SERVER, to=tcp_server.address)
    await host.cmd("AT+CSORCVFLAG=1", "OK")
    await host.cmd("AT+CSORCVFLAG?", "+CSORCVFLAG: 1", "OK")
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
    await host.cmd(f'AT+CSOCON=0,{SERVER[1]},"{SERVER[0]}"', "OK")
    _, writer = await tcp_server.accept()
    payload = b"a\r\nOK\r\n\x00z"
    writer.write(payload)
    await host.expect(b"\r\n+CSONMI: 0,9," + payload + b"\r\n")


async def test_large_tcp_downlink_is_chunked(host: TcpHost, emu: Emulator, tcp_server: TcpPeer) -> None:
    emu.route(*SERVER, to=tcp_server.address)
    await host.cmd("AT+CSORCVFLAG=1", "OK")
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
    await host.cmd(f'AT+CSOCON=0,{SERVER[1]},"{SERVER[0]}"', "OK")
    _, writer = await tcp_server.accept()
    blob = bytes(range(256)) * 20  # 5120 bytes
    writer.write(blob)
    got = b""
    while len(got) < len(blob):
        m = await host.expect_re(rb"\r\n\+CSONMI: 0,(\d+),")
        size = int(m.group(1))
        assert 0 < size <= 1460
        m = await host.expect_re(rb"(.{%d})\r\n" % size)
        got += m.group(1)
    assert got == blob


async def test_udp_round_trip_and_one_urc_per_datagram(
    host: TcpHost, emu: Emulator, udp_peer: UdpPeer
) -> None:
    emu.route(*UDP_SERVER, to=udp_peer.address)
    await host.cmd("AT+CSOC=1,2,1", "+CSOC: 0", "OK")
    await host.cmd(f'AT+CSOCON=0,{UDP_SERVER[1]},"{UDP_SERVER[0]}"', "OK")
    await host.cmd('AT+CSOSEND=0,10,"3132333435"', "OK")
    data, module_addr = await udp_peer.next()
    assert data == b"12345"
    udp_peer.send(b"ab", module_addr)
    udp_peer.send(b"cde", module_addr)
    await host.expect(framed("+CSONMI: 0,4,6162", "+CSONMI: 0,6,636465"))


async def test_udp_to_an_unrouted_address_is_lost_but_ok(host: TcpHost) -> None:
    await host.cmd("AT+CSOC=1,2,1", "+CSOC: 0", "OK")
    await host.cmd('AT+CSOCON=0,9999,"192.0.2.7"', "OK")
    await host.cmd('AT+CSOSEND=0,0,"void"', "OK")
    await host.cmd("AT+CSOACK=0", "+CSOACK: 0,4,0,4", "OK")


async def test_tcp_connect_unreachable_and_refused(host: TcpHost, emu: Emulator) -> None:
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
    await host.cmd('AT+CSOCON=0,80,"192.0.2.1"', "ERROR")
    # routed, but nothing listens there: the real connect is refused
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    free_port = probe.getsockname()[1]
    probe.close()
    emu.route("203.0.113.5", 80, to=("127.0.0.1", free_port))
    await host.cmd('AT+CSOCON=0,80,"203.0.113.5"', "ERROR")
    await host.cmd('AT+CSOCON=0,80,"not-an-ip"', "ERROR")
    await host.cmd("AT+CSOSTATUS=0", "+CSOSTATUS: 0,1", "OK")


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        (f"AT+CSOSEND=0,512,{'AB' * 256}", True),
        (f"AT+CSOSEND=0,514,{'AB' * 257}", False),
        ("AT+CSOSEND=0,3,ABC", False),
        ("AT+CSOSEND=0,4,ABCG", False),
        ("AT+CSOSEND=0,4,ABCDEF", False),
        ('AT+CSOSEND=0,0,""', False),
        (f'AT+CSOSEND=0,0,"{"x" * 513}"', False),
    ],
)
async def test_csosend_limits(host: TcpHost, emu: Emulator, tcp_server: TcpPeer, line: str, ok: bool) -> None:
    reader = await _tcp_socket(host, emu, tcp_server)
    await host.cmd(line, "OK" if ok else "ERROR")
    if ok:
        assert await _read(reader, 256) == b"\xab" * 256


async def test_csosendflag_acknowledges_after_the_peer_got_it(
    host: TcpHost, emu: Emulator, tcp_server: TcpPeer
) -> None:
    await host.cmd("AT+CSOSENDFLAG=1", "OK")
    reader = await _tcp_socket(host, emu, tcp_server)
    await host.cmd('AT+CSOSEND=0,0,"Hello World"', "OK")
    await host.expect(framed("SEND: 0,11"))
    assert await _read(reader, 11) == b"Hello World"
    await host.cmd("AT+CSOACK=0", "+CSOACK: 0,11,11,0", "OK")
    await host.cmd("AT+CSOSENDFLAG=0", "OK")
    await host.cmd('AT+CSOSEND=0,0,"x"', "OK")
    await host.quiet()


async def test_csodsend_prompt_raw_bytes_and_esc(host: TcpHost, emu: Emulator, tcp_server: TcpPeer) -> None:
    """A fixed-length CSODSEND carries every byte, ESC included (docs/emulator.md choice 15)."""
    reader = await _tcp_socket(host, emu, tcp_server)
    await host.send("AT+CSODSEND=0,7")
    await host.expect(b"\r\n> ")
    await host.write(b"a\r\n\x1az\x00\x1b")
    await host.expect(framed("DATA ACCEPT: 7", "OK"))
    assert await _read(reader, 7) == b"a\r\n\x1az\x00\x1b"
    await host.cmd("AT+CSODSEND=0,0", "ERROR")
    await host.cmd("AT+CSODSEND=0,1461", "ERROR")
    await host.send("AT+CSODSEND=0,1460")  # the largest
    await host.expect(b"\r\n> ")
    await host.write(bytes(range(256)) * 5 + bytes(180))
    await host.expect(framed("DATA ACCEPT: 1460", "OK"))
    assert await _read(reader, 1460) == bytes(range(256)) * 5 + bytes(180)


async def test_csodsend_esc_cancels_when_configured(
    host: TcpHost, emu: Emulator, tcp_server: TcpPeer
) -> None:
    emu.command_sets["native"].dsend_esc_cancels = True  # type: ignore[attr-defined]
    await _tcp_socket(host, emu, tcp_server)
    await host.send("AT+CSODSEND=0,10")
    await host.expect(b"\r\n> ")
    await host.write(b"abc\x1b")
    await host.quiet()
    await host.cmd("AT", "OK")


async def test_peer_close_and_reset_raise_csoerr(host: TcpHost, emu: Emulator, tcp_server: TcpPeer) -> None:
    await _tcp_socket(host, emu, tcp_server)
    # a second connection, closed by the peer (FIN): error 4, the usual remote close
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 1", "OK")
    await host.cmd(f'AT+CSOCON=1,{SERVER[1]},"{SERVER[0]}"', "OK")
    _, w1 = await tcp_server.accept()
    w1.close()
    await host.expect(framed("+CSOERR: 1,4"))
    await host.cmd("AT+CSOSTATUS=1", "+CSOSTATUS: 1,1", "OK")
    await host.cmd('AT+CSOSEND=1,0,"x"', "ERROR")
    await host.cmd("AT+CSOCL=1", "OK")
    await host.cmd("AT+CSOSTATUS=1", "+CSOSTATUS: 1,0", "OK")
    # a reset (RST) is error 3
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 1", "OK")
    await host.cmd(f'AT+CSOCON=1,{SERVER[1]},"{SERVER[0]}"', "OK")
    _, w2 = await tcp_server.accept()
    sock = w2.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    w2.transport.abort()
    await host.expect(framed("+CSOERR: 1,3"))


async def test_five_sockets_and_status(host: TcpHost, emu: Emulator, tcp_server: TcpPeer) -> None:
    await _tcp_socket(host, emu, tcp_server)
    await host.cmd("AT+CSOSTATUS=0", "+CSOSTATUS: 0,2", "OK")
    for i in range(1, 5):
        await host.cmd("AT+CSOC=1,2,1", f"+CSOC: {i}", "OK")
    await host.cmd("AT+CSOC=1,2,1", "ERROR")
    await host.cmd("AT+CSOSTATUS=3", "+CSOSTATUS: 3,1", "OK")
    await host.cmd("AT+CSOCL=3", "OK")
    await host.cmd("AT+CSOSTATUS=3", "+CSOSTATUS: 3,0", "OK")
    await host.cmd("AT+CSOSTATUS=5", "ERROR")
    await host.cmd("AT+CSOC=2,1,1", "ERROR")  # IPv6 not emulated
    await host.cmd("AT+CSOC=1,3,1", "ERROR")  # RAW not emulated


async def test_manual_receive(host: TcpHost, emu: Emulator, tcp_server: TcpPeer) -> None:
    emu.route(*SERVER, to=tcp_server.address)
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
    await host.cmd(f'AT+CSOCON=0,{SERVER[1]},"{SERVER[0]}"', "OK")
    _, writer = await tcp_server.accept()
    await host.cmd("AT+CSORXGET=4,0", "ERROR")  # manual mode is off
    await host.cmd("AT+CSORXGET=1", "OK")
    writer.write(b"0123456789" * 170)
    await host.expect(framed("+CSORXGET: 1,0"))
    await asyncio.sleep(0.1)
    await host.quiet()  # one arrival URC, no +CSONMI
    await host.cmd("AT+CSORXGET=4,0", "+CSORXGET: 4,0,1700", "OK")
    await host.send("AT+CSORXGET=2,0,1000")
    await host.expect(b"\r\n+CSORXGET: 2,0,1000,700\r\n" + b"0123456789" * 100 + b"\r\n" + framed("OK"))
    await host.send("AT+CSORXGET=3,0,700")
    await host.expect(b"\r\n+CSORXGET: 3,0,700,0\r\n" + b"30313233343536373839" * 70 + b"\r\n" + framed("OK"))
    await host.cmd("AT+CSORXGET=2,0,10", "+CSORXGET: 2,0,0,0", "OK")
    await host.cmd("AT+CSORXGET=2,0,1461", "ERROR")
    await host.cmd("AT+CSORXGET=3,0,731", "ERROR")
    writer.write(b"more")
    await host.expect(framed("+CSORXGET: 1,0"))  # buffer was empty again
    await host.cmd("AT+CSORXGET=0", "OK")
    writer.write(b"!")
    await host.expect(framed("+CSONMI: 0,2,21"))


async def test_server_mode(host: TcpHost, emu: Emulator) -> None:
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
    await host.cmd("AT+CSOLIS=0", "ERROR")  # not bound yet
    await host.cmd('AT+CSOB=0,5678," 10.250.0.213"', "OK")
    await host.cmd("AT+CSOLIS=0", "OK")
    await host.cmd("AT+CSOSTATUS=0", "+CSOSTATUS: 0,1", "OK")
    r, w = await asyncio.open_connection(*emu.server_address(5678))
    await host.expect(framed("+NEW CLIENT CONNEC: 1"))
    await host.cmd('AT+CSOSEND=1,0,"Hello World"', "OK")
    assert await _read(r, 11) == b"Hello World"
    w.write(b"123")
    await host.expect(framed("+CSONMI: 1,6,313233"))
    r2, w2 = await asyncio.open_connection(*emu.server_address(5678))
    await host.expect(framed("+NEW CLIENT CONNEC: 2"))
    await host.cmd("AT+CSOCL=0", "OK")  # stop listening; clients stay
    with pytest.raises(KeyError):
        emu.server_address(5678)
    await host.cmd('AT+CSOSEND=2,0,"still"', "OK")
    assert await _read(r2, 5) == b"still"
    await host.cmd("AT+CSOCL=1", "OK")
    async with asyncio.timeout(WAIT):
        assert await r.read() == b""
    w.close()
    w2.close()
    await host.expect(framed("+CSOERR: 2,4"))


async def test_udp_bound_port_is_reachable(host: TcpHost, emu: Emulator, udp_peer: UdpPeer) -> None:
    await host.cmd("AT+CSOC=1,2,1", "+CSOC: 0", "OK")
    await host.cmd("AT+CSOB=0,8888", "OK")
    udp_peer.send(b"hi", emu.server_address(8888, "udp"))
    await host.expect(framed("+CSONMI: 0,4,6869"))


async def test_socket_commands_reject_bad_ids_and_forms(host: TcpHost) -> None:
    for line in ("AT+CSOCL", "AT+CSOCL=5", "AT+CSOCL=0", "AT+CSOSTATUS", 'AT+CSOSEND=0,0,"x"', "AT+CSOACK=9"):
        await host.cmd(line, "ERROR")
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
    await host.cmd("AT+CSOALIVE=0,1,60,10,3", "OK")
    await host.cmd("AT+CSOALIVE=0,0", "OK")
    await host.cmd("AT+CSOALIVE=0,2", "ERROR")


async def test_socket_error_fault_and_detach(host: TcpHost, emu: Emulator, tcp_server: TcpPeer) -> None:
    reader = await _tcp_socket(host, emu, tcp_server)
    emu.socket_error(0, 2)
    await host.expect(framed("+CSOERR: 0,2"))
    async with asyncio.timeout(WAIT):
        with pytest.raises(ConnectionResetError):
            await reader.read()  # the real connection was reset
    with pytest.raises(ValueError, match="already failed"):
        emu.socket_error(0, 2)
    with pytest.raises(ValueError, match="does not exist"):
        emu.socket_error(3, 1)
    await host.cmd("AT+CSOC=1,2,1", "+CSOC: 1", "OK")
    emu.detach()
    await host.expect(framed("+CSOERR: 1,11"))
    await host.cmd("AT+CGATT?", "+CGATT: 0", "OK")
    await host.cmd("AT+CSOC=1,2,1", "ERROR")
    emu.attach()
    await host.cmd("AT+CSOC=1,2,1", "+CSOC: 2", "OK")
