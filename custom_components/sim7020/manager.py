"""The runtime object of one config entry: the modem, its status coordinator and its data connections.

The library (:class:`sim7020_core.Modem`) owns the serial link, the watchdog, the status polling and the
reconnect logic; this module only reflects what the library reports (``Modem.subscribe``) into Home
Assistant (the status through :class:`.coordinator.Sim7020Coordinator`), and keeps the connections opened by
the ``sim7020.send`` action so that replies arriving later reach the event bus.
"""

from __future__ import annotations

import asyncio
import binascii
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from sim7020_core import LinkState, PingReply, Sim7020Error, StateChanged, StatusChanged
from sim7020_core.exceptions import ConnectionClosedError

from .const import (
    CLOSE_TIMEOUT,
    CONF_LISTEN_PORT,
    CONF_MQTT_TOPIC,
    DEFAULT_TRANSPORT,
    DOMAIN,
    EVENT_DATA_RECEIVED,
    EVENT_PSM,
    PING_PROBE_TIMEOUT,
    SERVICE_TIMEOUT,
    TRIGGER_DATA_RECEIVED,
    TRIGGER_PSM_ENTERED,
    TRIGGER_PSM_EXITED,
)
from .coordinator import AVAILABLE_STATES, Sim7020Coordinator

if TYPE_CHECKING:
    from sim7020_core import Modem, ModemEvent
    from sim7020_core.connection import Connection, Server

    from . import Sim7020ConfigEntry

_LOGGER = logging.getLogger(__name__)

#: A connection opened by ``sim7020.send`` is closed after this many seconds without incoming data,
#: so the module's few sockets are not held forever.
CONNECTION_IDLE_TIMEOUT = 300.0

#: Seconds between attempts to (re)start the TCP server while the module is not ready or refuses.
LISTEN_RETRY_DELAY = 1.0

ConnectionKey = tuple[str, str, str, int]  # (transport, protocol, host, port)
EventListener = Callable[[str, dict[str, Any]], None]


def data_event(protocol: str, host: str, port: int, data: bytes) -> dict[str, Any]:
    """Build the payload of the ``sim7020_data_received`` event for ``data`` from ``host:port``."""
    try:
        text: str | None = data.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return {
        "host": host,
        "port": port,
        "protocol": protocol,
        "payload": text,
        "payload_hex": binascii.hexlify(data).decode("ascii"),
    }


@dataclass(eq=False)
class TrackedConnection:
    """A data connection opened on behalf of an action, with its reader task and reply waiters."""

    key: ConnectionKey
    connection: Connection
    task: asyncio.Task[None] | None = None
    waiters: list[asyncio.Future[bytes]] = field(default_factory=list)
    #: Set for clients accepted by the module's TCP server (the module does not tell their address).
    client_id: int | None = None

    def event(self, data: bytes) -> dict[str, Any]:
        """The ``sim7020_data_received`` payload for ``data`` received on this connection."""
        _, protocol, host, port = self.key
        connection = self.connection
        if self.client_id is not None:
            payload = data_event(protocol, connection.remote_host, connection.remote_port, data)
            payload["client_id"] = self.client_id
            return payload
        return data_event(protocol, connection.remote_host or host, connection.remote_port or port, data)


