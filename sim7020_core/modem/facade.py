"""The modem: one SIM7020 module on a serial link, as users, plugins and integrations see it.

::

    async with await Modem.connect("socket://127.0.0.1:7020") as modem:
        print(modem.info, await modem.refresh())
        print(await modem.resolve("example.com"), await modem.ping("10.0.0.1", count=2))

:class:`Modem` is a façade over focused parts, each in its own module of this package:

- :mod:`.core`: the shared state, state changes and events, commands that count towards the fatal path;
- :mod:`.session`: the port, syncing with the module, initialisation;
- :mod:`.status_reader`: reading the status;
- :mod:`.psm_control`: PSM as a state, waking the module, readiness for commands;
- :mod:`.supervisor`: watchdog, polling, reboot detection and recovery through one fatal-error path;
- :mod:`.urcs`: the URC handlers (the modem's and the plugins');
- :mod:`.services`: raw commands (an allow-list, :mod:`.checks`), DNS, ping, connections, APN, PSM
  settings, retention;
- :mod:`.settings`: the session settings, re-applied after every initialisation and every wake;
- :mod:`.transports`: the transports the modem has used;
- :mod:`.usage`: data usage, the running totals of payload bytes (kept in ``ModemOptions.usage_file``);
- :mod:`.checks`: what may go into an AT command (values, raw commands).

Life cycle (:attr:`Modem.state`, a :class:`~sim7020_core.models.LinkState`):

- ``connecting`` → ``ready`` once :meth:`Modem.connect` has synced (``AT`` until ``OK``; a module left in
  transparent data mode is brought back with ``+++``), applied the session settings (``ATE0``,
  ``AT+CMEE=1``, ``AT+CEREG=4``, ``AT+CPSMSTATUS=1``), checked the SIM (retrying while it is busy;
  :class:`SimError` when it is missing or locked), read the identity, waited (bounded, not fatal) for
  network registration and released what a previous process left on the module (sockets, CIP links:
  each transport's ``reclaim``);
- ``asleep`` while the module is in PSM (``+CPSMSTATUS: "ENTER PSM"`` … ``"EXIT PSM"``). PSM is a state,
  not a failure: commands wake the module and wait (``psm_policy="wait"``, bounded) or fail at once with
  :class:`ModemAsleepError` (``psm_policy="fail"``). Background polling never wakes it. After a wake the
  session settings are applied again before anything else, and data waits until the module is registered
  again (bounded; real modules drop what is sent before);
- ``recovering`` after the watchdog (a periodic ``AT+CMEE?`` with a failure counter) gave up, the port
  was lost, or the module rebooted (``RDY``/``+CPIN: READY`` out of the blue, or its settings were lost):
  resync → ``AT+CFUN=1,1`` → reopen the port with capped backoff (:class:`ReconnectLogic`), then
  re-initialise. Transports are told (``on_modem_reset``) so connection owners learn their connections
  are gone;
- ``closed`` after :meth:`Modem.close`.

Subscribers (:meth:`Modem.subscribe`) receive a :data:`~sim7020_core.events.ModemEvent` for each change of
state, status, PSM and :attr:`Modem.problem` (what needs a human), each module reset and each chunk of
received data; the pluggy hook ``sim7020_modem_state_changed`` gets the same events, from the first one on.

Every wait is bounded by a named constant in :mod:`sim7020_core.const` (section "modem manager").
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .. import const
from ..events import DataReceived, ModemEvent
from ..exceptions import TransportError
from ..models import DataUsage, LinkState, ModemInfo, ModemProblem, ModemStatus, NetworkSettings, PingReply
from .core import ModemCore
from .network import NetworkControl
from .options import ModemOptions
from .psm_control import PsmControl
from .services import Services
from .session import Session
from .settings import SessionSettings
from .status_reader import StatusReader
from .supervisor import Supervisor
from .transports import TransportSet
from .urcs import UrcWiring
from .usage import UsageMeter

if TYPE_CHECKING:
    from ..at.engine import AtEngine
    from ..connection import Connection, Server, Transport
    from ..link import SerialLink
    from ..plugins import PluginManager

_LOGGER = logging.getLogger(__name__)


class Modem:
    """One SIM7020 module on a serial link. Build it with :meth:`connect`.

    :ivar url: the device path or pyserial URL
    :ivar baudrate: the line rate of a device path
    :ivar options: its :class:`ModemOptions`
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
        core = ModemCore(url, baudrate=baudrate, options=self.options, plugins=plugin_manager, modem=self)
        self._core = core
        self._status = StatusReader(core)
        self._transports = TransportSet(core)
        self._settings = SessionSettings(core, self._transports)
        self._psm = PsmControl(core, self._transports, self._status, self._settings)
        self._session = Session(core, self._status, self._settings)
        self._network = NetworkControl(core, self._status, self._session)
        self._supervisor = Supervisor(
            core, self._session, self._status, self._psm, self._transports, network=self._network
        )
        self._urcs = UrcWiring(core, self._status, self._psm, self._supervisor)
        self._services = Services(
            core, self._status, self._psm, self._session, self._transports, network=self._network
        )
        self._usage = UsageMeter(core, self.options.usage_file)

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
            from ..plugins import async_make_plugin_manager

            plugin_manager = await async_make_plugin_manager()
        modem = cls(url, baudrate=baudrate, options=options, plugin_manager=plugin_manager)
        try:
            await modem._open()
        except BaseException:
            await modem.close()
            raise
        modem._supervisor.start()
        return modem

    async def _open(self) -> None:
        core = self._core
        await self._usage.load()
        await self._session.open_link()
        async with core.init_lock:
            # URC handlers (ours and the plugins') first: every URC of the initialisation reaches them.
            self._urcs.install()
            try:
                await self._session.sync()
            except TransportError:
                # A silent module may still be in the data mode a previous process left it in …
                if not await self._session.leave_stale_data_mode():
                    # … or asleep in PSM: wake it by outside means, if we have any.
                    if await self._psm.trigger_wake() is None:
                        raise
                    _LOGGER.info("no answer from %s; woke it with the wake callback/hook, retrying", self.url)
                await self._session.sync(const.BOOT_SYNC_ATTEMPTS)
            await self._supervisor.initialise()

    async def __aenter__(self) -> Modem:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Stop background work, close connections and the port (idempotent, bounded)."""
        core = self._core
        if core.state is LinkState.CLOSED:
            return
        core.set_state(LinkState.CLOSED, "closed")
        await self._supervisor.stop()
        await core.cancel_background()
        await self._transports.close()
        await self._usage.close()  # after the connections: their last bytes are in the file
        self._urcs.remove()
        await core.bounded(self._session.close_link(), "closing the link")
        core.awake.set()

    # ------------------------------------------------------------------ what it is

    @property
    def engine(self) -> AtEngine:
        """The :class:`~sim7020_core.at.engine.AtEngine` (transports issue their commands on it)."""
        return self._core.engine

    @property
    def info(self) -> ModemInfo:
        """Identity read at initialisation."""
        return self._core.info

    @property
    def status(self) -> ModemStatus:
        """The last known :class:`~sim7020_core.models.ModemStatus`."""
        return self._core.status

    @property
    def state(self) -> LinkState:
        """The :class:`~sim7020_core.models.LinkState`."""
        return self._core.state

    @property
    def plugins(self) -> PluginManager:
        """The plugin manager of this modem's transports and hooks (given to or built by :meth:`connect`)."""
        return self._core.plugins

    @property
    def transports(self) -> Mapping[str, Transport]:
        """The transports this modem has used so far, by name (read-only; built on first use)."""
        return self._transports.used

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._core.closed

    @property
    def link(self) -> SerialLink | None:
        """The open serial link (None while reconnecting or closed)."""
        return self._core.link

    @property
    def retention(self) -> bool | None:
        """Whether the module keeps its sockets (native and CIP) across PSM (``AT+RETENTION``).

        The value last set with :meth:`set_retention` or read with :meth:`read_retention` (or sent raw with
        :meth:`command`); None while not known: before the first of them and again after each module reset
        (reboot, recovery, reopened port), when the module may or may not have kept the setting.
        """
        return self._services.retention

    @property
    def problem(self) -> ModemProblem | None:
        """What needs a human now (None when nothing does): the SIM is missing or locked, the module stays
        silent through every recovery step, connections left on the module cannot be released, the network
        denies the registration. A :class:`~sim7020_core.events.ProblemChanged` event tells each change;
        it clears itself once the cause is gone."""
        return self._core.problem

    @property
    def status_registered(self) -> bool:
        """True when the last known registration is home or roaming."""
        return self._status.registered

    # ------------------------------------------------------------------ events

    def subscribe(self, callback: Callable[[ModemEvent], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every :data:`~sim7020_core.events.ModemEvent`; returns a function that
        unsubscribes.

        Callbacks run in the event loop and must not block; an exception is logged and ignored.
        """
        return self._core.subscribe(callback)

    def data_received(self, connection: Connection, data: bytes) -> None:
        """Tell plugins (``sim7020_data_received``) and subscribers (a ``DataReceived`` event) that ``data``
        arrived on ``connection`` (transports call it right after the data was queued for its owner)."""
        core = self._core
        self._usage.count(received=len(data))  # first: whoever looks at usage on this event sees the chunk
        try:
            core.plugins.hook.sim7020_data_received(connection=connection, data=data)
        except Exception:  # a plugin's hook wrapper: the implementations themselves are guarded
            _LOGGER.exception("sim7020_data_received failed")
        core.emit(DataReceived(connection=connection, data=data, state=core.state, status=core.status))

    def data_sent(self, connection: Connection, size: int) -> None:
        """Count ``size`` payload bytes sent on ``connection`` in :attr:`usage` (connections call it after
        every send that succeeded)."""
        self._usage.count(sent=size)

    @property
    def usage(self) -> DataUsage:
        """Payload bytes sent and received by all the connections of this modem: running totals, not reset
        by module reboots, and kept across restarts in ``ModemOptions.usage_file`` when it is set (else they
        start from zero with each :class:`Modem`). Counted by the library for every transport (sends that
        succeeded, data that arrived); a :class:`~sim7020_core.events.UsageChanged` event tells changes, at
        most about once a second. Per connection: :attr:`Connection.usage
        <sim7020_core.connection.Connection.usage>`."""
        return self._usage.usage

    async def ready_for_data(self) -> None:
        """Wait until data may go out (connections call it before every send): the module is awake (woken
        from PSM per ``psm_policy``), has its session settings back and, right after a wake, is registered
        again (bounded by :data:`const.WAKE_REGISTRATION_TIMEOUT`: real modules drop what is sent before).

        :raises NotRegisteredError: not registered again in time after a wake
        :raises ModemAsleepError: asleep with ``psm_policy="fail"``, or it did not wake in time
        :raises TransportError: the modem is closed, or not ready in time
        """
        core = self._core
        if core.state is LinkState.READY and core.settled.is_set() and core.rejoined.is_set():
            return
        await self._psm.ready_for_data()

    # ------------------------------------------------------------------ status

    async def refresh(self) -> ModemStatus:
        """Query the module and return the fresh :class:`ModemStatus` (subscribers see a change)."""
        await self._psm.ensure_ready()
        return await self._status.refresh()

    # ------------------------------------------------------------------ services

    async def command(
        self,
        command: str,
        timeout: float | None = None,  # noqa: ASYNC109 - part of the public API
        *,
        allow_unsafe: bool = False,
    ) -> list[str]:
        """Send a raw AT command and return its information lines.

        :param command: e.g. ``"AT+CSQ"`` (no CR; one line)
        :param timeout: bound on the answer (default :data:`const.USER_COMMAND_TIMEOUT`)
        Without ``allow_unsafe`` an allow-list applies (:mod:`sim7020_core.modem.checks`): reading anything
        (``AT+X?``, ``AT+X=?``, plain queries such as ``AT+CSQ``) and setting only what cannot break the
        session or the library's view of it. Settings the library models (PSM, eDRX, APN, bands, operator,
        attach, PDP context, sockets and CIP links, retention, DNS, ping) are refused naming the API to use
        instead; so are the driver's own session settings (echo, ``AT+CMEE``, ``AT+CEREG``,
        ``AT+CPSMSTATUS``) and whatever is not on the list. Chained commands (``AT+CSQ;+CGATT?``,
        ``ATE0&F``) are checked one by one.

        :param allow_unsafe: send the command without checking it (you own the consequences)
        :raises ValueError: not a single AT command line
        :raises CommandNotAllowedError: refused by the allow-list (the message says why and what to use)
        :raises AtCommandError: the module answered ERROR / +CME ERROR
        :raises AtTimeoutError: no answer in time
        """
        return await self._services.command(command, timeout, allow_unsafe=allow_unsafe)

    async def resolve(self, host: str) -> list[str]:
        """Resolve ``host`` with the module's DNS (``AT+CDNSGIP``); IP literals are returned as they are.

        :raises ValueError: ``host`` is empty or not a plausible host name
        :raises Sim7020Error: the module's DNS failed (``+CDNSGIP: 0,<err>``; the message names the host)
        :raises AtTimeoutError: no result within :data:`const.CDNSGIP_TIMEOUT`
        :raises NotRegisteredError: the module is known to have no network service
        """
        return await self._services.resolve(host)

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
        return await self._services.ping(host, count, size=size, timeout=timeout)

    async def open_connection(
        self, protocol: str, host: str, port: int, *, transport: str = "native", **options: Any
    ) -> Connection:
        """Open a data connection through ``transport`` (host names are resolved first).

        :param protocol: ``"udp"`` or ``"tcp"``
        :param transport: ``native``, ``cip``, ``transparent``, ``udp_extended`` or a plugin's name
        :raises PluginError: no such transport (the message lists the available ones)
        :raises NotRegisteredError: the module is known to have no network service
        """
        return await self._services.open_connection(protocol, host, port, transport=transport, **options)

    async def listen(self, port: int, *, transport: str = "native", **options: Any) -> Server:
        """Listen for TCP clients on ``port`` through ``transport`` (if it has a server mode)."""
        return await self._services.listen(port, transport=transport, **options)

    async def set_apn(self, apn: str, pdp_type: str = "IP", username: str = "", password: str = "") -> None:
        """Configure the APN (application note 3.2): radio off, ``AT*MCGDEFCONT``, radio on, wait for the
        SIM and the network. The radio is switched back on even when the APN is refused.

        :raises ValueError: a quote or control character in an argument, or an unknown ``pdp_type``
        """
        await self._services.set_apn(apn, pdp_type, username, password)

    async def set_psm(self, enabled: bool, tau_s: int | None = None, active_s: int | None = None) -> None:
        """Enable or disable PSM (``AT+CPSMS``) with the requested timers.

        The timers are encoded with :mod:`sim7020_core.psm`: the smallest representable duration at least
        as long as requested. ``None`` leaves a timer to the module's default. The network may grant other
        values: :attr:`ModemStatus.psm` shows its grant (``granted``) as soon as the module reports it (this
        waits, bounded, for the report), and the request in ``requested_tau_s``/``requested_active_s``
        (docs/status_formats.md).

        :raises ValueError: a timer is negative or above what can be encoded
        """
        await self._services.set_psm(enabled, tau_s, active_s)

    async def set_retention(self, enabled: bool) -> None:
        """Keep (``True``) or drop (``False``) the module's sockets across PSM: ``AT+RETENTION=1/0``.

        The setting is module-wide: it applies to native sockets and CIP links alike (application note
        5.10). Nothing is sent when :attr:`retention` already has this value.

        :raises AtCommandError: the module refused the command (e.g. firmware without ``AT+RETENTION``)
        :raises AtTimeoutError: no answer in time
        """
        await self._services.set_retention(enabled)

    async def read_retention(self) -> bool:
        """Ask the module whether it keeps sockets across PSM (``AT+RETENTION?`` → ``+RETENTION: <0|1>``).

        The answer is recorded in :attr:`retention` and returned. A module that answers ERROR (firmware
        without the command) has no retention: False is recorded and returned.

        :raises Sim7020Error: the answer has no ``+RETENTION: <0|1>`` line
        :raises AtTimeoutError: no answer in time
        """
        return await self._services.read_retention()

    async def read_clock(self) -> datetime.datetime:
        """The module's clock (``AT+CCLK?``) as a timezone-aware datetime.

        Both forms real modules print are read: unquoted with a 2-digit year (SIM7020:
        ``+CCLK: 24/04/30,07:49:36+12``) and quoted with a 4-digit year (SIM7028); the zone is in
        quarter hours (``+12`` = UTC+3). The module keeps network time only if the network sends it.

        :raises Sim7020Error: the answer is not a date and time (the message quotes it)
        :raises AtCommandError: the module refused the command
        :raises AtTimeoutError: no answer in time
        """
        return await self._services.read_clock()

    async def wake(self) -> None:
        """Wake the module from PSM and wait (bounded) until it answers.

        Tries ``options.wake``, else the ``sim7020_wake_modem`` hook, else UART activity (``AT``).

        :raises ModemAsleepError: the module did not wake within ``options.psm_wake_timeout``
        """
        await self._psm.wake()

    async def reboot(self) -> None:
        """Reset the module (``AT+CFUN=1,1``) and re-initialise it. Connections are closed."""
        await self._supervisor.reboot()

    # ------------------------------------------------------------------ kept network settings

    @property
    def network_settings(self) -> NetworkSettings:
        """The network settings the library keeps for this modem (:class:`NetworkSettings`): those of
        ``ModemOptions.network``, updated by each of :meth:`set_apn`, :meth:`set_psm`, :meth:`set_edrx`,
        :meth:`set_bands`, :meth:`set_operator` and :meth:`set_dns_servers`. After every module reset
        (reboot, recovery) each is read back from the module and applied again where it was lost; the APN
        with the application note's chapter 3.2 sequence, and only when the module's differs. None fields
        are left to the module."""
        return self._services.network_settings

    async def set_edrx(self, enabled: bool, cycle_s: float | None = None) -> None:
        """Request eDRX (``AT+CEDRXS=1,5,"<bits>"``) or switch it off (``AT+CEDRXS=0``).

        The network decides: :attr:`ModemStatus.edrx` shows the request next to the granted cycle and
        paging time window (``AT+CEDRXRDP``). Kept and applied again after a module reset.

        :param cycle_s: the cycle, one of 20.48, 40.96, 81.92, 163.84, 327.68, 655.36, 1310.72, 2621.44,
            5242.88, 10485.76 s (3GPP TS 24.008, NB-S1 mode); None: the module's default
        :raises ValueError: ``cycle_s`` is not one of these (the message lists them)
        """
        await self._services.set_edrx(enabled, cycle_s)

    async def set_bands(self, bands: Sequence[int]) -> None:
        """Lock the module to ``bands`` (``AT+CBAND=…``); empty: every band the module supports. The module
        registers again (this waits, bounded by ``registration_timeout``). Kept and applied again after a
        module reset.

        :raises ValueError: a band the module's variant does not support (the message lists those it does)
        """
        await self._services.set_bands(bands)

    async def set_operator(self, operator: str) -> None:
        """Select the network: ``"auto"`` (``AT+COPS=0``) or a numeric MCCMNC such as ``"46001"``
        (``AT+COPS=1,2,"46001"``, manual). Waits (bounded) for the registration. Kept and applied again after
        a module reset.

        :raises ValueError: neither ``"auto"`` nor 5-6 digits
        :raises AtCommandError: the module refused (e.g. that network is not available)
        """
        await self._services.set_operator(operator)

    async def set_dns_servers(self, servers: Sequence[str]) -> None:
        """Fallback DNS servers (at most two IPv4 addresses) for networks that hand out none: applied with
        ``AT+CDNSCFG`` when ``AT+CDNSCFG?`` shows ``0.0.0.0``, now and after every module reset; servers the
        network handed out are left in place. :attr:`ModemStatus.dns_servers` shows those in effect.

        :raises ValueError: not IPv4 addresses, or more than two
        """
        await self._services.set_dns_servers(servers)

    def __repr__(self) -> str:
        return f"<Modem {self.url} {self._core.state.value}>"


__all__ = ["Modem"]
