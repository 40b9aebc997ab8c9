"""The AT engine against the real emulator (written from the reference documents), over TCP and a pty."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sim7020_core.at import AtEngine, Urc
from sim7020_core.emulator import Emulator
from sim7020_core.exceptions import AtCommandError, AtTimeoutError
from sim7020_core.link import SerialLink


@pytest.fixture(params=["tcp", "pty"])
async def emu_engine(request: pytest.FixtureRequest) -> AsyncIterator[tuple[Emulator, AtEngine]]:
    emu = Emulator(hosts={"example.com": "127.0.0.1"}, registration_delay=0.0)
    if request.param == "tcp":
        host, port = await emu.start_tcp("127.0.0.1", 0)
        url = f"socket://{host}:{port}"
    else:
        url = await emu.start_pty()
    link = await SerialLink.open(url)
    engine = AtEngine(link)
    try:
        yield emu, engine
    finally:
        await engine.detach()  # the engine's deadline timer goes with it
        await link.close()
        await emu.stop()


async def test_sync_echo_off_and_query(emu_engine) -> None:
    emu, engine = emu_engine
    await engine.sync()
    await engine.command("ATE0")
    await engine.command("AT+CMEE=1")
    resp = await engine.command("AT+CSQ")
    assert resp.lines == ["+CSQ: 20,0"]
    emu.set_signal(csq=5)
    assert (await engine.command("AT+CSQ")).lines[0].startswith("+CSQ: 5,")
    assert (await engine.command("AT+CGSN")).lines == [emu.imei]


async def test_echo_is_tolerated_without_ate0(emu_engine) -> None:
    emu, engine = emu_engine
    await engine.sync()
    assert (await engine.command("AT+CGSN")).lines == [emu.imei]
    assert engine.stats.echo_lines >= 1


async def test_error_from_emulator(emu_engine) -> None:
    _, engine = emu_engine
    await engine.sync()
    await engine.command("AT+CMEE=1")
    with pytest.raises(AtCommandError):
        await engine.command("AT+NOSUCHCOMMAND")


async def test_dns_lookup_until_urc(emu_engine) -> None:
    _, engine = emu_engine
    await engine.sync()
    await engine.command("ATE0")
    resp = await engine.command_with_urcs('AT+CDNSGIP="example.com"', "+CDNSGIP", timeout=10)
    assert resp.urcs[0].startswith('+CDNSGIP: 1,"example.com"')
    assert "127.0.0.1" in resp.urcs[0]


async def test_reboot_urcs_and_echo_after_reboot(emu_engine) -> None:
    emu, engine = emu_engine
    await engine.sync()
    await engine.command("ATE0")
    seen: list[Urc] = []
    engine.add_urc_handler("RDY", seen.append)
    async with engine.capture_urcs("+CPIN") as cpin:
        emu.reboot()
        async with asyncio.timeout(5):
            await cpin.get()
    await engine.sync()
    assert (await engine.command("AT+CGSN")).lines == [emu.imei]  # echo is back on: tolerated
    assert [u.line for u in seen] == ["RDY"]


async def test_dropped_response_then_recovery(emu_engine, fast_timeouts) -> None:
    emu, engine = emu_engine
    await engine.sync()
    await engine.command("ATE0")
    emu.drop_next_response()
    with pytest.raises(AtTimeoutError):
        await engine.command("AT+CSQ", timeout=0.3)
    assert (await engine.command("AT+CGSN")).lines == [emu.imei]


async def test_garbage_from_emulator(emu_engine) -> None:
    emu, engine = emu_engine
    await engine.sync()
    await engine.command("ATE0")
    noise: list[bytes] = []
    engine.on_unsolicited_garbage(noise.append)
    emu.inject_garbage(b"\r\n+CRE\xff\x80b\r\n")
    assert (await engine.command("AT+CGSN")).lines == [emu.imei]
    assert noise == [b"+CRE\xff\x80b"]


async def test_reboot_mid_command(emu_engine, fast_timeouts) -> None:
    emu, engine = emu_engine
    await engine.sync()
    await engine.command("ATE0")
    emu.drop_next_response()  # the module takes the command, then resets before answering
    task = asyncio.ensure_future(engine.command("AT+CGSN", timeout=0.3))
    await asyncio.sleep(0.05)
    emu.reboot()
    try:
        resp = await task
    except AtTimeoutError:
        pass
    else:  # if the rebooted module still answered, it must be the right answer
        assert resp.lines == [emu.imei]
    await engine.sync(attempts=20, attempt_timeout=0.1)  # the module boots for a while
    resp = await engine.command("AT+CSQ")
    assert len(resp.lines) == 1
    assert resp.lines[0].startswith("+CSQ: ")
