"""Persistent connections and servers (sim7020_core.persistent) against the emulated module and real peers.

What an application sees: data keeps flowing across a module reboot, PSM without retention and a peer that
hangs up; a stalled send is reported with its reason and retried within seconds; a server listens again after
a reset; nothing is opened while the module sleeps; closing ends everything.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from sim7020_core import const
from sim7020_core.connection import ReceiveTimeoutError
from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer
from sim7020_core.exceptions import (
    ConnectionClosedError,
    NoReplyError,
    PayloadError,
    SendTimeoutError,
    describe_error,
)
from sim7020_core.models import LinkState
from sim7020_core.modem import Modem, ModemOptions
from sim7020_core.persistent import (
    ConnectionHost,
    PersistentConnection,
    PersistentServer,
    PersistentState,
    ServerClient,
    wait_ready,
)
from sim7020_core.plugins import make_plugin_manager
from sim7020_core.reconnect import Backoff

#: Bound on every wait of these tests (seconds); generous for a loaded 2-core machine.
WAIT = 15.0
QUIET = ModemOptions(registration_timeout=2.0, poll_interval=None, watchdog_interval=None)
QUICK = Backoff(0.02, 0.1)


@pytest.fixture(autouse=True)
def fast_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SYNC_ATTEMPT_TIMEOUT": 0.05,
        "BOOT_SYNC_ATTEMPTS": 60,
        "STALE_ANSWER_GRACE": 0.05,
        "REGISTRATION_POLL_INTERVAL": 0.05,
    }.items():
        monkeypatch.setattr(const, name, value)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(registration_delay=0.0, transcript=True)
    yield emu
    await emu.stop()


@pytest.fixture
async def modem(emulator: Emulator) -> AsyncIterator[Modem]:
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    m = await Modem.connect(f"socket://{host}:{port}", options=QUIET, plugin_manager=make_plugin_manager())
    yield m
    await m.close()


@pytest.fixture
async def echo() -> AsyncIterator[UdpPeer]:
    async with UdpPeer(reply=lambda data: b"echo:" + data) as peer:
        yield peer


async def until(predicate: Callable[[], bool], what: str) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.01)


def commands(emu: Emulator, prefix: str) -> int:
    return sum(
        1 for direction, data in emu.transcript if direction == "rx" and data.startswith(prefix.encode())
    )


# ---------------------------------------------------------------------------------- a connection


async def test_opens_at_the_first_send_and_request_returns_the_reply(modem: Modem, echo: UdpPeer) -> None:
    states: list[PersistentState] = []
    async with PersistentConnection(modem, "udp", "127.0.0.1", echo.port, on_state=states.append) as conn:
        assert conn.state is PersistentState.IDLE
        assert conn.connection is None
        await conn.send(b"one")
        assert (await echo.next())[0] == b"one"
        assert conn.is_open
        assert await conn.receive(5.0) == b"echo:one"
        assert await conn.request(b"two", 5.0) == b"echo:two"
    assert states == [PersistentState.OPENING, PersistentState.OPEN, PersistentState.CLOSED]
    assert conn.closed


async def test_on_data_gets_every_chunk_and_the_request_its_reply(modem: Modem, echo: UdpPeer) -> None:
    heard: list[bytes] = []
    async with PersistentConnection(modem, "udp", "127.0.0.1", echo.port, on_data=heard.append) as conn:
        assert await conn.request(b"ping", 5.0) == b"echo:ping"
        _, modem_address = await echo.next()
        echo.send(b"unasked", modem_address)
        await until(lambda: heard == [b"echo:ping", b"unasked"], "both chunks")


async def test_a_connection_lost_under_it_is_opened_again_at_the_next_send(modem: Modem) -> None:
    async with TcpPeer(read=True) as peer, PersistentConnection(modem, "tcp", "127.0.0.1", peer.port) as conn:
        await conn.send(b"first")
        assert await peer.next() == b"first"
        first = conn.connection
        peer.hang_up()
        await until(lambda: conn.state is PersistentState.IDLE, "the loss noticed")
        assert conn.connection is None
        assert isinstance(conn.last_error, ConnectionClosedError)
        await conn.send(b"second")
        assert await peer.next() == b"second"
        assert conn.connection is not first


async def test_keep_open_opens_again_after_a_module_reboot(
    modem: Modem, emulator: Emulator, echo: UdpPeer
) -> None:
    async with PersistentConnection(
        modem, "udp", "127.0.0.1", echo.port, keep_open=True, backoff=QUICK
    ) as conn:
        await until(lambda: conn.is_open, "opened without a send")
        first = conn.connection
        emulator.reboot()
        await until(lambda: conn.connection not in (None, first), "opened again after the reboot")
        assert modem.state is LinkState.READY
        assert await conn.request(b"after", 5.0) == b"echo:after"


async def test_receive_follows_the_connection_across_a_reboot(
    modem: Modem, emulator: Emulator, echo: UdpPeer
) -> None:
    async with PersistentConnection(
        modem, "udp", "127.0.0.1", echo.port, keep_open=True, backoff=QUICK
    ) as conn:
        reader = asyncio.create_task(anext(aiter(conn)))
        await until(lambda: conn.is_open, "open")
        first = conn.connection
        emulator.reboot()
        await until(lambda: conn.connection not in (None, first), "opened again")
        await conn.send(b"hello")
        async with asyncio.timeout(WAIT):
            assert await reader == b"echo:hello"


async def test_nothing_is_opened_while_the_module_sleeps(
    modem: Modem, emulator: Emulator, echo: UdpPeer
) -> None:
    """PSM without retention loses the socket; the connection opens again only once the module is awake."""
    async with PersistentConnection(
        modem, "udp", "127.0.0.1", echo.port, keep_open=True, backoff=QUICK
    ) as conn:
        await until(lambda: conn.is_open, "open")
        emulator.enter_psm()
        await until(lambda: modem.state is LinkState.ASLEEP and not conn.is_open, "asleep, socket gone")
        opened = commands(emulator, "AT+CSOC=")
        await asyncio.sleep(0.3)
        assert commands(emulator, "AT+CSOC=") == opened  # no attempt, no wake-up
        assert modem.state is LinkState.ASLEEP
        emulator.exit_psm()
        await until(lambda: conn.is_open, "opened again after the wake")
        assert await conn.request(b"awake", 5.0) == b"echo:awake"


async def test_the_idle_timeout_closes_it(modem: Modem, echo: UdpPeer) -> None:
    states: list[PersistentState] = []
    conn = PersistentConnection(
        modem, "udp", "127.0.0.1", echo.port, idle_timeout=0.3, on_state=states.append
    )
    await conn.send(b"x")
    await asyncio.sleep(0.15)
    await conn.send(b"y")  # traffic: the idle time starts again
    await asyncio.sleep(0.2)
    assert conn.is_open
    await until(lambda: conn.closed, "the idle close")
    assert states[-1] is PersistentState.CLOSED
    assert not modem.transports["native"].connections  # the module's socket was freed
    with pytest.raises(ConnectionClosedError):
        await conn.send(b"z")
    await conn.close()


async def test_a_request_ends_at_once_when_the_peer_hangs_up(modem: Modem) -> None:
    async with (
        TcpPeer() as peer,
        PersistentConnection(modem, "tcp", "127.0.0.1", peer.port, on_data=lambda data: None) as conn,
    ):

        async def hang_up() -> None:
            reader, writer = await peer.accept()
            await reader.read(100)
            writer.close()

        closer = asyncio.create_task(hang_up())
        # bounded well below the reply timeout: the hang-up ends the request, not the 30 s
        async with asyncio.timeout(WAIT):
            with pytest.raises(ConnectionClosedError, match="before a reply"):
                await conn.request(b"bye", 30.0)
        await closer


async def test_a_request_read_by_its_owner_says_when_no_reply_can_come(modem: Modem) -> None:
    """Without on_data the reply is read from the connection the request went out on; a hang-up ends it."""
    async with TcpPeer() as peer, PersistentConnection(modem, "tcp", "127.0.0.1", peer.port) as conn:

        async def hang_up() -> None:
            reader, writer = await peer.accept()
            await reader.read(100)
            writer.close()

        closer = asyncio.create_task(hang_up())
        async with asyncio.timeout(WAIT):
            with pytest.raises(NoReplyError, match="before a reply"):
                await conn.request(b"bye", 30.0)
        await closer
        with pytest.raises(ReceiveTimeoutError):
            await conn.request(b"again", 0.2)  # a new connection; the peer keeps it open and says nothing


async def test_deliver_retries_a_stalled_send_and_says_why(
    modem: Modem, emulator: Emulator, echo: UdpPeer
) -> None:
    failures: list[str] = []
    async with PersistentConnection(modem, "udp", "127.0.0.1", echo.port, backoff=QUICK) as conn:
        await conn.send(b"warm-up")
        await echo.next()
        emulator.stall(0.5)
        await conn.deliver(
            b"through the stall",
            timeout=0.2,
            on_error=lambda err, delay: failures.append(describe_error(err)),
        )
        assert (await echo.next())[0] == b"through the stall"
    assert failures
    assert "did not answer the send within 0.2 s" in failures[0]


async def test_deliver_gives_up_on_a_payload_the_transport_refuses(modem: Modem, echo: UdpPeer) -> None:
    failures: list[BaseException] = []
    async with PersistentConnection(modem, "udp", "127.0.0.1", echo.port, backoff=QUICK) as conn:
        with pytest.raises(PayloadError):
            await conn.deliver(b"x" * 100_000, on_error=lambda err, delay: failures.append(err))
    assert failures == []


async def test_a_send_timeout_is_a_timeout_that_names_the_bound(
    modem: Modem, emulator: Emulator, echo: UdpPeer
) -> None:
    async with PersistentConnection(modem, "udp", "127.0.0.1", echo.port) as conn:
        await conn.send(b"open first")
        emulator.stall(1.0)
        with pytest.raises(SendTimeoutError, match=r"within 0\.1 s") as err:
            await conn.send(b"lost", timeout=0.1)
        assert isinstance(err.value, TimeoutError)
        emulator.unstall()


async def test_failed_openings_back_off_and_are_logged(
    modem: Modem, emulator: Emulator, echo: UdpPeer, caplog: pytest.LogCaptureFixture
) -> None:
    original = emulator.registry.lookup("+CSOC")
    assert original is not None
    refused: list[Any] = []

    def refuse_twice(ctx: Any, cmd: Any) -> Any:
        if len(refused) >= 2:
            return original(ctx, cmd)
        refused.append(cmd)
        return ctx.error(3)

    emulator.registry.register("+CSOC", refuse_twice, replace=True)
    caplog.set_level(logging.WARNING)
    async with PersistentConnection(
        modem, "udp", "127.0.0.1", echo.port, keep_open=True, backoff=QUICK, name="telemetry"
    ) as conn:
        await until(lambda: conn.is_open, "open after two refusals")
    assert len(refused) == 2
    assert "telemetry: cannot open" in caplog.text
    assert "CME ERROR: 3" in caplog.text


async def test_keep_open_stops_when_the_modem_closes(modem: Modem, echo: UdpPeer) -> None:
    async with PersistentConnection(
        modem, "udp", "127.0.0.1", echo.port, keep_open=True, backoff=QUICK
    ) as conn:
        await until(lambda: conn.is_open, "open")
        await modem.close()
        await until(lambda: conn.state is PersistentState.IDLE, "given up")
        assert isinstance(conn.last_error, ConnectionClosedError)
    with pytest.raises(ConnectionClosedError, match="modem is closed"):
        await wait_ready(modem)


async def test_a_modem_source_decides_when_the_modem_may_be_used(modem: Modem, echo: UdpPeer) -> None:
    """The bridge's way: an async callable that waits (here until released) and returns the modem."""
    released = asyncio.Event()

    async def source() -> ConnectionHost:
        await released.wait()
        return modem

    async with PersistentConnection(source, "udp", "127.0.0.1", echo.port) as conn:
        sending = asyncio.create_task(conn.send(b"held"))
        await asyncio.sleep(0.1)
        assert not sending.done()
        released.set()
        async with asyncio.timeout(WAIT):
            await sending
        assert (await echo.next())[0] == b"held"


