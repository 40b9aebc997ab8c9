"""CIPSERVER (note 6.5, 6.7): a real listening socket on 127.0.0.1, clients are real loopback sockets."""

from __future__ import annotations

import asyncio
import socket

from sim7020_core.emulator.core import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer
from tests.emulator.test_cip_support import bring_up, connection_end, read_exact, running_modem

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


async def connect_client(
    emu: Emulator, modem_port: int, note_addr: tuple[str, int] | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Connect to the module's server; with ``note_addr``, the module sees the client under that address."""
    host, port = emu.server_address(modem_port)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    if note_addr is not None:
        emu.route(note_addr[0], note_addr[1], to=("127.0.0.1", sock.getsockname()[1]))
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    return await asyncio.open_connection(sock=sock)


async def test_single_link_server_note_6_5() -> None:
    async with running_modem(local_ip="10.78.245.128") as (emu, c):
        await c.cmd("AT+CIPSERVER?", b"\r\n+CIPSERVER: 0\r\n" + OK)
        await c.cmd("AT+CIPSERVER=1,1234", OK + b"\r\nSERVER OK\r\n")
        await c.cmd("AT+CIFSR", b"\r\n10.78.245.128\r\n")
        await c.cmd("AT+CIPSTATUS", b"\r\nOK\r\n\r\nSTATE: SERVER LISTENING\r\n")
        await c.cmd("AT+CIPSERVER?", b"\r\n+CIPSERVER: 1,1234\r\n" + OK)
        await c.cmd("AT+CIPSERVER=1,1235", ERROR)  # one server at a time
        reader, writer = await connect_client(emu, 1234, ("10.78.103.220", 5000))
        await c.expect(b"\r\nREMOTE IP: 10.78.103.220\r\n")
        writer.write(b"hello server")
        await c.expect(b"hello server")
        await c.cmd("AT+CIPSTATUS", b"\r\nOK\r\n\r\nSTATE: CONNECT OK\r\n")
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        await c.send(b"hello client\x1a")
        await c.expect(b"\r\nSEND OK\r\n")
        assert await read_exact(reader, 12) == b"hello client"

        # a second client is turned away while the first is connected
        r2, _w2 = await connect_client(emu, 1234)
        assert await connection_end(r2) == "reset"
        await c.silent(0.1)

        await c.cmd("AT+CIPSERVER=0", OK + b"\r\nSERVER CLOSE\r\n")
        writer.write(b"hello server")  # the accepted connection stays up
        await c.expect(b"hello server")
        await c.cmd("AT+CIPCLOSE", b"\r\nCLOSE OK\r\n")
        assert await connection_end(reader) == "eof"


async def test_single_link_server_client_close_reports_closed() -> None:
    async with running_modem() as (emu, c):
        await c.cmd("AT+CIPHEAD=1", OK)
        await c.cmd("AT+CIPSERVER=1,80", OK + b"\r\nSERVER OK\r\n")
        _reader, writer = await connect_client(emu, 80)
        await c.expect(b"\r\nREMOTE IP: 127.0.0.1\r\n")
        writer.write(b"GET")
        await c.expect(b"\r\n+IPD,3:GET")
        writer.close()
        await c.expect(b"\r\nCLOSED\r\n")
        # still listening: the next client is taken
        _r2, _w2 = await connect_client(emu, 80)
        await c.expect(b"\r\nREMOTE IP: 127.0.0.1\r\n")


async def test_multi_link_server_and_clients_note_6_7() -> None:
    tcp_peer = await TcpPeer().start()
    udp_peer = await UdpPeer().start()
    try:
        async with running_modem() as (emu, c):
            emu.route("116.228.221.51", 8500, to=("127.0.0.1", tcp_peer.port))
            emu.route("116.228.221.51", 9600, to=("127.0.0.1", udp_peer.port))
            await c.cmd("AT+CIPMUX=1", OK)
            await c.cmd("AT+CIPSERVER=1,8888", ERROR)  # multi link: CSTT/CIICR/CIFSR first (6.7)
            await bring_up(c)
            await c.cmd("AT+CIPSERVER=1,8888", OK + b"\r\nSERVER OK\r\n")
            reader, writer = await connect_client(emu, 8888, ("10.76.40.73", 2020))
            await c.expect(b"\r\n0, REMOTE IP: 10.76.40.73\r\n")
            writer.write(b"connection TCP server test")
            await c.expect(b"\r\n+RECEIVE,0,26:\r\nconnection TCP server test")
            await c.cmd("AT+CIPSEND=0", b"\r\n> ")
            await c.send(b"TCP test\x1a")
            await c.expect(b"\r\n0, SEND OK\r\n")
            assert await read_exact(reader, 8) == b"TCP test"
            await c.cmd('AT+CIPSTART=1,"TCP","116.228.221.51","8500"', OK + b"\r\n1, CONNECT OK\r\n")
            await tcp_peer.accept()
            await c.cmd('AT+CIPSTART=2,"UDP","116.228.221.51","9600"', OK + b"\r\n2, CONNECT OK\r\n")
            await c.cmd("AT+CIPCLOSE=2", b"\r\n2, CLOSE OK\r\n")
            await c.cmd(
                "AT+CIPSTATUS",
                b"\r\nOK\r\n\r\nSTATE: IP PROCESSING\r\n"
                b'\r\nS: 0,0,"8888","LISTENING"\r\n'
                b'\r\nC: 0,0,"TCP","10.76.40.73","2020","CONNECTED"\r\n'
                b'\r\nC: 1,0,"TCP","116.228.221.51","8500","CONNECTED"\r\n'
                b'\r\nC: 2,0,"UDP","116.228.221.51","9600","CLOSED"\r\n'
                b'\r\nC: 3,,"","","","INITIAL"\r\n'
                b'\r\nC: 4,,"","","","INITIAL"\r\n'
                b'\r\nC: 5,,"","","","INITIAL"\r\n',
            )
            # the next client gets the lowest free link: 2 (closed) is reused
            _r2, _w2 = await connect_client(emu, 8888, ("10.76.40.74", 2021))
            await c.expect(b"\r\n2, REMOTE IP: 10.76.40.74\r\n")
            await c.cmd("AT+CIPSERVER=0", OK + b"\r\nSERVER CLOSE\r\n")
            await c.cmd("AT+CIPSHUT", b"\r\nSHUT OK\r\n")
            assert await connection_end(reader) == "eof"
    finally:
        await tcp_peer.close()
        udp_peer.close()
