"""Network settings the library keeps for a modem and applies again after every module reset.

:class:`NetworkControl` holds one :class:`~sim7020_core.models.NetworkSettings` (from
``ModemOptions.network``, then updated by each setter: ``set_apn``, ``set_psm``, ``set_edrx``,
``set_bands``, ``set_operator``, ``set_dns_servers``) and :meth:`NetworkControl.ensure` makes the module
match it. The supervisor runs it at the end of every initialisation (connect, reboot, recovery): a real module
keeps some of these settings in its non-volatile memory and forgets others in a reset, so each one is read
first and set only when the module differs. The APN in particular is set with the application note's
chapter 3.2 sequence (radio off, ``AT*MCGDEFCONT``, radio on, wait for the SIM and the network), and only
when the module's APN differs from the kept one, so a module that kept it is not taken off the network. PSM
wakes re-apply the session settings only (:mod:`.settings`), never these.

DNS servers are a fallback: ``AT+CDNSCFG="<primary>"[,"<secondary>"]`` is sent only when the network handed
out none (``AT+CDNSCFG?`` shows ``PrimaryDns: 0.0.0.0``) or when the servers in effect are the ones this
library set since the last module reset.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Sequence

from .. import const
from ..const import Priority
from ..exceptions import AtCommandError, Sim7020Error
from ..models import NetworkSettings
from ..netvalues import bands_problem, check, edrx_bits, supported_bands
from ..psm import decode_t3324, decode_t3412, encode_t3324, encode_t3412
from ..status import (
    parse_cband,
    parse_cdnscfg,
    parse_cedrxs,
    parse_cops_selection,
    parse_cpsms,
    split_fields,
)
from .core import ModemCore
from .session import Session
from .status_reader import StatusReader

_LOGGER = logging.getLogger(__name__)

#: What ``AT+CDNSCFG?`` shows for "no server".
NO_SERVER = "0.0.0.0"


def psm_command(enabled: bool, tau_s: int | None, active_s: int | None) -> str:
    """The ``AT+CPSMS`` command of a PSM request (timers encoded with :mod:`sim7020_core.psm`)."""
    if not enabled:
        return "AT+CPSMS=0"
    if tau_s is None and active_s is None:
        return "AT+CPSMS=1"
    tau = f'"{encode_t3412(tau_s)}"' if tau_s is not None else ""
    active = f'"{encode_t3324(active_s)}"' if active_s is not None else ""
    return f"AT+CPSMS=1,,,{tau},{active}"


def edrx_command(enabled: bool, cycle_s: float | None) -> str:
    """The ``AT+CEDRXS`` command of an eDRX request (5: E-UTRAN NB-S1, 27.007 7.40)."""
    if not enabled:
        return "AT+CEDRXS=0"
    bits = edrx_bits(cycle_s) if cycle_s is not None else None
    return f'AT+CEDRXS=1,5,"{bits}"' if bits is not None else "AT+CEDRXS=1,5"


def dns_command(servers: Sequence[str]) -> str:
    """``AT+CDNSCFG="<primary>"[,"<secondary>"]``."""
    return "AT+CDNSCFG=" + ",".join(f'"{server}"' for server in servers)


class NetworkControl:
    """The kept network settings of one modem and how they reach the module (see the module docstring)."""

    def __init__(self, core: ModemCore, status: StatusReader, session: Session) -> None:
        self._core = core
        self._status = status
        self._session = session
        self._settings = core.options.network or NetworkSettings()
        self._pdp = ("IP", "", "")  # pdp type, username, password that go with the kept APN
        self._dns_owned: tuple[str, ...] | None = None  # what we set with AT+CDNSCFG …
        self._dns_owned_resets = -1  # … while core.resets had this value
        self._operator_resets = -1  # core.resets when the kept manual operator was last selected

    # ------------------------------------------------------------------ the kept settings

    @property
    def settings(self) -> NetworkSettings:
        """What the library keeps and applies again after every module reset."""
        return self._settings

    def record(self, **changes: object) -> None:
        """Keep ``changes`` (fields of :class:`NetworkSettings`)."""
        self._settings = dataclasses.replace(self._settings, **changes)  # type: ignore[arg-type]

    def record_apn(self, apn: str, pdp_type: str, username: str, password: str) -> None:
        """Keep the APN set with :meth:`Modem.set_apn` and what goes with it."""
        self._pdp = (pdp_type, username, password)
        self.record(apn=apn)

    # ------------------------------------------------------------------ after every initialisation

    async def ensure(self, reason: str) -> None:
        """Make the module match the kept settings (the caller holds the init lock, the module is up).

        A setting the module refuses is logged and skipped (the others still apply); a module that stops
        answering raises, for the fatal path.
        """
        s = self._settings
        if s == NetworkSettings():
            return
        _LOGGER.debug("modem %s: applying the kept network settings (%s)", self._core.url, reason)
        moved = False
        if s.bands is not None:
            moved |= await self._guard("bands", self.apply_bands(s.bands, force=False))
        if s.operator is not None:
            moved |= await self._guard("operator", self.apply_operator(s.operator, force=False))
        if s.apn is not None:
            moved |= await self._guard("apn", self.apply_apn(s.apn, *self._pdp, force=False))
        if moved:
            await self._status.wait_registered(self._core.options.registration_timeout)
        if s.psm is not None:
            await self._guard("psm", self.apply_psm(s.psm, s.psm_tau_s, s.psm_active_s, force=False))
        if s.edrx is not None:
            await self._guard("edrx", self.apply_edrx(s.edrx, s.edrx_cycle_s, force=False))
        if s.dns_servers is not None:
            await self._guard("dns_servers", self.apply_dns(s.dns_servers))
        if moved or s.psm is not None or s.edrx is not None or s.dns_servers is not None:
            with contextlib.suppress(AtCommandError):
                await self._status.refresh()

    async def _guard(self, name: str, work: object) -> bool:
        try:
            return bool(await work)  # type: ignore[misc]
        except (AtCommandError, ValueError) as err:
            _LOGGER.warning("modem %s: could not apply the kept %s setting: %s", self._core.url, name, err)
            return False

    # ------------------------------------------------------------------ one setting each (True: applied)

    async def _command(self, command: str, timeout: float = const.DEFAULT_TIMEOUT) -> list[str]:  # noqa: ASYNC109
        response = await self._core.command(command, timeout=timeout, priority=Priority.HIGH)
        return list(response.lines)

    async def _query(self, command: str) -> list[str] | None:
        return await self._status.query(command)

    async def apply_bands(self, bands: Sequence[int], *, force: bool) -> bool:
        """``AT+CBAND=<b>[,<b>…]`` (empty: every band the module has), unless ``AT+CBAND?`` shows them."""
        wanted = tuple(sorted(bands)) or await self.supported_bands()
        check("bands", bands_problem(list(wanted), self._core.info.model or None))
        if not force:
            lines = await self._query("AT+CBAND?")
            if lines is not None and parse_cband(lines) == wanted:
                return False
        await self._command("AT+CBAND=" + ",".join(map(str, wanted)))
        self._core.registered.clear()
        return True

    async def supported_bands(self) -> tuple[int, ...]:
        """The bands the module offers (``AT+CBAND=?``), else those of its variant (application note)."""
        lines = await self._query("AT+CBAND=?")
        offered = parse_cband(lines) if lines is not None else None
        return offered or supported_bands(self._core.info.model or None)

    async def apply_operator(self, operator: str, *, force: bool) -> bool:
        """``AT+COPS=0`` (``"auto"``) or ``AT+COPS=1,2,"<mccmnc>"`` then ``AT+COPS=3,0`` (answers in the long
        name again); skipped when ``AT+COPS?`` shows that mode already (manual: selected since the last
        reset)."""
        core = self._core
        if not force:
            lines = await self._query("AT+COPS?")
            mode = parse_cops_selection(lines)[0] if lines is not None else None
            if operator == "auto" and mode == 0:
                return False
            if operator != "auto" and mode == 1 and self._operator_resets == core.resets:
                return False
        resets = core.resets
        if operator == "auto":
            await self._command("AT+COPS=0", timeout=const.COPS_TIMEOUT)
        else:
            await self._command(f'AT+COPS=1,2,"{operator}"', timeout=const.COPS_TIMEOUT)
            self._operator_resets = resets
            with contextlib.suppress(AtCommandError):
                await self._command("AT+COPS=3,0")
        core.registered.clear()
        return True

    async def apply_apn(self, apn: str, pdp_type: str, username: str, password: str, *, force: bool) -> bool:
        """The application note's chapter 3.2: ``AT+CFUN=0``, ``AT*MCGDEFCONT``, ``AT+CFUN=1`` and the SIM
        ready again; unless ``AT*MCGDEFCONT?`` (or, without it, the network's APN) shows this APN already."""
        core = self._core
        if not force:
            lines = await self._query("AT*MCGDEFCONT?")
            if lines is not None:
                current = _mcgdefcont(lines)
                if current is not None and current == (pdp_type.upper(), apn, username, password):
                    return False
            elif core.status.apn == apn:
                return False
        command = f'AT*MCGDEFCONT="{pdp_type}","{apn}"'
        if username:
            command += f',"{username}","{password}"'
        await self._command("AT+CFUN=0", timeout=const.CFUN_TIMEOUT)
        core.registered.clear()
        try:
            await self._command(command, timeout=const.PDP_TIMEOUT)
        finally:
            await self._session.radio_on()  # also when the APN was refused: never leave the radio off
        return True

    async def apply_psm(self, enabled: bool, tau_s: int | None, active_s: int | None, *, force: bool) -> bool:
        """``AT+CPSMS`` (:func:`psm_command`), unless ``AT+CPSMS?`` shows this request already."""
        command = psm_command(enabled, tau_s, active_s)
        if not force:
            lines = await self._query("AT+CPSMS?")
            current = parse_cpsms(lines) if lines is not None else None
            if current is not None and current[0] == enabled:
                if not enabled:
                    return False
                tau_ok = tau_s is None or current[1] == decode_t3412(encode_t3412(tau_s))
                active_ok = active_s is None or current[2] == decode_t3324(encode_t3324(active_s))
                if tau_ok and active_ok:
                    return False
        await self._command(command)
        with contextlib.suppress(AtCommandError):
            await self._command("AT+CPSMSTATUS=1")
        return True

    async def apply_edrx(self, enabled: bool, cycle_s: float | None, *, force: bool) -> bool:
        """``AT+CEDRXS`` (:func:`edrx_command`), unless ``AT+CEDRXS?`` shows this request already."""
        if not force:
            lines = await self._query("AT+CEDRXS?")
            if lines is not None:
                on, bits = parse_cedrxs(lines)
                wanted = edrx_bits(cycle_s) if cycle_s is not None else None
                if on == enabled and (not enabled or wanted is None or wanted == bits):
                    return False
        await self._command(edrx_command(enabled, cycle_s))
        return True

    async def apply_dns(self, servers: Sequence[str]) -> bool:
        """Fallback DNS (see the module docstring): set only when the network handed out none, or over
        servers this library set since the last reset."""
        core = self._core
        owned = self._dns_owned if self._dns_owned_resets == core.resets else None
        in_effect = await self.dns_in_effect()
        if in_effect is None:
            return False  # the module cannot say: leave it alone
        wanted = tuple(servers)
        if in_effect and in_effect != owned:
            if wanted:
                _LOGGER.debug("the network handed out DNS servers %s: the fallback stays unused", in_effect)
            return False
        if not wanted or in_effect == wanted:
            return False
        resets = core.resets
        await self._command(dns_command(wanted))
        self._dns_owned, self._dns_owned_resets = wanted, resets
        return True

    async def dns_in_effect(self) -> tuple[str, ...] | None:
        """The DNS servers ``AT+CDNSCFG?`` shows, without ``0.0.0.0`` (None: unreadable)."""
        lines = await self._query("AT+CDNSCFG?")
        servers = parse_cdnscfg(lines) if lines is not None else None
        if servers is None:
            return None
        return tuple(s for s in servers if s and s != NO_SERVER)

    def dns_fallback_in_use(self, in_effect: Sequence[str]) -> bool:
        """True when the servers in effect are the fallback this library set."""
        owned = self._dns_owned if self._dns_owned_resets == self._core.resets else None
        return owned is not None and tuple(in_effect) == owned

    async def describe_dns(self) -> str:
        """Which DNS servers the module asks, for an error message."""
        try:
            in_effect = await self.dns_in_effect()
        except Sim7020Error:
            in_effect = None
        if in_effect is None:
            return "the module did not say which DNS servers it uses"
        if not in_effect:
            fallback = self._settings.dns_servers
            return "the network handed out no DNS server and " + (
                f"the fallback {', '.join(fallback)} is not applied"
                if fallback
                else "no fallback is set (Modem.set_dns_servers)"
            )
        whose = "fallback" if self.dns_fallback_in_use(in_effect) else "network's"
        plural = "s" if len(in_effect) > 1 else ""
        return f"asked the {whose} DNS server{plural} {', '.join(in_effect)}"


def _mcgdefcont(lines: Sequence[str]) -> tuple[str, str, str, str] | None:
    """``*MCGDEFCONT: "<pdp>","<apn>"[,"<user>","<pwd>"]`` → (PDP TYPE, apn, user, password)."""
    for line in lines:
        head, sep, rest = line.strip().partition(":")
        if sep and head.strip().upper() == "*MCGDEFCONT":
            fields = [*split_fields(rest), "", "", "", ""]
            return fields[0].upper(), fields[1], fields[2], fields[3]
    return None


__all__ = ["NO_SERVER", "NetworkControl", "dns_command", "edrx_command", "psm_command"]
