"""Modem init against module quirks the emulator does not produce, scripted on the fake AT peer
(tests/fakes/fake_modem.py: real bytes over a loopback socket): identity formats, SIM errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sim7020_core import const
from sim7020_core.emulator import Emulator
from sim7020_core.exceptions import AtCommandError, SimError
from sim7020_core.models import LinkState
from sim7020_core.modem import Modem, ModemOptions
from tests.fakes.fake_modem import FakeModem

OPTIONS = ModemOptions(registration_timeout=0.2, poll_interval=None, watchdog_interval=None)


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeModem]:
    monkeypatch.setattr(const, "SIM_BUSY_RETRY_DELAY", 0.01)
    monkeypatch.setattr(const, "REGISTRATION_POLL_INTERVAL", 0.05)
    modem = FakeModem()
    modem.url = await modem.start()  # type: ignore[attr-defined]
    modem.reply_to("AT+CMEE=1", ["OK"])
    modem.reply_to("AT+CPIN?", ["+CPIN: READY", "OK"])
    yield modem
    await modem.stop()


def script_identity(fake: FakeModem) -> None:
    fake.reply_to("AT+CGMI", ["SIMCOM_Ltd", "OK"])
    fake.reply_to("AT+CGMM", ["SIM7020C", "OK"])
    fake.reply_to("AT+CGMR", ["Revision:1752B05SIM7020C", "OK"])
    fake.reply_to("AT+CGSN", ["+CGSN: 861234567890123", "OK"])
    fake.reply_to("AT+CIMI", ["460001234567890", "OK"])
    fake.reply_to("AT+CCID", ["89860000000000000001", "OK"])


async def test_identity_prefixes_and_unsupported_status_commands(fake: FakeModem) -> None:
    script_identity(fake)
    async with await Modem.connect(fake.url, options=OPTIONS) as modem:  # type: ignore[attr-defined]
        assert modem.info.manufacturer == "SIMCOM_Ltd"
        assert modem.info.model == "SIM7020C"
        assert modem.info.revision == "1752B05SIM7020C"
        assert modem.info.imei == "861234567890123"
        assert modem.info.imsi == "460001234567890"
        assert modem.info.iccid == "89860000000000000001"
        # every status command answers ERROR here: init still completes, the status says "unknown"
        assert modem.state is LinkState.READY
        assert modem.status.registration == "unknown"
        assert modem.status.csq is None


async def test_missing_sim_is_a_clear_sim_error(fake: FakeModem) -> None:
    fake.reply_to("AT+CPIN?", ["+CME ERROR: 10"])
    with pytest.raises(SimError, match=r"no usable SIM card \(\+CME ERROR: 10\)"):
        await Modem.connect(fake.url, options=OPTIONS)  # type: ignore[attr-defined]


async def test_locked_sim_is_a_sim_error(fake: FakeModem) -> None:
    fake.reply_to("AT+CPIN?", ["+CPIN: SIM PIN", "OK"])
    with pytest.raises(SimError, match="SIM PIN"):
        await Modem.connect(fake.url, options=OPTIONS)  # type: ignore[attr-defined]


async def test_verbose_sim_busy_is_retried(fake: FakeModem) -> None:
    script_identity(fake)
    fake.reply_to("AT+CPIN?", ["+CME ERROR: SIM busy"], times=2)
    async with await Modem.connect(fake.url, options=OPTIONS) as modem:  # type: ignore[attr-defined]
        assert modem.state is LinkState.READY
    assert fake.commands.count("AT+CPIN?") == 3


async def test_radio_left_off_is_switched_on_at_connect() -> None:
    emu = Emulator(registration_delay=0.02)
    try:
        host, port = await emu.start_tcp("127.0.0.1", 0)
        url = f"socket://{host}:{port}"
        async with await Modem.connect(url, options=OPTIONS) as modem:
            await modem.command("AT+CFUN=0", allow_unsafe=True)  # e.g. an interrupted APN change
        assert emu.state.cfun == 0
        options = ModemOptions(registration_timeout=2.0, poll_interval=None, watchdog_interval=None)
        async with await Modem.connect(url, options=options) as modem:
            assert modem.state is LinkState.READY
            assert modem.status.registration == "home"
            assert modem.info.imsi == emu.imsi
    finally:
        await emu.stop()


async def test_set_apn_without_cpin_urc_polls_the_sim(
    fake: FakeModem, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(const, "CPIN_READY_TIMEOUT", 30.0)  # must not be waited out
    script_identity(fake)
    for command in ("AT+CFUN=0", 'AT*MCGDEFCONT="IP","3GNET"', "AT+CFUN=1"):
        fake.reply_to(command, ["OK"])  # and no +CPIN: READY URC at all
    async with await Modem.connect(fake.url, options=OPTIONS) as modem:  # type: ignore[attr-defined]
        async with asyncio.timeout(5):
            await modem.set_apn("3GNET")
        sent = fake.commands
        after = sent[sent.index("AT+CFUN=1") :]
        assert "AT+CPIN?" in after


async def test_set_apn_refused_still_turns_the_radio_back_on(fake: FakeModem) -> None:
    script_identity(fake)
    fake.reply_to("AT+CFUN=0", ["OK"])
    fake.reply_to("AT+CFUN=1", ["OK", "+CPIN: READY"])
    fake.reply_to('AT*MCGDEFCONT="IP","bad"', ["+CME ERROR: 3"])
    async with await Modem.connect(fake.url, options=OPTIONS) as modem:  # type: ignore[attr-defined]
        with pytest.raises(AtCommandError, match="MCGDEFCONT"):
            await modem.set_apn("bad")
        assert fake.commands.index("AT+CFUN=1") > fake.commands.index('AT*MCGDEFCONT="IP","bad"')
