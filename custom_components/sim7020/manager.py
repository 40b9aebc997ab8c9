"""The runtime object of one config entry: the modem, its status coordinator and its data connections.

The library owns the serial link, the watchdog, the status polling and the reconnect logic
(:class:`sim7020_core.Modem`), and the life of data connections: the connections opened by the
``sim7020.send`` action are :class:`sim7020_core.PersistentConnection` objects (opened again after a reset or
a hang-up, closed after :data:`CONNECTION_IDLE_TIMEOUT` without traffic) and the ``listen_port`` option is a
:class:`sim7020_core.PersistentServer` (listening again after every reset). This module only translates: the
library's events into Home Assistant (the status through :class:`.coordinator.Sim7020Coordinator`), received
data into ``sim7020_data_received`` events, and the actions into library calls.
"""

from __future__ import annotations

import asyncio
import binascii
import functools
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from homeassistant.core import HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError

from sim7020_core import (
    Backoff,
    LinkState,
    NoReplyError,
    PersistentConnection,
    PersistentServer,
    PersistentState,
    PingReply,
    ProblemChanged,
    ReceiveTimeoutError,
    ServerClient,
    Sim7020Error,
    StateChanged,
    StatusChanged,
    UsageChanged,
)

from .const import (
    CLOSE_TIMEOUT,
    CONF_LISTEN_PORT,
    CONF_MQTT_TOPIC,
    CONF_NETWORK,
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
from .issues import ModemIssues

if TYPE_CHECKING:
    from sim7020_core import Modem, ModemEvent, Server

    from . import Sim7020ConfigEntry

_LOGGER = logging.getLogger(__name__)

#: A connection opened by ``sim7020.send`` (or a client of the listener) is closed after this many seconds
#: without traffic, so the module's few sockets are not held forever.
CONNECTION_IDLE_TIMEOUT = 300.0

#: Backoff of the TCP server's attempts to listen while the module refuses (seconds, doubled up to the max).
LISTEN_RETRY_MIN = 1.0
LISTEN_RETRY_MAX = 60.0

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


class Sim7020Manager:
    """Everything one config entry owns at runtime (stored in ``entry.runtime_data``)."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: Sim7020ConfigEntry,
        modem: Modem,
        reload_key: tuple[dict[str, Any], dict[str, Any]] = ({}, {}),
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.modem = modem
        self.coordinator = Sim7020Coordinator(hass, entry, modem)
        self.device_id: str | None = None
        #: Connections opened by ``sim7020.send``, by (transport, protocol, host, port).
        self.connections: dict[ConnectionKey, PersistentConnection] = {}
        #: Clients of the module's TCP server, by the ``client_id`` their events carry.
        self.clients: dict[int, ServerClient] = {}
        self._client_ids: dict[ServerClient, int] = {}
        self._next_client_id = 0
        self._listener: PersistentServer | None = None
        self._event_listeners: list[EventListener] = []
        self._usage_listeners: list[Callable[[], None]] = []
        self._unsubscribe: Callable[[], None] | None = None
        self._asleep = modem.state is LinkState.ASLEEP
        self.issues = ModemIssues(hass, entry)
        #: The entry's data and options this manager runs with (a change of them reloads the entry).
        self.reload_key = reload_key
        #: The network settings the user set from Home Assistant (``entry.data[CONF_NETWORK]``), handed to
        #: the library at setup. PSM timers and the eDRX cycle chosen while PSM or eDRX is off wait here for
        #: their switch (the module takes them only with a request), across restarts too.
        self._stored: dict[str, Any] = dict(entry.data.get(CONF_NETWORK) or {})

    # ------------------------------------------------------------------ lifecycle

    async def async_start(self) -> None:
        """Subscribe to the modem's events and fetch the first status (ConfigEntryNotReady on failure)."""
        self._unsubscribe = self.modem.subscribe(self._on_modem_event)
        await self.coordinator.async_config_entry_first_refresh()
        self.issues.problem_changed(self.modem.problem)
        self.issues.registration_changed(self.coordinator.data.registration)
        listen_port = self.entry.options.get(CONF_LISTEN_PORT)
        if listen_port:
            self._listener = PersistentServer(
                self.modem,
                int(listen_port),
                transport=DEFAULT_TRANSPORT,
                listen_timeout=SERVICE_TIMEOUT,
                backoff=Backoff(LISTEN_RETRY_MIN, LISTEN_RETRY_MAX),
                idle_timeout=CONNECTION_IDLE_TIMEOUT,
                on_client=self._client_connected,
                on_client_data=self._client_data,
                on_client_closed=self._client_closed,
                name=f"{self.entry.title} TCP server",
            )
            self._listener.start()

    async def async_stop(self) -> None:
        """Close the data connections, the server and the modem; never raises."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        self.issues.clear()
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
        for connection in list(self.connections.values()):
            await connection.close()
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

    @property
    def server(self) -> Server | None:
        """The module's TCP server while it listens (option ``listen_port``)."""
        return self._listener.server if self._listener is not None else None

    @property
    def open_connections(self) -> int:
        """Open connections of ``sim7020.send`` plus clients of the module's TCP server."""
        return sum(1 for connection in self.connections.values() if connection.is_open) + len(self.clients)

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
    def async_add_usage_listener(self, listener: Callable[[], None]) -> Callable[[], None]:
        """Call ``listener()`` when the modem's data usage (:attr:`Modem.usage`) grew; the library announces
        it at most about once a second (:class:`~sim7020_core.events.UsageChanged`)."""
        self._usage_listeners.append(listener)

        @callback
        def remove() -> None:
            if listener in self._usage_listeners:
                self._usage_listeners.remove(listener)

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
            self.issues.registration_changed(event.status.registration)
        elif isinstance(event, ProblemChanged):
            self.issues.problem_changed(event.problem)
        elif isinstance(event, UsageChanged):
            for listener in list(self._usage_listeners):
                listener()
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

    # ------------------------------------------------------------------ network settings

    @property
    def stored_settings(self) -> dict[str, Any]:
        """The network settings the user set from Home Assistant, as stored in the entry."""
        return dict(self._stored)

    @callback
    def _store(self, **changes: Any) -> None:
        """Keep ``changes`` in the entry (None: forget the field); the update listener does not reload."""
        stored = dict(self._stored)
        for key, value in changes.items():
            if value is None:
                stored.pop(key, None)
            else:
                stored[key] = list(value) if isinstance(value, tuple) else value
        if stored == self._stored:
            return
        self._stored = stored
        self.hass.config_entries.async_update_entry(
            self.entry, data={**self.entry.data, CONF_NETWORK: stored}
        )

    @property
    def psm_request(self) -> tuple[int | None, int | None]:
        """The PSM timers (periodic TAU, Active-Time; seconds) the next request for PSM carries: with PSM on,
        the ones the module holds; with PSM off, those chosen (else the module's)."""
        psm = self.coordinator.data.psm
        if psm.enabled:
            return psm.requested_tau_s, psm.requested_active_s
        return (
            self._stored.get("psm_tau_s", psm.requested_tau_s),
            self._stored.get("psm_active_s", psm.requested_active_s),
        )

    async def async_set_psm(
        self, enabled: bool | None = None, *, tau_s: int | None = None, active_s: int | None = None
    ) -> None:
        """Turn PSM on or off (``enabled``) and/or change its requested timers.

        With PSM on, the request goes to the module at once (the library waits, bounded, for the network's
        grant). Timers changed while PSM is off are kept and sent when it is turned on. What is set is
        stored in the entry, for the library to apply at the next start.
        """
        tau, active = self.psm_request
        tau = tau if tau_s is None else tau_s
        active = active if active_s is None else active_s
        try:
            if self.coordinator.data.psm.enabled if enabled is None else enabled:
                async with asyncio.timeout(SERVICE_TIMEOUT):
                    await self.modem.set_psm(True, tau, active)
                self._store(psm=True, psm_tau_s=tau, psm_active_s=active)
                return
            if enabled is not None:
                async with asyncio.timeout(SERVICE_TIMEOUT):
                    await self.modem.set_psm(False)
                self._store(psm=False)
            if tau_s is not None:
                self._store(psm_tau_s=tau_s)
            if active_s is not None:
                self._store(psm_active_s=active_s)
        finally:
            self.coordinator.async_update_listeners()

    @property
    def edrx_request(self) -> float | None:
        """The eDRX cycle (seconds) the next request for eDRX carries: with eDRX on, the one the module
        holds; with eDRX off, the one chosen (else the module's). None: the module's default."""
        edrx = self.coordinator.data.edrx
        if edrx.enabled:
            return edrx.requested_cycle_s
        cycle: float | None = self._stored.get("edrx_cycle_s", edrx.requested_cycle_s)
        return cycle

    async def async_set_edrx(self, enabled: bool | None = None, *, cycle_s: float | None = None) -> None:
        """Turn eDRX on or off (``enabled``) and/or change its requested cycle.

        With eDRX on, the request goes to the module at once; a cycle chosen while eDRX is off is kept and
        sent when it is turned on. Stored in the entry like :meth:`async_set_psm`.
        """
        cycle = self.edrx_request if cycle_s is None else cycle_s
        try:
            if self.coordinator.data.edrx.enabled if enabled is None else enabled:
                async with asyncio.timeout(SERVICE_TIMEOUT):
                    await self.modem.set_edrx(True, cycle)
                self._store(edrx=True, edrx_cycle_s=cycle)
                return
            if enabled is not None:
                async with asyncio.timeout(SERVICE_TIMEOUT):
                    await self.modem.set_edrx(False)
                self._store(edrx=False)
            if cycle_s is not None:
                self._store(edrx_cycle_s=cycle_s)
        finally:
            self.coordinator.async_update_listeners()

    async def async_set_apn(self, apn: str, pdp_type: str, username: str, password: str) -> None:
        """Set the APN (the library turns the radio off and on around it, then reads the status)."""
        async with asyncio.timeout(SERVICE_TIMEOUT):
            await self.modem.set_apn(apn, pdp_type=pdp_type, username=username, password=password)
        self._store(
            apn=apn, apn_pdp_type=pdp_type, apn_username=username or None, apn_password=password or None
        )

    async def async_set_bands(self, bands: list[int]) -> None:
        """Lock the module to ``bands`` (empty: every band it supports); it registers again."""
        try:
            async with asyncio.timeout(SERVICE_TIMEOUT):
                await self.modem.set_bands(bands)
            self._store(bands=sorted(bands))
        finally:
            self.coordinator.async_update_listeners()

    async def async_set_operator(self, operator: str) -> None:
        """Select the network: ``"auto"`` or a numeric MCCMNC."""
        try:
            async with asyncio.timeout(SERVICE_TIMEOUT):
                await self.modem.set_operator(operator)
            self._store(operator=operator)
        finally:
            self.coordinator.async_update_listeners()

    async def async_set_dns_servers(self, servers: list[str]) -> None:
        """Fallback DNS servers, used when the network hands out none."""
        try:
            async with asyncio.timeout(SERVICE_TIMEOUT):
                await self.modem.set_dns_servers(servers)
            self._store(dns_servers=servers)
        finally:
            self.coordinator.async_update_listeners()

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

        Returns the event payload of the reply, or ``None`` when not waiting, when nothing arrived within
        ``response_timeout``, or when the connection ended first.
        """
        key: ConnectionKey = (transport, protocol, host, port)
        connection = self.connections.get(key)
        if connection is None or connection.closed:
            connection = self._open(key)
        reply = await self._async_exchange(connection, data, wait_response, response_timeout)
        return None if reply is None else self._connection_event(key, reply)

    async def async_send_to_client(
        self, client_id: int, data: bytes, *, wait_response: bool, response_timeout: float
    ) -> dict[str, Any] | None:
        """Send ``data`` to a client of the module's TCP server (``client_id`` from its data event)."""
        client = self.clients.get(client_id)
        if client is None or client.closed:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="client_not_connected",
                translation_placeholders={"client_id": str(client_id)},
            )
        reply = await self._async_exchange(client, data, wait_response, response_timeout)
        return None if reply is None else self._client_event(client_id, client, reply)

    @staticmethod
    async def _async_exchange(
        target: PersistentConnection | ServerClient, data: bytes, wait_response: bool, response_timeout: float
    ) -> bytes | None:
        if not wait_response:
            await target.send(data, timeout=SERVICE_TIMEOUT)
            return None
        try:
            return await target.request(data, response_timeout, send_timeout=SERVICE_TIMEOUT)
        except (ReceiveTimeoutError, NoReplyError):
            return None

    # ------------------------------------------------------------------ connections and clients

    @callback
    def _open(self, key: ConnectionKey) -> PersistentConnection:
        """A connection for ``key``: it opens at its first send, and reports what it receives to the bus."""
        transport, protocol, host, port = key
        connection = PersistentConnection(
            self.modem,
            protocol,
            host,
            port,
            transport=transport,
            idle_timeout=CONNECTION_IDLE_TIMEOUT,
            open_timeout=SERVICE_TIMEOUT,
            on_data=functools.partial(self._connection_data, key),
            on_state=functools.partial(self._connection_state, key),
            name=f"{self.entry.title} {transport} {protocol}:{host}:{port}",
        )
        self.connections[key] = connection
        connection.start()
        return connection

    @callback
    def _connection_state(self, key: ConnectionKey, state: PersistentState) -> None:
        connection = self.connections.get(key)
        if connection is not None and connection.closed:  # closed when idle: the next send opens afresh
            del self.connections[key]
        self.coordinator.async_update_listeners()

    def _connection_event(self, key: ConnectionKey, data: bytes) -> dict[str, Any]:
        _, protocol, host, port = key
        connection = self.connections.get(key)
        current = connection.connection if connection is not None else None
        if current is not None:
            host, port = current.remote_host or host, current.remote_port or port
        return data_event(protocol, host, port, data)

    @callback
    def _connection_data(self, key: ConnectionKey, data: bytes) -> None:
        self._on_data(self._connection_event(key, data))

    @callback
    def _client_connected(self, client: ServerClient) -> None:
        self._next_client_id += 1
        self.clients[self._next_client_id] = client
        self._client_ids[client] = self._next_client_id
        self.coordinator.async_update_listeners()

    @callback
    def _client_closed(self, client: ServerClient) -> None:
        client_id = self._client_ids.pop(client, None)
        if client_id is not None:
            self.clients.pop(client_id, None)
        self.coordinator.async_update_listeners()

    @callback
    def _client_data(self, client: ServerClient, data: bytes) -> None:
        client_id = self._client_ids.get(client)
        if client_id is not None:
            self._on_data(self._client_event(client_id, client, data))

    @staticmethod
    def _client_event(client_id: int, client: ServerClient, data: bytes) -> dict[str, Any]:
        payload = data_event("tcp", client.remote_host, client.remote_port, data)
        payload["client_id"] = client_id
        return payload

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