class Sim7020Manager:
    """Everything one config entry owns at runtime (stored in ``entry.runtime_data``)."""

    def __init__(self, hass: HomeAssistant, entry: Sim7020ConfigEntry, modem: Modem) -> None:
        self.hass = hass
        self.entry = entry
        self.modem = modem
        self.coordinator = Sim7020Coordinator(hass, entry, modem)
        self.device_id: str | None = None
        self.connections: dict[ConnectionKey, TrackedConnection] = {}
        self._open_lock = asyncio.Lock()
        self._event_listeners: list[EventListener] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._server_task: asyncio.Task[None] | None = None
        #: Clients accepted by the module's TCP server, by the ``client_id`` their events carry.
        self.clients: dict[int, TrackedConnection] = {}
        self._next_client_id = 0
        #: The module's TCP server while it listens (option ``listen_port``).
        self.server: Server | None = None
        self._asleep = modem.state is LinkState.ASLEEP

    # ------------------------------------------------------------------ lifecycle

    async def async_start(self) -> None:
        """Subscribe to the modem's events and fetch the first status (ConfigEntryNotReady on failure)."""
        self._unsubscribe = self.modem.subscribe(self._on_modem_event)
        await self.coordinator.async_config_entry_first_refresh()
        listen_port = self.entry.options.get(CONF_LISTEN_PORT)
        if listen_port:
            self._server_task = self.entry.async_create_background_task(
                self.hass, self._async_serve(int(listen_port)), f"{DOMAIN} server :{listen_port}"
            )

    async def async_stop(self) -> None:
        """Close the data connections and the modem; never raises."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._server_task is not None:
            self._server_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._server_task
            self._server_task = None
        for tracked in [*self.connections.values(), *self.clients.values()]:
            await self._async_close_tracked(tracked)
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await self.modem.close()
        except (Sim7020Error, TimeoutError, OSError) as err:
            _LOGGER.debug("Error closing the modem: %s", err)

    # ------------------------------------------------------------------ state

    @property
    def available(self) -> bool:
        """True while the module is reachable (ready or asleep in PSM) and the last poll worked."""
        return self.modem.state in AVAILABLE_STATES and self.coordinator.last_update_success

    @property
    def asleep(self) -> bool:
        """True while the module sleeps in PSM."""
        return self.modem.state is LinkState.ASLEEP

    @callback
    def async_add_event_listener(self, listener: EventListener) -> Callable[[], None]:
        """Call ``listener(event_type, attributes)`` for data received and PSM changes."""
        self._event_listeners.append(listener)

        @callback
        def remove() -> None:
            if listener in self._event_listeners:
                self._event_listeners.remove(listener)

        return remove

    @callback
    def _on_modem_event(self, event: ModemEvent) -> None:
        """Reflect a modem event (status, state, module reset, PSM) into Home Assistant."""
        asleep = self.modem.state is LinkState.ASLEEP
        if asleep != self._asleep:
            self._asleep = asleep
            self._emit_psm(asleep)
        if isinstance(event, StatusChanged):
            self.coordinator.async_set_updated_data(event.status)
        elif isinstance(event, StateChanged):
            if event.state in AVAILABLE_STATES and not self.coordinator.last_update_success:
                self.coordinator.async_set_updated_data(self.modem.status)
            else:
                self.coordinator.async_update_listeners()
            if event.state not in AVAILABLE_STATES and event.previous in AVAILABLE_STATES:
                _LOGGER.info("%s is unavailable: %s", self.entry.title, event.reason or event.state)
            elif event.state in AVAILABLE_STATES and event.previous not in AVAILABLE_STATES:
                _LOGGER.info("%s is available again", self.entry.title)

    @callback
    def _emit_psm(self, entered: bool) -> None:
        trigger = TRIGGER_PSM_ENTERED if entered else TRIGGER_PSM_EXITED
        _LOGGER.debug("%s: %s", self.entry.title, trigger)
        self.hass.bus.async_fire(
            EVENT_PSM,
            {"device_id": self.device_id, "config_entry_id": self.entry.entry_id, "type": trigger},
        )
        self._notify(trigger, {})

    @callback
    def _notify(self, event_type: str, attributes: dict[str, Any]) -> None:
        for listener in list(self._event_listeners):
            listener(event_type, attributes)

    # ------------------------------------------------------------------ actions

    async def async_resolve(self, hostname: str) -> list[str]:
        """Resolve ``hostname`` through the module's DNS."""
        async with asyncio.timeout(SERVICE_TIMEOUT):
            return await self.modem.resolve(hostname)

    async def async_ping(self, host: str, count: int) -> list[PingReply]:
        """Ping ``host`` ``count`` times from the module."""
        async with asyncio.timeout(count * PING_PROBE_TIMEOUT + SERVICE_TIMEOUT):
            return await self.modem.ping(host, count=count)

    async def async_command(self, command: str) -> list[str]:
        """Send a raw AT command (the library refuses commands that would break its session)."""
        async with asyncio.timeout(SERVICE_TIMEOUT):
            return await self.modem.command(command)

    async def async_reboot(self) -> None:
        """Reboot the module (the library re-initialises it)."""
        await self.modem.reboot()

    async def async_send(
        self,
        *,
        transport: str,
        protocol: str,
        host: str,
        port: int,
        data: bytes,
        wait_response: bool,
        response_timeout: float,
    ) -> dict[str, Any] | None:
        """Send ``data`` on a (reused) connection; return the next data received when asked to wait.

        Returns the event payload of the reply, or ``None`` when not waiting or nothing arrived within
        ``response_timeout``.
        """
        key: ConnectionKey = (transport, protocol, host, port)
        for attempt in range(2):
            tracked = await self._async_get_connection(key)
            waiter = self._add_waiter(tracked) if wait_response else None
            try:
                async with asyncio.timeout(SERVICE_TIMEOUT):
                    await tracked.connection.send(data)
                break
            except ConnectionClosedError:
                # The module rebooted or the peer closed: open a fresh connection once.
                await self._async_close_tracked(tracked)
                if attempt:
                    raise
        return await self._async_wait_reply(tracked, waiter, response_timeout)

    async def async_send_to_client(
        self, client_id: int, data: bytes, *, wait_response: bool, response_timeout: float
    ) -> dict[str, Any] | None:
        """Send ``data`` to a client of the module's TCP server (``client_id`` from its data event)."""
        tracked = self.clients.get(client_id)
        if tracked is None or tracked.connection.closed:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="client_not_connected",
                translation_placeholders={"client_id": str(client_id)},
            )
        waiter = self._add_waiter(tracked) if wait_response else None
        async with asyncio.timeout(SERVICE_TIMEOUT):
            await tracked.connection.send(data)
        return await self._async_wait_reply(tracked, waiter, response_timeout)

    @staticmethod
    def _add_waiter(tracked: TrackedConnection) -> asyncio.Future[bytes]:
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        tracked.waiters.append(waiter)
        return waiter

    @staticmethod
    async def _async_wait_reply(
        tracked: TrackedConnection, waiter: asyncio.Future[bytes] | None, limit: float
    ) -> dict[str, Any] | None:
        if waiter is None:
            return None
        try:
            async with asyncio.timeout(limit):
                return tracked.event(await waiter)
        except TimeoutError:
            return None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if waiter.cancelled() and task is not None and not task.cancelling():
                return None  # the connection closed before a reply came
            raise
        finally:
            if waiter in tracked.waiters:
                tracked.waiters.remove(waiter)

    async def _async_get_connection(self, key: ConnectionKey) -> TrackedConnection:
        async with self._open_lock:
            tracked = self.connections.get(key)
            if tracked is not None and not tracked.connection.closed:
                return tracked
            if tracked is not None:
                await self._async_close_tracked(tracked)
            transport, protocol, host, port = key
            async with asyncio.timeout(SERVICE_TIMEOUT):
                connection = await self.modem.open_connection(protocol, host, port, transport=transport)
            return self._track(key, connection)

    @callback
    def _track(
        self, key: ConnectionKey, connection: Connection, client_id: int | None = None
    ) -> TrackedConnection:
        """Keep ``connection`` and forward what it receives to the bus."""
        _, protocol, host, port = key
        tracked = TrackedConnection(key, connection, client_id=client_id)
        tracked.task = self.entry.async_create_background_task(
            self.hass, self._async_read(tracked), f"{DOMAIN} reader {protocol}:{host}:{port}"
        )
        if client_id is None:
            self.connections[key] = tracked
        else:
            self.clients[client_id] = tracked
        self.coordinator.async_update_listeners()
        return tracked

    @callback
    def _forget(self, tracked: TrackedConnection) -> None:
        if tracked.client_id is not None:
            if self.clients.get(tracked.client_id) is tracked:
                del self.clients[tracked.client_id]
                self.coordinator.async_update_listeners()
        elif self.connections.get(tracked.key) is tracked:
            del self.connections[tracked.key]
            self.coordinator.async_update_listeners()

    @property
    def open_connections(self) -> int:
        """Connections opened by ``sim7020.send`` plus clients of the module's TCP server."""
        return len(self.connections) + len(self.clients)

    async def _async_serve(self, port: int) -> None:
        """Run the module's TCP server on ``port``; clients' data reaches the bus like any other.

        A module reset closes the server: it is started again once the module is ready.
        """
        while True:
            if self.modem.state is not LinkState.READY:
                await asyncio.sleep(LISTEN_RETRY_DELAY)
                continue
            try:
                async with asyncio.timeout(SERVICE_TIMEOUT):
                    server = await self.modem.listen(port, transport=DEFAULT_TRANSPORT)
            except (Sim7020Error, TimeoutError) as err:
                _LOGGER.warning("%s: cannot listen on TCP port %s: %s", self.entry.title, port, err)
                await asyncio.sleep(LISTEN_RETRY_DELAY)
                continue
            _LOGGER.debug("%s: listening on TCP port %s", self.entry.title, port)
            self.server = server
            try:
                async for connection in server:
                    self._next_client_id += 1
                    key: ConnectionKey = (DEFAULT_TRANSPORT, "tcp", f"client {self._next_client_id}", port)
                    self._track(key, connection, client_id=self._next_client_id)
            finally:
                self.server = None
                if not server.closed:
                    with contextlib.suppress(Sim7020Error, TimeoutError, OSError):
                        async with asyncio.timeout(CLOSE_TIMEOUT):
                            await server.close()
            await asyncio.sleep(LISTEN_RETRY_DELAY)

    async def _async_read(self, tracked: TrackedConnection) -> None:
        """Forward everything the connection receives until it closes or stays idle too long."""
        connection = tracked.connection
        _, protocol, host, port = tracked.key
        try:
            while True:
                try:
                    data = await connection.receive(timeout=CONNECTION_IDLE_TIMEOUT)
                except TimeoutError:
                    _LOGGER.debug("Closing idle connection %s:%s:%s", protocol, host, port)
                    break
                except Sim7020Error as err:
                    _LOGGER.debug("Connection %s:%s:%s ended: %s", protocol, host, port, err)
                    break
                for waiter in tracked.waiters:
                    if not waiter.done():
                        waiter.set_result(data)
                tracked.waiters.clear()
                self._on_data(tracked.event(data))
        finally:
            self._forget(tracked)
            for waiter in tracked.waiters:
                waiter.cancel()
            if not connection.closed:
                with contextlib.suppress(Sim7020Error, TimeoutError, OSError):
                    async with asyncio.timeout(CLOSE_TIMEOUT):
                        await connection.close()

    @callback
    def _on_data(self, payload: dict[str, Any]) -> None:
        self.hass.bus.async_fire(
            EVENT_DATA_RECEIVED,
            {**payload, "device_id": self.device_id, "config_entry_id": self.entry.entry_id},
        )
        self._notify(TRIGGER_DATA_RECEIVED, payload)
        topic = self.entry.options.get(CONF_MQTT_TOPIC)
        if topic and "mqtt" in self.hass.config.components:
            self.hass.async_create_task(self._async_publish(topic, payload), f"{DOMAIN} mqtt forward")

    async def _async_publish(self, topic: str, payload: dict[str, Any]) -> None:
        from homeassistant.components import mqtt

        try:
            await mqtt.async_publish(self.hass, topic, json.dumps(payload))
        except HomeAssistantError as err:
            _LOGGER.warning("Could not forward received data to MQTT topic %s: %s", topic, err)

    async def _async_close_tracked(self, tracked: TrackedConnection) -> None:
        self._forget(tracked)
        task = tracked.task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not tracked.connection.closed:
            with contextlib.suppress(Sim7020Error, TimeoutError, OSError):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await tracked.connection.close()
