"""AtEngine against the scriptable fake peer over a real loopback socket."""

from __future__ import annotations

import asyncio

import pytest

from sim7020_core.at import AtEngine, Priority, Urc
from sim7020_core.exceptions import (
    AtCommandError,
    AtTimeoutError,
    CmeError,
    CommandInterruptedError,
    TransportError,
)
from tests.fakes.fake_modem import Pause


async def test_info_line_and_ok(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CSQ", ["+CSQ: 20,0", "OK"])
    resp = await engine.command("AT+CSQ", timeout=2)
    assert resp.lines == ["+CSQ: 20,0"]
    assert resp.final == "OK"
    assert resp.ok
    assert fake_modem.commands[-1] == "AT+CSQ"


async def test_bare_value_lines(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CGSN", ["864000012345678", "OK"])
    assert (await engine.command("AT+CGSN")).lines == ["864000012345678"]


async def test_error_raises_at_command_error(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CSOC=1,1,1", ["ERROR"])
    with pytest.raises(AtCommandError) as info:
        await engine.command("AT+CSOC=1,1,1")
    assert info.value.command == "AT+CSOC=1,1,1"
    assert info.value.final == "ERROR"
    assert not isinstance(info.value, CmeError)


async def test_cme_error_numeric(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CPIN?", ["+CME ERROR: 10"])
    with pytest.raises(CmeError) as info:
        await engine.command("AT+CPIN?")
    assert info.value.cme_code == 10


async def test_cme_error_verbose(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CPIN?", ["+CME ERROR: SIM busy"])
    with pytest.raises(CmeError) as info:
        await engine.command("AT+CPIN?")
    assert info.value.cme_text == "SIM busy"
    assert info.value.cme_code == 14


async def test_check_false_returns_error(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+X", ["ERROR"])
    resp = await engine.command("AT+X", check=False)
    assert resp.final == "ERROR"
    assert not resp.ok


async def test_urc_between_commands_goes_to_handler(engine: AtEngine, fake_modem) -> None:
    got: list[Urc] = []
    engine.add_urc_handler("+CSONMI", got.append)
    fake_modem.emit_urc("+CSONMI: 0,6,313233")
    await fake_modem.flush()
    fake_modem.reply_to("AT", ["OK"])
    await engine.command("AT")
    assert got == [Urc("+CSONMI: 0,6,313233")]


async def test_urc_inside_a_response(engine: AtEngine, fake_modem) -> None:
    got: list[str] = []
    engine.add_urc_handler("+CSONMI", lambda u: got.append(u.line))
    engine.add_urc_handler("CLOSED", lambda u: got.append(u.line))
    fake_modem.reply_to(
        "AT+CGCONTRDP",
        ['+CGCONTRDP: 1,5,"iot","10.0.0.2.255.255.255.0"', "+CSONMI: 1,4,3031", "CLOSED", "OK"],
    )
    resp = await engine.command("AT+CGCONTRDP")
    assert resp.lines == ['+CGCONTRDP: 1,5,"iot","10.0.0.2.255.255.255.0"']
    assert got == ["+CSONMI: 1,4,3031", "CLOSED"]


async def test_remover_stops_handler(engine: AtEngine, fake_modem) -> None:
    got: list[Urc] = []
    remove = engine.add_urc_handler("+CEREG", got.append)
    remove()
    fake_modem.emit_urc("+CEREG: 1")
    fake_modem.reply_to("AT", ["OK"])
    await fake_modem.flush()
    await engine.command("AT")
    assert got == []
    assert engine.stats.unhandled_urcs == 1


async def test_wait_for_urc_and_capture(engine: AtEngine, fake_modem) -> None:
    waiter = asyncio.ensure_future(engine.wait_for_urc("+CPIN", timeout=2))
    async with engine.capture_urcs("+CPSMSTATUS") as queue:
        fake_modem.emit_urc("+CPIN: READY")
        fake_modem.emit_urc('+CPSMSTATUS: "ENTER PSM"')
        assert (await waiter).line == "+CPIN: READY"
        async with asyncio.timeout(2):
            assert (await queue.get()).line == '+CPSMSTATUS: "ENTER PSM"'


async def test_wait_for_urc_times_out(engine: AtEngine) -> None:
    with pytest.raises(AtTimeoutError):
        await engine.wait_for_urc("+NEVER", timeout=0.05)


async def test_echo_on_after_reboot_is_tolerated(engine: AtEngine, fake_modem) -> None:
    fake_modem.echo = True
    fake_modem.emit_urc("RDY")
    fake_modem.reply_to("AT+CSQ", ["+CSQ: 17,99", "OK"])
    resp = await engine.command("AT+CSQ")
    assert resp.lines == ["+CSQ: 17,99"]
    assert engine.stats.echo_lines >= 1


async def test_echo_of_a_bare_value_command(engine: AtEngine, fake_modem) -> None:
    fake_modem.echo = True
    fake_modem.reply_to("AT+CGSN", ["864000012345678", "OK"])
    assert (await engine.command("AT+CGSN")).lines == ["864000012345678"]


async def test_byte_at_a_time(engine: AtEngine, fake_modem) -> None:
    fake_modem.chunk_size = 1
    fake_modem.reply_to("AT+COPS?", ['+COPS: 0,0,"CHN-UNICOM",9', "OK"])
    resp = await engine.command("AT+COPS?")
    assert resp.lines == ['+COPS: 0,0,"CHN-UNICOM",9']


async def test_never_answered_then_next_command_works(engine: AtEngine, fake_modem, fast_timeouts) -> None:
    fake_modem.never_answer("AT+CSQ")
    with pytest.raises(AtTimeoutError) as info:
        await engine.command("AT+CSQ", timeout=0.1)
    assert isinstance(info.value, TimeoutError)
    fake_modem.reply_to("AT+CGMR", ["Revision:1752B05SIM7020E", "OK"])
    assert (await engine.command("AT+CGMR")).lines == ["Revision:1752B05SIM7020E"]


async def test_late_answer_is_not_given_to_next_command(engine: AtEngine, fake_modem, fast_timeouts) -> None:
    fake_modem.reply_to("AT+CSQ", [Pause(0.15), "+CSQ: 20,0", "OK"])
    with pytest.raises(AtTimeoutError):
        await engine.command("AT+CSQ", timeout=0.05)
    fake_modem.reply_to("AT+CGSN", ["864000012345678", "OK"])
    resp = await engine.command("AT+CGSN")
    assert resp.lines == ["864000012345678"]
    assert engine.stats.stale_answers == 1


async def test_late_error_is_not_given_to_next_command(engine: AtEngine, fake_modem, fast_timeouts) -> None:
    fake_modem.reply_to('AT+CSOCON=0,80,"1.2.3.4"', [Pause(0.1), "ERROR"])
    with pytest.raises(AtTimeoutError):
        await engine.command('AT+CSOCON=0,80,"1.2.3.4"', timeout=0.03)
    resp = await engine.command("AT")
    assert resp.final == "OK"


async def test_garbage_between_answers(engine: AtEngine, fake_modem) -> None:
    seen: list[bytes] = []
    engine.on_unsolicited_garbage(seen.append)
    fake_modem.send_raw(b"\xff\xfe+CRE\x80b\x93\r\n")
    fake_modem.reply_to("AT+CSQ", ["+CSQ: 9,0", "OK"])
    await fake_modem.flush()
    resp = await engine.command("AT+CSQ")
    assert resp.lines == ["+CSQ: 9,0"]
    assert seen == [b"\xff\xfe+CRE\x80b\x93"]


async def test_garbage_glued_to_a_final_never_resolves_wrongly(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CSQ", [b"\r\n+CSQ: 9,0\r\n\r\n\xffOK\r\n"])
    with pytest.raises(AtTimeoutError):
        await engine.command("AT+CSQ", timeout=0.1)


async def test_prompt_command_writes_data(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CIPSEND=5", ["SEND OK"], prompt=True, data_len=5)
    resp = await engine.send_data("AT+CIPSEND=5", b"he\r\nl")
    assert resp.final == "SEND OK"
    assert fake_modem.data == [b"he\r\nl"]


async def test_prompt_command_with_ctrl_z(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CIPSEND=0", ["0, SEND OK"], prompt=True)
    resp = await engine.send_data("AT+CIPSEND=0", b"TCP test", terminator=b"\x1a")
    assert resp.final == "0, SEND OK"
    assert fake_modem.data == [b"TCP test"]


async def test_send_fail_raises(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CIPSEND", ["SEND FAIL"], prompt=True)
    with pytest.raises(AtCommandError) as info:
        await engine.send_data("AT+CIPSEND", b"x", terminator=b"\x1a")
    assert info.value.final == "SEND FAIL"


async def test_data_accept_final(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CIPSEND=0", ["DATA ACCEPT: 0,10"], prompt=True)
    resp = await engine.send_data("AT+CIPSEND=0", b"1234567890", terminator=b"\x1a")
    assert resp.final == "DATA ACCEPT: 0,10"


async def test_csodsend_data_accept_then_ok(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CSODSEND=0,3", ["DATA ACCEPT: 3", "OK"], prompt=True, data_len=3)
    resp = await engine.send_data("AT+CSODSEND=0,3", b"abc")
    assert resp.lines == ["DATA ACCEPT: 3"]
    assert resp.final == "OK"
    assert (await engine.command("AT")).final == "OK"  # nothing left over


async def test_cipstart_final_after_ok(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to('AT+CIPSTART="TCP","1.2.3.4",80', ["OK", Pause(0.02), "CONNECT OK"])
    resp = await engine.command(
        'AT+CIPSTART="TCP","1.2.3.4",80', final=("CONNECT OK", "CONNECT FAIL"), after_ok=True
    )
    assert resp.final == "CONNECT OK"


async def test_cipstart_multi_link_connect_fail(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to('AT+CIPSTART=1,"TCP","1.2.3.4",80', ["OK", "1, CONNECT FAIL"])
    with pytest.raises(AtCommandError) as info:
        await engine.command(
            'AT+CIPSTART=1,"TCP","1.2.3.4",80', final=("CONNECT OK", "CONNECT FAIL"), after_ok=True
        )
    assert info.value.final == "1, CONNECT FAIL"


async def test_connect_ok_while_other_command_is_a_urc(engine: AtEngine, fake_modem) -> None:
    got: list[str] = []
    engine.add_urc_handler("0, CONNECT OK", lambda u: got.append(u.line))
    fake_modem.reply_to("AT+CSQ", ["0, CONNECT OK", "+CSQ: 20,0", "OK"])
    resp = await engine.command("AT+CSQ")
    assert resp.lines == ["+CSQ: 20,0"]
    assert got == ["0, CONNECT OK"]


async def test_cipshut_and_cipclose_finals(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CIPSHUT", ["SHUT OK"])
    fake_modem.reply_to("AT+CIPCLOSE=2", ["2, CLOSE OK"])
    assert (await engine.command("AT+CIPSHUT")).final == "SHUT OK"
    assert (await engine.command("AT+CIPCLOSE=2")).final == "2, CLOSE OK"


async def test_cdnsgip_until_urc(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to(
        'AT+CDNSGIP="www.baidu.com"', ["OK", Pause(0.02), '+CDNSGIP: 1,"www.baidu.com","39.156.66.14"']
    )
    resp = await engine.command_with_urcs('AT+CDNSGIP="www.baidu.com"', "+CDNSGIP", timeout=2)
    assert resp.urcs == ['+CDNSGIP: 1,"www.baidu.com","39.156.66.14"']


async def test_late_cdnsgip_times_out_and_does_not_disturb(engine: AtEngine, fake_modem) -> None:
    got: list[str] = []
    engine.add_urc_handler("+CDNSGIP", lambda u: got.append(u.line))
    fake_modem.reply_to('AT+CDNSGIP="slow.example"', ["OK", Pause(0.2), "+CDNSGIP: 0,8"])
    with pytest.raises(AtTimeoutError):
        await engine.command_with_urcs('AT+CDNSGIP="slow.example"', "+CDNSGIP", urc_timeout=0.05)
    fake_modem.reply_to("AT+CSQ", [Pause(0.25), "+CSQ: 20,0", "OK"])
    resp = await engine.command("AT+CSQ")
    assert resp.lines == ["+CSQ: 20,0"]
    assert got == ["+CDNSGIP: 0,8"]


async def test_other_commands_run_while_waiting_for_urc(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to('AT+CDNSGIP="a.example"', ["OK"])
    task = asyncio.ensure_future(engine.command_with_urcs('AT+CDNSGIP="a.example"', "+CDNSGIP", timeout=2))
    await fake_modem.wait_for_command('AT+CDNSGIP="a.example"')
    fake_modem.reply_to("AT+CSQ", ["+CSQ: 20,0", '+CDNSGIP: 1,"a.example","10.0.0.1"', "OK"])
    assert (await engine.command("AT+CSQ")).lines == ["+CSQ: 20,0"]
    assert (await task).urcs == ['+CDNSGIP: 1,"a.example","10.0.0.1"']


async def test_cipping_counts_urcs(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to(
        'AT+CIPPING="61.135.169.121"',
        ["OK"] + [f"+CIPPING: {i},61.135.169.121,{i + 1},52" for i in range(1, 5)],
    )
    resp = await engine.command_with_urcs('AT+CIPPING="61.135.169.121"', "+CIPPING", count=4)
    assert [u.split(",")[0] for u in resp.urcs] == [f"+CIPPING: {i}" for i in range(1, 5)]


async def test_cipping_partial(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to('AT+CIPPING="10.9.9.9",2', ["OK", "+CIPPING: 1,10.9.9.9,3,52"])
    resp = await engine.command_with_urcs(
        'AT+CIPPING="10.9.9.9",2', "+CIPPING", count=2, urc_timeout=0.1, partial=True
    )
    assert resp.urcs == ["+CIPPING: 1,10.9.9.9,3,52"]


async def test_extra_ciprxget_1_lines_before_the_answer(engine: AtEngine, fake_modem) -> None:
    got: list[str] = []
    engine.add_urc_handler("+CIPRXGET: 1", lambda u: got.append(u.line))
    fake_modem.reply_to("AT+CIPRXGET=4", ["+CIPRXGET: 1", "+CIPRXGET: 1", "+CIPRXGET: 4,11", "OK"])
    resp = await engine.command("AT+CIPRXGET=4")
    assert resp.lines == ["+CIPRXGET: 4,11"]
    assert got == ["+CIPRXGET: 1", "+CIPRXGET: 1"]


async def test_ciprxget_2_binary_payload(engine: AtEngine, fake_modem) -> None:
    data = b"HEL\r\nLO\x00\xff\r\n"
    fake_modem.reply_to(
        "AT+CIPRXGET=2,1460", [b"\r\n+CIPRXGET: 2,%d,0\r\n" % len(data) + data + b"\r\nOK\r\n"]
    )
    resp = await engine.command("AT+CIPRXGET=2,1460")
    assert resp.lines == [f"+CIPRXGET: 2,{len(data)},0"]
    assert resp.payloads == [data]


async def test_ipd_and_receive_urcs(engine: AtEngine, fake_modem) -> None:
    got: list[Urc] = []
    engine.add_urc_handler("+IPD", got.append)
    engine.add_urc_handler("+RECEIVE", got.append)
    fake_modem.send_raw(b"\r\n+IPD,5:te\r\n1")
    fake_modem.send_raw(b"\r\n+IPD,3,TCP:abc")
    fake_modem.send_raw(b"\r\n+RECEIVE,0,4:\r\nOK\r\n\r\n")
    fake_modem.reply_to("AT", ["OK"])
    await fake_modem.flush()
    assert (await engine.command("AT")).final == "OK"
    assert got == [Urc("+IPD,5", b"te\r\n1"), Urc("+IPD,3,TCP", b"abc"), Urc("+RECEIVE,0,4", b"OK\r\n")]


async def test_raw_csonmi_rule(engine: AtEngine, fake_modem) -> None:
    from sim7020_core.at import CSONMI_RAW_RULE

    engine.set_raw_payload_rule("csonmi", CSONMI_RAW_RULE)
    got: list[Urc] = []
    engine.add_urc_handler("+CSONMI", got.append)
    fake_modem.send_raw(b"\r\n+CSONMI: 0,6,\r\nOK\r\n\r\n")
    fake_modem.reply_to("AT", ["OK"])
    await fake_modem.flush()
    assert (await engine.command("AT")).final == "OK"
    assert got == [Urc("+CSONMI: 0,6", b"\r\nOK\r\n")]


async def test_priority_order(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+SLOW", [Pause(0.05), "OK"])
    order: list[str] = []

    async def run(cmd: str, prio: Priority) -> None:
        await engine.command(cmd, priority=prio)
        order.append(cmd)

    first = asyncio.ensure_future(run("AT+SLOW", Priority.NORMAL))
    await fake_modem.wait_for_command("AT+SLOW")
    fake_modem.reply_to("AT+LOW", ["OK"])
    fake_modem.reply_to("AT+NORMAL", ["OK"])
    fake_modem.reply_to("AT+HIGH", ["OK"])
    rest = [
        asyncio.ensure_future(run("AT+LOW", Priority.LOW)),
        asyncio.ensure_future(run("AT+NORMAL", Priority.NORMAL)),
        asyncio.ensure_future(run("AT+HIGH", Priority.HIGH)),
    ]
    await asyncio.gather(first, *rest)
    assert order == ["AT+SLOW", "AT+HIGH", "AT+NORMAL", "AT+LOW"]
    assert fake_modem.commands[-4:] == order


async def test_cancelled_caller_does_not_desync(engine: AtEngine, fake_modem, fast_timeouts) -> None:
    fake_modem.reply_to("AT+CSQ", [Pause(0.1), "+CSQ: 1,1", "OK"])
    task = asyncio.ensure_future(engine.command("AT+CSQ"))
    await fake_modem.wait_for_command("AT+CSQ")
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    fake_modem.reply_to("AT+CGSN", ["864000012345678", "OK"])
    assert (await engine.command("AT+CGSN")).lines == ["864000012345678"]


async def test_link_lost_fails_pending_and_notifies(engine: AtEngine, fake_modem) -> None:
    lost: list[object] = []
    engine.on_connection_lost(lost.append)
    fake_modem.never_answer("AT+CSQ")
    task = asyncio.ensure_future(engine.command("AT+CSQ", timeout=2))
    await fake_modem.wait_for_command("AT+CSQ")
    await fake_modem.drop_connection()
    with pytest.raises(TransportError):
        await task
    assert len(lost) == 1
    with pytest.raises(TransportError):
        await engine.command("AT")


async def test_bad_command_text(engine: AtEngine) -> None:
    with pytest.raises(ValueError, match="CR or LF"):
        await engine.command("AT\r+CSQ")
    with pytest.raises(ValueError, match="empty"):
        await engine.command("  ")
    with pytest.raises(ValueError, match="count"):
        await engine.command_with_urcs("AT+CIPPING=1", "+CIPPING", count=0)


async def test_no_link(engine: AtEngine) -> None:
    bare = AtEngine()
    with pytest.raises(TransportError):
        await bare.command("AT")


async def test_transparent_data_mode(engine: AtEngine, fake_modem, fast_timeouts) -> None:
    received = bytearray()
    fake_modem.reply_to("AT+CIPCHAN", [b"\r\nCONNECT\r\n1234567890"], data_mode=True)
    resp = await engine.command_to_data_mode("AT+CIPCHAN", received.extend)
    assert resp.final == "CONNECT"
    assert engine.in_data_mode
    fake_modem.send_raw(b"\r\nOK\r\n+CSQ: raw")
    await fake_modem.flush()
    await engine.write_raw(b"123456")
    async with asyncio.timeout(2):
        while bytes(received) != b"1234567890\r\nOK\r\n+CSQ: raw":
            await asyncio.sleep(0.005)
    with pytest.raises(Exception, match="data mode"):
        await engine.command("AT")
    await engine.escape_data_mode()
    assert not engine.in_data_mode
    assert bytes(fake_modem.data_stream) == b"123456"
    assert (await engine.command("AT")).final == "OK"


async def test_late_prompt_of_timed_out_send_is_cancelled(engine: AtEngine, fake_modem, fast_timeouts):
    fake_modem.reply_to("AT+CIPSEND", [Pause(0.1), b"\r\n> "])
    with pytest.raises(AtTimeoutError):
        await engine.send_data("AT+CIPSEND", b"late", terminator=b"\x1a", timeout=0.03)
    await asyncio.sleep(0.15)
    assert fake_modem.raw_received.endswith(b"\x1b")
    assert b"late" not in fake_modem.raw_received


async def test_cipstatus_state_lines_after_ok(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CIPSTATUS", ["OK", "STATE: CONNECT OK"])
    resp = await engine.command_with_urcs("AT+CIPSTATUS", "STATE:")
    assert resp.urcs == ["STATE: CONNECT OK"]


async def test_multi_link_cipstatus_lines(engine: AtEngine, fake_modem) -> None:
    conns = [f'C: {i},,"","","","INITIAL"' for i in range(6)]
    fake_modem.reply_to("AT+CIPSTATUS", ["OK", "STATE: IP PROCESSING", 'S: 0,0,"8888","LISTENING"', *conns])
    async with engine.capture_urcs("C: ") as queue:
        resp = await engine.command_with_urcs("AT+CIPSTATUS", "C: 5,")
        assert resp.urcs == [conns[5]]
        assert [queue.get_nowait().line for _ in range(5)] == conns[:5]


async def test_send_ack_urc_during_other_command(engine: AtEngine, fake_modem) -> None:
    got: list[str] = []
    engine.add_urc_handler("SEND:", lambda u: got.append(u.line))
    fake_modem.reply_to("AT+CGSN", ["SEND: 0,11", "864000012345678", "OK"])
    assert (await engine.command("AT+CGSN")).lines == ["864000012345678"]
    assert got == ["SEND: 0,11"]


async def test_dns_urc_overtaking_ok_still_reaches_capture(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to('AT+CDNSGIP="x.example"', ['+CDNSGIP: 1,"x.example","10.1.1.1"', "OK"])
    async with engine.capture_urcs("+CDNSGIP") as queue:
        resp = await engine.command('AT+CDNSGIP="x.example"')
        assert resp.lines == []
        assert queue.get_nowait().line == '+CDNSGIP: 1,"x.example","10.1.1.1"'


async def test_final_inside_sent_data_is_still_final(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CIPSEND=7", ["SEND OK"], prompt=True, data_len=7)
    resp = await engine.send_data("AT+CIPSEND=7", b"SEND OK")
    assert resp.final == "SEND OK"


async def test_failing_urc_handler_does_not_break_the_engine(engine: AtEngine, fake_modem, caplog) -> None:
    got: list[str] = []

    def broken(urc: Urc) -> None:
        raise RuntimeError("plugin bug")

    engine.add_urc_handler("+CSONMI", broken)
    engine.add_urc_handler("+CSONMI", lambda u: got.append(u.line))
    fake_modem.reply_to("AT+CSQ", ["+CSONMI: 0,2,41", "+CSQ: 20,0", "OK"])
    assert (await engine.command("AT+CSQ")).lines == ["+CSQ: 20,0"]
    assert got == ["+CSONMI: 0,2,41"]
    assert "plugin bug" in caplog.text


async def test_attach_swaps_links(engine: AtEngine, fake_modem, link) -> None:
    from sim7020_core.link import SerialLink
    from tests.fakes.fake_modem import FakeModem

    other = FakeModem()
    url = await other.start()
    new_link = await SerialLink.open(url)
    try:
        other.reply_to("AT+CGSN", ["222", "OK"])
        fake_modem.reply_to("AT+CGSN", ["111", "OK"])
        assert (await engine.command("AT+CGSN")).lines == ["111"]
        await engine.attach(new_link)
        assert engine.link is new_link
        await link.close()  # the old link going away must not disturb the engine
        assert (await engine.command("AT+CGSN")).lines == ["222"]
        await engine.detach()
        with pytest.raises(TransportError):
            await engine.command("AT")
    finally:
        await new_link.close()
        await other.stop()


async def test_payload_shorter_than_announced_does_not_swallow_forever(
    engine: AtEngine, fake_modem, fast_timeouts
) -> None:
    """A +IPD header announces 50 bytes, then the module reboots: the answers after it come back."""
    urcs: list[Urc] = []
    engine.add_urc_handler("+IPD", urcs.append)
    engine.add_urc_handler("RDY", urcs.append)
    fake_modem.send_raw(b"\r\n+IPD,50:abc")
    fake_modem.reply_to("AT+CSQ", ["RDY", "+CSQ: 20,0", "OK"])
    with pytest.raises(AtTimeoutError):
        await engine.command("AT+CSQ", timeout=0.1)
    assert urcs == [Urc("+IPD,50:abc"), Urc("RDY")]
    fake_modem.reply_to("AT+CGSN", ["864000012345678", "OK"])
    assert (await engine.command("AT+CGSN")).lines == ["864000012345678"]


async def test_cifsr_bare_address_is_the_final_result(engine: AtEngine, fake_modem) -> None:
    """AT+CIFSR answers only the local IP, with no OK (application note 6.3); the next command still works."""
    fake_modem.reply_to("AT+CIFSR", ["10.78.245.128"])
    fake_modem.reply_to("AT+CSQ", ["+CSQ: 20,0", "OK"])
    response = await engine.command("AT+CIFSR", timeout=2.0)
    assert response.final == "10.78.245.128"
    assert (await engine.command("AT+CSQ", timeout=2.0)).lines == ["+CSQ: 20,0"]


async def test_cifsr_error_still_raises(engine: AtEngine, fake_modem) -> None:
    fake_modem.reply_to("AT+CIFSR", ["ERROR"])
    with pytest.raises(AtCommandError):
        await engine.command("AT+CIFSR", timeout=2.0)


async def test_abort_pending_fails_the_command_at_once_and_the_next_one_works(
    engine: AtEngine, fake_modem
) -> None:
    fake_modem.reply_to("AT+CSQ", ["+CSQ: 20,0", "OK"])
    fake_modem.never_answer("AT+CGATT?")
    task = asyncio.create_task(engine.command("AT+CGATT?", timeout=30))
    await asyncio.sleep(0.05)
    assert engine.abort_pending("the module rebooted")
    with pytest.raises(CommandInterruptedError, match=r"AT\+CGATT\?.*rebooted"):
        await asyncio.wait_for(task, 2)
    assert not engine.abort_pending("nothing in flight")
    assert (await engine.command("AT+CSQ", timeout=2)).lines == ["+CSQ: 20,0"]
