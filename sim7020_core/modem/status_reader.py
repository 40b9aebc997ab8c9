"""Reading the module's status: signal, registration, attach, PDN, operator, PSM settings, serving cell.

:meth:`StatusReader.refresh` asks the module (high priority, each query bounded by
:data:`const.STATUS_TIMEOUT`), builds the new :class:`~sim7020_core.models.ModemStatus` with the response
parsers of :mod:`sim7020_core.status` and hands it to the core, which publishes it when it changed. A query
the module answers with ``ERROR`` (a command its firmware lacks) leaves that part of the status as it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging

from .. import const
from ..const import Priority
from ..exceptions import AtCommandError, NotRegisteredError
from ..models import LinkState, ModemStatus, ProblemKind, Registration, csq_to_dbm
from ..netvalues import edrx_cycle_s, paging_window_s
from ..status import (
    RegInfo,
    parse_cband,
    parse_cdnscfg,
    parse_cedrxrdp,
    parse_cedrxs,
    parse_ceng,
    parse_cgact,
    parse_cgatt,
    parse_cgcontrdp,
    parse_cops,
    parse_cpsms,
    parse_csq,
    parse_reg_read,
)
from .core import ModemCore

_LOGGER = logging.getLogger(__name__)

_NO_SERVICE = frozenset(
    {Registration.NOT_REGISTERED.value, Registration.SEARCHING.value, Registration.DENIED.value}
)


class StatusReader:
    """Reads the status of one modem's module (see the module docstring)."""

    def __init__(self, core: ModemCore) -> None:
        self._core = core

    async def refresh(self) -> ModemStatus:
        """Query the module and publish the fresh status (the caller made sure the module is ready)."""
        core = self._core
        csq_lines = await self.query("AT+CSQ")
        csq, ber = parse_csq(csq_lines) if csq_lines is not None else (None, None)
        reg = await self.read_registration()
        attached_lines = await self.query("AT+CGATT?")
        attached = parse_cgatt(attached_lines) if attached_lines is not None else None
        cgact_lines = await self.query("AT+CGACT?", timeout=const.PDP_TIMEOUT)
        pdn_active = parse_cgact(cgact_lines) if cgact_lines is not None else None
        apn: str | None = None
        ip: str | None = None
        if pdn_active:
            rdp = await self.query("AT+CGCONTRDP", timeout=const.PDP_TIMEOUT)
            if rdp is not None:
                apn, ip = parse_cgcontrdp(rdp)
        cops = await self.query("AT+COPS?")
        operator = parse_cops(cops) if cops is not None else None
        cpsms = await self.query("AT+CPSMS?")
        psm_setting = parse_cpsms(cpsms) if cpsms is not None else None
        ceng = await self.query("AT+CENG?")
        cell = parse_ceng(ceng) if ceng is not None else core.status.cell

        old = core.status
        psm = old.psm
        if psm_setting is not None:
            psm = psm.with_request(*psm_setting)
        if reg is not None:
            # The network decides: its grant (+CEREG with n=4/5) wins over the requested timers; a read
            # answer without timers means no grant is in force.
            psm = psm.with_grant(reg.tau_s, reg.active_s) if reg.has_timers else psm.without_grant()
        psm = dataclasses.replace(psm, state="asleep" if core.state is LinkState.ASLEEP else "awake")
        new = dataclasses.replace(
            old,
            csq=csq,
            rssi_dbm=csq_to_dbm(csq),
            ber=ber,
            registration=reg.registration.value if reg is not None else old.registration,
            attached=old.attached if attached is None else attached,
            pdn_active=old.pdn_active if pdn_active is None else pdn_active,
            apn=apn if pdn_active or pdn_active is None else None,
            ip=ip if pdn_active or pdn_active is None else None,
            operator=operator,
            psm=psm,
            cell=cell,
        )
        new = await self.with_network_settings(new)
        if reg is not None:
            self.note_registration(reg.registration)
        core.set_status(new)
        return new

    async def with_network_settings(self, status: ModemStatus) -> ModemStatus:
        """``status`` with eDRX (``AT+CEDRXS?``, the grant from ``AT+CEDRXRDP``), the band lock
        (``AT+CBAND?``) and the DNS servers in effect (``AT+CDNSCFG?``); what the module does not answer
        stays as it was."""
        edrx = status.edrx
        cedrxs = await self.query("AT+CEDRXS?")
        if cedrxs is not None:
            enabled, bits = parse_cedrxs(cedrxs)
            edrx = dataclasses.replace(
                edrx, enabled=enabled, requested_cycle_s=edrx_cycle_s(bits) if bits else None
            )
        rdp_lines = await self.query("AT+CEDRXRDP")
        if rdp_lines is not None:
            rdp = parse_cedrxrdp(rdp_lines)
            if rdp is None:
                edrx = dataclasses.replace(edrx, cycle_s=None, ptw_s=None)
            else:
                requested, granted, window = rdp
                edrx = dataclasses.replace(
                    edrx,
                    cycle_s=edrx_cycle_s(granted),
                    ptw_s=paging_window_s(window) if window else None,
                    requested_cycle_s=edrx.requested_cycle_s
                    or (edrx_cycle_s(requested) if requested else None),
                )
        if not edrx.enabled:
            edrx = dataclasses.replace(edrx, requested_cycle_s=None)
        cband = await self.query("AT+CBAND?")
        bands = parse_cband(cband) if cband is not None else None
        cdnscfg = await self.query("AT+CDNSCFG?")
        dns = parse_cdnscfg(cdnscfg) if cdnscfg is not None else None
        return dataclasses.replace(
            status,
            edrx=edrx,
            bands=status.bands if bands is None else bands,
            dns_servers=status.dns_servers if dns is None else tuple(s for s in dns if s and s != "0.0.0.0"),
        )

    async def read_registration(self) -> RegInfo | None:
        """``AT+CEREG?`` (or ``AT+CGREG?`` on firmware without it); None when neither answers."""
        lines = await self.query("AT+CEREG?")
        reg = parse_reg_read(lines, "+CEREG") if lines is not None else None
        if reg is None:
            lines = await self.query("AT+CGREG?")
            reg = parse_reg_read(lines, "+CGREG") if lines is not None else None
        return reg

    async def query(self, command: str, *, timeout: float | None = None) -> list[str] | None:  # noqa: ASYNC109
        """A status query: its info lines, or None when the module answers ERROR (unsupported)."""
        try:
            response = await self._core.command(
                command, timeout=const.STATUS_TIMEOUT if timeout is None else timeout, priority=Priority.HIGH
            )
        except AtCommandError as err:
            _LOGGER.debug("%s not available: %s", command, err)
            return None
        return list(response.lines)

    def note_registration(self, registration: Registration) -> None:
        """Record a registration state (from a query or a ``+CEREG`` URC); registered again after a wake ends
        the wait of data (``rejoined``); a registration the network denies is a problem."""
        core = self._core
        if registration.registered:
            core.registered.set()
            core.rejoined.set()
        else:
            core.registered.clear()
        if registration is Registration.DENIED:
            core.set_problem(
                ProblemKind.REGISTRATION_DENIED,
                "the network denies the module's registration (+CEREG stat 3): check that the SIM is "
                "activated for NB-IoT with this operator, and the APN",
            )
        elif registration.registered:
            core.clear_problems(ProblemKind.REGISTRATION_DENIED)
        if core.status.registration != registration.value:
            core.set_status(dataclasses.replace(core.status, registration=registration.value))

    @property
    def registered(self) -> bool:
        """True when the last known registration is home or roaming."""
        return Registration(self._core.status.registration).registered

    async def wait_registered(self, timeout: float) -> bool:  # noqa: ASYNC109
        """Poll registration until registered or ``timeout`` s (not an error: the state is reported)."""
        if timeout <= 0:
            return self.registered
        core = self._core
        try:
            async with asyncio.timeout(timeout):
                while True:
                    reg = await self.read_registration()
                    if reg is not None:
                        self.note_registration(reg.registration)
                        if reg.registration.registered:
                            return True
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(const.REGISTRATION_POLL_INTERVAL):
                            await core.registered.wait()
        except TimeoutError:
            _LOGGER.info("not registered after %g s (%s); continuing", timeout, core.status.registration)
            return False

    async def ensure_network(self, what: str) -> None:
        """Refuse network services when the module is known to have no service (checked afresh).

        :raises NotRegisteredError: not registered, searching or denied (an unknown state is let through)
        """
        core = self._core
        if core.status.registration not in _NO_SERVICE:
            return
        reg = await self.read_registration()
        if reg is not None:
            self.note_registration(reg.registration)
        if core.status.registration in _NO_SERVICE:
            raise NotRegisteredError(
                f"cannot {what}: the module is not registered on the network ({core.status.registration})"
            )


__all__ = ["StatusReader"]
