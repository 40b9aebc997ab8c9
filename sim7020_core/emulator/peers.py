"""Remote peers for the emulated modem: real UDP and TCP sockets on 127.0.0.1.

The emulator's data connections reach real sockets on this machine, so a test, a benchmark or a user trying an
application against the emulator needs the other end: a UDP peer or a TCP server standing in for the remote
host. These are those ends, once, for the whole repository (asyncio's own endpoints, nothing simulated)::

    async with UdpPeer(reply=lambda data: b"echo:" + data) as peer:
        conn = await modem.open_connection("udp", "127.0.0.1", peer.port)
        await conn.send(b"ping")
        data, sender = await peer.next()       # b"ping", and where the modem's datagram came from
        assert await conn.receive(5) == b"echo:ping"

A :class:`TcpPeer` either hands each accepted client to the caller (:meth:`TcpPeer.accept`, for exact reads
and writes) or, with ``read=True`` or a ``reply``, reads every client itself (:meth:`TcpPeer.next`).

Every wait is bounded (:data:`PEER_TIMEOUT` unless given), so a peer that never hears anything fails a test
instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

#: Default bound (seconds) on waiting for a datagram, a chunk or a client.
PEER_TIMEOUT = 10.0
#: Bound on closing a TCP peer (its clients and its server).
CLOSE_TIMEOUT = 5.0

Address = tuple[str, int]
#: Answers a datagram (UDP) or a chunk (TCP): the bytes to send back, or None for no answer.
Reply = Callable[[bytes], bytes | None]


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, peer: UdpPeer) -> None:
        self.peer = peer

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.peer._received(data, (str(addr[0]), int(addr[1])))


class UdpPeer:
    """A UDP socket on 127.0.0.1 standing in for a remote host: it records every datagram and answers with
    ``reply(data)`` when that returns bytes.

    :param reply: the answer to each datagram (None: no answer)
    :param record: keep every datagram in :attr:`received` and for :meth:`next` (a benchmark counting
        bytes in ``reply`` passes False)
    """

    def __init__(self, reply: Reply | None = None, *, record: bool = True) -> None:
        self.reply = reply
        self.record = record
        #: Every datagram received, in order.
        self.received: list[bytes] = []
        #: Who sent the last datagram (None before the first).
        self.last_sender: Address | None = None
        self._queue: asyncio.Queue[tuple[bytes, Address]] = asyncio.Queue()
        self._arrived = asyncio.Event()
        self._transport: asyncio.DatagramTransport | None = None
        self.address: Address = ("127.0.0.1", 0)

    @property
    def port(self) -> int:
        """The port the peer listens on."""
        return self.address[1]

    async def start(self) -> UdpPeer:
        """Bind a free port on 127.0.0.1."""
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: _UdpProtocol(self), local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        host, port = transport.get_extra_info("sockname")[:2]
        self.address = (str(host), int(port))
        return self

    def _received(self, data: bytes, sender: Address) -> None:
        self.last_sender = sender
        if self.record:
            self.received.append(data)
            self._queue.put_nowait((data, sender))
            self._arrived.set()
        if self.reply is not None and (answer := self.reply(data)) is not None:
            self.send(answer, sender)

    async def next(self, timeout: float = PEER_TIMEOUT) -> tuple[bytes, Address]:  # noqa: ASYNC109
        """The next datagram not yet taken by ``next``, and its sender."""
        async with asyncio.timeout(timeout):
            return await self._queue.get()

    async def wait_for(self, count: int, timeout: float = PEER_TIMEOUT) -> list[bytes]:  # noqa: ASYNC109
        """:attr:`received` once it holds at least ``count`` datagrams."""
        async with asyncio.timeout(timeout):
            while len(self.received) < count:
                self._arrived.clear()
                await self._arrived.wait()
        return self.received

    def send(self, data: bytes, addr: Address | None = None) -> None:
        """Send a datagram to ``addr`` (default: the last sender)."""
        target = addr or self.last_sender
        if self._transport is None or target is None:
            raise RuntimeError("the peer is not started, or nobody sent it anything to answer")
        self._transport.sendto(data, target)

    def close(self) -> None:
        """Close the socket (idempotent)."""
        if self._transport is not None:
            self._transport.close()

    async def __aenter__(self) -> UdpPeer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class TcpPeer:
    """A TCP server on 127.0.0.1 standing in for a remote host.

    Without ``read`` (and without ``reply``) each accepted client waits for :meth:`accept`, which hands over
    its reader and writer. With ``read=True`` or a ``reply`` the peer reads every client itself: each chunk
    goes to :attr:`received` and :meth:`next`, and ``reply(chunk)`` is written back when it returns bytes.

    :param reply: the answer to each chunk read (implies ``read``)
    :param read: read every client (see above)
    :param record: keep every chunk read in :attr:`received` and for :meth:`next` (a benchmark counting
        bytes in ``reply`` passes False)
    """

    def __init__(self, reply: Reply | None = None, *, read: bool = False, record: bool = True) -> None:
        self.reply = reply
        self.read = read or reply is not None
        self.record = record
        #: Every chunk read from a client (with ``read``), in order.
        self.received: list[bytes] = []
        #: The writer of every client accepted so far (closed by :meth:`hang_up` and :meth:`close`).
        self.writers: list[asyncio.StreamWriter] = []
        self._clients: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self._chunks: asyncio.Queue[bytes] = asyncio.Queue()
        self._readers: set[asyncio.Task[None]] = set()
        self._server: asyncio.Server | None = None
        self.address: Address = ("127.0.0.1", 0)

    @property
    def port(self) -> int:
        """The port the server listens on."""
        return self.address[1]

    async def start(self) -> TcpPeer:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = (str(host), int(port))
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)  # kept: Python 3.13 closes a StreamWriter that is garbage-collected
        if not self.read:
            await self._clients.put((reader, writer))
            return
        task = asyncio.current_task()
        if task is not None:
            self._readers.add(task)
        try:
            while data := await reader.read(65536):
                if self.record:
                    self.received.append(data)
                    self._chunks.put_nowait(data)
                if self.reply is not None and (answer := self.reply(data)) is not None:
                    writer.write(answer)
                    await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()
            if task is not None:
                self._readers.discard(task)

    async def accept(
        self,
        timeout: float = PEER_TIMEOUT,  # noqa: ASYNC109
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """The next client the peer accepted (without ``read``): its reader and writer."""
        if self.read:
            raise RuntimeError("this peer reads its clients itself: use next()")
        async with asyncio.timeout(timeout):
            return await self._clients.get()

    async def next(self, timeout: float = PEER_TIMEOUT) -> bytes:  # noqa: ASYNC109
        """The next chunk read from a client (with ``read``)."""
        if not self.read:
            raise RuntimeError("this peer hands its clients over: use accept()")
        async with asyncio.timeout(timeout):
            return await self._chunks.get()

    def hang_up(self) -> None:
        """Close every client's connection (the server keeps listening)."""
        for writer in self.writers:
            writer.close()

    async def close(self) -> None:
        """Hang up and stop listening (idempotent)."""
        self.hang_up()
        for task in list(self._readers):
            task.cancel()
        await asyncio.gather(*self._readers, return_exceptions=True)
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await self._server.wait_closed()
        for writer in self.writers:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await writer.wait_closed()

    async def __aenter__(self) -> TcpPeer:
        return await self.start()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


__all__ = ["PEER_TIMEOUT", "Address", "Reply", "TcpPeer", "UdpPeer"]
