"""The shared state of one modem and what every part of it uses: state changes and events, commands that
count towards the fatal-error path, and background tasks.

:class:`ModemCore` holds what the parts of a :class:`~sim7020_core.modem.Modem` share (the AT engine, the
link, the link state, the last status, the initialisation lock and the readiness events); each part
(:mod:`.session`, :mod:`.status_reader`, :mod:`.psm_control`, :mod:`.supervisor`, :mod:`.urcs`,
:mod:`.services`, :mod:`.transports`) gets it at construction. Only the core changes the state and the
status, so every change is published once, in order, to the subscribers and then to the plugins.

Commands of the modem go through :meth:`ModemCore.command`, which reports each answer (or its absence) to
the :class:`FatalPath`, the supervisor: unanswered commands in a row start recovery there.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol

from .. import const
from ..at.engine import AtEngine, AtResponse
from ..const import Priority
from ..events import ModemEvent, ProblemChanged, StateChanged, StatusChanged
from ..exceptions import AtCommandError, AtTimeoutError
from ..models import LinkState, ModemInfo, ModemProblem, ModemStatus, ProblemKind

if TYPE_CHECKING:
    from ..connection import TransportHost
    from ..link import SerialLink
    from ..plugins import PluginManager
    from .options import ModemOptions

_LOGGER = logging.getLogger(__name__)


class FatalPath(Protocol):
    """Who hears whether commands are answered, and where the session is given up (the supervisor)."""

    def answered(self) -> None:
        """The module answered a command (OK or an error: it is alive)."""

    def unanswered(self, command: str) -> None:
        """A command got no answer in time."""

    def fatal(self, reason: str) -> None:
        """The session is lost (the port went away, the module stays silent …): recover or give up."""


class _NoFatalPath:
    """Until the supervisor takes over (it does so when it is built, before any command)."""

    def answered(self) -> None:
        pass

    def unanswered(self, command: str) -> None:
        pass

    def fatal(self, reason: str) -> None:
        pass


class ModemCore:
    """The shared state of one modem (see the module docstring).

    :ivar modem: the :class:`~sim7020_core.modem.Modem` itself, as plugins and transports see it
    :ivar engine: the AT engine (the same object for the modem's whole life, across reopened links)
    :ivar link: the open serial link (None while reconnecting or closed)
    :ivar info: identity read at initialisation
    :ivar status: the last known status
    :ivar state: the link state
    :ivar init_lock: held while the module is (re-)initialised or recovered
    :ivar ready: set while the state is ``ready`` (and once ``closed``, to release waiters)
    :ivar awake: clear while the module sleeps in PSM
    :ivar registered: set while the module is registered on the network
    :ivar resets: module resets seen so far (an answer from before a reset describes a module that is gone)
    :ivar grant_urcs: the module took ``AT+CEREG=4``, so the network's PSM grant arrives in ``+CEREG`` URCs
    :ivar settled: clear from a wake until the session settings are applied again
    :ivar rejoined: clear from a wake until the module reports it is registered again
    :ivar rejoin_deadline: loop time until which data waits for registration after the last wake
    :ivar wakes: wakes from PSM seen so far
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int,
        options: ModemOptions,
        plugins: PluginManager,
        modem: TransportHost,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.options = options
        self.plugins = plugins
        self.modem = modem
        self.engine = AtEngine()
        self.link: SerialLink | None = None
        self.info = ModemInfo()
        self.status = ModemStatus()
        self.state = LinkState.CONNECTING
        self.init_lock = asyncio.Lock()
        self.ready = asyncio.Event()
        self.awake = asyncio.Event()
        self.awake.set()
        self.registered = asyncio.Event()
        self.resets = 0
        self.grant_urcs = False  # AT+CEREG=4 accepted: the network's PSM grant arrives in +CEREG URCs
        self.settled = asyncio.Event()
        self.settled.set()
        self.rejoined = asyncio.Event()
        self.rejoined.set()
        self.rejoin_deadline = 0.0
        self.wakes = 0
        self.fatal_path: FatalPath = _NoFatalPath()
        self._problems: dict[ProblemKind, ModemProblem] = {}
        self._subscribers: list[Callable[[ModemEvent], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def closed(self) -> bool:
        """True after the modem was closed."""
        return self.state is LinkState.CLOSED

    # ------------------------------------------------------------------ commands

    async def command(
        self,
        command: str,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - the engine bounds the command with it
        priority: Priority = Priority.NORMAL,
        check: bool = True,
    ) -> AtResponse:
        """A command of the modem itself: :meth:`AtEngine.command`, its answer (or silence) reported to the
        fatal-error path."""
        try:
            response = await self.engine.command(
                command,
                timeout=const.DEFAULT_TIMEOUT if timeout is None else timeout,
                priority=priority,
                check=check,
            )
        except AtTimeoutError:
            self.fatal_path.unanswered(command)
            raise
        except AtCommandError:
            self.fatal_path.answered()
            raise
        self.fatal_path.answered()
        return response

    # ------------------------------------------------------------------ state, status, events

    def set_state(self, state: LinkState, reason: str = "") -> None:
        """Move to ``state`` and publish it (nothing when it is the current one)."""
        if state is self.state:
            return
        previous, self.state = self.state, state
        if state is LinkState.READY:
            self.ready.set()
        else:
            self.ready.clear()
        if state is LinkState.CLOSED:
            self.ready.set()  # release waiters: they see CLOSED and fail
        _LOGGER.debug("modem %s: %s → %s (%s)", self.url, previous.value, state.value, reason)
        self.emit(StateChanged(state=state, previous=previous, reason=reason, status=self.status))
        psm_state = "asleep" if state is LinkState.ASLEEP else "awake"
        if self.status.psm.state != psm_state:
            psm = dataclasses.replace(self.status.psm, state=psm_state)
            self.set_status(dataclasses.replace(self.status, psm=psm))

    def set_status(self, status: ModemStatus) -> None:
        """Keep ``status`` as the last known one and publish it (nothing when it did not change)."""
        if status == self.status:
            return
        self.status = status
        self.emit(StatusChanged(status=status, state=self.state))

    # ------------------------------------------------------------------ problems

    @property
    def problem(self) -> ModemProblem | None:
        """The problem that needs a human now (the first kind in :class:`ProblemKind` order), or None."""
        for kind in ProblemKind:
            found = self._problems.get(kind)
            if found is not None:
                return found
        return None

    def set_problem(self, kind: ProblemKind, message: str | None) -> None:
        """Report (``message``) or clear (None) the problem of ``kind``; a change of :attr:`problem` is
        logged and published (:class:`ProblemChanged`)."""
        previous = self.problem
        if message is None:
            self._problems.pop(kind, None)
        else:
            self._problems[kind] = ModemProblem(kind=kind, message=message)
        problem = self.problem
        if problem == previous:
            return
        if problem is None:
            _LOGGER.warning("modem %s: problem solved (was: %s)", self.url, previous and previous.message)
        else:
            _LOGGER.error("modem %s: problem: %s", self.url, problem.message)
        self.emit(ProblemChanged(problem=problem, previous=previous, state=self.state, status=self.status))

    def clear_problems(self, *kinds: ProblemKind) -> None:
        """Clear the problems of ``kinds``."""
        for kind in kinds:
            if kind in self._problems:
                self.set_problem(kind, None)

    def subscribe(self, callback: Callable[[ModemEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event; returns a function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def emit(self, event: ModemEvent) -> None:
        """Tell the subscribers, then the plugins (``sim7020_modem_state_changed``); failures are logged."""
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                _LOGGER.exception("modem subscriber %r failed on %r", callback, event)
        try:
            self.plugins.hook.sim7020_modem_state_changed(modem=self.modem, event=event)
        except Exception:  # a plugin's hook wrapper: the implementations themselves are guarded
            _LOGGER.exception("sim7020_modem_state_changed failed on %r", event)

    # ------------------------------------------------------------------ background tasks

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        """Run ``coro`` in the background until it ends or the modem closes (its failure is logged)."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("modem background task %s failed", task.get_name(), exc_info=task.exception())

    async def cancel_background(self) -> None:
        """Cancel every background task but the caller's own, and wait for them (bounded)."""
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=const.CLOSE_TIMEOUT)

    @staticmethod
    async def bounded(awaitable: Awaitable[Any], what: str) -> None:
        """Await a plugin's coroutine at most :data:`const.TRANSPORT_NOTIFY_TIMEOUT`; failures are logged."""
        try:
            async with asyncio.timeout(const.TRANSPORT_NOTIFY_TIMEOUT):
                await awaitable
        except Exception as err:  # noqa: BLE001 - a misbehaving plugin must not break the modem
            _LOGGER.warning("%s failed: %r", what, err)


__all__ = ["FatalPath", "ModemCore"]
