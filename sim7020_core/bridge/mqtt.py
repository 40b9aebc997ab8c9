"""A paho-mqtt 2.x client driven by the asyncio event loop.

paho runs on the event loop itself, through its external-loop API, not on a network thread of its own: the
broker socket is watched with ``loop.add_reader`` (``loop_read``), packets paho queues are written by one
``loop_write`` per loop iteration (``add_writer`` only while the socket is full), and ``loop_misc``
(keepalive) runs on a timer armed for the next keepalive deadline. So a message costs no thread hand-off,
and an idle connection wakes the process about once per keepalive period. Only the connection attempt (name
resolution, TCP connect, TLS handshake: blocking calls in paho) runs on a worker thread; reconnecting after a
lost connection is this module's job, with the same capped backoff paho used
(:data:`MQTT_RECONNECT_MIN_DELAY` … :data:`MQTT_RECONNECT_MAX_DELAY`). Every paho callback runs on the loop:

* :meth:`MqttClient.subscribe` registers a handler that is called on the loop for each message; with
  ``manual_ack`` the message is acknowledged only when the handler's owner calls :meth:`MqttClient.ack`
  (after a durable commit). Messages go to their handler through a dict of exact topics; filters with
  wildcards are matched in the order they were subscribed (``$share/<group>/`` is not part of the topic a
  message arrives on, so it is left out of the matching);
* :meth:`MqttClient.publish` returns a future resolved when the broker acknowledged a QoS>0 publish;
* connect callbacks run on the loop after every (re)connection, so retained state is republished.

A ``persistent`` client keeps its session (``clean_session=False`` / MQTT 5 ``clean_start=False`` with a
session expiry) so the broker queues QoS1 messages while the bridge is down; the bridge uses one for route
uplinks and a clean one for commands and state (docs/bridge.md, "Two connections per modem").

Connection failures are explained, not just retried: :class:`_PahoClient` keeps the exception of a failed
connection attempt, and :func:`describe_connect_error` turns it into words (a certificate that expired or
names another host, a CA that did not sign it, nothing listening …). Each distinct failure is logged once;
failures an operator must fix (TLS trust, refused credentials) go to ``on_problem`` instead, when given (the
bridge's problem log says them, once, and puts them in the state).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from ..exceptions import Sim7020Error
from ..reconnect import Backoff
from .config import MqttConfig

_LOGGER = logging.getLogger(__name__)


class _PahoNoiseFilter(logging.Filter):
    """paho logs "Client is not connected" at ERROR when a disconnect races a read or write."""

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
#: Bounds on the keepalive timer (seconds): it is armed for the next keepalive deadline, within these.
MQTT_MISC_MIN_INTERVAL = 0.5

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
    """paho's client, remembering why the last connection attempt failed (so that the bridge can say why,
    whoever called :meth:`reconnect`)."""

    last_connect_error: BaseException | None = None

    def reconnect(self) -> MQTTErrorCode:
        try:
            result = super().reconnect()
        except OSError as err:  # ssl.SSLError and socket errors are OSErrors
            self.last_connect_error = err
            raise
        self.last_connect_error = None
        return result


@dataclass(frozen=True, slots=True)
class IncomingMessage:
    """A received MQTT message, copied out of paho's message object."""

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


def matching_filter(topic_filter: str) -> str:
    """The part of a subscription's filter a message topic is matched against: a shared subscription
    (``$share/<group>/<filter>``) delivers messages on topics of ``<filter>``."""
    if topic_filter.startswith("$share/"):
        parts = topic_filter.split("/", 2)
        return parts[2] if len(parts) == 3 else topic_filter
    return topic_filter


