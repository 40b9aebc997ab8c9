"""PSM wake handled as real modules need it, through the emulator's ``sim7020`` profile (docs/emulator.md,
"Power saving"): on waking the module prints ``+CPIN: READY`` then ``EXIT PSM``, has forgotten
``AT+CSORCVFLAG`` and registers again (``+CEREG: 2``, then ``+CEREG: 1``), dropping UDP data sent meanwhile.

The driver re-applies its session settings after every wake and every reboot, data waits for registration,
and a wake is never taken for a reboot.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest

from sim7020_core import const
from sim7020_core.connection import Capabilities, Connection, SessionSetting, Transport
from sim7020_core.emulator import Emulator, PsmTimings
from sim7020_core.events import ModemEvent, ModuleReset, PsmChanged, StateChanged
from sim7020_core.exceptions import NotRegisteredError
from sim7020_core.hookspecs import hookimpl
from sim7020_core.models import LinkState
from sim7020_core.modem import Modem
from sim7020_core.plugins import make_plugin_manager

from .conftest import FAST, WAIT, UdpPeer

#: How long the emulated module takes to register again after a wake (the window where UDP data is lost).
REJOIN_DELAY = 0.3
#: A binary datagram that would break a hex reader and the line parser alike.
BINARY = b"\x00\r\n+CSONMI: 9\xff\x1a"


@pytest.fixture(autouse=True)
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(const, "WAKE_EXIT_GRACE", 0.1)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(
        hosts={"example.com": "127.0.0.1"},
        registration_delay=0.0,
        wake_registration_delay=REJOIN_DELAY,
        psm_timings=PsmTimings(auto=False),
        transcript=True,
    )
    yield emu
    await emu.stop()


def sent_commands(emu: Emulator) -> list[str]:
    data = b"".join(chunk for direction, chunk in emu.transcript if direction == "rx")
    return [line.decode(errors="replace").strip() for line in data.split(b"\r") if line.strip()]


class Events:
    """The modem's events, and a way to wait for one."""

    def __init__(self, modem: Modem) -> None:
        self.events: list[ModemEvent] = []
        self._changed = asyncio.Event()
        modem.subscribe(self._add)

    def _add(self, event: ModemEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[ModemEvent], bool]) -> ModemEvent:
        async with asyncio.timeout(WAIT):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    async def reset_and_ready(self) -> None:
        """Wait for a module reset and the modem ready again after it."""
        reset = await self.wait_for(lambda e: isinstance(e, ModuleReset))
        await self.wait_for(
            lambda e: (
                isinstance(e, StateChanged)
                and e.state is LinkState.READY
                and self.events.index(e) > self.events.index(reset)
            )
        )

    def states(self) -> list[LinkState]:
        return [e.state for e in self.events if isinstance(e, StateChanged)]


async def connect(emu: Emulator, **kwargs: Any) -> Modem:
    host, port = await emu.start_tcp("127.0.0.1", 0)
    return await Modem.connect(f"socket://{host}:{port}", options=FAST, **kwargs)


async def sleep_and_wake(modem: Modem, emu: Emulator, events: Events) -> None:
    """The module enters PSM and wakes (as by its TAU timer); returns once the driver saw the wake."""
    emu.enter_psm()
    await events.wait_for(lambda e: isinstance(e, PsmChanged) and e.entered)
    emu.exit_psm()
    await events.wait_for(lambda e: isinstance(e, PsmChanged) and not e.entered)


async def test_raw_receive_still_works_after_a_wake_that_reset_csorcvflag(
    emulator: Emulator, udp_peer: UdpPeer
) -> None:
    async with await connect(emulator, plugin_manager=make_plugin_manager()) as modem:
        events = Events(modem)
        conn = await modem.open_connection(
            "udp", "127.0.0.1", udp_peer.port, transport="native", receive_mode="raw", retention=True
        )
        await conn.send(b"hello")
        _, module_address = await udp_peer.next()
        udp_peer.send(BINARY, module_address)
        assert await conn.receive(timeout=WAIT) == BINARY
        await sleep_and_wake(modem, emulator, events)
        udp_peer.send(BINARY, module_address)  # may come before raw mode is set again: in hex, read as hex
        assert await conn.receive(timeout=WAIT) == BINARY
        await modem.command("AT")  # commands wait until the session settings are back
        assert emulator.command_sets["native"].recv_flag == 1  # type: ignore[attr-defined]
        udp_peer.send(BINARY, module_address)
        assert await conn.receive(timeout=WAIT) == BINARY
        assert not conn.closed


async def test_a_send_right_after_a_wake_waits_for_registration(
    emulator: Emulator, udp_peer: UdpPeer
) -> None:
    async with await connect(emulator, plugin_manager=make_plugin_manager()) as modem:
        events = Events(modem)
        conn = await modem.open_connection(
            "udp", "127.0.0.1", udp_peer.port, transport="native", retention=True
        )
        await sleep_and_wake(modem, emulator, events)
        assert modem.status.registration != "home"  # +CEREG: 2: registering again
        await conn.send(b"right after the wake")  # would be lost if it went out now
        assert modem.status.registration == "home"
        data, _ = await udp_peer.next()
        assert data == b"right after the wake"


async def test_dns_right_after_a_wake_waits_for_registration(emulator: Emulator) -> None:
    async with await connect(emulator) as modem:
        events = Events(modem)
        await sleep_and_wake(modem, emulator, events)
        assert await modem.resolve("example.com") == ["127.0.0.1"]  # not "not registered"


