"""The replayer as a modem: matching by text, repeats, unknown commands, URC timing, prompts, data blocks."""

from __future__ import annotations

import asyncio
import logging

import pytest

from sim7020_core.sessions import Replayer, build_script, loads
from sim7020_core.sessions.replayer import is_probe

from .conftest import RawClient, tcp_client

HEADER = "# sim7020-session 1\n"


def session(body: str) -> Replayer:
    return Replayer(loads(HEADER + body))


async def serve(replayer: Replayer, clients: list[RawClient]) -> RawClient:
    host, port = await replayer.start_tcp()
    client = await tcp_client(host, port)
    clients.append(client)
    return client


POLLS = """\
0.00 > AT\\r
0.01 < \\r\\nOK\\r\\n
0.10 > AT+CEREG?\\r
0.11 < \\r\\n+CEREG: 4,2\\r\\n\\r\\nOK\\r\\n
0.50 > AT+CEREG?\\r
0.51 < \\r\\n+CEREG: 4,1\\r\\n\\r\\nOK\\r\\n
"""


async def test_each_command_gets_its_recorded_answers_in_order_then_the_last_again(clients) -> None:
    async with session(POLLS) as replayer:
        client = await serve(replayer, clients)
        for expected in (b"+CEREG: 4,2", b"+CEREG: 4,1", b"+CEREG: 4,1", b"+CEREG: 4,1"):
            await client.write(b"AT+CEREG?\r")
            assert expected in await client.expect(b"OK\r\n")
        for _ in range(5):  # an AT sync repeated more often than recorded
            await client.write(b"AT\r")
            assert await client.expect(b"OK\r\n") == b"\r\nOK\r\n"
        assert replayer.unmatched == []


async def test_an_unknown_command_gets_error_and_a_warning(clients, caplog: pytest.LogCaptureFixture) -> None:
    async with session(POLLS) as replayer:
        client = await serve(replayer, clients)
        with caplog.at_level(logging.WARNING):
            await client.write(b"AT+CGMR\r")
            assert await client.expect(b"ERROR\r\n") == b"\r\nERROR\r\n"
        assert replayer.unmatched == [(b"AT+CGMR", b"")]
        assert "'AT+CGMR' is not in the recording" in caplog.text
        await client.write(b"at+cereg?\r\n")  # case and an LF after the CR do not matter
        assert b"+CEREG: 4,2" in await client.expect(b"OK\r\n")


async def test_urcs_come_at_their_recorded_delay_after_the_command_they_followed(clients) -> None:
    replayer = session(
        """\
1.000 > AT+CDNSGIP="example.com"\\r
1.002 < \\r\\nOK\\r\\n
1.300 < \\r\\n+CDNSGIP: 1,"example.com","127.0.0.1"\\r\\n
"""
    )
    async with replayer:
        client = await serve(replayer, clients)
        assert await client.quiet() == b""  # nothing before the command
        loop = asyncio.get_running_loop()
        sent = loop.time()
        await client.write(b'AT+CDNSGIP="example.com"\r')
        assert await client.expect(b"OK\r\n") == b"\r\nOK\r\n"
        await client.expect(b'+CDNSGIP: 1,"example.com","127.0.0.1"\r\n')
        assert loop.time() - sent >= 0.29  # the recorded 0.3 s (a lower bound only: no timing assert above)


async def test_a_urc_recorded_after_a_watchdog_probe_belongs_to_the_command_before(clients) -> None:
    text = """\
1.00 > AT+CSOSEND=0,4,"70696E67"\\r
1.01 < \\r\\nOK\\r\\n
1.10 > AT+CMEE?\\r
1.11 < \\r\\n+CMEE: 1\\r\\n\\r\\nOK\\r\\n\\r\\n+CSONMI: 0,8,706F6E67\\r\\n
"""
    script = build_script(loads(HEADER + text))
    send = script.answers[(b'AT+CSOSEND=0,4,"70696E67"', b"")][0]
    probe = script.answers[(b"AT+CMEE?", b"")][0]
    assert probe.answer == b"\r\n+CMEE: 1\r\n\r\nOK\r\n"
    assert send.answer == b"\r\nOK\r\n\r\n+CSONMI: 0,8,706F6E67\r\n"
    assert [round(delay, 3) for delay, _ in send.output] == [0.01, 0.11]
    async with Replayer(script) as replayer:
        client = await serve(replayer, clients)
        await client.write(b'AT+CSOSEND=0,4,"70696E67"\r')  # no probe this time: the URC comes all the same
        await client.expect(b"+CSONMI: 0,8,706F6E67\r\n")


async def test_the_boot_banner_is_sent_when_the_client_connects(clients) -> None:
    replayer = session(
        """\
0.0 < \\r\\nRDY\\r\\n
0.5 * client connected from 127.0.0.1:40000
0.6 < \\r\\n+CPIN: READY\\r\\n
0.7 > AT\\r
0.7 < \\r\\nOK\\r\\n
"""
    )
    async with replayer:
        client = await serve(replayer, clients)
        assert (
            await client.expect(b"+CPIN: READY\r\n") == b"\r\n+CPIN: READY\r\n"
        )  # RDY came before the client


