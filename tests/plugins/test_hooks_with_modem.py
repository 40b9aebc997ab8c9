"""Hooks as a Modem calls them (real emulator over TCP), and the third-party plugin opened by name."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sim7020_core import const
from sim7020_core.emulator import Emulator
from sim7020_core.events import DataReceived, PsmChanged, StateChanged
from sim7020_core.hookspecs import hookimpl
from sim7020_core.modem import Modem
from sim7020_core.plugins import make_plugin_manager

from .conftest import FAST, WAIT


class Recorder:
    """A plugin object recording what the hooks tell it."""

    def __init__(self) -> None:
        self.urcs: list[str] = []
        self.events: list[object] = []
        self.data: list[tuple[str, int, str, bytes]] = []

    @hookimpl
    def sim7020_register_urc_handlers(self, modem):
        return {"+CSOERR": lambda urc: self.urcs.append(urc.line)}

    @hookimpl
    def sim7020_modem_state_changed(self, modem, event):
        self.events.append(event)

    @hookimpl
    def sim7020_data_received(self, connection, data):
        self.data.append((connection.remote_host, connection.remote_port, connection.transport_name, data))


@pytest.fixture
async def recorded(emulator: Emulator) -> AsyncIterator[tuple[Modem, Recorder]]:
    recorder = Recorder()
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    pm = make_plugin_manager(plugins=[recorder])
    m = await Modem.connect(f"socket://{host}:{port}", options=FAST, plugin_manager=pm)
    yield m, recorder
    await m.close()


async def _until(predicate) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_hook_sim7020_register_urc_handlers(recorded, emulator, udp_peer):
    modem, recorder = recorded
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    emulator.socket_error(conn.socket_id, 1)
    await _until(lambda: recorder.urcs)
    assert recorder.urcs == [f"+CSOERR: {conn.socket_id},1"]
    assert conn.error is not None
    assert conn.error.code == 1


async def test_hook_sim7020_modem_state_changed(recorded, emulator):
    _modem, recorder = recorded
    # told from the first event on: the status read while connecting, then connecting -> ready
    assert recorder.events[0].state == "connecting"
    states = [e for e in recorder.events if isinstance(e, StateChanged)]
    assert (states[0].previous, states[0].state) == ("connecting", "ready")
    emulator.enter_psm()
    await _until(lambda: any(isinstance(e, PsmChanged) for e in recorder.events))
    psm = [e for e in recorder.events if isinstance(e, PsmChanged)]
    assert psm[0].entered is True
    assert psm[0].state == "asleep"
    emulator.exit_psm()


async def test_hook_sim7020_data_received(recorded, udp_peer):
    modem, recorder = recorded
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    await conn.send(b"ping")
    _, addr = await udp_peer.next()
    udp_peer.send(b"\x00downlink\xff", addr)
    assert await conn.receive(timeout=WAIT) == b"\x00downlink\xff"  # the owner still gets it
    assert recorder.data == [("127.0.0.1", udp_peer.port, "native", b"\x00downlink\xff")]


async def test_received_data_is_also_a_modem_event(modem, udp_peer):
    events: list[object] = []
    modem.subscribe(events.append)
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    await conn.send(b"ping")
    _, addr = await udp_peer.next()
    udp_peer.send(b"pong", addr)
    assert await conn.receive(timeout=WAIT) == b"pong"
    data_events = [e for e in events if isinstance(e, DataReceived)]
    assert len(data_events) == 1
    assert (data_events[0].connection, data_events[0].data) == (conn, b"pong")


async def test_third_party_transport_is_opened_by_name(modem, echo_plugin_installed):
    conn = await modem.open_connection("udp", "127.0.0.1", 9, transport="echo")
    assert type(conn).__module__ == "sim7020_echo_plugin"
    await conn.send(b"\x00\x01")
    assert await conn.receive(timeout=WAIT) == b"\x00\x01"
    await conn.close()


async def test_wake_hook_is_what_modem_wake_uses(emulator):
    """A board plugin pulses a wake line (here: the emulator's wake-up) and the modem waits for the module."""
    calls: list[object] = []

    class BoardPlugin:
        @hookimpl
        def sim7020_wake_modem(self, modem):
            calls.append(modem)
            asyncio.get_running_loop().call_soon(emulator.exit_psm)  # the GPIO pulse takes effect
            return True

    host, port = await emulator.start_tcp("127.0.0.1", 0)
    pm = make_plugin_manager(plugins=[BoardPlugin()])
    modem = await Modem.connect(f"socket://{host}:{port}", options=FAST, plugin_manager=pm)
    try:
        emulator.enter_psm()
        await _until(lambda: modem.state == "asleep")
        await modem.wake()
        assert calls == [modem]
        assert modem.state == "ready"
    finally:
        await modem.close()


async def test_wake_hook_is_asked_when_connect_finds_the_module_asleep(emulator, monkeypatch):
    """A module asleep in PSM does not answer AT: Modem.connect asks the wake hook, then syncs again."""
    monkeypatch.setattr(const, "MODEM_SYNC_ATTEMPTS", 2)
    calls: list[object] = []

    class BoardPlugin:
        @hookimpl
        def sim7020_wake_modem(self, modem):
            calls.append(modem.state)
            emulator.exit_psm()  # the GPIO pulse
            return True

    host, port = await emulator.start_tcp("127.0.0.1", 0)
    emulator.enter_psm()  # asleep before the driver starts: the UART is dead
    pm = make_plugin_manager(plugins=[BoardPlugin()])
    async with await Modem.connect(f"socket://{host}:{port}", options=FAST, plugin_manager=pm) as modem:
        assert modem.state == "ready"
        assert calls == ["connecting"]


async def test_data_hook_of_a_failing_plugin_does_not_silence_the_others(emulator, udp_peer, caplog):
    seen: list[bytes] = []

    class Broken:
        @hookimpl
        def sim7020_data_received(self, connection, data):
            raise RuntimeError("plugin bug")

    class Recorder:
        @hookimpl
        def sim7020_data_received(self, connection, data):
            seen.append(data)

    host, port = await emulator.start_tcp("127.0.0.1", 0)
    pm = make_plugin_manager(plugins=[Recorder(), Broken()])  # Broken registered last: it runs first
    async with await Modem.connect(f"socket://{host}:{port}", options=FAST, plugin_manager=pm) as modem:
        conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port)
        await conn.send(b"ping")
        _, addr = await udp_peer.next()
        udp_peer.send(b"pong", addr)
        assert await conn.receive(timeout=WAIT) == b"pong"
    assert seen == [b"pong"]
    assert "plugin bug" in caplog.text
