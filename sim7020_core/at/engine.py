"""The AT engine: one command in flight, priorities, timeouts, URC routing, binary payloads.

:class:`AtEngine` sits on a :class:`~sim7020_core.link.SerialLink`. It writes one command at a time
(a priority lock decides who goes next), reads the answer through :class:`~.parser.AtParser` and
routes every line that the command in flight does not want to the URC handlers.

One method per command shape (as zigpy-znp's ``request`` and ``request_callback_rsp``):

* :meth:`AtEngine.command`: a command and its answer (``AT+CSQ``; ``AT+CIPSTART`` whose real final result
  comes after ``OK``);
* :meth:`AtEngine.send_data`: a command that prompts ``>`` for data (``AT+CIPSEND``, ``AT+CSODSEND``);
* :meth:`AtEngine.command_with_urcs`: a command that answers ``OK`` and then completion URCs
  (``AT+CIPSTATUS`` → ``STATE:``, ``C:`` lines);
* :meth:`AtEngine.command_to_data_mode`: a command that answers ``CONNECT`` and switches the line to
  transparent data (``AT+CIPCHAN``, ``ATO``).

All four share :meth:`AtEngine._exchange`, which writes the command and waits for its final result line.

Which lines belong to the command in flight:

* its echo (the module has echo on again after a reboot) is dropped;
* ``OK``, ``ERROR``, ``+CME ERROR``, ``+CMS ERROR`` and the command's extra finals end it;
* ``+NAME: …`` lines belong to it when ``NAME`` is the command's own name (``AT+CSQ`` → ``+CSQ``); other
  ``+X:`` lines are URCs, wherever they arrive;
* bare lines are information lines, except the known bare URCs (``RDY``, ``CLOSED``, ``0, CLOSED``,
  ``CONNECT OK`` when not expected …) and lines starting with a registered bare handler prefix.

A command that times out (or whose caller is cancelled) becomes *stale*: its late answer is consumed
and dropped. The next command waits up to :data:`const.STALE_ANSWER_GRACE` for that late answer before
it is written, so the late answer is never given to it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import heapq
import logging
import re
from collections import deque
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

from .. import const
from ..const import Priority
from ..exceptions import (
    AtCommandError,
    AtTimeoutError,
    CmeError,
    CommandInterruptedError,
    DataModeError,
    TransportError,
)
from .parser import AtParser, Event, Garbage, Payload, PayloadRule, Prompt

if TYPE_CHECKING:
    from ..link import SerialLink

__all__ = [
    "CME_VERBOSE_CODES",
    "FINAL_PATTERNS",
    "AtEngine",
    "AtResponse",
    "EngineStats",
    "Priority",
    "Urc",
    "UrcHandler",
    "command_name",
]

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class AtResponse:
    """The answer to one AT command.

    :param command: the command as sent, without CR
    :param lines: information lines (echo and URCs removed)
    :param final: the final result line ("OK", "SEND OK", "DATA ACCEPT: 0,10", "CONNECT OK", "ERROR" …)
    :param payloads: binary blocks that belonged to this response (e.g. CIPRXGET=2 data)
    :param urcs: the completion URC lines of :meth:`AtEngine.command_with_urcs` (e.g. ``STATE: IP INITIAL``)
    """

    command: str
    lines: list[str]
    final: str
    payloads: list[bytes] = field(default_factory=list)
    urcs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True unless the final result reports a failure (ERROR, +CME ERROR, SEND FAIL …)."""
        return not _is_failure(self.final)


class Urc(NamedTuple):
    """An unsolicited result code (immutable; a NamedTuple because a burst of URCs builds many of them).

    :param line: the URC line (``+CSONMI: 0,6,313233``); for binary URCs the header (``+IPD,5``)
    :param payload: the length-delimited binary that followed (+IPD, +RECEIVE, raw +CSONMI)
    """

    line: str
    payload: bytes | None = None


UrcHandler = Callable[[Urc], None]


@dataclass(slots=True)
class EngineStats:
    """Counters, for diagnostics."""

    commands: int = 0
    timeouts: int = 0
    errors: int = 0
    urcs: int = 0
    unhandled_urcs: int = 0
    garbage: int = 0
    echo_lines: int = 0
    stale_answers: int = 0
    stray_finals: int = 0


#: ``+CME ERROR: <text>`` (AT+CMEE=2) → numeric code, for the common texts (3GPP 27.007 9.2).
CME_VERBOSE_CODES: dict[str, int] = {
    "phone failure": 0,
    "operation not allowed": 3,
    "operation not supported": 4,
    "sim not inserted": 10,
    "sim pin required": 11,
    "sim puk required": 12,
    "sim failure": 13,
    "sim busy": 14,
    "sim wrong": 15,
    "incorrect password": 16,
    "memory full": 20,
    "not found": 22,
    "no network service": 30,
    "network timeout": 31,
    "incorrect parameters": 50,
    "unknown": 100,
}

_GENERIC_FINALS = ("OK", "ERROR")
ESCAPE = b"\x1b"  # cancels a send at the '>' prompt (SIM800-compatible CIPSEND)
_ERROR_PREFIXES = ("+CME ERROR", "+CMS ERROR")

#: Commands whose final result is not OK (the module sends this instead).
DEFAULT_FINALS: dict[str, tuple[str, ...]] = {
    "+CIPSHUT": ("SHUT OK",),
    "+CIPCLOSE": ("CLOSE OK",),
    "+CIPSEND": ("SEND OK", "SEND FAIL", "DATA ACCEPT"),
    "+CIPCHAN": ("CONNECT", "NO CARRIER"),
    "O": ("CONNECT", "NO CARRIER"),  # ATO
}

