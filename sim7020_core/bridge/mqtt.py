"""A paho-mqtt 2.x client handed over to asyncio.

paho runs its own network thread (``loop_start``) and reconnects by itself. Every paho callback only
copies its arguments and hands them to the event loop with ``loop.call_soon_threadsafe``; nothing blocks
in a callback. On the asyncio side:

* :meth:`MqttClient.subscribe` registers a handler that is called on the loop for each message; with
  ``manual_ack`` the message is acknowledged only when the handler's owner calls :meth:`MqttClient.ack`
  (after a durable commit);
* :meth:`MqttClient.publish` returns a future resolved when the broker acknowledged a QoS>0 publish;
* connect callbacks run on the loop after every (re)connection, so retained state is republished.

The client keeps a persistent session (``clean_session=False`` / MQTT 5 ``clean_start=False`` with a
session expiry) so the broker queues QoS1 messages while the bridge is down.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ..exceptions import Sim7020Error
from .config import MqttConfig

_LOGGER = logging.getLogger(__name__)


class _PahoNoiseFilter(logging.Filter):
    """paho's network thread logs "Client is not connected" at ERROR when a disconnect races its select."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Client is not connected")


_PAHO_LOGGER = logging.getLogger(f"{__name__}.paho")
_PAHO_LOGGER.addFilter(_PahoNoiseFilter())

#: First connection to the broker (the bridge retries in the background after this).
MQTT_CONNECT_TIMEOUT = 30.0
#: Reconnect backoff bounds (seconds).
MQTT_RECONNECT_MIN_DELAY = 1
MQTT_RECONNECT_MAX_DELAY = 30
#: How long the broker keeps our session while we are away (MQTT 5).
MQTT_SESSION_EXPIRY = 7 * 24 * 3600
#: paho's in-memory queue bound; past it, publishes fail and the durable queue keeps the data.
MQTT_MAX_QUEUED = 10_000
MQTT_MAX_INFLIGHT = 100
MQTT_DISCONNECT_TIMEOUT = 5.0


class MqttError(Sim7020Error):
    """The broker refused us or a publish failed."""


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A received MQTT message, copied out of paho's thread."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    dup: bool
    response_topic: str | None = None
    correlation_data: bytes | None = None


MessageHandler = Callable[[IncomingMessage], None]
ConnectHandler = Callable[[], Awaitable[None] | None]


def _set_nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    """Switch Nagle off on the broker connection: the bridge acks a message and then publishes on the same
    socket, and with Nagle each publish waited ~40 ms for the broker's delayed ACK (bench/bridge_bench.py)."""
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except (AttributeError, OSError) as err:  # e.g. a websocket wrapper: not worth failing for
        _LOGGER.debug("TCP_NODELAY not set on the broker socket: %s", err)


