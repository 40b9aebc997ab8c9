"""Fixtures for transport tests: an emulated module over a real TCP socket, a Modem, and loopback peers."""

from __future__ import annotations

import importlib.metadata
from collections.abc import AsyncIterator

import pytest

from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer
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


@pytest.fixture
async def udp_peer() -> AsyncIterator[UdpPeer]:
    """A real UDP socket on 127.0.0.1, the module's remote peer (``reply`` makes it answer)."""
    async with UdpPeer() as peer:
        yield peer


@pytest.fixture
async def tcp_peer() -> AsyncIterator[TcpPeer]:
    """A real TCP server on 127.0.0.1; ``accept()`` gives each client's reader and writer."""
    async with TcpPeer() as peer:
        yield peer
