"""Basic, network and power-setting commands, the CMEE forms and the UART line discipline."""

from __future__ import annotations

import asyncio
import datetime
import re

import pytest

from sim7020_core.emulator import Emulator
from tests.emulator.conftest import TcpHost, framed


async def test_power_up_state_has_echo_on(raw_host: TcpHost) -> None:
    await raw_host.send("AT")
    await raw_host.expect(b"AT\r" + framed("OK"))
    await raw_host.send("ATE0")
    await raw_host.expect(b"ATE0\r" + framed("OK"))
    await raw_host.cmd("AT", "OK")
    await raw_host.cmd("ATE1", "OK")
    await raw_host.send("AT")
    await raw_host.expect(b"AT\r" + framed("OK"))


async def test_identification(host: TcpHost, emu: Emulator) -> None:
    await host.cmd("ATI", "SIMCOM_Ltd", "SIM7020E", "Revision:1752B10SIM7020E", "OK")
    await host.cmd("AT+CGMI", "SIMCOM_Ltd", "OK")
    await host.cmd("AT+CGMM", "SIM7020E", "OK")
    await host.cmd("AT+CGMR", "Revision:1752B10SIM7020E", "OK")
    await host.cmd("AT+CGSN", emu.imei, "OK")
    await host.cmd("AT+CGSN=1", f"+CGSN: {emu.imei}", "OK")
    await host.cmd("AT+CIMI", emu.imsi, "OK")
    await host.cmd("AT+CCID", emu.iccid, "OK")


