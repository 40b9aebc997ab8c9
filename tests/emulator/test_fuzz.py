"""Random bytes and random AT-like lines never crash or wedge the emulator.

After the random input, the host recovers the way a real host program would and nothing more: ESC (cancels a
``>`` prompt), CR (ends a half-typed line), then ``AT`` until ``OK``. If that fails it tries what a host may
legitimately do next: fill a fixed-length data prompt, the guarded ``+++`` escape of transparent mode, and
waking the module from PSM (``emu.exit_psm()``, the PSM wake pin). The module must then answer ``AT`` and
take ``ATE0`` like a freshly synchronised module.
"""

from __future__ import annotations

import asyncio
import contextlib

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulator.transcript_tools import (
    ESC,
    RawClient,
    TcpPeer,
    TranscriptMismatch,
    UdpPeer,
    framed,
    make_emulator,
    serving,
    stop_emulator,
)

#: the ``+++`` guard time asked of the emulator here (seconds; the note's default is 1 s)
FUZZ_GUARD_TIME = 0.05
#: how long the first, cheap recovery may take before the next escalation (two AT attempts: a slow
#: machine must not make a plain case look like it needed more)
FIRST_SYNC = 1.2
#: how long each later escalation step may take
QUICK_SYNC = 0.6
#: bound for the whole example
EXAMPLE_TIMEOUT = 20.0
#: pause between the chunks of an example (lets a connection come up between commands)
CHUNK_GAP = 0.005
#: remote ends that random commands can really reach (so prompts and data mode are reachable)
REMOTE_IP, TCP_PORT, UDP_PORT = "116.247.119.165", 5245, 5246

COMMANDS = [
    "", "E", "I", "Z", "&F", "O", "+CGMI", "+CGMM", "+CGMR", "+CGSN", "+CIMI", "+CCID", "+CMEE", "+CPIN",
    "+CSQ", "+CGREG", "+CEREG", "+CGATT", "+CGACT", "+COPS", "+CGCONTRDP", "*MCGDEFCONT", "+CFUN",
    "+CPSMS", "+CPSMSTATUS", "+CENG", "+CBC", "+CCLK", "+RETENTION", "+CDNSGIP", "+CIPPING", "+CSOC",
    "+CSOCON", "+CSOB", "+CSOLIS", "+CSOSEND", "+CSODSEND", "+CSOCL", "+CSOSENDFLAG", "+CSORCVFLAG",
    "+CSOSTATUS", "+CSOACK", "+CSOALIVE", "+CSORXGET", "+CIPMUX", "+CIPSTART", "+CIPSEND", "+CIPQSEND",
    "+CIPACK", "+CIPCLOSE", "+CIPSHUT", "+CLPORT", "+CSTT", "+CIICR", "+CIFSR", "+CIPSTATUS", "+CDNSCFG",
    "+CIPHEAD", "+CIPHEXS", "+CIPATS", "+CIPSPRT", "+CIPSERVER", "+CIPSRIP", "+CIPSHOWTP", "+CIPUDPMODE",
    "+CIPRXGET", "+CIPTKA", "+CIPMODE", "+CIPCHAN", "+IPR", "+QQQ",
]  # fmt: skip

_arg = st.one_of(
    st.integers(min_value=-2, max_value=70000).map(str),
    st.sampled_from(["0", "1", "2", "5245", "5246", '"5245"', '"5246"']),
    st.sampled_from(["", '""', '"116.247.119.165"', '"127.0.0.1"', '"TCP"', '"UDP"', '"IP"', '"01000111"']),
    st.text(st.sampled_from('0123456789ABCDEFabcdefxyz ,."'), max_size=12).map(lambda s: f'"{s}"'),
    st.text(st.sampled_from("0123456789ABCDEF"), max_size=16),
)
_suffix = st.one_of(
    st.just(""),
    st.just("?"),
    st.just("=?"),
    st.lists(_arg, min_size=1, max_size=6).map(lambda a: "=" + ",".join(a)),
)
_line = st.builds(
    lambda prefix, name, suffix, end: (prefix + name + suffix).encode("latin-1") + end,
    st.sampled_from(["AT", "at", "At", "A", "AT "]),
    st.sampled_from(COMMANDS),
    _suffix,
    st.sampled_from([b"\r", b"\n", b"\r\n", b"", b"\x1a", b"\x1b"]),
)


#: recovery levels: what it took to get ``OK`` for ``AT`` again
ESC_CR, FILL_PROMPT, PLUS_ESCAPE, PSM_WAKE = 0, 1, 2, 3


async def _recover(emu: object, client: RawClient) -> int:
    """Bring the module back to command state the way a host would, escalating; return the level used."""
    await client.write(ESC + b"\r")
    await asyncio.sleep(0.05)
    with contextlib.suppress(TranscriptMismatch):
        await client.sync(timeout=FIRST_SYNC)
        return ESC_CR
    # a fixed-length prompt (AT+CIPSEND=<len>, AT+CSODSEND=<id>,<len>) waits for its bytes: fill it
    await client.write(b"\x00" * 1500 + ESC + b"\r")
    with contextlib.suppress(TranscriptMismatch):
        await client.sync(timeout=QUICK_SYNC)
        return FILL_PROMPT
    # transparent data mode: the guarded +++ escape
    await asyncio.sleep(FUZZ_GUARD_TIME * 3)
    await client.write(b"+++")
    await asyncio.sleep(FUZZ_GUARD_TIME * 3)
    with contextlib.suppress(TranscriptMismatch):
        await client.sync(timeout=QUICK_SYNC)
        return PLUS_ESCAPE
    # asleep in PSM: the host wakes the module (PSM wake pin)
    emu.exit_psm()  # type: ignore[attr-defined]
    await client.sync(timeout=QUICK_SYNC * 3)
    return PSM_WAKE


