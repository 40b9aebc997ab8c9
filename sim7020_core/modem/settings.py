"""The session settings: one list of module settings the session relies on, applied after every
initialisation (connect, reboot, recovery) and every wake from PSM.

Real modules forget settings in PSM (a SIM7020 is back to hex ``+CSONMI`` after every wake: docs/emulator.md,
"Power saving"), and all of them in a reboot. So the driver does not set them once: it keeps one declarative
list (:meth:`SessionSettings.settings`), the modem's own entries first (``ATE0``, ``AT+CMEE=1``,
``AT+CEREG=4`` or else ``AT+CEREG=2``, ``AT+CPSMSTATUS=1``), then what each transport the modem has used
contributes (:meth:`Transport.session_settings <sim7020_core.connection.Transport.session_settings>`, a
list of :class:`~sim7020_core.connection.SessionSetting`; third-party transports take part the same way),
and applies the whole list each time (:meth:`SessionSettings.apply`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from .. import const
from ..connection import SessionSetting
from ..const import Priority
from ..exceptions import AtCommandError
from .core import ModemCore
from .transports import TransportSet

_LOGGER = logging.getLogger(__name__)


class SessionSettings:
    """The session settings of one modem (see the module docstring)."""

    def __init__(self, core: ModemCore, transports: TransportSet) -> None:
        self._core = core
        self._transports = transports

    def modem_settings(self) -> list[SessionSetting]:
        """The modem's own entries: no echo, numeric ``+CME ERROR`` codes, registration URCs with the PSM
        grant (``AT+CEREG=4``; ``=2``, location only, on firmware without it), PSM URCs."""
        core = self._core
        timeout = const.SHORT_TIMEOUT

        def cereg_done(taken: str | None) -> None:
            core.grant_urcs = taken == "AT+CEREG=4"

        return [
            SessionSetting("ATE0", timeout=timeout),
            SessionSetting("AT+CMEE=1", timeout=timeout),
            SessionSetting("AT+CEREG=4", alternatives=("AT+CEREG=2",), timeout=timeout, done=cereg_done),
            SessionSetting("AT+CPSMSTATUS=1", timeout=timeout),
        ]

    def settings(self) -> list[SessionSetting]:
        """The whole list as it holds now: the modem's entries, then each used transport's."""
        items = self.modem_settings()
        for transport in list(self._transports.used.values()):
            try:
                items.extend(transport.session_settings())
            except Exception:  # a plugin's bug must not stop the others' settings
                _LOGGER.exception("transport %r: session_settings() failed", transport.name)
        return items

    async def apply(self, reason: str) -> None:
        """Apply every setting, in order (the caller made sure the module is awake).

        A refused command is tried with the setting's alternatives; a setting the module refuses altogether
        is logged and skipped.

        :raises AtTimeoutError: a command got no answer (the module went back to sleep, or is gone)
        :raises CommandInterruptedError: the module entered PSM or rebooted meanwhile
        """
        items = self.settings()
        _LOGGER.debug("modem %s: applying %d session settings (%s)", self._core.url, len(items), reason)
        for setting in items:
            await self._apply(setting)

    async def _apply(self, setting: SessionSetting) -> None:
        core = self._core
        timeout = const.DEFAULT_TIMEOUT if setting.timeout is None else setting.timeout
        taken: str | None = None
        try:
            for command in (setting.command, *setting.alternatives):
                if command == setting.command and setting.prepare is not None:
                    _call(setting.prepare, setting.command)
                try:
                    await core.command(command, timeout=timeout, priority=Priority.HIGH)
                except AtCommandError as err:
                    _LOGGER.debug("session setting %s refused: %s", command, err.final)
                    continue
                taken = command
                break
            else:
                _LOGGER.info(
                    "the module took none of %s", " / ".join((setting.command, *setting.alternatives))
                )
        finally:
            if setting.done is not None:
                _call(setting.done, setting.command, taken)


def _call(callback: Callable[..., None], command: str, *args: object) -> None:
    """Run a setting's callback; a failure is logged (a plugin's bug must not stop the session)."""
    try:
        callback(*args)
    except Exception:
        _LOGGER.exception("the callback of session setting %s failed", command)


__all__ = ["SessionSettings"]
