"""Fixtures for transport tests: an emulated module over a real TCP socket, a Modem, and loopback peers."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from sim7020_core.emulator import Emulator
from sim7020_core.modem import Modem, ModemOptions
from sim7020_core.plugins import make_plugin_manager

#: Bound on every wait in these tests (seconds); generous for a loaded 2-core machine.
WAIT = 10.0

FAST = ModemOptions(poll_interval=None, watchdog_interval=None, registration_timeout=5.0, auto_recover=False)


@pytest.fixture
def echo_plugin_installed() -> None:
    """The test-only third-party distribution must be installed (a real entry point, not a path hack)."""
    try:
        importlib.metadata.distribution("sim7020-echo-plugin")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("install the test plugin first: pip install -e tests/plugins/thirdparty")


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(registration_delay=0.0, transcript=True)
    yield emu
    await emu.stop()


@pytest.fixture
async def modem(emulator: Emulator) -> AsyncIterator[Modem]:
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    m = await Modem.connect(f"socket://{host}:{port}", options=FAST, plugin_manager=make_plugin_manager())
    yield m
    await m.close()


class _UdpPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self.transport: asyncio.DatagramTransport | None = None
        self.echo = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))
        if self.echo and self.transport is not None:
            self.transport.sendto(data, addr)


@dataclass
class UdpPeer:
    """A real UDP socket on 127.0.0.1 (the module's remote peer)."""

    port: int
    proto: _UdpPeer

    async def recv(self) -> tuple[bytes, tuple[str, int]]:
        async with asyncio.timeout(WAIT):
            return await self.proto.queue.get()

    def send(self, data: bytes, addr: tuple[str, int]) -> None:
        assert self.proto.transport is not None
        self.proto.transport.sendto(data, addr)

    def set_echo(self, on: bool = True) -> None:
        self.proto.echo = on


@pytest.fixture
async def udp_peer() -> AsyncIterator[UdpPeer]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(_UdpPeer, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    yield UdpPeer(port, proto)
    transport.close()


@dataclass
class TcpPeer:
    """A real TCP server on 127.0.0.1; ``clients`` gets each accepted (reader, writer)."""

    port: int
    clients: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(
        default_factory=asyncio.Queue
    )
    writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def accept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        async with asyncio.timeout(WAIT):
            return await self.clients.get()


@pytest.fixture
async def tcp_peer() -> AsyncIterator[TcpPeer]:
    peer = TcpPeer(0)

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer.writers.append(writer)
        await peer.clients.put((reader, writer))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    peer.port = server.sockets[0].getsockname()[1]
    yield peer
    for writer in peer.writers:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    server.close()
    await server.wait_closed()
