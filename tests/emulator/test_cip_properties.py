"""Property tests: CIPSEND/transparent input and +IPD output do not depend on payload bytes or chunking."""

from __future__ import annotations

import asyncio
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim7020_core.emulator.peers import TcpPeer
from tests.emulator.test_cip_support import RawClient, bring_up, read_exact, running_modem

OK = b"\r\nOK\r\n"

PROPERTY_SETTINGS = settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True
)


def chunked(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if data[a:b]]


async def send_in_chunks(c: RawClient, pieces: list[bytes]) -> None:
    for piece in pieces:
        await c.send(piece)
        await asyncio.sleep(0.002)  # separate reads on the module side


async def _cipsend_scenario(binary: bytes, text: bytes, cuts: list[int]) -> None:
    peer = await TcpPeer().start()
    try:
        async with running_modem() as (_emu, c):
            await c.cmd("AT+CIPHEAD=1", OK)
            await bring_up(c)
            await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
            reader, writer = await peer.accept()

            # fixed length: every byte value is data, Ctrl+Z and ESC included
            await c.cmd(f"AT+CIPSEND={len(binary)}", b"\r\n> ")
            await send_in_chunks(c, chunked(binary, cuts))
            await c.expect(b"\r\nSEND OK\r\n")
            assert await read_exact(reader, len(binary)) == binary

            # variable length: everything up to Ctrl+Z
            await c.cmd("AT+CIPSEND", b"\r\n> ")
            await send_in_chunks(c, chunked(text + b"\x1a", cuts))
            await c.expect(b"\r\nSEND OK\r\n")
            assert await read_exact(reader, len(text)) == text

            # the other way: +IPD,<len>: delimits any payload exactly
            writer.write(binary)
            await c.expect(f"\r\n+IPD,{len(binary)}:".encode() + binary)
            await c.cmd("AT", OK)
    finally:
        await peer.close()


@PROPERTY_SETTINGS
@given(
    binary=st.binary(min_size=1, max_size=200),
    text=st.binary(max_size=200).filter(lambda b: b"\x1a" not in b and b"\x1b" not in b),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=5),
)
def test_cipsend_any_bytes_any_chunking(binary: bytes, text: bytes, cuts: list[int]) -> None:
    asyncio.run(_cipsend_scenario(binary, text, cuts))


async def _transparent_scenario(data: bytes, cuts: list[int]) -> None:
    peer = await TcpPeer().start()
    try:
        async with running_modem() as (_emu, c):
            await c.cmd("AT+CIPMODE=1", OK)
            await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
            reader, writer = await peer.accept()
            await c.cmd("AT+CIPCHAN", b"\r\nCONNECT\r\n")
            await send_in_chunks(c, chunked(data, cuts))
            assert await read_exact(reader, len(data)) == data
            writer.write(data)
            await c.expect(data)
    finally:
        await peer.close()


@PROPERTY_SETTINGS
@given(
    data=st.binary(min_size=1, max_size=300).filter(lambda b: b"+" not in b),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=5),
)
def test_transparent_mode_passes_any_bytes_any_chunking(data: bytes, cuts: list[int]) -> None:
    asyncio.run(_transparent_scenario(data, cuts))
