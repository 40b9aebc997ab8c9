"""Stale module state from a previous process is reclaimed when ``Modem.connect`` starts (issue 13, case 1).

A bridge killed with SIGKILL leaves its sockets open on the module; after a few kills every open failed with
``+CME ERROR: 3`` until the module was rebooted. Here a real child process opens connections through the
emulator (over TCP, as a bridge would through ser2net) and is killed with SIGKILL; a new Modem then connects
and must be able to use everything again. What cannot be released is a problem (``Modem.problem``).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import textwrap
from collections.abc import AsyncIterator

import pytest

from sim7020_core import const
from sim7020_core.emulator import Emulator
from sim7020_core.models import ProblemKind
from sim7020_core.modem import Modem, ModemOptions
from sim7020_core.plugins import make_plugin_manager
from tests.core.conftest import StartedFakeModem

QUIET = ModemOptions(registration_timeout=2.0, poll_interval=None, watchdog_interval=None, auto_recover=False)
WAIT = 10.0

#: The child: connects, opens what it is told to through the given transport, says so, waits to be killed.
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from sim7020_core.modem import Modem, ModemOptions

    async def main(url, transport, protocol, port, count):
        options = ModemOptions(poll_interval=None, watchdog_interval=None, auto_recover=False)
        modem = await Modem.connect(url, options=options)
        conns = [
            await modem.open_connection(protocol, "127.0.0.1", int(port), transport=transport)
            for _ in range(int(count))
        ]
        for conn in conns:
            await conn.send(b"child")
        print("ready", flush=True)
        await asyncio.sleep(3600)

    asyncio.run(main(*sys.argv[1:]))
    """
)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(registration_delay=0.0, guard_time=0.05)
    yield emu
    await emu.stop()


async def url_of(emu: Emulator) -> str:
    host, port = await emu.start_tcp("127.0.0.1", 0)
    return f"socket://{host}:{port}"


async def killed_child(url: str, transport: str, protocol: str, port: int, count: int) -> None:
    """Run the child until it has its connections open, then SIGKILL it (no close, no goodbye)."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", CHILD, url, transport, protocol, str(port), str(count),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        async with asyncio.timeout(30):
            line = await child.stdout.readline()  # type: ignore[union-attr]
        if line.strip() != b"ready":
            err = await child.stderr.read()  # type: ignore[union-attr]
            pytest.fail(f"the child did not open its connections: {line!r} {err.decode()[-2000:]}")
    finally:
        with contextlib.suppress(ProcessLookupError):
            child.send_signal(signal.SIGKILL)
        await child.wait()


class UdpPeer(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.received: asyncio.Queue[bytes] = asyncio.Queue()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.received.put_nowait(data)


@pytest.fixture
async def udp_peer() -> AsyncIterator[tuple[int, UdpPeer]]:
    transport, peer = await asyncio.get_running_loop().create_datagram_endpoint(
        UdpPeer, local_addr=("127.0.0.1", 0)
    )
    yield transport.get_extra_info("sockname")[1], peer
    transport.close()


@pytest.mark.parametrize("transport", ["native", "cip"])
async def test_connections_of_a_killed_process_are_reclaimed(
    emulator: Emulator, udp_peer: tuple[int, UdpPeer], transport: str
) -> None:
    port, peer = udp_peer
    url = await url_of(emulator)
    count = 5 if transport == "native" else 6  # every socket / link the module has
    await killed_child(url, transport, "udp", port, count)
    for _ in range(count):
        assert await peer.received.get() == b"child"
    async with await Modem.connect(url, options=QUIET, plugin_manager=make_plugin_manager()) as modem:
        assert modem.problem is None
        conns = [
            await modem.open_connection("udp", "127.0.0.1", port, transport=transport) for _ in range(count)
        ]
        for conn in conns:
            await conn.send(b"again")
        async with asyncio.timeout(WAIT):
            assert [await peer.received.get() for _ in range(count)] == [b"again"] * count


async def test_a_transparent_link_left_in_data_mode_is_reclaimed(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(const, "DATA_MODE_GUARD_TIME", 0.05)
    monkeypatch.setattr(const, "SYNC_ATTEMPT_TIMEOUT", 0.1)
    accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await accepted.put((reader, writer))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        url = await url_of(emulator)
        await killed_child(url, "transparent", "tcp", port, 1)  # the module stays in data mode
        reader, writer = await accepted.get()
        async with asyncio.timeout(WAIT):
            assert await reader.readexactly(5) == b"child"
        async with await Modem.connect(url, options=QUIET, plugin_manager=make_plugin_manager()) as modem:
            assert modem.problem is None
            async with asyncio.timeout(WAIT):
                await reader.read()  # the stale link is closed: the peer sees its end (what our AT probes
                # sent as data while the module was in data mode comes first)
            assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]
        writer.close()
    finally:
        server.close()


async def test_a_socket_the_module_will_not_release_is_a_problem(fake_modem: StartedFakeModem) -> None:
    for command, reply in {
        "AT+CMEE=1": ["OK"],
        "AT+CPIN?": ["+CPIN: READY", "OK"],
        "AT+CGMI": ["SIMCOM_Ltd", "OK"],
        "AT+CEREG?": ['+CEREG: 4,1,"1A2B","0C3D4E5F",9,"00"', "OK"],
        "AT+CSOSTATUS=2": ["+CSOSTATUS: 2,2", "OK"],  # connected, from a previous process …
        "AT+CSOCL=2": ["+CME ERROR: 3"],  # … and the module refuses to close it
    }.items():
        fake_modem.reply_to(command, reply)
    for socket_id in (0, 1, 3, 4):
        fake_modem.reply_to(f"AT+CSOSTATUS={socket_id}", [f"+CSOSTATUS: {socket_id},0", "OK"])
    async with await Modem.connect(fake_modem.url, options=QUIET) as modem:
        problem = modem.problem
        assert problem is not None
        assert problem.kind is ProblemKind.STALE_STATE
        assert "socket 2" in problem.message
        assert "+CME ERROR: 3" in problem.message
        assert "reboot" in problem.message
