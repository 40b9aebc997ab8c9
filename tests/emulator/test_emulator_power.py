"""PSM: entering and leaving, the dead UART, timers, RETENTION."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sim7020_core.emulator import Emulator, PsmTimings
from sim7020_core.emulator.core import t3324_seconds, t3412_seconds
from sim7020_core.emulator.peers import UdpPeer
from tests.emulator.conftest import WAIT, TcpHost, framed

UDP_SERVER = ("117.131.85.139", 5004)


async def _udp_socket(host: TcpHost, emu: Emulator, peer: UdpPeer) -> tuple[str, int]:
    emu.route(*UDP_SERVER, to=peer.address)
    await host.cmd("AT+CSOC=1,2,1", "+CSOC: 0", "OK")
    await host.cmd(f'AT+CSOCON=0,{UDP_SERVER[1]},"{UDP_SERVER[0]}"', "OK")
    await host.cmd('AT+CSOSEND=0,0,"hi"', "OK")
    _, addr = await peer.next()
    return addr


async def test_psm_with_retention_keeps_the_socket(host: TcpHost, emu: Emulator, udp_peer: UdpPeer) -> None:
    await host.cmd("AT+RETENTION=1", "OK")
    module_addr = await _udp_socket(host, emu, udp_peer)
    emu.enter_psm()
    await host.expect(framed('+CPSMSTATUS: "ENTER PSM"'))
    # asleep: the UART is dead, and downlink data waits for the wake-up
    await host.send("AT")
    udp_peer.send(b"123456", module_addr)
    await host.quiet()
    emu.exit_psm()
    await host.expect(framed("+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"', "+CSONMI: 0,12,313233343536"))
    await host.cmd('AT+CSOSEND=0,0,"Hello World!!!"', "OK")
    assert (await udp_peer.next())[0] == b"Hello World!!!"


async def test_psm_without_retention_loses_sockets(host: TcpHost, emu: Emulator, udp_peer: UdpPeer) -> None:
    await _udp_socket(host, emu, udp_peer)
    emu.enter_psm()
    await host.expect(framed('+CPSMSTATUS: "ENTER PSM"'))
    emu.exit_psm()
    await host.expect(framed("+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"'))
    await host.cmd("AT+CSOSTATUS=0", "+CSOSTATUS: 0,0", "OK")
    await host.cmd('AT+CSOSEND=0,0,"x"', "ERROR")
    await host.cmd("AT+CSOC=1,2,1", "+CSOC: 0", "OK")  # the id is free again


async def test_cpsmstatus_urcs_can_be_switched_off(host: TcpHost, emu: Emulator) -> None:
    await host.cmd("AT+CPSMSTATUS=0", "OK")
    emu.enter_psm()
    emu.exit_psm()
    await host.expect(framed("+CPIN: READY"))  # the SIM's URC is not a PSM status
    await host.quiet()
    await host.cmd("AT", "OK")


async def test_enter_and_exit_are_idempotent(host: TcpHost, emu: Emulator) -> None:
    emu.exit_psm()  # awake already: nothing
    emu.enter_psm()
    emu.enter_psm()
    await host.expect(framed('+CPSMSTATUS: "ENTER PSM"'))
    emu.exit_psm()
    emu.exit_psm()
    await host.expect(framed("+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"'))
    await host.quiet()


@pytest.fixture
async def fast_psm() -> AsyncIterator[tuple[Emulator, TcpHost]]:
    emu = Emulator(registration_delay=0, psm_timings=PsmTimings(inactivity_s=0.05, scale=0.01))
    h = await TcpHost.connect(await emu.start_tcp())
    await h.send("ATE0")
    await h.read_until(b"OK\r\n")
    try:
        yield emu, h
    finally:
        await h.close()
        await emu.stop()


async def test_auto_psm_after_active_timer_and_wake_on_tau(fast_psm: tuple[Emulator, TcpHost]) -> None:
    _emu, h = fast_psm
    # T3324 = 2 s x 1 (scaled: 20 ms), T3412 = 2 s x 10 (scaled: 200 ms)
    await h.cmd('AT+CPSMS=1,,,"01101010","00000001"', "OK")
    await h.expect(framed('+CPSMSTATUS: "ENTER PSM"'), timeout=WAIT)
    await h.send("AT")  # dead UART
    await h.expect(framed("+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"'), timeout=WAIT)
    await h.cmd("AT+CPSMS=0", "OK", '+CPSMSTATUS: "EXIT PSM"')
    await h.quiet(0.3)  # PSM off: stays awake


async def test_deactivated_active_timer_never_sleeps(fast_psm: tuple[Emulator, TcpHost]) -> None:
    _, h = fast_psm
    await h.cmd('AT+CPSMS=1,,,"01101010","11100000"', "OK")
    await h.quiet(0.3)


async def test_activity_postpones_sleep(fast_psm: tuple[Emulator, TcpHost]) -> None:
    _, h = fast_psm
    await h.cmd('AT+CPSMS=1,,,"01101010","00000101"', "OK")  # 10 s scaled: 100 ms, + 50 ms inactivity
    for _ in range(4):
        await asyncio.sleep(0.08)
        await h.cmd("AT", "OK")
    await h.expect(framed('+CPSMSTATUS: "ENTER PSM"'), timeout=WAIT)


async def test_wake_on_uart_when_modelled() -> None:
    emu = Emulator(registration_delay=0, psm_timings=PsmTimings(wake_on_uart=True))
    try:
        h = await TcpHost.connect(await emu.start_tcp())
        await h.send("ATE0")
        await h.read_until(b"OK\r\n")
        emu.enter_psm()
        await h.expect(framed('+CPSMSTATUS: "ENTER PSM"'))
        await h.send("AT")  # wakes the module; this line itself is lost
        await h.expect(framed("+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"'))
        await h.quiet()
        await h.cmd("AT", "OK")
        await h.close()
    finally:
        await emu.stop()


@pytest.mark.parametrize(
    ("bits", "seconds"),
    [
        ("01000111", 7 * 36000.0),
        ("00100001", 3600.0),
        ("01100101", 10.0),
        ("10000010", 60.0),
        ("11100000", None),
    ],
)
def test_t3412_decoding(bits: str, seconds: float | None) -> None:
    assert t3412_seconds(bits) == seconds


@pytest.mark.parametrize(
    ("bits", "seconds"),
    [("00000000", 0.0), ("00000101", 10.0), ("00100001", 60.0), ("01000010", 720.0), ("11100000", None)],
)
def test_t3324_decoding(bits: str, seconds: float | None) -> None:
    assert t3324_seconds(bits) == seconds
