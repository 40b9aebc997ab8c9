"""Random CIP command lines never crash or wedge the emulator: it still answers afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulator.test_cip_support import RawClient, running_modem

NAMES = [
    "+CIPMUX", "+CSTT", "+CIICR", "+CIFSR", "+CIFSREX", "+CIPSTATUS", "+CIPSTART", "+CIPSEND", "+CIPQSEND",
    "+CIPACK", "+CIPCLOSE", "+CIPSHUT", "+CLPORT", "+CDNSCFG", "+CIPHEAD", "+CIPSRIP", "+CIPSHOWTP",
    "+CIPHEXS", "+CIPATS", "+CIPSPRT", "+CIPSERVER", "+CIPCSGP", "+CIPUDPMODE", "+CIPRXGET", "+CIPTKA",
    "+CIPMODE", "+CIPCHAN", "O",
]  # fmt: skip

# unroutable addresses only: a random CIPSTART must never reach a real service on this machine
ARG = st.one_of(
    st.integers(min_value=-3, max_value=70000).map(str),
    st.sampled_from(['"TCP"', '"UDP"', '"10.9.8.7"', "10.9.8.7", '"no.such.host"', '""', "", '"', "x"]),
    st.text(alphabet="0123456789abcXYZ.,- ", max_size=8).map(lambda t: f'"{t}"'),
)
LINE = st.builds(
    lambda name, form, args: "AT" + name + (form if form != "=" else "=" + ",".join(args)),
    st.sampled_from(NAMES),
    st.sampled_from(["", "?", "=?", "="]),
    st.lists(ARG, max_size=5),
)


async def drain(c: RawClient, quiet: float = 0.05) -> None:
    """Read until the module stays quiet for ``quiet`` seconds."""
    while True:
        try:
            async with asyncio.timeout(quiet):
                chunk = await c.reader.read(4096)
        except TimeoutError:
            c.buf.clear()
            return
        if not chunk:
            raise ConnectionError("emulator closed the UART")


class _Failures(logging.Handler):
    """Collects log records that carry an exception (a handler that crashed instead of answering)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info:
            self.records.append(record)


async def _scenario(lines: list[str]) -> None:
    failures = _Failures()
    logger = logging.getLogger("sim7020_core.emulator")
    logger.addHandler(failures)
    try:
        await _run(lines)
    finally:
        logger.removeHandler(failures)
    assert not failures.records, [r.getMessage() for r in failures.records]


async def _run(lines: list[str]) -> None:
    async with running_modem() as (emu, c):
        for line in lines:
            await c.send(line + "\r")
            await asyncio.sleep(0.002)
        await drain(c)
        if emu.in_data_mode:  # a prompt the random lines opened: cancel it the way a host would
            await c.send(b"\x1b")
            await drain(c)
        await c.send("AT+CGMI\r")
        answer = await c.read_until(b"\r\nOK\r\n")
        assert answer.endswith(b"\r\nSIMCOM_Ltd\r\n\r\nOK\r\n"), answer
        with contextlib.suppress(TimeoutError):
            await drain(c)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(lines=st.lists(LINE, min_size=1, max_size=12))
def test_random_cip_lines_never_wedge_the_module(lines: list[str]) -> None:
    asyncio.run(_scenario(lines))
