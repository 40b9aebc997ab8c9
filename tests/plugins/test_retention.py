"""AT+RETENTION as modem-level state: Modem.retention / set_retention / read_retention, and the transports
(native, cip) that decide by it whether their connections survive PSM. End to end against the emulator."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.connection import Connection
from sim7020_core.emulator import Emulator
from sim7020_core.emulator.base import ModemContext, ParsedCommand
from sim7020_core.emulator.peers import UdpPeer
from sim7020_core.events import ModemEvent, ModuleReset
from sim7020_core.exceptions import (
    AtCommandError,
    CommandNotAllowedError,
    ConnectionClosedError,
    Sim7020Error,
)
from sim7020_core.models import LinkState
from sim7020_core.modem import Modem
from sim7020_core.modem.services import parse_retention

from .cip_support import sent_commands
from .conftest import WAIT


def echo(data: bytes) -> bytes:
    """A peer's answer: the datagram itself."""
    return data


async def _psm_episode(modem: Modem, emulator: Emulator, *conns: Connection) -> None:
    """The module sleeps (PSM) and wakes again; returns once the transports have been told of both."""
    emulator.enter_psm()
    async with asyncio.timeout(WAIT):
        while not (modem.state is LinkState.ASLEEP or all(c.closed for c in conns)):
            await asyncio.sleep(0.01)
    emulator.exit_psm()
    async with asyncio.timeout(WAIT):
        while modem.state is not LinkState.READY:
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.1)  # the transports' on_psm tasks have run


async def _assert_survived(conn: Connection) -> None:
    assert not conn.closed
    await conn.send(b"after psm")
    assert await conn.receive(timeout=WAIT) == b"after psm"


async def _assert_lost(conn: Connection) -> None:
    assert conn.closed
    with pytest.raises(ConnectionClosedError):
        await conn.send(b"after psm")


def _retention_commands(emulator: Emulator) -> list[str]:
    return [c for c in sent_commands(emulator) if "RETENTION" in c.upper()]


# ------------------------------------------------------------------------------------------ the modem


async def test_retention_is_unknown_until_set_or_read(modem: Modem, emulator: Emulator) -> None:
    assert modem.retention is None
    assert _retention_commands(emulator) == []  # connecting does not ask


@pytest.mark.parametrize("value", [True, False])
async def test_set_retention_reaches_the_module_and_is_recorded(
    modem: Modem, emulator: Emulator, value: bool
) -> None:
    await modem.set_retention(value)
    assert modem.retention is value
    assert emulator.state.retention == int(value)
    await modem.set_retention(value)  # already known: nothing sent again
    assert _retention_commands(emulator) == [f"AT+RETENTION={int(value)}"]
    await modem.set_retention(not value)
    assert modem.retention is (not value)
    assert emulator.state.retention == int(not value)


@pytest.mark.parametrize("stored", [0, 1])
async def test_read_retention_reflects_the_module(modem: Modem, emulator: Emulator, stored: int) -> None:
    emulator.state.retention = stored  # e.g. set by an earlier session (the module keeps it in NV)
    assert await modem.read_retention() is bool(stored)
    assert modem.retention is bool(stored)
    assert _retention_commands(emulator) == ["AT+RETENTION?"]


async def test_firmware_without_retention_reads_as_off(modem: Modem, emulator: Emulator) -> None:
    def unsupported(ctx: ModemContext, cmd: ParsedCommand) -> None:
        ctx.error()

    emulator.registry.register("+RETENTION", unsupported, replace=True)
    assert await modem.read_retention() is False
    assert modem.retention is False
    with pytest.raises(AtCommandError):  # setting it is a real error: the caller asked for something
        await modem.set_retention(True)
    assert modem.retention is False


async def test_an_unexpected_answer_is_a_clear_error_and_records_nothing(
    modem: Modem, emulator: Emulator
) -> None:
    def odd(ctx: ModemContext, cmd: ParsedCommand) -> None:
        ctx.reply("+RETENTION: 7")
        ctx.ok()

    emulator.registry.register("+RETENTION", odd, replace=True)
    with pytest.raises(Sim7020Error, match=r"AT\+RETENTION\?.*\+RETENTION: 7"):
        await modem.read_retention()
    assert modem.retention is None


