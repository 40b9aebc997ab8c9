"""Bad input gets ERROR / +CME ERROR, never a crash or a wedge, and nothing already set up is lost.

Raw bytes only (no driver): the host is a TCP client (and a pty for a few cases), the remote end of a socket
is a real loopback peer.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.emulator.transcript_tools import (
    RawClient,
    TcpPeer,
    UdpPeer,
    echo_off,
    framed,
    make_emulator,
    serving,
    stop_emulator,
)

ERROR = framed("ERROR")
#: CMEE=1: numeric form; CMEE=2: verbose form (text)
CME_NUMERIC = rb"\r\n\+CME ERROR: \d+\r\n"
CME_VERBOSE = rb"\r\n\+CME ERROR: [A-Za-z][^\r\n]*\r\n"
#: an unknown command may be a plain ERROR even with CMEE=1 (it is not an equipment error)
ERROR_OR_CME = rb"\r\n(ERROR|\+CME ERROR: [^\r\n]+)\r\n"

NOTE_SERVER = ("116.247.119.165", 5245)
NOTE_UDP_PEER = ("116.247.119.165", 5246)


@dataclass
class Rig:
    emu: Any
    client: RawClient
    tcp_peer: TcpPeer
    udp_peer: UdpPeer

    async def cmd(self, line: str | bytes, answer: bytes) -> None:
        await self.client.send_line(line)
        await self.client.expect(answer, what=repr(line))

    async def cmd_re(self, line: str | bytes, pattern: bytes) -> bytes:
        await self.client.send_line(line)
        return await self.client.expect_re(pattern, what=repr(line))

    async def alive(self) -> None:
        """The module still answers a plain AT with OK, and has nothing else pending."""
        await self.client.send_line("AT")
        await self.client.expect(framed("OK"), what="AT after bad input")

    async def tcp_socket(self) -> None:
        """Socket 0: a TCP connection to the note's server (a loopback peer)."""
        await self.cmd("AT+CSOC=1,1,1", framed("+CSOC: 0", "OK"))
        await self.cmd('AT+CSOCON=0,5245,"116.247.119.165"', framed("OK"))


async def _rig(over: str) -> AsyncIterator[Rig]:
    tcp_peer, udp_peer = TcpPeer(), UdpPeer()
    await tcp_peer.start()
    await udp_peer.start()
    emu = make_emulator()
    emu.route(*NOTE_SERVER, to=tcp_peer.address)
    emu.route(*NOTE_UDP_PEER, to=udp_peer.address)
    try:
        async with serving(emu, over) as client:  # type: ignore[arg-type]
            await echo_off(client)
            yield Rig(emu, client, tcp_peer, udp_peer)
    finally:
        await tcp_peer.stop()
        await udp_peer.stop()
        await stop_emulator(emu)


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    async for r in _rig("tcp"):
        yield r


@pytest.fixture(params=["tcp", "pty"])
async def any_rig(request: pytest.FixtureRequest) -> AsyncIterator[Rig]:
    async for r in _rig(request.param):
        yield r


# ------------------------------------------------------------------------------------------ unknown input

UNKNOWN_COMMANDS = ["AT+FOOBAR", "AT+CSOX=1", "AT+CSQQ", "AT+", "AT#$%", "AT+CIPFOO=1,2", "AT*NOPE?"]


@pytest.mark.parametrize("line", UNKNOWN_COMMANDS)
async def test_unknown_command_is_error(any_rig: Rig, line: str) -> None:
    await any_rig.cmd(line, ERROR)
    await any_rig.alive()


@pytest.mark.parametrize("line", ["AT+FOOBAR", "AT+CSOX=1"])
async def test_unknown_command_with_cmee_1(rig: Rig, line: str) -> None:
    await rig.cmd("AT+CMEE=1", framed("OK"))
    await rig.cmd_re(line, ERROR_OR_CME)
    await rig.alive()


# --------------------------------------------------------------------------------------- wrong parameters

