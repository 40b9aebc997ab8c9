"""The fault API a test uses to make the module misbehave the way real ones do."""

from __future__ import annotations

import asyncio

import pytest

from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer
from tests.emulator.conftest import TcpHost, framed


async def test_reboot_loses_state_and_sends_boot_urcs(
    host: TcpHost, emu: Emulator, tcp_server: TcpPeer
) -> None:
    emu.route("116.247.119.165", 5245, to=tcp_server.address)
    await host.cmd("AT+CMEE=2", "OK")
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
    await host.cmd('AT+CSOCON=0,5245,"116.247.119.165"', "OK")
    reader, _ = await tcp_server.accept()
    emu.reboot()
    await host.expect(framed("RDY", "+CPIN: READY"))
    async with asyncio.timeout(5):  # the real connection went away (a reset: the module just vanished)
        with pytest.raises(ConnectionResetError):
            await reader.read()
    await asyncio.sleep(0.02)
    await host.send("AT+CSOSTATUS=0")  # echo is back on
    await host.expect(b"AT+CSOSTATUS=0\r" + framed("+CSOSTATUS: 0,0", "OK"))
    await host.send("AT+CSOC=1,1,9")  # CMEE back to 0
    await host.expect(b"AT+CSOC=1,1,9\r" + framed("ERROR"))


async def test_cfun_1_1_reboots(host: TcpHost) -> None:
    await host.cmd("AT+CFUN=1,1", "OK")
    await host.expect(framed("RDY", "+CPIN: READY"))
    await host.send("AT")
    await host.expect(b"AT\r" + framed("OK"))


async def test_uart_is_dead_while_booting(host: TcpHost, emu: Emulator) -> None:
    emu.reboot()
    await host.send("AT")  # lost: the module is still booting
    await host.expect(framed("RDY", "+CPIN: READY"))
    await host.quiet()


async def test_sim_busy_at_boot(host: TcpHost, emu: Emulator) -> None:
    emu.sim_busy_at_boot(2)
    await host.cmd("AT+CMEE=2", "OK")
    await host.cmd("AT+CPIN?", "+CME ERROR: SIM busy")
    await host.cmd("AT+CSQ", "+CSQ: 20,0", "OK")  # not a SIM command
    await host.cmd("AT+CIMI", "+CME ERROR: SIM busy")
    await host.cmd("AT+CPIN?", "+CPIN: READY", "OK")
    emu.reboot()  # re-armed at every boot
    await host.expect(framed("RDY", "+CPIN: READY"))
    await host.send("AT+CMEE=1")
    await host.read_until(b"OK\r\n")
    await host.send("AT+CCID")
    await host.expect(b"AT+CCID\r" + framed("+CME ERROR: 14"))
    emu.sim_busy_at_boot(0)
    await host.send("AT+CCID")
    await host.expect(b"AT+CCID\r" + framed(emu.iccid, "OK"))


async def test_drop_next_response_loses_exactly_one_answer(host: TcpHost, emu: Emulator) -> None:
    emu.drop_next_response()
    await host.send("AT+CMEE=1")  # runs, but its OK is lost
    await host.quiet()
    await host.cmd("AT+CSOC=9,9,9", "+CME ERROR: 50")  # the setting took effect
    await host.cmd("AT", "OK")


async def test_stall_and_unstall(host: TcpHost, emu: Emulator) -> None:
    emu.stall()
    await host.send("AT")
    await host.quiet()
    emu.unstall()
    await host.cmd("AT", "OK")
    emu.stall(0.2)
    await host.send("AT")
    await host.quiet(0.1)
    await asyncio.sleep(0.2)
    await host.cmd("AT", "OK")


async def test_stall_drops_urcs_too(host: TcpHost, emu: Emulator) -> None:
    emu.stall()
    emu.enter_psm()
    emu.exit_psm()
    await host.quiet()
    emu.unstall()
    await host.cmd("AT", "OK")


async def test_inject_garbage_then_normal_answers(host: TcpHost, emu: Emulator) -> None:
    emu.inject_garbage(b"+CRE\xef\xbfb\r\n")
    await host.expect(b"+CRE\xef\xbfb\r\n")
    await host.cmd("AT", "OK")


async def test_detach_and_attach(host: TcpHost, emu: Emulator) -> None:
    await host.cmd("AT+CEREG=1", "OK")
    emu.detach()
    await host.expect(framed("+CEREG: 0"))
    await host.cmd("AT+CGATT?", "+CGATT: 0", "OK")
    await host.cmd("AT+CEREG?", "+CEREG: 1,0", "OK")
    await host.cmd('AT+CDNSGIP="example.com"', "ERROR")
    emu.attach()
    await host.expect(framed("+CEREG: 1"))
    await host.cmd("AT+CGATT?", "+CGATT: 1", "OK")


@pytest.mark.parametrize("stat", [2, 3, 4], ids=["searching", "registration denied", "unknown"])
async def test_detach_with_a_registration_state(host: TcpHost, emu: Emulator, stat: int) -> None:
    """27.007 <stat> values other than "not registered": shown in URCs and reads until attach()."""
    await host.cmd("AT+CEREG=1", "OK")
    emu.detach(reg_stat=stat)
    await host.expect(framed(f"+CEREG: {stat}"))
    await host.cmd("AT+CEREG?", f"+CEREG: 1,{stat}", "OK")
    await host.cmd("AT+CGATT?", "+CGATT: 0", "OK")
    emu.attach()
    await host.expect(framed("+CEREG: 1"))


def test_detach_refuses_a_registered_state(emu: Emulator) -> None:
    with pytest.raises(ValueError, match="reg_stat must be 0, 2, 3 or 4"):
        emu.detach(reg_stat=1)


async def test_drop_next_response_skips_blank_and_non_at_lines(host: TcpHost, emu: Emulator) -> None:
    emu.drop_next_response()
    await host.write(b"\rnoise\r")
    await host.send("AT+CSQ")  # this is the next command: its answer is the one lost
    await host.quiet()
    await host.cmd("AT", "OK")


async def test_paced_emulator_still_answers_after_a_reboot() -> None:
    emu = Emulator(registration_delay=0, baudrate=115200)
    try:
        h = await TcpHost.connect(await emu.start_tcp())
        await h.send("AT")
        await h.expect(b"AT\r" + framed("OK"))
        emu.reboot()
        await h.expect(framed("RDY", "+CPIN: READY"))
        await h.send("AT")
        await h.expect(b"AT\r" + framed("OK"))
        await h.close()
    finally:
        await emu.stop()


async def test_reboot_recovers_a_stalled_module(host: TcpHost, emu: Emulator) -> None:
    emu.stall()
    await host.send("AT")
    await host.quiet()
    emu.reboot()
    await host.expect(framed("RDY", "+CPIN: READY"))
    await host.send("AT")
    await host.expect(b"AT\r" + framed("OK"))
