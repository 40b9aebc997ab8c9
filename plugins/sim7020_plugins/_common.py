"""Small helpers shared by the built-in transports (argument checks, URC field parsing, URC handler
installation, background tasks)."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable, Coroutine, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from sim7020_core.exceptions import UnsupportedError

if TYPE_CHECKING:
    from sim7020_core.at.engine import AtEngine, UrcHandler


def urc_fields(line: str) -> list[str]:
    """The comma-separated fields after ``<prefix>:`` with quotes and blanks removed.

    ``'+CSONMI: 0,6,"313233"'`` → ``['0', '6', '313233']``; a line without a colon gives its fields as is.
    """
    _, sep, rest = line.partition(":")
    body = rest if sep else line
    return [unquote(f) for f in body.split(",")] if body.strip() else []


def unquote(text: str) -> str:
    """Strip blanks and one pair of surrounding double quotes."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def parse_int(text: str, what: str, line: str) -> int:
    """``int(text)`` or a ValueError naming the field and the line it came from."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"bad {what} {text!r} in {line!r}") from None


def check_port(port: object, what: str = "port") -> int:
    """Return ``port`` if it is an int in 1..65535, else raise ValueError naming it."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"{what} must be an integer from 1 to 65535, not {port!r}")
    return port


def check_ip(ip: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Parse an IP address literal (transports get addresses the modem already resolved)."""
    if not isinstance(ip, str):
        raise TypeError(f"remote address must be an IP address string, not {ip!r}")
    try:
        return ipaddress.ip_address(ip.strip())
    except ValueError:
        raise ValueError(f"remote address must be an IP address (resolve names first), not {ip!r}") from None


def check_options(transport: str, options: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Raise UnsupportedError naming the options ``transport`` does not know."""
    known = set(allowed)
    unknown = sorted(set(options) - known)
    if unknown:
        names = ", ".join(sorted(known))
        raise UnsupportedError(
            f"transport {transport!r} has no option(s) {', '.join(unknown)} (known: {names})"
        )


class UrcHandlers:
    """A transport's URC handlers, installed on one AT engine at a time.

    The modem builds a new engine when it reopens the link: :meth:`install` puts the handlers on the engine
    given (taking them off the previous one first) and does nothing when they are already there;
    :meth:`remove` takes them off. ``on_install(engine)`` runs after the handlers went on an engine and
    ``on_remove(engine)`` after they came off it (e.g. to teach or unteach the parser a binary URC rule).
    """

    def __init__(
        self,
        handlers: Sequence[tuple[str, UrcHandler]],
        *,
        on_install: Callable[[AtEngine], None] | None = None,
        on_remove: Callable[[AtEngine], None] | None = None,
    ) -> None:
        self._handlers = tuple(handlers)
        self._on_install = on_install
        self._on_remove = on_remove
        self._removers: list[Callable[[], None]] = []
        self.engine: AtEngine | None = None  # the engine the handlers are on

    def install(self, engine: AtEngine) -> AtEngine:
        """Make sure the handlers are on ``engine`` (and on no other); return it."""
        if engine is not self.engine:
            self.remove()
            self._removers = [engine.add_urc_handler(prefix, handler) for prefix, handler in self._handlers]
            self.engine = engine
            if self._on_install is not None:
                self._on_install(engine)
        return engine

    def remove(self) -> None:
        """Take the handlers off the engine they are on (if any)."""
        while self._removers:
            self._removers.pop()()
        if self.engine is not None and self._on_remove is not None:
            self._on_remove(self.engine)
        self.engine = None


class BackgroundTasks:
    """Tasks a transport starts where it cannot await (URC handlers, flow control); cancelled on close.

    The set keeps a reference to every running task; a task that fails is logged at debug level as
    ``failure % exc`` on ``logger`` (the work is best effort: the transport reports errors elsewhere).
    """

    def __init__(self, logger: logging.Logger, failure: str) -> None:
        self._logger = logger
        self._failure = failure
        self._tasks: set[asyncio.Task[None]] = set()

    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run ``coro`` as a task of this set and return the task."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self._logger.debug(self._failure, exc)

    async def cancel_all(self) -> None:
        """Cancel every running task and wait until they have ended."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