#: Commands whose final result is a bare value with no OK after it: AT+CIFSR answers only the local IP
#: address (application note 6.3: ``AT+CIFSR`` → ``10.78.245.128``); a failure is still ``ERROR``.
FINAL_PATTERNS: dict[str, re.Pattern[str]] = {
    "+CIFSR": re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$|^[0-9A-Fa-f:]*:[0-9A-Fa-f:.]+$"),
}

_COMMAND_NAME = re.compile(r"^AT([+*$^%#][A-Z0-9_]+|O\d?$)?", re.IGNORECASE)
_LINK_NUMBER = re.compile(r"^\d+\s*[,.]\s*")
_BARE_URC = re.compile(
    r"^(?:\d+\s*[,.]\s*)?(?:RDY|NORMAL POWER DOWN|PSM POWER DOWN|POWER DOWN|CLOSED|SERVER CLOSE|SERVER OK"
    r"|CONNECT OK|CONNECT FAIL|ALREADY CONNECT|SEND OK|SEND FAIL|CLOSE OK|PDP DEACT|SMS DONE|Call Ready"
    r"|REMOTE IP:.*|RECV FROM:.*|OVER-VOLTAGE.*|UNDER-VOLTAGE.*|SEND: \d+,\d+"
    # AT+CIPSTATUS answers OK first, then these (application note 6.9)
    r"|STATE: .*|[CS]: ?\d.*)$",
    re.IGNORECASE,
)
# URCs that share their command's name: extra "+CIPRXGET: 1" lines arrive before real answers
# (TinyGSM PR #628/#803); AT+CDNSGIP and AT+CIPPING answer only OK, their results are URCs even when
# one overtakes the OK.
_URC_ONLY = re.compile(r"^\+(?:CIPRXGET: ?1(?:,\d+)?$|CDNSGIP:|CIPPING:)")


@functools.lru_cache(maxsize=256)
def command_name(command: str) -> str:
    """The name whose ``+NAME:`` lines answer ``command``: ``AT+CSQ`` → ``+CSQ``; ``ATE0`` → ``""``."""
    m = _COMMAND_NAME.match(command.strip())
    if m is None or m.group(1) is None:
        return ""
    name = m.group(1).upper()
    return "O" if name.startswith("O") else name


class _Prepared(NamedTuple):
    name: str
    finals: tuple[str, ...]  # the command's default extra finals
    wire: bytes  # what is written: the command and CR
    echo: str  # the command as its echo is compared (stripped, upper case)
    own: str | None  # "+NAME:": a line starting with it is the command's own answer


@functools.lru_cache(maxsize=512)
def _prepare(command: str, with_data: bool) -> _Prepared:
    """Check ``command`` and work out what the engine needs to send it (cached: the same few commands
    are sent again and again)."""
    if "\r" in command or "\n" in command:
        raise ValueError(f"AT command must not contain CR or LF: {command!r}")
    if not command.strip():
        raise ValueError("empty AT command")
    name = command_name(command)
    finals = DEFAULT_FINALS.get(name, ())
    if name == "+CIPSEND" and not with_data:
        finals = ()  # AT+CIPSEND? and AT+CIPSEND=? answer OK
    own = f"{name}:" if name.startswith("+") and not _URC_ONLY.match(f"{name}: 1") else None
    return _Prepared(name, finals, command.encode() + b"\r", command.strip().upper(), own)


def _line_key(line: str) -> str:
    """``+CSQ: 20,0`` → ``+CSQ``; ``+IPD,5`` → ``+IPD``."""
    end = len(line)
    for sep in (":", ","):
        i = line.find(sep)
        if 0 <= i < end:
            end = i
    return line[:end].strip().upper()


def _matches(line: str, prefixes: Collection[str]) -> bool:
    if not prefixes:
        return False
    rest = line
    m = _LINK_NUMBER.match(line)
    if m is not None:
        rest = line[m.end() :]
    for prefix in prefixes:
        for candidate in (line, rest):
            if candidate.startswith(prefix) and (
                len(candidate) == len(prefix) or candidate[len(prefix)] in " :,"
            ):
                return True
    return False


def _is_failure(final: str) -> bool:
    rest = _LINK_NUMBER.sub("", final, count=1)
    return (
        rest == "ERROR" or rest.startswith(_ERROR_PREFIXES) or rest.endswith("FAIL") or rest == "NO CARRIER"
    )


def _error_for(command: str, final: str, lines: Sequence[str]) -> AtCommandError:
    for prefix in _ERROR_PREFIXES:
        if final.startswith(prefix):
            detail = final[len(prefix) :].lstrip(": ").strip()
            if detail.lstrip("-").isdigit():
                return CmeError(command, final, lines, cme_code=int(detail))
            code = CME_VERBOSE_CODES.get(detail.lower())
            return CmeError(command, final, lines, cme_code=code, cme_text=detail or None)
    return AtCommandError(command, final, lines)


class _PriorityLock:
    """One holder at a time; waiters are served by priority, then in arrival order (bellows)."""

    def __init__(self) -> None:
        self._locked = False
        self._waiters: list[tuple[int, int, asyncio.Future[None]]] = []
        self._seq = 0

    @property
    def locked(self) -> bool:
        return self._locked

    def try_acquire(self) -> bool:
        """Take the lock if it is free and nobody waits for it."""
        if self._locked or self._waiters:
            return False
        self._locked = True
        return True

    async def acquire(self, priority: int) -> None:
        if self.try_acquire():
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._seq += 1
        heapq.heappush(self._waiters, (priority, self._seq, fut))
        try:
            await fut
        except BaseException:
            if fut.done() and not fut.cancelled():
                self.release()  # granted just as we were cancelled: pass it on
            else:
                fut.cancel()
            raise

    def release(self) -> None:
        while self._waiters:
            _, _, fut = heapq.heappop(self._waiters)
            if not fut.done():
                fut.set_result(None)
                return
        self._locked = False