def test_default_imei_has_a_valid_luhn_digit() -> None:
    imei = Emulator().imei
    assert len(imei) == 15
    assert imei.isdigit()
    total = 0
    for i, ch in enumerate(reversed(imei)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    assert total % 10 == 0


async def test_identity_is_configurable() -> None:
    emu = Emulator(imei="111111111111111", imsi="222", iccid="333", model="SIM7020G", registration_delay=0)
    try:
        h = await TcpHost.connect(await emu.start_tcp())
        await h.send("ATE0")
        await h.read_until(b"OK\r\n")
        await h.cmd("AT+CGSN", "111111111111111", "OK")
        await h.cmd("AT+CGMM", "SIM7020G", "OK")
        await h.close()
    finally:
        await emu.stop()


async def test_status_queries_of_note_3_1(host: TcpHost) -> None:
    await host.cmd("AT+CPIN?", "+CPIN: READY", "OK")
    await host.cmd("AT+CSQ", "+CSQ: 20,0", "OK")
    await host.cmd("AT+CGREG?", "+CGREG: 0,1", "OK")
    await host.cmd("AT+CEREG?", "+CEREG: 0,1", "OK")
    await host.cmd("AT+CGATT?", "+CGATT: 1", "OK")
    await host.cmd("AT+CGACT?", "+CGACT: 1,1", "OK")
    await host.cmd("AT+COPS?", '+COPS: 0,0,"CHN-UNICOM",9', "OK")
    await host.cmd("AT+CGCONTRDP", '+CGCONTRDP: 1,5,"iot.example","10.250.0.213.255.255.255.0"', "OK")


@pytest.mark.parametrize(
    ("cmee", "answer"),
    [(0, "ERROR"), (1, "+CME ERROR: 50"), (2, "+CME ERROR: incorrect parameters")],
)
async def test_cmee_forms_for_a_bad_parameter(host: TcpHost, cmee: int, answer: str) -> None:
    await host.cmd(f"AT+CMEE={cmee}", "OK")
    await host.cmd("AT+CMEE?", f"+CMEE: {cmee}", "OK")
    await host.cmd("AT+CSOC=1,1", answer)


async def test_cmee_verbose_operation_not_allowed(host: TcpHost) -> None:
    await host.cmd("AT+CMEE=2", "OK")
    await host.cmd('AT*MCGDEFCONT="IP","x"', "+CME ERROR: operation not allowed")
    await host.cmd("AT+CMEE=1", "OK")
    await host.cmd('AT*MCGDEFCONT="IP","x"', "+CME ERROR: 3")


async def test_unknown_command_is_plain_error_even_with_cmee(host: TcpHost) -> None:
    await host.cmd("AT+CMEE=1", "OK")
    await host.cmd("AT+NOSUCH", "ERROR")
    await host.cmd("AT+NOSUCH?", "ERROR")


async def test_apn_change_needs_radio_off_and_cfun_urcs(host: TcpHost) -> None:
    await host.cmd('AT*MCGDEFCONT="IP","3GNET"', "ERROR")
    await host.cmd("AT+CFUN=0", "+CPIN: NOT READY", "OK")
    await host.cmd("AT+CFUN?", "+CFUN: 0", "OK")
    await host.cmd("AT+CSQ", "+CSQ: 99,99", "OK")
    await host.cmd("AT+CGREG?", "+CGREG: 0,0", "OK")
    await host.cmd("AT+CPIN?", "+CPIN: NOT READY", "OK")
    await host.cmd('AT*MCGDEFCONT="IP","3GNET","user","pw"', "OK")
    await host.cmd("AT*MCGDEFCONT?", '*MCGDEFCONT: "IP","3GNET","user","pw"', "OK")
    await host.cmd('AT*MCGDEFCONT="PPP","3GNET"', "ERROR")
    await host.cmd("AT+CFUN=1", "OK")
    await host.expect(framed("+CPIN: READY"))
    await asyncio.sleep(0.02)
    await host.cmd("AT+CGREG?", "+CGREG: 0,1", "OK")
    await host.cmd("AT+CGCONTRDP", '+CGCONTRDP: 1,5,"3GNET","10.250.0.213.255.255.255.0"', "OK")


async def test_registration_takes_registration_delay_and_reports_urcs() -> None:
    emu = Emulator(registration_delay=0.3)
    try:
        h = await TcpHost.connect(await emu.start_tcp())
        await h.send("ATE0")
        await h.read_until(b"OK\r\n")
        await h.cmd("AT+CEREG=2", "OK")
        await h.cmd("AT+CGREG=1", "OK")
        await h.cmd("AT+CEREG?", "+CEREG: 2,2", "OK")  # searching
        await h.cmd("AT+CGATT?", "+CGATT: 0", "OK")
        await h.cmd("AT+CGCONTRDP", "OK")  # no PDN yet
        await h.cmd("AT+COPS?", "+COPS: 0", "OK")
        # a SIM7020 prints +CGREG before +CEREG, both with the extra "00" after <AcT>
        await h.expect(framed("+CGREG: 1", '+CEREG: 1,"1A2B","0C3D4E5F",9,"00"'), timeout=2.0)
        await h.cmd("AT+CGATT?", "+CGATT: 1", "OK")
        await h.close()
    finally:
        await emu.stop()


async def test_cereg_4_shows_the_granted_psm_timers(host: TcpHost) -> None:
    await host.cmd("AT+CEREG=4", "OK")
    await host.cmd("AT+CEREG?", '+CEREG: 4,1,"1A2B","0C3D4E5F",9,"00",,,"11100000","11100000"', "OK")
    await host.cmd('AT+CPSMS=1,,,"01000111","00000101"', "OK")
    # the network's answer: the grant in force, then the new one (it grants what was asked by default)
    await host.expect(
        framed(
            '+CEREG: 1,"1A2B","0C3D4E5F",9,"00",,,"11100000","11100000"',
            '+CEREG: 1,"1A2B","0C3D4E5F",9,"00",,,"00000101","01000111"',
        )
    )
    await host.cmd("AT+CEREG?", '+CEREG: 4,1,"1A2B","0C3D4E5F",9,"00",,,"00000101","01000111"', "OK")
    await host.cmd("AT+CEREG=6", "ERROR")


async def test_cgatt_and_cgact_change_service(host: TcpHost) -> None:
    await host.cmd("AT+CGACT=0,1", "OK")
    await host.cmd("AT+CGACT?", "+CGACT: 1,0", "OK")
    await host.cmd("AT+CGCONTRDP", "OK")
    await host.cmd("AT+CSOC=1,1,1", "ERROR")
    await host.cmd("AT+CGACT=1,1", "OK")
    await host.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
    await host.cmd("AT+CGACT=1,2", "ERROR")
    await host.cmd("AT+CGATT=0", "+CSOERR: 0,11", "OK")  # the socket fails as the bearer goes
    await host.cmd("AT+CGATT?", "+CGATT: 0", "OK")
    await host.cmd("AT+CGACT=1,1", "ERROR")  # not attached
    await host.cmd("AT+CGATT=1", "OK")
    await host.cmd("AT+CGATT?", "+CGATT: 1", "OK")


async def test_cpsms_settings_round_trip(host: TcpHost) -> None:
    await host.cmd("AT+CPSMS?", '+CPSMS: 0,,,"00100001","00100001"', "OK")
    await host.cmd('AT+CPSMS=1,,,"01000111","00000000"', "OK")
    await host.cmd("AT+CPSMS?", '+CPSMS: 1,,,"01000111","00000000"', "OK")
    await host.cmd("AT+CPSMS=0", "OK", '+CPSMSTATUS: "EXIT PSM"')  # PSM was in use
    await host.cmd("AT+CPSMS?", '+CPSMS: 0,,,"01000111","00000000"', "OK")
    await host.cmd("AT+CPSMS=2", "OK")  # disable and reset to defaults
    await host.cmd("AT+CPSMS?", '+CPSMS: 0,,,"00100001","00100001"', "OK")
    await host.cmd('AT+CPSMS=1,,,"0100011","00000000"', "ERROR")
    await host.cmd("AT+CPSMSTATUS?", "+CPSMSTATUS: 1", "OK")
    await host.cmd("AT+CPSMSTATUS=0", "OK")
    await host.cmd("AT+CPSMSTATUS?", "+CPSMSTATUS: 0", "OK")


async def test_misc_queries(host: TcpHost) -> None:
    await host.cmd("AT+CBC", "+CBC: 0,85,3800", "OK")
    await host.send("AT+CCLK?")  # a SIM7020 does not quote it
    m = await host.expect_re(rb"\r\n\+CCLK: (\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)\+00\r\n\r\nOK\r\n")
    yy = int(m.group(1))
    assert yy == datetime.datetime.now(datetime.UTC).year % 100
    await host.send("AT+CENG?")  # serving cell (tx power empty while idle), then the neighbours, one block
    await host.expect(
        b'\r\n+CENG: 3683,0,129,"0C3D4E5F",-83,-10,-73,12,8,"1A2B",0,,-83\r\n'
        b"+CENG: 3683,0,130,-91\r\n+CENG: 3683,0,131,-97\r\n\r\nOK\r\n"
    )
    await host.cmd("AT+IPR?", "+IPR: 115200", "OK")
    await host.cmd("AT+IPR=9600", "OK")
    await host.cmd("AT+IPR?", "+IPR: 9600", "OK")
    await host.cmd("AT+IPR=1234", "ERROR")
    await host.cmd("AT+RETENTION?", "+RETENTION: 0", "OK")
    await host.cmd("AT+RETENTION=1", "OK")
    await host.cmd("AT+RETENTION?", "+RETENTION: 1", "OK")
    await host.cmd("AT+RETENTION=2", "ERROR")


async def test_signal_quality_tracks_set_signal(host: TcpHost, emu: Emulator) -> None:
    emu.set_signal(csq=5, ber=3)
    await host.cmd("AT+CSQ", "+CSQ: 5,3", "OK")
    emu.set_signal(csq=99, ber=99)
    await host.cmd("AT+CSQ", "+CSQ: 99,99", "OK")
    with pytest.raises(ValueError, match="csq"):
        emu.set_signal(csq=40)


# ---------------------------------------------------------------------------------------- line discipline


@pytest.mark.parametrize("terminator", [b"\r", b"\r\n", b"\n"])
async def test_each_terminator_gives_one_answer(host: TcpHost, terminator: bytes) -> None:
    await host.write(b"AT+CSQ" + terminator + b"AT" + terminator)
    await host.expect(framed("+CSQ: 20,0", "OK", "OK"))
    await host.quiet()


async def test_commands_are_case_insensitive_and_quotes_keep_spaces(host: TcpHost) -> None:
    await host.cmd("at+csq", "+CSQ: 20,0", "OK")
    await host.cmd("aT+cGrEg?", "+CGREG: 0,1", "OK")
    await host.cmd("AT+CFUN=0", "+CPIN: NOT READY", "OK")
    await host.cmd('at*mcgdefcont="ip","my apn"', "OK")
    await host.cmd("AT*MCGDEFCONT?", '*MCGDEFCONT: "IP","my apn","",""', "OK")


async def test_backspace_edits_the_line(host: TcpHost) -> None:
    await host.write(b"AT+CSX\x08Q\r")
    await host.expect(framed("+CSQ: 20,0", "OK"))


async def test_a_slash_repeats_the_last_command(host: TcpHost) -> None:
    await host.cmd("AT+CGATT?", "+CGATT: 1", "OK")
    await host.write(b"A/\r")
    await host.expect(framed("+CGATT: 1", "OK"))


async def test_lines_without_at_are_ignored(host: TcpHost) -> None:
    await host.write(b"hello\r\x00\x00\rXAT\r")
    await host.quiet()
    await host.cmd("AT", "OK")


async def test_echo_repeats_input_exactly(raw_host: TcpHost) -> None:
    await raw_host.write(b"at+cgatt?\r\n")
    await raw_host.expect(b"at+cgatt?\r\n" + framed("+CGATT: 1", "OK"))


async def test_command_split_across_writes(host: TcpHost) -> None:
    for piece in (b"A", b"T+C", b"SQ", b"\r"):
        await host.write(piece)
        await asyncio.sleep(0.01)
    await host.expect(framed("+CSQ: 20,0", "OK"))


async def test_overlong_line_answers_error_once_and_recovers(host: TcpHost) -> None:
    await host.write(b"AT+CSQ" + b"9" * 5000)
    await host.expect(framed("ERROR"))
    await host.write(b"\r")
    await host.quiet()
    await host.cmd("AT+CSQ", "+CSQ: 20,0", "OK")


async def test_test_forms(host: TcpHost) -> None:
    await host.cmd("AT+CSQ=?", "+CSQ: (0-31,99),(0-7,99)", "OK")
    await host.cmd("AT+CFUN=?", "+CFUN: (0,1),(0,1)", "OK")
    await host.send("AT+IPR=?")
    m = await host.expect_re(rb"\r\n\+IPR: \(([0-9,]+)\)\r\n\r\nOK\r\n")
    assert b"115200" in m.group(1).split(b",")


def test_registry_refuses_duplicate_names() -> None:
    emu = Emulator()
    with pytest.raises(ValueError, match=re.escape("+CSQ")):
        emu.registry.register("+csq", lambda ctx, cmd: None)
