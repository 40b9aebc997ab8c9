"""``Modem.problem``: what cannot heal by itself, with a ``ProblemChanged`` event for each change.

The SIM (here: busy through every retry after a reboot), a module that stays silent through every recovery
step (then answers again: the problem clears), the network denying the registration. Stale connections that
cannot be released: tests/core/test_reclaim.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sim7020_core import const
from sim7020_core.emulator import Emulator, PsmTimings
from sim7020_core.events import ModemEvent, ProblemChanged
from sim7020_core.models import LinkState, ModemProblem, ProblemKind
from sim7020_core.modem import Modem, ModemOptions
from tests.core.conftest import StartedFakeModem

WAIT = 10.0


@pytest.fixture(autouse=True)
def fast(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "WATCHDOG_TIMEOUT": 0.1,
        "SYNC_ATTEMPT_TIMEOUT": 0.05,
        "MODEM_SYNC_ATTEMPTS": 2,
        "RECOVERY_SYNC_ATTEMPTS": 2,
        "BOOT_SYNC_ATTEMPTS": 20,
        "SIM_BUSY_RETRY_DELAY": 0.01,
        "STALE_ANSWER_GRACE": 0.05,
        "DATA_MODE_GUARD_TIME": 0.01,
        "STALE_DATA_MODE_TIMEOUT": 0.05,
        "REGISTRATION_POLL_INTERVAL": 0.05,
        "UNRESPONSIVE_ATTEMPTS": 2,
    }.items():
        monkeypatch.setattr(const, name, value)


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = Emulator(registration_delay=0.02, psm_timings=PsmTimings(auto=False))
    host, port = await emu.start_tcp("127.0.0.1", 0)
    emu.url = f"socket://{host}:{port}"  # type: ignore[attr-defined]
    yield emu
    await emu.stop()


class Problems:
    """The ProblemChanged events of a modem."""

    def __init__(self, modem: Modem) -> None:
        self.seen: asyncio.Queue[ModemProblem | None] = asyncio.Queue()
        modem.subscribe(self._on_event)

    def _on_event(self, event: ModemEvent) -> None:
        if isinstance(event, ProblemChanged):
            self.seen.put_nowait(event.problem)

    async def next(self) -> ModemProblem | None:
        async with asyncio.timeout(WAIT):
            return await self.seen.get()


async def test_a_sim_that_stays_busy_after_a_reboot_is_a_problem(emulator: Emulator) -> None:
    options = ModemOptions(
        registration_timeout=1.0, poll_interval=None, watchdog_interval=None, sim_busy_retries=2
    )
    async with await Modem.connect(emulator.url, options=options) as modem:  # type: ignore[attr-defined]
        assert modem.problem is None
        problems = Problems(modem)
        emulator.sim_busy_at_boot(1000)
        emulator.reboot()
        problem = await problems.next()
        assert problem is not None
        assert problem.kind is ProblemKind.SIM
        assert "SIM" in problem.message
        assert modem.problem == problem
        assert modem.state is LinkState.DISCONNECTED


async def test_a_silent_module_is_a_problem_until_it_answers_again(emulator: Emulator) -> None:
    options = ModemOptions(
        registration_timeout=1.0,
        poll_interval=None,
        watchdog_interval=0.05,
        watchdog_max_failures=2,
        reconnect_min_delay=0.05,
        reconnect_max_delay=0.1,
    )
    async with await Modem.connect(emulator.url, options=options) as modem:  # type: ignore[attr-defined]
        problems = Problems(modem)
        emulator.stall()  # silent from now on, whatever recovery tries
        problem = await problems.next()
        assert problem is not None
        assert problem.kind is ProblemKind.UNRESPONSIVE
        assert "does not answer" in problem.message
        assert "AT+CFUN=1,1" in problem.message
        assert modem.state is LinkState.RECOVERING
        emulator.unstall()
        assert await problems.next() is None  # recovered: nothing needs a human any more
        assert modem.problem is None
        assert modem.state is LinkState.READY


async def test_a_denied_registration_is_a_problem_until_registered(fake_modem: StartedFakeModem) -> None:
    for command, reply in {
        "AT+CMEE=1": ["OK"],
        "AT+CPIN?": ["+CPIN: READY", "OK"],
        "AT+CEREG?": ['+CEREG: 4,1,"1A2B","0C3D4E5F",9,"00"', "OK"],
    }.items():
        fake_modem.reply_to(command, reply)
    options = ModemOptions(registration_timeout=1.0, poll_interval=None, watchdog_interval=None)
    async with await Modem.connect(fake_modem.url, options=options) as modem:
        problems = Problems(modem)
        fake_modem.emit_urc("+CEREG: 3")
        problem = await problems.next()
        assert problem is not None
        assert problem.kind is ProblemKind.REGISTRATION_DENIED
        assert "denies" in problem.message
        fake_modem.emit_urc('+CEREG: 1,"1A2B","0C3D4E5F",9,"00"')
        assert await problems.next() is None