def _levels_match(filter_levels: list[str], topic: str) -> bool:
    """MQTT topic matching of a split filter (``+``, ``#``) against a topic; wildcards at the first level do
    not match topics starting with ``$``."""
    if topic.startswith("$") and filter_levels and filter_levels[0] in ("+", "#"):
        return False
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            return True
        if index >= len(topic_levels):
            return False
        if level != "+" and level != topic_levels[index]:
            return False
    return len(topic_levels) == len(filter_levels)


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
        self._loop_thread: int | None = None
        self._subscriptions: dict[str, tuple[int, MessageHandler]] = {}
        #: dispatch: exact topics → handler; wildcard filters (split) in subscription order
        self._exact: dict[str, MessageHandler] = {}
        self._wildcards: list[tuple[list[str], MessageHandler]] = []
        # the socket on the loop: the fds watched, a write pending, the keepalive timer, reconnecting
        self._reader_fd: int | None = None
        self._writer_fd: int | None = None
        self._flush_scheduled = False
        self._misc_timer: asyncio.TimerHandle | None = None
        self._reconnect_timer: asyncio.TimerHandle | None = None
        self._connecting: asyncio.Future[Any] | None = None
        self._closed_socket: asyncio.Event = asyncio.Event()
        self._backoff = Backoff(MQTT_RECONNECT_MIN_DELAY, MQTT_RECONNECT_MAX_DELAY)
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
        client.on_socket_close = self._on_socket_close
        client.on_socket_register_write = self._on_register_write
        client.on_socket_unregister_write = self._on_unregister_write
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
        """Connect (and keep reconnecting in the background afterwards, with backoff).

        :param wait: wait for the first CONNACK; raise :class:`MqttRefusedError` when the broker refuses us
        :param timeout: bound on that wait (default :data:`MQTT_CONNECT_TIMEOUT`); then
            :class:`MqttError`, naming the last failure. A failure only an operator can fix (TLS trust)
            ends the wait at once with :class:`MqttError`; the client keeps retrying either way
        :param fail_fast: raise :class:`MqttError` on the first failed attempt instead of waiting for a retry
        """
        if timeout is None:
            timeout = MQTT_CONNECT_TIMEOUT
        self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()
        self._first_result = self._loop.create_future()
        self._fail_fast = fail_fast
        self._stopping = False
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
        self._connect_now()
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
        """Disconnect cleanly (the broker does not publish the will) and stop reconnecting."""
        loop = self._loop
        if loop is None:
            return
        self._stopping = True
        if self._reconnect_timer is not None:
            self._reconnect_timer.cancel()
            self._reconnect_timer = None
        if self._connecting is not None:  # an attempt on the worker thread: let it end (bounded by paho)
            try:
                async with asyncio.timeout(MQTT_DISCONNECT_TIMEOUT):
                    await asyncio.wait({self._connecting})
            except TimeoutError:
                _LOGGER.warning(
                    "%s: a connection attempt did not end within %g s", self.label, MQTT_DISCONNECT_TIMEOUT
                )
        if self._client.socket() is not None:
            self._closed_socket.clear()
            if self.connected:
                self._client.disconnect()  # written by the next flush; paho closes the socket after it
                try:
                    async with asyncio.timeout(MQTT_DISCONNECT_TIMEOUT):
                        await self._closed_socket.wait()
                except TimeoutError:
                    _LOGGER.warning(
                        "%s: the broker connection did not close within %g s",
                        self.label,
                        MQTT_DISCONNECT_TIMEOUT,
                    )
        self._unwatch()
        if self._client.socket() is not None:
            self._client._reset_sockets()  # paho has no public close without DISCONNECT
        if self._misc_timer is not None:
            self._misc_timer.cancel()
            self._misc_timer = None
        self._connected.clear()
        for fut in self._pending.values():
            if not fut.done():
                fut.set_exception(MqttError("the MQTT client stopped before the broker acknowledged"))
        self._pending.clear()
        for task in list(self._tasks):
            task.cancel()
        self._loop = None

    # ------------------------------------------------------------------ paho on the event loop

    def _connect_now(self) -> None:
        """One connection attempt: paho's blocking part (resolve, connect, TLS) on a worker thread."""
        self._reconnect_timer = None
        loop = self._loop
        if loop is None or self._stopping or self._connecting is not None:
            return
        self._unwatch()
        self._connecting = loop.run_in_executor(None, self._client.reconnect)
        self._connecting.add_done_callback(self._connect_attempted)

    def _connect_attempted(self, fut: asyncio.Future[Any]) -> None:
        self._connecting = None
        err = fut.exception() if not fut.cancelled() else None
        if err is None and not fut.cancelled():
            sock = self._client.socket()
            loop = self._loop
            if sock is not None and loop is not None and not self._stopping:
                fd = sock.fileno()
                loop.add_reader(fd, self._on_readable)
                self._reader_fd = fd
                self._schedule_flush()  # the CONNECT packet (queued on the worker thread)
                self._arm_misc()  # a broker that never answers the CONNECT is given up at the keepalive
            return
        if self._stopping:
            return
        if not isinstance(err, OSError):  # a bug or a bad setting (paho's ValueError …): still say why
            self._client.last_connect_error = err
        self._on_connect_fail(self._client, None)
        self._reconnect_later()

    def _reconnect_later(self) -> None:
        loop = self._loop
        if (
            loop is None
            or self._stopping
            or self._reconnect_timer is not None
            or self._connecting is not None
        ):
            return
        delay = self._backoff.fail()
        _LOGGER.debug("%s: reconnecting in %.1f s", self.label, delay)
        self._reconnect_timer = loop.call_later(delay, self._connect_now)

    def _unwatch(self) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            if self._reader_fd is not None:
                loop.remove_reader(self._reader_fd)
            if self._writer_fd is not None:
                loop.remove_writer(self._writer_fd)
        self._reader_fd = self._writer_fd = None

    def _on_socket_close(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        if threading.get_ident() == self._loop_thread:  # (a stale socket closed by an attempt: unwatched)
            self._unwatch()
            if self._misc_timer is not None:
                self._misc_timer.cancel()
                self._misc_timer = None
            self._closed_socket.set()

    def _on_register_write(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        if threading.get_ident() == self._loop_thread:
            self._schedule_flush()
        else:
            self._call(self._schedule_flush)

    def _on_unregister_write(self, _client: mqtt.Client, _userdata: Any, _sock: Any) -> None:
        if self._writer_fd is not None and threading.get_ident() == self._loop_thread:
            loop = self._loop
            if loop is not None and not loop.is_closed():
                loop.remove_writer(self._writer_fd)
            self._writer_fd = None

    def _schedule_flush(self) -> None:
        """Write what paho queued once per loop iteration (packets queued together go out together)."""
        if not self._flush_scheduled and self._loop is not None and self._writer_fd is None:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        client = self._client
        client.loop_write()
        sock = client.socket()
        if client.want_write() and sock is not None and self._writer_fd is None and self._loop is not None:
            fd = sock.fileno()  # the socket is full: write when it drains
            self._loop.add_writer(fd, self._on_writable)
            self._writer_fd = fd

    def _on_writable(self) -> None:
        self._client.loop_write()  # unregisters (remove_writer) once everything is written

    def _on_readable(self) -> None:
        client = self._client
        client.loop_read()
        sock = client.socket()
        # TLS: records already decrypted wait in the SSL object, not in the socket: read them too
        while isinstance(sock, ssl.SSLSocket) and sock.pending() and client.socket() is sock:
            client.loop_read()

    def _arm_misc(self) -> None:
        """Run paho's keepalive bookkeeping at its next deadline (a PINGREQ, or giving up on the broker)."""
        loop = self._loop
        if loop is None:
            return
        if self._misc_timer is not None:
            self._misc_timer.cancel()
        keepalive = float(self.config.keepalive or 60)
        client = self._client
        # paho's bookkeeping (private, read only): the last packet each way, an unanswered PINGREQ
        last_out = getattr(client, "_last_msg_out", None)
        last_in = getattr(client, "_last_bytes_received", None)
        ping = getattr(client, "_ping_t", 0) or 0
        if isinstance(last_out, float) and isinstance(last_in, float):
            now = mqtt.time_func()
            due = min(last_out, last_in) + keepalive
            if ping > 0:
                due = min(due, ping + keepalive)
            delay = min(max(due - now, MQTT_MISC_MIN_INTERVAL), keepalive)
        else:
            delay = keepalive / 4
        self._misc_timer = loop.call_later(delay, self._misc)

    def _misc(self) -> None:
        self._misc_timer = None
        if self._client.socket() is None:
            return
        self._client.loop_misc()
        if self._client.socket() is not None:
            self._arm_misc()

    # ------------------------------------------------------------------ subscribe / publish

    def subscribe(self, topic_filter: str, handler: MessageHandler, qos: int = 1) -> None:
        """Subscribe now (when connected) and again after every reconnection."""
        self._subscriptions[topic_filter] = (qos, handler)
        self._index_subscriptions()
        if self.connected:
            self._client.subscribe(topic_filter, qos)

    def _index_subscriptions(self) -> None:
        self._exact.clear()
        self._wildcards.clear()
        for topic_filter, (_qos, handler) in self._subscriptions.items():
            matched = matching_filter(topic_filter)
            if "+" in matched or "#" in matched:
                self._wildcards.append((matched.split("/"), handler))
            else:
                self._exact.setdefault(matched, handler)

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

    # ------------------------------------------------------------------ paho callbacks

    def _call(self, func: Callable[..., None], *args: Any) -> None:
        """Run ``func`` on the loop: now when called there (paho's callbacks are), else handed over."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if threading.get_ident() == self._loop_thread:
            func(*args)
            return
        try:
            loop.call_soon_threadsafe(func, *args)
        except RuntimeError:  # loop closed while we were shutting down
            pass

    def _on_connect(
        self, client: mqtt.Client, _userdata: Any, flags: Any, reason_code: Any, _properties: Any
    ) -> None:
        # subscribe right away (queued, written by the next flush), then tell the owner
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
        self._backoff.reset()
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
        # a connection attempt raised (kept by _PahoClient.reconnect)
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
            _LOGGER.warning("%s: disconnected from MQTT broker (%s); reconnecting", self.label, reason)
        else:  # the broker dropped us between the TCP connection and its CONNACK
            self._failed(
                f"the broker closed the connection before accepting it ({reason}); a TLS port without"
                " mqtt.tls, or a broker that rejects this client",
                False,
            )
        self._connected.clear()
        self._reconnect_later()

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
        handler = self._exact.get(msg.topic)
        if handler is None:
            for levels, candidate in self._wildcards:
                if _levels_match(levels, msg.topic):
                    handler = candidate
                    break
            else:
                _LOGGER.debug("message on %s matches no subscription; acknowledged and dropped", msg.topic)
                self.ack(msg.mid, msg.qos)
                return
        try:
            handler(msg)
        except Exception:  # a handler's bug must not break paho's read of the socket
            _LOGGER.exception("%s: the handler of a message on %s failed", self.label, msg.topic)

    def _on_publish(
        self, _client: mqtt.Client, _userdata: Any, mid: int, _reason_code: Any, _properties: Any
    ) -> None:
        self._call(self._published_on_loop, mid)

    def _published_on_loop(self, mid: int) -> None:
        # The publish call registered the future before the packet was written (the write is deferred to the
        # loop's next iteration), so before its PUBACK could be read.
        fut = self._pending.pop(mid, None)
        if fut is not None and not fut.done():
            fut.set_result(None)
