"""Routes: MQTT uplink topics → a connection on the modem → MQTT downlink topic, durably.

Uplink: each message on the route's filters is decoded with the route's encoding, checked against the
largest payload the route's transport sends (larger ones are dropped before they take any disk space),
committed to the sqlite queue, and only then acknowledged to the broker. While the queue cannot store
(a full disk) the messages are kept in memory, unacknowledged, and stored when the disk has room again.
A sender task sends queued messages in order on the route's connection and deletes each one after the
modem accepted it (for transports with an acknowledged send, after the acknowledgement). While the modem
is away (reboot, PSM, link lost) the messages wait in the queue.

Downlink: data arriving on the connection is encoded, committed to the queue, published (QoS per route)
and deleted when the broker acknowledged the publish.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable
from typing import Any, Protocol

from ..codecs import Codec
from ..exceptions import PayloadError, Sim7020Error, UnsupportedError
from .config import RouteConfig
from .mqtt import IncomingMessage, MqttClient
from .queue import DurableQueue, QueueError

_LOGGER = logging.getLogger(__name__)

#: Bound on one send on the modem (a wake from PSM included).
ROUTE_SEND_TIMEOUT = 60.0
#: Bound on opening the route's connection.
ROUTE_OPEN_TIMEOUT = 60.0
#: Bound on the broker's acknowledgement of a downlink publish before it is retried.
DOWNLINK_ACK_TIMEOUT = 30.0
#: Retry backoff after a failed open/send (seconds, doubled up to the max).
ROUTE_RETRY_MIN = 0.5
ROUTE_RETRY_MAX = 30.0
#: Messages read from the queue at a time.
QUEUE_BATCH = 64
#: Backoff of storing uplink messages the queue refused with an error retrying in the queue cannot fix.
STORE_RETRY_MAX = 30.0
#: Bound on storing the last uplink messages at shutdown (unstored ones are redelivered to the next run).
STOP_STORE_TIMEOUT = 5.0


class RouteModemHost(Protocol):
    """What a route needs from its modem's bridge (:class:`~sim7020_core.bridge.bridge.ModemBridge`)."""

    async def wait_ready(self) -> Any:
        """Return the connected modem once it is usable (awake, link up)."""
        ...


