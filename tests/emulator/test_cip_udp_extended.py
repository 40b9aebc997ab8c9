"""UDP extended mode (note 6.4): receive from any address, retarget CIPSEND with CIPUDPMODE=2."""

from __future__ import annotations

import pytest

from sim7020_core.emulator.peers import UdpPeer
from tests.emulator.test_cip_support import bring_up, running_modem

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


async def test_udp_extended_mode_note_6_4() -> None:
    a, b, stranger = await UdpPeer().start(), await UdpPeer().start(), await UdpPeer().start()
    try:
        async with running_modem(local_ip="10.78.245.128") as (emu, c):
            emu.route("116.228.221.51", 9600, to=("127.0.0.1", a.port))
            emu.route("116.228.221.51", 1234, to=("127.0.0.1", b.port))
            await bring_up(c)
            await c.cmd('AT+CLPORT="UDP",8888', OK)
            await c.cmd("AT+CIPSRIP=1", OK)
            await c.cmd("AT+CIPHEAD=1", OK)
            await c.cmd("AT+CIPUDPMODE?", b"\r\n+CIPUDPMODE: 0\r\n" + OK)
            await c.cmd("AT+CIPUDPMODE=1", OK)
            await c.cmd('AT+CIPSTART="UDP","116.228.221.51","9600"', OK + b"\r\nCONNECT OK\r\n")
            await c.cmd("AT+CIPUDPMODE?", b'\r\n+CIPUDPMODE: 1,"116.228.221.51",9600\r\n' + OK)

            await c.cmd("AT+CIPSEND", b"\r\n> ")
            await c.send(b"Hello 9600\x1a")
            await c.expect(b"\r\nSEND OK\r\n")
            data, module_addr = await a.next()
            assert data == b"Hello 9600"
            assert module_addr == emu.server_address(8888, "udp")  # the module's UDP port 8888, for real
            a.send(b"test1", module_addr)
            await c.expect(b"\r\nRECV FROM: 116.228.221.51:9600\r\n\r\n+IPD,5:test1")

            await c.cmd('AT+CIPUDPMODE=2,"116.228.221.51",1234', OK)
            await c.cmd("AT+CIPUDPMODE?", b'\r\n+CIPUDPMODE: 1,"116.228.221.51",1234\r\n' + OK)
            await c.cmd("AT+CIPSEND", b"\r\n> ")
            await c.send(b"Hello 1234\x1a")
            await c.expect(b"\r\nSEND OK\r\n")
            assert (await b.next())[0] == b"Hello 1234"
            b.send(b"test2", module_addr)
            await c.expect(b"\r\nRECV FROM: 116.228.221.51:1234\r\n\r\n+IPD,5:test2")

            # any address may send in extended mode, even one the module never sent to
            stranger.send(b"test3", module_addr)
            await c.expect(f"\r\nRECV FROM: 127.0.0.1:{stranger.port}\r\n\r\n+IPD,5:test3".encode())

            # back to normal mode: only the connection's remote address gets through
            await c.cmd("AT+CIPUDPMODE=0", OK)
            stranger.send(b"dropped", module_addr)
            a.send(b"test4", module_addr)
            await c.expect(b"\r\nRECV FROM: 116.228.221.51:9600\r\n\r\n+IPD,5:test4")
            await c.silent(0.1)
    finally:
        for p in (a, b, stranger):
            p.close()


@pytest.mark.parametrize(
    "command",
    [
        'AT+CIPUDPMODE=2,"1.2.3.4"',  # port missing
        'AT+CIPUDPMODE=2,"not-an-ip",5',
        "AT+CIPUDPMODE=3",
    ],
)
async def test_udp_mode_bad_input(command: str) -> None:
    peer = await UdpPeer().start()
    try:
        async with running_modem() as (_emu, c):
            await c.cmd("AT+CIPUDPMODE=1", OK)
            await c.cmd(f'AT+CIPSTART="UDP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
            await c.cmd(command, ERROR)
            await c.cmd("AT+CIPUDPMODE?", f'\r\n+CIPUDPMODE: 1,"127.0.0.1",{peer.port}\r\n'.encode() + OK)
    finally:
        peer.close()


async def test_udp_mode_multi_link_form() -> None:
    peer, other = await UdpPeer().start(), await UdpPeer().start()
    try:
        async with running_modem() as (_emu, c):
            await c.cmd("AT+CIPMUX=1", OK)
            await bring_up(c)
            await c.cmd("AT+CIPUDPMODE=1,1", OK)
            await c.cmd(f'AT+CIPSTART=1,"UDP","127.0.0.1",{peer.port}', OK + b"\r\n1, CONNECT OK\r\n")
            await c.cmd(f'AT+CIPUDPMODE=1,2,"127.0.0.1",{other.port}', OK)
            await c.cmd(f'AT+CIPUDPMODE=0,2,"127.0.0.1",{other.port}', ERROR)  # link 0 is not extended
            await c.cmd("AT+CIPSEND=1", b"\r\n> ")
            await c.send(b"retargeted\x1a")
            await c.expect(b"\r\n1, SEND OK\r\n")
            assert (await other.next())[0] == b"retargeted"
            lines = await c.lines("AT+CIPUDPMODE?")
            assert lines[:3] == [
                "+CIPUDPMODE: 0,0",
                f'+CIPUDPMODE: 1,1,"127.0.0.1",{other.port}',
                "+CIPUDPMODE: 2,0",
            ]
            assert lines[-1] == "OK"
    finally:
        peer.close()
        other.close()
