"""What users ask of a modem: raw commands (an allow-list, :mod:`.checks`), DNS, ping, data connections, APN,
PSM and retention.

Each service first waits until the module takes commands (waking it from PSM per ``psm_policy``) and, for
network services, until it is registered again after a wake (bounded), then refuses at once when the module
is known to have no service (:class:`~sim7020_core.exceptions.NotRegisteredError`). Values that go into AT
commands are checked first (:mod:`.checks`), with errors naming the argument.

``AT+RETENTION`` (whether sockets and CIP links survive PSM) is module-wide state and the modem owns it:
:attr:`Services.retention` is the value last set or read, and None while not known (before the first set or
read, and again after every module reset). A raw ``AT+RETENTION=…`` / ``AT+RETENTION?`` sent with
:meth:`Services.command` keeps it in step.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import logging
import math
import re
from collections.abc import Sequence
from typing import Any

from .. import const
from ..at.engine import Urc
from ..connection import Connection, Server
from ..exceptions import AtCommandError, AtTimeoutError, Sim7020Error
from ..models import NetworkSettings, PingReply
from ..netvalues import bands_problem, check, dns_servers_problem
from ..status import is_ip_literal, parse_cclk, parse_cdnsgip, parse_cipping, parse_reg_urc
from .checks import check_apn, check_command_line, check_credential, check_host, check_raw_command
from .core import ModemCore
from .network import NetworkControl, psm_command
from .psm_control import PsmControl
from .session import Session
from .status_reader import StatusReader
from .transports import TransportSet

_LOGGER = logging.getLogger(__name__)

#: Meanings of ``+CDNSGIP: 0,<err>`` (Kampi ``sim7020_dns_defs.h``, docs/at_notes.md).
DNS_ERRORS: dict[int, str] = {3: "network error", 8: "DNS common error (unknown host?)"}

_RETENTION_COMMAND = re.compile(r"AT\+RETENTION(?:=([01])|\?)")  # upper case, no spaces


class Services:
    """The public services of one modem (see the module docstring)."""

    def __init__(
        self,
        core: ModemCore,
        status: StatusReader,
        psm: PsmControl,
        session: Session,
        transports: TransportSet,
        *,
        network: NetworkControl | None = None,
    ) -> None:
        self._core = core
        self._network = network or NetworkControl(core, status, session)
        self._status = status
        self._psm = psm
        self._session = session
        self._transports = transports
        # One DNS lookup / one ping at a time: their URCs cannot always be told apart (a failed
        # +CDNSGIP does not name the host). Each holder is bounded, so waiting is too.
        self._dns_lock = asyncio.Lock()
        self._ping_lock = asyncio.Lock()
        self._retention: bool | None = None  # AT+RETENTION as last set or read …
        self._retention_resets = 0  # … while core.resets had this value (a reset since makes it unknown)

    # ------------------------------------------------------------------ raw commands

    async def command(self, command: str, timeout: float | None, *, allow_unsafe: bool) -> list[str]:  # noqa: ASYNC109
        """See :meth:`sim7020_core.modem.Modem.command`."""
        text = check_command_line(command) if allow_unsafe else check_raw_command(command)
        await self._psm.ensure_ready()
        resets = self._core.resets
        response = await self._core.command(
            text, timeout=const.USER_COMMAND_TIMEOUT if timeout is None else timeout
        )
        self._note_raw_retention(text, response.lines, resets)
        return list(response.lines)

    def _note_raw_retention(self, command: str, lines: list[str], resets: int) -> None:
        """Keep :attr:`retention` true to the module when a raw command set or read ``AT+RETENTION``."""
        text = command.upper().replace(" ", "")
        if "RETENTION" not in text or text == "AT+RETENTION=?":
            return
        match = _RETENTION_COMMAND.fullmatch(text)
        if match is None:  # combined with other commands, or another form: no longer sure
            self._record_retention(None, resets)
        elif match.group(1) is not None:
            self._record_retention(match.group(1) == "1", resets)
        else:
            with contextlib.suppress(Sim7020Error):
                self._record_retention(parse_retention(lines), resets)

    # ------------------------------------------------------------------ network services

    async def resolve(self, host: str) -> list[str]:
        """See :meth:`sim7020_core.modem.Modem.resolve`."""
        name = check_host(host)
        if is_ip_literal(name):
            return [name]
        core = self._core
        await self._psm.ensure_ready()
        await self._psm.wait_rejoined(f"resolve {name!r}")
        await self._status.ensure_network(f"resolve {name!r}")
        command = f'AT+CDNSGIP="{name}"'
        timeout = const.CDNSGIP_TIMEOUT
        # The answer is a URC after OK; a late one for an earlier lookup may come first (skipped by name).
        async with self._dns_lock, core.engine.capture_urcs("+CDNSGIP") as queue:
            await core.command(command, timeout=const.DEFAULT_TIMEOUT)
            try:
                async with asyncio.timeout(timeout):
                    while True:
                        urc = await queue.get()
                        try:
                            result = parse_cdnsgip(urc.line)
                        except ValueError:
                            _LOGGER.warning("ignoring malformed DNS result %r", urc.line)
                            continue
                        if result.ok and result.host is not None and result.host.lower() != name.lower():
                            _LOGGER.debug("ignoring stale DNS result for %r", result.host)
                            continue
                        break
            except TimeoutError:
                raise AtTimeoutError(command, timeout, "+CDNSGIP result") from None
        if not result.ok:
            meaning = DNS_ERRORS.get(result.error or -1, "unknown error")
            servers = await self._network.describe_dns()  # which servers failed (AT+CDNSCFG?)
            raise Sim7020Error(f"DNS lookup of {name!r} failed: error {result.error} ({meaning}); {servers}")
        return result.addresses

    async def ping(self, host: str, count: int, *, size: int, timeout: float) -> list[PingReply]:  # noqa: ASYNC109
        """See :meth:`sim7020_core.modem.Modem.ping`."""
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
            raise ValueError(f"ping count must be 1..100, got {count!r}")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 5120:
            raise ValueError(f"ping size must be 0..5120 bytes, got {size!r}")
        if not 0.1 <= timeout <= 60:
            raise ValueError(f"ping timeout must be 0.1..60 s, got {timeout!r}")
        ip = (await self.resolve(host))[0]
        core = self._core
        await self._psm.ensure_ready()
        await self._psm.wait_rejoined(f"ping {host!r}")
        await self._status.ensure_network(f"ping {host!r}")
        units = max(1, min(600, math.ceil(timeout * 10)))
        command = f'AT+CIPPING="{ip}",{count},{size},{units}'
        replies: dict[int, PingReply] = {}
        async with self._ping_lock, core.engine.capture_urcs("+CIPPING") as queue:
            await core.command(command, timeout=const.DEFAULT_TIMEOUT)
            with contextlib.suppress(TimeoutError):  # unanswered probes are reported as such below
                async with asyncio.timeout(const.CIPPING_BASE_TIMEOUT + count * units / 10):
                    while len(replies) < count:
                        urc = await queue.get()
                        try:
                            reply = parse_cipping(urc.line)
                        except ValueError:
                            _LOGGER.warning("ignoring malformed ping reply %r", urc.line)
                            continue
                        replies[reply.seq] = reply
        for seq in range(1, count + 1):
            replies.setdefault(seq, PingReply(seq=seq, ip=ip, rtt_ms=None, ttl=0))
        return [replies[seq] for seq in sorted(replies)]

    async def open_connection(
        self, protocol: str, host: str, port: int, *, transport: str, **options: Any
    ) -> Connection:
        """See :meth:`sim7020_core.modem.Modem.open_connection`."""
        _check_port(port)
        ip = (await self.resolve(host))[0]
        await self._psm.ensure_ready()
        await self._psm.wait_rejoined(f"connect to {host}:{port}")
        await self._status.ensure_network(f"connect to {host}:{port}")
        return await self._transports.get(transport).open_connection(protocol, ip, port, **options)

    async def listen(self, port: int, *, transport: str, **options: Any) -> Server:
        """See :meth:`sim7020_core.modem.Modem.listen`."""
        _check_port(port)
        await self._psm.ensure_ready()
        return await self._transports.get(transport).listen(port, **options)

    # ------------------------------------------------------------------ settings

    async def set_apn(self, apn: str, pdp_type: str, username: str, password: str) -> None:
        """See :meth:`sim7020_core.modem.Modem.set_apn`."""
        pdp = {"IP": "IP", "IPV6": "IPV6", "IPV4V6": "IPV4V6", "NON-IP": "Non-IP"}.get(pdp_type.upper())
        if pdp is None:
            raise ValueError(f"pdp_type must be IP, IPV6, IPV4V6 or Non-IP, not {pdp_type!r}")
        check_apn(apn)
        check_credential(username, "username")
        check_credential(password, "password")
        if (username or password) and not (username and password):
            raise ValueError("give both username and password, or neither")
        core = self._core
        await self._psm.ensure_ready()
        async with core.init_lock:
            await self._network.apply_apn(apn, pdp, username, password, force=True)
            await self._status.wait_registered(core.options.registration_timeout)
        self._network.record_apn(apn, pdp, username, password)
        await self._status.refresh()

    async def set_psm(self, enabled: bool, tau_s: int | None, active_s: int | None) -> None:
        """See :meth:`sim7020_core.modem.Modem.set_psm`."""
        command = psm_command(enabled, tau_s, active_s)
        core = self._core
        await self._psm.ensure_ready()
        async with core.engine.capture_urcs("+CEREG") as grants:
            await core.command(command)
            if enabled and core.grant_urcs:
                # The network answers the request after the OK, in +CEREG URCs carrying its timers (docs/
                # status_formats.md); reading the status before would show the previous grant.
                await self._wait_for_grant(grants)
        with contextlib.suppress(AtCommandError):
            await core.command("AT+CPSMSTATUS=1")
        self._network.record(psm=bool(enabled), psm_tau_s=tau_s, psm_active_s=active_s)
        await self._status.refresh()

    async def _wait_for_grant(self, urcs: asyncio.Queue[Urc]) -> None:
        """Wait for the network's answer to a PSM request: ``+CEREG`` URCs that carry PSM timers.

        The module may first repeat the grant in force and then report the new one (docs/status_formats.md),
        so this returns at the first report that differs from the grant known before, or once reports stop
        coming for :data:`const.PSM_GRANT_SETTLE`; at most :data:`const.PSM_GRANT_TIMEOUT`. Not every network
        answers: without a report the status keeps the requested timers.
        """
        psm = self._core.status.psm
        before = (psm.tau_s, psm.active_s) if psm.granted else None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + const.PSM_GRANT_TIMEOUT
        reported = False
        while True:
            wait = deadline - loop.time()
            if reported:
                wait = min(wait, const.PSM_GRANT_SETTLE)
            try:
                async with asyncio.timeout(max(wait, 0)):
                    line = (await urcs.get()).line
            except TimeoutError:
                if not reported:
                    _LOGGER.debug("no PSM grant from the network within %.0f s", const.PSM_GRANT_TIMEOUT)
                return
            reg = parse_reg_urc(line)
            if reg is not None and reg.has_timers:
                reported = True
                if (reg.tau_s, reg.active_s) != before:
                    return

    async def read_clock(self) -> datetime.datetime:
        """See :meth:`sim7020_core.modem.Modem.read_clock`."""
        await self._psm.ensure_ready()
        response = await self._core.command("AT+CCLK?", timeout=const.STATUS_TIMEOUT)
        try:
            return parse_cclk(response.lines)
        except ValueError as err:
            raise Sim7020Error(f"unreadable answer to AT+CCLK?: {err}") from None

    @property
    def retention(self) -> bool | None:
        """``AT+RETENTION`` as last set or read; None when not known (see the module docstring)."""
        return self._retention if self._retention_resets == self._core.resets else None

    def _record_retention(self, value: bool | None, resets: int) -> None:
        """Record what the module said or took, unless it was reset since (then it is not known)."""
        if resets == self._core.resets:
            self._retention = value
            self._retention_resets = resets

    async def set_retention(self, enabled: bool) -> None:
        """See :meth:`sim7020_core.modem.Modem.set_retention`."""
        wanted = bool(enabled)
        if self.retention is wanted:
            return
        await self._psm.ensure_ready()
        resets = self._core.resets
        await self._core.command(f"AT+RETENTION={int(wanted)}", timeout=const.DEFAULT_TIMEOUT)
        self._record_retention(wanted, resets)

    async def read_retention(self) -> bool:
        """See :meth:`sim7020_core.modem.Modem.read_retention`."""
        await self._psm.ensure_ready()
        resets = self._core.resets
        try:
            response = await self._core.command("AT+RETENTION?", timeout=const.STATUS_TIMEOUT)
        except AtCommandError as err:
            _LOGGER.debug("AT+RETENTION? not available (%s): no retention across PSM", err)
            value = False
        else:
            value = parse_retention(response.lines)
        self._record_retention(value, resets)
        return value

    # ------------------------------------------------------------------ kept network settings

    @property
    def network_settings(self) -> NetworkSettings:
        """See :attr:`sim7020_core.modem.Modem.network_settings`."""
        return self._network.settings

    async def set_edrx(self, enabled: bool, cycle_s: float | None) -> None:
        """See :meth:`sim7020_core.modem.Modem.set_edrx`."""
        NetworkSettings(edrx=enabled, edrx_cycle_s=cycle_s)  # the checks, naming the field
        await self._psm.ensure_ready()
        await self._network.apply_edrx(enabled, cycle_s, force=True)
        self._network.record(edrx=enabled, edrx_cycle_s=cycle_s)
        await self._status.refresh()

    async def set_bands(self, bands: Sequence[int]) -> None:
        """See :meth:`sim7020_core.modem.Modem.set_bands`."""
        check("bands", bands_problem(bands, self._core.info.model or None))
        kept = NetworkSettings(bands=tuple(bands)).bands
        core = self._core
        await self._psm.ensure_ready()
        async with core.init_lock:
            await self._network.apply_bands(kept or (), force=True)
            await self._status.wait_registered(core.options.registration_timeout)
        self._network.record(bands=kept)
        await self._status.refresh()

    async def set_operator(self, operator: str) -> None:
        """See :meth:`sim7020_core.modem.Modem.set_operator`."""
        NetworkSettings(operator=operator)
        core = self._core
        await self._psm.ensure_ready()
        async with core.init_lock:
            await self._network.apply_operator(operator, force=True)
            await self._status.wait_registered(core.options.registration_timeout)
        self._network.record(operator=operator)
        await self._status.refresh()

    async def set_dns_servers(self, servers: Sequence[str]) -> None:
        """See :meth:`sim7020_core.modem.Modem.set_dns_servers`."""
        check("dns_servers", dns_servers_problem(servers))
        kept = NetworkSettings(dns_servers=tuple(servers)).dns_servers
        await self._psm.ensure_ready()
        await self._network.apply_dns(kept or ())
        self._network.record(dns_servers=kept)
        await self._status.refresh()


def parse_retention(lines: list[str]) -> bool:
    """``+RETENTION: <0|1>`` → bool.

    :raises Sim7020Error: no such line, or another value
    """
    for line in lines:
        head, sep, rest = line.strip().partition(":")
        if sep and head.strip().upper() == "+RETENTION":
            value = rest.split(",")[0].strip()
            if value in ("0", "1"):
                return value == "1"
            break
    raise Sim7020Error(f"unexpected answer to AT+RETENTION? (want '+RETENTION: <0|1>'): {lines!r}")


def _check_port(port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer from 1 to 65535, not {port!r}")


__all__ = ["DNS_ERRORS", "Services", "parse_retention"]
