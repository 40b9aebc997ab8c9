"""CIP data paths (note 6.2-6.3, 6.6, 6.8-6.10): real loopback peers, exact UART bytes."""

from __future__ import annotations

import asyncio

import pytest

from sim7020_core.emulator.peers import TcpPeer, UdpPeer
from tests.emulator.test_cip_support import RawClient, bring_up, connection_end, read_exact, running_modem

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


async def connect_tcp(
    c: RawClient, peer: TcpPeer, n: int | None = None
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    if n is None:
        await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
    else:
        await c.cmd(
            f'AT+CIPSTART={n},"TCP","127.0.0.1",{peer.port}', OK + f"\r\n{n}, CONNECT OK\r\n".encode()
        )
    return await peer.accept()


@pytest.fixture
async def tcp_peer():
    peer = await TcpPeer().start()
    yield peer
    await peer.close()


@pytest.fixture
async def udp_peer():
    peer = await UdpPeer().start()
    yield peer
    peer.close()


# ------------------------------------------------------------------------------------------- single TCP


async def test_tcp_round_trip_note_6_2(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (emu, c):
        emu.route("116.228.221.51", 8500, to=("127.0.0.1", tcp_peer.port))
        await bring_up(c)
        await c.cmd('AT+CIPSTART="TCP","116.228.221.51","8500"', OK + b"\r\nCONNECT OK\r\n")
        reader, writer = await tcp_peer.accept()
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        await c.send(b"hello TCP serve\x1a")
        await c.expect(b"\r\nSEND OK\r\n")
        assert await read_exact(reader, 15) == b"hello TCP serve"
        writer.write(b"hello SIM7020")
        await c.expect(b"hello SIM7020")
        writer.close()
        await c.expect(b"\r\nCLOSED\r\n")
        await c.cmd("AT+CIPSEND", ERROR)


async def test_cipsend_data_may_arrive_in_any_chunks_and_carry_crlf(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await bring_up(c)
        reader, _w = await connect_tcp(c, tcp_peer)
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        for piece in (b"AT", b"+CSQ\r", b"\n\x00\xff", b"tail"):
            await c.send(piece)
            await asyncio.sleep(0.01)
        await c.silent(0.05)  # nothing is sent before Ctrl+Z
        await c.send(b"\x1a")
        await c.expect(b"\r\nSEND OK\r\n")
        assert await read_exact(reader, 14) == b"AT+CSQ\r\n\x00\xfftail"
        await c.cmd("AT", OK)


async def test_esc_cancels_a_send(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await bring_up(c)
        reader, writer = await connect_tcp(c, tcp_peer)
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        await c.send(b"never sent\x1b")
        await c.silent(0.1)
        await c.cmd("AT+CIPACK", b"\r\n+CIPACK: 0,0,0\r\n" + OK)
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        await c.send(b"second\x1a")
        await c.expect(b"\r\nSEND OK\r\n")
        assert await read_exact(reader, 6) == b"second"
        writer.close()


async def test_fixed_length_send_needs_no_ctrl_z_and_is_binary_safe(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await bring_up(c)
        reader, _w = await connect_tcp(c, tcp_peer)
        payload = b"\x1a\x1b\r\nAT\x00"
        await c.cmd(f"AT+CIPSEND={len(payload)}", b"\r\n> ")
        await c.send(payload + b"AT\r")  # what follows the fixed length is a command again
        both = await c.read_until(b"\r\nSEND OK\r\n")
        if both == b"\r\nSEND OK\r\n":
            await c.expect(OK)
        else:
            assert both == OK + b"\r\nSEND OK\r\n"
        assert await read_exact(reader, len(payload)) == payload
        await c.cmd("AT+CIPSEND=1461", ERROR)
        await c.cmd("AT+CIPSEND=0", ERROR)


async def test_echo_on_echoes_the_data_after_the_prompt(tcp_peer: TcpPeer) -> None:
    async with running_modem(echo=True) as (_emu, c):
        await c.cmd("AT+CSTT", b"AT+CSTT\r" + OK)
        await c.cmd("AT+CIICR", b"AT+CIICR\r" + OK)
        await c.cmd("AT+CIFSR", b"AT+CIFSR\r\r\n10.250.0.213\r\n")
        line = f'AT+CIPSTART="TCP","127.0.0.1",{tcp_peer.port}'
        await c.cmd(line, line.encode() + b"\r" + OK + b"\r\nCONNECT OK\r\n")
        await c.cmd("AT+CIPSEND", b"AT+CIPSEND\r\r\n> ")
        await c.send(b"hi\x1a")
        await c.expect(b"hi\r\nSEND OK\r\n")


async def test_cipsend_read_and_test_forms(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await c.cmd("AT+CIPSEND?", b"\r\n+CIPSEND: 0\r\n" + OK)
        await c.cmd("AT+CIPSEND=?", b"\r\n+CIPSEND: 1460\r\n" + OK)
        await bring_up(c)
        await connect_tcp(c, tcp_peer)
        await c.cmd("AT+CIPSEND?", b"\r\n+CIPSEND: 1460\r\n" + OK)


async def test_oversize_variable_send_fails_and_sends_nothing(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await bring_up(c)
        reader, _w = await connect_tcp(c, tcp_peer)
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        await c.send(b"x" * 1461 + b"\x1a")
        await c.expect(b"\r\nSEND FAIL\r\n")
        await c.cmd("AT+CIPACK", b"\r\n+CIPACK: 0,0,0\r\n" + OK)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.1):
                await reader.read(1)


async def test_cipsprt_prompt_styles(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await bring_up(c)
        reader, _w = await connect_tcp(c, tcp_peer)
        await c.cmd("AT+CIPSPRT?", b"\r\n+CIPSPRT: 1\r\n" + OK)
        await c.cmd("AT+CIPSPRT=0", OK)
        await c.send("AT+CIPSEND\ra\x1a")  # no prompt, still SEND OK
        await c.expect(b"\r\nSEND OK\r\n")
        await c.cmd("AT+CIPSPRT=2", OK)
        await c.send("AT+CIPSEND\rb\x1a")  # neither prompt nor SEND OK
        await c.silent(0.1)
        assert await read_exact(reader, 2) == b"ab"


async def test_cipats_sends_automatically_after_the_timer(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await bring_up(c)
        reader, _w = await connect_tcp(c, tcp_peer)
        await c.cmd("AT+CIPATS=1,1", OK)
        await c.cmd("AT+CIPATS?", b"\r\n+CIPATS: 1,1\r\n" + OK)
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        await c.send(b"timed")
        await c.expect(b"\r\nSEND OK\r\n", timeout=3.0)
        assert await read_exact(reader, 5) == b"timed"
        await c.cmd("AT", OK)  # back in command state


async def test_hostname_is_resolved_through_the_hosts_table(tcp_peer: TcpPeer) -> None:
    async with running_modem(hosts={"www.sim.com": "127.0.0.1"}) as (_emu, c):
        await bring_up(c)
        await c.cmd(f'AT+CIPSTART="TCP","WWW.SIM.COM",{tcp_peer.port}', OK + b"\r\nCONNECT OK\r\n")
        reader, _w = await tcp_peer.accept()
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        await c.send(b"DNS test\x1a")
        await c.expect(b"\r\nSEND OK\r\n")
        assert await read_exact(reader, 8) == b"DNS test"


@pytest.mark.parametrize("address", ['"no.such.host"', '"10.1.2.3"'])
async def test_unknown_or_unreachable_address_gives_connect_fail(address: str) -> None:
    async with running_modem() as (_emu, c):
        await bring_up(c)
        await c.cmd(f'AT+CIPSTART="TCP",{address},80', OK + b"\r\nCONNECT FAIL\r\n")
        await c.cmd("AT+CIPSTATUS", b"\r\nOK\r\n\r\nSTATE: TCP CLOSED\r\n")


async def test_refused_connection_gives_connect_fail() -> None:
    peer = await TcpPeer().start()
    port = peer.port
    await peer.close()  # nobody listens there any more
    async with running_modem() as (_emu, c):
        await bring_up(c)
        await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{port}', OK + b"\r\nCONNECT FAIL\r\n")


# ---------------------------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ([], b"ping"),
        (["AT+CIPHEAD=1"], b"\r\n+IPD,4:ping"),
        (["AT+CIPHEAD=1", "AT+CIPSHOWTP=1"], b"\r\n+IPD,4,TCP:ping"),
        (["AT+CIPSHOWTP=1"], b"ping"),  # SHOWTP only matters with CIPHEAD=1
        (["AT+CIPHEAD=1", "AT+CIPHEXS=1"], b"\r\n+IPD,4:70696E67"),
    ],
)
async def test_receive_header_forms_tcp(tcp_peer: TcpPeer, settings: list[str], expected: bytes) -> None:
    async with running_modem() as (_emu, c):
        for line in settings:
            await c.cmd(line, OK)
        await bring_up(c)
        _r, writer = await connect_tcp(c, tcp_peer)
        writer.write(b"ping")
        await c.expect(expected)


async def test_recv_from_names_the_note_address_of_a_routed_peer(udp_peer: UdpPeer) -> None:
    async with running_modem() as (emu, c):
        emu.route("116.228.221.51", 9600, to=("127.0.0.1", udp_peer.port))
        for line in ("AT+CIPSRIP=1", "AT+CIPHEAD=1", "AT+CIPSHOWTP=1"):
            await c.cmd(line, OK)
        await bring_up(c)
        await c.cmd('AT+CIPSTART="UDP","116.228.221.51","9600"', OK + b"\r\nCONNECT OK\r\n")
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        await c.send(b"SIM7020 UDP test\x1a")
        await c.expect(b"\r\nSEND OK\r\n")
        data, addr = await udp_peer.next()
        assert data == b"SIM7020 UDP test"
        udp_peer.send(b"UDP test", addr)
        await c.expect(b"\r\nRECV FROM: 116.228.221.51:9600\r\n\r\n+IPD,8,UDP:UDP test")


async def test_udp_link_ignores_strangers_without_extended_mode(udp_peer: UdpPeer) -> None:
    stranger = await UdpPeer().start()
    try:
        async with running_modem() as (_emu, c):
            await c.cmd("AT+CIPHEAD=1", OK)
            await bring_up(c)
            await c.cmd(f'AT+CIPSTART="UDP","127.0.0.1",{udp_peer.port}', OK + b"\r\nCONNECT OK\r\n")
            await c.cmd("AT+CIPSEND", b"\r\n> ")
            await c.send(b"hi\x1a")
            await c.expect(b"\r\nSEND OK\r\n")
            _data, addr = await udp_peer.next()
            stranger.send(b"spam", addr)
            udp_peer.send(b"real", addr)
            await c.expect(b"\r\n+IPD,4:real")
            await c.silent(0.1)
    finally:
        stranger.close()


# ------------------------------------------------------------------------------------------- multi link


async def test_multi_link_tcp_and_udp_note_6_6(tcp_peer: TcpPeer, udp_peer: UdpPeer) -> None:
    async with running_modem() as (emu, c):
        emu.route("116.228.221.51", 8500, to=("127.0.0.1", tcp_peer.port))
        emu.route("116.228.221.51", 9600, to=("127.0.0.1", udp_peer.port))
        await c.cmd("AT+CIPMUX=1", OK)
        await bring_up(c)
        await c.cmd('AT+CIPSTART=0,"TCP","116.228.221.51","8500"', OK + b"\r\n0, CONNECT OK\r\n")
        reader, writer = await tcp_peer.accept()
        await c.cmd('AT+CIPSTART=1,"UDP","116.228.221.51","9600"', OK + b"\r\n1, CONNECT OK\r\n")
        await c.cmd("AT+CIPSEND=0", b"\r\n> ")
        await c.send(b"TCP test\x1a")
        await c.expect(b"\r\n0, SEND OK\r\n")
        await c.cmd("AT+CIPSEND=1", b"\r\n> ")
        await c.send(b"UDP test\x1a")
        await c.expect(b"\r\n1, SEND OK\r\n")
        assert await read_exact(reader, 8) == b"TCP test"
        data, addr = await udp_peer.next()
        assert data == b"UDP test"
        writer.write(b"SIM7200 TCP test")
        await c.expect(b"\r\n+RECEIVE,0,16:\r\nSIM7200 TCP test")
        udp_peer.send(b"SIM7020UDP test\n", addr)
        await c.expect(b"\r\n+RECEIVE,1,16:\r\nSIM7020UDP test\n")
        await c.cmd(
            "AT+CIPSTATUS",
            b"\r\nOK\r\n\r\nSTATE: IP PROCESSING\r\n"
            b'\r\nC: 0,0,"TCP","116.228.221.51","8500","CONNECTED"\r\n'
            b'\r\nC: 1,0,"UDP","116.228.221.51","9600","CONNECTED"\r\n'
            b'\r\nC: 2,,"","","","INITIAL"\r\n'
            b'\r\nC: 3,,"","","","INITIAL"\r\n'
            b'\r\nC: 4,,"","","","INITIAL"\r\n'
            b'\r\nC: 5,,"","","","INITIAL"\r\n',
        )
        await c.cmd(
            "AT+CIPSTATUS=1", b'\r\n+CIPSTATUS: 1,0,"UDP","116.228.221.51","9600","CONNECTED"\r\n' + OK
        )
        await c.cmd("AT+CIPCLOSE=1", b"\r\n1, CLOSE OK\r\n")
        await c.cmd("AT+CIPCLOSE=1", ERROR)
        writer.close()
        await c.expect(b"\r\n0, CLOSED\r\n")
        await c.cmd("AT+CIPSTATUS=0", b'\r\n+CIPSTATUS: 0,0,"TCP","116.228.221.51","8500","CLOSED"\r\n' + OK)
        await c.cmd("AT+CIPSEND=0", ERROR)
        await c.cmd("AT+CIPSEND", ERROR)  # multi link needs <n>
        await c.cmd("AT+CIPSEND=6", ERROR)


async def test_multi_link_fixed_length_and_busy_link(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await c.cmd("AT+CIPMUX=1", OK)
        await bring_up(c)
        reader, _w = await connect_tcp(c, tcp_peer, n=3)
        await c.cmd(f'AT+CIPSTART=3,"TCP","127.0.0.1",{tcp_peer.port}', b"\r\n3, ALREADY CONNECT\r\n" + ERROR)
        await c.cmd("AT+CIPSEND=3,5", b"\r\n> ")
        await c.send(b"12345")
        await c.expect(b"\r\n3, SEND OK\r\n")
        assert await read_exact(reader, 5) == b"12345"


# ------------------------------------------------------------------------------------- CIPQSEND, CIPACK


async def test_quick_send_and_ack_single_link_note_6_9(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await c.cmd("AT+CIPQSEND=1", OK)
        await c.cmd("AT+CIPQSEND?", b"\r\n+CIPQSEND: 1\r\n" + OK)
        reader, _w = await connect_tcp(c, tcp_peer)
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        await c.send(b"012345678912\x1a")
        await c.expect(b"\r\nDATA ACCEPT: 12\r\n")
        assert await read_exact(reader, 12) == b"012345678912"
        await c.cmd("AT+CIPACK", b"\r\n+CIPACK: 12,12,0\r\n" + OK)


async def test_quick_send_and_ack_multi_link_note_6_9_4(tcp_peer: TcpPeer, udp_peer: UdpPeer) -> None:
    async with running_modem() as (_emu, c):
        await c.cmd("AT+CIPMUX=1", OK)
        await c.cmd("AT+CIPQSEND=1", OK)
        await bring_up(c)
        reader, _w = await connect_tcp(c, tcp_peer, n=1)
        await c.cmd(f'AT+CIPSTART=2,"UDP","127.0.0.1",{udp_peer.port}', OK + b"\r\n2, CONNECT OK\r\n")
        await c.cmd("AT+CIPSEND=1", b"\r\n> ")
        await c.send(b"TCP\x1a")
        await c.expect(b"\r\nDATA ACCEPT: 1,3\r\n")
        await c.cmd("AT+CIPACK=1", b"\r\n+CIPACK: 3,3,0\r\n" + OK)
        await c.cmd("AT+CIPSEND=2", b"\r\n> ")
        await c.send(b"UDP\x1a")
        await c.expect(b"\r\nDATA ACCEPT: 2,3\r\n")
        await c.cmd("AT+CIPACK=2", b"\r\n+CIPACK: 3,0,3\r\n" + OK)  # UDP is never acknowledged
        assert await read_exact(reader, 3) == b"TCP"
        assert (await udp_peer.next())[0] == b"UDP"
        await c.cmd("AT+CIPACK=4", ERROR)
        await c.cmd("AT+CIPACK", ERROR)


async def test_send_on_a_dropped_connection_fails(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await bring_up(c)
        _r, writer = await connect_tcp(c, tcp_peer)
        await c.cmd("AT+CIPSEND", b"\r\n> ")
        writer.close()
        await c.expect(b"\r\nCLOSED\r\n")
        await c.send(b"late\x1a")
        await c.expect(b"\r\nSEND FAIL\r\n")


# --------------------------------------------------------------------------------------------- CIPRXGET


async def test_manual_receive_note_6_10_2(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await c.cmd("AT+CIPRXGET=1", OK)
        await c.cmd("AT+CIPRXGET?", b"\r\n+CIPRXGET: 1\r\n" + OK)
        _r, writer = await connect_tcp(c, tcp_peer)
        writer.write(b"HELLO WORLD")
        await c.expect(b"\r\n+CIPRXGET: 1\r\n")
        await c.cmd("AT+CIPRXGET=4", b"\r\n+CIPRXGET: 4,11\r\n" + OK)
        await c.cmd("AT+CIPRXGET=2,1460", b"\r\n+CIPRXGET: 2,11,0\r\nHELLO WORLD\r\n" + OK)
        writer.write(b"HELLO WORLD")
        await c.expect(b"\r\n+CIPRXGET: 1\r\n")
        await c.cmd("AT+CIPRXGET=3,730", b"\r\n+CIPRXGET: 3,11,0\r\n48454C4C4F20574F524C44\r\n" + OK)
        await c.cmd("AT+CIPRXGET=2,10", b"\r\n+CIPRXGET: 2,0,0\r\n" + OK)
        await c.cmd("AT+CIPRXGET=2,1461", ERROR)
        await c.cmd("AT+CIPRXGET=3,731", ERROR)
        await c.cmd("AT+CIPRXGET=0", ERROR)  # not while connected


async def test_manual_receive_partial_reads_and_one_urc_per_empty_buffer(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await c.cmd("AT+CIPRXGET=1", OK)
        _r, writer = await connect_tcp(c, tcp_peer)
        writer.write(b"0123456789")
        await c.expect(b"\r\n+CIPRXGET: 1\r\n")
        await c.cmd("AT+CIPRXGET=4", b"\r\n+CIPRXGET: 4,10\r\n" + OK)
        writer.write(b"abc")  # buffer not empty: no second URC
        await c.silent(0.1)
        await c.cmd("AT+CIPRXGET=2,4", b"\r\n+CIPRXGET: 2,4,9\r\n0123\r\n" + OK)
        await c.cmd("AT+CIPRXGET=3,3", b"\r\n+CIPRXGET: 3,3,6\r\n343536\r\n" + OK)
        await c.cmd("AT+CIPRXGET=2", b"\r\n+CIPRXGET: 2,6,0\r\n789abc\r\n" + OK)
        writer.close()
        await c.expect(b"\r\nCLOSED\r\n")


async def test_manual_receive_multi_link_and_data_kept_after_close(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await c.cmd("AT+CIPMUX=1", OK)
        await c.cmd("AT+CIPRXGET=1", OK)
        await bring_up(c)
        _r, writer = await connect_tcp(c, tcp_peer, n=2)
        writer.write(b"bytes\r\n")
        await c.expect(b"\r\n+CIPRXGET: 1,2\r\n")
        writer.close()
        await c.expect(b"\r\n2, CLOSED\r\n")
        await c.cmd("AT+CIPRXGET=4,2", b"\r\n+CIPRXGET: 4,2,7\r\n" + OK)
        await c.cmd("AT+CIPRXGET=2,2,100", b"\r\n+CIPRXGET: 2,2,7,0\r\nbytes\r\n\r\n" + OK)
        await c.cmd("AT+CIPRXGET=2,5,100", ERROR)  # link 5 never existed


# ------------------------------------------------------------------------------------- other settings


@pytest.mark.parametrize(
    ("command", "read", "answer"),
    [
        (
            'AT+CDNSCFG="8.8.8.8","1.1.1.1"',
            "AT+CDNSCFG?",
            b"\r\nPrimaryDns: 8.8.8.8\r\n\r\nSecondaryDns: 1.1.1.1\r\n",
        ),
        ('AT+CLPORT="UDP",8888', "AT+CLPORT?", b"\r\n+CLPORT: 0,8888\r\n"),
        ("AT+CIPTKA=1,60,45,3", "AT+CIPTKA?", b"\r\n+CIPTKA: 1,60,45,3\r\n"),
        ('AT+CIPCSGP=1,"CMNET","u","p"', "AT+CIPCSGP?", b'\r\n+CIPCSGP: 1,"CMNET","u","p"\r\n'),
        ("AT+CIPSRIP=1", "AT+CIPSRIP?", b"\r\n+CIPSRIP: 1\r\n"),
        ("AT+CIPHEXS=1", "AT+CIPHEXS?", b"\r\n+CIPHEXS: 1\r\n"),
        ("AT+CIPMODE=1", "AT+CIPMODE?", b"\r\n+CIPMODE: 1\r\n"),
    ],
)
async def test_settings_read_back(command: str, read: str, answer: bytes) -> None:
    async with running_modem() as (_emu, c):
        await c.cmd(command, OK)
        await c.cmd(read, answer + OK)


async def test_slow_close_ends_gracefully_quick_close_resets(tcp_peer: TcpPeer) -> None:
    async with running_modem() as (_emu, c):
        await c.cmd("AT+CIPMUX=1", OK)
        await bring_up(c)
        slow_reader, _w0 = await connect_tcp(c, tcp_peer, n=0)
        quick_reader, _w1 = await connect_tcp(c, tcp_peer, n=1)
        await c.cmd("AT+CIPCLOSE=0,0", b"\r\n0, CLOSE OK\r\n")
        assert await connection_end(slow_reader) == "eof"  # FIN: an orderly end of stream
        await c.cmd("AT+CIPCLOSE=1,1", b"\r\n1, CLOSE OK\r\n")
        assert await connection_end(quick_reader) == "reset"  # RST: the connection is aborted
        await c.cmd("AT+CIPCLOSE=1,2", ERROR)
