"""Helpers for the cip, transparent and udp_extended transport tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import asyncio
import random
import re

from sim7020_core.connection import Connection
from sim7020_core.emulator import Emulator

from .conftest import WAIT

#: Messages per round-trip test (issue 4).
MESSAGES = 1000
#: Guard time around ``+++`` in tests (the module's default is 1 s).
GUARD = 0.2


def messages(seed: int, count: int = MESSAGES, max_size: int = 1400) -> list[bytes]:
    """Random payloads of 1..max_size bytes (seeded); together they hold every byte value, CR, LF, Ctrl-Z,
    ``+++`` and AT-looking lines."""
    rnd = random.Random(seed)
    msgs = [bytes(range(256)), b"\r\n\x1a\x1b\x00", b"\r", b"+++", b"\r\nOK\r\n"]
    msgs += [rnd.randbytes(rnd.randint(1, max_size)) for _ in range(count - len(msgs))]
    rnd.shuffle(msgs)
    return msgs


async def read_exactly(reader: asyncio.StreamReader, n: int) -> bytes:
    async with asyncio.timeout(WAIT):
        return await reader.readexactly(n)


async def receive_stream(conn: Connection, n: int) -> bytes:
    """Read ``n`` bytes of a TCP stream from ``conn``."""
    buf = bytearray()
    while len(buf) < n:
        buf += await conn.receive(timeout=WAIT)
    return bytes(buf)


async def echo_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Write back what arrives until the other side closes (a TCP echo peer)."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()


def sent_commands(emulator: Emulator) -> list[str]:
    """The AT command lines the module received, found anywhere in what it read (use with payloads that hold
    no ``AT``)."""
    raw = b"".join(data for direction, data in emulator.transcript if direction == "rx")
    return [m.decode("latin-1") for m in re.findall(rb"AT[A-Z+&][^\r]*(?=\r)", raw)]


def module_output(emulator: Emulator) -> bytes:
    """Everything the module wrote."""
    return b"".join(data for direction, data in emulator.transcript if direction == "tx")