async def _feed_and_check(chunks: list[bytes]) -> int:
    tcp_peer, udp_peer = TcpPeer(), UdpPeer()
    await tcp_peer.start()
    await udp_peer.start()
    emu = make_emulator(options={"guard_time": FUZZ_GUARD_TIME})
    emu.route(REMOTE_IP, TCP_PORT, to=tcp_peer.address)
    emu.route(REMOTE_IP, UDP_PORT, to=udp_peer.address)
    try:
        async with asyncio.timeout(EXAMPLE_TIMEOUT), serving(emu, "tcp") as client:
            for chunk in chunks:
                await client.write(chunk)
                await asyncio.sleep(CHUNK_GAP)
            level = await _recover(emu, client)
            # a freshly synchronised module: echo can be switched off and AT answers exactly OK
            client.take_all()
            await client.send_line("ATE0")
            await client.read_until(b"OK\r\n")
            await client.send_line("AT")
            answer = await client.read_until(b"OK\r\n")
            assert answer.endswith(framed("OK")), answer
            return level
    finally:
        await stop_emulator(emu)
        await tcp_peer.stop()
        await udp_peer.stop()


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.binary(max_size=120), min_size=1, max_size=4))
def test_random_bytes_never_wedge_the_module(chunks: list[bytes]) -> None:
    asyncio.run(_feed_and_check(chunks))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(
        st.one_of(_line, _line, _line, st.binary(max_size=20)),
        min_size=1,
        max_size=8,
    )
)
def test_random_at_lines_never_wedge_the_module(lines: list[bytes]) -> None:
    asyncio.run(_feed_and_check(lines))


def test_known_tricky_inputs() -> None:
    """Explicit cases that put a real module into a non-command state, or are half-lines.

    Each names the most a host needs to get the module back; data mode must need the ``+++`` escape (which
    also proves that the case really reached data mode).
    """
    udp = [b"AT+CSOC=1,2,1\r", b'AT+CSOCON=0,5246,"116.247.119.165"\r']
    tcp = [b"AT+CSOC=1,1,1\r", b'AT+CSOCON=0,5245,"116.247.119.165"\r']
    cip = [b"AT+CSTT\r", b"AT+CIICR\r", b"AT+CIFSR\r"]
    cases: list[tuple[list[bytes], int]] = [
        ([b"AT+CIPSEND\r"], ESC_CR),  # no connection: ERROR, no prompt
        ([*udp, b"AT+CSODSEND=0,100\r", b"abc"], FILL_PROMPT),  # fixed-length prompt, partly filled
        ([*tcp, b"AT+CSODSEND=0,1460\r", b"\x1a\x1b"], FILL_PROMPT),
        ([*cip, b'AT+CIPSTART="TCP","116.247.119.165","5245"\r', b"AT+CIPSEND=5\r", b"ab"], FILL_PROMPT),
        # a variable-length prompt: ESC cancels it (SIM7000 manual)
        ([*cip, b'AT+CIPSTART="UDP","116.247.119.165","5246"\r', b"AT+CIPSEND\r", b"half"], ESC_CR),
        # transparent data mode: AT, ESC and CR are data; only the guarded +++ gets out
        ([b"AT+CIPMODE=1\r", *cip, b'AT+CIPSTART="TCP","116.247.119.165","5245"\r', b"AT+CIPCHAN\r", b"AT\r"],
         PLUS_ESCAPE),
        # ... and a +++ without the idle time before it is data too
        ([b"AT+CIPMODE=1\r", *cip, b'AT+CIPSTART="TCP","116.247.119.165","5245"\r', b"AT+CIPCHAN\r", b"+++"],
         PLUS_ESCAPE),
        ([b"AT+CPSMS=1\r"], ESC_CR),
        ([b"AT+CFUN=1,1\r"], ESC_CR),  # reboot: echo back on
        ([b"ATE1\r", b"AT+CSQ"], ESC_CR),  # half a line
        ([b"\x1a\x1b\x00\xff\r\n"], ESC_CR),
        ([b"+++"], ESC_CR),  # in command state +++ is just a bad line
        ([b"A/"], ESC_CR),
        ([b"AT" + b"\r" * 50], ESC_CR),
    ]  # fmt: skip
    for chunks, most in cases:
        level = asyncio.run(_feed_and_check(chunks))
        if most == PLUS_ESCAPE:
            assert level == PLUS_ESCAPE, f"{chunks!r}: data mode expected, got out at level {level}"
        else:
            assert level <= most, f"{chunks!r}: needed recovery level {level}, at most {most} expected"
