"""The URCs a modem listens to, its own and its plugins', installed when it connects (before the module is
initialised, so every URC from the first byte reaches them) and removed when it closes.

Its own: ``+CEREG``/``+CGREG`` (registration, and the PSM timers the network granted), ``+CPSMSTATUS``
(entering and leaving PSM), ``RDY`` and ``+CPIN: READY`` (with nobody waiting for them: the module may have
rebooted, which the supervisor checks). The plugins': the mappings their ``sim7020_register_urc_handlers``
return (checked and guarded by the plugin manager).

A wake is never taken for a reboot: real modules print ``+CPIN: READY`` right before
``+CPSMSTATUS: "EXIT PSM"`` when they wake (docs/emulator.md, "Power saving"). So ``+CPIN: READY`` alone
starts no reboot check: the check runs only if no wake follows within :data:`const.WAKE_EXIT_GRACE` (and no
reset was handled meanwhile); ``RDY``, which only a boot prints, is checked at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable

from .. import const
from ..at.engine import Urc
from ..models import LinkState
from ..status import parse_cpsmstatus, parse_reg_urc
from .core import ModemCore
from .psm_control import PsmControl
from .session import is_cpin_ready
from .status_reader import StatusReader
from .supervisor import Supervisor

_LOGGER = logging.getLogger(__name__)


class UrcWiring:
    """Installs and removes one modem's URC handlers, and handles its own URCs."""

    def __init__(
        self, core: ModemCore, status: StatusReader, psm: PsmControl, supervisor: Supervisor
    ) -> None:
        self._core = core
        self._status = status
        self._psm = psm
        self._supervisor = supervisor
        self._removers: list[Callable[[], None]] = []

    def install(self) -> None:
        """Install the modem's handlers and then each plugin's (once; they stay across reconnects, since the
        engine does)."""
        if self._removers:
            return
        engine = self._core.engine
        handlers: dict[str, Callable[[Urc], None]] = {
            "+CEREG": self._on_registration,
            "+CGREG": self._on_registration,
            "+CPSMSTATUS": self._on_psm,
            "+CPIN": self._on_cpin,
            "RDY": self._on_boot,
        }
        for prefix, handler in handlers.items():
            self._removers.append(engine.add_urc_handler(prefix, handler))
        # Each plugin's mapping is checked and its handlers guarded by the plugin manager.
        for plugin_handlers in self._core.plugins.hook.sim7020_register_urc_handlers(modem=self._core.modem):
            for prefix, handler in (plugin_handlers or {}).items():
                self._removers.append(engine.add_urc_handler(prefix, handler))

    def remove(self) -> None:
        """Remove every handler installed by :meth:`install`."""
        while self._removers:
            with contextlib.suppress(Exception):
                self._removers.pop()()

    def _on_registration(self, urc: Urc) -> None:
        reg = parse_reg_urc(urc.line)
        if reg is None:
            return
        core = self._core
        self._status.note_registration(reg.registration)
        if reg.has_timers:
            # The network's grant, e.g. in the URCs that follow AT+CPSMS (even before the refresh that
            # records PSM as enabled).
            psm = core.status.psm.with_grant(reg.tau_s, reg.active_s)
            core.set_status(dataclasses.replace(core.status, psm=psm))

    def _on_psm(self, urc: Urc) -> None:
        entered = parse_cpsmstatus(urc.line)
        if entered is not None:
            self._psm.on_psm(entered)

    def _on_cpin(self, urc: Urc) -> None:
        """``+CPIN: READY`` with nobody waiting for it: a wake (``EXIT PSM`` follows) or a reboot."""
        core = self._core
        if not is_cpin_ready(urc.line):
            return
        if core.init_lock.locked() or core.state not in (LinkState.READY, LinkState.ASLEEP):
            return
        core.spawn(self._check_after_cpin(urc.line, core.wakes, core.resets), "+CPIN check")

    async def _check_after_cpin(self, line: str, wakes: int, resets: int) -> None:
        await asyncio.sleep(const.WAKE_EXIT_GRACE)
        core = self._core
        if core.wakes != wakes or core.resets != resets:
            return  # it was a wake (EXIT PSM came), or the reset was handled already
        _LOGGER.info("%r without EXIT PSM: checking whether the module rebooted", line)
        await self._supervisor.check_reboot(f"boot message {line!r}")

    def _on_boot(self, urc: Urc) -> None:
        """``RDY`` with nobody waiting for it: only a boot prints it; what was in flight is lost."""
        core = self._core
        if core.init_lock.locked() or core.state not in (LinkState.READY, LinkState.ASLEEP):
            return
        if urc.line.strip() == "RDY":  # only a boot prints RDY: what was in flight will never be answered
            core.engine.abort_pending("the module rebooted (RDY)")
        _LOGGER.info("boot URC %r: checking whether the module rebooted", urc.line)
        core.spawn(self._supervisor.check_reboot(f"boot message {urc.line!r}"))


__all__ = ["UrcWiring"]