async def test_a_length_delimited_block_after_the_prompt(clients) -> None:
    replayer = session(
        """\
0.0 > AT+CSODSEND=0,5\\r
0.0 < \\r\\n>\\x20
0.1 > \\x00\\x01\\r\\n\\xff
0.2 < \\r\\nDATA ACCEPT: 5\\r\\n\\r\\nOK\\r\\n
"""
    )
    async with replayer:
        client = await serve(replayer, clients)
        await client.write(b"AT+CSODSEND=0,5\r")
        assert await client.expect(b"> ") == b"\r\n> "
        await client.write(b"\x00\x01\r")  # CR inside the data is data, not the end of a command
        assert await client.quiet() == b""
        await client.write(b"\n\xff")
        assert await client.expect(b"OK\r\n") == b"\r\nDATA ACCEPT: 5\r\n\r\nOK\r\n"
        await client.write(b"AT+CSODSEND=0,5\r")  # other data than recorded: ERROR
        await client.expect(b"> ")
        await client.write(b"hello")
        assert await client.expect(b"ERROR\r\n") == b"\r\nERROR\r\n"
        assert replayer.unmatched == [(b"AT+CSODSEND=0,5", b"hello")]


async def test_a_ctrl_z_terminated_block_with_echo(clients) -> None:
    replayer = session(
        """\
0.0 > AT+CIPSEND\\r
0.0 < AT+CIPSEND\\r\\r\\n>\\x20
0.1 > hel
0.1 < hel
0.2 > lo\\x1a
0.2 < lo
0.9 < \\r\\nSEND OK\\r\\n
"""
    )
    script = replayer.script
    assert script.answers[(b"AT+CIPSEND", b"hello\x1a")][0].answer == b"hello\r\nSEND OK\r\n"
    async with replayer:
        client = await serve(replayer, clients)
        await client.write(b"AT+CIPSEND\r")
        await client.expect(b"> ")
        await client.write(b"hello\x1a")  # any split: the block ends at Ctrl+Z
        assert await client.expect(b"SEND OK\r\n") == b"hello\r\nSEND OK\r\n"


async def test_binary_data_with_ctrl_z_inside_is_taken_by_its_length(clients) -> None:
    replayer = session(
        """\
0.0 > AT+CSODSEND=0,4\\r
0.0 < \\r\\n>\\x20
0.1 > \\x1a\\x1b\\x1a\\x00
0.2 < \\r\\nDATA ACCEPT: 4\\r\\n\\r\\nOK\\r\\n
"""
    )
    async with replayer:
        client = await serve(replayer, clients)
        await client.write(b"AT+CSODSEND=0,4\r")
        await client.expect(b"> ")
        await client.write(b"\x1a\x1b\x1a\x00")
        assert await client.expect(b"OK\r\n") == b"\r\nDATA ACCEPT: 4\r\n\r\nOK\r\n"


async def test_a_shorter_block_ended_by_ctrl_z_is_answered_at_once(clients) -> None:
    replayer = session(
        """\
0.0 > AT+CIPSEND\\r
0.0 < \\r\\n>\\x20
0.2 > hello\\x1a
0.9 < \\r\\nSEND OK\\r\\n
"""
    )
    async with replayer:
        client = await serve(replayer, clients)
        await client.write(b"AT+CIPSEND\r")
        await client.expect(b"> ")
        await client.write(b"hi\x1a")  # not what was recorded: ERROR, without waiting for more bytes
        assert await client.expect(b"ERROR\r\n") == b"\r\nERROR\r\n"
        assert replayer.unmatched == [(b"AT+CIPSEND", b"hi\x1a")]


async def test_replay_over_a_pty(clients) -> None:
    from .conftest import PtyClient

    async with session(POLLS) as replayer:
        path = await replayer.start_pty()
        client = PtyClient(path)
        clients.append(client)
        await client.write(b"AT+CEREG?\r")
        assert b"+CEREG: 4,2" in await client.expect(b"OK\r\n")


@pytest.mark.parametrize(
    ("command", "probe"),
    [
        ("AT", True),
        ("AT+CEREG?", True),
        ("AT+CSOC=?", True),
        ("AT+CSQ", True),
        ("AT+CGSN", True),
        ("AT+CMEE=1", False),
        ('AT+CSOSEND=0,4,"70696E67"', False),
        ("ATE0", False),
        ("AT+CFUN=1,1", False),
    ],
)
def test_probes_are_reads_tests_and_pure_queries(command: str, probe: bool) -> None:
    assert is_probe(command.encode()) is probe


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError, match="speed must be positive"):
        Replayer(loads(HEADER), speed=0)
