"""ReconnectLogic (sim7020_core.reconnect): attempts, capped backoff, stop, retry_now, PSM cap."""

from __future__ import annotations

import asyncio

import pytest

from sim7020_core.reconnect import ReconnectLogic, ReconnectState


class Flaky:
    """A connect callable that fails ``failures`` times, then succeeds; records attempt times."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.times: list[float] = []

    async def __call__(self) -> None:
        self.times.append(asyncio.get_running_loop().time())
        if len(self.times) <= self.failures:
            raise OSError(f"attempt {len(self.times)} failed")


async def test_succeeds_after_failures_with_growing_delays() -> None:
    flaky = Flaky(3)
    errors: list[BaseException] = []
    connected: list[bool] = []
    logic = ReconnectLogic(
        flaky,
        on_connect=lambda: connected.append(True),
        on_connect_error=errors.append,
        min_delay=0.02,
        max_delay=1.0,
    )
    logic.start()
    assert logic.active
    assert await logic.wait(5)
    assert logic.state is ReconnectState.IDLE
    assert len(flaky.times) == 4
    assert [str(e) for e in errors] == ["attempt 1 failed", "attempt 2 failed", "attempt 3 failed"]
    assert connected == [True]
    gaps = [b - a for a, b in zip(flaky.times, flaky.times[1:], strict=False)]
    assert gaps[0] >= 0.02 * 0.9
    assert gaps[1] >= 0.04 * 0.9
    assert gaps[2] >= 0.08 * 0.9
    assert logic.tries == 0


async def test_backoff_is_capped_and_the_psm_cap_lowers_it() -> None:
    logic = ReconnectLogic(Flaky(100), min_delay=1.0, max_delay=5.0)
    logic.start()
    delays = []
    for _ in range(5):  # each failed attempt waits; retry_now skips the wait
        await asyncio.sleep(0.01)
        delays.append(logic.next_delay())
        logic.retry_now()
    assert delays == [1.0, 2.0, 4.0, 5.0, 5.0]
    logic.set_delay_cap(3.0)
    assert logic.next_delay() == 3.0
    logic.set_delay_cap(None)
    assert logic.next_delay() == 5.0
    await logic.stop()


async def test_stop_cancels_the_wait_and_refuses_restart() -> None:
    flaky = Flaky(100)
    logic = ReconnectLogic(flaky, min_delay=10.0, max_delay=10.0)
    logic.start()
    await asyncio.sleep(0.05)
    assert logic.state is ReconnectState.WAITING
    await logic.stop()
    assert logic.state.value == "stopped"
    assert len(flaky.times) == 1
    with pytest.raises(RuntimeError, match="stopped"):
        logic.start()


async def test_stop_cancels_a_running_attempt() -> None:
    started = asyncio.Event()

    async def hang() -> None:
        started.set()
        await asyncio.sleep(100)

    logic = ReconnectLogic(hang)
    logic.start()
    await started.wait()
    await logic.stop()
    assert logic.state is ReconnectState.STOPPED


async def test_retry_now_skips_the_backoff() -> None:
    flaky = Flaky(1)
    logic = ReconnectLogic(flaky, min_delay=10.0, max_delay=10.0)
    logic.start()
    await asyncio.sleep(0.05)
    assert logic.state is ReconnectState.WAITING
    logic.retry_now()
    assert await logic.wait(1)
    assert len(flaky.times) == 2


async def test_start_while_active_is_a_no_op() -> None:
    flaky = Flaky(1)
    logic = ReconnectLogic(flaky, min_delay=0.05)
    logic.start()
    logic.start()
    assert await logic.wait(2)
    assert len(flaky.times) == 2


async def test_wait_times_out() -> None:
    logic = ReconnectLogic(Flaky(100), min_delay=10.0)
    logic.start()
    assert not await logic.wait(0.05)
    assert logic.last_error is not None
    await logic.stop()


async def test_failing_callbacks_do_not_stop_reconnecting() -> None:
    def broken(*_: object) -> None:
        raise RuntimeError("callback bug")

    flaky = Flaky(1)
    logic = ReconnectLogic(flaky, on_connect=broken, on_connect_error=broken, min_delay=0.01)
    logic.start()
    assert await logic.wait(2)
    assert len(flaky.times) == 2