WRONG_PARAMETERS = [
    "AT+CSOC=1,1",  # protocol missing
    "AT+CSOC=1,1,1,1,1",  # too many
    "AT+CSOC=7,1,1",  # domain out of range
    "AT+CSOC=1,9,1",  # type out of range
    "AT+CSOC=a,b,c",  # not numbers
    "AT+CSOCON=0",  # port and address missing
    "AT+CSOSEND=0",  # length and data missing
    "AT+CSOCL",  # exec form does not exist
    "AT+CSOCL=0,1",  # too many
    "AT+CDNSGIP",  # host missing
    'AT+CDNSGIP="a","b","c"',
    "AT+CIPPING",
    'AT+CIPPING="1.2.3.4",0',  # retries 1..100
    'AT+CIPPING="1.2.3.4",4,5121',  # data length 0..5120
    'AT+CIPPING="1.2.3.4",4,32,601',  # timeout 1..600 (100 ms units)
    "AT+CFUN=7",
    "AT+CMEE=3",
    "AT+CPSMS=5",
    'AT+CPSMS=1,,,"0100011","00000000"',  # 7-bit timer string
    'AT+CPSMS=1,,,"01000111","0000000x"',  # not a bit string
    "AT+CSQ=1",
    "AT+CIPMUX=2",
    "AT+CIPMODE=5",
    "AT+CIPQSEND=3",
]


@pytest.mark.parametrize("line", WRONG_PARAMETERS)
async def test_wrong_parameters_are_error(rig: Rig, line: str) -> None:
    await rig.cmd(line, ERROR)
    await rig.alive()


@pytest.mark.parametrize(
    ("cmee", "pattern"), [(1, CME_NUMERIC), (2, CME_VERBOSE)], ids=["numeric", "verbose"]
)
@pytest.mark.parametrize("line", ["AT+CSOC=1,1", "AT+CSOCL=9", "AT+CFUN=7"])
async def test_cmee_forms(rig: Rig, cmee: int, pattern: bytes, line: str) -> None:
    await rig.cmd(f"AT+CMEE={cmee}", framed("OK"))
    await rig.cmd_re(line, pattern)
    await rig.cmd("AT+CMEE=0", framed("OK"))
    await rig.cmd(line, ERROR)
    await rig.alive()


# ------------------------------------------------------------------------------------------ socket ids


@pytest.mark.parametrize(
    "line",
    [
        "AT+CSOCL=5",  # ids run 0-4
        "AT+CSOCL=-1",
        "AT+CSOCL=0",  # never created
        'AT+CSOSEND=7,0,"x"',
        'AT+CSOSEND=3,0,"x"',  # never created
        'AT+CSOCON=9,5245,"116.247.119.165"',
        'AT+CSOCON=2,5245,"116.247.119.165"',  # never created
        "AT+CSOSTATUS=5",
        "AT+CSODSEND=6,4",
    ],
)
async def test_out_of_range_or_unknown_socket_id(rig: Rig, line: str) -> None:
    await rig.cmd(line, ERROR)
    await rig.alive()


async def test_sixth_socket_is_refused_and_the_five_others_work(rig: Rig) -> None:
    for sock_id in range(5):
        await rig.cmd("AT+CSOC=1,2,1", framed(f"+CSOC: {sock_id}", "OK"))
    await rig.cmd("AT+CSOC=1,2,1", ERROR)
    await rig.cmd('AT+CSOCON=4,5246,"116.247.119.165"', framed("OK"))
    await rig.cmd('AT+CSOSEND=4,0,"still here"', framed("OK"))
    await rig.udp_peer.expect(b"still here")
    await rig.cmd("AT+CSOCL=2", framed("OK"))
    await rig.cmd("AT+CSOC=1,2,1", framed("+CSOC: 2", "OK"))


# ------------------------------------------------------------------------------------------ payloads


@pytest.mark.parametrize(
    "line",
    [
        'AT+CSOSEND=0,3,"313"',  # odd number of hex characters
        "AT+CSOSEND=0,3,313",
        'AT+CSOSEND=0,4,"zz12"',  # not hex
        'AT+CSOSEND=0,6,"3132"',  # length does not match the data
        'AT+CSOSEND=0,2,"3132"',
        "AT+CSOSEND=0,-2,3132",
        'AT+CSOSEND=0,0,"unterminated',
    ],
)
async def test_bad_payload_is_error_and_the_socket_survives(rig: Rig, line: str) -> None:
    await rig.tcp_socket()
    await rig.cmd(line, ERROR)
    await rig.alive()
    # nothing already accepted is lost: the socket still carries data, and only the good data
    await rig.cmd('AT+CSOSEND=0,0,"after"', framed("OK"))
    await rig.tcp_peer.expect(b"after")


