"""Exchanges copied from the application note (SIM7020_TCPIP_Application_Note_v1.04), replayed by the
fake peer byte for byte, and what the engine makes of them."""

from __future__ import annotations

import pytest

from sim7020_core.at import AtEngine, Urc
from tests.fakes.fake_modem import Pause


async def test_multi_link_client_session(engine: AtEngine, fake_modem) -> None:
    """Note 6.8 (multi-link client): CIPSTART answers OK then '<n>,CONNECT OK'; '+RECEIVE' carries data."""
    urcs: list[Urc] = []
    engine.add_urc_handler("+RECEIVE", urcs.append)
    fake_modem.reply_to("AT+CIPMUX=1", ["OK"])
    fake_modem.reply_to('AT+CIPSTART=0,"TCP","116.228.221.51","8500"', ["OK", Pause(0.01), "0,CONNECT OK"])
    fake_modem.reply_to(
        "AT+CIPSEND=0",
        [Pause(0.01), "0,SEND OK", b"\r\n+RECEIVE,0,16:\r\n0123456789abcdef\r\n"],
        prompt=True,
    )
    assert (await engine.command("AT+CIPMUX=1")).final == "OK"
    resp = await engine.command(
        'AT+CIPSTART=0,"TCP","116.228.221.51","8500"',
        final=("CONNECT OK", "CONNECT FAIL", "ALREADY CONNECT"),
        after_ok=True,
    )
    assert resp.final == "0,CONNECT OK"
    resp = await engine.send_data("AT+CIPSEND=0", b"TCP test", terminator=b"\x1a")
    assert resp.final == "0,SEND OK"
    assert fake_modem.data == [b"TCP test"]
    fake_modem.reply_to("AT+CIPCLOSE=0", ["0, CLOSE OK"])
    assert (await engine.command("AT+CIPCLOSE=0")).final == "0, CLOSE OK"
    assert urcs == [Urc("+RECEIVE,0,16", b"0123456789abcdef")]


async def test_quick_send_data_accept(engine: AtEngine, fake_modem) -> None:
    """Note 6.9.3: with CIPQSEND=1 the final result is 'DATA ACCEPT: <n>,<len>' instead of SEND OK."""
    fake_modem.reply_to("AT+CIPQSEND=1", ["OK"])
    fake_modem.reply_to("AT+CIPSEND=0", ["DATA ACCEPT: 0,10"], prompt=True)
    await engine.command("AT+CIPQSEND=1")
    resp = await engine.send_data("AT+CIPSEND=0", b"1234567890", terminator=b"\x1a")
    assert resp.final == "DATA ACCEPT: 0,10"


async def test_manual_receive(engine: AtEngine, fake_modem) -> None:
    """Note 6.10.2: '+CIPRXGET: 1' announces data; CIPRXGET=2 returns it after its header line."""
    announced: list[Urc] = []
    engine.add_urc_handler("+CIPRXGET: 1", announced.append)
    fake_modem.emit_urc("+CIPRXGET: 1")
    fake_modem.reply_to("AT+CIPRXGET=2,1460", [b"\r\n+CIPRXGET: 2,11,0\r\nHELLO WORLD\r\nOK\r\n"])
    fake_modem.reply_to("AT+CIPRXGET=3,730", ["+CIPRXGET: 3,11,0", "48454C4C4F20574F524C44", "OK"])
    await fake_modem.flush()
    resp = await engine.command("AT+CIPRXGET=2,1460")
    assert resp.payloads == [b"HELLO WORLD"]
    resp = await engine.command("AT+CIPRXGET=3,730")
    assert resp.lines == ["+CIPRXGET: 3,11,0", "48454C4C4F20574F524C44"]
    assert announced == [Urc("+CIPRXGET: 1")]


async def test_server_urcs(engine: AtEngine, fake_modem) -> None:
    """Note 6.8 (server): OK then SERVER OK; a client shows up as '<n>, REMOTE IP: <ip>'."""
    seen: list[str] = []
    engine.add_urc_handler("SERVER", lambda u: seen.append(u.line))
    engine.add_urc_handler("0, REMOTE IP", lambda u: seen.append(u.line))
    fake_modem.reply_to("AT+CIPSERVER=1,8888", ["OK", "SERVER OK"])
    await engine.command("AT+CIPSERVER=1,8888")
    # the module answers AT+CIFSR with the bare address and no OK (note 6.3, 6.7)
    fake_modem.reply_to("AT+CIFSR", ["0, REMOTE IP: 10.76.40.73", "10.78.245.128"])
    assert (await engine.command("AT+CIFSR")).final == "10.78.245.128"
    assert seen == ["SERVER OK", "0, REMOTE IP: 10.76.40.73"]


async def test_native_socket_urcs(engine: AtEngine, fake_modem) -> None:
    """Notes 5.x: '+CSONMI: 0,6,313233' (hex), '+CSOERR: 0,2', and PSM URCs between commands."""
    seen: list[str] = []
    for prefix in ("+CSONMI", "+CSOERR", "+CPSMSTATUS"):
        engine.add_urc_handler(prefix, lambda u: seen.append(u.line))
    fake_modem.reply_to("AT+CSOC=1,2,1", ["+CSOC: 0", "OK"])
    fake_modem.reply_to('AT+CSOSEND=0,0,"Hello World!!!"', ['+CPSMSTATUS: "EXIT PSM"', "OK"])
    assert (await engine.command("AT+CSOC=1,2,1")).lines == ["+CSOC: 0"]
    fake_modem.emit_urc('+CPSMSTATUS: "ENTER PSM"')
    await engine.command('AT+CSOSEND=0,0,"Hello World!!!"')
    fake_modem.emit_urc("+CSONMI: 0,12,313233343536")
    fake_modem.emit_urc("+CSOERR: 0,2")
    await fake_modem.flush()
    await engine.command("AT")
    assert seen == [
        '+CPSMSTATUS: "ENTER PSM"',
        '+CPSMSTATUS: "EXIT PSM"',
        "+CSONMI: 0,12,313233343536",
        "+CSOERR: 0,2",
    ]


@pytest.mark.parametrize(
    ("final", "code", "text"),
    [("+CME ERROR: 3", 3, None), ("+CME ERROR: operation not allowed", 3, "operation not allowed")],
)
async def test_cme_forms(engine: AtEngine, fake_modem, final: str, code: int, text: str | None) -> None:
    from sim7020_core.exceptions import CmeError

    fake_modem.reply_to('AT+CSOCON=0,5245,"116.247.119.165"', [final])
    with pytest.raises(CmeError) as info:
        await engine.command('AT+CSOCON=0,5245,"116.247.119.165"')
    assert (info.value.cme_code, info.value.cme_text) == (code, text)