async def test_raw_retention_commands_keep_the_recorded_value_true(modem: Modem, emulator: Emulator) -> None:
    await modem.set_retention(False)
    with pytest.raises(CommandNotAllowedError, match=r"Modem\.set_retention\(\)"):
        await modem.command("AT+RETENTION=1")  # the library models it: refused without allow_unsafe
    await modem.command("AT+RETENTION=1", allow_unsafe=True)
    assert modem.retention is True
    emulator.state.retention = 0  # changed behind our back: a raw read notices
    assert await modem.command("AT+RETENTION?") == ["+RETENTION: 0"]
    assert modem.retention is False
    await modem.command("AT+RETENTION=?")  # the test form changes nothing
    assert modem.retention is False


async def test_a_module_reboot_makes_retention_unknown_again(modem: Modem, emulator: Emulator) -> None:
    await modem.set_retention(True)
    rebooted: asyncio.Queue[ModemEvent] = asyncio.Queue()
    unsubscribe = modem.subscribe(lambda e: rebooted.put_nowait(e) if isinstance(e, ModuleReset) else None)
    emulator.reboot()
    async with asyncio.timeout(WAIT):
        await rebooted.get()
        while modem.state is not LinkState.READY:
            await asyncio.sleep(0.01)
    unsubscribe()
    assert modem.retention is None
    assert await modem.read_retention() is True  # this module keeps the setting in NV across the reset
    await modem.reboot()  # a requested reboot too
    assert modem.retention is None


# ------------------------------------------------------------------------------------------ cip


@pytest.mark.parametrize("retention", [True, False])
async def test_cip_link_across_psm_follows_set_retention_without_native(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer, retention: bool
) -> None:
    await modem.set_retention(retention)
    udp_peer.reply = echo
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    await _psm_episode(modem, emulator, conn)
    assert "native" not in modem.transports
    if retention:
        await _assert_survived(conn)
    else:
        await _assert_lost(conn)


async def test_cip_reads_retention_the_module_already_has(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer
) -> None:
    """Nobody set it in this session; the module has it (NV): opening a link reads it, PSM keeps the link."""
    emulator.state.retention = 1
    udp_peer.reply = echo
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="cip")
    assert modem.retention is True
    await _psm_episode(modem, emulator, conn)
    await _assert_survived(conn)


# ------------------------------------------------------------------------------------------ native


@pytest.mark.parametrize("option", [True, False])
async def test_native_retention_option_is_the_modems_setting(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer, option: bool
) -> None:
    """The option sets the modem's state; a later set_retention on the modem is what native obeys at PSM."""
    udp_peer.reply = echo
    conn = await modem.open_connection(
        "udp", "127.0.0.1", udp_peer.port, transport="native", retention=option
    )
    assert modem.retention is option
    assert emulator.state.retention == int(option)
    await modem.set_retention(not option)
    assert emulator.state.retention == int(not option)
    await _psm_episode(modem, emulator, conn)
    if not option:  # retention switched on through the modem
        await _assert_survived(conn)
    else:
        await _assert_lost(conn)


async def test_native_without_the_option_reads_the_modules_retention(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer
) -> None:
    emulator.state.retention = 1
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    assert modem.retention is True
    await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    assert _retention_commands(emulator) == ["AT+RETENTION?"]  # read once, then known
    await conn.close()


# ------------------------------------------------------------------------------------------ parsing


@given(
    value=st.sampled_from(["0", "1"]),
    space=st.sampled_from(["", " ", "  "]),
    extra=st.sampled_from(["", ",0", ",5"]),
    head=st.sampled_from(["+RETENTION", "+retention"]),
    before=st.lists(st.sampled_from(["", "+CSQ: 20,0", "RETENTION"]), max_size=2),
)
def test_parse_retention_reads_the_first_field(
    value: str, space: str, extra: str, head: str, before: list[str]
) -> None:
    assert parse_retention([*before, f"{head}:{space}{value}{extra}"]) is (value == "1")


@given(st.lists(st.text(max_size=20).filter(lambda t: "RETENTION" not in t.upper()), max_size=3))
def test_parse_retention_without_its_line_raises(lines: list[str]) -> None:
    with pytest.raises(Sim7020Error, match="AT\\+RETENTION\\?"):
        parse_retention(lines)
