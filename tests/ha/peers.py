"""Real loopback peers for the emulated modem's data connections (UDP and TCP servers on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

#: Seconds a test waits for a datagram or a TCP chunk at a peer.
PEER_TIMEOUT = 5.0

Reply = Callable[[bytes], bytes | None]


class UdpPeer(asyncio.DatagramProtocol):
    """A UDP server that records datagrams and answers with ``reply(data)`` when it returns bytes."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.reply = reply
        self.received: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.port = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.DatagramTransport)
        self.transport = transport
        self.port = transport.get_extra_info("sockname")[1]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait((data, addr))
        if self.reply is not None and (answer := self.reply(data)) is not None:
            assert self.transport is not None
            self.transport.sendto(answer, addr)

    async def next(self) -> tuple[bytes, tuple[str, int]]:
        """The next datagram and its sender."""
        async with asyncio.timeout(PEER_TIMEOUT):
            return await self.received.get()

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        """Send an unsolicited datagram to ``addr``."""
        assert self.transport is not None
        self.transport.sendto(data, addr)

    def close(self) -> None:
        """Close the socket."""
        if self.transport is not None:
            self.transport.close()


async def start_udp_peer(reply: Reply | None = None) -> UdpPeer:
    """A UDP peer listening on 127.0.0.1 on a free port."""
    loop = asyncio.get_running_loop()
    _, peer = await loop.create_datagram_endpoint(lambda: UdpPeer(reply), local_addr=("127.0.0.1", 0))
    return peer


class TcpPeer:
    """A TCP server on 127.0.0.1 that records what it reads and answers with ``reply(data)``."""

    def __init__(self, reply: Reply | None = None) -> None:
        self.reply = reply
        self.received: asyncio.Queue[bytes] = asyncio.Queue()
        self.server: asyncio.Server | None = None
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> TcpPeer:
        """Listen on a free port."""
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        while data := await reader.read(4096):
            self.received.put_nowait(data)
            if self.reply is not None and (answer := self.reply(data)) is not None:
                writer.write(answer)
                await writer.drain()

    async def next(self) -> bytes:
        """The next chunk read from a client."""
        async with asyncio.timeout(PEER_TIMEOUT):
            return await self.received.get()

    async def close(self) -> None:
        """Close the clients and the server."""
        for writer in self.writers:
            writer.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
