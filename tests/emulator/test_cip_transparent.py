"""Transparent mode (note 6.14): CIPMODE=1, CIPCHAN, raw bytes both ways, the +++ escape and ATO.

The guard time is shortened to GUARD on the emulator instance; the timing rules are the note's (idle time
before and after ``+++``, less than the guard time between the ``+``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sim7020_core.emulator.cip import DEFAULT_GUARD_TIME
from sim7020_core.emulator.core import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer
from tests.emulator.test_cip_support import RawClient, read_exact, running_modem

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"
GUARD = 0.2
IDLE = GUARD * 1.6  # comfortably more than the guard time


@pytest.fixture
async def data_mode() -> AsyncIterator[
    tuple[Emulator, RawClient, asyncio.StreamReader, asyncio.StreamWriter]
]:
    """A module in transparent data mode on a TCP link to a real peer."""
    peer = await TcpPeer().start()
    try:
        async with running_modem() as (emu, c):
            emu.command_sets["cip"].guard_time = GUARD  # type: ignore[attr-defined]
            emu.route("116.228.221.51", 8500, to=("127.0.0.1", peer.port))
            await c.cmd("AT+CIPMUX=0", OK)
            await c.cmd("AT+CIPMODE=1", OK)
            await c.cmd('AT+CIPSTART="TCP","116.228.221.51","8500"', OK + b"\r\nCONNECT OK\r\n")
            reader, writer = await peer.accept()
            await c.cmd("AT+CIPCHAN", b"\r\nCONNECT\r\n")
            yield emu, c, reader, writer
    finally:
        await peer.close()


async def test_default_guard_time_is_the_notes_one_second() -> None:
    async with running_modem() as (emu, _c):
        assert emu.command_sets["cip"].guard_time == DEFAULT_GUARD_TIME == 1.0  # type: ignore[attr-defined]
        with pytest.raises(ValueError, match="positive"):
            emu.command_sets["cip"].guard_time = 0  # type: ignore[attr-defined]


async def test_raw_bytes_both_ways_then_escape_and_ato(data_mode) -> None:
    _emu, c, reader, writer = data_mode
    writer.write(b"1234567890")  # from the server: raw, no framing
    await c.expect(b"1234567890")
    await c.send(b"123456")  # to the server: raw, even AT-looking or binary bytes
    await c.send(b"AT\r\n\x1a\x1b")
    assert await read_exact(reader, 12) == b"123456AT\r\n\x1a\x1b"

    await asyncio.sleep(IDLE)
    await c.send(b"+++")
    await c.silent(GUARD * 0.5)  # nothing before the trailing guard time has passed
    await c.expect(OK, timeout=GUARD * 5)
    await c.cmd("AT+CIPSTATUS", b"\r\nOK\r\n\r\nSTATE: CONNECT OK\r\n")  # commands work, the link is up

    writer.write(b"kept")  # arrives while in command state: held for ATO
    await c.silent(0.1)
    await c.cmd("ATO", b"\r\nCONNECT\r\nkept")
    await c.send(b"again")
    assert await read_exact(reader, 5) == b"again"
    with pytest.raises(TimeoutError):  # the '+++' never reached the server
        async with asyncio.timeout(0.1):
            await reader.read(1)


async def test_plus_signs_without_guard_times_are_data(data_mode) -> None:
    _emu, c, reader, _writer = data_mode
    await c.send(b"abc+++")  # no idle time before: data
    await asyncio.sleep(IDLE)
    assert await read_exact(reader, 6) == b"abc+++"

    await asyncio.sleep(IDLE)
    await c.send(b"+++x")  # data right after: data
    assert await read_exact(reader, 4) == b"+++x"

    await asyncio.sleep(IDLE)
    await c.send(b"+")
    await asyncio.sleep(IDLE)  # too long between the '+'
    await c.send(b"++")
    await asyncio.sleep(IDLE)
    assert await read_exact(reader, 3) == b"+++"

    await asyncio.sleep(IDLE)
    await c.send(b"++++")  # four '+' are not the escape
    await asyncio.sleep(IDLE)
    assert await read_exact(reader, 4) == b"++++"
    await c.silent(0.05)  # still in data mode: no OK was sent

    await asyncio.sleep(IDLE)
    for _ in range(3):  # '+' typed one by one, quickly enough: the escape
        await c.send(b"+")
        await asyncio.sleep(GUARD / 4)
    await c.expect(OK, timeout=GUARD * 5)
    await c.cmd("AT", OK)


async def test_peer_close_returns_to_command_mode(data_mode) -> None:
    _emu, c, _reader, writer = data_mode
    writer.close()
    await c.expect(b"\r\nCLOSED\r\n")
    await c.cmd("AT", OK)
    await c.cmd("ATO", ERROR)  # nothing to go back to
    await c.cmd("AT+CIPSTATUS", b"\r\nOK\r\n\r\nSTATE: TCP CLOSED\r\n")


async def test_pdp_deactivation_returns_to_command_mode(data_mode) -> None:
    emu, c, _reader, _writer = data_mode
    emu.detach()
    await c.expect(b"\r\nCLOSED\r\n\r\n+PDP: DEACT\r\n")
    await c.cmd("AT", OK)


async def test_commands_refused_in_transparent_mode() -> None:
    async with running_modem() as (_emu, c):
        await c.cmd("AT+CIPMODE=1", OK)
        await c.cmd("AT+CIPMODE?", b"\r\n+CIPMODE: 1\r\n" + OK)
        await c.cmd("AT+CIPMUX=1", ERROR)
        await c.cmd("AT+CIPCHAN", ERROR)  # not connected yet
        peer = await TcpPeer().start()
        try:
            await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
            await c.cmd("AT+CIPSEND", ERROR)
            await c.cmd("AT+CIPMODE=0", ERROR)  # not with an open connection
        finally:
            await peer.close()


async def test_transparent_udp() -> None:
    peer = await UdpPeer().start()
    try:
        async with running_modem() as (emu, c):
            emu.command_sets["cip"].guard_time = GUARD  # type: ignore[attr-defined]
            await c.cmd("AT+CIPMODE=1", OK)
            await c.cmd(f'AT+CIPSTART="UDP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
            await c.cmd("AT+CIPCHAN", b"\r\nCONNECT\r\n")
            await c.send(b"datagram")
            data, addr = await peer.next()
            assert data == b"datagram"
            peer.send(b"reply", addr)
            await c.expect(b"reply")
            await asyncio.sleep(IDLE)
            await c.send(b"+++")
            await c.expect(OK, timeout=GUARD * 5)
            await c.cmd("AT+CIPCLOSE", b"\r\nCLOSE OK\r\n")
    finally:
        peer.close()