async def test_payload_size_limit_is_512_hex_characters(rig: Rig) -> None:
    await rig.tcp_socket()
    biggest = bytes(range(256))
    await rig.cmd(f"AT+CSOSEND=0,512,{biggest.hex().upper()}", framed("OK"))
    await rig.tcp_peer.expect(biggest)
    too_big = bytes(257)
    await rig.cmd(f"AT+CSOSEND=0,514,{too_big.hex()}", ERROR)
    await rig.alive()
    await rig.cmd('AT+CSOSEND=0,0,"small"', framed("OK"))
    await rig.tcp_peer.expect(b"small")


async def test_very_long_line_is_rejected_and_forgotten(rig: Rig) -> None:
    await rig.client.send_line("AT+CSQ" + "9" * 5000)
    # the module may answer ERROR (once) or drop the line; it must then work normally
    await rig.client.sync()
    await rig.cmd("AT+CSQ", framed("+CSQ: 20,0", "OK"))


# ------------------------------------------------------------------------------------------ wrong state


async def test_mcgdefcont_only_with_radio_off(rig: Rig) -> None:
    await rig.cmd('AT*MCGDEFCONT="IP","3GNET"', ERROR)
    await rig.alive()


async def test_socket_commands_need_service(rig: Rig) -> None:
    await rig.cmd("AT+CFUN=0", framed("+CPIN: NOT READY", "OK"))
    await rig.cmd("AT+CSOC=1,1,1", ERROR)
    await rig.cmd('AT+CDNSGIP="example.com"', ERROR)
    await rig.alive()


async def test_tcp_connect_to_an_unreachable_address_is_error(rig: Rig) -> None:
    await rig.cmd("AT+CSOC=1,1,1", framed("+CSOC: 0", "OK"))
    await rig.cmd('AT+CSOCON=0,5245,"192.0.2.1"', ERROR)  # TEST-NET-1: not routed anywhere
    await rig.alive()


async def test_send_on_a_socket_that_is_not_connected(rig: Rig) -> None:
    await rig.cmd("AT+CSOC=1,1,1", framed("+CSOC: 0", "OK"))
    await rig.cmd('AT+CSOSEND=0,0,"nowhere"', ERROR)
    await rig.alive()


async def test_ciicr_before_cstt(rig: Rig) -> None:
    await rig.cmd("AT+CIICR", ERROR)
    await rig.cmd("AT+CSTT", framed("OK"))
    await rig.cmd("AT+CIICR", framed("OK"))


async def test_cipmode_needs_single_link(rig: Rig) -> None:
    await rig.cmd("AT+CIPMUX=1", framed("OK"))
    await rig.cmd("AT+CIPMODE=1", ERROR)
    await rig.cmd("AT+CIPMUX=0", framed("OK"))
    await rig.cmd("AT+CIPMODE=1", framed("OK"))


async def test_cipsend_without_a_connection(rig: Rig) -> None:
    await rig.cmd("AT+CIPSEND", ERROR)
    await rig.cmd("AT+CIPMUX=1", framed("OK"))
    await rig.cmd("AT+CIPSEND=0", ERROR)
    await rig.cmd("AT+CIPSEND=9", ERROR)
    await rig.cmd("AT+CIPCLOSE=9", ERROR)
    await rig.alive()


async def test_cipmux_cannot_change_while_connected(rig: Rig) -> None:
    for line in ("AT+CSTT", "AT+CIICR"):
        await rig.cmd(line, framed("OK"))
    await rig.cmd_re("AT+CIFSR", rb"\r\n[0-9.]+\r\n")
    await rig.cmd('AT+CIPSTART="TCP","116.247.119.165","5245"', framed("OK", "CONNECT OK"))
    await rig.cmd("AT+CIPMUX=1", ERROR)
    await rig.cmd("AT+CIPSEND", b"\r\n> ")
    await rig.client.write(b"kept\x1a")
    await rig.client.expect(framed("SEND OK"))
    await rig.tcp_peer.expect(b"kept")


# ------------------------------------------------------------------------------------------ prompts


