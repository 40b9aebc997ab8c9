"""PSM as a state, not a failure: waking the module, and readiness for commands.

The module announces PSM with ``+CPSMSTATUS: "ENTER PSM"`` / ``"EXIT PSM"`` (:meth:`PsmControl.on_psm`,
called by the URC wiring). While it sleeps its UART is dead, so a command first wakes it
(``psm_policy="wait"``, bounded by ``psm_wake_timeout``) or fails at once with :class:`ModemAsleepError`
(``psm_policy="fail"``). Waking tries, in order: the ``ModemOptions.wake`` callback, the
``sim7020_wake_modem`` hook of the plugins, then UART activity (``AT``, which the UART wake-up of SIM7020
honours); an ``OK`` proves the module awake even when ``EXIT PSM`` never comes.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging

from .. import const
from ..const import Priority
from ..events import PsmChanged
from ..exceptions import AtTimeoutError, ModemAsleepError, TransportError
from ..models import LinkState
from .core import ModemCore
from .transports import TransportSet

_LOGGER = logging.getLogger(__name__)


class PsmControl:
    """PSM transitions, waking, and waiting until the modem takes commands."""

    def __init__(self, core: ModemCore, transports: TransportSet) -> None:
        self._core = core
        self._transports = transports

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
        """The module entered (True) or left (False) PSM: state, status, event, transports."""
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
            core.awake.set()
            core.set_state(LinkState.READY, "left PSM")
        psm = dataclasses.replace(core.status.psm, state="asleep" if entered else "awake")
        core.set_status(dataclasses.replace(core.status, psm=psm))
        core.emit(PsmChanged(entered=entered, state=core.state, status=core.status))
        self._transports.psm(entered)


__all__ = ["PsmControl"]
