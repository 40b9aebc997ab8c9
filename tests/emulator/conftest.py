"""A tiny raw host for the emulator's own unit tests (``test_emulator_*.py``): bytes over real sockets.

No driver code: the host writes AT lines and reads bytes, the remote peers are real loopback sockets.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import termios
import tty
from collections.abc import AsyncIterator

import pytest

from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer

#: Seconds any single expectation may wait.
WAIT = 5.0
#: Window used to check that nothing (more) arrives.
QUIET = 0.2


def framed(*lines: str | bytes) -> bytes:
    """``\\r\\n<line>\\r\\n`` for each line, the module's framing."""
    out = b""
    for line in lines:
        out += b"\r\n" + (line.encode("latin-1") if isinstance(line, str) else line) + b"\r\n"
    return out


class Host:
    """The host side of the UART: write bytes, consume exactly what is expected."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.changed = asyncio.Event()
        self.eof = False

    def _feed(self, data: bytes) -> None:
        self.buf += data
        self.changed.set()

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def _wait(self, deadline: float) -> bool:
        loop = asyncio.get_running_loop()
        if self.eof or loop.time() >= deadline:
            return False
        self.changed.clear()
        try:
            async with asyncio.timeout(deadline - loop.time()):
                await self.changed.wait()
        except TimeoutError:
            return False
        return True

    async def send(self, line: str | bytes) -> None:
        """One command line, CR-terminated."""
        await self.write((line.encode("latin-1") if isinstance(line, str) else line) + b"\r")

    async def expect(self, expected: bytes, timeout: float = WAIT) -> None:
        """Consume exactly ``expected`` (fails at the first differing byte)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            n = min(len(self.buf), len(expected))
            if self.buf[:n] != expected[:n]:
                raise AssertionError(f"expected {expected!r}, got {bytes(self.buf)!r}")
            if len(self.buf) >= len(expected):
                del self.buf[: len(expected)]
                return
            if not await self._wait(deadline):
                raise AssertionError(f"timed out: expected {expected!r}, got {bytes(self.buf)!r}")

    async def expect_re(self, pattern: bytes, timeout: float = WAIT) -> re.Match[bytes]:
        """Consume a prefix matching ``pattern``; returns the match."""
        rx = re.compile(pattern, re.DOTALL)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            m = rx.match(bytes(self.buf))
            if m is not None:
                del self.buf[: m.end()]
                return m
            if not await self._wait(deadline):
                raise AssertionError(f"timed out: no match for {pattern!r} in {bytes(self.buf)!r}")

    async def cmd(self, line: str, *answer: str) -> None:
        """Send ``line`` and expect exactly the framed ``answer`` lines."""
        await self.send(line)
        await self.expect(framed(*answer))

    async def quiet(self, window: float = QUIET) -> None:
        """Nothing arrives within ``window``."""
        await self._wait(asyncio.get_running_loop().time() + window)
        assert not self.buf, f"unexpected bytes {bytes(self.buf)!r}"

    async def read_until(self, marker: bytes, timeout: float = WAIT) -> bytes:
        """Consume through ``marker``."""
        deadline = asyncio.get_running_loop().time() + timeout
        while (i := self.buf.find(marker)) < 0:
            if not await self._wait(deadline):
                raise AssertionError(f"timed out waiting for {marker!r}; got {bytes(self.buf)!r}")
        data = bytes(self.buf[: i + len(marker)])
        del self.buf[: i + len(marker)]
        return data


class TcpHost(Host):
    """Host on a TCP socket (what ``socket://`` gives pyserial)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self.reader, self.writer = reader, writer
        self.task = asyncio.create_task(self._pump())

    @classmethod
    async def connect(cls, addr: tuple[str, int]) -> TcpHost:
        async with asyncio.timeout(WAIT):
            r, w = await asyncio.open_connection(*addr)
        return cls(r, w)

    async def _pump(self) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await self.reader.read(65536):
                self._feed(data)
        self.eof = True
        self.changed.set()

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        async with asyncio.timeout(WAIT):
            await self.writer.drain()

    async def close(self) -> None:
        self.writer.close()
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await self.task


class PtyHost(Host):
    """Host on the pty's tty path, opened like a serial port (raw, non-blocking)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd, termios.TCSANOW)
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.loop.remove_reader(self.fd)
            self.eof = True
            self.changed.set()
            return
        self._feed(data)

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        async with asyncio.timeout(WAIT):
            while view:
                try:
                    view = view[os.write(self.fd, view) :]
                except BlockingIOError:
                    await asyncio.sleep(0.005)

    async def close(self) -> None:
        self.loop.remove_reader(self.fd)
        with contextlib.suppress(OSError):
            os.close(self.fd)


@pytest.fixture
async def emu() -> AsyncIterator[Emulator]:
    """An emulator that is registered at once, with a small DNS table."""
    e = Emulator(hosts={"example.com": "127.0.0.1", "multi.example": ["127.0.0.2", "127.0.0.3"]},
                 registration_delay=0.0)  # fmt: skip
    try:
        yield e
    finally:
        async with asyncio.timeout(WAIT):
            await e.stop()


@pytest.fixture
async def raw_host(emu: Emulator) -> AsyncIterator[TcpHost]:
    """A TCP host connected to ``emu``, echo still on (power-up state), registration done."""
    addr = await emu.start_tcp("127.0.0.1", 0)
    h = await TcpHost.connect(addr)
    await asyncio.sleep(0.01)  # registration timer (delay 0) has run
    try:
        yield h
    finally:
        await h.close()


@pytest.fixture
async def host(raw_host: TcpHost) -> TcpHost:
    """Like ``raw_host`` with echo switched off (as the note's examples)."""
    await raw_host.send("ATE0")
    await raw_host.expect(b"ATE0\r" + framed("OK"))
    return raw_host


@pytest.fixture
async def tcp_server() -> AsyncIterator[TcpPeer]:
    """A remote TCP server on loopback (sim7020_core.emulator.peers); accept() gives each client."""
    async with TcpPeer() as peer:
        yield peer


@pytest.fixture
async def udp_peer() -> AsyncIterator[UdpPeer]:
    """A remote UDP peer on loopback (sim7020_core.emulator.peers)."""
    async with UdpPeer() as peer:
        yield peer
