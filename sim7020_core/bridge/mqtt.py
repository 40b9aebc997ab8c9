"""A paho-mqtt 2.x client handed over to asyncio.

paho runs its own network thread (``loop_start``) and reconnects by itself. Every paho callback only
copies its arguments and hands them to the event loop with ``loop.call_soon_threadsafe``; nothing blocks
in a callback. On the asyncio side:

* :meth:`MqttClient.subscribe` registers a handler that is called on the loop for each message; with
  ``manual_ack`` the message is acknowledged only when the handler's owner calls :meth:`MqttClient.ack`
  (after a durable commit);
* :meth:`MqttClient.publish` returns a future resolved when the broker acknowledged a QoS>0 publish;
* connect callbacks run on the loop after every (re)connection, so retained state is republished.

A ``persistent`` client keeps its session (``clean_session=False`` / MQTT 5 ``clean_start=False`` with a
session expiry) so the broker queues QoS1 messages while the bridge is down; the bridge uses one for route
uplinks and a clean one for commands and state (docs/bridge.md, "Two connections per modem").

Connection failures are explained, not just retried: paho's own loop swallows the exception of a failed
connection attempt (it only calls ``on_connect_fail``), so :class:`_PahoClient` keeps it, and
:func:`describe_connect_error` turns it into words (a certificate that expired or names another host, a CA
that did not sign it, nothing listening …). Each distinct failure is logged once; failures an operator must
fix (TLS trust, refused credentials) go to ``on_problem`` instead, when given (the bridge's problem log says
them, once, and puts them in the state).
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
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
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
#: MQTT 5 Receive Maximum of a client with ``receive_maximum`` set: the most unacknowledged messages the
#: broker sends us (a route holds that many in memory while the disk is full).
MQTT_RECEIVE_MAXIMUM = 100
#: Bound on the connection attempt of ``sim7020 bridge --check``.
MQTT_CHECK_TIMEOUT = 15.0

# OpenSSL's X509_V_ERR_* codes (ssl.SSLCertVerificationError.verify_code) the bridge explains in words
_X509_NOT_YET_VALID = 9
_X509_EXPIRED = 10
#: no issuer / a signature by another CA of the same name / self-signed / issuer not in ca_certs
_X509_UNTRUSTED = frozenset({2, 7, 18, 19, 20, 21})
_X509_HOSTNAME_MISMATCH = 62
_X509_IP_MISMATCH = 64
#: CONNACK reasons only an operator can fix (compared in lower case)
_REFUSALS_NEEDING_AN_OPERATOR = (
    "not authorized",
    "bad user name or password",
    "client identifier not valid",
    "banned",
    "bad authentication method",
)


class MqttError(Sim7020Error):
    """The broker refused us, could not be reached, or a publish failed."""


class MqttRefusedError(MqttError):
    """The broker answered the connection with a refusal (CONNACK failure: credentials, client id …)."""


def describe_connect_error(err: BaseException | None, config: MqttConfig) -> tuple[str, bool]:
    """Why a connection attempt to the broker failed, in words, and whether only an operator can fix it.

    :returns: ``(reason, needs_operator)``
    """
    where = f"{config.host}:{config.port}"
    if err is None:
        return "the connection attempt failed (no reason given)", False
    if isinstance(err, ssl.SSLCertVerificationError):
        code, detail = err.verify_code, err.verify_message or str(err)
        if code == _X509_EXPIRED:
            text = (
                f"TLS: the broker's certificate has expired ({detail}); renew the broker's certificate"
                " (or fix this machine's clock)"
            )
        elif code == _X509_NOT_YET_VALID:
            text = f"TLS: the broker's certificate is not valid yet ({detail}); check this machine's clock"
        elif code in (_X509_HOSTNAME_MISMATCH, _X509_IP_MISMATCH):
            text = (
                f"TLS: the broker's certificate is not valid for {config.host!r} ({detail}); set mqtt.host to"
                " a name the certificate lists, or give the broker a certificate for this name"
            )
        elif code in _X509_UNTRUSTED:
            ca = config.tls.ca_certs if config.tls is not None and config.tls.ca_certs else "the system CAs"
            text = f"TLS: the broker's certificate is not signed by a CA in {ca} ({detail})"
        else:
            text = f"TLS: the broker's certificate was rejected ({detail})"
        return text, True
    if config.tls is not None and (
        isinstance(err, ConnectionResetError | BrokenPipeError | ssl.SSLEOFError)
        or (isinstance(err, ssl.SSLError) and "UNEXPECTED_EOF" in str(err.reason or err).upper())
    ):
        # A plain MQTT broker takes the ClientHello for a malformed packet and hangs up (how OpenSSL words the
        # hang-up depends on its version: an SSLEOFError, or an SSLError "UNEXPECTED_EOF_WHILE_READING").
        return (
            f"the broker closed the connection during the TLS handshake: {where} does not speak TLS? (plain"
            " MQTT usually listens on 1883, TLS on 8883)",
            True,
        )
    if isinstance(err, ssl.SSLError):
        detail = str(err.reason or err)
        if any(hint in detail.upper() for hint in ("WRONG_VERSION_NUMBER", "RECORD_LAYER", "PACKET_LENGTH")):
            return (
                f"TLS handshake failed ({detail}): {where} does not speak TLS (a plain MQTT port? TLS is"
                " usually 8883)",
                True,
            )
        if "CERTIFICATE_REQUIRED" in detail.upper():
            return "TLS: the broker wants a client certificate (set mqtt.tls.certfile and keyfile)", True
        return f"TLS handshake failed: {detail}", True
    if isinstance(err, ConnectionRefusedError):
        return f"connection refused: nothing listens on {where} (is the broker running?)", False
    if isinstance(err, socket.gaierror):
        return f"cannot resolve the broker's host name {config.host!r}: {err.strerror or err}", False
    if isinstance(err, TimeoutError):
        return f"no answer from {where} (a firewall, or the wrong address?)", False
    if isinstance(err, OSError):
        return f"{where}: {err.strerror or err}", False
    return f"{type(err).__name__}: {err}", False


def describe_refusal(reason: str) -> tuple[str, bool]:
    """A CONNACK refusal in words, and whether only an operator can fix it."""
    lowered = reason.lower()
    needs_operator = any(text in lowered for text in _REFUSALS_NEEDING_AN_OPERATOR)
    hint = ""
    if "password" in lowered or "authori" in lowered:
        hint = " (check mqtt.username and mqtt.password, and the broker's ACL)"
    return f"the broker refused the connection: {reason}{hint}", needs_operator


async def check_broker(config: MqttConfig, *, client_id: str, timeout: float = MQTT_CHECK_TIMEOUT) -> str:  # noqa: ASYNC109
    """Connect to the broker once (a clean session, no will, nothing subscribed) and disconnect.

    :returns: what the connection used, e.g. ``"MQTT 3.1.1, TLS, user bridge"``
    :raises MqttError: why it failed (the same words the bridge logs)
    """
    client = MqttClient(config, client_id=client_id, persistent=False, label="check")
    try:
        await client.start(timeout=timeout, fail_fast=True)
    finally:
        await client.stop()
    parts = [f"MQTT {config.protocol}"]
    if config.tls is not None:
        parts.append("TLS")
    if config.username:
        parts.append(f"user {config.username}")
    return ", ".join(parts)


class _PahoClient(mqtt.Client):
    """paho's client, remembering why the last connection attempt failed.

    paho's network thread calls :meth:`reconnect` and, when it raises, only calls ``on_connect_fail`` without
    the exception (paho/mqtt/client.py, ``loop_forever``); keeping it here lets the bridge say why.
    """

    last_connect_error: BaseException | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            result = super().reconnect()
        except OSError as err:  # ssl.SSLError and socket errors are OSErrors
            self.last_connect_error = err
            raise
        self.last_connect_error = None
        return result


def filter_matches(topic_filter: str, topic: str) -> bool:
    """Whether a message on ``topic`` belongs to the subscription ``topic_filter``.

    A shared subscription (MQTT 5, ``$share/<group>/<filter>``) delivers messages on the topics its
    ``<filter>`` matches; paho's ``topic_matches_sub`` does not know the prefix.
    """
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        if len(parts) == 3:
            topic_filter = parts[2]
    return bool(mqtt.topic_matches_sub(topic_filter, topic))


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
    :param persistent: keep the session at the broker while we are away (else a clean session each time)
    :param receive_maximum: MQTT 5: the most unacknowledged messages the broker may send us
    :param on_problem: told (on the loop) a failure only an operator can fix, and None once connected again
    :param label: what this connection is for, in log lines
    """

    def __init__(
        self,
        config: MqttConfig,
        *,
        client_id: str,
        will: tuple[str, str] | None = None,
        manual_ack: bool = True,
        persistent: bool = True,
        receive_maximum: int | None = None,
        on_problem: Callable[[str | None], None] | None = None,
        label: str = "MQTT",
    ) -> None:
        self.config = config
        self.client_id = client_id
        self.persistent = persistent
        self.receive_maximum = receive_maximum
        self.label = label
        self._on_problem = on_problem
        #: why the last connection attempt failed (None once connected)
        self.last_failure: str | None = None
        self._failures = 0
        self._fail_fast = False
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
            client = _PahoClient(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        else:
            client = _PahoClient(
                CallbackAPIVersion.VERSION2,
                client_id=client_id,
                protocol=mqtt.MQTTv311,
                clean_session=not persistent,
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
        client.on_connect_fail = self._on_connect_fail
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

    async def start(
        self,
        *,
        wait: bool = True,
        timeout: float | None = None,  # noqa: ASYNC109
        fail_fast: bool = False,
    ) -> None:
        """Start the network thread and connect (paho keeps reconnecting on its own afterwards).

        :param wait: wait for the first CONNACK; raise :class:`MqttRefusedError` when the broker refuses us
        :param timeout: bound on that wait (default :data:`MQTT_CONNECT_TIMEOUT`); then
            :class:`MqttError`, naming the last failure. A failure only an operator can fix (TLS trust)
            ends the wait at once with :class:`MqttError`; paho keeps retrying either way
        :param fail_fast: raise :class:`MqttError` on the first failed attempt instead of waiting for a retry
        """
        if timeout is None:
            timeout = MQTT_CONNECT_TIMEOUT
        self._loop = asyncio.get_running_loop()
        self._first_result = self._loop.create_future()
        self._fail_fast = fail_fast
        kwargs: dict[str, Any] = {"keepalive": self.config.keepalive}
        if self.v5:
            props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            if self.persistent:
                props.SessionExpiryInterval = MQTT_SESSION_EXPIRY
            if self.receive_maximum is not None:
                props.ReceiveMaximum = self.receive_maximum
            kwargs["clean_start"] = not self.persistent
            kwargs["properties"] = props
        self._client.connect_async(self.config.host, self.config.port, **kwargs)
        self._client.loop_start()
        if wait:
            try:
                async with asyncio.timeout(timeout):
                    await asyncio.shield(self._first_result)
            except TimeoutError:
                raise MqttError(
                    f"cannot connect to the MQTT broker {self.config.host}:{self.config.port} within"
                    f" {timeout:g} s: {self.last_failure or 'no answer'}"
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
            text, needs_operator = describe_refusal(reason)
            if first is not None and not first.done():
                first.set_exception(
                    MqttRefusedError(f"MQTT broker {self.config.host}:{self.config.port}: {text}")
                )  # the caller decides whether to keep trying
            self._failed(text, needs_operator)
            return
        self.connect_count += 1
        self._connected.set()
        if self.last_failure is not None:
            _LOGGER.warning(
                "%s: connected to the MQTT broker %s:%s again after %d failed attempt(s)",
                self.label,
                self.config.host,
                self.config.port,
                self._failures,
            )
            self.last_failure = None
            self._failures = 0
            if self._on_problem is not None:
                self._on_problem(None)
        _LOGGER.info(
            "%s: connected to MQTT broker %s:%s as %s (session %s)",
            self.label,
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

    def _on_connect_fail(self, client: mqtt.Client, _userdata: Any) -> None:
        # paho thread, inside paho's ``except OSError`` around reconnect()
        err = client.last_connect_error if isinstance(client, _PahoClient) else None
        text, needs_operator = describe_connect_error(err, self.config)
        self._call(self._failed, text, needs_operator)

    def _failed(self, text: str, needs_operator: bool) -> None:
        """A connection attempt failed: log it once per distinct reason, report it, maybe end the wait."""
        self._failures += 1
        if self._stopping:
            return
        first = self._first_result
        if self._fail_fast and first is not None and not first.done():
            self.last_failure = text  # the caller reports it
            first.set_exception(MqttError(f"MQTT broker {self.config.host}:{self.config.port}: {text}"))
            return
        if needs_operator and first is not None and not first.done():
            # waiting out the start timeout would not help: end it (paho keeps retrying in the background)
            first.set_exception(MqttError(f"MQTT broker {self.config.host}:{self.config.port}: {text}"))
        if text == self.last_failure:
            _LOGGER.debug("%s: connection attempt %d failed again: %s", self.label, self._failures, text)
            return
        self.last_failure = text
        if needs_operator and self._on_problem is not None:  # the problem log says it, once
            self._on_problem(f"MQTT broker {self.config.host}:{self.config.port}: {text}")
            return
        if self._on_problem is not None:
            self._on_problem(None)  # a different failure now (the broker restarting …)
        _LOGGER.log(
            logging.ERROR if needs_operator else logging.WARNING,
            "%s: cannot connect to the MQTT broker %s:%s: %s; retrying every %d s at most",
            self.label,
            self.config.host,
            self.config.port,
            text,
            MQTT_RECONNECT_MAX_DELAY,
        )

    def _on_disconnect(
        self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        self._call(self._disconnected_on_loop, str(reason_code))

    def _disconnected_on_loop(self, reason: str) -> None:
        if self._stopping:
            pass
        elif self._connected.is_set():
            _LOGGER.warning("%s: disconnected from MQTT broker (%s); paho reconnects", self.label, reason)
        else:  # the broker dropped us between the TCP connection and its CONNACK
            self._failed(
                f"the broker closed the connection before accepting it ({reason}); a TLS port without"
                " mqtt.tls, or a broker that rejects this client",
                False,
            )
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
            if filter_matches(topic_filter, msg.topic):
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