async def test_fixed_length_csodsend_carries_esc_as_data(rig: Rig) -> None:
    """A send whose length is given ends by its length: ESC (0x1B) is data there, like CR, LF and Ctrl+Z
    (only the Ctrl+Z-terminated AT+CIPSEND is cancelled by ESC, see test_esc_cancels_cipsend_...)."""
    await rig.cmd("AT+CSOC=1,1,1", framed("+CSOC: 0", "OK"))
    await rig.cmd('AT+CSOCON=0,5245,"116.247.119.165"', framed("OK"))
    await rig.client.send_line("AT+CSODSEND=0,6")
    await rig.client.expect_re(rb"\r\n> ")
    await rig.client.write(b"a\x1bb\r\x1a\n")
    await rig.client.expect(framed("DATA ACCEPT: 6", "OK"))
    await rig.tcp_peer.expect(b"a\x1bb\r\x1a\n")
    await rig.cmd("AT", framed("OK"))


async def test_csodsend_esc_cancels_when_configured(rig: Rig) -> None:
    rig.emu.command_sets["native"].dsend_esc_cancels = True  # type: ignore[attr-defined]
    await rig.cmd("AT+CSOC=1,1,1", framed("+CSOC: 0", "OK"))
    await rig.cmd('AT+CSOCON=0,5245,"116.247.119.165"', framed("OK"))
    await rig.client.send_line("AT+CSODSEND=0,10")
    await rig.client.expect_re(rb"\r\n> ")
    await rig.client.write(b"abc\x1b")
    # after ESC the module is back in command state (it may or may not say anything)
    await rig.client.sync()
    await rig.cmd('AT+CSOSEND=0,0,"real"', framed("OK"))
    await rig.tcp_peer.expect(b"real")  # "abc" never went out


def test_error_patterns_are_what_they_claim() -> None:
    assert re.fullmatch(CME_NUMERIC, b"\r\n+CME ERROR: 50\r\n")
    assert not re.fullmatch(CME_NUMERIC, b"\r\n+CME ERROR: incorrect parameters\r\n")
    assert re.fullmatch(CME_VERBOSE, b"\r\n+CME ERROR: incorrect parameters\r\n")
    assert not re.fullmatch(CME_VERBOSE, b"\r\n+CME ERROR: 50\r\n")


async def test_crlf_terminated_commands_get_one_answer_each(any_rig: Rig) -> None:
    """Many hosts end commands with CRLF: the LF must not produce a second answer."""
    await any_rig.client.write(b"AT\r\nAT+CSQ\r\n")
    await any_rig.client.expect(framed("OK") + framed("+CSQ: 20,0", "OK"))
    await any_rig.client.expect_silence()


async def test_lines_without_at_prefix_do_not_disturb(any_rig: Rig) -> None:
    await any_rig.client.write(b"hello\rXYZ+CSQ\r\r\r")
    await any_rig.client.sync()
    await any_rig.cmd("AT+CSQ", framed("+CSQ: 20,0", "OK"))


# ------------------------------------------------------------------------------------------ more state rules


async def test_socket_already_connected(rig: Rig) -> None:
    await rig.tcp_socket()
    await rig.cmd('AT+CSOCON=0,5245,"116.247.119.165"', ERROR)
    await rig.cmd('AT+CSOSEND=0,0,"still one connection"', framed("OK"))
    await rig.tcp_peer.expect(b"still one connection")


async def test_only_one_tcp_server(rig: Rig) -> None:
    """Note 5.4: the module opens one TCP server only."""
    await rig.cmd("AT+CSOC=1,1,1", framed("+CSOC: 0", "OK"))
    await rig.cmd('AT+CSOB=0,5678,"10.250.0.213"', framed("OK"))
    await rig.cmd("AT+CSOLIS=0", framed("OK"))
    await rig.cmd("AT+CSOC=1,1,1", framed("+CSOC: 1", "OK"))
    await rig.cmd('AT+CSOB=1,5679,"10.250.0.213"', framed("OK"))
    await rig.cmd("AT+CSOLIS=1", ERROR)
    await rig.alive()


async def test_csorxget_read_limits(rig: Rig) -> None:
    """Note 5.5: at most 1460 bytes per read, 730 per hex read; a refused read loses no data."""
    await rig.tcp_socket()
    await rig.cmd("AT+CSORXGET=1", framed("OK"))
    await rig.cmd("AT+CSORXGET=2,0,1461", ERROR)
    await rig.cmd("AT+CSORXGET=3,0,731", ERROR)
    await rig.tcp_peer.send(b"abc")
    await rig.client.expect(framed("+CSORXGET: 1,0"))
    await rig.cmd("AT+CSORXGET=2,0,1461", ERROR)
    await rig.cmd("AT+CSORXGET=2,0,1460", b"\r\n+CSORXGET: 2,0,3,0\r\nabc\r\n" + framed("OK"))