async def test_close_ends_receive(modem: Modem, echo: UdpPeer) -> None:
    conn = PersistentConnection(modem, "udp", "127.0.0.1", echo.port)
    waiting = asyncio.create_task(conn.receive())
    await asyncio.sleep(0.05)
    await conn.close()
    with pytest.raises(ConnectionClosedError):
        await waiting
    assert [chunk async for chunk in conn] == []


# ---------------------------------------------------------------------------------- a server


async def connect_client(emu: Emulator, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    async with asyncio.timeout(WAIT):
        while True:
            try:
                return await asyncio.open_connection(*emu.server_address(port))
            except (OSError, LookupError):
                await asyncio.sleep(0.02)


async def test_a_server_hands_out_clients_and_listens_again_after_a_reboot(
    modem: Modem, emulator: Emulator
) -> None:
    clients: list[ServerClient] = []
    heard: list[tuple[ServerClient, bytes]] = []
    gone: list[ServerClient] = []
    async with PersistentServer(
        modem,
        7000,
        backoff=QUICK,
        on_client=clients.append,
        on_client_data=lambda client, data: heard.append((client, data)),
        on_client_closed=gone.append,
    ) as server:
        reader, writer = await connect_client(emulator, 7000)
        writer.write(b"hello modem")
        await until(lambda: len(heard) == 1, "the client's data")
        (client,) = clients
        assert heard == [(client, b"hello modem")]
        assert server.latest_client is client
        answer = asyncio.create_task(client.request(b"welcome", 5.0))
        async with asyncio.timeout(WAIT):
            assert await reader.read(100) == b"welcome"
        writer.write(b"thanks")
        async with asyncio.timeout(WAIT):
            assert await answer == b"thanks"
        first = server.server

        emulator.reboot()
        await until(lambda: server.server not in (None, first), "listening again")
        assert gone == [client]
        assert server.clients == []
        writer.close()
        reader, writer = await connect_client(emulator, 7000)
        await until(lambda: len(clients) == 2, "a new client")
        await server.deliver(b"to the newest")
        async with asyncio.timeout(WAIT):
            assert await reader.read(100) == b"to the newest"
        writer.close()


async def test_a_refused_listen_is_retried(
    modem: Modem, emulator: Emulator, caplog: pytest.LogCaptureFixture
) -> None:
    original = emulator.registry.lookup("+CSOLIS")
    assert original is not None
    refused: list[Any] = []

    def refuse_once(ctx: Any, cmd: Any) -> Any:
        if refused:
            return original(ctx, cmd)
        refused.append(cmd)
        return ctx.error(3)

    emulator.registry.register("+CSOLIS", refuse_once, replace=True)
    caplog.set_level(logging.WARNING)
    async with PersistentServer(modem, 7000, backoff=QUICK) as server:
        await until(lambda: server.state is PersistentState.OPEN, "listening")
    assert "cannot listen on TCP port 7000" in caplog.text


async def test_accept_and_send_without_callbacks(modem: Modem, emulator: Emulator) -> None:
    async with PersistentServer(modem, 7001, backoff=QUICK) as server:
        reader, writer = await connect_client(emulator, 7001)
        client = await server.accept(WAIT)
        writer.write(b"data")
        assert await client.receive(WAIT) == b"data"
        await server.send(b"back", timeout=WAIT)
        async with asyncio.timeout(WAIT):
            assert await reader.read(100) == b"back"
        writer.close()
        await until(lambda: client.closed, "the client gone")
        with pytest.raises(ConnectionClosedError):
            await client.send(b"anyone?")
    with pytest.raises(ConnectionClosedError):
        await server.accept(0.1)


def test_nonsense_options_are_refused() -> None:
    with pytest.raises(ValueError, match="idle_timeout"):
        PersistentConnection(_no_modem, "udp", "127.0.0.1", 1, idle_timeout=0)


async def _no_modem() -> ConnectionHost:
    raise AssertionError("not used")