class _Pending:
    """The command in flight (or a stale one whose late answer is still to be dropped)."""

    __slots__ = (
        "after_ok",
        "command",
        "data",
        "data_mode",
        "finals",
        "future",
        "lines",
        "name",
        "ok_seen",
        "own",
        "payloads",
        "prompt_seen",
        "until_urc",
    )

    def __init__(
        self,
        command: str,
        future: asyncio.Future[str],
        *,
        finals: tuple[str, ...],
        after_ok: bool,
        data: bytes | None,
        until_urc: str | None,
        data_mode: Callable[[bytes], None] | None,
        name: str | None = None,
    ) -> None:
        self.command = command
        self.name = command_name(command) if name is None else name
        self.future = future
        self.finals = finals
        self.after_ok = after_ok
        self.data = data
        self.until_urc = until_urc
        self.data_mode = data_mode
        self.ok_seen = False
        self.prompt_seen = False
        self.own: str | None = None  # "+NAME:" when such a line can only be this command's answer
        self.lines: list[str] = []
        self.payloads: list[bytes] = []


class _Deadline(NamedTuple):
    pending: _Pending
    future: asyncio.Future[str]
    limit: float
    when: float  # loop time


class _Collector:
    """Collects the completion URCs of one command (:meth:`AtEngine.command_with_urcs`)."""

    __slots__ = ("count", "done", "error", "lines", "prefix")

    def __init__(self, prefix: str, count: int, done: asyncio.Future[None]) -> None:
        self.prefix = prefix
        self.count = count
        self.done = done
        self.lines: list[str] = []
        self.error: BaseException | None = None


