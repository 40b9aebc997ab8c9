"""A raw client for the recorder's and the replayer's own tests: bytes over a real socket or pty."""

from __future__ import annotations

import asyncio
import contextlib
import os
import termios
import tty
from collections.abc import AsyncIterator

import pytest

#: Seconds any single expectation may wait.
WAIT = 5.0
#: Window used to check that nothing (more) arrives.
QUIET = 0.2


class RawClient:
    """Write bytes; read until an expected byte string has arrived."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.changed = asyncio.Event()

    def _feed(self, data: bytes) -> None:
        self.buf += data
        self.changed.set()

    async def write(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def expect(self, wanted: bytes, timeout: float = WAIT) -> bytes:
        """Wait until ``wanted`` arrived; return and consume everything up to and including it."""
        async with asyncio.timeout(timeout):
            while (i := self.buf.find(wanted)) < 0:
                self.changed.clear()
                await self.changed.wait()
        out = bytes(self.buf[: i + len(wanted)])
        del self.buf[: i + len(wanted)]
        return out

    async def quiet(self, window: float = QUIET) -> bytes:
        """Whatever arrives within ``window`` seconds (consumed)."""
        await asyncio.sleep(window)
        out = bytes(self.buf)
        self.buf.clear()
        return out


class TcpClient(RawClient):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self.writer = writer
        self.task = asyncio.ensure_future(self._pump(reader))

    async def _pump(self, reader: asyncio.StreamReader) -> None:
        while data := await reader.read(4096):
            self._feed(data)

    async def write(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self.task
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


class PtyClient(RawClient):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd, termios.TCSANOW)
        asyncio.get_running_loop().add_reader(self.fd, self._readable)

    def _readable(self) -> None:
        with contextlib.suppress(BlockingIOError):
            data = os.read(self.fd, 4096)
            if data:
                self._feed(data)

    async def write(self, data: bytes) -> None:
        os.write(self.fd, data)

    async def close(self) -> None:
        asyncio.get_running_loop().remove_reader(self.fd)
        os.close(self.fd)


async def tcp_client(host: str, port: int) -> TcpClient:
    reader, writer = await asyncio.open_connection(host, port)
    return TcpClient(reader, writer)


@pytest.fixture
async def clients() -> AsyncIterator[list[RawClient]]:
    """Clients opened by a test are closed after it."""
    opened: list[RawClient] = []
    yield opened
    for client in opened:
        await client.close()
