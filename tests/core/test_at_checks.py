"""What may go into an AT command (sim7020_core/modem/checks.py), at the library's surface.

The raw-AT guard of ``Modem.command`` is an allow-list (issue 13, case 5): reads and tests of anything, plain
queries, settings that cannot break the session; the settings the library models are refused naming the API
to use instead, and chained commands are split and checked one by one. Values that go inside AT commands
(APN, credentials, hosts) are checked up front with errors naming the argument (case 4).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.emulator import Emulator
from sim7020_core.exceptions import CommandNotAllowedError
from sim7020_core.modem import Modem, ModemOptions
from sim7020_core.modem.checks import (
    QUERIES,
    apn_problem,
    credential_problem,
    host_problem,
    raw_command_refusal,
    split_command,
)

FAST = ModemOptions(registration_timeout=3.0, poll_interval=None, watchdog_interval=None)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(transcript=True, registration_delay=0.02)
    host, port = await emu.start_tcp("127.0.0.1", 0)
    emu.url = f"socket://{host}:{port}"  # type: ignore[attr-defined]
    yield emu
    await emu.stop()


@pytest.fixture
async def modem(emulator: Emulator) -> AsyncIterator[Modem]:
    m = await Modem.connect(emulator.url, options=FAST)  # type: ignore[attr-defined]
    yield m
    await m.close()


def sent(emu: Emulator) -> list[str]:
    data = b"".join(chunk for direction, chunk in emu.transcript if direction == "rx")
    return [line.decode(errors="replace").strip() for line in data.split(b"\r") if line.strip()]


# ------------------------------------------------------------------ the raw-AT allow-list


@pytest.mark.parametrize(
    ("command", "api"),
    [
        ('AT+CPSMS=1,,,"00000001","00000001"', "Modem.set_psm()"),
        ("AT+CPSMS=0", "Modem.set_psm()"),
        ('AT*MCGDEFCONT="IP","other.apn"', "Modem.set_apn()"),
        ("AT+CGATT=0", "Modem.reboot()"),
        ("AT+CGACT=0,1", "Modem.set_apn()"),
        ("AT+CFUN=0", "Modem.reboot()"),
        ("AT+RETENTION=0", "Modem.set_retention()"),
        ("AT+CSOC=1,2,1", "transport='native'"),
        ('AT+CSOSEND=0,4,"ABCD"', "transport='native'"),
        ("AT+CSORCVFLAG=1", "transport='native'"),
        ('AT+CIPSTART="TCP","1.2.3.4",80', "transport='cip'"),
        ("AT+CIPSHUT", "transport='cip'"),
        ('AT+CDNSGIP="example.com"', "Modem.resolve()"),
        ('AT+CIPPING="1.2.3.4"', "Modem.ping()"),
        ("ATO", "transport='transparent'"),
        ("AT+CEDRXS=0", "Modem.set_edrx()"),
        ("AT+COPS=0", "Modem.set_operator()"),
        ('AT+COPS=1,2,"46000"', "Modem.set_operator()"),
        ("AT+CBAND=8", "Modem.set_bands()"),
        ('AT+CDNSCFG="9.9.9.9"', "Modem.set_dns_servers()"),
    ],
)
async def test_a_setting_the_library_models_is_refused_naming_the_api(
    emulator: Emulator, modem: Modem, command: str, api: str
) -> None:
    before = len(sent(emulator))
    with pytest.raises(CommandNotAllowedError) as info:
        await modem.command(command)
    assert api in str(info.value)
    assert "allow_unsafe=True" in str(info.value)
    await modem.command("AT")  # a marker: everything before it has reached the module
    assert sent(emulator)[before:] == ["AT"]


@pytest.mark.parametrize(
    ("command", "part"),
    [("ATE0&F", "'&F'"), ("ATE0Z", "'Z'"), ("ATE0V0", "'V0'"), ("AT+CSQ;+CGATT=0", "'+CGATT=0'")],
)
async def test_chained_commands_are_split_and_each_checked(modem: Modem, command: str, part: str) -> None:
    with pytest.raises(CommandNotAllowedError, match=re.escape(part)):
        await modem.command(command)


@pytest.mark.parametrize(
    "command",
    [
        "AT+CPSMS?",
        "AT+CGATT?",
        "AT+CFUN?",
        "AT+RETENTION?",
        "AT+CSOC=?",
        "AT+CSQ",
        "AT+CGSN",
        "ATI",
        "AT+GSV",
        "AT+CSOSTATUS=0",
        "AT+CMEE=1",
        "ATE0",
    ],
)
async def test_reads_queries_and_harmless_settings_reach_the_module(modem: Modem, command: str) -> None:
    await modem.command(command)


@pytest.mark.parametrize(
    "command",
    [
        'AT+CCLK="24/04/30,07:49:36+12"',
        'AT+CPIN="1234"',
        "AT&W",
        "ATQ0V1",
    ],
)
def test_settings_that_cannot_break_the_session_are_allowed(command: str) -> None:
    assert raw_command_refusal(command) is None


async def test_allow_unsafe_sends_what_the_guard_refuses(emulator: Emulator, modem: Modem) -> None:
    await modem.command("AT+CGATT=0", allow_unsafe=True)
    assert emulator.state.attached is False


_EXTENDED = st.sampled_from(["+CSQ", "+CGATT", "+CEREG", "+CPSMS", "*MCGDEFCONT", "+CSOSTATUS", "+FOO"])
_FORM = st.sampled_from(["", "?", "=?", "=1", '="a;b"', "=1,,,2"])


@given(st.lists(st.tuples(_EXTENDED, _FORM), min_size=1, max_size=5), st.sampled_from(["AT", "at", "At"]))
def test_a_chain_of_extended_commands_splits_into_its_commands(
    commands: list[tuple[str, str]], prefix: str
) -> None:
    line = prefix + ";".join(name + form for name, form in commands)
    parts = split_command(line)
    assert [(p.name, p.text) for p in parts] == [(name, name + form) for name, form in commands]


@given(st.lists(st.tuples(_EXTENDED, st.sampled_from(["?", "=?"])), min_size=1, max_size=5))
def test_reading_anything_is_allowed(commands: list[tuple[str, str]]) -> None:
    assert raw_command_refusal("AT" + ";".join(name + form for name, form in commands)) is None


@given(st.sampled_from(sorted(QUERIES)), st.sampled_from(["E1", "Z", "&F", "+CFUN=0", "+CGATT=0", "+X=1"]))
def test_one_refused_command_in_a_chain_refuses_the_line(query: str, bad: str) -> None:
    separator = ";" if query.startswith("+") else ""
    reason = raw_command_refusal(f"AT{query}{separator}{bad}")
    assert reason is not None
    assert repr(bad) in reason


def test_something_that_is_no_command_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="starts no command"):
        split_command("AT+CSQ,1")
    with pytest.raises(ValueError, match="must start with 'AT'"):
        split_command("CSQ")


# ------------------------------------------------------------------ values


@pytest.mark.parametrize("apn", ["", "iot.1nce.net", "internet.mnc012.mcc345.gprs", "m2m_corp-1", "a" * 100])
def test_real_apns_are_taken(apn: str) -> None:
    assert apn_problem(apn) is None


@pytest.mark.parametrize(
    ("apn", "problem"),
    [
        ('x"\r\nAT+CFUN=0', "found '\"' at position 1"),
        ("a b", "found ' ' at position 1"),
        ("a\rb", "found '\\r' at position 1"),
        ("apn,2", "found ',' at position 3"),
        (".apn", "dot-separated labels"),
        ("a..b", "dot-separated labels"),
        ("a" * 101, "at most 100 characters"),
        ("internét", "found 'é' at position 6"),
    ],
)
def test_apns_the_module_cannot_take_are_named(apn: str, problem: str) -> None:
    found = apn_problem(apn)
    assert found is not None
    assert problem in found


@pytest.mark.parametrize(
    ("value", "problem"),
    [('pa"ss', "'\"' at position 2"), ("back\\slash", "'\\\\' at position 4"), ("t\tab", "'\\t'")],
)
def test_credentials_that_would_break_the_command_are_named(value: str, problem: str) -> None:
    found = credential_problem(value)
    assert found is not None
    assert problem in found
    assert credential_problem("S3cret!$ with spaces & (more)") is None


@given(st.text(max_size=300))
def test_every_value_that_passes_is_safe_inside_quotes(value: str) -> None:
    for problem_of in (apn_problem, credential_problem, host_problem):
        if problem_of(value) is None:
            assert not {'"', "\\", "\r", "\n", "\x1a", "\x1b"} & set(value)
            assert value.isascii()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"apn": 'x"\r\nAT+CFUN=0'}, "apn: must be an APN"),
        ({"apn": "ok", "username": 'u"', "password": "p"}, "username: must be printable ASCII"),
        ({"apn": "ok", "username": "u", "password": "p\r\n"}, "password: must be printable ASCII"),
    ],
)
async def test_set_apn_refuses_bad_values_before_sending_anything(
    emulator: Emulator, modem: Modem, kwargs: dict[str, str], field: str
) -> None:
    before = len(sent(emulator))
    with pytest.raises(ValueError, match=field):
        await modem.set_apn(**kwargs)
    assert sent(emulator)[before:] == []
    assert emulator.state.cfun == 1  # the radio was never switched off


@pytest.mark.parametrize("host", ['example.com"', "exa mple.com", "a\r\nAT+CFUN=0", "", "h" * 254])
async def test_hosts_are_checked_before_anything_is_sent(emulator: Emulator, modem: Modem, host: str) -> None:
    before = len(sent(emulator))
    for call in (modem.resolve(host), modem.ping(host, count=1), modem.open_connection("udp", host, 5)):
        with pytest.raises(ValueError, match="host: "):
            await call
    assert sent(emulator)[before:] == []


async def test_native_listen_checks_its_local_ip(modem: Modem) -> None:
    with pytest.raises(ValueError, match="IP address"):
        await modem.listen(5000, local_ip='10.0.0.1"\r\nAT+CFUN=0')