async def _cip_single_link_connected(rig: Rig) -> None:
    for line in ("AT+CSTT", "AT+CIICR"):
        await rig.cmd(line, framed("OK"))
    await rig.cmd_re("AT+CIFSR", rb"\r\n[0-9.]+\r\n")
    await rig.cmd('AT+CIPSTART="TCP","116.247.119.165","5245"', framed("OK", "CONNECT OK"))


async def test_ciprxget_must_be_set_before_connecting(rig: Rig) -> None:
    """Note 6.10.2: AT+CIPRXGET=1 must be sent before the connection is set up."""
    await _cip_single_link_connected(rig)
    await rig.cmd("AT+CIPRXGET=1", ERROR)
    await rig.tcp_peer.send(b"pushed")
    await rig.client.expect(b"pushed")  # still automatic receive (C6-3)


async def test_ciprxget_read_limits(rig: Rig) -> None:
    """Note 6.10.2: at most 1460 bytes per read, 730 per hex read."""
    for line in ("AT+CSTT", "AT+CIICR"):
        await rig.cmd(line, framed("OK"))
    await rig.cmd_re("AT+CIFSR", rb"\r\n[0-9.]+\r\n")
    await rig.cmd("AT+CIPRXGET=1", framed("OK"))
    await rig.cmd('AT+CIPSTART="TCP","116.247.119.165","5245"', framed("OK", "CONNECT OK"))
    await rig.tcp_peer.send(b"HELLO")
    await rig.client.expect(framed("+CIPRXGET: 1"))
    await rig.cmd("AT+CIPRXGET=2,1461", ERROR)
    await rig.cmd("AT+CIPRXGET=3,731", ERROR)
    await rig.cmd("AT+CIPRXGET=2,1460", b"\r\n+CIPRXGET: 2,5,0\r\nHELLO\r\n" + framed("OK"))


async def test_cipstart_while_connected(rig: Rig) -> None:
    await _cip_single_link_connected(rig)
    await rig.cmd_re(
        'AT+CIPSTART="TCP","116.247.119.165","5245"', rb"\r\n(ALREADY CONNECT\r\n\r\n)?ERROR\r\n"
    )
    await rig.cmd("AT+CIPSEND", b"\r\n> ")
    await rig.client.write(b"same link\x1a")
    await rig.client.expect(framed("SEND OK"))
    await rig.tcp_peer.expect(b"same link")


async def test_single_link_server_takes_one_client(rig: Rig) -> None:
    """Note 6.5: in single-link mode the server accepts one client only."""
    await rig.cmd("AT+CIPSERVER=1,1234", framed("OK", "SERVER OK"))
    host, port = rig.emu.server_address(1234)
    async with asyncio.timeout(5):
        _, w1 = await asyncio.open_connection(host, port)
    await rig.client.expect_re(rb"\r\nREMOTE IP: [0-9.]+\r\n")
    async with asyncio.timeout(5):
        r2, w2 = await asyncio.open_connection(host, port)
        try:
            second = await r2.read()  # the module drops the second client: EOF ...
        except ConnectionResetError:
            second = b""  # ... or a reset
    assert second == b""
    w1.write(b"first")
    await w1.drain()
    await rig.client.expect(b"first")
    for w in (w1, w2):
        w.close()


async def test_esc_cancels_cipsend_and_nothing_is_sent(rig: Rig) -> None:
    """SIM7000 manual (CIP chapter): ESC (0x1B) cancels a CIPSEND; the data typed so far never leaves."""
    for line in ("AT+CSTT", "AT+CIICR"):
        await rig.cmd(line, framed("OK"))
    await rig.cmd_re("AT+CIFSR", rb"\r\n[0-9.]+\r\n")
    await rig.cmd('AT+CIPSTART="UDP","116.247.119.165","5246"', framed("OK", "CONNECT OK"))
    await rig.cmd("AT+CIPSEND", b"\r\n> ")
    await rig.client.write(b"cancelled\x1b")
    await rig.client.sync()
    await rig.cmd("AT+CIPSEND", b"\r\n> ")
    await rig.client.write(b"sent\x1a")
    await rig.client.expect(framed("SEND OK"))
    await rig.udp_peer.expect(b"sent")  # the first datagram the peer sees
