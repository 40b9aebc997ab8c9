"""The MQTT bridge daemon: one :class:`ModemBridge` per configured modem, all in one process.

Per modem, under ``<base_topic>/<modem id>/``:

* ``availability``: ``online`` (retained, republished on every connect) / ``offline`` (the retained will);
* ``state``: retained JSON of :meth:`ModemStatus.as_dict` (``cell``: the serving cell and its neighbours)
  plus ``link`` (the LinkState), ``modem_id``, ``info`` (identity), ``usage`` (the modem's data usage,
  kept in ``<state_dir>/usage-<modem id>.json``) and ``problem`` (what needs an operator, see
  :mod:`.problems`: the bridge's own, why the modem cannot be opened, and :attr:`Modem.problem
  <sim7020_core.modem.Modem.problem>`; null when all is well), published when it changes (``updated``: when
  it last did) and on every connect;
* ``cmd/<ping|dns|send|at>``: requests (see :mod:`.commands`);
* Home Assistant device discovery (see :mod:`.discovery`), republished on HA's birth message;
* routes (see :mod:`.routes`), durable through the sqlite queue in ``state_dir``.

Each modem talks to the broker over two connections: a clean *control* session (commands, state,
availability with the last will, discovery) and, when the modem has routes, a persistent *data* session
(route uplinks, acknowledged only once stored, and downlinks). While uplinks cannot be stored (a full disk)
they stay unacknowledged and fill the data session's in-flight window, which stalls that session only:
commands keep their answers. docs/bridge.md ("Two connections per modem") explains the choice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import functools
import json
import logging
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..events import DataReceived, ModemEvent, ProblemChanged
from ..exceptions import ConfigError, PluginError, Sim7020Error, describe_error
from ..models import DataUsage, LinkState, ModemInfo, ModemProblem, ModemStatus, NetworkSettings
from ..reconnect import Backoff
from .commands import CommandHandler
from .config import BridgeConfig, ModemConfig
from .discovery import discovery_payload, discovery_topic
from .mqtt import MQTT_RECEIVE_MAXIMUM, IncomingMessage, MqttClient, MqttError, MqttRefusedError
from .problems import ProblemLog
from .queue import QUEUE_RETRY_MAX, QUEUE_RETRY_MIN, DurableQueue, QueueError, describe_storage_error
from .routes import RouteRunner
from .state_dir import check_state_file, open_state_file, prepare_state_dir

if TYPE_CHECKING:
    from ..plugins import PluginManager

_LOGGER = logging.getLogger(__name__)

QUEUE_FILE = "queue.sqlite3"
LOCK_FILE = "bridge.lock"
#: Bound on opening a modem (initialisation and registration included); retried with backoff after.
MODEM_CONNECT_TIMEOUT = 120.0
#: Problem sources of a modem (:class:`ProblemLog`): why it cannot be opened; what the library reports.
OPEN_PROBLEM = "modem connection"
MODEM_PROBLEM = "modem"
MODEM_RETRY_MIN = 1.0
MODEM_RETRY_MAX = 60.0
#: Bound on closing a modem at shutdown.
MODEM_CLOSE_TIMEOUT = 10.0
#: Delay before republishing discovery and state after Home Assistant's birth message.
HA_BIRTH_REPUBLISH_DELAY = 0.5
#: Bound on waiting for the broker to acknowledge the final publishes at shutdown.
SHUTDOWN_PUBLISH_TIMEOUT = 5.0
#: Largest uplink message a route stores when its transport sets no smaller bound (bytes, after decoding).
MAX_UPLINK_BYTES = 1024 * 1024

ModemFactory = Callable[[ModemConfig, "PluginManager"], Awaitable[Any]]


def usage_file_path(state_dir: Path, modem_id: str) -> Path:
    """Where the bridge keeps a modem's data usage (``ModemOptions.usage_file``): ``usage-<id>.json`` in
    the state directory (modem ids are letters, digits, ``_`` and ``-``: a plain file name)."""
    return state_dir / f"usage-{modem_id}.json"


class BridgeError(Sim7020Error):
    """The bridge cannot start (state directory locked, broker refused us …)."""


def payload_limits(plugins: PluginManager) -> dict[str, int | None]:
    """Transport name → the largest payload one send accepts (``Capabilities.max_payload``; None: any)."""
    return {name: cls.capabilities.max_payload for name, cls in plugins.transports.items()}


class EmulatedModemFactory:
    """Opens configured modems; ``device: emulator`` starts a built-in emulated modem first (kept running).

    :param state_dir: the bridge's state directory: each modem keeps its data usage there
        (:func:`usage_file_path`); None keeps none
    """

    def __init__(self, state_dir: Path | None = None) -> None:
        self._emulators: dict[str, Any] = {}
        self._urls: dict[str, str] = {}
        self.state_dir = state_dir

    async def __call__(self, modem_cfg: ModemConfig, plugins: PluginManager) -> Any:
        from ..modem import Modem, ModemOptions

        url = modem_cfg.device
        if url == "emulator":
            emu = self._emulators.get(modem_cfg.id)
            if emu is None:
                from ..emulator import Emulator

                settings = dict(modem_cfg.options.get("emulator") or {})  # e.g. {hosts: {...}, imei: ...}
                emu = Emulator(**settings)
                host, port = await emu.start_tcp("127.0.0.1", 0)
                self._urls[modem_cfg.id] = f"socket://{host}:{port}"
                self._emulators[modem_cfg.id] = emu
                _LOGGER.info("modem %s: built-in emulator on %s", modem_cfg.id, self._urls[modem_cfg.id])
            url = self._urls[modem_cfg.id]
        # The modem applies the network settings (apn, the network: block) at connect and after every
        # module reset; the APN only when the module's differs (no radio cycle for a kept one).
        network = modem_cfg.network
        if modem_cfg.apn and (network is None or network.apn is None):  # a configuration built in code
            network = dataclasses.replace(network or NetworkSettings(), apn=modem_cfg.apn)  # checks it
        options = ModemOptions(poll_interval=modem_cfg.poll_interval, network=network)
        if self.state_dir is not None:
            options = dataclasses.replace(options, usage_file=usage_file_path(self.state_dir, modem_cfg.id))
        return await Modem.connect(url, baudrate=modem_cfg.baudrate, options=options, plugin_manager=plugins)

    def emulator(self, modem_id: str) -> Any:
        """The built-in emulator of a modem (None when the modem is a real device)."""
        return self._emulators.get(modem_id)

    async def close(self) -> None:
        """Stop the built-in emulators."""
        for modem_id, emu in self._emulators.items():
            try:
                async with asyncio.timeout(MODEM_CLOSE_TIMEOUT):
                    await emu.stop()
            except TimeoutError:
                _LOGGER.warning("modem %s: the built-in emulator did not stop in time", modem_id)
        self._emulators.clear()


class ModemBridge:
    """Everything the bridge does for one modem: MQTT client, state, discovery, commands and routes."""

    def __init__(
        self,
        config: BridgeConfig,
        modem_cfg: ModemConfig,
        *,
        queue: DurableQueue,
        plugins: PluginManager,
        modem_factory: ModemFactory,
        problems: ProblemLog | None = None,
        payload_limits: Mapping[str, int | None] | None = None,
    ) -> None:
        self.config = config
        self.modem_cfg = modem_cfg
        self.base = f"{config.mqtt.base_topic}/{modem_cfg.id}"
        self.availability_topic = f"{self.base}/availability"
        self.state_topic = f"{self.base}/state"
        self.problems = problems or ProblemLog()
        self._unlisten = self.problems.add_listener(self._publish_state)
        my_routes = [route for route in config.routes if route.modem == modem_cfg.id]
        #: the control session: commands, state, availability (with the will), discovery
        self.mqtt = MqttClient(
            config.mqtt,
            client_id=f"{config.mqtt.client_id}-{modem_cfg.id}-control",
            will=(self.availability_topic, "offline"),
            persistent=False,
            on_problem=functools.partial(self._mqtt_problem, "MQTT control connection"),
            label=f"modem {modem_cfg.id} control",
        )
        #: the data session of the routes (persistent: the broker keeps uplinks while the bridge is away);
        #: None when the modem has no routes
        self.data_mqtt: MqttClient | None = None
        if my_routes:
            self.data_mqtt = MqttClient(
                config.mqtt,
                client_id=f"{config.mqtt.client_id}-{modem_cfg.id}",
                receive_maximum=MQTT_RECEIVE_MAXIMUM,
                on_problem=functools.partial(self._mqtt_problem, "MQTT data connection"),
                label=f"modem {modem_cfg.id} data",
            )
        self.modem: Any = None
        self._idle_link = LinkState.CONNECTING.value  # the state's link while there is no modem
        self._usage: DataUsage | None = None  # the last modem's totals, shown while there is none
        self._factory = modem_factory
        self._plugins = plugins
        self._ready = asyncio.Event()
        self._modem_changed = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._background: set[asyncio.Task[Any]] = set()
        self._published_discovery: str | None = None
        #: the last state published, without ``updated`` (a state that did not change is not published again)
        self._published_state: str | None = None
        self.commands = CommandHandler(
            modem_getter=self._command_modem,
            publish=self._publish_reply,
            base=self.base,
            allow_at=modem_cfg.at_commands,
            codec=plugins.codec,
        )
        limits = payload_limits or {}
        self.routes = [
            RouteRunner(
                route,
                host=self,
                mqtt=self.data_mqtt or self.mqtt,
                queue=queue,
                codec=plugins.codec(route.encoding),
                max_payload=min(limits.get(route.transport) or MAX_UPLINK_BYTES, MAX_UPLINK_BYTES),
            )
            for route in my_routes
        ]

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Connect to the broker, then run the modem and routes in the background."""
        self.mqtt.add_connect_handler(self._on_mqtt_connected)
        for name, topic in self.commands.topics().items():
            self.mqtt.subscribe(topic, functools.partial(self._on_command, name), qos=1)
        if self.config.mqtt.discovery:
            self.mqtt.subscribe(f"{self.config.mqtt.discovery_prefix}/status", self._on_ha_status, qos=1)
        for route in self.routes:
            route.start()
        # The modem opens while we wait for the broker.
        modem_task = asyncio.create_task(self._run_modem(), name=f"modem-{self.modem_cfg.id}")
        modem_task.add_done_callback(self._modem_task_done)
        self._tasks.append(modem_task)
        clients = [client for client in (self.mqtt, self.data_mqtt) if client is not None]
        results = await asyncio.gather(*(client.start() for client in clients), return_exceptions=True)
        for result in results:
            if isinstance(result, MqttRefusedError):
                raise BridgeError(str(result)) from None  # Bridge.start stops everything
            if isinstance(result, MqttError):  # the client logged why; it keeps retrying in the background
                _LOGGER.debug("%s; the bridge keeps retrying in the background", result)
            elif isinstance(result, BaseException):
                raise result

    async def stop(self) -> None:
        """Stop routes and modem, publish ``offline`` and disconnect (queued data stays on disk)."""
        for route in self.routes:
            await route.stop()
        await self.commands.close()
        for task in [*self._tasks, *self._background]:
            task.cancel()
        await asyncio.gather(*self._tasks, *self._background, return_exceptions=True)
        await self._close_modem()
        if self.mqtt.connected:
            fut = self.mqtt.publish(self.availability_topic, "offline", qos=1, retain=True)
            with contextlib.suppress(TimeoutError, Sim7020Error):
                async with asyncio.timeout(SHUTDOWN_PUBLISH_TIMEOUT):
                    await fut
        if self.data_mqtt is not None:
            await self.data_mqtt.stop()
        await self.mqtt.stop()
        self._unlisten()

    def _mqtt_problem(self, what: str, text: str | None) -> None:
        self.problems.report(what, text and f"{what}: {text}", modem=self.modem_cfg.id)

    async def wait_ready(self) -> Any:
        """The modem once it is connected and awake (routes wait here during reboots and PSM)."""
        while True:
            await self._ready.wait()
            modem = self.modem
            if modem is not None and modem.state is LinkState.READY:
                return modem
            self._ready.clear()

    # ------------------------------------------------------------------ modem

    async def _run_modem(self) -> None:
        """Open the modem and keep it open, for the bridge's life. Never ends by itself on an error: every
        failure is logged with its cause and shown in the state's ``problem`` (:data:`OPEN_PROBLEM`); a
        value the module cannot take (a bad APN given without ``check-config``) ends the retries, since
        retrying cannot fix it."""
        backoff = Backoff(MODEM_RETRY_MIN, MODEM_RETRY_MAX)
        modem_id = self.modem_cfg.id
        while True:
            self._set_idle_link(LinkState.CONNECTING)
            try:
                async with asyncio.timeout(MODEM_CONNECT_TIMEOUT):
                    modem = await self._factory(self.modem_cfg, self._plugins)
            except (ValueError, TypeError) as err:
                self._set_idle_link(LinkState.DISCONNECTED)
                self._open_problem(f"the configuration is not usable: {err}; fix it and restart the bridge")
                return
            except Exception as err:  # whatever it is: say it, and retry
                if not isinstance(err, Sim7020Error | TimeoutError | OSError):
                    _LOGGER.error("modem %s: unexpected error opening it", modem_id, exc_info=err)
                reason = describe_error(err)
                if isinstance(err, TimeoutError) and not str(err):
                    reason = f"not ready within {MODEM_CONNECT_TIMEOUT:g} s"
                delay = backoff.fail()
                self._set_idle_link(LinkState.DISCONNECTED)
                self._open_problem(f"cannot open {self.modem_cfg.device}: {reason}")
                _LOGGER.info("modem %s: retrying in %.0f s", modem_id, delay)
                await asyncio.sleep(delay)
                continue
            backoff.reset()
            self._open_problem(None)
            self.modem = modem
            _LOGGER.info(
                "modem %s: %s %s (IMEI %s) ready",
                self.modem_cfg.id,
                modem.info.manufacturer,
                modem.info.model,
                modem.info.imei,
            )
            unsubscribe = modem.subscribe(self._on_modem_event)
            self._modem_problem(modem.problem)
            self._on_modem_state(modem.state)
            self._publish_discovery()
            self._publish_state()
            try:
                await self._wait_closed(modem)
            finally:
                unsubscribe()
                self._ready.clear()
                await self._close_modem(modem)  # also when cancelled (shutdown); routes' connections end
                self._modem_problem(None)  # the next session finds out afresh
            _LOGGER.warning("modem %s: session closed; reopening", self.modem_cfg.id)

    def _modem_task_done(self, task: asyncio.Task[Any]) -> None:
        """The last safety net: a modem task that ended by a bug says so (log with traceback, problem)."""
        if task.cancelled() or task.exception() is None:
            return
        err = task.exception()
        _LOGGER.error("modem %s: the modem task ended", self.modem_cfg.id, exc_info=err)
        self.modem = None
        self._set_idle_link(LinkState.DISCONNECTED)
        self._open_problem(f"the modem task ended: {type(err).__name__}: {err} (a bug: please report it)")

    def _set_idle_link(self, state: LinkState) -> None:
        """What the state says while there is no modem (connecting to it, or not: it could not be opened)."""
        self._idle_link = state.value
        self._publish_state()

    def _open_problem(self, text: str | None) -> None:
        """Why the modem cannot be opened (logged when it appears or changes), or None once it is open."""
        self.problems.report(OPEN_PROBLEM, text and f"{OPEN_PROBLEM}: {text}", modem=self.modem_cfg.id)

    def _modem_problem(self, problem: ModemProblem | None) -> None:
        """What the library says needs a human (:attr:`Modem.problem`), shown in the state."""
        text = f"{MODEM_PROBLEM}: {problem.message}" if problem is not None else None
        self.problems.report(MODEM_PROBLEM, text, modem=self.modem_cfg.id)

    async def _wait_closed(self, modem: Any) -> None:
        while modem.state is not LinkState.CLOSED:
            self._modem_changed.clear()
            await self._modem_changed.wait()

    async def _close_modem(self, modem: Any = None) -> None:
        modem = modem or self.modem
        self.modem = None
        if modem is None:
            return
        try:
            async with asyncio.timeout(MODEM_CLOSE_TIMEOUT):
                await modem.close()
        except (Sim7020Error, TimeoutError, OSError) as err:
            _LOGGER.debug("modem %s: close failed: %s", self.modem_cfg.id, err)

    def _on_modem_event(self, event: ModemEvent) -> None:
        # a module reset ends the routes' connections through their transports (sim7020_core.persistent)
        if isinstance(event, DataReceived) and self.modem is not None and event.state is self.modem.state:
            return  # a datagram changes nothing in the state (the routes read it from their connection)
        if isinstance(event, ProblemChanged):
            self._modem_problem(event.problem)  # republishes the state
        self._on_modem_state(event.state)
        self._publish_state()

    def _on_modem_state(self, state: LinkState) -> None:
        if state is LinkState.READY:
            self._ready.set()
        else:
            self._ready.clear()
        self._modem_changed.set()

    def _command_modem(self) -> Any:
        modem = self.modem
        if modem is None or modem.state is LinkState.CLOSED:
            return None
        return modem

    # ------------------------------------------------------------------ MQTT side

    def _fire(
        self, topic: str, payload: str | bytes, *, retain: bool = True, correlation: bytes | None = None
    ) -> None:
        fut = self.mqtt.publish(
            topic, payload, qos=self.config.mqtt.qos, retain=retain, correlation_data=correlation
        )
        fut.add_done_callback(_log_publish_failure)

    def _publish_reply(self, topic: str, payload: bytes, correlation: bytes | None) -> None:
        self._fire(topic, payload, retain=False, correlation=correlation)

    async def _on_mqtt_connected(self) -> None:
        self._fire(self.availability_topic, "online")
        self._publish_discovery(force=True)
        self._publish_state(force=True)

    def state_payload(self, *, link: str | None = None) -> dict[str, Any]:
        """The retained state JSON: ModemStatus plus link state and identity."""
        modem = self.modem
        status: ModemStatus = modem.status if modem is not None else ModemStatus()
        info: ModemInfo = modem.info if modem is not None else ModemInfo()
        data = status.as_dict()
        data["link"] = link or (modem.state.value if modem is not None else self._idle_link)
        data["modem_id"] = self.modem_cfg.id
        data["info"] = info.as_dict()
        data["problem"] = self.problems.summary(self.modem_cfg.id)
        if modem is not None:
            self._usage = modem.usage
        data["usage"] = self._usage.as_dict() if self._usage is not None else None
        data["updated"] = round(time.time(), 3)
        return data

    def _publish_state(self, *, link: str | None = None, force: bool = False) -> None:
        """Publish the state if it changed since it was last published (or ``force``: a new session)."""
        if not self.mqtt.connected:
            return  # republished on connect
        data = self.state_payload(link=link)
        updated = data.pop("updated")
        text = json.dumps(data)
        if not force and text == self._published_state:
            return
        self._published_state = text
        data["updated"] = updated
        self._fire(self.state_topic, json.dumps(data))

    def _publish_discovery(self, *, force: bool = False) -> None:
        if not self.config.mqtt.discovery or not self.mqtt.connected:
            return
        info = self.modem.info if self.modem is not None else None
        if info is None or not info.imei:
            return  # wait for the identity: the unique ids derive from the IMEI
        topic = discovery_topic(self.config.mqtt.discovery_prefix, self.modem_cfg.id, info)
        payload = json.dumps(
            discovery_payload(modem_id=self.modem_cfg.id, base=self.base, info=info, name=self.modem_cfg.name)
        )
        if not force and payload == self._published_discovery:
            return
        self._published_discovery = payload
        self._fire(topic, payload)

    def _on_ha_status(self, msg: IncomingMessage) -> None:
        self.mqtt.ack(msg.mid, msg.qos)
        if msg.payload.strip() == b"online":
            _LOGGER.info("Home Assistant is online: republishing discovery and state")
            task = asyncio.create_task(self._republish_after_birth())
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _republish_after_birth(self) -> None:
        await asyncio.sleep(HA_BIRTH_REPUBLISH_DELAY)
        self._publish_discovery(force=True)
        self._publish_state(force=True)

    def _on_command(self, name: str, msg: IncomingMessage) -> None:
        self.mqtt.ack(msg.mid, msg.qos)  # commands are not durable: a restarted bridge must not replay them
        self.commands.handle(name, msg)


