"""Raw-bytes helpers for the CIP (chapter 6) emulator tests: a UART client over TCP and loopback peers.

No driver code: the client writes AT bytes and compares exactly what the module sends back.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

from sim7020_core.emulator.core import Emulator

#: Bound on every wait in these tests (seconds).
WAIT = 3.0


class RawClient:
    """The host side of the UART: send bytes, expect exact bytes back."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.buf = bytearray()

    async def send(self, data: bytes | str) -> None:
        self.writer.write(data.encode() if isinstance(data, str) else data)
        await self.writer.drain()

    async def _fill(self, n: int, timeout: float) -> None:
        async with asyncio.timeout(timeout):
            while len(self.buf) < n:
                chunk = await self.reader.read(4096)
                if not chunk:
                    raise ConnectionError("emulator closed the UART")
                self.buf += chunk

    async def expect(self, expected: bytes, timeout: float = WAIT) -> None:
        """The next bytes from the module are exactly ``expected``."""
        try:
            await self._fill(len(expected), timeout)
        except TimeoutError:
            raise AssertionError(f"expected {expected!r}, got only {bytes(self.buf)!r}") from None
        got = bytes(self.buf[: len(expected)])
        assert got == expected, f"expected {expected!r}, got {bytes(self.buf)!r}"
        del self.buf[: len(expected)]

    async def read_until(self, pattern: bytes, timeout: float = WAIT) -> bytes:
        """Everything up to and including ``pattern``."""
        async with asyncio.timeout(timeout):
            while pattern not in self.buf:
                chunk = await self.reader.read(4096)
                if not chunk:
                    raise ConnectionError("emulator closed the UART")
                self.buf += chunk
        end = self.buf.index(pattern) + len(pattern)
        out = bytes(self.buf[:end])
        del self.buf[:end]
        return out

    async def cmd(self, line: str, expected: bytes, timeout: float = WAIT) -> None:
        """Send ``line`` + CR and expect exactly ``expected`` back (echo is off)."""
        await self.send(line + "\r")
        await self.expect(expected, timeout)

    async def lines(self, line: str, final: str = "OK") -> list[str]:
        """Send ``line``; return the CRLF-framed lines up to and including ``final``."""
        await self.send(line + "\r")
        raw = await self.read_until(f"\r\n{final}\r\n".encode())
        return [x for x in raw.decode("latin-1").split("\r\n") if x]

    async def silent(self, seconds: float = 0.15) -> None:
        """Nothing more arrives for ``seconds``."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                chunk = await self.reader.read(4096)
                self.buf += chunk
        assert not self.buf, f"unexpected output {bytes(self.buf)!r}"


async def wait_for(predicate: object, timeout: float = WAIT) -> None:
    """Poll ``predicate()`` until true."""
    assert callable(predicate)
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running_modem(**kwargs: object) -> AsyncIterator[tuple[Emulator, RawClient]]:
    """An emulator with service, echo off, and a raw client on its TCP UART."""
    kwargs.setdefault("registration_delay", 0.0)
    kwargs.setdefault("echo", False)
    emu = Emulator(**kwargs)  # type: ignore[arg-type]
    host, port = await emu.start_tcp("127.0.0.1", 0)
    reader, writer = await asyncio.open_connection(host, port)
    client = RawClient(reader, writer)
    try:
        await wait_for(lambda: emu.state.has_service)
        yield emu, client
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()
        await emu.stop()


async def connection_end(reader: asyncio.StreamReader) -> str:
    """Read to the end of a peer connection: ``"eof"`` (the module closed, FIN) or ``"reset"`` (RST)."""
    try:
        async with asyncio.timeout(WAIT):
            rest = await reader.read()
    except ConnectionResetError:
        return "reset"
    assert rest == b"", f"unexpected data before the end: {rest!r}"
    return "eof"


async def read_exact(reader: asyncio.StreamReader, n: int) -> bytes:
    async with asyncio.timeout(WAIT):
        return await reader.readexactly(n)


async def bring_up(client: RawClient) -> None:
    """CSTT, CIICR, CIFSR: the bearer is in IP STATUS."""
    await client.cmd("AT+CSTT", b"\r\nOK\r\n")
    await client.cmd("AT+CIICR", b"\r\nOK\r\n")
    await client.send("AT+CIFSR\r")
    line = await client.read_until(b"\r\n", timeout=WAIT)
    assert line == b"\r\n"
    ip = await client.read_until(b"\r\n")
    assert re.fullmatch(rb"\d+\.\d+\.\d+\.\d+\r\n", ip), ip
