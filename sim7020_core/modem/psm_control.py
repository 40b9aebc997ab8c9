"""PSM as a state, not a failure: waking the module, and readiness for commands.

The module announces PSM with ``+CPSMSTATUS: "ENTER PSM"`` / ``"EXIT PSM"`` (:meth:`PsmControl.on_psm`,
called by the URC wiring). While it sleeps its UART is dead, so a command first wakes it
(``psm_policy="wait"``, bounded by ``psm_wake_timeout``) or fails at once with :class:`ModemAsleepError`
(``psm_policy="fail"``). Waking tries, in order: the ``ModemOptions.wake`` callback, the
``sim7020_wake_modem`` hook of the plugins, then UART activity (``AT``, which the UART wake-up of SIM7020
honours); an ``OK`` proves the module awake even when ``EXIT PSM`` never comes.

After a wake (as real modules do it, docs/emulator.md "Power saving": ``+CPIN: READY``, ``EXIT PSM``, then
``+CEREG: 2`` and later ``+CEREG: 1``) the module has forgotten some settings and is not registered yet:

- the transports are told (``on_psm(False)``), then the session settings are applied again
  (:mod:`.settings`); commands wait for that (:meth:`PsmControl.ensure_ready`);
- data waits until the module is registered again (:meth:`PsmControl.wait_rejoined`, bounded by
  :data:`const.WAKE_REGISTRATION_TIMEOUT`): what is sent before is lost on real modules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging

from .. import const
from ..const import Priority
from ..events import PsmChanged
from ..exceptions import (
    AtTimeoutError,
    CommandInterruptedError,
    DataModeError,
    ModemAsleepError,
    NotRegisteredError,
    TransportError,
)
from ..models import LinkState
from .core import ModemCore
from .settings import SessionSettings
from .status_reader import StatusReader
from .transports import TransportSet

_LOGGER = logging.getLogger(__name__)


class PsmControl:
    """PSM transitions, waking, and waiting until the modem takes commands."""

    def __init__(
        self, core: ModemCore, transports: TransportSet, status: StatusReader, settings: SessionSettings
    ) -> None:
        self._core = core
        self._transports = transports
        self._status = status
        self._settings = settings
        self._rejoin_lock = asyncio.Lock()

    async def ensure_ready(self) -> None:
        """Wait until commands can be sent (waking the module from PSM per ``psm_policy``).

        :raises ModemAsleepError: asleep with ``psm_policy="fail"``, or it did not wake in time
        :raises TransportError: the modem is closed, or not ready within :data:`const.READY_WAIT_TIMEOUT`
        """
        core = self._core
        if core.state is LinkState.CLOSED:
            raise TransportError("the modem is closed")
        if core.state is LinkState.ASLEEP:
            if core.options.psm_policy == "fail":
                raise ModemAsleepError("the module is in PSM (psm_policy='fail')")
            await self.wake()
        if core.state is not LinkState.READY:
            timeout = const.READY_WAIT_TIMEOUT
            try:
                async with asyncio.timeout(timeout):
                    await core.ready.wait()
            except TimeoutError:
                raise TransportError(
                    f"the modem is {core.state.value}, not ready after {timeout:g} s"
                ) from None
            if core.closed:
                raise TransportError("the modem is closed")
        if not core.settled.is_set():  # just woke: the session settings are being applied again
            timeout = const.READY_WAIT_TIMEOUT
            try:
                async with asyncio.timeout(timeout):
                    await core.settled.wait()
            except TimeoutError:
                raise TransportError(
                    f"the session settings were not applied again within {timeout:g} s of the wake"
                ) from None

    async def ready_for_data(self) -> None:
        """Wait until data may go out: ready (woken if need be, settings applied) and registered again after
        a wake (see :meth:`wait_rejoined`)."""
        await self.ensure_ready()
        await self.wait_rejoined("send data")

    async def wait_rejoined(self, what: str) -> None:
        """After a wake, wait until the module reports it is registered again, at most until
        :data:`const.WAKE_REGISTRATION_TIMEOUT` after the wake; past that, one look at the registration.

        :raises NotRegisteredError: not registered again in time (what is sent now would be lost)
        """
        core = self._core
        if core.rejoined.is_set():
            return
        async with self._rejoin_lock:  # one of the waiters polls, the others find it done
            if core.rejoined.is_set():
                return
            remaining = core.rejoin_deadline - asyncio.get_running_loop().time()
            if remaining > 0:
                await self._status.wait_registered(remaining)
            else:
                reg = await self._status.read_registration()
                if reg is not None:
                    self._status.note_registration(reg.registration)
            if not core.rejoined.is_set():
                raise NotRegisteredError(
                    f"cannot {what}: the module has not registered again since it woke from PSM "
                    f"({core.status.registration} after {const.WAKE_REGISTRATION_TIMEOUT:g} s); "
                    "what is sent now would be lost"
                )

    async def wake(self) -> None:
        """Wake the module from PSM and wait (bounded) until it answers.

        :raises ModemAsleepError: the module did not wake within ``options.psm_wake_timeout``
        """
        core = self._core
        if core.state is not LinkState.ASLEEP:
            return
        triggered = await self.trigger_wake()
        if triggered is None:
            await self._uart_wake()
        timeout = core.options.psm_wake_timeout
        try:
            async with asyncio.timeout(timeout):
                while core.state is LinkState.ASLEEP:
                    awake = asyncio.ensure_future(core.awake.wait())
                    try:
                        async with asyncio.timeout(const.WAKE_PROBE_INTERVAL):
                            await asyncio.shield(awake)
                    except TimeoutError:
                        await self._uart_wake()  # no EXIT PSM yet: poke the UART again
                    finally:
                        awake.cancel()
        except TimeoutError:
            raise ModemAsleepError(f"the module did not wake from PSM within {timeout:g} s") from None

    async def trigger_wake(self) -> bool | None:
        """Run ``options.wake`` or else the ``sim7020_wake_modem`` hook; None when neither tried."""
        core = self._core
        if core.options.wake is not None:
            try:
                result = core.options.wake(core.modem)
                if inspect.isawaitable(result):
                    async with asyncio.timeout(const.WAKE_CALLBACK_TIMEOUT):
                        result = await result
            except Exception as err:  # noqa: BLE001 - a broken wake callback must not hide the wait
                _LOGGER.warning("the wake callback failed: %r", err)
                return False
            return True if result is None else bool(result)
        try:
            result = core.plugins.hook.sim7020_wake_modem(modem=core.modem)
        except Exception:  # a plugin's hook wrapper: the implementations themselves are guarded
            _LOGGER.exception("sim7020_wake_modem failed")
            return False
        return None if result is None else bool(result)

    async def _uart_wake(self) -> None:
        """Poke the UART; an answer proves the module is awake even without ``EXIT PSM``."""
        try:
            response = await self._core.command(
                "AT", timeout=const.WAKE_PROBE_TIMEOUT, priority=Priority.HIGH, check=False
            )
        except (AtTimeoutError, TransportError):
            return
        if response.final == "OK" and self._core.state is LinkState.ASLEEP:
            self.on_psm(False)

    def on_psm(self, entered: bool) -> None:
        """The module entered (True) or left (False) PSM: state, status, event, transports; after a wake the
        session settings are applied again and data waits for registration (see the module docstring).

        ``EXIT PSM`` while awake (``AT+CPSMS=0`` prints it too) changes nothing."""
        core = self._core
        if core.state is LinkState.CLOSED:
            return
        if entered == (core.state is LinkState.ASLEEP):
            return
        if entered:
            core.awake.clear()
            # the UART stops answering: a command written just before will never get its answer
            core.engine.abort_pending("the module entered PSM")
            core.set_state(LinkState.ASLEEP, "entered PSM")
        else:
            core.wakes += 1
            core.settled.clear()
            core.rejoined.clear()
            core.registered.clear()
            core.rejoin_deadline = asyncio.get_running_loop().time() + const.WAKE_REGISTRATION_TIMEOUT
            core.awake.set()
            core.set_state(LinkState.READY, "left PSM")
        psm = dataclasses.replace(core.status.psm, state="asleep" if entered else "awake")
        core.set_status(dataclasses.replace(core.status, psm=psm))
        core.emit(PsmChanged(entered=entered, state=core.state, status=core.status))
        if entered:
            self._transports.psm_entered()
        else:
            core.spawn(self._after_wake(core.wakes), "after wake")

    async def _after_wake(self, wake: int) -> None:
        """Tell the transports, then apply the session settings again (the module forgot some in PSM)."""
        core = self._core
        try:
            await self._transports.psm_left()
            if core.state is LinkState.READY and core.wakes == wake:
                await self._settings.apply("woke from PSM")
        except (AtTimeoutError, TransportError, CommandInterruptedError, DataModeError) as err:
            # asleep again, rebooted or gone: the next wake or the re-initialisation applies them
            _LOGGER.info("applying the session settings after the wake stopped: %s", err)
        finally:
            if core.wakes == wake:
                core.settled.set()


__all__ = ["PsmControl"]