def _log_publish_failure(fut: asyncio.Future[None]) -> None:
    if fut.cancelled():
        return
    err = fut.exception()
    if err is not None:
        _LOGGER.warning("publish failed: %s", err)


class Bridge:
    """The whole bridge: every configured modem, one durable queue, one state directory.

    :param config: the validated configuration
    :param modem_factory: opens a modem for a :class:`ModemConfig` with the bridge's plugin manager (default:
        :class:`EmulatedModemFactory`)
    :param plugins: the application's plugin manager (transports, codecs, hooks of every modem); None builds
        one from the installed plugins when the bridge starts (off the event loop)
    """

    def __init__(
        self,
        config: BridgeConfig,
        *,
        modem_factory: ModemFactory | None = None,
        plugins: PluginManager | None = None,
    ) -> None:
        self.config = config
        self.plugins = plugins
        #: what needs an operator, shown in every modem's state (``problem``) and logged once
        self.problems = ProblemLog()
        self.queue = DurableQueue(config.state_dir / QUEUE_FILE, on_problem=self._storage_problem)
        self._own_factory = modem_factory is None
        self.factory: Any = modem_factory or EmulatedModemFactory(state_dir=config.state_dir)
        self.modems: list[ModemBridge] = []
        self._lock_fd: int | None = None

    async def start(self) -> None:
        """Lock the state directory, open the queue and start every modem bridge."""
        self._lock_state_dir(self.config.state_dir)
        try:
            self._check_usage_files()
            await self._open_queue()
            if self.queue.stats["recovered"]:
                _LOGGER.info(
                    "%d queued messages recovered from %s", self.queue.stats["recovered"], self.queue.path
                )
            if self.plugins is None:
                from ..plugins import async_make_plugin_manager

                self.plugins = await async_make_plugin_manager()
            self._check_routes(self.plugins)
            limits = payload_limits(self.plugins)
            for modem_cfg in self.config.modems:
                self.modems.append(
                    ModemBridge(
                        self.config,
                        modem_cfg,
                        queue=self.queue,
                        plugins=self.plugins,
                        modem_factory=self.factory,
                        problems=self.problems,
                        payload_limits=limits,
                    )
                )
            for modem_bridge in self.modems:
                await modem_bridge.start()
        except BaseException:
            await self.stop()
            raise

    async def _open_queue(self) -> None:
        """Open the durable queue; while the storage fails (a full disk, an I/O error) wait it out with the
        queue's backoff, reporting the problem once (:meth:`_storage_problem`), as the running bridge does.

        Cancelling (SIGTERM while waiting) ends the wait at once.

        :raises QueueError: a failure retrying cannot fix (a symlink planted in the state directory …)
        """
        backoff = Backoff(QUEUE_RETRY_MIN, QUEUE_RETRY_MAX)
        while True:
            try:
                await self.queue.open()
            except QueueError as err:
                await self.queue.close()  # its I/O thread; the next attempt starts a new one
                cause = err.__cause__
                storage = err.storage or (
                    cause is not None and describe_storage_error(cause, self.queue.path).storage
                )
                if not storage:
                    raise
                self._storage_problem(str(err))
                delay = backoff.fail()
                _LOGGER.debug("cannot open the queue (%s); retrying in %.1f s", err, delay)
                await asyncio.sleep(delay)
                continue
            if backoff.failures:
                self._storage_problem(None)
            return

    def _check_routes(self, plugins: PluginManager) -> None:
        """Every route's transport and encoding must be installed (a configuration loaded without the plugin
        manager was only checked for their form).

        :raises ConfigError: one line per unknown name, listing the installed ones
        """
        problems: list[str] = []
        for route in self.config.routes:
            for lookup, name in ((plugins.transport_class, route.transport), (plugins.codec, route.encoding)):
                try:
                    lookup(name)
                except PluginError as err:
                    problems.append(f"{self.config.source}: route {route.name!r}: {err}")
        if problems:
            raise ConfigError(problems)

    async def stop(self) -> None:
        """Stop everything cleanly; queued messages stay in the state directory."""
        for modem_bridge in self.modems:
            await modem_bridge.stop()
        self.modems.clear()
        if self._own_factory and hasattr(self.factory, "close"):
            await self.factory.close()
        await self.queue.close()
        self._unlock_state_dir()

    def _check_usage_files(self) -> None:
        """The modems' usage files follow the state directory's rules: a symbolic link is refused (the
        bridge does not start), a file readable by others is narrowed to 0600."""
        for modem_cfg in self.config.modems:
            path = usage_file_path(self.config.state_dir, modem_cfg.id)
            try:
                check_state_file(path)
            except OSError as err:
                raise BridgeError(f"cannot use the usage file {path}: {err.strerror or err}") from err

    def _storage_problem(self, text: str | None) -> None:
        if text is not None:
            text = f"storage: {text}; new uplink messages wait at the broker, unacknowledged, until it works"
        self.problems.report("storage", text)

    def stats(self) -> dict[str, Any]:
        """Counters for the log and tests."""
        return {
            "queue": dict(self.queue.stats),
            "modems": {
                m.modem_cfg.id: {
                    "mqtt": dict(m.mqtt.stats),
                    "mqtt_data": dict(m.data_mqtt.stats) if m.data_mqtt is not None else {},
                    "commands": dict(m.commands.stats),
                    "routes": {r.route.name: dict(r.stats) for r in m.routes},
                }
                for m in self.modems
            },
        }

    def _lock_state_dir(self, state_dir: Path) -> None:
        try:
            prepare_state_dir(state_dir)
            fd = open_state_file(state_dir / LOCK_FILE)
        except OSError as err:
            raise BridgeError(f"cannot lock the state directory {state_dir}: {err.strerror or err}") from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise BridgeError(f"another bridge is using the state directory {state_dir}") from None
        self._lock_fd = fd
        try:  # the PID is for the operator only: a full disk must not stop the bridge here
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as err:
            _LOGGER.debug("cannot write the PID into %s: %s", state_dir / LOCK_FILE, err)

    def _unlock_state_dir(self) -> None:
        if self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)
            os.close(self._lock_fd)
            self._lock_fd = None