class RouteRunner:
    """Runs one configured route.

    :param route: its configuration
    :param host: gives the modem when ready
    :param mqtt: the modem's MQTT client
    :param queue: the durable queue
    :param codec: the route's payload codec
    :param max_payload: the largest decoded uplink message stored (None: no bound)
    """

    def __init__(
        self,
        route: RouteConfig,
        *,
        host: RouteModemHost,
        mqtt: MqttClient,
        queue: DurableQueue,
        codec: Codec,
        max_payload: int | None = None,
    ) -> None:
        self.route = route
        self.max_payload = max_payload
        self._host = host
        self._mqtt = mqtt
        self._queue = queue
        self._codec = codec
        self.up_queue = f"up:{route.modem}:{route.name}"
        self.down_queue = f"down:{route.modem}:{route.name}"
        self._up_wakeup = asyncio.Event()
        self._down_wakeup = asyncio.Event()
        self._batch: list[tuple[IncomingMessage, bytes]] = []
        self._batch_task: asyncio.Task[None] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._conn: Any = None
        self._conn_ready = asyncio.Event()
        self._conn_lost = asyncio.Event()
        self._conn_request = asyncio.Event()
        self._stopping = False
        self.stats = {
            "uplink_queued": 0,
            "uplink_sent": 0,
            "uplink_rejected": 0,
            "send_errors": 0,
            "downlink_received": 0,
            "downlink_published": 0,
            # a message sent again after a crash or a failed send may reach the peer twice
            "possible_duplicates": 0,
        }

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Subscribe the uplink filters and start the route's tasks."""
        for topic_filter in self.route.uplink:
            self._mqtt.subscribe(topic_filter, self._on_uplink, qos=max(1, self.route.qos))
        self._tasks = [
            asyncio.create_task(self._connection_keeper(), name=f"route-{self.route.name}-conn"),
            asyncio.create_task(self._sender(), name=f"route-{self.route.name}-up"),
            asyncio.create_task(self._downlink_publisher(), name=f"route-{self.route.name}-down"),
        ]
        self._up_wakeup.set()
        self._down_wakeup.set()
        if self.route.downlink is not None:
            self._conn_request.set()  # downlink routes keep their connection open to receive

    async def stop(self) -> None:
        """Stop the tasks and close the connection; queued messages stay on disk."""
        self._stopping = True
        if self._batch_task is not None:
            # a full disk may hold the batch forever: unstored messages are not acknowledged, so the broker
            # delivers them again to the next run
            _done, pending = await asyncio.wait({self._batch_task}, timeout=STOP_STORE_TIMEOUT)
            for task in pending:
                task.cancel()
            await asyncio.gather(self._batch_task, return_exceptions=True)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._close_connection()

    def modem_reset(self) -> None:
        """The modem rebooted or the link was reopened: the connection is gone."""
        self._conn_lost.set()

    # ------------------------------------------------------------------ uplink

    def _on_uplink(self, msg: IncomingMessage) -> None:
        if self._stopping:
            return  # not acknowledged: the broker delivers it again to the next run
        limit = self.max_payload
        if limit is not None and len(msg.payload) > 4 * limit + 1024:  # not worth decoding
            self._reject(msg, f"{len(msg.payload)} bytes, far more than the {limit} bytes a send carries")
            return
        try:
            data = self._codec.decode(msg.payload)
        except (PayloadError, ValueError) as err:
            self.stats["uplink_rejected"] += 1
            _LOGGER.warning(
                "route %s: dropping message on %s: %s (encoding %s)",
                self.route.name,
                msg.topic,
                err,
                self.route.encoding,
            )
            self._mqtt.ack(msg.mid, msg.qos)
            return
        if limit is not None and len(data) > limit:
            self._reject(
                msg, f"{len(data)} bytes, more than the {limit} bytes {self.route.transport} sends at once"
            )
            return
        self._batch.append((msg, data))
        if self._batch_task is None or self._batch_task.done():
            self._batch_task = asyncio.create_task(
                self._commit_batches(), name=f"route-{self.route.name}-commit"
            )

    def _reject(self, msg: IncomingMessage, why: str) -> None:
        """Drop an uplink message before it takes disk space (acknowledged: the broker must not resend it)."""
        self.stats["uplink_rejected"] += 1
        _LOGGER.warning("route %s: dropping message on %s: %s", self.route.name, msg.topic[:200], why)
        self._mqtt.ack(msg.mid, msg.qos)

    async def _commit_batches(self) -> None:
        delay = ROUTE_RETRY_MIN
        while self._batch:
            batch, self._batch = self._batch, []
            try:
                # waits (the queue retries) while the disk is full; the messages stay unacknowledged
                await self._queue.put_many(self.up_queue, [(m.topic, data) for m, data in batch])
            except QueueError as err:
                if self._stopping:
                    return  # not acknowledged: the broker delivers them again to the next run
                # Keep them (the broker redelivers only on a new session) and try again.
                _LOGGER.error(
                    "route %s: cannot store %d uplink messages (%s); retrying in %.0f s",
                    self.route.name, len(batch), err, delay,
                )  # fmt: skip
                self._batch[:0] = batch
                await asyncio.sleep(delay)
                delay = min(delay * 2, STORE_RETRY_MAX)
                continue
            delay = ROUTE_RETRY_MIN
            for msg, _data in batch:
                self._mqtt.ack(msg.mid, msg.qos)
            self.stats["uplink_queued"] += len(batch)
            self._up_wakeup.set()

    async def _sender(self) -> None:
        delay = ROUTE_RETRY_MIN
        # The oldest message found at start may have been sent just before a crash.
        uncertain = {m.id for m in await self._queue.peek(self.up_queue, 1)}
        while True:
            await self._up_wakeup.wait()
            self._up_wakeup.clear()
            messages = await self._queue.peek(self.up_queue, QUEUE_BATCH)
            if not messages:
                continue
            self._up_wakeup.set()  # more may follow
            for message in messages:
                while True:
                    if message.id in uncertain:
                        self.stats["possible_duplicates"] += 1
                    await self._host.wait_ready()  # not while the modem sleeps in PSM or recovers
                    conn = await self._connection()
                    try:
                        async with asyncio.timeout(ROUTE_SEND_TIMEOUT):
                            await conn.send(message.payload, **_send_options(conn))
                    except PayloadError as err:
                        _LOGGER.error(
                            "route %s: the transport refuses message %d (%s); dropped",
                            self.route.name,
                            message.id,
                            err,
                        )
                        self.stats["uplink_rejected"] += 1
                        break
                    except (Sim7020Error, TimeoutError, OSError) as err:
                        self.stats["send_errors"] += 1
                        uncertain.add(message.id)
                        _LOGGER.warning(
                            "route %s: send failed (%s); retrying in %.1f s", self.route.name, err, delay
                        )
                        await self._close_connection()
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, ROUTE_RETRY_MAX)
                        continue
                    delay = ROUTE_RETRY_MIN
                    self.stats["uplink_sent"] += 1
                    break
                uncertain.discard(message.id)
                await self._queue.delete([message.id])

    # ------------------------------------------------------------------ connection

    async def _connection(self) -> Any:
        self._conn_request.set()
        while True:
            await self._conn_ready.wait()
            if self._conn is not None and not getattr(self._conn, "closed", False):
                return self._conn
            self._conn_ready.clear()

    async def _connection_keeper(self) -> None:
        if self.route.listen_port is not None:
            await self._server_keeper()
            return
        delay = ROUTE_RETRY_MIN
        while True:
            await self._conn_request.wait()
            modem = await self._host.wait_ready()
            route = self.route
            try:
                async with asyncio.timeout(ROUTE_OPEN_TIMEOUT):
                    conn = await self._open(modem)
            except (Sim7020Error, TimeoutError, OSError) as err:
                _LOGGER.warning(
                    "route %s: cannot open %s connection to %s:%s (%s); retrying in %.1f s",
                    route.name,
                    route.protocol,
                    route.host,
                    route.port,
                    err,
                    delay,
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, ROUTE_RETRY_MAX)
                continue
            delay = ROUTE_RETRY_MIN
            _LOGGER.info(
                "route %s: connected %s %s:%s via %s",
                route.name,
                route.protocol,
                route.host,
                route.port,
                route.transport,
            )
            self._conn = conn
            self._conn_lost.clear()
            remove = conn.add_close_callback(lambda *_a: self._conn_lost.set())
            reader = asyncio.create_task(
                self._reader(conn, self._conn_lost.set), name=f"route-{route.name}-reader"
            )
            self._conn_ready.set()
            try:
                await self._conn_lost.wait()
            finally:
                self._conn_ready.clear()
                remove()
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                await self._close_connection()
            _LOGGER.info("route %s: connection closed; reopening", route.name)

    async def _server_keeper(self) -> None:
        """Listen routes: a TCP server on the modem; uplink goes to the most recently connected client."""
        route = self.route
        assert route.listen_port is not None
        delay = ROUTE_RETRY_MIN
        while True:
            modem = await self._host.wait_ready()
            try:
                async with asyncio.timeout(ROUTE_OPEN_TIMEOUT):
                    server = await modem.listen(route.listen_port, transport=route.transport, **route.options)
            except (Sim7020Error, TimeoutError, OSError) as err:
                _LOGGER.warning(
                    "route %s: cannot listen on port %s (%s); retrying in %.1f s",
                    route.name, route.listen_port, err, delay,
                )  # fmt: skip
                await asyncio.sleep(delay)
                delay = min(delay * 2, ROUTE_RETRY_MAX)
                continue
            delay = ROUTE_RETRY_MIN
            _LOGGER.info(
                "route %s: listening on modem port %s via %s", route.name, route.listen_port, route.transport
            )
            clients: list[Any] = []
            readers: list[asyncio.Task[None]] = []
            try:
                async for conn in server:  # ends when the server closes (modem reset, PSM)
                    _LOGGER.info(
                        "route %s: client %s:%s connected", route.name, conn.remote_host, conn.remote_port
                    )
                    clients.append(conn)
                    self._conn = conn
                    self._conn_ready.set()
                    readers.append(
                        asyncio.create_task(
                            self._reader(conn, functools.partial(self._client_gone, clients, conn)),
                            name=f"route-{route.name}-client",
                        )
                    )
            except (Sim7020Error, OSError) as err:
                _LOGGER.info("route %s: server ended: %s", route.name, err)
            finally:
                self._conn_ready.clear()
                self._conn = None
                for task in readers:
                    task.cancel()
                await asyncio.gather(*readers, return_exceptions=True)
                for conn in clients:
                    await self._close_quietly(conn)
                await self._close_quietly(server)
            _LOGGER.info("route %s: server closed; listening again", route.name)

    def _client_gone(self, clients: list[Any], conn: Any) -> None:
        if conn in clients:
            clients.remove(conn)
        if self._conn is conn:
            self._conn = clients[-1] if clients else None
            if self._conn is None:
                self._conn_ready.clear()

    async def _close_quietly(self, item: Any) -> None:
        try:
            async with asyncio.timeout(ROUTE_OPEN_TIMEOUT):
                await item.close()
        except (Sim7020Error, TimeoutError, OSError) as err:
            _LOGGER.debug("route %s: close failed: %s", self.route.name, err)

    async def _open(self, modem: Any) -> Any:
        route = self.route
        if route.host is None or route.port is None:
            raise UnsupportedError("the route has no host/port")
        options = dict(route.options)
        if route.transport == "native" and route.protocol == "tcp":
            options.setdefault("send_ack", True)  # delete uplink only once the peer acknowledged it
        return await modem.open_connection(
            route.protocol, route.host, route.port, transport=route.transport, **options
        )

    async def _close_connection(self) -> None:
        conn, self._conn = self._conn, None
        self._conn_lost.set()
        if conn is not None:
            try:
                async with asyncio.timeout(ROUTE_OPEN_TIMEOUT):
                    await conn.close()
            except (Sim7020Error, TimeoutError, OSError) as err:
                _LOGGER.debug("route %s: close failed: %s", self.route.name, err)

    # ------------------------------------------------------------------ downlink

    async def _reader(self, conn: Any, on_end: Callable[[], None]) -> None:
        try:
            async for data in conn:
                self.stats["downlink_received"] += 1
                if self.route.downlink is None:
                    _LOGGER.debug(
                        "route %s: %d bytes received (no downlink topic)", self.route.name, len(data)
                    )
                    continue
                try:
                    value = self._codec.encode(data)
                except PayloadError as err:
                    _LOGGER.warning(
                        "route %s: received data cannot be encoded as %s (%s); sent as hex",
                        self.route.name,
                        self.route.encoding,
                        err,
                    )
                    value = data.hex()
                payload = value.encode("utf-8") if isinstance(value, str) else value
                await self._queue.put(self.down_queue, self.route.downlink, payload)
                self._down_wakeup.set()
        except (Sim7020Error, OSError) as err:
            _LOGGER.info("route %s: connection ended: %s", self.route.name, err)
        on_end()

    async def _downlink_publisher(self) -> None:
        while True:
            await self._down_wakeup.wait()
            self._down_wakeup.clear()
            messages = await self._queue.peek(self.down_queue, QUEUE_BATCH)
            if not messages:
                continue
            self._down_wakeup.set()
            publishing = [(m, self._publish(m.topic, m.payload)) for m in messages]  # in order, pipelined
            for message, fut in publishing:
                await self._until_acknowledged(message.topic, message.payload, fut)
            await self._queue.delete([m.id for m in messages])
            self.stats["downlink_published"] += len(messages)

    def _publish(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        return self._mqtt.publish(topic, payload, qos=self.route.qos, retain=self.route.retain)

    async def _until_acknowledged(self, topic: str, payload: bytes, fut: asyncio.Future[None]) -> None:
        # paho keeps a QoS>0 message across reconnects: wait for it rather than publishing it again.
        while True:
            try:
                async with asyncio.timeout(DOWNLINK_ACK_TIMEOUT):
                    await asyncio.shield(fut)
                return
            except TimeoutError:
                _LOGGER.warning("route %s: downlink publish still not acknowledged; waiting", self.route.name)
            except Sim7020Error as err:
                _LOGGER.warning("route %s: downlink publish failed (%s); retrying", self.route.name, err)
                await asyncio.sleep(ROUTE_RETRY_MIN)
                fut = self._publish(topic, payload)


def _send_options(conn: Any) -> dict[str, Any]:
    """``wait_ack`` where the transport can confirm the peer received the data (TCP)."""
    transport = getattr(conn, "transport", None)
    capabilities = getattr(transport, "capabilities", None)
    if (
        getattr(capabilities, "acknowledged_send", False)
        and getattr(conn, "protocol", "") == "tcp"
        and getattr(transport, "send_ack", True)  # native: only when opened with send_ack=True
    ):
        return {"wait_ack": True}
    return {}