class MqttClient:
    """One paho client bound to an asyncio loop.

    :param config: broker settings
    :param client_id: the (stable) client id; the broker keeps our session under it
    :param will: ``(topic, payload)`` published retained by the broker if we vanish
    :param manual_ack: acknowledge QoS>0 messages only through :meth:`ack`
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        client_id: str,
        will: tuple[str, str] | None = None,
        manual_ack: bool = True,
    ) -> None:
        self.config = config
        self.client_id = client_id
        self.v5 = config.protocol == "5"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscriptions: dict[str, tuple[int, MessageHandler]] = {}
        self._connect_handlers: list[ConnectHandler] = []
        self._pending: dict[int, asyncio.Future[None]] = {}
        self._connected = asyncio.Event()
        self._first_result: asyncio.Future[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.connect_count = 0
        self._stopping = False
        self.stats = {"received": 0, "redelivered": 0, "published": 0}

        if self.v5:
            client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        else:
            client = mqtt.Client(
                CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311, clean_session=False
            )
        client.manual_ack_set(manual_ack)
        client.reconnect_delay_set(MQTT_RECONNECT_MIN_DELAY, MQTT_RECONNECT_MAX_DELAY)
        client.max_queued_messages_set(MQTT_MAX_QUEUED)
        client.max_inflight_messages_set(MQTT_MAX_INFLIGHT)
        client.enable_logger(_PAHO_LOGGER)
        if config.username is not None:
            client.username_pw_set(config.username, config.password)
        if config.tls is not None:
            tls = config.tls
            client.tls_set(
                ca_certs=tls.ca_certs,
                certfile=tls.certfile,
                keyfile=tls.keyfile,
                cert_reqs=ssl.CERT_REQUIRED,
                tls_version=ssl.PROTOCOL_TLS_CLIENT,
            )
            if tls.insecure:
                client.tls_insecure_set(True)
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=True)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_socket_open = _set_nodelay
        self._client = client

    # ------------------------------------------------------------------ lifecycle

    @property
    def connected(self) -> bool:
        """True while the broker session is up."""
        return self._connected.is_set()

    def add_connect_handler(self, handler: ConnectHandler) -> None:
        """Call ``handler`` on the loop after every successful (re)connection."""
        self._connect_handlers.append(handler)

    async def start(self, *, wait: bool = True, timeout: float | None = None) -> None:  # noqa: ASYNC109
        """Start the network thread and connect (paho keeps reconnecting on its own afterwards).

        :param wait: wait for the first CONNACK; raise :class:`MqttError` when the broker refuses us
        :param timeout: bound on that wait (default :data:`MQTT_CONNECT_TIMEOUT`)
        """
        if timeout is None:
            timeout = MQTT_CONNECT_TIMEOUT
        self._loop = asyncio.get_running_loop()
        self._first_result = self._loop.create_future()
        kwargs: dict[str, Any] = {"keepalive": self.config.keepalive}
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            props.SessionExpiryInterval = MQTT_SESSION_EXPIRY
            kwargs["clean_start"] = False
            kwargs["properties"] = props
        self._client.connect_async(self.config.host, self.config.port, **kwargs)
        self._client.loop_start()
        if wait:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._first_result)
            except TimeoutError:
                raise MqttError(
                    f"no answer from the MQTT broker {self.config.host}:{self.config.port}"
                    f" within {timeout:g} s"
                ) from None

    async def stop(self) -> None:
        """Disconnect cleanly (the broker does not publish the will) and stop the network thread."""
        if self._loop is None:
            return
        self._stopping = True
        if self.connected:
            self._client.disconnect()
        try:
            async with asyncio.timeout(MQTT_DISCONNECT_TIMEOUT):
                await asyncio.to_thread(self._client.loop_stop)
        except TimeoutError:
            _LOGGER.warning("paho's network thread did not stop within %g s", MQTT_DISCONNECT_TIMEOUT)
        self._connected.clear()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(MqttError("the MQTT client stopped before the broker acknowledged"))
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        self._loop = None

    # ------------------------------------------------------------------ subscribe / publish

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Subscribe now (when connected) and again after every reconnection."""
        self._subscriptions[topic_filter] = (qos, handler)
        if self.connected:
            self._client.subscribe(topic_filter, qos)

    def ack(self, mid: int, qos: int) -> None:
        """Acknowledge a received message (manual ack mode): call after it is safely stored."""
        if qos > 0:
            self._client.ack(mid, qos)

    def publish(
        self,
        topic: str,
        payload: str | bytes,
        *,
        qos: int = 1,
        retain: bool = False,
        correlation_data: bytes | None = None,
    ) -> asyncio.Future[None]:
        """Publish; the returned future resolves when the broker acknowledged it (QoS>0) or it was written.

        While disconnected, QoS>0 messages wait in paho's memory queue and go out on reconnect.
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        properties = None
        if correlation_data is not None and self.v5:
            properties = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            properties.CorrelationData = correlation_data
        info = self._client.publish(topic, payload, qos=qos, retain=retain, properties=properties)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN) or (
            info.rc == mqtt.MQTT_ERR_NO_CONN and qos == 0
        ):
            fut.set_exception(MqttError(f"publish on {topic!r} failed: {mqtt.error_string(info.rc)}"))
            return fut
        self.stats["published"] += 1
        if qos == 0:
            fut.set_result(None)
        else:
            self._pending[info.mid] = fut
        return fut

    # ------------------------------------------------------------------ paho thread → loop

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(func, *args)
        except RuntimeError:  # loop closed while we were shutting down
            pass

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        # paho thread: subscribe right away (non-blocking), then tell the loop.
        failed = bool(getattr(reason_code, "is_failure", False))
        if not failed:
            for topic_filter, (qos, _handler) in list(self._subscriptions.items()):
                client.subscribe(topic_filter, qos)
        self._call(
            self._connected_on_loop, failed, str(reason_code), bool(getattr(flags, "session_present", False))
        )

    def _connected_on_loop(self, failed: bool, reason: str, session_present: bool) -> None:
        first = self._first_result
        if failed:
            _LOGGER.error(
                "MQTT broker %s:%s refused the connection: %s", self.config.host, self.config.port, reason
            )
            if first is not None and not first.done():
                first.set_exception(MqttError(f"the MQTT broker refused the connection: {reason}"))
                # stop paho from hammering the broker with a bad password; the caller decides
            return
        self.connect_count += 1
        self._connected.set()
        _LOGGER.info(
            "connected to MQTT broker %s:%s as %s (session %s)",
            self.config.host,
            self.config.port,
            self.client_id,
            "resumed" if session_present else "new",
        )
        if first is not None and not first.done():
            first.set_result(None)
        for handler in list(self._connect_handlers):
            result = handler()
            if asyncio.iscoroutine(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("MQTT connect handler failed", exc_info=task.exception())

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        self._call(self._disconnected_on_loop, str(reason_code))

    def _disconnected_on_loop(self, reason: str) -> None:
        if self._connected.is_set() and not self._stopping:
            _LOGGER.warning("disconnected from MQTT broker (%s); paho reconnects", reason)
        self._connected.clear()

    def _on_message(self, _client: mqtt.Client, _userdata: Any, msg: mqtt.MQTTMessage) -> None:
        response_topic = None
        correlation = None
        props = getattr(msg, "properties", None)
        if props is not None:
            response_topic = getattr(props, "ResponseTopic", None)
            correlation = getattr(props, "CorrelationData", None)
        incoming = IncomingMessage(
            topic=msg.topic,
            payload=bytes(msg.payload),
            qos=msg.qos,
            retain=bool(msg.retain),
            mid=msg.mid,
            dup=bool(msg.dup),
            response_topic=response_topic,
            correlation_data=bytes(correlation) if correlation is not None else None,
        )
        self._call(self._dispatch, incoming)

    def _dispatch(self, msg: IncomingMessage) -> None:
        self.stats["received"] += 1
        if msg.dup:
            self.stats["redelivered"] += 1
        for topic_filter, (_qos, handler) in list(self._subscriptions.items()):
            if mqtt.topic_matches_sub(topic_filter, msg.topic):
                handler(msg)
                return
        _LOGGER.debug("message on %s matches no subscription; acknowledged and dropped", msg.topic)
        self.ack(msg.mid, msg.qos)

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, _reason_code: Any, _properties: Any
    ) -> None:
        self._call(self._published_on_loop, mid)

    def _published_on_loop(self, mid: int) -> None:
        # The publish call registered the future before this callback could be scheduled (same loop).
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