class AtEngine:
    """Runs AT commands over a :class:`~sim7020_core.link.SerialLink`, one at a time.

    >>> engine = AtEngine(await SerialLink.open("socket://127.0.0.1:7020"))  # doctest: +SKIP
    >>> (await engine.command("AT+CSQ")).lines                              # doctest: +SKIP
    ['+CSQ: 20,0']
    """

    def __init__(self, link: SerialLink | None = None) -> None:
        self._link: SerialLink | None = None
        self._parser = AtParser()
        self._lock = _PriorityLock()
        self._pending: _Pending | None = None
        self._stale: _Pending | None = None
        self._deadline: _Deadline | None = None  # of the command in flight
        self._deadline_timer: asyncio.TimerHandle | None = None
        self._handlers: dict[str, list[UrcHandler]] = {}
        self._handler_list: tuple[tuple[str, UrcHandler], ...] = ()
        self._waiters: list[tuple[str, asyncio.Future[Urc]]] = []
        self._collectors: list[_Collector] = []
        self._data_cb: Callable[[bytes], None] | None = None
        self._skip_lf = False
        self._stale_grace: float | None = None
        self._recent: deque[str] = deque(maxlen=const.ECHO_MEMORY)
        self._garbage_callbacks: list[Callable[[bytes], None]] = []
        self._lost_callbacks: list[Callable[[Exception | None], None]] = []
        self.stats = EngineStats()
        if link is not None:
            self._attach(link)

    # -- link ----------------------------------------------------------------------------------
    @property
    def link(self) -> SerialLink | None:
        """The attached link, if any."""
        return self._link

    @property
    def in_data_mode(self) -> bool:
        """True while received bytes bypass the parser (transparent mode)."""
        return self._data_cb is not None

    async def attach(self, link: SerialLink) -> None:
        """Use ``link`` from now on (after a reconnect); the previous link, if any, is detached."""
        await self.detach()
        self._attach(link)

    def _attach(self, link: SerialLink) -> None:
        self._link = link
        self._parser.reset()
        self._data_cb = None
        link.set_receiver(self._data_received, self._connection_lost)

    async def detach(self) -> None:
        """Stop using the current link (it is not closed); commands in flight fail with TransportError."""
        link = self._link
        if link is None:
            return
        link.set_receiver(None, None)
        self._link = None
        self._fail_all(TransportError(f"link {link.url} detached"))

    def on_connection_lost(self, callback: Callable[[Exception | None], None]) -> Callable[[], None]:
        """Call ``callback(exc)`` when the link drops; returns a function that removes it."""
        self._lost_callbacks.append(callback)
        return lambda: self._lost_callbacks.remove(callback) if callback in self._lost_callbacks else None

    def on_unsolicited_garbage(self, callback: Callable[[bytes], None]) -> Callable[[], None]:
        """Call ``callback(data)`` for bytes that are not a valid line; returns a remover."""
        self._garbage_callbacks.append(callback)
        return lambda: (
            self._garbage_callbacks.remove(callback) if callback in self._garbage_callbacks else None
        )

    def _require_link(self) -> SerialLink:
        if self._link is None or not self._link.is_open:
            raise TransportError("no open link to the module")
        return self._link

    def _connection_lost(self, exc: Exception | None) -> None:
        url = self._link.url if self._link is not None else "?"
        self._fail_all(TransportError(f"link {url} lost: {exc}" if exc else f"link {url} closed"))
        for callback in list(self._lost_callbacks):
            try:
                callback(exc)
            except Exception:
                _LOGGER.exception("connection-lost callback %r failed", callback)

    def _fail_all(self, error: TransportError) -> None:
        self._cancel_deadline()
        pending, self._pending = self._pending, None
        if pending is not None and not pending.future.done():
            pending.future.set_exception(error)
        stale, self._stale = self._stale, None
        if stale is not None and not stale.future.done():
            stale.future.cancel()
        for collector in self._collectors:
            if not collector.done.done():
                collector.error = error
                collector.done.set_result(None)
        self._collectors.clear()
        for _, fut in self._waiters:
            if not fut.done():
                fut.set_exception(error)
        self._waiters.clear()
        self._data_cb = None
        self._parser.reset()

    # -- binary payload rules ---------------------------------------------------------------------
    def set_raw_payload_rule(self, name: str, rule: PayloadRule | None) -> None:
        """Teach the parser a length-delimited binary URC (``None`` removes the rule).

        E.g. after ``AT+CSORCVFLAG=1``: ``engine.set_raw_payload_rule("csonmi", CSONMI_RAW_RULE)``.
        """
        self._parser.set_rule(name, rule)

    # -- URCs ---------------------------------------------------------------------------------------
    def add_urc_handler(self, prefix: str, handler: UrcHandler) -> Callable[[], None]:
        """Call ``handler(urc)`` for every URC whose line starts with ``prefix``; returns a remover.

        Handlers run in the event loop, synchronously, while bytes are parsed: keep them short and
        never block (schedule tasks for longer work). An exception in a handler is logged.
        """
        if not prefix:
            raise ValueError("URC handler prefix must not be empty")
        self._handlers.setdefault(prefix, []).append(handler)
        self._rebuild_handlers()

        def remove() -> None:
            handlers = self._handlers.get(prefix)
            if handlers is not None and handler in handlers:
                handlers.remove(handler)
                if not handlers:
                    del self._handlers[prefix]
                self._rebuild_handlers()

        return remove

    def _rebuild_handlers(self) -> None:
        # a snapshot, so handlers may add or remove handlers while URCs are dispatched
        self._handler_list = tuple((p, h) for p, hs in self._handlers.items() for h in hs)

    callback_for_urc = add_urc_handler

    async def wait_for_urc(self, prefix: str, timeout: float) -> Urc:  # noqa: ASYNC109
        """Wait for the next URC starting with ``prefix``.

        :raises AtTimeoutError: none came within ``timeout`` seconds
        """
        fut: asyncio.Future[Urc] = asyncio.get_running_loop().create_future()
        entry = (prefix, fut)
        self._waiters.append(entry)
        try:
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError:
            raise AtTimeoutError(prefix, timeout, what="URC") from None
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    @contextlib.asynccontextmanager
    async def capture_urcs(self, prefix: str) -> AsyncIterator[asyncio.Queue[Urc]]:
        """``async with engine.capture_urcs("+CSONMI") as queue:`` — every matching URC goes to ``queue``."""
        queue: asyncio.Queue[Urc] = asyncio.Queue()
        remove = self.add_urc_handler(prefix, queue.put_nowait)
        try:
            yield queue
        finally:
            remove()

    # -- data mode -------------------------------------------------------------------------------
    def enter_data_mode(self, on_data: Callable[[bytes], None]) -> None:
        """Send every received byte to ``on_data`` unparsed (transparent mode), starting with any
        bytes still in the parser's buffer.

        To switch right when a command answers ``CONNECT`` (no byte lost between the two), use
        :meth:`command_to_data_mode` instead.
        """
        self._data_cb = on_data
        rest = self._parser.take_buffer()
        if rest:
            on_data(rest)

    def leave_data_mode(self, rest: bytes = b"") -> None:
        """Parse received bytes as AT answers again, starting with ``rest``: bytes a data-mode receiver got
        that belong to the module, not to the data (e.g. what follows ``CLOSED`` in the same read)."""
        self._data_cb = None
        self._skip_lf = False
        if rest:
            self._data_received(rest)

    async def write_raw(self, data: bytes) -> None:
        """Write ``data`` as is (data mode, escape sequences)."""
        self._require_link().write(data)

    async def escape_data_mode(
        self,
        *,
        guard_time: float | None = None,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> None:
        """Leave transparent mode with ``+++`` and its guard times, and wait for ``OK``.

        :raises AtTimeoutError: the module did not answer ``OK``
        """
        guard = const.DATA_MODE_GUARD_TIME if guard_time is None else guard_time
        limit = const.DEFAULT_TIMEOUT if timeout is None else timeout
        link = self._require_link()
        await asyncio.sleep(guard)
        self.leave_data_mode()
        async with self._turn(Priority.HIGH, "+++"):
            fut: asyncio.Future[str] = asyncio.get_running_loop().create_future()
            pending = _Pending(
                "+++", fut, finals=(), after_ok=False, data=None, until_urc=None, data_mode=None
            )
            self._pending = pending
            try:
                link.write(b"+++")
                await asyncio.sleep(guard)
                final = await self._wait_pending(pending, limit + guard)
            finally:
                if self._pending is pending:
                    self._pending = None
        if _is_failure(final):
            raise AtCommandError("+++", final)

    # -- commands ---------------------------------------------------------------------------------
    async def _wait_turn(self, priority: int, command: str) -> None:
        """Wait for the command lock (someone else holds it) for at most :data:`const.QUEUE_TIMEOUT`."""
        try:
            async with asyncio.timeout(const.QUEUE_TIMEOUT):
                await self._lock.acquire(priority)
        except TimeoutError:
            raise AtTimeoutError(command, const.QUEUE_TIMEOUT, what="turn in the command queue") from None

    @contextlib.asynccontextmanager
    async def _turn(self, priority: int, command: str) -> AsyncIterator[None]:
        if not self._lock.try_acquire():
            await self._wait_turn(priority, command)
        try:
            yield
        finally:
            self._lock.release()

    async def _settle_stale(self) -> None:
        stale = self._stale
        if stale is None:
            return
        if not stale.future.done():
            grace = const.STALE_ANSWER_GRACE if self._stale_grace is None else self._stale_grace
            await asyncio.wait({stale.future}, timeout=grace)
        if self._stale is stale:
            if not stale.future.done():
                _LOGGER.debug("no late answer to %r; giving up on it", stale.command)
                stale.future.cancel()
            self._stale = None

    async def _wait_pending(self, pending: _Pending, limit: float) -> str:
        """Wait for the final result of ``pending`` (the command in flight) for at most ``limit`` seconds.

        The future is awaited directly (one event-loop turn from the answer to the caller, which matters for
        round trips) under the shared deadline timer (:meth:`_arm_deadline`). On a timeout, or when the caller
        is cancelled, the command becomes *stale* with a fresh future: its late answer is consumed and
        dropped, never given to the next command.
        """
        fut = pending.future
        if not fut.done():
            loop = asyncio.get_running_loop()
            self._arm_deadline(loop, _Deadline(pending, fut, limit, loop.time() + limit))
            try:
                await fut
            except asyncio.CancelledError:
                if fut.cancelled() and self._pending is pending:  # our caller was cancelled
                    self._make_stale(pending)
                raise
            finally:
                self._deadline = None
        return fut.result()

    def _arm_deadline(self, loop: asyncio.AbstractEventLoop, deadline: _Deadline) -> None:
        """Time out the command in flight at ``deadline.when``.

        One timer serves command after command: it is armed for the first deadline and, when it fires,
        either times out the command in flight or moves on to that command's deadline; it is replaced only
        when a command needs an earlier one. Most commands are answered within milliseconds, so this saves
        creating and cancelling a timer per command, a tenth of the engine's work for a short command.
        """
        self._deadline = deadline
        timer = self._deadline_timer
        if timer is None or timer.when() > deadline.when:
            if timer is not None:
                timer.cancel()
            self._start_deadline_timer(loop, deadline.when)

    def _start_deadline_timer(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        self._deadline_timer = loop.call_at(when, self._deadline_reached, when)

    def _deadline_reached(self, when: float) -> None:
        self._deadline_timer = None
        deadline = self._deadline
        if deadline is None:
            return  # idle: no timer is left behind
        if deadline.when <= when:
            self._deadline = None
            self._expire(deadline.pending, deadline.future, deadline.limit)
        else:
            self._start_deadline_timer(asyncio.get_running_loop(), deadline.when)

    def _cancel_deadline(self) -> None:
        self._deadline = None
        if self._deadline_timer is not None:
            self._deadline_timer.cancel()
            self._deadline_timer = None

    def _make_stale(self, pending: _Pending) -> None:
        pending.future = asyncio.get_running_loop().create_future()  # resolved (and dropped) by a late answer
        self._pending = None
        self._stale = pending

    def _expire(self, pending: _Pending, fut: asyncio.Future[str], limit: float) -> None:
        if fut.done():
            return
        self.stats.timeouts += 1
        if self._pending is pending:
            self._make_stale(pending)
        self._unstick_payload()
        fut.set_exception(AtTimeoutError(pending.command, limit))

    def abort_pending(self, reason: str) -> bool:
        """Fail the command in flight at once with :class:`CommandInterruptedError` (the module rebooted or
        entered PSM, so no answer will come). Returns False when no command was waiting.

        The stream stays in step: nothing more is expected for that command, and an incomplete binary
        payload is abandoned. Completion-URC waits (``until_urc``) of finished commands are not touched.
        """
        pending = self._pending
        if pending is None or pending.future.done():
            return False
        self._pending = None
        pending.future.set_exception(CommandInterruptedError(pending.command, reason))
        self._parser.abandon_payload()
        _LOGGER.info("%r interrupted: %s", pending.command, reason)
        return True

    def _unstick_payload(self) -> None:
        """A binary header announced more data than came: let the parser read on as text."""
        if self._parser.abandon_payload():
            _LOGGER.warning("incomplete binary payload abandoned after a timeout; parsing on as text")
            self._data_received(b"")

    async def command(
        self,
        command: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        priority: Priority = Priority.NORMAL,
        final: Collection[str] = (),
        after_ok: bool = False,
        check: bool = True,
    ) -> AtResponse:
        """Send ``command`` (without CR) and return its answer.

        :param timeout: seconds for the final result; default :data:`const.DEFAULT_TIMEOUT`
        :param priority: queue priority (HIGH for the watchdog, LOW for bulk data)
        :param final: extra final-result prefixes, e.g. ``("SERVER OK",)``; a leading link number
            (``0, CONNECT OK``) is accepted
        :param after_ok: ``OK`` is not final: wait for one of ``final`` after it (AT+CIPSTART → ``OK``,
            then ``CONNECT OK``)
        :param check: raise on a failure final result; with ``check=False`` it is returned
        :raises AtCommandError: ``ERROR`` (or ``CONNECT FAIL`` …) when ``check``
        :raises CmeError: ``+CME ERROR`` when ``check``; carries ``cme_code`` / ``cme_text``
        :raises AtTimeoutError: no final result in time
        :raises TransportError: the link is closed or was lost meanwhile
        """
        prepared = _prepare(command, False)
        finals = (*final, *prepared.finals) if final else prepared.finals
        # A line "+NAME: …" can only be this command's answer when nothing else is expected: take it first.
        own = prepared.own if not (final or after_ok) else None
        pending, result = await self._exchange(
            command, prepared, timeout, priority, finals=finals, after_ok=after_ok, own=own
        )
        return self._answer(pending, result, check)

    async def send_data(
        self,
        command: str,
        data: bytes,
        *,
        terminator: bytes = b"",
        timeout: float | None = None,  # noqa: ASYNC109
        priority: Priority = Priority.LOW,
        check: bool = True,
    ) -> AtResponse:
        """Send ``command``, write ``data`` at its ``>`` prompt and return the answer
        (``AT+CIPSEND=<n>,<len>`` → ``SEND OK``; ``AT+CSODSEND=<id>,<len>`` → ``DATA ACCEPT: <len>``, ``OK``).

        The data is written by the receive path the moment the prompt is parsed, so nothing else can be
        written in between; if the command times out before its prompt came, a late prompt is answered with
        ESC (which cancels the send) instead of the data, so the module never takes the next command as data.

        :param data: the bytes written after the prompt
        :param terminator: written after ``data``, e.g. ``b"\\x1a"`` (Ctrl-Z) for CIPSEND without a length
        :param priority: queue priority (default LOW: bulk data waits behind status queries)
        :raises AtCommandError: ``ERROR``, ``SEND FAIL`` … when ``check``
        :raises AtTimeoutError: no prompt or no final result in time
        :raises TransportError: the link is closed or was lost meanwhile
        """
        prepared = _prepare(command, True)
        payload = bytes(data) + terminator
        pending, result = await self._exchange(
            command, prepared, timeout, priority, finals=prepared.finals, data=payload
        )
        return self._answer(pending, result, check)

    async def command_with_urcs(
        self,
        command: str,
        until_urc: str,
        *,
        count: int = 1,
        timeout: float | None = None,  # noqa: ASYNC109
        urc_timeout: float | None = None,
        partial: bool = False,
        priority: Priority = Priority.NORMAL,
    ) -> AtResponse:
        """Send ``command``, wait for its ``OK``, then for ``count`` URCs starting with ``until_urc``; they
        are returned in :attr:`AtResponse.urcs` (``AT+CIPSTATUS`` → ``OK``, then ``STATE: …``, ``C: …``).

        Other commands may run while the URCs are awaited (the command lock is released at ``OK``).

        :param until_urc: prefix of the completion URCs (``"STATE:"``)
        :param count: how many of them
        :param timeout: seconds for the final result; default :data:`const.DEFAULT_TIMEOUT`
        :param urc_timeout: seconds for the URCs after the final result; default ``timeout``
        :param partial: on ``urc_timeout`` return the URCs received so far instead of raising
        :raises AtCommandError: the command failed (``ERROR`` / ``+CME ERROR``)
        :raises AtTimeoutError: no final result, or (unless ``partial``) not enough URCs in time
        """
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        prepared = _prepare(command, False)
        # Listen before sending: a completion URC may arrive in the same read as the OK, or before it.
        collector = _Collector(until_urc, count, asyncio.get_running_loop().create_future())
        try:
            pending, result = await self._exchange(
                command,
                prepared,
                timeout,
                priority,
                finals=prepared.finals,
                until_urc=until_urc,
                collector=collector,
            )
            response = self._answer(pending, result, True)
        except BaseException:
            self._remove_collector(collector)
            raise
        limit = const.DEFAULT_TIMEOUT if timeout is None else timeout
        urcs = await self._wait_collector(
            command, collector, limit if urc_timeout is None else urc_timeout, partial
        )
        return AtResponse(command, response.lines, response.final, response.payloads, urcs)

    async def command_to_data_mode(
        self,
        command: str,
        on_data: Callable[[bytes], None],
        *,
        timeout: float | None = None,  # noqa: ASYNC109
        priority: Priority = Priority.NORMAL,
    ) -> AtResponse:
        """Send ``command`` (``AT+CIPCHAN``, ``ATO``) and, when it answers ``CONNECT``, switch the line to
        data mode: from the byte after ``CONNECT`` on, received bytes go to ``on_data`` unparsed.

        The switch happens in the receive path, in the same read as ``CONNECT``, so no byte of the data is
        parsed as an answer. Leave data mode with :meth:`escape_data_mode` or :meth:`leave_data_mode`.

        :raises AtCommandError: the module answered ``NO CARRIER``, ``ERROR`` … (still in command mode)
        :raises AtTimeoutError: no final result in time
        """
        prepared = _prepare(command, False)
        pending, result = await self._exchange(
            command, prepared, timeout, priority, finals=prepared.finals, data_mode=on_data
        )
        return self._answer(pending, result, True)

    async def _exchange(
        self,
        command: str,
        prepared: _Prepared,
        timeout: float | None,  # noqa: ASYNC109 - the command's bound, applied by the deadline timer
        priority: Priority,
        *,
        finals: tuple[str, ...],
        after_ok: bool = False,
        data: bytes | None = None,
        until_urc: str | None = None,
        data_mode: Callable[[bytes], None] | None = None,
        own: str | None = None,
        collector: _Collector | None = None,
    ) -> tuple[_Pending, str]:
        """Write ``command`` and wait for its final result line (the part every command shape shares).

        Returns the pending record (its lines and payloads) and the final result line.
        """
        if self._data_cb is not None:
            raise DataModeError(f"cannot send {command!r}: the link is in transparent data mode")
        limit = const.DEFAULT_TIMEOUT if timeout is None else timeout
        lock = self._lock
        if not lock.try_acquire():  # free: no timer needed (the common case, kept cheap)
            await self._wait_turn(priority, command)
        try:
            link = self._require_link()
            if self._stale is not None:
                # A timed-out command's late answer may still come: wait for it (bounded) so that it is
                # never taken for this command's answer.
                await self._settle_stale()
            if self._data_cb is not None:
                raise DataModeError(f"cannot send {command!r}: the link is in transparent data mode")
            if collector is not None:
                self._collectors.append(collector)
            pending = _Pending(
                command,
                asyncio.get_running_loop().create_future(),
                finals=finals,
                after_ok=after_ok,
                data=data,
                until_urc=until_urc,
                data_mode=data_mode,
                name=prepared.name,
            )
            pending.own = own
            self.stats.commands += 1
            self._recent.append(prepared.echo)
            # Register the command before writing it, with no await in between: its answer may be parsed
            # in the very next read.
            self._pending = pending
            _LOGGER.debug("tx %r", command)
            try:
                link.write(prepared.wire)
            except BaseException:
                self._pending = None
                raise
            try:
                # _wait_pending makes a timed-out or cancelled command stale itself
                result = await self._wait_pending(pending, limit)
            finally:
                if self._pending is pending:
                    self._pending = None
        finally:
            lock.release()
        return pending, result

    def _answer(self, pending: _Pending, result: str, check: bool) -> AtResponse:
        """The :class:`AtResponse` of a finished command; raises its error when ``check`` and it failed."""
        lines = pending.lines
        if result != "OK" and _is_failure(result):
            self.stats.errors += 1
            if check:
                raise _error_for(pending.command, result, lines)
        return AtResponse(pending.command, lines, result, pending.payloads)

    async def _wait_collector(
        self, command: str, collector: _Collector, limit: float, partial: bool
    ) -> list[str]:
        try:
            done, _ = await asyncio.wait({collector.done}, timeout=limit)
        finally:
            self._remove_collector(collector)
        if collector.error is not None:
            raise collector.error
        if not done:
            if partial:
                return list(collector.lines)
            self.stats.timeouts += 1
            raise AtTimeoutError(
                command, limit, what=f"{collector.count - len(collector.lines)} more {collector.prefix} URC"
            )
        return list(collector.lines)

    def _remove_collector(self, collector: _Collector) -> None:
        if collector in self._collectors:
            self._collectors.remove(collector)
        if not collector.done.done():
            collector.done.cancel()

    async def sync(
        self,
        *,
        rates: Sequence[int] | None = None,
        attempts: int | None = None,
        attempt_timeout: float | None = None,
        fix_rate: int | None = None,
    ) -> int:
        """Find the module: send ``AT`` until it answers, trying candidate line rates (autobaud).

        For network URLs the rate is irrelevant and only the current one is tried. Once the module
        answers at some rate and ``fix_rate`` differs, ``AT+IPR=<fix_rate>`` fixes it and the local
        rate follows. Returns the rate in use.

        :raises TransportError: no answer at any rate
        """
        link = self._require_link()
        n_attempts = const.SYNC_ATTEMPTS if attempts is None else attempts
        per_try = const.SYNC_ATTEMPT_TIMEOUT if attempt_timeout is None else attempt_timeout
        candidates: list[int] = [link.baudrate]
        if not link.is_socket:
            for rate in rates if rates is not None else const.AUTOBAUD_RATES:
                if rate not in candidates:
                    candidates.append(rate)
        for rate in candidates:
            if rate != link.baudrate:
                await link.set_baudrate(rate)
            for _ in range(n_attempts):
                # a timed-out probe is stale like any command: the next probe first waits (up to
                # per_try) for its late OK, so no late OK is left over for the commands after sync
                self._stale_grace = per_try
                try:
                    await self.command("AT", timeout=per_try, priority=Priority.HIGH, check=False)
                except AtTimeoutError:
                    continue
                finally:
                    self._stale_grace = None
                if fix_rate is not None and fix_rate != rate and not link.is_socket:
                    await self.command(
                        f"AT+IPR={fix_rate}", timeout=const.SHORT_TIMEOUT, priority=Priority.HIGH
                    )
                    await link.set_baudrate(fix_rate)
                    await asyncio.sleep(const.SET_BAUDRATE_SETTLE)
                    await self.command("AT", timeout=const.SHORT_TIMEOUT, priority=Priority.HIGH)
                    return fix_rate
                return rate
        raise TransportError(f"no answer to AT on {link.url} (tried {', '.join(map(str, candidates))} baud)")

    # -- receiving ----------------------------------------------------------------------------------
    def _data_received(self, data: bytes) -> None:
        if data and _LOGGER.isEnabledFor(logging.DEBUG):
            _LOGGER.debug("rx %r", data[:200])
        data_cb = self._data_cb  # (a local: a handled line can switch to data mode below)
        if data_cb is not None:
            self._to_data_cb(data)
            return
        parser = self._parser
        quick = parser.quick_lines(data)
        if quick is not None:  # the common case: whole lines of plain text
            handle_line = self._handle_line
            for index, line in enumerate(quick):
                handle_line(line)
                if self._data_cb is not None:  # the line switched to data mode (CONNECT)
                    self._to_data_cb(data[parser.line_end(data, index) :])
                    return
            return
        parser.feed(data)
        events = parser.events()
        handle_line = self._handle_line
        try:
            for event in events:
                if type(event) is str:
                    handle_line(event)
                else:
                    self._handle(event)
                if self._data_cb is not None:
                    break
        finally:
            events.close()
        if self._data_cb is not None:
            self._to_data_cb(parser.take_buffer())

    def _to_data_cb(self, data: bytes) -> None:
        cb = self._data_cb
        if cb is None:
            return
        if self._skip_lf and data:
            self._skip_lf = False
            if data[0] == 0x0A:  # the LF of the CONNECT line's CRLF, split from its CR
                data = data[1:]
        if data:
            cb(data)

    def _handle(self, event: Event) -> None:
        if isinstance(event, str):
            self._handle_line(event)
        elif isinstance(event, Payload):
            self._handle_payload(event)
        elif isinstance(event, Prompt):
            self._handle_prompt()
        elif isinstance(event, Garbage):
            self._handle_garbage(event.data)

    def _handle_garbage(self, data: bytes) -> None:
        self.stats.garbage += 1
        _LOGGER.debug("garbage from the module: %r", data[:80])
        for callback in list(self._garbage_callbacks):
            try:
                callback(data)
            except Exception:
                _LOGGER.exception("garbage callback %r failed", callback)

    def _handle_prompt(self) -> None:
        link = self._link
        pending = self._pending
        if pending is None:
            stale = self._stale
            if stale is not None and stale.data is not None and not stale.prompt_seen:
                # a timed-out send got its prompt late: cancel it (ESC), or the module would take
                # the next command as data
                stale.prompt_seen = True
                if link is not None and link.is_open:
                    link.write(ESCAPE)
                return
        if pending is None or pending.data is None or pending.prompt_seen:
            _LOGGER.debug("unexpected '>' prompt ignored")
            return
        pending.prompt_seen = True
        if link is not None and link.is_open:
            link.write(pending.data)

    def _handle_payload(self, event: Payload) -> None:
        pending = self._pending
        if pending is not None and pending.name and _line_key(event.header) == pending.name:
            pending.lines.append(event.header)
            pending.payloads.append(event.data)
            return
        self._dispatch_urc(event.header, event.data)

    def _is_echo(self, line: str, pending: _Pending | None) -> bool:
        if line[:2].upper() != "AT" and line != "+++":
            return False
        upper = line.upper()
        if pending is not None and upper == pending.command.strip().upper():
            return True
        return upper in self._recent or pending is None

    def _handle_line(self, line: str) -> None:
        owner = self._pending or self._stale
        if owner is not None and owner.own is not None and line.startswith(owner.own):
            owner.lines.append(line)  # the common case: "+CSQ: 20,0" answering AT+CSQ
            return
        if (line[0] in "Aa" or line == "+++") and self._is_echo(line, owner):
            self.stats.echo_lines += 1
            return
        if owner is None:
            if line in _GENERIC_FINALS or line.startswith(_ERROR_PREFIXES):
                self.stats.stray_finals += 1
                _LOGGER.debug("final result %r with no command in flight dropped", line)
                return
            self._dispatch_urc(line)
            return
        # final results
        pattern = FINAL_PATTERNS.get(owner.name)
        if pattern is not None and pattern.match(line):
            self._finish(owner, line)
            return
        if (
            owner.finals
            and _matches(line, owner.finals)
            and (not owner.after_ok or owner.ok_seen or _is_failure(line))
        ):
            self._finish(owner, line)
            return
        if line == "OK":
            if owner.after_ok:
                owner.ok_seen = True
                return
            self._finish(owner, line)
            return
        if line == "ERROR" or line.startswith(_ERROR_PREFIXES):
            self._finish(owner, line)
            return
        if owner.data is not None and owner.prompt_seen and line.encode() in owner.data:
            self.stats.echo_lines += 1  # the module echoing the data we sent (echo on)
            return
        # information lines or URCs
        if owner.ok_seen or self._is_urc_for(line, owner):
            self._dispatch_urc(line)
            return
        owner.lines.append(line)

    def _is_urc_for(self, line: str, owner: _Pending) -> bool:
        if owner.until_urc is not None and line.startswith(owner.until_urc):
            return True
        first = line[0]
        if first in "+*":
            if _URC_ONLY.match(line):
                return True
            return _line_key(line) != owner.name
        if _BARE_URC.match(line):
            return True
        return any(prefix[0] not in "+*" and line.startswith(prefix) for prefix in self._handlers)

    def _finish(self, owner: _Pending, final: str) -> None:
        if owner is self._stale:
            self._stale = None
            self.stats.stale_answers += 1
            _LOGGER.debug("late answer %r to timed-out %r dropped", final, owner.command)
            if not owner.future.done():
                owner.future.set_result(final)
            return
        if owner is self._pending:
            self._pending = None
        if not owner.future.done():
            owner.future.set_result(final)
            if owner.data_mode is not None and not _is_failure(final):
                self._data_cb = owner.data_mode
                self._skip_lf = True

    def _dispatch_urc(self, line: str, payload: bytes | None = None) -> None:
        self.stats.urcs += 1
        urc: Urc | None = None
        if not self._collectors and not self._waiters:  # the common case: straight to the handlers
            for prefix, handler in self._handler_list:
                if line.startswith(prefix):
                    if urc is None:
                        urc = Urc(line, payload)
                    try:
                        handler(urc)
                    except Exception:
                        _LOGGER.exception("URC handler %r failed on %r", handler, line)
            if urc is None:
                self.stats.unhandled_urcs += 1
                _LOGGER.debug("unhandled URC %r", line)
            return
        for collector in self._collectors:
            if line.startswith(collector.prefix) and len(collector.lines) < collector.count:
                collector.lines.append(line)
                if len(collector.lines) >= collector.count and not collector.done.done():
                    collector.done.set_result(None)
                return
        handled = False
        if self._waiters:
            for entry in list(self._waiters):
                prefix, fut = entry
                if line.startswith(prefix) and not fut.done():
                    if urc is None:
                        urc = Urc(line, payload)
                    fut.set_result(urc)
                    self._waiters.remove(entry)
                    handled = True
        for prefix, handler in self._handler_list:
            if line.startswith(prefix):
                handled = True
                if urc is None:
                    urc = Urc(line, payload)
                try:
                    handler(urc)
                except Exception:
                    _LOGGER.exception("URC handler %r failed on %r", handler, line)
        if not handled:
            self.stats.unhandled_urcs += 1
            _LOGGER.debug("unhandled URC %r", line)
