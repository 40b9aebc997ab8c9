"""What real SIM7020-family modules do that the application note never shows, and the profiles that switch it.

The captured exchanges themselves are replayed byte for byte from ``transcripts/captures.txt``; these tests
pin each behaviour on its own, its edges, and the options that change it (``docs/emulator.md``, *Real
modules*). No driver code: a raw host on a real TCP socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim7020_core.cli import build_parser
from sim7020_core.emulator import PROFILES, Cell, Emulator, Grant, Neighbour, PsmTimings, core
from sim7020_core.emulator.peers import UdpPeer
from tests.emulator.conftest import WAIT, TcpHost, framed
from tests.emulator.transcript_tools import TranscriptMismatch, load_all, replay

LOC = '"1A2B","0C3D4E5F",9'
UDP_SERVER = ("93.184.216.34", 5683)


@contextlib.asynccontextmanager
async def running(**kwargs: Any) -> AsyncIterator[tuple[Emulator, TcpHost]]:
    """An emulator (registered at once unless told otherwise) and a host with echo off."""
    kwargs.setdefault("registration_delay", 0.0)
    emu = Emulator(**kwargs)
    h = await TcpHost.connect(await emu.start_tcp())
    try:
        await h.send("ATE0")
        await h.read_until(b"OK\r\n")
        await asyncio.sleep(0.01)  # the registration timer (delay 0) has run
        yield emu, h
    finally:
        await h.close()
        async with asyncio.timeout(WAIT):
            await emu.stop()


async def _udp_socket(h: TcpHost, emu: Emulator, peer: UdpPeer) -> tuple[str, int]:
    emu.route(*UDP_SERVER, to=peer.address)
    await h.cmd("AT+CSOC=1,2,1", "+CSOC: 0", "OK")
    await h.cmd(f'AT+CSOCON=0,{UDP_SERVER[1]},"{UDP_SERVER[0]}"', "OK")
    await h.cmd('AT+CSOSEND=0,0,"hi"', "OK")
    _, addr = await peer.next()
    return addr


# ------------------------------------------------------------------------------- +CEREG / +CGREG layouts

#: the read answer after "<n>,1" for each profile and n, PSM not requested
LAYOUTS = {
    "sim7020": {
        0: "",
        1: "",
        2: f',{LOC},"00"',
        3: f',{LOC},"00",0,0',
        4: f',{LOC},"00",,,"11100000","11100000"',
        5: f',{LOC},"00",0,0,"11100000","11100000"',
    },
    "sim7028": {
        0: "",
        1: "",
        2: f",{LOC}",
        3: f",{LOC},0,0",
        4: f',{LOC},,,"11100000","11100000"',
        5: f',{LOC},0,0,"11100000","11100000"',
    },
    "note": {0: "", 1: "", 2: f",{LOC}", 3: f",{LOC},0,0", 4: f",{LOC}", 5: f",{LOC},0,0"},
}


@pytest.mark.parametrize("profile", sorted(LAYOUTS))
async def test_cereg_and_cgreg_read_layouts_for_every_n(profile: str) -> None:
    async with running(profile=profile) as (_, h):
        for n, tail in LAYOUTS[profile].items():
            for command in ("+CEREG", "+CGREG"):
                await h.cmd(f"AT{command}={n}", "OK")
                await h.cmd(f"AT{command}?", f"{command}: {n},1{tail}", "OK")


@pytest.mark.parametrize("profile", sorted(LAYOUTS))
async def test_registration_urcs_have_the_read_layout_without_n(profile: str) -> None:
    async with running(profile=profile) as (emu, h):
        for n in range(1, 6):
            await h.cmd(f"AT+CEREG={n}", "OK")
            emu.change_cell(cell_id=f"0000000{n}")
            tail = LAYOUTS[profile][n].replace("0C3D4E5F", f"0000000{n}")
            await h.expect(framed(f"+CEREG: 1{tail}"))
        await h.quiet()


async def test_psm_timers_show_the_grant_in_the_note_profile_only_while_requested() -> None:
    async with running(profile="note") as (_, h):
        await h.cmd("AT+CEREG=4", "OK")
        await h.cmd('AT+CPSMS=1,,,"01000111","00000101"', "OK")  # the note profile: no grant URCs
        await h.cmd("AT+CEREG?", f'+CEREG: 4,1,{LOC},,,"00000101","01000111"', "OK")
        await h.cmd("AT+CEREG=5", "OK")
        await h.cmd("AT+CEREG?", f'+CEREG: 5,1,{LOC},0,0,"00000101","01000111"', "OK")


async def test_not_registered_shows_only_the_stat() -> None:
    async with running(registration_delay=30.0) as (_, h):
        for n in range(6):
            await h.cmd(f"AT+CEREG={n}", "OK")
            await h.cmd("AT+CEREG?", f"+CEREG: {n},2", "OK")


async def test_creg_has_no_extra_field(host: TcpHost) -> None:
    await host.cmd("AT+CREG?", "+CREG: 0,1", "OK")
    await host.cmd("AT+CREG=2", "OK")
    await host.cmd("AT+CREG?", f"+CREG: 2,1,{LOC}", "OK")
    await host.cmd("AT+CREG=?", "+CREG: (0-2)", "OK")
    await host.cmd("AT+CREG=3", "ERROR")


async def test_a_cell_change_is_announced_in_the_sim7020_order(host: TcpHost, emu: Emulator) -> None:
    for command in ("AT+CEREG=1", "AT+CGREG=2", "AT+CREG=2"):
        await host.cmd(command, "OK")
    emu.change_cell(cell_id="000A700B", tac="00A0")
    await host.expect(
        framed('+CREG: 1,"00A0","000A700B",9', '+CGREG: 1,"00A0","000A700B",9,"00"', "+CEREG: 1")
    )
    emu.change_cell(pci=7)  # same cell id and TAC: nothing to announce
    await host.quiet()
    await host.cmd("AT+CEREG=2", "OK")
    await host.cmd("AT+CEREG?", '+CEREG: 2,1,"00A0","000A700B",9,"00"', "OK")


_hex = st.text("0123456789ABCDEF", min_size=1, max_size=1)
_bits8 = st.text("01", min_size=8, max_size=8)


@settings(max_examples=40, deadline=None)
@given(
    profile=st.sampled_from(sorted(PROFILES)),
    n=st.integers(min_value=1, max_value=5),
    tac=st.lists(_hex, min_size=4, max_size=4).map("".join),
    cell_id=st.lists(_hex, min_size=8, max_size=8).map("".join),
    active=_bits8,
    tau=_bits8,
)
def test_any_registration_urc_is_the_read_answer_without_n(
    profile: str, n: int, tac: str, cell_id: str, active: str, tau: str
) -> None:
    """For any cell, grant, profile and n, a URC and the read answer carry the same fields after <stat>."""

    async def run() -> None:
        out = bytearray()
        emu = Emulator(
            profile=profile,
            registration_delay=0.0,
            grant=Grant(active_time=active, periodic_tau=tau),
            psm_timings=PsmTimings(auto=False),
        )
        try:
            emu.attach_port(out.extend)
            await asyncio.sleep(0.01)
            with mock.patch.object(core, "GRANT_DELAY", 0.001):
                emu.feed(b"ATE0\rAT+CPSMS=1\r")
                await asyncio.sleep(0.02)  # the grant is in force (no URCs: n=0)
            emu.feed(f"AT+CEREG={n}\r".encode())
            await asyncio.sleep(0.01)
            out.clear()
            emu.change_cell(tac=tac, cell_id=cell_id)
            emu.feed(b"AT+CEREG?\r")
            for _ in range(200):
                if out.endswith(b"OK\r\n"):
                    break
                await asyncio.sleep(0.005)
        finally:
            await emu.stop()
        m = re.fullmatch(rb"\r\n\+CEREG: 1(.*)\r\n\r\n\+CEREG: (\d),1(.*)\r\n\r\nOK\r\n", bytes(out))
        assert m is not None, bytes(out)
        assert int(m.group(2)) == n
        assert m.group(1) == m.group(3)
        if n >= 2:
            assert f'"{tac}","{cell_id}",9'.encode() in m.group(1)
        if n >= 4:  # PSM is requested: every profile shows the grant
            assert f'"{active}","{tau}"'.encode() in m.group(1)

    asyncio.run(run())


# ------------------------------------------------------------------------------------ the network's grant


async def test_the_grant_arrives_as_two_urcs_and_can_differ_from_the_request(
    host: TcpHost, emu: Emulator
) -> None:
    emu.set_grant(periodic_tau="11100000")
    await host.cmd("AT+CEREG=4", "OK")
    await host.cmd('AT+CPSMS=1,,,"01011111","00000001"', "OK")
    await host.expect(
        framed(
            f'+CEREG: 1,{LOC},"00",,,"11100000","11100000"', f'+CEREG: 1,{LOC},"00",,,"00000001","11100000"'
        )
    )
    await host.cmd("AT+CPSMS?", '+CPSMS: 1,,,"01011111","00000001"', "OK")  # the request is kept
    emu.set_grant(Grant(active_time="00000010"))  # the network changes its mind: a URC at once
    await host.expect(framed(f'+CEREG: 1,{LOC},"00",,,"00000010","01011111"'))
    emu.set_grant(active_time="00000010")  # same grant again: nothing to announce
    await host.quiet()


async def test_a_refused_active_time_keeps_the_module_awake() -> None:
    """The network's grant, not the request, decides when the module sleeps."""
    timings = PsmTimings(inactivity_s=0.02, scale=0.01)
    async with running(psm_timings=timings, grant={"active_time": "11100000"}) as (_, h):
        await h.cmd('AT+CPSMS=1,,,"01101010","00000001"', "OK")  # asks for 2 s (scaled: 20 ms)
        await h.quiet(0.5)
        await h.cmd("AT", "OK")


