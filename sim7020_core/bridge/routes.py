"""Routes: MQTT uplink topics → a connection on the modem → MQTT downlink topic, durably.

Uplink: each message on the route's filters is decoded with the route's encoding, checked against the
largest payload the route's transport sends (larger ones are dropped before they take any disk space),
committed to the sqlite queue, and only then acknowledged to the broker. While the queue cannot store
(a full disk) the messages are kept in memory, unacknowledged, and stored when the disk has room again.
A sender task delivers queued messages in order and deletes each one after the modem accepted it (for
transports with an acknowledged send, after the peer's acknowledgement). While the modem is away (reboot,
PSM, link lost) the messages wait in the queue.

Downlink: data arriving on the connection is encoded, committed to the queue, published (QoS per route)
and deleted when the broker acknowledged the publish.

The connection's life is the library's (:mod:`sim7020_core.persistent`): a route is a
:class:`~sim7020_core.persistent.PersistentConnection` (kept open while the route has a downlink topic,
opened when there is something to send otherwise) or, with ``listen_port``, a
:class:`~sim7020_core.persistent.PersistentServer` whose most recent client gets the uplink. Both open
(listen) again after module resets and send with the library's backoff; this module only translates between
them and MQTT, and waits with the same :class:`~sim7020_core.reconnect.Backoff` where the queue or the broker
refuse.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from ..codecs import Codec
from ..connection import Connection
from ..exceptions import PayloadError, Sim7020Error, describe_error
from ..persistent import PersistentConnection, PersistentServer, ServerClient
from ..reconnect import Backoff, retry
from .config import RouteConfig
from .mqtt import IncomingMessage, MqttClient
from .queue import DurableQueue, QueueError

_LOGGER = logging.getLogger(__name__)

#: Bound on the module's answer to a UDP send: the module answers once the datagram is in its buffer, without
#: waiting for the network, so a send unanswered this long was lost to a stalled module and is sent again.
ROUTE_SEND_TIMEOUT = 5.0
#: Bound on a TCP send: it may wait for the peer's acknowledgement (or SEND OK) over the radio.
ROUTE_TCP_SEND_TIMEOUT = 60.0
#: Bound on opening the route's connection (or starting its server).
ROUTE_OPEN_TIMEOUT = 60.0
#: Bound on the broker's acknowledgement of a downlink publish before it is retried.
DOWNLINK_ACK_TIMEOUT = 30.0
#: Retry backoff after a failed open/send or publish (seconds, doubled up to the max).
ROUTE_RETRY_MIN = 0.5
ROUTE_RETRY_MAX = 30.0
#: Messages read from the queue at a time.
QUEUE_BATCH = 64
#: Backoff cap of storing uplink messages the queue refused with an error retrying in the queue cannot fix.
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
        self._client_readers: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._store_backoff = Backoff(ROUTE_RETRY_MIN, STORE_RETRY_MAX)
        backoff = Backoff(ROUTE_RETRY_MIN, ROUTE_RETRY_MAX)
        name = f"route {route.name}"
        self._link: PersistentConnection | PersistentServer
        if route.listen_port is not None:
            self._link = PersistentServer(
                host.wait_ready,
                route.listen_port,
                transport=route.transport,
                options=route.options,
                listen_timeout=ROUTE_OPEN_TIMEOUT,
                backoff=backoff,
                on_client=self._client_connected,
                name=name,
            )
        else:
            if route.host is None or route.port is None:
                raise ValueError(f"route {route.name!r} has neither host/port nor listen_port")
            options = dict(route.options)
            if route.transport == "native" and route.protocol == "tcp":
                options.setdefault("send_ack", True)  # delete uplink only once the peer acknowledged it
            self._link = PersistentConnection(
                host.wait_ready,
                route.protocol,
                route.host,
                route.port,
                transport=route.transport,
                options=options,
                keep_open=route.downlink is not None,  # downlink routes stay open to receive
                open_timeout=ROUTE_OPEN_TIMEOUT,
                backoff=backoff,
                name=name,
            )
        self._send_timeout = ROUTE_SEND_TIMEOUT if route.protocol == "udp" else ROUTE_TCP_SEND_TIMEOUT
        timed = route.options.get("timed_send")  # cip: the module holds each send this long (AT+CIPATS)
        if isinstance(timed, int | float) and not isinstance(timed, bool) and timed > 0:
            self._send_timeout += timed
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

    @property
    def connection(self) -> Connection | None:
        """The connection the uplink goes to now (for a listening route, the latest client's)."""
        if isinstance(self._link, PersistentServer):
            client = self._link.latest_client
            return client.connection if client is not None else None
        return self._link.connection

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Subscribe the uplink filters and start the route's tasks."""
        for topic_filter in self.route.uplink_subscriptions:  # shared ones when the route has a group
            self._mqtt.subscribe(topic_filter, self._on_uplink, qos=max(1, self.route.qos))
        self._tasks = [
            asyncio.create_task(self._sender(), name=f"route-{self.route.name}-up"),
            asyncio.create_task(self._downlink_publisher(), name=f"route-{self.route.name}-down"),
        ]
        if isinstance(self._link, PersistentConnection):
            self._tasks.append(
                asyncio.create_task(self._reader(self._link), name=f"route-{self.route.name}-reader")
            )
        self._link.start()
        self._up_wakeup.set()
        self._down_wakeup.set()

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
        tasks = [*self._tasks, *self._client_readers]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._link.close()

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
        while self._batch:
            batch, self._batch = self._batch, []

            def store_failed(err: BaseException, delay: float, count: int = len(batch)) -> None:
                if self._stopping:
                    raise err  # not acknowledged: the broker delivers them again to the next run
                _LOGGER.error(
                    "route %s: cannot store %d uplink messages (%s); retrying in %.0f s",
                    self.route.name, count, describe_error(err), delay,
                )  # fmt: skip

            items = [(m.topic, data) for m, data in batch]
            try:
                # waits (the queue retries) while the disk is full; the messages stay unacknowledged
                await retry(
                    functools.partial(self._queue.put_many, self.up_queue, items),
                    backoff=self._store_backoff,
                    retry_on=(QueueError,),
                    on_error=store_failed,
                )
            except QueueError:
                return
            for msg, _data in batch:
                self._mqtt.ack(msg.mid, msg.qos)
            self.stats["uplink_queued"] += len(batch)
            self._up_wakeup.set()

    async def _sender(self) -> None:
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
                if message.id in uncertain:
                    self.stats["possible_duplicates"] += 1
                try:
                    # waits while the modem sleeps in PSM or recovers (the link's modem source waits)
                    await self._link.deliver(
                        message.payload,
                        timeout=self._send_timeout,
                        acknowledged=True,
                        on_error=functools.partial(self._send_failed, message.id, uncertain),
                    )
                except PayloadError as err:
                    _LOGGER.error(
                        "route %s: the transport refuses message %d (%s); dropped",
                        self.route.name,
                        message.id,
                        err,
                    )
                    self.stats["uplink_rejected"] += 1
                else:
                    self.stats["uplink_sent"] += 1
                uncertain.discard(message.id)
                await self._queue.delete([message.id])

    def _send_failed(self, message_id: int, uncertain: set[int], err: BaseException, delay: float) -> None:
        """A delivery attempt failed: the next one may repeat what the peer already got."""
        self.stats["send_errors"] += 1
        self.stats["possible_duplicates"] += 1
        uncertain.add(message_id)
        _LOGGER.warning(
            "route %s: send failed (%s); retrying in %.1f s", self.route.name, describe_error(err), delay
        )

    # ------------------------------------------------------------------ a listening route's clients

    def _client_connected(self, client: ServerClient) -> None:
        """A client of the route's server: its data goes downlink; it gets the uplink (the newest client)."""
        task = asyncio.get_running_loop().create_task(
            self._reader(client), name=f"route-{self.route.name}-client"
        )
        self._client_readers.add(task)
        task.add_done_callback(self._client_readers.discard)

    # ------------------------------------------------------------------ downlink

    async def _reader(self, source: AsyncIterator[bytes]) -> None:
        """Store what arrives (on the route's connection, across re-opens; or from one client) for MQTT."""
        async for data in source:
            self.stats["downlink_received"] += 1
            if self.route.downlink is None:
                _LOGGER.debug("route %s: %d bytes received (no downlink topic)", self.route.name, len(data))
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
        # paho keeps a QoS>0 message across reconnects: wait for it rather than publishing it again; only a
        # publish that failed is made again, after the backoff.
        futures = [fut]

        async def acknowledged() -> None:
            current = futures.pop() if futures else self._publish(topic, payload)
            while True:
                try:
                    async with asyncio.timeout(DOWNLINK_ACK_TIMEOUT):
                        await asyncio.shield(current)
                    return
                except TimeoutError:
                    _LOGGER.warning(
                        "route %s: downlink publish still not acknowledged; waiting", self.route.name
                    )

        def failed(err: BaseException, delay: float) -> None:
            _LOGGER.warning(
                "route %s: downlink publish failed (%s); retrying in %.1f s",
                self.route.name,
                describe_error(err),
                delay,
            )

        await retry(
            acknowledged,
            backoff=Backoff(ROUTE_RETRY_MIN, ROUTE_RETRY_MAX),
            retry_on=(Sim7020Error,),
            on_error=failed,
        )
