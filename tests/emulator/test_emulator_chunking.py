"""However the host's bytes are split into writes, the module answers the same bytes (Hypothesis)."""

from __future__ import annotations

import asyncio
import functools
import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim7020_core.emulator import Emulator

SCRIPT = b'ATE0\rAT+CSQ\r\nAT+CGATT?\nat+cmee=2\rAT+CSOC=1,1\rAT*MCGDEFCONT?\rAT+CDNSGIP="example.com"\rAT\r'
LAST = b'\r\n+CDNSGIP: 1,"example.com","127.0.0.1"\r\n'
#: bound on one run (seconds)
RUN_TIMEOUT = 5.0


async def _run(chunks: list[bytes]) -> bytes:
    out = bytearray()
    emu = Emulator(hosts={"example.com": "127.0.0.1"}, registration_delay=0)
    try:
        emu.attach_port(out.extend)
        await asyncio.sleep(0.01)
        for chunk in chunks:
            emu.feed(chunk)
            await asyncio.sleep(0)
        async with asyncio.timeout(RUN_TIMEOUT):
            while not out.endswith(LAST):
                await asyncio.sleep(0.005)
    finally:
        await emu.stop()
    return bytes(out)


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


@functools.cache
def reference() -> bytes:
    return asyncio.run(_run([SCRIPT]))


def test_reference_answer() -> None:
    ref = reference()
    assert ref.startswith(b"ATE0\r\r\nOK\r\n\r\n+CSQ: 20,0\r\n\r\nOK\r\n\r\n+CGATT: 1\r\n\r\nOK\r\n")
    assert b"\r\n+CME ERROR: incorrect parameters\r\n" in ref
    assert ref.endswith(b"\r\nOK\r\n\r\nOK\r\n" + LAST)  # CDNSGIP's OK, AT's OK, then the URC


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cuts=st.lists(st.integers(min_value=0, max_value=len(SCRIPT)), max_size=20))
def test_any_chunking_gives_the_same_answer(cuts: list[int]) -> None:
    assert asyncio.run(_run(_split(SCRIPT, cuts))) == reference()


def test_byte_at_a_time() -> None:
    assert asyncio.run(_run([bytes([b]) for b in SCRIPT])) == reference()