async def test_a_granted_active_time_puts_the_module_to_sleep_whatever_was_asked() -> None:
    timings = PsmTimings(inactivity_s=0.02, scale=0.01)
    async with running(psm_timings=timings, grant={"active_time": "00000001"}) as (_, h):
        await h.cmd('AT+CPSMS=1,,,"01101010","11100000"', "OK")  # asks for no active time at all
        await h.expect(framed('+CPSMSTATUS: "ENTER PSM"'), timeout=WAIT)


async def test_psm_off_ends_with_exit_psm_only_when_it_was_on(host: TcpHost) -> None:
    await host.cmd("AT+CPSMS=0", "OK")
    await host.quiet()
    await host.cmd("AT+CPSMS=1", "OK")
    await host.cmd("AT+CPSMS=0", "OK", '+CPSMSTATUS: "EXIT PSM"')
    await host.cmd("AT+CPSMS=1", "OK")
    await host.cmd("AT+CPSMSTATUS=0", "OK")
    await host.cmd("AT+CPSMS=0", "OK")  # the PSM status URCs are off
    await host.quiet()


async def test_the_note_profile_turns_psm_off_silently() -> None:
    async with running(profile="note") as (_, h):
        await h.cmd("AT+CPSMS=1", "OK")
        await h.cmd("AT+CPSMS=0", "OK")
        await h.quiet()


