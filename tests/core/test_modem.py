"""Modem manager end to end against the emulator (real AT bytes over TCP and a pty).

Fixtures here (``emulator``, ``modem``) are local to the modem tests; fault and recovery tests are in
test_recovery.py, the CLI in test_cli_modem.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest

from sim7020_core import const
from sim7020_core.at.engine import Urc
from sim7020_core.emulator import Emulator
from sim7020_core.events import ModemEvent, StatusChanged
from sim7020_core.exceptions import (
    AtCommandError,
    CommandNotAllowedError,
    NotRegisteredError,
    PluginError,
    Sim7020Error,
    TransportError,
)
from sim7020_core.hookspecs import hookimpl
from sim7020_core.models import LinkState, Registration
from sim7020_core.modem import Modem, ModemOptions
from sim7020_core.plugins import make_plugin_manager
from sim7020_core.psm import decode_t3324, decode_t3412

HOSTS = {"example.com": "127.0.0.1", "multi.example": ["127.0.0.2", "127.0.0.3"]}
FAST = ModemOptions(registration_timeout=3.0, poll_interval=None, watchdog_interval=None)


def url_of(emu: Emulator, address: tuple[str, int]) -> str:
    return f"socket://{address[0]}:{address[1]}"


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(hosts=HOSTS, transcript=True, time_scale=0.01, registration_delay=0.02)
    emu.url = url_of(emu, await emu.start_tcp("127.0.0.1", 0))  # type: ignore[attr-defined]
    yield emu
    await emu.stop()


@pytest.fixture
async def modem(emulator: Emulator) -> AsyncIterator[Modem]:
    m = await Modem.connect(emulator.url, options=FAST)  # type: ignore[attr-defined]
    yield m
    await m.close()


def sent_commands(emu: Emulator) -> list[str]:
    """Command lines the emulated module received."""
    data = b"".join(chunk for direction, chunk in emu.transcript if direction == "rx")
    return [line.decode(errors="replace").strip() for line in data.split(b"\r") if line.strip()]


# ------------------------------------------------------------------ connect / identity / status


async def test_connect_reads_identity(emulator: Emulator, modem: Modem) -> None:
    info = modem.info
    assert info.manufacturer == emulator.manufacturer
    assert info.model == emulator.model
    assert info.revision == emulator.revision
    assert (info.imei, info.imsi, info.iccid) == (emulator.imei, emulator.imsi, emulator.iccid)
    assert modem.state is LinkState.READY


async def test_connect_initialises_session(emulator: Emulator, modem: Modem) -> None:
    sent = sent_commands(emulator)
    assert sent[0] == "AT"
    assert "ATE0" in sent
    assert "AT+CMEE=1" in sent
    assert emulator.state.echo is False


async def test_status_after_connect(emulator: Emulator, modem: Modem) -> None:
    st = modem.status
    assert st.registration == Registration.HOME.value
    assert st.attached is True
    assert st.pdn_active is True
    assert st.apn == "iot.example"
    assert st.ip == "10.250.0.213"  # first 4 of the 8 octets of CGCONTRDP
    assert st.operator == "CHN-UNICOM"
    assert (st.csq, st.rssi_dbm) == (20, -73)
    assert st.cell.pci is not None
    assert st.cell.band is not None
    assert st.cell.rsrp_dbm is not None


async def test_refresh_reports_signal_change_to_subscribers(emulator: Emulator, modem: Modem) -> None:
    events: list[ModemEvent] = []
    unsubscribe = modem.subscribe(events.append)
    emulator.set_signal(csq=5)
    status = await modem.refresh()
    assert (status.csq, status.rssi_dbm) == (5, -103)
    assert modem.status == status
    assert [e.status.csq for e in events if isinstance(e, StatusChanged)] == [5]
    unsubscribe()
    emulator.set_signal(csq=6)
    await modem.refresh()
    assert len([e for e in events if isinstance(e, StatusChanged)]) == 1


async def test_refresh_without_change_emits_nothing(modem: Modem) -> None:
    events: list[ModemEvent] = []
    modem.subscribe(events.append)
    await modem.refresh()
    assert events == []


async def test_failing_subscriber_does_not_break_others(emulator: Emulator, modem: Modem) -> None:
    seen: list[type[ModemEvent]] = []

    def broken(event: ModemEvent) -> None:
        raise RuntimeError("boom")

    modem.subscribe(broken)
    modem.subscribe(lambda e: seen.append(type(e)))
    emulator.set_signal(csq=9)
    await modem.refresh()
    assert seen == [StatusChanged]


async def test_detach_then_attach_shows_in_status(emulator: Emulator, modem: Modem) -> None:
    events: list[ModemEvent] = []
    modem.subscribe(events.append)
    emulator.detach()
    status = await modem.refresh()
    assert status.attached is False
    assert status.pdn_active is False
    assert status.ip is None
    assert status.registration == Registration.NOT_REGISTERED.value
    emulator.attach()
    status = await modem.refresh()
    assert status.attached is True
    assert status.registration == Registration.HOME.value
    regs = [e.status.registration for e in events if isinstance(e, StatusChanged)]
    assert "not_registered" in regs
    assert regs[-1] == "home"


async def test_registration_urc_updates_status(emulator: Emulator, modem: Modem) -> None:
    changed = asyncio.Event()
    modem.subscribe(lambda e: changed.set() if e.status.registration == "not_registered" else None)
    emulator.detach()  # the module sends +CEREG: 0 (CEREG=4 was enabled at init)
    async with asyncio.timeout(2):
        await changed.wait()
    assert modem.status.registration == "not_registered"


async def test_async_with_closes(emulator: Emulator) -> None:
    async with await Modem.connect(emulator.url, options=FAST) as m:  # type: ignore[attr-defined]
        assert m.state is LinkState.READY
    assert m.closed
    assert m.link is None
    with pytest.raises(TransportError, match="closed"):
        await m.command("AT+CSQ")
    await m.close()  # idempotent


async def test_connect_over_pty() -> None:
    emu = Emulator()
    try:
        path = await emu.start_pty()
        async with await Modem.connect(path, options=FAST) as m:
            assert m.info.imei == emu.imei
            assert (await m.command("AT+CSQ")) == ["+CSQ: 20,0"]
    finally:
        await emu.stop()


async def test_connect_to_nothing_is_a_transport_error(monkeypatch: pytest.MonkeyPatch) -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    with pytest.raises(TransportError, match=str(port)):
        await Modem.connect(f"socket://127.0.0.1:{port}", options=FAST)


async def test_silent_peer_fails_connect_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(const, "SYNC_ATTEMPT_TIMEOUT", 0.05)
    monkeypatch.setattr(const, "MODEM_SYNC_ATTEMPTS", 3)
    clients: list[asyncio.StreamWriter] = []  # keep the connection open, say nothing

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        clients.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(TransportError, match="no answer to AT"):
            await Modem.connect(f"socket://127.0.0.1:{port}", options=FAST)
    finally:
        for writer in clients:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_not_registered_is_reported_not_fatal() -> None:
    emu = Emulator(registration_delay=30.0)
    try:
        url = url_of(emu, await emu.start_tcp("127.0.0.1", 0))
        options = ModemOptions(registration_timeout=0.3, poll_interval=None, watchdog_interval=None)
        async with await Modem.connect(url, options=options) as m:
            assert m.state is LinkState.READY
            assert m.status.registration == Registration.SEARCHING.value
            assert m.status.attached is False
    finally:
        await emu.stop()


# ------------------------------------------------------------------ raw commands


async def test_command_returns_info_lines(modem: Modem) -> None:
    assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]
    assert await modem.command("AT+CGATT?", timeout=2.0) == ["+CGATT: 1"]


async def test_command_error_then_still_usable(modem: Modem) -> None:
    with pytest.raises(AtCommandError) as info:
        await modem.command("AT+NOSUCHTHING?")  # a read passes the raw-AT allow-list; the module refuses it
    assert info.value.command == "AT+NOSUCHTHING?"
    assert await modem.command("AT") == []


@pytest.mark.parametrize(
    "command",
    [
        "ATE1",
        "ate1",
        "AT+IPR=9600",
        "AT+CFUN=0",
        "AT+CFUN=1,1",
        "AT&F",
        "ATZ",
        "AT+CMEE=0",
        "AT+CMEE=2",
        "AT+CIPMODE=1",
        "AT+CIPCHAN",
        "AT+CSQ;E1",
        "AT + IPR = 9600",
    ],
)
async def test_unsafe_commands_refused_and_not_sent(emulator: Emulator, modem: Modem, command: str) -> None:
    before = len(sent_commands(emulator))
    with pytest.raises(CommandNotAllowedError, match="allow_unsafe"):
        await modem.command(command)
    await modem.command("AT")  # a marker: everything before it has reached the module
    assert sent_commands(emulator)[before:] == ["AT"]


@pytest.mark.parametrize("command", ["AT+CMEE=1", "AT+CFUN?", "AT+IPR?", "AT+CIPMODE?", "ATI"])
async def test_safe_lookalikes_allowed(modem: Modem, command: str) -> None:
    await modem.command(command)


async def test_allow_unsafe_sends_and_session_survives_echo(emulator: Emulator, modem: Modem) -> None:
    await modem.command("ATE1", allow_unsafe=True)
    assert emulator.state.echo is True
    assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]  # the engine drops the echo


@pytest.mark.parametrize("bad", ["", "   ", "CSQ", "AT+CSQ\rAT", "AT+CSQ\nAT+CFUN=0", "AT+CSODSEND=0,1\x1a"])
async def test_malformed_command_rejected(modem: Modem, bad: str) -> None:
    with pytest.raises(ValueError, match="AT command"):
        await modem.command(bad)


# ------------------------------------------------------------------ DNS and ping


async def test_resolve_name(modem: Modem) -> None:
    assert await modem.resolve("example.com") == ["127.0.0.1"]
    assert await modem.resolve("multi.example") == ["127.0.0.2", "127.0.0.3"]


async def test_resolve_ip_literal_skips_dns(emulator: Emulator, modem: Modem) -> None:
    assert await modem.resolve("10.1.2.3") == ["10.1.2.3"]
    assert await modem.resolve("::1") == ["::1"]
    assert not [c for c in sent_commands(emulator) if "CDNSGIP" in c]


async def test_resolve_unknown_host_names_it(modem: Modem) -> None:
    with pytest.raises(Sim7020Error, match=r"'no-such\.example'.*error 8"):
        await modem.resolve("no-such.example")
    assert await modem.resolve("example.com") == ["127.0.0.1"]


async def test_network_services_refused_without_service(emulator: Emulator, modem: Modem) -> None:
    emulator.detach()
    await modem.refresh()
    with pytest.raises(NotRegisteredError, match=r"resolve 'example\.com'.*not_registered"):
        await modem.resolve("example.com")
    with pytest.raises(NotRegisteredError, match="ping"):
        await modem.ping("10.0.0.1", count=1)
    with pytest.raises(NotRegisteredError, match=r"connect to 127\.0\.0\.1:9"):
        await modem.open_connection("udp", "127.0.0.1", 9)
    emulator.attach()  # the stale "not registered" is re-checked, not trusted
    assert await modem.resolve("example.com") == ["127.0.0.1"]


@pytest.mark.parametrize("bad", ["", 'evil"host', "two words", "a\r\nAT+CFUN=0"])
async def test_resolve_rejects_bad_names(modem: Modem, bad: str) -> None:
    with pytest.raises(ValueError, match="host"):
        await modem.resolve(bad)


async def test_ping_reachable(modem: Modem) -> None:
    replies = await modem.ping("example.com", count=3, timeout=1.0)
    assert [r.seq for r in replies] == [1, 2, 3]
    assert all(r.ip == "127.0.0.1" for r in replies)
    assert all(r.rtt_ms is not None and r.rtt_ms % 100 == 0 and r.ttl > 0 for r in replies)


async def test_ping_unreachable_reports_timeouts(modem: Modem) -> None:
    replies = await modem.ping("10.9.9.9", count=2, timeout=0.5)
    assert [(r.seq, r.ip, r.rtt_ms, r.ttl) for r in replies] == [
        (1, "10.9.9.9", None, 0),
        (2, "10.9.9.9", None, 0),
    ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"count": 0}, "count"),
        ({"count": 101}, "count"),
        ({"size": -1}, "size"),
        ({"timeout": 0.01}, "timeout"),
    ],
)
async def test_ping_rejects_bad_arguments(modem: Modem, kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        await modem.ping("127.0.0.1", **kwargs)  # type: ignore[arg-type]


# ------------------------------------------------------------------ APN and PSM settings


async def test_set_apn_follows_note_3_2(emulator: Emulator, modem: Modem) -> None:
    await modem.set_apn("3GNET")
    sent = sent_commands(emulator)
    start = sent.index("AT+CFUN=0")
    assert sent[start : start + 3] == ["AT+CFUN=0", 'AT*MCGDEFCONT="IP","3GNET"', "AT+CFUN=1"]
    assert modem.status.apn == "3GNET"
    assert modem.status.registration == Registration.HOME.value
    assert modem.state is LinkState.READY


async def test_set_apn_with_credentials(emulator: Emulator, modem: Modem) -> None:
    await modem.set_apn("corp", pdp_type="ipv4v6", username="u", password="p")
    assert 'AT*MCGDEFCONT="IPV4V6","corp","u","p"' in sent_commands(emulator)


@pytest.mark.parametrize(
    ("args", "match"),
    [(('a"b',), "apn"), (("apn", "X25"), "pdp_type"), (("apn", "IP", "user", ""), "both")],
)
async def test_set_apn_rejects_bad_input_without_touching_radio(
    emulator: Emulator, modem: Modem, args: tuple[str, ...], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        await modem.set_apn(*args)
    assert "AT+CFUN=0" not in sent_commands(emulator)


async def test_set_psm_encodes_timers(emulator: Emulator, modem: Modem) -> None:
    await modem.set_psm(True, tau_s=3600, active_s=61)
    line = (await modem.command("AT+CPSMS?"))[0]
    fields = line.split(":", 1)[1].split(",")
    assert fields[0].strip() == "1"
    assert decode_t3412(fields[3]) == 3600
    assert decode_t3324(fields[4]) == 62  # 61 s rounds up to 31 x 2 s
    assert modem.status.psm.enabled is True
    assert modem.status.psm.tau_s == 3600
    await modem.set_psm(False)
    assert modem.status.psm.enabled is False


async def test_set_psm_rejects_unencodable(modem: Modem) -> None:
    with pytest.raises(ValueError, match="active time"):
        await modem.set_psm(True, tau_s=3600, active_s=10**6)


def test_options_validate() -> None:
    with pytest.raises(ValueError, match="psm_policy"):
        ModemOptions(psm_policy="sleep")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="poll_interval"):
        ModemOptions(poll_interval=0)


# ------------------------------------------------------------------ polling, plugins


async def test_polling_reports_changes_without_refresh(emulator: Emulator) -> None:
    options = ModemOptions(registration_timeout=2.0, poll_interval=0.05, watchdog_interval=None)
    async with await Modem.connect(emulator.url, options=options) as m:  # type: ignore[attr-defined]
        changed = asyncio.Event()
        m.subscribe(lambda e: changed.set() if isinstance(e, StatusChanged) and e.status.csq == 3 else None)
        emulator.set_signal(csq=3)
        async with asyncio.timeout(2):
            await changed.wait()
        assert m.status.rssi_dbm == -107


async def test_unknown_transport_names_the_available_ones(modem: Modem) -> None:
    with pytest.raises(PluginError, match=r"no transport named 'carrier-pigeon'.*available"):
        await modem.open_connection("udp", "127.0.0.1", 5683, transport="carrier-pigeon")


async def test_open_connection_rejects_bad_port(modem: Modem) -> None:
    with pytest.raises(ValueError, match="port"):
        await modem.open_connection("udp", "127.0.0.1", 0)


async def test_plugin_urc_handlers_are_installed(emulator: Emulator) -> None:
    seen: list[str] = []

    class Listener:
        @hookimpl
        def sim7020_register_urc_handlers(self, modem: Modem) -> dict[str, Callable[[Urc], None]]:
            return {"+CEREG": lambda urc: seen.append(urc.line)}

    pm = make_plugin_manager(load_entrypoints=False, plugins=[Listener()])
    async with await Modem.connect(emulator.url, options=FAST, plugin_manager=pm) as m:  # type: ignore[attr-defined]
        assert m.plugins is pm
        emulator.detach()
        await m.refresh()  # a round trip: the URC has arrived by now
        assert seen
        assert seen[-1].startswith("+CEREG: 0")


async def test_concurrent_lookups_each_get_their_own_answer(modem: Modem) -> None:
    results = await asyncio.gather(
        modem.resolve("example.com"),
        modem.resolve("multi.example"),
        modem.resolve("no-such.example"),
        modem.resolve("example.com"),
        return_exceptions=True,
    )
    assert results[0] == ["127.0.0.1"]
    assert results[1] == ["127.0.0.2", "127.0.0.3"]
    assert isinstance(results[2], Sim7020Error)
    assert "no-such.example" in str(results[2])
    assert results[3] == ["127.0.0.1"]
