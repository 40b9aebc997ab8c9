"""Where a client connects to the recorder or the replayer: a TCP server or a pseudo-terminal.

Both hand over received bytes as they arrive (``on_data``) and write bytes without blocking the event loop.
One client at a time, as on a serial port: a new TCP client replaces the previous one (a client that lost
its network and reconnects must not be locked out by its own dead connection). A pty has no notion of a
client connecting; it is there from :meth:`start` to :meth:`close`.

Written here rather than taken from the emulator: the recorder and the replayer are tools of their own,
and the emulator's serving code is internal to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from collections.abc import Callable

_LOGGER = logging.getLogger(__name__)

#: Bytes kept for a pty whose reader does not keep up; beyond that, output is dropped (as on a UART).
PTY_BACKLOG = 1 << 20
#: Bytes read from a pty at once.
READ_SIZE = 4096

DataCallback = Callable[[bytes], None]
NoteCallback = Callable[[str], None]


def _ignore_note(text: str) -> None:
    pass


class ClientPort:
    """Base class: callbacks and the interface shared by :class:`TcpPort` and :class:`PtyPort`."""

    description = ""

    def __init__(self) -> None:
        self.on_data: DataCallback = lambda data: None
        self.on_connect: NoteCallback = _ignore_note
        self.on_disconnect: NoteCallback = _ignore_note
        #: called when the client stops taking output (True) and when it takes it again (False)
        self.on_backpressure: Callable[[bool], None] = lambda paused: None

    @property
    def connected(self) -> bool:
        """True while a client can receive what :meth:`write` sends."""
        raise NotImplementedError

    async def start(self) -> str:
        """Start serving; returns a description of where (``tcp 127.0.0.1:7021``, ``pty /dev/pts/5``)."""
        raise NotImplementedError

    def write(self, data: bytes) -> None:
        """Send bytes to the client (dropped when no client is connected)."""
        raise NotImplementedError

    def pause_reading(self) -> None:
        """Stop taking bytes from the client (the modem side is not taking them)."""

    def resume_reading(self) -> None:
        """Take bytes from the client again."""

    async def close(self) -> None:
        """Stop serving and drop the client."""
        raise NotImplementedError


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, port: TcpPort) -> None:
        self.port = port
        self.transport: asyncio.Transport | None = None
        self.peer = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.port._client_made(self)

    def data_received(self, data: bytes) -> None:
        if self.port._client is self:
            self.port.on_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self.port._client_lost(self, exc)

    def pause_writing(self) -> None:
        if self.port._client is self:
            self.port.on_backpressure(True)

    def resume_writing(self) -> None:
        if self.port._client is self:
            self.port.on_backpressure(False)


class TcpPort(ClientPort):
    """A TCP server for one client at a time (``socket://HOST:PORT`` for pyserial-based clients)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__()
        self.host, self.port = host, port
        self._server: asyncio.Server | None = None
        self._client: _TcpProtocol | None = None
        self._reading_paused = False

    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def address(self) -> tuple[str, int]:
        """The address actually listened on (after :meth:`start`; port 0 picks a free one)."""
        if self._server is None:
            raise RuntimeError("not started")
        name = self._server.sockets[0].getsockname()
        return str(name[0]), int(name[1])

    async def start(self) -> str:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: _TcpProtocol(self), self.host, self.port)
        host, port = self.address
        self.description = f"tcp {host}:{port} (socket://{host}:{port})"
        return self.description

    def _client_made(self, client: _TcpProtocol) -> None:
        old, self._client = self._client, client
        if old is not None and old.transport is not None:
            _LOGGER.info("new client %s replaces %s", client.peer, old.peer)
            old.transport.abort()
        if self._reading_paused and client.transport is not None:
            client.transport.pause_reading()
        self.on_connect(f"client connected from {client.peer}")

    def _client_lost(self, client: _TcpProtocol, exc: Exception | None) -> None:
        if self._client is client:
            self._client = None
            self.on_backpressure(False)
        reason = f" ({exc})" if exc is not None else ""
        self.on_disconnect(f"client {client.peer} disconnected{reason}")

    def write(self, data: bytes) -> None:
        client = self._client
        if client is not None and client.transport is not None and not client.transport.is_closing():
            client.transport.write(data)

    def pause_reading(self) -> None:
        self._reading_paused = True
        if self._client is not None and self._client.transport is not None:
            self._client.transport.pause_reading()

    def resume_reading(self) -> None:
        self._reading_paused = False
        if self._client is not None and self._client.transport is not None:
            self._client.transport.resume_reading()

    async def close(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        client, self._client = self._client, None
        if client is not None and client.transport is not None:
            client.transport.abort()
        if server is not None:
            await server.wait_closed()


class PtyPort(ClientPort):
    """A pseudo-terminal: clients open its path (or the symlink ``link``) as if it were the modem's tty."""

    def __init__(self, link: str | None = None) -> None:
        super().__init__()
        self.link = link
        self.path = ""
        self._master = -1
        self._slave = -1
        self._pending = bytearray()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._reading = False
        self._dropped = 0

    @property
    def connected(self) -> bool:
        return self._master >= 0

    async def start(self) -> str:
        loop = self._loop = asyncio.get_running_loop()
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave  # the slave stays open: reads never fail between clients
        self.path = os.ttyname(slave)
        if self.link:
            await asyncio.to_thread(_replace_symlink, self.link, self.path)
        loop.add_reader(master, self._readable)
        self._reading = True
        shown = f"{self.link} -> {self.path}" if self.link else self.path
        self.description = f"pty {shown}"
        self.on_connect(f"pty {self.path} ready")
        return self.description

    @property
    def client_path(self) -> str:
        """What a client opens: the symlink when there is one, else the pty itself."""
        return self.link or self.path

    def _readable(self) -> None:
        try:
            data = os.read(self._master, READ_SIZE)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as err:
            _LOGGER.debug("pty read failed: %s", err)
            return
        if data:
            self.on_data(data)

    def write(self, data: bytes) -> None:
        if self._master < 0:
            return
        if self._pending:
            self._queue(data)
            return
        try:
            n = os.write(self._master, data)
        except (BlockingIOError, InterruptedError):
            n = 0
        except OSError as err:
            _LOGGER.debug("pty write failed: %s", err)
            return
        if n < len(data):
            self._queue(data[n:])
            assert self._loop is not None
            self._loop.add_writer(self._master, self._flush)

    def _queue(self, data: bytes) -> None:
        room = PTY_BACKLOG - len(self._pending)
        if room < len(data):
            if not self._dropped:
                _LOGGER.warning("nobody reads %s: output is being dropped", self.path)
            self._dropped += len(data) - max(room, 0)
            data = data[: max(room, 0)]
        self._pending += data

    def _flush(self) -> None:
        try:
            n = os.write(self._master, bytes(self._pending))
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            n = len(self._pending)
        del self._pending[:n]
        if not self._pending and self._loop is not None:
            self._loop.remove_writer(self._master)

    def pause_reading(self) -> None:
        if self._reading and self._loop is not None:
            self._loop.remove_reader(self._master)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and self._loop is not None and self._master >= 0:
            self._loop.add_reader(self._master, self._readable)
            self._reading = True

    async def close(self) -> None:
        if self._master < 0:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._master)
            self._loop.remove_writer(self._master)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._master = self._slave = -1
        if self.link:
            await asyncio.to_thread(_remove_symlink, self.link)
        self.on_disconnect(f"pty {self.path} closed")


def _replace_symlink(link: str, target: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        if os.path.islink(link):
            os.unlink(link)
    os.symlink(target, link)


def _remove_symlink(link: str) -> None:
    with contextlib.suppress(OSError):
        if os.path.islink(link):
            os.unlink(link)
