"""Backoff and reconnect logic: the library's one way of waiting between failed attempts.

- :class:`Backoff` is the capped exponential backoff every retry of the library and of its applications uses
  (the modem's recovery, persistent connections and servers, the bridge's modem, routes and queue, Home
  Assistant's server): ``min_delay * factor ** (failures - 1)``, capped at ``max_delay``.
- :func:`retry` runs an attempt until it succeeds, waiting :class:`Backoff` delays between failures.
- :class:`ReconnectLogic` brings a lost session back in the background, on ``loop.call_at`` timers.

``ReconnectLogic`` is modelled on aioesphomeapi's ``ReconnectLogic``: the owner gives an async ``connect``
callable that does one full attempt (reopen, resync, re-initialise) and raises on failure; this class runs
attempts, spaces failed ones with a capped backoff on ``loop.call_at`` timers, and reports through callbacks.
The owner calls :meth:`ReconnectLogic.start` when it notices the session is gone (the watchdog's fatal-error
path, a lost port) and :meth:`ReconnectLogic.stop` when it closes.

Backoff: ``min_delay * factor ** (tries - 1)``, capped at ``max_delay``. While the module sleeps in PSM a
failure is expected rather than alarming, so :meth:`ReconnectLogic.set_delay_cap` lets the owner lower the
cap (the "PSM cap") and :meth:`ReconnectLogic.retry_now` skips a pending wait when something tells the
owner the module is back (a URC, ``EXIT PSM``).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from . import const
from .exceptions import describe_error

_LOGGER = logging.getLogger(__name__)

__all__ = ["Backoff", "ReconnectLogic", "ReconnectState", "retry"]

_T = TypeVar("_T")


class Backoff:
    """Capped exponential backoff: after ``n`` failures in a row, wait ``min_delay * factor ** (n - 1)``
    seconds, at most ``max_delay`` (or the lower :meth:`set_cap`).

    :param min_delay: the delay after the first failure, seconds
    :param max_delay: the cap, seconds
    :param factor: growth of the delay per failure
    """

    def __init__(self, min_delay: float, max_delay: float, *, factor: float = 2.0) -> None:
        if min_delay < 0 or max_delay < min_delay or factor < 1:
            raise ValueError(
                f"backoff needs 0 <= min_delay <= max_delay and factor >= 1, "
                f"not {min_delay!r}, {max_delay!r}, {factor!r}"
            )
        self.min_delay = min_delay
        self.max_delay = max_delay
        self.factor = factor
        self._cap: float | None = None
        self._failures = 0

    @property
    def failures(self) -> int:
        """Failures in a row so far (0 after :meth:`reset`)."""
        return self._failures

    def delay(self) -> float:
        """The wait the failures so far call for (0.0 before any failure)."""
        if self._failures <= 0:
            return 0.0
        cap = self.max_delay if self._cap is None else min(self.max_delay, self._cap)
        # the exponent is bounded so that a long outage never overflows the float
        growth = self.factor ** min(self._failures - 1, 64)
        return float(min(self.min_delay * growth, cap))

    def fail(self) -> float:
        """Count one more failure; return the delay to wait before the next attempt."""
        self._failures += 1
        return self.delay()

    def reset(self) -> None:
        """An attempt succeeded: the next failure waits ``min_delay`` again."""
        self._failures = 0

    def set_cap(self, cap: float | None) -> None:
        """Lower the cap for a while (e.g. while the module is in PSM); None restores ``max_delay``."""
        self._cap = cap

    def __repr__(self) -> str:
        return f"<Backoff {self.min_delay:g}..{self.max_delay:g} s, {self._failures} failures>"


async def retry(
    attempt: Callable[[], Awaitable[_T]],
    *,
    backoff: Backoff,
    retry_on: tuple[type[BaseException], ...] = (Exception,),
    on_error: Callable[[BaseException, float], None] | None = None,
) -> _T:
    """Run ``attempt`` until it succeeds, waiting ``backoff`` delays between failures; return its result.

    :param retry_on: the exceptions that mean "try again later"; any other one is raised at once
    :param on_error: called with each failure and the delay before the next attempt (to log it, count it);
        it may raise to give up (the exception propagates)
    """
    while True:
        try:
            result = await attempt()
        except retry_on as err:
            delay = backoff.fail()
            if on_error is not None:
                on_error(err, delay)
            await asyncio.sleep(delay)
            continue
        backoff.reset()
        return result


class ReconnectState(enum.Enum):
    """Where the reconnect logic is."""

    IDLE = "idle"  # not started, or the last attempt succeeded
    CONNECTING = "connecting"  # an attempt is running
    WAITING = "waiting"  # backing off before the next attempt
    STOPPED = "stopped"  # stop() was called; start() is refused


class ReconnectLogic:
    """Run ``connect`` until it succeeds, with capped exponential backoff between failures.

    :param connect: one full attempt; raises on failure (its own awaits must be bounded)
    :param on_connect: called after a successful attempt
    :param on_connect_error: called with the exception of each failed attempt
    :param min_delay: delay after the first failure, seconds
    :param max_delay: cap of the delay, seconds
    :param factor: growth of the delay per failed attempt
    :param backoff: the backoff to use (instead of ``min_delay``, ``max_delay`` and ``factor``)
    :param name: for log messages
    """

    def __init__(
        self,
        connect: Callable[[], Awaitable[None]],
        *,
        on_connect: Callable[[], None] | None = None,
        on_connect_error: Callable[[BaseException], None] | None = None,
        min_delay: float | None = None,
        max_delay: float | None = None,
        factor: float = 2.0,
        backoff: Backoff | None = None,
        name: str = "modem",
    ) -> None:
        self._connect = connect
        self._on_connect = on_connect
        self._on_connect_error = on_connect_error
        self._backoff = backoff or Backoff(
            const.RECONNECT_MIN_DELAY if min_delay is None else min_delay,
            const.RECONNECT_MAX_DELAY if max_delay is None else max_delay,
            factor=factor,
        )
        self._name = name
        self._state = ReconnectState.IDLE
        self._task: asyncio.Task[None] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._done = asyncio.Event()
        self._done.set()
        self._last_error: BaseException | None = None

    @property
    def state(self) -> ReconnectState:
        """The current state."""
        return self._state

    @property
    def tries(self) -> int:
        """Failed attempts since the last start() (reset on success)."""
        return self._backoff.failures

    @property
    def last_error(self) -> BaseException | None:
        """The exception of the last failed attempt, if any."""
        return self._last_error

    @property
    def active(self) -> bool:
        """True while connecting or waiting to retry."""
        return self._state in (ReconnectState.CONNECTING, ReconnectState.WAITING)

    def next_delay(self) -> float:
        """The delay before the next attempt after ``tries`` failures."""
        return self._backoff.delay()

    def set_delay_cap(self, cap: float | None) -> None:
        """Lower the backoff cap (e.g. while the module is in PSM); None restores ``max_delay``."""
        self._backoff.set_cap(cap)

    def start(self) -> None:
        """Start reconnecting now (no-op when already active; refused after stop())."""
        if self._state is ReconnectState.STOPPED:
            raise RuntimeError(f"reconnect logic of {self._name} was stopped")
        if self.active:
            return
        self._backoff.reset()
        self._last_error = None
        self._done.clear()
        self._run_attempt()

    def retry_now(self) -> None:
        """Skip a pending backoff wait and try at once (no-op unless waiting)."""
        if self._state is ReconnectState.WAITING:
            self._cancel_timer()
            self._run_attempt()

    async def wait(self, limit: float) -> bool:
        """Wait up to ``limit`` s until the logic is idle again (success or stop); False on timeout."""
        try:
            async with asyncio.timeout(limit):
                await self._done.wait()
        except TimeoutError:
            return False
        return True

    async def stop(self) -> None:
        """Stop for good: cancel the timer and a running attempt (bounded wait)."""
        self._state = ReconnectState.STOPPED
        self._cancel_timer()
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, TimeoutError, Exception):
                async with asyncio.timeout(const.RECONNECT_STOP_TIMEOUT):
                    await task
        self._done.set()

    # -- internals -------------------------------------------------------------------------------------

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _run_attempt(self) -> None:
        self._timer = None
        if self._state is ReconnectState.STOPPED:
            return
        self._state = ReconnectState.CONNECTING
        self._task = asyncio.get_running_loop().create_task(self._attempt(), name=f"{self._name}-reconnect")

    async def _attempt(self) -> None:
        try:
            await self._connect()
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure of an attempt means "retry later"
            self._last_error = err
            delay = self._backoff.fail()
            _LOGGER.info(
                "%s: reconnect attempt %d failed (%s); next in %.1f s",
                self._name,
                self._backoff.failures,
                describe_error(err),
                delay,
            )
            if self._on_connect_error is not None:
                try:
                    self._on_connect_error(err)
                except Exception:
                    _LOGGER.exception("%s: on_connect_error callback failed", self._name)
            if self._state is ReconnectState.STOPPED:
                return
            self._state = ReconnectState.WAITING
            loop = asyncio.get_running_loop()
            self._timer = loop.call_at(loop.time() + delay, self._run_attempt)
            return
        finally:
            if self._task is asyncio.current_task():
                self._task = None
        if self._state is ReconnectState.STOPPED:
            return
        _LOGGER.info("%s: reconnected after %d failed attempt(s)", self._name, self._backoff.failures)
        self._backoff.reset()
        self._state = ReconnectState.IDLE
        self._done.set()
        if self._on_connect is not None:
            try:
                self._on_connect()
            except Exception:
                _LOGGER.exception("%s: on_connect callback failed", self._name)
