"""Faults and recovery against the emulator: reboot, stall, dropped answers, SIM busy, PSM, lost port.

Timeout constants (sim7020_core/const.py) are patched small so each scenario takes well under a second or two.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

import pytest

from sim7020_core import const
from sim7020_core.connection import Capabilities, Connection, Transport
from sim7020_core.emulator import Emulator, PsmTimings
from sim7020_core.emulator.peers import UdpPeer
from sim7020_core.events import ModemEvent, ModuleReset, PsmChanged, StateChanged
from sim7020_core.exceptions import (
    AtTimeoutError,
    CommandInterruptedError,
    ModemAsleepError,
    SimError,
    TransportError,
    UnsupportedError,
)
from sim7020_core.hookspecs import hookimpl
from sim7020_core.models import LinkState
from sim7020_core.modem import Modem, ModemOptions
from sim7020_core.plugins import make_plugin_manager

QUIET = ModemOptions(registration_timeout=2.0, poll_interval=None, watchdog_interval=None)
WATCHED = ModemOptions(
    registration_timeout=2.0,
    poll_interval=None,
    watchdog_interval=0.05,
    watchdog_max_failures=2,
    reconnect_min_delay=0.05,
    reconnect_max_delay=0.2,
)


@pytest.fixture(autouse=True)
def fast_recovery_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "WATCHDOG_TIMEOUT": 0.1,
        "SYNC_ATTEMPT_TIMEOUT": 0.05,
        "RECOVERY_SYNC_ATTEMPTS": 2,
        "BOOT_SYNC_ATTEMPTS": 40,
        "SIM_BUSY_RETRY_DELAY": 0.01,
        "WAKE_PROBE_INTERVAL": 0.05,
        "WAKE_PROBE_TIMEOUT": 0.05,
        "STALE_ANSWER_GRACE": 0.05,
        "REGISTRATION_POLL_INTERVAL": 0.05,
        "READY_WAIT_TIMEOUT": 3.0,
    }.items():
        monkeypatch.setattr(const, name, value)


class EventLog:
    """Subscriber that records events and lets a test wait for one."""

    def __init__(self, modem: Modem) -> None:
        self.events: list[ModemEvent] = []
        self._changed = asyncio.Event()
        modem.subscribe(self)

    def __call__(self, event: ModemEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[ModemEvent], bool], timeout: float = 3.0) -> ModemEvent:
        async with asyncio.timeout(timeout):
            while True:
                for event in self.events:
                    if predicate(event):
                        return event
                self._changed.clear()
                await self._changed.wait()

    def states(self) -> list[str]:
        return [e.state.value for e in self.events if isinstance(e, StateChanged)]

    def kinds(self) -> list[type[ModemEvent]]:
        return [type(e) for e in self.events]


def ready_after(log: EventLog, kind: type[ModemEvent]) -> Callable[[ModemEvent], bool]:
    """Predicate: a ``ready`` state event after the first event of type ``kind``."""

    def predicate(event: ModemEvent) -> bool:
        kinds = log.kinds()
        if kind not in kinds:
            return False
        later = log.events[kinds.index(kind) :]
        return event in later and isinstance(event, StateChanged) and event.state is LinkState.READY

    return predicate


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(registration_delay=0.02, time_scale=0.01, psm_timings=PsmTimings(auto=False))
    host, port = await emu.start_tcp("127.0.0.1", 0)
    emu.url = f"socket://{host}:{port}"  # type: ignore[attr-defined]
    yield emu
    await emu.stop()


async def connect(emu: Emulator, options: ModemOptions = QUIET, **kwargs: Any) -> Modem:
    return await Modem.connect(emu.url, options=options, **kwargs)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ module reboot


@pytest.mark.parametrize("in_flight", [False, True])
async def test_reboot_mid_command_is_detected_and_reinitialised(emulator: Emulator, in_flight: bool) -> None:
    async with await connect(emulator) as modem:
        log = EventLog(modem)
        if in_flight:
            emulator.drop_next_response()  # the module takes the command and reboots before answering
        task = asyncio.create_task(modem.command("AT+CGATT?", timeout=30 if in_flight else 0.3))
        if in_flight:
            await asyncio.sleep(0.05)
        emulator.reboot()  # (not in flight: the booting module drops the command)
        if in_flight:  # RDY tells the driver at once: no waiting out the command's 30 s timeout
            with pytest.raises(CommandInterruptedError, match="rebooted"):
                await asyncio.wait_for(task, 3)
        else:
            with pytest.raises((AtTimeoutError, CommandInterruptedError)):
                await task
        await log.wait_for(ready_after(log, ModuleReset))
        assert log.states() == ["recovering", "ready"]
        assert "RDY" in next(e for e in log.events if isinstance(e, ModuleReset)).reason
        assert emulator.state.echo is False  # ATE0 sent again
        assert await modem.command("AT+CMEE?") == ["+CMEE: 1"]
        assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]


async def test_entering_psm_fails_the_command_in_flight_at_once(emulator: Emulator) -> None:
    """+CPSMSTATUS: "ENTER PSM" while a command waits: the sleeping UART will never answer it."""
    async with await connect(emulator) as modem:
        emulator.drop_next_response()
        task = asyncio.create_task(modem.command("AT+CGATT?", timeout=30))
        await asyncio.sleep(0.05)
        emulator.enter_psm()
        with pytest.raises(CommandInterruptedError, match="PSM"):
            await asyncio.wait_for(task, 3)
        assert modem.state is LinkState.ASLEEP
        emulator.exit_psm()
        async with asyncio.timeout(3):
            while modem.state is not LinkState.READY:
                await asyncio.sleep(0.02)
        assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]


async def test_lost_settings_seen_by_watchdog_count_as_reboot(emulator: Emulator) -> None:
    async with await connect(emulator, WATCHED) as modem:
        log = EventLog(modem)
        await modem.command("AT+CMEE=0", allow_unsafe=True)  # what a silent reset looks like
        await log.wait_for(ready_after(log, ModuleReset))
        assert "settings lost" in next(e for e in log.events if isinstance(e, ModuleReset)).reason
        assert await modem.command("AT+CMEE?") == ["+CMEE: 1"]


async def test_reboot_api(emulator: Emulator) -> None:
    async with await connect(emulator) as modem:
        log = EventLog(modem)
        await modem.reboot()
        assert modem.state is LinkState.READY
        assert log.kinds().count(ModuleReset) == 1
        assert log.states() == ["recovering", "ready"]
        assert emulator.state.echo is False
        await asyncio.sleep(0.3)  # the boot URCs (RDY, +CPIN: READY) must not cause a second reboot
        assert log.kinds().count(ModuleReset) == 1
        assert modem.state is LinkState.READY


# ------------------------------------------------------------------ silent module, dropped answers


async def test_stall_triggers_watchdog_recovery(emulator: Emulator) -> None:
    async with await connect(emulator, WATCHED) as modem:
        log = EventLog(modem)
        emulator.stall(0.5)
        await log.wait_for(
            lambda e: isinstance(e, StateChanged) and e.state is LinkState.RECOVERING, timeout=2
        )
        await log.wait_for(lambda e: isinstance(e, StateChanged) and e.state is LinkState.READY, timeout=5)
        assert "watchdog" in next(e for e in log.events if e.state is LinkState.RECOVERING).reason
        assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]


async def test_command_waits_for_recovery(emulator: Emulator) -> None:
    async with await connect(emulator, WATCHED) as modem:
        log = EventLog(modem)
        emulator.stall(0.4)
        await log.wait_for(
            lambda e: isinstance(e, StateChanged) and e.state is LinkState.RECOVERING, timeout=2
        )
        assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]  # waits (bounded) for READY
        assert modem.state is LinkState.READY


async def test_dropped_response_times_out_once_without_recovery(
    emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = ModemOptions(
        registration_timeout=2.0, poll_interval=None, watchdog_interval=0.05, watchdog_max_failures=3
    )
    async with await connect(emulator, options) as modem:
        log = EventLog(modem)
        emulator.drop_next_response()
        with pytest.raises(AtTimeoutError, match="AT\\+CSQ"):
            await modem.command("AT+CSQ", timeout=0.2)
        assert await modem.command("AT+CGATT?") == ["+CGATT: 1"]
        emulator.drop_next_response()  # now a watchdog probe goes unanswered: one failure only
        await asyncio.sleep(0.4)
        assert log.states() == []
        assert modem.state is LinkState.READY


# ------------------------------------------------------------------ SIM


async def test_sim_busy_at_boot_is_retried(emulator: Emulator) -> None:
    emulator.sim_busy_at_boot(4)
    async with await connect(emulator) as modem:
        assert modem.info.imsi == emulator.imsi
        assert modem.info.iccid == emulator.iccid
        log = EventLog(modem)
        emulator.reboot()  # busy again after every boot
        await log.wait_for(ready_after(log, ModuleReset))
        assert modem.info.imsi == emulator.imsi


async def test_sim_busy_forever_is_a_sim_error(emulator: Emulator) -> None:
    emulator.sim_busy_at_boot(50)
    options = ModemOptions(
        registration_timeout=0.5, poll_interval=None, watchdog_interval=None, sim_busy_retries=3
    )
    with pytest.raises(SimError, match="busy"):
        await connect(emulator, options)


# ------------------------------------------------------------------ PSM


async def test_psm_is_a_state_not_a_failure(emulator: Emulator) -> None:
    async with await connect(emulator, WATCHED) as modem:
        log = EventLog(modem)
        emulator.enter_psm()
        entered = await log.wait_for(lambda e: isinstance(e, PsmChanged))
        assert entered.entered is True
        assert modem.state is LinkState.ASLEEP
        assert modem.status.psm.state == "asleep"
        await asyncio.sleep(0.4)  # many watchdog periods: no probe, no recovery
        assert log.states() == ["asleep"]
        emulator.exit_psm()
        left = await log.wait_for(lambda e: isinstance(e, PsmChanged) and e.entered is False)
        assert left.state is LinkState.READY
        assert modem.status.psm.state == "awake"
        assert log.states() == ["asleep", "ready"]


async def test_psm_policy_fail(emulator: Emulator) -> None:
    options = ModemOptions(
        registration_timeout=2.0, poll_interval=None, watchdog_interval=None, psm_policy="fail"
    )
    async with await connect(emulator, options) as modem:
        log = EventLog(modem)
        emulator.enter_psm()
        await log.wait_for(lambda e: isinstance(e, PsmChanged))
        with pytest.raises(ModemAsleepError, match="PSM"):
            await modem.command("AT+CSQ")
        with pytest.raises(ModemAsleepError):
            await modem.refresh()


async def test_psm_policy_wait_until_the_module_wakes(emulator: Emulator) -> None:
    async with await connect(emulator) as modem:
        log = EventLog(modem)
        emulator.enter_psm()
        await log.wait_for(lambda e: isinstance(e, PsmChanged))
        asyncio.get_running_loop().call_later(0.2, emulator.exit_psm)  # e.g. the TAU timer
        assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]
        assert modem.state is LinkState.READY


async def test_psm_wait_is_bounded(emulator: Emulator) -> None:
    options = ModemOptions(
        registration_timeout=2.0, poll_interval=None, watchdog_interval=None, psm_wake_timeout=0.2
    )
    async with await connect(emulator, options) as modem:
        log = EventLog(modem)
        emulator.enter_psm()
        await log.wait_for(lambda e: isinstance(e, PsmChanged))
        with pytest.raises(ModemAsleepError, match="did not wake"):
            await modem.command("AT+CSQ")
        assert modem.state is LinkState.ASLEEP


async def test_wake_callback(emulator: Emulator) -> None:
    calls: list[Modem] = []

    def wake(modem: Modem) -> None:  # a board would pulse PWRKEY here
        calls.append(modem)
        emulator.exit_psm()

    options = ModemOptions(registration_timeout=2.0, poll_interval=None, watchdog_interval=None, wake=wake)
    async with await connect(emulator, options) as modem:
        log = EventLog(modem)
        emulator.enter_psm()
        await log.wait_for(lambda e: isinstance(e, PsmChanged))
        assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]
        assert calls == [modem]


async def test_async_wake_callback(emulator: Emulator) -> None:
    async def wake(modem: Modem) -> bool:
        await asyncio.sleep(0.01)
        emulator.exit_psm()
        return True

    options = ModemOptions(registration_timeout=2.0, poll_interval=None, watchdog_interval=None, wake=wake)
    async with await connect(emulator, options) as modem:
        log = EventLog(modem)
        emulator.enter_psm()
        await log.wait_for(lambda e: isinstance(e, PsmChanged))
        assert (await modem.refresh()).psm.state == "awake"


async def test_wake_hook_of_a_plugin(emulator: Emulator) -> None:
    class GpioWake:
        calls = 0

        @hookimpl
        def sim7020_wake_modem(self, modem: Modem) -> bool:
            GpioWake.calls += 1
            emulator.exit_psm()
            return True

    pm = make_plugin_manager(load_entrypoints=False, plugins=[GpioWake()])
    async with await connect(emulator, plugin_manager=pm) as modem:
        log = EventLog(modem)
        emulator.enter_psm()
        await log.wait_for(lambda e: isinstance(e, PsmChanged))
        assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]
        assert GpioWake.calls == 1


async def test_uart_wake_when_nothing_else_can() -> None:
    emu = Emulator(registration_delay=0.02, psm_timings=PsmTimings(auto=False, wake_on_uart=True))
    host, port = await emu.start_tcp("127.0.0.1", 0)
    try:
        async with await Modem.connect(f"socket://{host}:{port}", options=QUIET) as modem:
            log = EventLog(modem)
            emu.enter_psm()
            await log.wait_for(lambda e: isinstance(e, PsmChanged))
            assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]
            assert modem.state is LinkState.READY
    finally:
        await emu.stop()


# ------------------------------------------------------------------ transports are told


class RecordingTransport(Transport):
    """A minimal third-party transport that records what the modem tells it."""

    name: ClassVar[str] = "recording"
    capabilities: ClassVar[Capabilities] = Capabilities(
        max_connections=1,
        server=False,
        binary_safe=True,
        acknowledged_send=False,
        peer_addressing=False,
        protocols=frozenset({"udp"}),
    )
    told: ClassVar[list[str]] = []

    async def open_connection(self, protocol: str, ip: str, port: int, **options: Any) -> Connection:
        conn = Connection(self, self.check_protocol(protocol), ip, port)
        self._register(conn)
        return conn

    async def on_modem_reset(self) -> None:
        RecordingTransport.told.append("reset")
        await super().on_modem_reset()

    async def on_psm(self, entered: bool) -> None:
        RecordingTransport.told.append(f"psm:{entered}")


class RecordingPlugin:
    @hookimpl
    def sim7020_register_transports(self) -> list[type[Transport]]:
        return [RecordingTransport]


async def test_transports_are_told_of_reboot_and_psm(emulator: Emulator) -> None:
    RecordingTransport.told = []
    pm = make_plugin_manager(load_entrypoints=False, plugins=[RecordingPlugin()])
    async with await connect(emulator, plugin_manager=pm) as modem:
        log = EventLog(modem)
        conn = await modem.open_connection("udp", "10.1.2.3", 5683, transport="recording")
        assert (conn.remote_host, conn.remote_port) == ("10.1.2.3", 5683)
        emulator.reboot()
        await log.wait_for(ready_after(log, ModuleReset))
        assert RecordingTransport.told == ["reset"]
        assert conn.closed
        assert "reset" in str(conn.error)
        emulator.enter_psm()
        await log.wait_for(lambda e: isinstance(e, PsmChanged))
        emulator.exit_psm()
        await log.wait_for(lambda e: isinstance(e, PsmChanged) and e.entered is False)
        await asyncio.sleep(0.05)
        assert RecordingTransport.told == ["reset", "psm:True", "psm:False"]


async def test_state_hook_gets_the_same_events(emulator: Emulator) -> None:
    seen: list[type[ModemEvent]] = []

    class Watcher:
        @hookimpl
        def sim7020_modem_state_changed(self, modem: Modem, event: ModemEvent) -> None:
            seen.append(type(event))

    pm = make_plugin_manager(load_entrypoints=False, plugins=[Watcher()])
    async with await connect(emulator, plugin_manager=pm) as modem:
        log = EventLog(modem)
        emulator.reboot()
        await log.wait_for(ready_after(log, ModuleReset))
    assert ModuleReset in seen
    assert seen[-len(log.kinds()) :] == log.kinds()  # same events, same order (hook also saw connect)


# ------------------------------------------------------------------ the port goes away


async def test_lost_port_is_reopened_with_backoff(emulator: Emulator) -> None:
    port = int(emulator.url.rsplit(":", 1)[1])  # type: ignore[attr-defined]
    modem = await connect(emulator, WATCHED)
    try:
        log = EventLog(modem)
        await emulator.stop()  # the TCP link drops
        await log.wait_for(
            lambda e: isinstance(e, StateChanged) and e.state is LinkState.RECOVERING, timeout=2
        )
        await asyncio.sleep(0.3)  # a few failed reopen attempts
        assert modem.state is LinkState.RECOVERING
        replacement = Emulator(registration_delay=0.02, imei="869714039999999")
        await replacement.start_tcp("127.0.0.1", port)
        try:
            await log.wait_for(
                lambda e: isinstance(e, StateChanged) and e.state is LinkState.READY, timeout=5
            )
            assert ModuleReset in log.kinds()  # connections of the old session are gone
            assert modem.info.imei == "869714039999999"
            assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]
        finally:
            await modem.close()
            await replacement.stop()
    finally:
        await modem.close()


async def test_lost_port_without_auto_recover_disconnects(emulator: Emulator) -> None:
    options = ModemOptions(
        registration_timeout=2.0, poll_interval=None, watchdog_interval=None, auto_recover=False
    )
    async with await connect(emulator, options) as modem:
        log = EventLog(modem)
        await emulator.stop()
        event = await log.wait_for(
            lambda e: isinstance(e, StateChanged) and e.state is LinkState.DISCONNECTED
        )
        assert "link" in event.reason


async def test_close_during_recovery_is_clean(emulator: Emulator) -> None:
    modem = await connect(emulator, WATCHED)
    log = EventLog(modem)
    emulator.stall(None)
    await log.wait_for(lambda e: isinstance(e, StateChanged) and e.state is LinkState.RECOVERING, timeout=2)
    await modem.close()
    assert modem.state is LinkState.CLOSED
    emulator.unstall()
    pending = [
        t for t in asyncio.all_tasks() if "reconnect" in t.get_name() or t.get_name() in ("watchdog", "poll")
    ]
    assert pending == []


async def test_broken_wake_callback_still_bounded(emulator: Emulator) -> None:
    def wake(modem: Modem) -> None:
        raise OSError("GPIO chip not found")

    options = ModemOptions(
        registration_timeout=2.0, poll_interval=None, watchdog_interval=None, wake=wake, psm_wake_timeout=0.2
    )
    async with await connect(emulator, options) as modem:
        log = EventLog(modem)
        emulator.enter_psm()
        await log.wait_for(lambda e: isinstance(e, PsmChanged))
        with pytest.raises(ModemAsleepError, match="did not wake"):
            await modem.command("AT+CSQ")


async def test_unanswered_commands_start_recovery_without_watchdog(emulator: Emulator) -> None:
    options = ModemOptions(
        registration_timeout=2.0,
        poll_interval=None,
        watchdog_interval=None,
        watchdog_max_failures=2,
        reconnect_min_delay=0.05,
    )
    async with await connect(emulator, options) as modem:
        log = EventLog(modem)
        emulator.stall(None)
        for _ in range(2):
            with pytest.raises(AtTimeoutError):
                await modem.command("AT+CSQ", timeout=0.1)
        await log.wait_for(
            lambda e: isinstance(e, StateChanged) and e.state is LinkState.RECOVERING, timeout=1
        )
        emulator.unstall()
        await log.wait_for(lambda e: isinstance(e, StateChanged) and e.state is LinkState.READY, timeout=5)
        assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]


async def test_background_traffic_stops_while_psm_is_enabled() -> None:
    emu = Emulator(
        registration_delay=0.02,
        psm_timings=PsmTimings(auto=True, inactivity_s=0.1, scale=0.001),
    )
    host, port = await emu.start_tcp("127.0.0.1", 0)
    options = ModemOptions(registration_timeout=2.0, poll_interval=0.05, watchdog_interval=0.05)
    try:
        async with await Modem.connect(f"socket://{host}:{port}", options=options) as modem:
            log = EventLog(modem)
            await modem.set_psm(True, tau_s=3600, active_s=2)  # the module sleeps ~0.1 s after the last AT
            await log.wait_for(lambda e: isinstance(e, PsmChanged) and e.entered is True, timeout=2)
            assert modem.state is LinkState.ASLEEP
            assert log.states() == ["asleep"]
    finally:
        await emu.stop()


async def test_listen_delegates_to_the_transport(emulator: Emulator) -> None:
    pm = make_plugin_manager(load_entrypoints=False, plugins=[RecordingPlugin()])
    async with await connect(emulator, plugin_manager=pm) as modem:
        with pytest.raises(UnsupportedError, match="'recording' has no server mode"):
            await modem.listen(5678, transport="recording")


async def test_native_connection_owner_learns_of_reboot(emulator: Emulator) -> None:
    async with UdpPeer() as peer, await connect(emulator) as modem:
        log = EventLog(modem)
        conn = await modem.open_connection("udp", "127.0.0.1", peer.port)
        closed = asyncio.Event()
        conn.add_close_callback(lambda c: closed.set())
        await conn.send(b"before")
        assert (await peer.next(2))[0] == b"before"
        emulator.reboot()
        async with asyncio.timeout(3):
            await closed.wait()  # told right when the reboot is recognised
        assert conn.closed
        assert "reset" in str(conn.error)
        await log.wait_for(ready_after(log, ModuleReset))
        again = await modem.open_connection("udp", "127.0.0.1", peer.port)  # the modem is usable again
        await again.send(b"after")
        assert (await peer.next(2))[0] == b"after"
        await again.close()


@pytest.mark.parametrize("with_wake", [True, False])
async def test_connect_to_a_sleeping_module(emulator: Emulator, with_wake: bool) -> None:
    emulator.enter_psm()  # asleep before the driver starts: the UART is dead
    calls: list[Modem] = []

    def wake(modem: Modem) -> None:
        calls.append(modem)
        emulator.exit_psm()

    options = ModemOptions(
        registration_timeout=2.0, poll_interval=None, watchdog_interval=None, wake=wake if with_wake else None
    )
    if not with_wake:
        with pytest.raises(TransportError, match="no answer to AT"):
            await connect(emulator, options)
        return
    async with await connect(emulator, options) as modem:
        assert modem.state is LinkState.READY
        assert len(calls) == 1
