"""The session with the module: opening the port, finding the module (``AT``), and bringing it to a known
state.

Initialisation (:meth:`Session.initialise`, the caller holds the init lock): sync (``AT`` until ``OK``),
the session settings (:mod:`.settings`: ``ATE0``, ``AT+CMEE=1``, ``AT+CEREG=4`` else ``AT+CEREG=2``,
``AT+CPSMSTATUS=1``, then the transports'), the SIM (retried while it is busy; :class:`SimError` when it is
missing or locked; a radio left off is switched on first), the identity, a bounded wait for registration
(not fatal) and a first status. The supervisor marks the modem ready afterwards.

A module that does not answer ``AT`` at connect may still be in the transparent data mode a previous process
left it in (:meth:`Session.leave_stale_data_mode` sends ``+++`` with its guard times).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from .. import const
from ..at.engine import AtResponse
from ..const import Priority
from ..exceptions import AtCommandError, AtTimeoutError, SimError
from ..link import SerialLink
from ..models import LinkState, ModemInfo
from ..status import find_value, parse_cpin, parse_gsv, parse_identity
from .core import ModemCore
from .settings import SessionSettings
from .status_reader import StatusReader

_LOGGER = logging.getLogger(__name__)


class Session:
    """Port, sync and initialisation of one modem's module."""

    def __init__(self, core: ModemCore, status: StatusReader, settings: SessionSettings) -> None:
        self._core = core
        self._status = status
        self._settings = settings

    async def open_link(self) -> None:
        """Open the port and attach the engine to it; its loss is a fatal error."""
        core = self._core
        link = await SerialLink.open(core.url, baudrate=core.baudrate)
        core.link = link
        link.add_lost_callback(self._on_link_lost)
        await core.engine.attach(link)

    def _on_link_lost(self, exc: Exception | None) -> None:
        self._core.fatal_path.fatal(f"link lost: {exc}" if exc else "link closed by the other side")

    async def close_link(self) -> None:
        """Detach the engine and close the port (bounded by the link itself)."""
        core = self._core
        link, core.link = core.link, None
        with contextlib.suppress(Exception):
            await core.engine.detach()
        if link is not None:
            await link.close()

    async def sync(self, attempts: int | None = None) -> None:
        """Send ``AT`` until the module answers (trying other line rates on a device path and fixing
        ours with ``AT+IPR``).

        :raises TransportError: no answer after ``attempts`` probes per rate
        """
        core = self._core
        await core.engine.sync(
            attempts=const.MODEM_SYNC_ATTEMPTS if attempts is None else attempts, fix_rate=core.baudrate
        )

    async def leave_stale_data_mode(self) -> bool:
        """``+++`` with its guard times, for a module a previous process left in transparent data mode (it
        takes ``AT`` for data then). True when the module answered ``OK``: it is in command mode now, and
        the link it kept is released with the other stale state (:meth:`Transport.reclaim`)."""
        try:
            await self._core.engine.escape_data_mode(timeout=const.STALE_DATA_MODE_TIMEOUT)
        except (AtTimeoutError, AtCommandError):
            return False
        _LOGGER.warning(
            "%s was in transparent data mode (left by a previous process?): left it", self._core.url
        )
        return True

    async def initialise(self, sync_attempts: int | None = None) -> None:
        """Bring the module to a known state (the caller holds the init lock).

        :param sync_attempts: ``AT`` probes before giving up (more while the module boots)
        """
        core = self._core
        if core.state is not LinkState.CLOSED:
            core.ready.clear()
        await self.sync(sync_attempts)
        await self._settings.apply("initialising")
        await self._check_sim()
        core.info = await self._read_identity()
        await self._status.wait_registered(core.options.registration_timeout)
        await self._status.refresh()
        core.settled.set()
        core.rejoined.set()

    async def sim_command(self, command: str) -> AtResponse:
        """A SIM-related command, retried while the SIM is busy (``+CME ERROR: 14``).

        :raises SimError: the SIM stayed busy, or it is missing or failed
        """
        core = self._core
        retries = core.options.sim_busy_retries
        for attempt in range(retries + 1):
            try:
                return await core.command(command, timeout=const.DEFAULT_TIMEOUT, priority=Priority.HIGH)
            except AtCommandError as err:
                if _is_sim_busy(err) and attempt < retries:
                    _LOGGER.debug("SIM busy on %s, retrying (%d/%d)", command, attempt + 1, retries)
                    await asyncio.sleep(const.SIM_BUSY_RETRY_DELAY)
                    continue
                if _is_sim_busy(err):
                    raise SimError(f"the SIM stayed busy after {retries} retries of {command}") from err
                if _is_sim_missing(err):
                    raise SimError(f"no usable SIM card ({err.final}): insert or check the SIM") from err
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    async def _check_sim(self) -> None:
        state = parse_cpin((await self.sim_command("AT+CPIN?")).lines)
        if state == "NOT READY" and await self._radio_off():
            # The radio was left off (AT+CFUN=0, e.g. an interrupted APN change): the SIM is not
            # readable then. Switch it back on and look again.
            _LOGGER.info("radio is off (CFUN=0); switching it on")
            await self.radio_on()
            state = parse_cpin((await self.sim_command("AT+CPIN?")).lines)
        if state is not None and state != "READY":
            raise SimError(f"the SIM is not ready: +CPIN: {state} (a PIN/PUK is required or the SIM failed)")

    async def radio_on(self) -> None:
        """``AT+CFUN=1``, then wait (bounded) until the SIM is ready: the ``+CPIN: READY`` URC, or
        ``AT+CPIN?`` saying so (the URC is optional on some firmware)."""
        core = self._core
        async with core.engine.capture_urcs("+CPIN") as queue:
            await core.command("AT+CFUN=1", timeout=const.CFUN_TIMEOUT, priority=Priority.HIGH)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(const.CPIN_READY_TIMEOUT):
                    while True:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(const.REGISTRATION_POLL_INTERVAL):
                                while not is_cpin_ready((await queue.get()).line):
                                    pass
                                return
                        response = await core.command(
                            "AT+CPIN?", timeout=const.SHORT_TIMEOUT, priority=Priority.HIGH, check=False
                        )
                        if parse_cpin(response.lines) == "READY":
                            return
            _LOGGER.info("the SIM was not reported ready within %g s of AT+CFUN=1", const.CPIN_READY_TIMEOUT)

    async def _radio_off(self) -> bool:
        try:
            response = await self._core.command(
                "AT+CFUN?", timeout=const.SHORT_TIMEOUT, priority=Priority.HIGH
            )
        except AtCommandError:
            return False
        value = find_value(response.lines, "+CFUN")
        return value is not None and value.strip() == "0"

    async def _read_identity(self) -> ModemInfo:
        core = self._core

        async def read(command: str, *, sim: bool = False) -> str:
            try:
                if sim:
                    response = await self.sim_command(command)
                else:
                    response = await core.command(
                        command, timeout=const.SHORT_TIMEOUT, priority=Priority.HIGH
                    )
            except AtCommandError as err:
                if isinstance(err.__cause__, AtCommandError) or not sim:
                    _LOGGER.debug("%s not available: %s", command, err)
                return ""
            return parse_identity(response.lines)

        manufacturer, model, revision = await read("AT+CGMI"), await read("AT+CGMM"), await read("AT+CGMR")
        if not (manufacturer and model and revision):
            # AT+GSV answers all three at once (firmware that lacks one of the others may have it).
            with contextlib.suppress(AtCommandError):
                response = await core.command("AT+GSV", timeout=const.SHORT_TIMEOUT, priority=Priority.HIGH)
                gsv = parse_gsv(response.lines)
                manufacturer, model, revision = manufacturer or gsv[0], model or gsv[1], revision or gsv[2]
        return ModemInfo(
            manufacturer=manufacturer,
            model=model,
            revision=revision,
            imei=await read("AT+CGSN"),
            imsi=await read("AT+CIMI", sim=True),
            iccid=await read("AT+CCID", sim=True),
        )


def is_cpin_ready(line: str) -> bool:
    """True for ``+CPIN: READY`` (and not ``NOT READY``)."""
    upper = line.upper()
    return "READY" in upper and "NOT" not in upper


def _is_sim_busy(err: AtCommandError) -> bool:
    return err.cme_code == 14 or "SIM BUSY" in (err.cme_text or err.final).upper()


def _is_sim_missing(err: AtCommandError) -> bool:
    text = (err.cme_text or err.final).upper()
    return err.cme_code in (10, 13, 15) or "NOT INSERTED" in text or "SIM FAILURE" in text


__all__ = ["Session", "is_cpin_ready"]
