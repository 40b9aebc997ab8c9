"""The driver's public API against a module that prints exactly what real SIM7020s printed
(docs/status_formats.md), scripted on the fake AT peer (tests/fakes/fake_modem.py: real bytes over a loopback
socket): granted PSM timers from +CEREG read answers and URCs, +CENG neighbours, +CCLK, AT+GSV."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from sim7020_core import ModemEvent, StatusChanged, const
from sim7020_core.exceptions import Sim7020Error
from sim7020_core.models import ModemStatus, NeighbourCell, PsmStatus
from sim7020_core.modem import Modem, ModemOptions
from tests.core.conftest import StartedFakeModem

OPTIONS = ModemOptions(registration_timeout=0.5, poll_interval=None, watchdog_interval=None)

ISSUE_CEREG_N4 = '+CEREG: 4,1,"00A0","0002920C",9,"00",,,"00100010","00010010"'
THCAM_CEREG_N5 = '+CEREG: 5,1,"00A0","0002920C",9,"00",0,0,"00100010","00010010"'
NOTE_COMMAND = 'AT+CPSMS=1,,,"01011111","00000001"'
NOTE_READ_BEFORE = '+CEREG: 4,1,"5B57","01A50B1A",9,"00",,,"11100000","11100000"'
NOTE_URCS = [
    '+CEREG: 1,"5B57","01A50B1A",9,"00",,,"11100000","11100000"',
    '+CEREG: 1,"5B57","01A50B1A",9,"00",,,"00000001","11100000"',
]
NOTE_READ_AFTER = '+CEREG: 4,1,"5B57","01A50B1A",9,"00",,,"00000001","11100000"'

Connect = Callable[[], Awaitable[Modem]]


@pytest.fixture
def fake(fake_modem: StartedFakeModem, monkeypatch: pytest.MonkeyPatch) -> StartedFakeModem:
    """A module that has a SIM and an identity and answers ERROR to every status query not scripted."""
    monkeypatch.setattr(const, "REGISTRATION_POLL_INTERVAL", 0.05)
    for command, reply in {
        "AT+CMEE=1": ["OK"],
        "AT+CPIN?": ["+CPIN: READY", "OK"],
        "AT+CGMI": ["SIMCOM_Ltd", "OK"],
        "AT+CGMM": ["SIM7020E", "OK"],
        "AT+CGMR": ["Revision:1752B10SIM7020E", "OK"],
        "AT+CGSN": ["869714031234566", "OK"],
        "AT+CIMI": ["460001234567890", "OK"],
        "AT+CCID": ["89860000000000000001", "OK"],
        "AT+CEREG=4": ["OK"],
        "AT+CPSMSTATUS=1": ["OK"],
        "AT+CSQ": ["+CSQ: 20,0", "OK"],
    }.items():
        fake_modem.reply_to(command, reply)
    return fake_modem


@pytest.fixture
async def connect(fake: StartedFakeModem) -> AsyncIterator[Connect]:
    """``await connect()`` connects a Modem to ``fake`` (closed after the test)."""
    modems: list[Modem] = []

    async def open_modem() -> Modem:
        modem = await Modem.connect(fake.url, options=OPTIONS)
        modems.append(modem)
        return modem

    yield open_modem
    for modem in modems:
        await modem.close()


async def _until(modem: Modem, predicate: Callable[[ModemStatus], bool], timeout: float = 2.0) -> ModemStatus:
    """Wait for a status (from the URC path, no refresh) that satisfies ``predicate``."""
    if predicate(modem.status):
        return modem.status
    seen: asyncio.Queue[ModemStatus] = asyncio.Queue()

    def on_event(event: ModemEvent) -> None:
        if isinstance(event, StatusChanged):
            seen.put_nowait(event.status)

    unsubscribe = modem.subscribe(on_event)
    try:
        async with asyncio.timeout(timeout):
            while not predicate(status := await seen.get()):
                pass
            return status
    finally:
        unsubscribe()


@pytest.mark.parametrize(
    "line",
    [
        ISSUE_CEREG_N4,  # the SIM7020 layout, n=4
        THCAM_CEREG_N5,  # the SIM7020 layout, n=5 (thcam)
        '+CEREG: 4,1,"00A0","0002920C",9,,,"00100010","00010010"',  # plain 27.007 (e.g. a SIM7028)
    ],
)
async def test_refresh_reports_the_granted_timers(
    fake: StartedFakeModem, connect: Connect, line: str
) -> None:
    fake.reply_to("AT+CEREG?", [line, "", "OK"])
    fake.reply_to("AT+CPSMS?", ['+CPSMS: 1,,,"00100001","00100001"', "", "OK"])  # asked for 1 h and 1 min
    modem = await connect()
    status = await modem.refresh()
    assert status.registration == "home"
    assert status.psm == PsmStatus(
        enabled=True,
        state="awake",
        tau_s=10_800,  # granted: 180 min
        active_s=120,  # granted: 2 min
        granted=True,
        requested_tau_s=3600,
        requested_active_s=60,
    )


async def test_psm_note_exchange_through_set_psm(fake: StartedFakeModem, connect: Connect) -> None:
    fake.reply_to("AT+CEREG?", [NOTE_READ_BEFORE, "", "OK"])
    fake.reply_to("AT+CPSMS?", ["+CPSMS: 0", "", "OK"])

    def grant(command: str) -> list[str]:
        # the module now reads back the request, and the network's grant
        fake.reply_to("AT+CPSMS?", [f"+CPSMS: {command.partition('=')[2]}", "", "OK"])
        fake.reply_to("AT+CEREG?", [NOTE_READ_AFTER, "", "OK"])
        return ["OK", *NOTE_URCS]

    fake.reply_to(NOTE_COMMAND, grant)
    modem = await connect()
    # at start the network has granted nothing (both timers deactivated)
    assert modem.status.psm == PsmStatus(enabled=False, granted=True)

    await modem.set_psm(True, tau_s=310 * 3600, active_s=2)

    assert NOTE_COMMAND in fake.commands  # byte for byte the note's request
    psm = modem.status.psm
    assert (psm.enabled, psm.granted) == (True, True)
    assert psm.active_s == 2  # granted
    assert psm.tau_s is None  # T3412 extended "11100000": not granted
    assert (psm.requested_tau_s, psm.requested_active_s) == (310 * 3600, 2)

    fake.emit_urc('+CPSMSTATUS: "ENTER PSM"')
    asleep = await _until(modem, lambda s: s.psm.state == "asleep")
    assert (asleep.psm.active_s, asleep.psm.tau_s, asleep.psm.granted) == (2, None, True)


async def test_granted_timers_from_the_urcs_after_cpsms(fake: StartedFakeModem, connect: Connect) -> None:
    # The URC path alone: no read answer shows a grant, and the URCs come right after AT+CPSMS's OK,
    # before anything has recorded PSM as enabled.
    fake.reply_to("AT+CEREG?", ['+CEREG: 4,1,"5B57","01A50B1A",9,"00"', "", "OK"])
    fake.reply_to("AT+CPSMS?", ["+CPSMS: 0", "", "OK"])
    fake.reply_to(NOTE_COMMAND, ["OK", *NOTE_URCS])
    modem = await connect()
    assert modem.status.psm == PsmStatus()

    assert await modem.command(NOTE_COMMAND, allow_unsafe=True) == []  # PSM raw: behind the library's back
    status = await _until(modem, lambda s: s.psm.granted and s.psm.active_s == 2)
    assert status.psm.tau_s is None  # not granted


async def test_refresh_without_timers_falls_back_to_the_request(
    fake: StartedFakeModem, connect: Connect
) -> None:
    fake.reply_to("AT+CEREG?", [NOTE_READ_AFTER, "", "OK"])
    fake.reply_to("AT+CPSMS?", ['+CPSMS: 1,,,"00100001","00100001"', "", "OK"])
    modem = await connect()
    assert (modem.status.psm.granted, modem.status.psm.active_s) == (True, 2)
    # e.g. the network released the grant: the read answer carries no timers any more
    fake.reply_to("AT+CEREG?", ["+CEREG: 4,2", "", "OK"])
    status = await modem.refresh()
    assert status.psm == PsmStatus(
        enabled=True, tau_s=3600, active_s=60, granted=False, requested_tau_s=3600, requested_active_s=60
    )


async def test_thcam_registration_and_cells(fake: StartedFakeModem, connect: Connect) -> None:
    # firmware that refuses AT+CEREG (not scripted: ERROR) and reports on +CGREG with n=2, as captured
    fake.reply_to("AT+CGREG?", ['+CGREG: 2,1,"00A0","0002920C",9,"00"', "", "OK"])
    fake.reply_to(
        "AT+CENG?",
        [
            '+CENG: 3548,2,42,"0002920C",-102,-9,-93,4,8,"00A0",0,,-91',
            "+CENG: 3548,2,145,-109",
            "+CENG: 3548,2,107,-111",
            "+CENG: 3548,2,44,-106",
            "",
            "OK",
        ],
    )
    modem = await connect()
    status = await modem.refresh()
    assert status.registration == "home"
    assert (status.cell.pci, status.cell.cell_id, status.cell.rsrp_dbm, status.cell.ecl) == (
        42,
        "0002920C",
        -102,
        0,
    )
    assert [n.pci for n in status.cell.neighbours] == [145, 107, 44]
    assert status.cell.neighbours[0] == NeighbourCell(earfcn=3548, earfcn_offset=2, pci=145, rsrp_dbm=-109)
    assert status.as_dict()["cell"]["neighbours"][2] == {
        "earfcn": 3548,
        "earfcn_offset": 2,
        "pci": 44,
        "rsrp_dbm": -106,
    }

    # the three cell-change URCs, back to back; then the module loses the network
    fake.emit_urc('+CREG: 1,"00A0","000A700B",9')
    fake.emit_urc('+CGREG: 1,"00A0","000A700B",9,"00"')
    fake.emit_urc('+CEREG: 1,"00A0","000A700B",9,"00"')
    fake.emit_urc('+CEREG: 2,"00A0","000A700B",9,"00"')
    await _until(modem, lambda s: s.registration == "searching")
    assert modem.status.psm.granted is False


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("+CCLK: 24/04/30,07:49:36+12", dt.datetime(2024, 4, 30, 4, 49, 36, tzinfo=dt.UTC)),  # SIM7020
        ('+CCLK: "2026/03/09,08:41:39+12"', dt.datetime(2026, 3, 9, 5, 41, 39, tzinfo=dt.UTC)),  # SIM7028
    ],
)
async def test_read_clock(fake: StartedFakeModem, connect: Connect, line: str, expected: dt.datetime) -> None:
    fake.reply_to("AT+CCLK?", [line, "", "OK"])
    modem = await connect()
    clock = await modem.read_clock()
    assert clock == expected
    assert clock.utcoffset() == dt.timedelta(hours=3)


async def test_read_clock_unreadable_answer(fake: StartedFakeModem, connect: Connect) -> None:
    fake.reply_to("AT+CCLK?", ["+CCLK: 80/01/06,00:00:26", "", "OK"])
    modem = await connect()
    with pytest.raises(Sim7020Error, match=r"AT\+CCLK\?.*80/01/06,00:00:26"):
        await modem.read_clock()


async def test_identity_falls_back_to_gsv(fake: StartedFakeModem, connect: Connect) -> None:
    for command in ("AT+CGMI", "AT+CGMM", "AT+CGMR"):
        fake.reply_to(command, ["ERROR"])
    fake.reply_to("AT+GSV", ["SIMCOM_Ltd", "SIM7020G", "Revision:1752B02SIM7020G", "OK"])
    modem = await connect()
    assert (modem.info.manufacturer, modem.info.model, modem.info.revision) == (
        "SIMCOM_Ltd",
        "SIM7020G",
        "1752B02SIM7020G",
    )
    assert modem.info.imei == "869714031234566"


async def test_gsv_only_when_identity_is_missing(fake: StartedFakeModem, connect: Connect) -> None:
    modem = await connect()
    assert modem.info.revision == "1752B10SIM7020E"
    assert "AT+GSV" not in fake.commands
