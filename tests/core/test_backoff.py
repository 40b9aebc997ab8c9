"""The library's one backoff (sim7020_core.reconnect.Backoff) and its retry loop, and describe_error."""

from __future__ import annotations

import asyncio
import itertools

import pytest

from sim7020_core.exceptions import AtTimeoutError, SocketError, describe_error
from sim7020_core.reconnect import Backoff, retry


def test_delays_grow_to_the_cap_and_reset() -> None:
    backoff = Backoff(0.5, 4.0)
    assert backoff.delay() == 0.0
    assert [backoff.fail() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.failures == 6
    backoff.set_cap(1.5)
    assert backoff.delay() == 1.5
    backoff.set_cap(None)
    backoff.reset()
    assert backoff.fail() == 0.5


def test_a_long_outage_stays_at_the_cap() -> None:
    backoff = Backoff(1.0, 60.0, factor=3.0)
    for _ in range(5000):
        backoff.fail()
    assert backoff.delay() == 60.0


@pytest.mark.parametrize(("low", "high", "factor"), [(-1.0, 1.0, 2.0), (2.0, 1.0, 2.0), (1.0, 2.0, 0.5)])
def test_nonsense_is_refused(low: float, high: float, factor: float) -> None:
    with pytest.raises(ValueError, match="backoff"):
        Backoff(low, high, factor=factor)


async def test_retry_waits_the_backoff_between_failures() -> None:
    loop = asyncio.get_running_loop()
    times: list[float] = []
    seen: list[tuple[str, float]] = []

    async def attempt() -> str:
        times.append(loop.time())
        if len(times) < 4:
            raise OSError(f"failure {len(times)}")
        return "done"

    backoff = Backoff(0.02, 0.05)
    result = await retry(attempt, backoff=backoff, on_error=lambda err, delay: seen.append((str(err), delay)))
    assert result == "done"
    assert seen == [("failure 1", 0.02), ("failure 2", 0.04), ("failure 3", 0.05)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(gap >= expected * 0.9 for gap, expected in zip(gaps, (0.02, 0.04, 0.05), strict=True))
    assert backoff.failures == 0  # success resets it


async def test_retry_raises_what_it_is_not_told_to_retry() -> None:
    calls = 0

    async def attempt() -> None:
        nonlocal calls
        calls += 1
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        await retry(attempt, backoff=Backoff(0.01, 0.01), retry_on=(OSError,))
    assert calls == 1


async def test_on_error_may_give_up() -> None:
    async def attempt() -> None:
        raise OSError("down")

    def give_up(err: BaseException, _delay: float) -> None:
        raise err

    with pytest.raises(OSError, match="down"):
        await retry(attempt, backoff=Backoff(0.01, 0.01), on_error=give_up)


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (TimeoutError(), "timed out"),
        (asyncio.CancelledError(), "CancelledError"),
        (ConnectionResetError(), "connection reset"),
        (OSError(), "OSError"),
        (
            AtTimeoutError('AT+CSOSEND=0,2,"AB"', 5.0),
            "no final result for 'AT+CSOSEND=0,2,\"AB\"' within 5 s",
        ),
        (SocketError("the module refused 2 bytes"), "the module refused 2 bytes"),
    ],
)
def test_describe_error_never_says_nothing(error: BaseException, text: str) -> None:
    assert describe_error(error) == text


def test_describe_error_names_the_cause_of_a_silent_error() -> None:
    silent = RuntimeError()
    silent.__cause__ = ConnectionRefusedError(111, "Connection refused")
    assert describe_error(silent) == "RuntimeError ([Errno 111] Connection refused)"