async def test_data_is_refused_when_the_module_does_not_register_again_in_time(
    emulator: Emulator, udp_peer: UdpPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(const, "WAKE_REGISTRATION_TIMEOUT", 0.1)
    emulator.wake_registration_delay = 30.0
    async with await connect(emulator, plugin_manager=make_plugin_manager()) as modem:
        events = Events(modem)
        conn = await modem.open_connection(
            "udp", "127.0.0.1", udp_peer.port, transport="native", retention=True
        )
        await sleep_and_wake(modem, emulator, events)
        with pytest.raises(NotRegisteredError, match="has not registered again since it woke"):
            await conn.send(b"lost otherwise")


async def test_a_wake_is_not_taken_for_a_reboot(emulator: Emulator) -> None:
    async with await connect(emulator) as modem:
        events = Events(modem)
        before = len(sent_commands(emulator))
        await sleep_and_wake(modem, emulator, events)
        await modem.command("AT")  # after the settings (commands wait for them)
        await asyncio.sleep(const.WAKE_EXIT_GRACE * 3)  # past the time a reboot check would start
        assert not [e for e in events.events if isinstance(e, ModuleReset)]
        assert events.states() == [LinkState.ASLEEP, LinkState.READY]
        after = sent_commands(emulator)[before:]
        assert "AT+CMEE?" not in after  # no reboot check: +CPIN: READY came with EXIT PSM
        assert after[:4] == ["ATE0", "AT+CMEE=1", "AT+CEREG=4", "AT+CPSMSTATUS=1"]  # the session settings


async def test_a_real_reboot_still_reinitialises_and_reapplies_the_transport_settings(
    emulator: Emulator, udp_peer: UdpPeer
) -> None:
    async with await connect(emulator, plugin_manager=make_plugin_manager()) as modem:
        events = Events(modem)
        conn = await modem.open_connection(
            "udp", "127.0.0.1", udp_peer.port, transport="native", receive_mode="raw"
        )
        before = len(sent_commands(emulator))
        emulator.reboot()
        await events.reset_and_ready()
        assert conn.closed
        # raw mode was asked for: set again after the reboot
        assert "AT+CSORCVFLAG=1" in sent_commands(emulator)[before:]
        again = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
        await again.send(b"hello")
        _, module_address = await udp_peer.next()
        udp_peer.send(BINARY, module_address)
        assert await again.receive(timeout=WAIT) == BINARY


async def test_cpin_ready_without_a_wake_is_checked_for_a_reboot(emulator: Emulator) -> None:
    async with await connect(emulator) as modem:
        events = Events(modem)
        before = len(sent_commands(emulator))
        emulator.inject_garbage(b"\r\n+CPIN: READY\r\n")  # no EXIT PSM follows: a reboot (without RDY)?
        await asyncio.sleep(const.WAKE_EXIT_GRACE * 3)
        await modem.command("AT")
        assert "AT+CMEE?" in sent_commands(emulator)[before:]  # asked: the settings are still there
        assert not [e for e in events.events if isinstance(e, ModuleReset)]
        await modem.command("AT+CMEE=0", allow_unsafe=True)  # what a reboot does to the settings
        emulator.inject_garbage(b"\r\n+CPIN: READY\r\n")
        await events.reset_and_ready()
        assert await modem.command("AT+CMEE?") == ["+CMEE: 1"]


# ------------------------------------------------------------------ a third party's session settings


class SettingTransport(Transport):
    """A third-party transport that relies on a module setting (here ``AT+CSCLK=0``, tried after a
    command the module does not know)."""

    name = "setting"
    capabilities = Capabilities(
        max_connections=1, server=False, binary_safe=True, acknowledged_send=False, peer_addressing=False
    )
    log: ClassVar[list[str]] = []

    async def open_connection(self, protocol: str, ip: str, port: int, **options: Any) -> Connection:
        conn = Connection(self, self.check_protocol(protocol), ip, port)
        self._register(conn)
        return conn

    def session_settings(self) -> list[SessionSetting]:
        return [
            SessionSetting(
                "AT+NOSUCHSETTING=1",
                alternatives=("AT+CSCLK=0",),
                prepare=lambda: self.log.append("prepare"),
                done=lambda taken: self.log.append(f"done {taken}"),
            )
        ]


class SettingPlugin:
    @hookimpl
    def sim7020_register_transports(self) -> list[type[Transport]]:
        return [SettingTransport]


async def test_a_third_party_transport_contributes_session_settings(emulator: Emulator) -> None:
    SettingTransport.log.clear()
    pm = make_plugin_manager(load_entrypoints=False, plugins=[SettingPlugin()])
    async with await connect(emulator, plugin_manager=pm) as modem:
        events = Events(modem)
        await modem.open_connection("udp", "127.0.0.1", 9, transport="setting")
        assert SettingTransport.log == []  # applied when the module forgets: after a wake or a reset
        before = len(sent_commands(emulator))
        await sleep_and_wake(modem, emulator, events)
        await modem.command("AT")
        assert SettingTransport.log == ["prepare", "done AT+CSCLK=0"]
        sent = sent_commands(emulator)[before:]
        assert sent.index("AT+NOSUCHSETTING=1") < sent.index("AT+CSCLK=0")
        emulator.reboot()
        await events.reset_and_ready()
        assert SettingTransport.log == ["prepare", "done AT+CSCLK=0"] * 2