# ------------------------------------------------------------------------------------------------ waking


async def test_wake_order_follows_the_urc_modes() -> None:
    async with running(wake_registration_delay=0.5) as (emu, h):
        for command in ("AT+CREG=1", "AT+CGREG=2", "AT+CEREG=5"):
            await h.cmd(command, "OK")
        emu.enter_psm()
        await h.expect(framed('+CPSMSTATUS: "ENTER PSM"'))
        emu.exit_psm()
        await h.expect(
            framed("+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"', "+CREG: 2", "+CGREG: 2", "+CEREG: 2")
        )
        await h.cmd("AT+CEREG?", "+CEREG: 5,2", "OK")  # searching until registered again
        await h.expect(
            framed("+CREG: 1", f'+CGREG: 1,{LOC},"00"', f'+CEREG: 1,{LOC},"00",0,0,"11100000","11100000"'),
            timeout=WAIT,
        )
        await h.cmd("AT+CEREG?", f'+CEREG: 5,1,{LOC},"00",0,0,"11100000","11100000"', "OK")


async def test_udp_data_sent_before_the_wake_registration_is_lost(udp_peer: UdpPeer) -> None:
    async with running(wake_registration_delay=0.5) as (emu, h):
        await h.cmd("AT+RETENTION=1", "OK")
        await h.cmd("AT+CMEE=1", "OK")
        await h.cmd("AT+CEREG=1", "OK")
        await _udp_socket(h, emu, udp_peer)
        emu.enter_psm()
        await h.expect(framed('+CPSMSTATUS: "ENTER PSM"'))
        emu.exit_psm()
        await h.expect(framed("+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"', "+CEREG: 2"))
        await h.cmd('AT+CSOSEND=0,0,"lost"', "OK")  # answered, but it never leaves the module
        await h.cmd("AT+CSOC=1,2,1", "+CME ERROR: 30")  # no service until registered
        await h.expect(framed("+CEREG: 1"), timeout=WAIT)
        await h.cmd('AT+CSOSEND=0,0,"sent"', "OK")
        assert (await udp_peer.next())[0] == b"sent"


async def test_data_held_while_asleep_follows_the_registration(udp_peer: UdpPeer) -> None:
    async with running(wake_registration_delay=0.1) as (emu, h):
        await h.cmd("AT+RETENTION=1", "OK")
        await h.cmd("AT+CEREG=1", "OK")
        module = await _udp_socket(h, emu, udp_peer)
        emu.enter_psm()
        await h.expect(framed('+CPSMSTATUS: "ENTER PSM"'))
        udp_peer.send(b"123", module)
        await h.quiet(0.1)
        emu.exit_psm()
        await h.expect(
            framed(
                "+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"', "+CEREG: 2", "+CEREG: 1", "+CSONMI: 0,6,313233"
            ),
            timeout=WAIT,
        )


async def test_sleeping_again_before_the_wake_registration_stays_registered() -> None:
    async with running(wake_registration_delay=30.0) as (emu, h):
        emu.enter_psm()
        emu.exit_psm()
        emu.enter_psm()  # the wake's registration never completed
        emu.exit_psm()
        await h.expect(framed('+CPSMSTATUS: "ENTER PSM"', "+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"') * 2)
        await h.cmd("AT+CEREG?", "+CEREG: 0,2", "OK")
        emu.reboot()  # a reset ends the wait too
        await h.expect(framed("RDY", "+CPIN: READY"), timeout=WAIT)
        await h.send("ATE0")
        await h.read_until(b"OK\r\n")
        await asyncio.sleep(0.05)
        await h.cmd("AT+CEREG?", "+CEREG: 0,1", "OK")


async def test_a_detach_while_waking_stays_detached() -> None:
    async with running(wake_registration_delay=0.1) as (emu, h):
        await h.cmd("AT+CEREG=1", "OK")
        emu.enter_psm()
        emu.exit_psm()
        emu.detach()
        wake = framed('+CPSMSTATUS: "ENTER PSM"', "+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"', "+CEREG: 2")
        await h.expect(wake + framed("+CEREG: 0"))
        await h.quiet(0.3)  # no +CEREG: 1 from the abandoned wake
        emu.attach()
        await h.expect(framed("+CEREG: 1"))


async def test_csorcvflag_resets_after_a_wake_but_the_send_flag_stays(host: TcpHost, emu: Emulator) -> None:
    await host.cmd("AT+CSORCVFLAG=1", "OK")
    await host.cmd("AT+CSOSENDFLAG=1", "OK")
    emu.enter_psm()
    emu.exit_psm()
    await host.expect(framed('+CPSMSTATUS: "ENTER PSM"', "+CPIN: READY", '+CPSMSTATUS: "EXIT PSM"'))
    await host.cmd("AT+CSORCVFLAG?", "+CSORCVFLAG: 0", "OK")
    await host.cmd("AT+CSOSENDFLAG?", "+CSOSENDFLAG: 1", "OK")


async def test_the_note_profile_wakes_as_the_note_shows() -> None:
    async with running(profile="note", wake_registration_delay=0.2) as (emu, h):
        await h.cmd("AT+CEREG=2", "OK")
        await h.cmd("AT+CSORCVFLAG=1", "OK")
        emu.enter_psm()
        emu.exit_psm()
        await h.expect(framed('+CPSMSTATUS: "ENTER PSM"', '+CPSMSTATUS: "EXIT PSM"'))
        await h.quiet()  # no +CPIN, no re-registration
        await h.cmd("AT+CSORCVFLAG?", "+CSORCVFLAG: 1", "OK")


async def test_one_behaviour_can_be_switched_on_its_own() -> None:
    profile = PROFILES["sim7020"].replace(name="no-cpin", wake_cpin=False)
    async with running(profile=profile) as (emu, h):
        emu.enter_psm()
        emu.exit_psm()
        await h.expect(framed('+CPSMSTATUS: "ENTER PSM"', '+CPSMSTATUS: "EXIT PSM"'))
        await h.cmd("AT+CEREG=2", "OK")
        await h.cmd("AT+CEREG?", f'+CEREG: 2,1,{LOC},"00"', "OK")  # everything else as a SIM7020


# ------------------------------------------------------------------------------- cell, clock, identity


async def test_ceng_follows_the_signal_unless_the_cell_fixes_it(host: TcpHost, emu: Emulator) -> None:
    emu.set_signal(csq=10)
    await host.send("AT+CENG?")
    await host.expect(
        b'\r\n+CENG: 3683,0,129,"0C3D4E5F",-103,-10,-93,12,8,"1A2B",0,,-103\r\n'
        b"+CENG: 3683,0,130,-91\r\n+CENG: 3683,0,131,-97\r\n\r\nOK\r\n"
    )
    emu.change_cell(
        rsrp=-100,
        re_rsrp=-99,
        tx_power=23,
        neighbours=[{"earfcn": 1, "earfcn_offset": 0, "pci": 2, "rsrp": -120}],
    )
    await host.send("AT+CENG?")
    await host.expect(
        b'\r\n+CENG: 3683,0,129,"0C3D4E5F",-100,-10,-93,12,8,"1A2B",0,23,-99\r\n'
        b"+CENG: 1,0,2,-120\r\n\r\nOK\r\n"
    )
    emu.change_cell(neighbours=())
    await host.cmd("AT+CENG?", '+CENG: 3683,0,129,"0C3D4E5F",-100,-10,-93,12,8,"1A2B",0,23,-99', "OK")


@pytest.mark.parametrize(
    ("profile", "pattern"),
    [
        ("sim7020", rb"\+CCLK: (\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)-20"),
        ("sim7028", rb'\+CCLK: "(\d{4})/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)-20"'),
        ("note", rb'\+CCLK: "(\d\d)/(\d\d)/(\d\d),(\d\d):(\d\d):(\d\d)-20"'),
    ],
)
async def test_clock_form_per_profile_in_local_time(profile: str, pattern: bytes) -> None:
    async with running(profile=profile, timezone=-20) as (_, h):
        await h.send("AT+CCLK?")
        m = await h.expect_re(rb"\r\n" + pattern + rb"\r\n\r\nOK\r\n")
    year = int(m.group(1))
    year += 2000 if year < 100 else 0
    shown = datetime.datetime(
        year, *(int(g) for g in m.groups()[1:]), tzinfo=datetime.timezone(datetime.timedelta(hours=-5))
    )
    assert abs((shown - datetime.datetime.now(datetime.UTC)).total_seconds()) < 120


async def test_gsv_and_the_profile_model() -> None:
    async with running(profile="sim7028") as (_, h):
        await h.cmd("AT+CGMM", "SIM7028", "OK")
        await h.send("AT+GSV")
        await h.expect(b"\r\nSIMCOM_Ltd\r\nSIM7028\r\n" + b"Revision:1752B10SIM7028\r\n\r\nOK\r\n")
        await h.cmd("AT+GSV=?", "OK")
        await h.cmd("AT+GSV?", "ERROR")


# -------------------------------------------------------------------------------------- eDRX, sleep mode


async def test_edrx_request_grant_and_report(host: TcpHost, emu: Emulator) -> None:
    await host.cmd("AT+CEDRXS?", "OK")  # off: nothing to list
    await host.cmd("AT+CEDRXRDP", "+CEDRXRDP: 0", "OK")
    await host.cmd('AT+CEDRXS=2,5,"0101"', "OK", '+CEDRXP: 5,"0101","0101","0011"')
    await host.cmd("AT+CEDRXS?", '+CEDRXS: 5,"0101"', "OK")
    emu.set_grant(edrx="0010", paging_time_window="0001")
    await host.cmd("AT+CEDRXRDP", '+CEDRXRDP: 5,"0101","0010","0001"', "OK")
    await host.cmd("AT+CEDRXS=3", "OK")  # off and back to the defaults
    await host.cmd("AT+CEDRXS?", "OK")
    await host.cmd("AT+CEDRXS=1", "OK")
    await host.cmd("AT+CEDRXS?", '+CEDRXS: 5,"0000"', "OK")
    await host.cmd("AT+CEDRXS=?", '+CEDRXS: (0-3),(5),("0000"-"1111")', "OK")
    for bad in ('AT+CEDRXS=1,4,"0010"', 'AT+CEDRXS=1,5,"2"', "AT+CEDRXS=4", "AT+CEDRXS", "AT+CEDRXRDP?"):
        await host.cmd(bad, "ERROR")


async def test_csclk_is_stored(host: TcpHost) -> None:
    await host.cmd("AT+CSCLK?", "+CSCLK: 0", "OK")
    await host.cmd("AT+CSCLK=2", "OK")
    await host.cmd("AT+CSCLK?", "+CSCLK: 2", "OK")
    await host.cmd("AT+CSCLK=?", "+CSCLK: (0-2)", "OK")
    await host.cmd("AT+CSCLK=3", "ERROR")


# ------------------------------------------------------------------------------------ options and errors


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"profile": "sim9000"}, "unknown emulator profile 'sim9000'; known: sim7020, sim7028, note"),
        ({"cell": {"tac": "xyz"}}, "cell tac must be 4 upper-case hex digits"),
        ({"cell": {"cell_id": "0c3d4e5f"}}, "cell cell_id must be 8 upper-case hex digits"),
        ({"cell": {"band": 8, "colour": "red"}}, "bad cell"),
        ({"grant": {"active_time": "2"}}, "grant active_time must be 'requested' or 8 bits"),
        ({"grant": {"edrx": "00100"}}, "grant edrx must be"),
        ({"grant": {"paging_time_window": "1"}}, "paging_time_window must be 4 bits"),
        ({"grant": {"bogus": 1}}, "bad grant"),
        ({"psm_timings": {"nap": 1}}, "bad psm_timings"),
        ({"timezone": 200}, "quarter hours"),
    ],
)
def test_bad_options_name_what_is_wrong(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Emulator(**kwargs)


def test_options_accept_objects_and_mappings() -> None:
    cell = Cell(tac="00A0", neighbours=(Neighbour(1, 2, 3, -4),))
    assert Emulator(cell=cell).cell is cell
    assert Emulator(cell={"neighbours": [(1, 2, 3, -4)], "tac": "00A0"}).cell == cell
    assert Emulator(grant={"periodic_tau": "11100000"}).grant == Grant(periodic_tau="11100000")
    assert Emulator(psm_timings={"scale": 0.5}).psm_timings == PsmTimings(scale=0.5)
    emu = Emulator(profile="note", model="SIM7020C")
    assert (emu.profile.name, emu.model, emu.revision) == ("note", "SIM7020C", "1752B10SIM7020E")
    assert dataclasses.replace(PROFILES["note"]) == PROFILES["note"]


def test_cli_profile_and_grant_options() -> None:
    args = build_parser().parse_args(
        ["emulator", "--profile", "note", "--grant", "periodic_tau=11100000", "--grant", "edrx=none"]
    )
    assert args.profile == "note"
    assert dict(args.grant) == {"periodic_tau": "11100000", "edrx": None}
    assert build_parser().parse_args(["emulator"]).profile == "sim7020"
    for bad in (["--profile", "sim9000"], ["--grant", "tau=1"], ["--grant", "active_time"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args(["emulator", *bad])


# -------------------------------------------------------------- the captures tell the profiles apart

#: captured behaviours the note profile does not have: replaying these against it must fail
NOT_IN_THE_NOTE = ["capture-1-registration-with-n-2-and-cell-info", "capture-2-psm-step-by-step"]


@pytest.mark.parametrize("transcript_id", NOT_IN_THE_NOTE)
async def test_captures_fail_against_the_note_profile(transcript_id: str) -> None:
    transcripts = load_all(Path(__file__).parent / "transcripts")
    (transcript,) = [t for t in transcripts if t.id == transcript_id]
    note = dataclasses.replace(transcript, options={**transcript.options, "profile": "note"})
    with pytest.raises(TranscriptMismatch):
        await replay(note, "tcp")
