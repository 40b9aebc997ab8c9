"""An idle modem with PSM enabled arms no timer: its watchdog and status poll wait for background work to be
allowed again instead of waking on every period only to find it disallowed (bench/README.md, "Idle").

Timers are counted where asyncio arms them (``loop.call_at``, which ``call_later`` and ``asyncio.sleep``
use), on the test's own loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from sim7020_core.emulator import Emulator, PsmTimings
from sim7020_core.modem import Modem, ModemOptions

#: Watchdog and poll periods of the modem under test (short, so the awake phase arms many timers).
PERIOD = 0.01
WINDOW = 0.3


class TimerCount:
    """Counts the timers armed on the running loop while it is installed."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        loop = asyncio.get_running_loop()
        original = loop.call_at
        self.count = 0

        def call_at(when: float, callback: Callable[..., Any], *args: Any, context: Any = None) -> Any:
            self.count += 1
            return original(when, callback, *args, context=context)

        monkeypatch.setattr(loop, "call_at", call_at)

    async def during(self, seconds: float) -> int:
        start = self.count
        await asyncio.sleep(seconds)
        return self.count - start - 1  # not the sleep's own timer


async def test_no_timer_is_armed_while_psm_is_enabled(monkeypatch: pytest.MonkeyPatch) -> None:
    emu = Emulator(registration_delay=0.0, psm_timings=PsmTimings(auto=False))
    host, port = await emu.start_tcp("127.0.0.1", 0)
    options = ModemOptions(registration_timeout=1.0, poll_interval=PERIOD, watchdog_interval=PERIOD)
    try:
        async with await Modem.connect(f"socket://{host}:{port}", options=options) as modem:
            timers = TimerCount(monkeypatch)
            awake = await timers.during(WINDOW)
            assert awake > 10  # watchdog and poll at work (and the counter sees them)
            await modem.set_psm(True, tau_s=3600, active_s=2)
            await asyncio.sleep(0.2)  # the grant URCs and what follows the request settle
            assert await timers.during(WINDOW) == 0  # nothing wakes the loop: the module may sleep
            await modem.set_psm(False)
            assert await timers.during(WINDOW) > 10  # the checks resume with PSM off
    finally:
        await emu.stop()
