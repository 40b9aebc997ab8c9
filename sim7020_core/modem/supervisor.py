"""Keeping the session alive: watchdog, status polling, reboot detection and recovery, through one fatal path.

- Every command of the modem reports whether it was answered (:class:`~.core.FatalPath`): unanswered
  commands in a row while the module should be awake (watchdog probes or any other) count, and
  ``watchdog_max_failures`` of them are fatal. A lost port is fatal too.
- :meth:`Supervisor.fatal` is the one fatal-error path (aioesphomeapi ``_async_pong_not_received``, bellows
  ``max_watchdog_failures``): it hands over to :class:`~sim7020_core.reconnect.ReconnectLogic`, which runs
  recovery attempts with capped backoff: resync; else reset the module (``AT+CFUN=1,1``); else reopen the
  port; then re-initialise.
- A module that lost our settings (``AT+CMEE?`` no longer 1: the watchdog's probe, or a check after ``RDY``
  / ``+CPIN: READY`` out of the blue) was reset behind our back: :meth:`Supervisor.module_was_reset`
  announces it once per episode (a :class:`~sim7020_core.events.ModuleReset` event; transports mark their
  connections gone) and the module is re-initialised.

UART traffic keeps a module awake, so while PSM is enabled the watchdog and the poller stay quiet and the
module can sleep; status then follows URCs, and unanswered commands still count. They arm no timer then
either: each loop waits on an event that is set only while background work is allowed (ready, PSM off), so an
idle modem in PSM does not wake the event loop at all.

Stale state: when a modem connects, and after a module reset the driver did not see happen (a reopened
port), what a previous process may have left on the module (sockets, CIP links) is released by each
transport's :meth:`~sim7020_core.connection.Transport.reclaim`.

Problems (:attr:`ModemCore.problem`, what needs a human): the SIM (missing, locked) when re-initialising, a
module that stays silent through :data:`const.UNRESPONSIVE_ATTEMPTS` recovery attempts, stale state that
cannot be released. Each is cleared once the cause is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .. import const
from ..const import Priority
from ..events import ModemEvent, ModuleReset, StateChanged, StatusChanged
from ..exceptions import (
    AtCommandError,
    AtTimeoutError,
    CommandInterruptedError,
    DataModeError,
    Sim7020Error,
    SimError,
    SocketError,
    TransportError,
)
from ..models import LinkState, ProblemKind
from ..reconnect import ReconnectLogic
from ..status import find_value
from .core import ModemCore
from .network import NetworkControl
from .psm_control import PsmControl
from .session import Session
from .status_reader import StatusReader
from .transports import TransportSet

_LOGGER = logging.getLogger(__name__)


class Supervisor:
    """The fatal-error path of one modem, its background checks and its recovery (see the module doc)."""

    def __init__(
        self,
        core: ModemCore,
        session: Session,
        status: StatusReader,
        psm: PsmControl,
        transports: TransportSet,
        *,
        network: NetworkControl | None = None,
    ) -> None:
        self._core = core
        self._network = network or NetworkControl(core, status, session)
        self._session = session
        self._status = status
        self._psm = psm
        self._transports = transports
        self._failures = 0  # unanswered commands in a row
        self._reset_announced = False  # ModuleReset published in this recovery episode
        self._reclaim = True  # the module may hold what another process (or our lost view) left on it
        self._background = asyncio.Event()  # set while background work is allowed (no timer otherwise)
        core.subscribe(self._on_event)
        options = core.options
        self._reconnect = ReconnectLogic(
            self._recover_attempt,
            on_connect_error=self._on_recover_error,
            min_delay=options.reconnect_min_delay,
            max_delay=options.reconnect_max_delay,
            name=f"modem {core.url}",
        )
        core.fatal_path = self

    # ------------------------------------------------------------------ the fatal path (FatalPath)

    def answered(self) -> None:
        self._failures = 0

    def unanswered(self, command: str) -> None:
        """Unanswered commands while the module should be awake count; ``watchdog_max_failures`` in a row
        are fatal."""
        core = self._core
        if core.state is not LinkState.READY or core.init_lock.locked():
            return  # asleep, recovering, initialising: silence is expected or handled there
        self._failures += 1
        limit = core.options.watchdog_max_failures
        _LOGGER.info("no answer to %s (%d/%d in a row)", command, self._failures, limit)
        if self._failures >= limit:
            self.fatal(f"watchdog: {self._failures} commands unanswered in a row")

    def fatal(self, reason: str) -> None:
        """The one fatal-error path: hand over to the reconnect logic (or give up without auto_recover)."""
        core = self._core
        if core.state is LinkState.CLOSED or self._reconnect.active:
            return
        _LOGGER.warning("modem %s: %s", core.url, reason)
        core.ready.clear()
        if not core.options.auto_recover:
            core.set_state(LinkState.DISCONNECTED, reason)
            return
        core.set_state(LinkState.RECOVERING, reason)
        self._reset_announced = False
        self._reconnect.start()

    # ------------------------------------------------------------------ life cycle

    async def initialise(self, sync_attempts: int | None = None) -> None:
        """Initialise the module (the caller holds the init lock), release stale state when it may hold
        some, and mark the modem ready."""
        core = self._core
        try:
            await self._session.initialise(sync_attempts)
        except SimError as err:
            core.set_problem(ProblemKind.SIM, str(err))
            raise
        if self._reclaim:
            await self._reclaim_stale_state()
            self._reclaim = False
        # The kept network settings (APN, bands, operator, PSM, eDRX, DNS): a reset may have lost them.
        await self._network.ensure("initialised")
        self._failures = 0
        self._reset_announced = False
        if core.state is not LinkState.CLOSED:
            core.set_state(LinkState.READY, "initialised")
        core.clear_problems(ProblemKind.SIM, ProblemKind.UNRESPONSIVE)

    async def _reclaim_stale_state(self) -> None:
        """Each transport's :meth:`Transport.reclaim` (once per distinct implementation): release what the
        module still holds from before; what cannot be released is a problem."""
        core = self._core
        done: set[object] = set()
        released = 0
        failures: list[str] = []
        for name, cls in sorted(core.plugins.transports.items()):
            implementation = getattr(cls.reclaim, "__func__", cls.reclaim)
            if implementation in done:
                continue
            done.add(implementation)
            try:
                released += await cls.reclaim(core.modem)
            except (AtTimeoutError, TransportError, CommandInterruptedError):
                raise  # the module is gone or asleep: the fatal path decides
            except (SocketError, AtCommandError) as err:
                failures.append(f"{name}: {err}")
            except Exception:  # a plugin's bug must not stop the modem
                _LOGGER.exception("transport %r: reclaim() failed", name)
        if released:
            _LOGGER.warning(
                "modem %s: released %d socket(s)/link(s) left on the module from before", core.url, released
            )
        core.set_problem(
            ProblemKind.STALE_STATE,
            "the module still holds connections from before that could not be released ("
            + "; ".join(failures)
            + "); restart the module (Modem.reboot(), or power it off and on)"
            if failures
            else None,
        )

    def start(self) -> None:
        """Start the watchdog and the status poller (per the options)."""
        core = self._core
        if core.options.watchdog_interval is not None:
            core.spawn(self._watchdog_loop(core.options.watchdog_interval), "watchdog")
        if core.options.poll_interval is not None:
            core.spawn(self._poll_loop(core.options.poll_interval), "poll")

    async def stop(self) -> None:
        """Stop recovering for good (the modem is closing)."""
        await self._reconnect.stop()

    async def reboot(self) -> None:
        """Reset the module (``AT+CFUN=1,1``) and re-initialise it. Connections are closed.

        :raises AtTimeoutError: the module did not come back (recovery takes over)
        """
        core = self._core
        await self._psm.ensure_ready()
        async with core.init_lock:
            core.set_state(LinkState.RECOVERING, "reboot requested")
            with contextlib.suppress(AtTimeoutError, AtCommandError):
                await core.command(
                    "AT+CFUN=1,1", timeout=const.REBOOT_TIMEOUT, priority=Priority.HIGH, check=False
                )
            await self.module_was_reset("reboot requested")
            try:
                await self.initialise(const.BOOT_SYNC_ATTEMPTS)
            except (AtTimeoutError, TransportError) as err:
                self.fatal(f"module did not come back after reboot: {err}")
                raise

    # ------------------------------------------------------------------ background checks

    def _background_allowed(self) -> bool:
        """Background traffic (watchdog, polling) only on a ready module that may not sleep: UART
        traffic keeps a module awake, so with PSM enabled the module is left alone (commands that go
        unanswered still count as watchdog failures)."""
        core = self._core
        return (
            core.state is LinkState.READY
            and not core.init_lock.locked()
            and not core.status.psm.enabled
            and not core.engine.in_data_mode  # the line carries a transparent connection's bytes
        )

    def _on_event(self, event: ModemEvent) -> None:
        """Open the gate of the background loops while the module may be probed (ready, PSM off)."""
        if isinstance(event, StateChanged | StatusChanged):
            core = self._core
            if core.state is LinkState.READY and not core.status.psm.enabled:
                self._background.set()
            else:
                self._background.clear()

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            await self._background.wait()  # no timer while background work is not allowed (PSM)
            await asyncio.sleep(interval)
            if self._background_allowed():
                await self._watchdog_probe()

    async def _watchdog_probe(self) -> None:
        try:
            lost = await self._settings_lost()
        except (AtTimeoutError, TransportError) as err:
            _LOGGER.debug("watchdog probe failed: %s", err)  # counted by the fatal path
            return
        except (DataModeError, CommandInterruptedError) as err:  # data mode began / PSM or reboot meanwhile
            _LOGGER.debug("watchdog probe skipped: %s", err)
            return
        if lost:
            self._core.spawn(self.check_reboot("settings lost"))

    async def _poll_loop(self, interval: float) -> None:
        while True:
            await self._background.wait()
            await asyncio.sleep(interval)
            if not self._background_allowed():
                continue
            try:
                await self._status.refresh()
            except Sim7020Error as err:
                _LOGGER.debug("status poll failed: %s", err)

    # ------------------------------------------------------------------ reboot detection

    async def _settings_lost(self) -> bool:
        """True when the module no longer has our settings (``+CMEE: 1``), i.e. it was reset."""
        response = await self._core.command(
            "AT+CMEE?", timeout=const.WATCHDOG_TIMEOUT, priority=Priority.HIGH, check=False
        )
        if response.final != "OK":
            return False
        value = find_value(response.lines, "+CMEE")
        return value is not None and value.strip() != "1"

    async def check_reboot(self, why: str) -> None:
        """Ask ``AT+CMEE?``: a module that forgot CMEE=1 was reset behind our back; re-initialise it."""
        core = self._core
        if core.init_lock.locked():
            return
        async with core.init_lock:
            if core.state not in (LinkState.READY, LinkState.ASLEEP):
                return
            try:
                lost = await self._settings_lost()
            except (AtTimeoutError, TransportError) as err:
                self.fatal(f"no answer after {why}: {err}")
                return
            if not lost:
                if core.state is LinkState.ASLEEP:  # it answered: awake, without saying "EXIT PSM"
                    self._psm.on_psm(False)
                return
            await self.module_was_reset(f"module rebooted ({why})")
            try:
                await self.initialise(const.BOOT_SYNC_ATTEMPTS)
            except (AtTimeoutError, TransportError) as err:
                self.fatal(f"re-initialisation after reboot failed: {err}")
            except Sim7020Error as err:
                _LOGGER.error("re-initialisation after reboot failed: %s", err)
                core.set_state(LinkState.DISCONNECTED, str(err))

    async def module_was_reset(self, reason: str, *, seen: bool = True) -> None:
        """The module lost its state: tell subscribers and transports (connections are gone).

        Announced once per recovery episode (a retried port reopen is not another reboot). ``seen=False``:
        our view of the module was lost without seeing it reset (a reopened port): it may still hold
        connections, released at the next initialisation (:meth:`Transport.reclaim`)."""
        core = self._core
        if not seen:
            self._reclaim = True
        core.set_state(LinkState.RECOVERING, reason)
        core.resets += 1  # answers from before (AT+RETENTION …) no longer describe the module
        if self._reset_announced:
            return
        self._reset_announced = True
        core.emit(ModuleReset(reason=reason, state=core.state, status=core.status))
        core.registered.clear()
        if not core.awake.is_set():
            core.awake.set()
        await self._transports.module_reset()

    # ------------------------------------------------------------------ recovery

    async def _recover_attempt(self) -> None:
        """One recovery attempt: resync; else reset the module; else reopen the port. Raises on failure
        (the reconnect logic retries with backoff); a SIM error ends recovery (retrying cannot help)."""
        core = self._core
        async with core.init_lock:
            if core.state is LinkState.CLOSED:
                return
            try:
                await self._recover_locked()
            except SimError as err:  # a problem already (initialise)
                _LOGGER.error("modem %s: %s; giving up", core.url, err)
                core.set_state(LinkState.DISCONNECTED, str(err))

    async def _recover_locked(self) -> None:
        core = self._core
        session = self._session
        link_ok = core.link is not None and core.link.is_open
        if link_ok and self._reconnect.tries == 0:
            try:
                await session.sync(const.RECOVERY_SYNC_ATTEMPTS)
            except (AtTimeoutError, TransportError):
                _LOGGER.info("resync failed; resetting the module with AT+CFUN=1,1")
            else:
                if await self._settings_lost():
                    await self.module_was_reset("module rebooted")
                await self.initialise()
                return
            reset_ok = False
            with contextlib.suppress(Sim7020Error):
                response = await core.command(
                    "AT+CFUN=1,1", timeout=const.SYNC_ATTEMPT_TIMEOUT, priority=Priority.HIGH, check=False
                )
                reset_ok = response.final == "OK"
            try:
                await session.sync(const.BOOT_SYNC_ATTEMPTS)
            except (AtTimeoutError, TransportError):
                _LOGGER.info("no answer after the reset; reopening %s", core.url)
            else:
                if reset_ok or await self._settings_lost():
                    await self.module_was_reset("module reset by recovery")
                await self.initialise()
                return
        # Reopen the port: whatever the module still holds, our view of its connections is gone.
        await session.close_link()
        await session.open_link()
        await self.module_was_reset("port reopened", seen=False)
        await self.initialise()

    def _on_recover_error(self, err: BaseException) -> None:
        core = self._core
        if core.state is LinkState.CLOSED:
            return
        core.set_state(LinkState.RECOVERING, f"recovery failed: {err}")
        if self._reconnect.tries == const.UNRESPONSIVE_ATTEMPTS:  # said once per episode
            core.set_problem(
                ProblemKind.UNRESPONSIVE,
                f"the module at {core.url} does not answer: resyncing, resetting it (AT+CFUN=1,1) and "
                f"reopening the port failed {const.UNRESPONSIVE_ATTEMPTS} times in a row (last: {err}); "
                "check its power supply and cable, and that no other program uses the port",
            )


__all__ = ["Supervisor"]
