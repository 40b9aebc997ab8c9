"""The modem manager: initialisation, status, services, PSM and recovery of one SIM7020 module.

::

    async with await Modem.connect("socket://127.0.0.1:7020") as modem:
        print(modem.info, await modem.refresh())
        print(await modem.resolve("example.com"), await modem.ping("10.0.0.1", count=2))

Life cycle (:attr:`Modem.state`, a :class:`~sim7020_core.models.LinkState`):

- ``connecting`` → ``ready`` once :meth:`Modem.connect` has synced (``AT`` until ``OK``), set ``ATE0`` and
  ``AT+CMEE=1``, checked the SIM (retrying while it is busy; :class:`SimError` when it is missing or
  locked), read the identity and waited (bounded, not fatal) for network registration;
- ``asleep`` while the module is in PSM (``+CPSMSTATUS: "ENTER PSM"`` … ``"EXIT PSM"``). PSM is a state,
  not a failure: commands wake the module and wait (``psm_policy="wait"``, bounded) or fail at once with
  :class:`ModemAsleepError` (``psm_policy="fail"``). Background polling never wakes it;
- ``recovering`` after the watchdog (a periodic ``AT+CMEE?`` with a failure counter) gave up, the port
  was lost, or the module rebooted (``RDY``/``+CPIN: READY`` out of the blue, or its settings were lost):
  resync → ``AT+CFUN=1,1`` → reopen the port with capped backoff (:class:`ReconnectLogic`), then
  re-initialise. Transports are told (``on_modem_reset``) so connection owners learn their connections
  are gone;
- ``closed`` after :meth:`Modem.close`.

Subscribers (:meth:`Modem.subscribe`) receive a :data:`~sim7020_core.events.ModemEvent` for each change of
state, status and PSM, each module reset and each chunk of received data; the pluggy hook
``sim7020_modem_state_changed`` gets the same events, from the first one on.

Every wait is bounded by a named constant in :mod:`sim7020_core.const` (section "modem manager").
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import inspect
import logging
import math
import re
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from . import const
from .at.engine import AtEngine, AtResponse, Urc
from .const import Priority
from .events import DataReceived, ModemEvent, ModuleReset, PsmChanged, StateChanged, StatusChanged
from .exceptions import (
    AtCommandError,
    AtTimeoutError,
    CommandInterruptedError,
    CommandNotAllowedError,
    DataModeError,
    ModemAsleepError,
    NotRegisteredError,
    Sim7020Error,
    SimError,
    TransportError,
)
from .link import SerialLink
from .models import LinkState, ModemInfo, ModemStatus, PingReply, Registration, csq_to_dbm
from .psm import encode_t3324, encode_t3412
from .reconnect import ReconnectLogic
from .status import (
    RegInfo,
    find_value,
    is_ip_literal,
    parse_cdnsgip,
    parse_ceng,
    parse_cgact,
    parse_cgatt,
    parse_cgcontrdp,
    parse_cipping,
    parse_cops,
    parse_cpin,
    parse_cpsms,
    parse_cpsmstatus,
    parse_csq,
    parse_identity,
    parse_reg_read,
    parse_reg_urc,
)

if TYPE_CHECKING:
    from .connection import Connection, Server, Transport
    from .plugins import PluginManager

_LOGGER = logging.getLogger(__name__)

__all__ = ["UNSAFE_COMMANDS", "Modem", "ModemOptions", "PsmPolicy"]

PsmPolicy = Literal["wait", "fail"]
WakeCallback = Callable[["Modem"], "Awaitable[object] | object"]

#: Raw commands :meth:`Modem.command` refuses unless ``allow_unsafe=True`` (pattern → why). Matched against
#: each ``;``-separated part of the upper-cased command without spaces.
UNSAFE_COMMANDS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), reason)
    for pattern, reason in (
        (r"^(AT)?E1$", "turns echo on"),
        (r"^(AT)?V0$", "switches to numeric result codes"),
        (r"^(AT)?Q1$", "suppresses result codes"),
        (r"^(AT)?Z\d*$", "resets the module's settings"),
        (r"^(AT)?&F\d*$", "restores factory settings"),
        (r"^(AT)?O\d*$", "switches to data mode"),
        (r"^(AT)?\+IPR=", "changes the baud rate"),
        (r"^(AT)?\+CFUN=", "switches the radio or resets the module"),
        (r"^(AT)?\+CMEE=(?!1$)", "changes the error format the driver relies on"),
        (r"^(AT)?\+CIPMODE=1", "enables transparent mode"),
        (r"^(AT)?\+CIPCHAN", "enters transparent mode"),
        (r"^(AT)?\+CSORCVFLAG=", "changes the receive format the native transport relies on"),
        (r"^(AT)?\+CPOWD", "powers the module off"),
        (r"^(AT)?\+IFC=", "changes flow control"),
    )
)

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_RETENTION_COMMAND = re.compile(r"AT\+RETENTION(?:=([01])|\?)")  # upper case, no spaces
_NO_SERVICE = frozenset(
    {Registration.NOT_REGISTERED.value, Registration.SEARCHING.value, Registration.DENIED.value}
)


@dataclass(frozen=True, slots=True)
class ModemOptions:
    """How a :class:`Modem` behaves. Durations are in seconds.

    :param registration_timeout: how long :meth:`Modem.connect` waits for network registration (not
        fatal: the state is reported); 0 does not wait
    :param poll_interval: status polling period (None: no polling; URCs still update the status)
    :param watchdog_interval: period of the watchdog probe, ``AT+CMEE?`` (None: no watchdog)
    :param watchdog_max_failures: unanswered commands in a row (watchdog probes or any other command
        while the module should be awake) before recovery starts

    UART traffic keeps the module awake, so while PSM is enabled the watchdog and the poller stay quiet
    and the module can sleep; status then follows URCs, and unanswered commands still start recovery.
    :param auto_recover: run recovery (resync, reset, reopen) when the session is lost
    :param psm_policy: ``"wait"``: commands wake the module and wait up to ``psm_wake_timeout``;
        ``"fail"``: commands raise :class:`ModemAsleepError` while the module sleeps
    :param psm_wake_timeout: bound on waiting for the module to leave PSM
    :param wake: called as ``wake(modem)`` (plain or async) to wake the module from PSM, for boards that
        wire PWRKEY/DTR to a GPIO; without it the ``sim7020_wake_modem`` hook is tried, then UART activity
    :param sim_busy_retries: retries of a SIM command answered ``+CME ERROR: 14`` (SIM busy)
    :param reconnect_min_delay: first backoff delay of recovery
    :param reconnect_max_delay: cap of the recovery backoff
    """

    registration_timeout: float = 30.0
    poll_interval: float | None = 60.0
    watchdog_interval: float | None = 30.0
    watchdog_max_failures: int = 3
    auto_recover: bool = True
    psm_policy: PsmPolicy = "wait"
    psm_wake_timeout: float = 30.0
    wake: WakeCallback | None = None
    sim_busy_retries: int = 10
    reconnect_min_delay: float = 1.0
    reconnect_max_delay: float = 60.0

    def __post_init__(self) -> None:
        if self.psm_policy not in ("wait", "fail"):
            raise ValueError(f"psm_policy must be 'wait' or 'fail', not {self.psm_policy!r}")
        for name in (
            "registration_timeout",
            "psm_wake_timeout",
            "reconnect_min_delay",
            "reconnect_max_delay",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)!r}")
        for name in ("poll_interval", "watchdog_interval"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive or None, got {value!r}")
        if self.watchdog_max_failures < 1:
            raise ValueError(f"watchdog_max_failures must be at least 1, got {self.watchdog_max_failures!r}")
        if self.sim_busy_retries < 0:
            raise ValueError(f"sim_busy_retries must not be negative, got {self.sim_busy_retries!r}")


class Modem:
    """One SIM7020 module on a serial link. Build it with :meth:`connect`.

    :ivar engine: the :class:`~sim7020_core.at.engine.AtEngine` (transports issue their commands on it)
    :ivar info: identity read at initialisation
    :ivar status: the last known :class:`~sim7020_core.models.ModemStatus`
    :ivar state: the :class:`~sim7020_core.models.LinkState`
    """

    def __init__(
        self,
        url: str,
        *,
        baudrate: int = const.DEFAULT_BAUDRATE,
        options: ModemOptions | None = None,
        plugin_manager: PluginManager,
    ) -> None:
        self.url = url
        self.baudrate = baudrate
        self.options = options or ModemOptions()
        self.engine = AtEngine()
        self.info = ModemInfo()
        self.status = ModemStatus()
        self.state = LinkState.CONNECTING
        self._pm = plugin_manager
        self._link: SerialLink | None = None
        self._subscribers: list[Callable[[ModemEvent], None]] = []
        self._transports: dict[str, Transport] = {}
        self._urc_removers: list[Callable[[], None]] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._init_lock = asyncio.Lock()
        self._ready = asyncio.Event()
        self._awake = asyncio.Event()
        self._awake.set()
        self._registered = asyncio.Event()
        # One DNS lookup / one ping at a time: their URCs cannot always be told apart (a failed
        # +CDNSGIP does not name the host). Each holder is bounded, so waiting is too.
        self._dns_lock = asyncio.Lock()
        self._ping_lock = asyncio.Lock()
        self._watchdog_failures = 0
        self._reconnect = ReconnectLogic(
            self._recover_attempt,
            on_connect_error=self._on_recover_error,
            min_delay=self.options.reconnect_min_delay,
            max_delay=self.options.reconnect_max_delay,
            name=f"modem {url}",
        )
        self._reset_announced = False
        self._retention: bool | None = None  # AT+RETENTION as last set or read; None: not known
        self._reset_count = 0  # module resets seen (a retention answer older than a reset is stale)

    # ------------------------------------------------------------------ construction / closing

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        baudrate: int = const.DEFAULT_BAUDRATE,
        options: ModemOptions | None = None,
        plugin_manager: PluginManager | None = None,
    ) -> Modem:
        """Open ``url`` and initialise the module; returns a ready modem.

        :param url: device path or pyserial URL (``socket://host:port``, ``rfc2217://…``)
        :param baudrate: line rate for device paths
        :param options: behaviour (:class:`ModemOptions`)
        :param plugin_manager: the application's plugin manager (transports, codecs, hooks); None builds one
            from the installed plugins (off the event loop) for this modem alone
        :raises TransportError: the port cannot be opened or the module never answered ``AT`` (also
            not after the wake callback/hook, when there is one: the module may be asleep in PSM)
        :raises SimError: the SIM card is missing, failed or locked
        :raises PluginError: ``plugin_manager`` is None and the installed plugins cannot be loaded
        """
        if plugin_manager is None:
            from .plugins import async_make_plugin_manager

            plugin_manager = await async_make_plugin_manager()
        modem = cls(url, baudrate=baudrate, options=options, plugin_manager=plugin_manager)
        try:
            await modem._open_link()
            async with modem._init_lock:
                # URC handlers (ours and the plugins') first: every URC of the initialisation reaches them.
                modem._install_urc_handlers()
                try:
                    await modem._sync()
                except TransportError:
                    # A silent module may be asleep in PSM: wake it by outside means, if we have any.
                    if await modem._trigger_wake() is None:
                        raise
                    _LOGGER.info("no answer from %s; woke it with the wake callback/hook, retrying", url)
                    await modem._sync(const.BOOT_SYNC_ATTEMPTS)
                await modem._initialize_locked()
        except BaseException:
            await modem.close()
            raise
        modem._start_background()
        return modem

    async def __aenter__(self) -> Modem:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop background work, close connections and the port (idempotent, bounded)."""
        if self.state is LinkState.CLOSED:
            return
        self._set_state(LinkState.CLOSED, "closed")
        await self._reconnect.stop()
        await self._cancel_background()
        for transport in list(self._transports.values()):
            await self._bounded(transport.close(), f"closing transport {transport.name!r}")
        self._transports.clear()
        self._remove_urc_handlers()
        await self._bounded(self._close_link(), "closing the link")
        self._awake.set()

    # ------------------------------------------------------------------ public properties

    @property
    def plugins(self) -> PluginManager:
        """The plugin manager of this modem's transports and hooks (given to or built by :meth:`connect`)."""
        return self._pm

    @property
    def transports(self) -> Mapping[str, Transport]:
        """The transports this modem has used so far, by name (read-only; built on first use)."""
        return MappingProxyType(self._transports)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self.state is LinkState.CLOSED

    @property
    def link(self) -> SerialLink | None:
        """The open serial link (None while reconnecting or closed)."""
        return self._link

    @property
    def retention(self) -> bool | None:
        """Whether the module keeps its sockets (native and CIP) across PSM (``AT+RETENTION``).

        The value last set with :meth:`set_retention` or read with :meth:`read_retention` (or sent raw with
        :meth:`command`); None while not known: before the first of them and again after each module reset
        (reboot, recovery, reopened port), when the module may or may not have kept the setting.
        """
        return self._retention

    def subscribe(self, callback: Callable[[ModemEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every :data:`~sim7020_core.events.ModemEvent`; returns a function that
        unsubscribes.

        Callbacks run in the event loop and must not block; an exception is logged and ignored.
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    # ------------------------------------------------------------------ status

    async def refresh(self) -> ModemStatus:
        """Query the module and return the fresh :class:`ModemStatus` (subscribers see a change)."""
        await self._ensure_ready()
        return await self._refresh()

    async def _refresh(self) -> ModemStatus:
        csq_lines = await self._query("AT+CSQ")
        csq, ber = parse_csq(csq_lines) if csq_lines is not None else (None, None)
        reg = await self._read_registration()
        attached_lines = await self._query("AT+CGATT?")
        attached = parse_cgatt(attached_lines) if attached_lines is not None else None
        cgact_lines = await self._query("AT+CGACT?", limit=const.PDP_TIMEOUT)
        pdn_active = parse_cgact(cgact_lines) if cgact_lines is not None else None
        apn: str | None = None
        ip: str | None = None
        if pdn_active:
            rdp = await self._query("AT+CGCONTRDP", limit=const.PDP_TIMEOUT)
            if rdp is not None:
                apn, ip = parse_cgcontrdp(rdp)
        cops = await self._query("AT+COPS?")
        operator = parse_cops(cops) if cops is not None else None
        cpsms = await self._query("AT+CPSMS?")
        psm_setting = parse_cpsms(cpsms) if cpsms is not None else None
        ceng = await self._query("AT+CENG?")
        cell = parse_ceng(ceng) if ceng is not None else self.status.cell

        old = self.status
        psm = old.psm
        if psm_setting is not None:
            enabled, tau_s, active_s = psm_setting
            psm = dataclasses.replace(psm, enabled=enabled, tau_s=tau_s, active_s=active_s)
        if reg is not None and reg.has_timers and psm.enabled:
            # The network decides: the granted timers (CEREG=4) win over the requested ones.
            psm = dataclasses.replace(psm, tau_s=reg.tau_s, active_s=reg.active_s)
        psm = dataclasses.replace(psm, state="asleep" if self.state is LinkState.ASLEEP else "awake")
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
        if reg is not None:
            self._note_registration(reg.registration)
        self._set_status(new)
        return new

    async def _read_registration(self) -> RegInfo | None:
        lines = await self._query("AT+CEREG?")
        reg = parse_reg_read(lines, "+CEREG") if lines is not None else None
        if reg is None:
            lines = await self._query("AT+CGREG?")
            reg = parse_reg_read(lines, "+CGREG") if lines is not None else None
        return reg

    async def _query(self, command: str, *, limit: float | None = None) -> list[str] | None:
        """A status query: its info lines, or None when the module answers ERROR (unsupported)."""
        try:
            response = await self._cmd(
                command, limit=const.STATUS_TIMEOUT if limit is None else limit, priority=Priority.HIGH
            )
        except AtCommandError as err:
            _LOGGER.debug("%s not available: %s", command, err)
            return None
        return list(response.lines)

    # ------------------------------------------------------------------ services

    async def command(
        self,
        command: str,
        timeout: float | None = None,  # noqa: ASYNC109 - part of the public API (DESIGN.md)
        *,
        allow_unsafe: bool = False,
    ) -> list[str]:
        """Send a raw AT command and return its information lines.

        :param command: e.g. ``"AT+CSQ"`` (no CR; one line)
        :param timeout: bound on the answer (default :data:`const.USER_COMMAND_TIMEOUT`)
        :param allow_unsafe: also send commands that would break the driver's session (see
            :data:`UNSAFE_COMMANDS`: ATE1, AT+IPR=, AT+CFUN=, AT&F, ATZ, AT+CMEE=0/2, AT+CIPMODE=1 …)
        :raises ValueError: not a single AT command line
        :raises CommandNotAllowedError: an unsafe command without ``allow_unsafe``
        :raises AtCommandError: the module answered ERROR / +CME ERROR
        :raises AtTimeoutError: no answer in time
        """
        text = self._check_command(command)
        if not allow_unsafe:
            reason = unsafe_reason(text)
            if reason is not None:
                raise CommandNotAllowedError(
                    f"{text!r} {reason} and would break the session; pass allow_unsafe=True to send it anyway"
                )
        await self._ensure_ready()
        limit = const.USER_COMMAND_TIMEOUT if timeout is None else timeout
        resets = self._reset_count
        response = await self._cmd(text, limit=limit)
        if resets == self._reset_count:
            self._note_raw_retention(text, response.lines)
        return list(response.lines)

    def _note_raw_retention(self, command: str, lines: list[str]) -> None:
        """Keep :attr:`retention` true to the module when a raw command set or read ``AT+RETENTION``."""
        text = command.upper().replace(" ", "")
        if "RETENTION" not in text or text == "AT+RETENTION=?":
            return
        match = _RETENTION_COMMAND.fullmatch(text)
        if match is None:  # combined with other commands, or another form: no longer sure
            self._retention = None
        elif match.group(1) is not None:
            self._retention = match.group(1) == "1"
        else:
            with contextlib.suppress(Sim7020Error):
                self._retention = _parse_retention(lines)

    @staticmethod
    def _check_command(command: str) -> str:
        if not isinstance(command, str):
            raise TypeError(f"command must be a str, not {type(command).__name__}")
        text = command.strip()
        if not text:
            raise ValueError("empty AT command")
        if _CONTROL_CHARS.search(text):
            raise ValueError(f"AT command {command!r} contains control characters (CR/LF/Ctrl-Z …)")
        if not text.upper().startswith("AT"):
            raise ValueError(f"not an AT command (must start with 'AT'): {command!r}")
        return text

    async def resolve(self, host: str) -> list[str]:
        """Resolve ``host`` with the module's DNS (``AT+CDNSGIP``); IP literals are returned as they are.

        :raises ValueError: ``host`` is empty or not a plausible host name
        :raises Sim7020Error: the module's DNS failed (``+CDNSGIP: 0,<err>``; the message names the host)
        :raises AtTimeoutError: no result within :data:`const.CDNSGIP_TIMEOUT`
        """
        name = _check_host(host)
        if is_ip_literal(name):
            return [name]
        await self._ensure_ready()
        await self._ensure_network(f"resolve {name!r}")
        command = f'AT+CDNSGIP="{name}"'
        limit = const.CDNSGIP_TIMEOUT
        async with self._dns_lock, self.engine.capture_urcs("+CDNSGIP") as queue:
            await self._cmd(command, limit=const.DEFAULT_TIMEOUT)
            try:
                async with asyncio.timeout(limit):
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
                raise AtTimeoutError(command, limit, "+CDNSGIP result") from None
        if not result.ok:
            meaning = DNS_ERRORS.get(result.error or -1, "unknown error")
            raise Sim7020Error(f"DNS lookup of {name!r} failed: error {result.error} ({meaning})")
        return result.addresses

    async def ping(
        self,
        host: str,
        count: int = 4,
        *,
        size: int = 32,
        timeout: float = 10.0,  # noqa: ASYNC109 - the per-probe timeout sent to the module
    ) -> list[PingReply]:
        """Ping ``host`` from the module (``AT+CIPPING``) and return one :class:`PingReply` per probe.

        A probe that got no answer has ``rtt_ms=None`` and ``ttl=0``. The RTT resolution is the module's:
        100 ms.

        :param count: probes, 1..100
        :param size: payload bytes, 0..5120
        :param timeout: per-probe timeout in seconds, 0.1..60 (sent in 100 ms units)
        :raises ValueError: an argument is out of range
        """
        if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 100:
            raise ValueError(f"ping count must be 1..100, got {count!r}")
        if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= 5120:
            raise ValueError(f"ping size must be 0..5120 bytes, got {size!r}")
        if not 0.1 <= timeout <= 60:
            raise ValueError(f"ping timeout must be 0.1..60 s, got {timeout!r}")
        ip = (await self.resolve(host))[0]
        await self._ensure_ready()
        await self._ensure_network(f"ping {host!r}")
        units = max(1, min(600, math.ceil(timeout * 10)))
        command = f'AT+CIPPING="{ip}",{count},{size},{units}'
        replies: dict[int, PingReply] = {}
        async with self._ping_lock, self.engine.capture_urcs("+CIPPING") as queue:
            await self._cmd(command, limit=const.DEFAULT_TIMEOUT)
            with contextlib.suppress(TimeoutError):
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
        self, protocol: str, host: str, port: int, *, transport: str = "native", **options: Any
    ) -> Connection:
        """Open a data connection through ``transport`` (host names are resolved first).

        :param protocol: ``"udp"`` or ``"tcp"``
        :param transport: ``native``, ``cip``, ``transparent``, ``udp_extended`` or a plugin's name
        :raises PluginError: no such transport
        :raises NotRegisteredError: the module is known to have no network service
        """
        _check_port(port)
        ip = (await self.resolve(host))[0]
        await self._ensure_ready()
        await self._ensure_network(f"connect to {host}:{port}")
        return await self._transport(transport).open_connection(protocol, ip, port, **options)

    async def listen(self, port: int, *, transport: str = "native", **options: Any) -> Server:
        """Listen for TCP clients on ``port`` through ``transport`` (if it has a server mode)."""
        _check_port(port)
        await self._ensure_ready()
        return await self._transport(transport).listen(port, **options)

    def _transport(self, name: str) -> Transport:
        found = self._transports.get(name)
        if found is None:
            found = self._pm.transport_class(name)(self)
            self._transports[name] = found
        return found

    def data_received(self, connection: Connection, data: bytes) -> None:
        """Tell plugins (``sim7020_data_received``) and subscribers (a ``data`` event) that ``data`` arrived
        on ``connection`` (transports call it right after the data was queued for the connection's owner)."""
        try:
            self._pm.hook.sim7020_data_received(connection=connection, data=data)
        except Exception:  # a plugin's hook wrapper: the implementations themselves are guarded
            _LOGGER.exception("sim7020_data_received failed")
        self._emit(DataReceived(connection=connection, data=data, state=self.state, status=self.status))

    async def set_apn(self, apn: str, pdp_type: str = "IP", username: str = "", password: str = "") -> None:
        """Configure the APN (application note 3.2): radio off, ``AT*MCGDEFCONT``, radio on, wait for the
        SIM and the network. The radio is switched back on even when the APN is refused.

        :raises ValueError: a quote or control character in an argument, or an unknown ``pdp_type``
        """
        pdp = {"IP": "IP", "IPV6": "IPV6", "IPV4V6": "IPV4V6", "NON-IP": "Non-IP"}.get(pdp_type.upper())
        if pdp is None:
            raise ValueError(f"pdp_type must be IP, IPV6, IPV4V6 or Non-IP, not {pdp_type!r}")
        for label, value in (("apn", apn), ("username", username), ("password", password)):
            if '"' in value or _CONTROL_CHARS.search(value):
                raise ValueError(f"{label} must not contain quotes or control characters: {value!r}")
        if (username or password) and not (username and password):
            raise ValueError("give both username and password, or neither")
        command = f'AT*MCGDEFCONT="{pdp}","{apn}"'
        if username:
            command += f',"{username}","{password}"'
        await self._ensure_ready()
        async with self._init_lock:
            await self._cmd("AT+CFUN=0", limit=const.CFUN_TIMEOUT, priority=Priority.HIGH)
            self._registered.clear()
            try:
                await self._cmd(command, limit=const.PDP_TIMEOUT)
            finally:
                await self._radio_on()
            await self._wait_registered(self.options.registration_timeout)
        await self._refresh()

    async def set_psm(self, enabled: bool, tau_s: int | None = None, active_s: int | None = None) -> None:
        """Enable or disable PSM (``AT+CPSMS``) with the requested timers.

        The timers are encoded with :mod:`sim7020_core.psm`: the smallest representable duration at least
        as long as requested. ``None`` leaves a timer to the module's default. The network may grant other
        values; :attr:`ModemStatus.psm` shows what it granted after the next :meth:`refresh`.

        :raises ValueError: a timer is negative or above what can be encoded
        """
        if enabled:
            if tau_s is None and active_s is None:
                command = "AT+CPSMS=1"
            else:
                tau = f'"{encode_t3412(tau_s)}"' if tau_s is not None else ""
                active = f'"{encode_t3324(active_s)}"' if active_s is not None else ""
                command = f"AT+CPSMS=1,,,{tau},{active}"
        else:
            command = "AT+CPSMS=0"
        await self._ensure_ready()
        await self._cmd(command)
        with contextlib.suppress(AtCommandError):
            await self._cmd("AT+CPSMSTATUS=1")
        await self._refresh()

    async def set_retention(self, enabled: bool) -> None:
        """Keep (``True``) or drop (``False``) the module's sockets across PSM: ``AT+RETENTION=1/0``.

        The setting is module-wide: it applies to native sockets and CIP links alike (application note
        5.10). Nothing is sent when :attr:`retention` already has this value.

        :raises AtCommandError: the module refused the command (e.g. firmware without ``AT+RETENTION``)
        :raises AtTimeoutError: no answer in time
        """
        wanted = bool(enabled)
        if self._retention is wanted:
            return
        await self._ensure_ready()
        resets = self._reset_count
        await self._cmd(f"AT+RETENTION={int(wanted)}", limit=const.DEFAULT_TIMEOUT)
        if resets == self._reset_count:  # a reset meanwhile leaves it unknown
            self._retention = wanted

    async def read_retention(self) -> bool:
        """Ask the module whether it keeps sockets across PSM (``AT+RETENTION?`` → ``+RETENTION: <0|1>``).

        The answer is recorded in :attr:`retention` and returned. A module that answers ERROR (firmware
        without the command) has no retention: False is recorded and returned.

        :raises Sim7020Error: the answer has no ``+RETENTION: <0|1>`` line
        :raises AtTimeoutError: no answer in time
        """
        await self._ensure_ready()
        resets = self._reset_count
        try:
            response = await self._cmd("AT+RETENTION?", limit=const.STATUS_TIMEOUT)
        except AtCommandError as err:
            _LOGGER.debug("AT+RETENTION? not available (%s): no retention across PSM", err)
            value = False
        else:
            value = _parse_retention(response.lines)
        if resets == self._reset_count:
            self._retention = value
        return value

    async def wake(self) -> None:
        """Wake the module from PSM and wait (bounded) until it answers.

        Tries ``options.wake``, else the ``sim7020_wake_modem`` hook, else UART activity (``AT``).

        :raises ModemAsleepError: the module did not wake within ``options.psm_wake_timeout``
        """
        if self.state is not LinkState.ASLEEP:
            return
        triggered = await self._trigger_wake()
        if triggered is None:
            await self._uart_wake()
        limit = self.options.psm_wake_timeout
        try:
            async with asyncio.timeout(limit):
                while self.state is LinkState.ASLEEP:
                    awake = asyncio.ensure_future(self._awake.wait())
                    try:
                        async with asyncio.timeout(const.WAKE_PROBE_INTERVAL):
                            await asyncio.shield(awake)
                    except TimeoutError:
                        await self._uart_wake()
                    finally:
                        awake.cancel()
        except TimeoutError:
            raise ModemAsleepError(f"the module did not wake from PSM within {limit:g} s") from None

    async def _trigger_wake(self) -> bool | None:
        """Run ``options.wake`` or else the ``sim7020_wake_modem`` hook; None when neither exists."""
        if self.options.wake is not None:
            try:
                result = self.options.wake(self)
                if inspect.isawaitable(result):
                    async with asyncio.timeout(const.WAKE_CALLBACK_TIMEOUT):
                        result = await result
            except Exception as err:  # noqa: BLE001 - a broken wake callback must not hide the wait
                _LOGGER.warning("the wake callback failed: %r", err)
                return False
            return True if result is None else bool(result)
        try:
            result = self._pm.hook.sim7020_wake_modem(modem=self)
        except Exception:  # a plugin's hook wrapper: the implementations themselves are guarded
            _LOGGER.exception("sim7020_wake_modem failed")
            return False
        return None if result is None else bool(result)

    async def _uart_wake(self) -> None:
        """Poke the UART; an answer proves the module is awake even without ``EXIT PSM``."""
        try:
            response = await self._cmd(
                "AT", limit=const.WAKE_PROBE_TIMEOUT, priority=Priority.HIGH, check=False
            )
        except (AtTimeoutError, TransportError):
            return
        if response.final == "OK" and self.state is LinkState.ASLEEP:
            self._on_psm(False)

    async def reboot(self) -> None:
        """Reset the module (``AT+CFUN=1,1``) and re-initialise it. Connections are closed."""
        await self._ensure_ready()
        async with self._init_lock:
            self._set_state(LinkState.RECOVERING, "reboot requested")
            with contextlib.suppress(AtTimeoutError, AtCommandError):
                await self._cmd(
                    "AT+CFUN=1,1", limit=const.REBOOT_TIMEOUT, priority=Priority.HIGH, check=False
                )
            await self._module_was_reset("reboot requested")
            try:
                await self._initialize_locked(const.BOOT_SYNC_ATTEMPTS)
            except (AtTimeoutError, TransportError) as err:
                self._fatal(f"module did not come back after reboot: {err}")
                raise

    # ------------------------------------------------------------------ initialisation

    async def _open_link(self) -> None:
        link = await SerialLink.open(self.url, baudrate=self.baudrate)
        self._link = link
        link.add_lost_callback(self._on_link_lost)
        await self.engine.attach(link)

    async def _close_link(self) -> None:
        link, self._link = self._link, None
        with contextlib.suppress(Exception):
            await self.engine.detach()
        if link is not None:
            await link.close()

    async def _sync(self, attempts: int | None = None) -> None:
        """Send ``AT`` until the module answers (trying other line rates on a device path and fixing
        ours with ``AT+IPR``).

        :raises TransportError: no answer after ``attempts`` probes per rate
        """
        await self.engine.sync(
            attempts=const.MODEM_SYNC_ATTEMPTS if attempts is None else attempts, fix_rate=self.baudrate
        )

    async def _initialize_locked(self, sync_attempts: int | None = None) -> None:
        """Bring the module to a known state (caller holds ``_init_lock``).

        :param sync_attempts: ``AT`` probes before giving up (more while the module boots)
        """
        if self.state is not LinkState.CLOSED:
            self._ready.clear()
        await self._sync(sync_attempts)
        with contextlib.suppress(AtCommandError):
            await self._cmd("ATE0", limit=const.SHORT_TIMEOUT, priority=Priority.HIGH)
        with contextlib.suppress(AtCommandError):
            await self._cmd("AT+CMEE=1", limit=const.SHORT_TIMEOUT, priority=Priority.HIGH)
        await self._check_sim()
        self.info = await self._read_identity()
        for command in ("AT+CEREG=4", "AT+CPSMSTATUS=1"):
            try:
                await self._cmd(command, limit=const.SHORT_TIMEOUT, priority=Priority.HIGH)
            except AtCommandError:
                if command == "AT+CEREG=4":
                    with contextlib.suppress(AtCommandError):
                        await self._cmd("AT+CEREG=2", limit=const.SHORT_TIMEOUT, priority=Priority.HIGH)
        await self._wait_registered(self.options.registration_timeout)
        await self._refresh()
        self._watchdog_failures = 0
        self._reset_announced = False
        if self.state is not LinkState.CLOSED:
            self._set_state(LinkState.READY, "initialised")

    async def _sim_command(self, command: str) -> AtResponse:
        """A SIM-related command, retried while the SIM is busy (``+CME ERROR: 14``)."""
        retries = self.options.sim_busy_retries
        for attempt in range(retries + 1):
            try:
                return await self._cmd(command, limit=const.DEFAULT_TIMEOUT, priority=Priority.HIGH)
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
        state = parse_cpin((await self._sim_command("AT+CPIN?")).lines)
        if state == "NOT READY" and await self._radio_off():
            # The radio was left off (AT+CFUN=0, e.g. an interrupted APN change): the SIM is not
            # readable then. Switch it back on and look again.
            _LOGGER.info("radio is off (CFUN=0); switching it on")
            await self._radio_on()
            state = parse_cpin((await self._sim_command("AT+CPIN?")).lines)
        if state is not None and state != "READY":
            raise SimError(f"the SIM is not ready: +CPIN: {state} (a PIN/PUK is required or the SIM failed)")

    async def _radio_on(self) -> None:
        """``AT+CFUN=1``, then wait (bounded) until the SIM is ready: the ``+CPIN: READY`` URC, or
        ``AT+CPIN?`` saying so (the URC is optional on some firmware)."""
        async with self.engine.capture_urcs("+CPIN") as queue:
            await self._cmd("AT+CFUN=1", limit=const.CFUN_TIMEOUT, priority=Priority.HIGH)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(const.CPIN_READY_TIMEOUT):
                    while True:
                        with contextlib.suppress(TimeoutError):
                            async with asyncio.timeout(const.REGISTRATION_POLL_INTERVAL):
                                while not _is_cpin_ready((await queue.get()).line):
                                    pass
                                return
                        response = await self._cmd(
                            "AT+CPIN?", limit=const.SHORT_TIMEOUT, priority=Priority.HIGH, check=False
                        )
                        if parse_cpin(response.lines) == "READY":
                            return
            _LOGGER.info("the SIM was not reported ready within %g s of AT+CFUN=1", const.CPIN_READY_TIMEOUT)

    async def _radio_off(self) -> bool:
        try:
            response = await self._cmd("AT+CFUN?", limit=const.SHORT_TIMEOUT, priority=Priority.HIGH)
        except AtCommandError:
            return False
        value = find_value(response.lines, "+CFUN")
        return value is not None and value.strip() == "0"

    async def _read_identity(self) -> ModemInfo:
        async def read(command: str, *, sim: bool = False) -> str:
            try:
                if sim:
                    response = await self._sim_command(command)
                else:
                    response = await self._cmd(command, limit=const.SHORT_TIMEOUT, priority=Priority.HIGH)
            except AtCommandError as err:
                if isinstance(err.__cause__, AtCommandError) or not sim:
                    _LOGGER.debug("%s not available: %s", command, err)
                return ""
            return parse_identity(response.lines)

        return ModemInfo(
            manufacturer=await read("AT+CGMI"),
            model=await read("AT+CGMM"),
            revision=await read("AT+CGMR"),
            imei=await read("AT+CGSN"),
            imsi=await read("AT+CIMI", sim=True),
            iccid=await read("AT+CCID", sim=True),
        )

    async def _wait_registered(self, limit: float) -> bool:
        """Poll registration until registered or ``limit`` s (not an error: the state is reported)."""
        if limit <= 0:
            return self.status_registered
        try:
            async with asyncio.timeout(limit):
                while True:
                    reg = await self._read_registration()
                    if reg is not None:
                        self._note_registration(reg.registration)
                        if reg.registration.registered:
                            return True
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(const.REGISTRATION_POLL_INTERVAL):
                            await self._registered.wait()
        except TimeoutError:
            _LOGGER.info("not registered after %g s (%s); continuing", limit, self.status.registration)
            return False

    @property
    def status_registered(self) -> bool:
        """True when the last known registration is home or roaming."""
        return Registration(self.status.registration).registered

    def _note_registration(self, registration: Registration) -> None:
        if registration.registered:
            self._registered.set()
        else:
            self._registered.clear()
        if self.status.registration != registration.value:
            self._set_status(dataclasses.replace(self.status, registration=registration.value))

    # ------------------------------------------------------------------ URCs

    def _install_urc_handlers(self) -> None:
        if self._urc_removers:
            return
        handlers: dict[str, Callable[[Urc], None]] = {
            "+CEREG": self._on_reg_urc,
            "+CGREG": self._on_reg_urc,
            "+CPSMSTATUS": self._on_psm_urc,
            "+CPIN": self._on_cpin_urc,
            "RDY": self._on_boot_urc,
        }
        for prefix, handler in handlers.items():
            self._urc_removers.append(self.engine.add_urc_handler(prefix, handler))
        # Each plugin's mapping is checked and its handlers guarded by the plugin manager.
        for plugin_handlers in self._pm.hook.sim7020_register_urc_handlers(modem=self):
            for prefix, handler in (plugin_handlers or {}).items():
                self._urc_removers.append(self.engine.add_urc_handler(prefix, handler))

    def _remove_urc_handlers(self) -> None:
        while self._urc_removers:
            with contextlib.suppress(Exception):
                self._urc_removers.pop()()

    def _on_reg_urc(self, urc: Urc) -> None:
        reg = parse_reg_urc(urc.line)
        if reg is None:
            return
        self._note_registration(reg.registration)
        if reg.has_timers and self.status.psm.enabled:
            psm = dataclasses.replace(self.status.psm, tau_s=reg.tau_s, active_s=reg.active_s)
            self._set_status(dataclasses.replace(self.status, psm=psm))

    def _on_psm_urc(self, urc: Urc) -> None:
        entered = parse_cpsmstatus(urc.line)
        if entered is not None:
            self._on_psm(entered)

    def _on_psm(self, entered: bool) -> None:
        if self.state is LinkState.CLOSED:
            return
        if entered == (self.state is LinkState.ASLEEP):
            return
        if entered:
            self._awake.clear()
            # the UART stops answering: a command written just before will never get its answer
            self.engine.abort_pending("the module entered PSM")
            self._set_state(LinkState.ASLEEP, "entered PSM")
        else:
            self._awake.set()
            self._set_state(LinkState.READY, "left PSM")
        psm = dataclasses.replace(self.status.psm, state="asleep" if entered else "awake")
        self._set_status(dataclasses.replace(self.status, psm=psm))
        self._emit(PsmChanged(entered=entered, state=self.state, status=self.status))
        for transport in list(self._transports.values()):
            self._spawn(self._bounded(transport.on_psm(entered), f"telling {transport.name!r} of PSM"))

    def _on_cpin_urc(self, urc: Urc) -> None:
        if _is_cpin_ready(urc.line):
            self._on_boot_urc(urc)

    def _on_boot_urc(self, urc: Urc) -> None:
        """``RDY`` / ``+CPIN: READY`` with nobody waiting for it: the module may have rebooted."""
        if self._init_lock.locked() or self.state not in (LinkState.READY, LinkState.ASLEEP):
            return
        if urc.line.strip() == "RDY":  # only a boot prints RDY: what was in flight will never be answered
            self.engine.abort_pending("the module rebooted (RDY)")
        _LOGGER.info("boot URC %r: checking whether the module rebooted", urc.line)
        self._spawn(self._check_reboot(f"boot message {urc.line!r}"))

    async def _check_reboot(self, why: str) -> None:
        """Ask ``AT+CMEE?``: a module that forgot CMEE=1 was reset behind our back."""
        if self._init_lock.locked():
            return
        async with self._init_lock:
            if self.state not in (LinkState.READY, LinkState.ASLEEP):
                return
            try:
                lost = await self._settings_lost()
            except (AtTimeoutError, TransportError) as err:
                self._fatal(f"no answer after {why}: {err}")
                return
            if not lost:
                return
            await self._module_was_reset(f"module rebooted ({why})")
            try:
                await self._initialize_locked(const.BOOT_SYNC_ATTEMPTS)
            except (AtTimeoutError, TransportError) as err:
                self._fatal(f"re-initialisation after reboot failed: {err}")
            except Sim7020Error as err:
                _LOGGER.error("re-initialisation after reboot failed: %s", err)
                self._set_state(LinkState.DISCONNECTED, str(err))

    async def _settings_lost(self) -> bool:
        """True when the module no longer has our settings (``+CMEE: 1``), i.e. it was reset."""
        response = await self._cmd(
            "AT+CMEE?", limit=const.WATCHDOG_TIMEOUT, priority=Priority.HIGH, check=False
        )
        if response.final != "OK":
            return False
        value = find_value(response.lines, "+CMEE")
        return value is not None and value.strip() != "1"

    async def _module_was_reset(self, reason: str) -> None:
        """The module lost its state: tell subscribers and transports (connections are gone).

        Announced once per recovery episode (a retried port reopen is not another reboot)."""
        self._set_state(LinkState.RECOVERING, reason)
        self._retention = None  # the module may or may not have kept AT+RETENTION (NV on some firmware)
        self._reset_count += 1
        if self._reset_announced:
            return
        self._reset_announced = True
        self._emit(ModuleReset(reason=reason, state=self.state, status=self.status))
        self._registered.clear()
        if not self._awake.is_set():
            self._awake.set()
        for transport in list(self._transports.values()):
            await self._bounded(transport.on_modem_reset(), f"telling {transport.name!r} of the reset")

    # ------------------------------------------------------------------ readiness, PSM policy

    async def _ensure_ready(self) -> None:
        """Wait until commands can be sent (waking the module from PSM per ``psm_policy``)."""
        if self.state is LinkState.CLOSED:
            raise TransportError("the modem is closed")
        if self.state is LinkState.ASLEEP:
            if self.options.psm_policy == "fail":
                raise ModemAsleepError("the module is in PSM (psm_policy='fail')")
            await self.wake()
        if self.state is not LinkState.READY:
            limit = const.READY_WAIT_TIMEOUT
            try:
                async with asyncio.timeout(limit):
                    await self._ready.wait()
            except TimeoutError:
                raise TransportError(
                    f"the modem is {self.state.value}, not ready after {limit:g} s"
                ) from None
            if self.closed:
                raise TransportError("the modem is closed")

    async def _ensure_network(self, what: str) -> None:
        """Refuse network services when the module is known to have no service (checked afresh).

        :raises NotRegisteredError: not registered, searching or denied (an unknown state is let through)
        """
        if self.status.registration not in _NO_SERVICE:
            return
        reg = await self._read_registration()
        if reg is not None:
            self._note_registration(reg.registration)
        if self.status.registration in _NO_SERVICE:
            raise NotRegisteredError(
                f"cannot {what}: the module is not registered on the network ({self.status.registration})"
            )

    # ------------------------------------------------------------------ watchdog, polling, recovery

    def _start_background(self) -> None:
        if self.options.watchdog_interval is not None:
            self._spawn(self._watchdog_loop(self.options.watchdog_interval), "watchdog")
        if self.options.poll_interval is not None:
            self._spawn(self._poll_loop(self.options.poll_interval), "poll")

    def _background_allowed(self) -> bool:
        """Background traffic (watchdog, polling) only on a ready module that may not sleep: UART
        traffic keeps a module awake, so with PSM enabled the module is left alone (commands that go
        unanswered still count as watchdog failures)."""
        return (
            self.state is LinkState.READY
            and not self._init_lock.locked()
            and not self.status.psm.enabled
            and not self.engine.in_data_mode  # the line carries a transparent connection's bytes
        )

    async def _watchdog_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if self._background_allowed():
                await self._watchdog_probe()

    async def _watchdog_probe(self) -> None:
        try:
            lost = await self._settings_lost()
        except (AtTimeoutError, TransportError) as err:
            _LOGGER.debug("watchdog probe failed: %s", err)  # counted by _cmd
            return
        except (DataModeError, CommandInterruptedError) as err:  # data mode began / PSM or reboot meanwhile
            _LOGGER.debug("watchdog probe skipped: %s", err)
            return
        if lost:
            self._spawn(self._check_reboot("settings lost"))

    def _count_timeout(self, command: str) -> None:
        """One fatal-error path for silence: unanswered commands (watchdog probes or any other)
        while the module should be awake count; ``watchdog_max_failures`` in a row start recovery."""
        if self.state is not LinkState.READY or self._init_lock.locked():
            return  # asleep, recovering, initialising: silence is expected or handled there
        self._watchdog_failures += 1
        _LOGGER.info(
            "no answer to %s (%d/%d in a row)",
            command,
            self._watchdog_failures,
            self.options.watchdog_max_failures,
        )
        if self._watchdog_failures >= self.options.watchdog_max_failures:
            self._fatal(f"watchdog: {self._watchdog_failures} commands unanswered in a row")

    async def _poll_loop(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            if not self._background_allowed():
                continue
            try:
                await self._refresh()
            except Sim7020Error as err:
                _LOGGER.debug("status poll failed: %s", err)

    def _on_link_lost(self, exc: Exception | None) -> None:
        self._fatal(f"link lost: {exc}" if exc else "link closed by the other side")

    def _fatal(self, reason: str) -> None:
        """The one fatal-error path: hand over to the reconnect logic."""
        if self.state is LinkState.CLOSED or self._reconnect.active:
            return
        _LOGGER.warning("modem %s: %s", self.url, reason)
        self._ready.clear()
        if not self.options.auto_recover:
            self._set_state(LinkState.DISCONNECTED, reason)
            return
        self._set_state(LinkState.RECOVERING, reason)
        self._reset_announced = False
        self._reconnect.start()

    async def _recover_attempt(self) -> None:
        """One recovery attempt: resync; else reset the module; else reopen the port. Raises on failure
        (the reconnect logic retries with backoff); a SIM error ends recovery (retrying cannot help)."""
        async with self._init_lock:
            if self.state is LinkState.CLOSED:
                return
            try:
                await self._recover_locked()
            except SimError as err:
                _LOGGER.error("modem %s: %s; giving up", self.url, err)
                self._set_state(LinkState.DISCONNECTED, str(err))

    async def _recover_locked(self) -> None:
        link_ok = self._link is not None and self._link.is_open
        if link_ok and self._reconnect.tries == 0:
            try:
                await self._sync(const.RECOVERY_SYNC_ATTEMPTS)
            except (AtTimeoutError, TransportError):
                _LOGGER.info("resync failed; resetting the module with AT+CFUN=1,1")
            else:
                if await self._settings_lost():
                    await self._module_was_reset("module rebooted")
                await self._initialize_locked()
                return
            reset_ok = False
            with contextlib.suppress(Sim7020Error):
                response = await self._cmd(
                    "AT+CFUN=1,1", limit=const.SYNC_ATTEMPT_TIMEOUT, priority=Priority.HIGH, check=False
                )
                reset_ok = response.final == "OK"
            try:
                await self._sync(const.BOOT_SYNC_ATTEMPTS)
            except (AtTimeoutError, TransportError):
                _LOGGER.info("no answer after the reset; reopening %s", self.url)
            else:
                if reset_ok or await self._settings_lost():
                    await self._module_was_reset("module reset by recovery")
                await self._initialize_locked()
                return
        # Reopen the port: whatever the module still holds, our view of its connections is gone.
        await self._close_link()
        await self._open_link()
        await self._module_was_reset("port reopened")
        await self._initialize_locked()

    def _on_recover_error(self, err: BaseException) -> None:
        if self.state is not LinkState.CLOSED:
            self._set_state(LinkState.RECOVERING, f"recovery failed: {err}")

    # ------------------------------------------------------------------ plumbing

    async def _cmd(
        self,
        command: str,
        *,
        limit: float | None = None,
        priority: Priority = Priority.NORMAL,
        check: bool = True,
        **kwargs: Any,
    ) -> AtResponse:
        try:
            response = await self.engine.command(
                command,
                timeout=const.DEFAULT_TIMEOUT if limit is None else limit,
                priority=priority,
                check=check,
                **kwargs,
            )
        except AtTimeoutError:
            self._count_timeout(command)
            raise
        except AtCommandError:
            self._watchdog_failures = 0  # the module answered
            raise
        self._watchdog_failures = 0
        return response

    def _set_state(self, state: LinkState, reason: str = "") -> None:
        if state is self.state:
            return
        previous, self.state = self.state, state
        if state is LinkState.READY:
            self._ready.set()
        else:
            self._ready.clear()
        if state is LinkState.CLOSED:
            self._ready.set()  # release waiters: they see CLOSED and fail
        _LOGGER.debug("modem %s: %s → %s (%s)", self.url, previous.value, state.value, reason)
        self._emit(StateChanged(state=state, previous=previous, reason=reason, status=self.status))
        if self.status.psm.state != ("asleep" if state is LinkState.ASLEEP else "awake"):
            psm = dataclasses.replace(
                self.status.psm, state="asleep" if state is LinkState.ASLEEP else "awake"
            )
            self._set_status(dataclasses.replace(self.status, psm=psm))

    def _set_status(self, status: ModemStatus) -> None:
        if status == self.status:
            return
        self.status = status
        self._emit(StatusChanged(status=status, state=self.state))

    def _emit(self, event: ModemEvent) -> None:
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception:
                _LOGGER.exception("modem subscriber %r failed on %r", callback, event)
        try:
            self._pm.hook.sim7020_modem_state_changed(modem=self, event=event)
        except Exception:  # a plugin's hook wrapper: the implementations themselves are guarded
            _LOGGER.exception("sim7020_modem_state_changed failed on %r", event)

    def _spawn(self, coro: Coroutine[Any, Any, Any], name: str | None = None) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("modem background task %s failed", task.get_name(), exc_info=task.exception())

    async def _cancel_background(self) -> None:
        current = asyncio.current_task()
        tasks = [t for t in self._tasks if t is not current]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=const.CLOSE_TIMEOUT)

    @staticmethod
    async def _bounded(awaitable: Awaitable[Any], what: str) -> None:
        try:
            async with asyncio.timeout(const.TRANSPORT_NOTIFY_TIMEOUT):
                await awaitable
        except Exception as err:  # noqa: BLE001 - a misbehaving plugin must not break the modem
            _LOGGER.warning("%s failed: %r", what, err)

    def __repr__(self) -> str:
        return f"<Modem {self.url} {self.state.value}>"


#: Meanings of ``+CDNSGIP: 0,<err>`` (Kampi ``sim7020_dns_defs.h``).
DNS_ERRORS: dict[int, str] = {3: "network error", 8: "DNS common error (unknown host?)"}


def unsafe_reason(command: str) -> str | None:
    """Why ``command`` would break the driver's session, or None when it is safe to send."""
    text = re.sub(r"\s+", "", command.upper())
    text = text.removeprefix("AT")
    for part in text.split(";"):
        for pattern, reason in UNSAFE_COMMANDS:
            if pattern.search(part):
                return reason
    return None


def _check_host(host: str) -> str:
    if not isinstance(host, str):
        raise TypeError(f"host must be a str, not {type(host).__name__}")
    name = host.strip()
    if not name:
        raise ValueError("empty host name")
    if len(name) > 253 or '"' in name or _CONTROL_CHARS.search(name) or " " in name:
        raise ValueError(f"not a valid host name: {host!r}")
    return name


def _check_port(port: int) -> None:
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"port must be an integer from 1 to 65535, not {port!r}")


def _parse_retention(lines: list[str]) -> bool:
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


def _is_cpin_ready(line: str) -> bool:
    upper = line.upper()
    return "READY" in upper and "NOT" not in upper


def _is_sim_busy(err: AtCommandError) -> bool:
    return err.cme_code == 14 or "SIM BUSY" in (err.cme_text or err.final).upper()


def _is_sim_missing(err: AtCommandError) -> bool:
    text = (err.cme_text or err.final).upper()
    return err.cme_code in (10, 13, 15) or "NOT INSERTED" in text or "SIM FAILURE" in text
