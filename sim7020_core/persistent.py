"""Persistent connections and servers: the library owns connection lifecycles.

An application rarely wants *a* connection. It wants data to and from ``host:port`` through its modem for as
long as it runs, across module resets, PSM without retention (the module forgets its sockets), peers that
hang up and sends that fail; or a TCP server on a port that listens again after every reset. These classes do
that once, for every application (the bridge's routes, Home Assistant, a user's script), as aioesphomeapi owns
the reconnect logic of Home Assistant's ESPHome integration
(https://github.com/esphome/aioesphomeapi/blob/main/aioesphomeapi/reconnect_logic.py):

- :class:`PersistentConnection` opens through the modem when first used (at once with ``keep_open``), notices
  when the connection ends under it (the transport says so: ``+CSOERR``, ``CLOSED``, a module reset, PSM
  without retention) and opens a new one: at the next send, or at once with ``keep_open``, waiting the
  library's backoff (:class:`~sim7020_core.reconnect.Backoff`) after failures. It sends (``send``), receives
  (``receive``, ``async for``), asks (``request``: send, then the reply) and delivers (``deliver``: send until
  it is sent, with backoff), and closes itself after ``idle_timeout`` seconds without traffic.
- :class:`PersistentServer` listens, and listens again after every module reset; each accepted client is a
  :class:`ServerClient` handed to its owner (``on_client``, or :meth:`PersistentServer.accept`).

Both take the modem as a :class:`ConnectionHost` (a :class:`~sim7020_core.modem.Modem` is one), or as an async
callable that returns the modem to use now (the bridge gives one that waits while its modem sleeps, and that
returns the new modem after a session was replaced). With a plain modem, work in the background (opening
again, listening again) waits until the modem is ready; the owner's own sends use the modem as it is (the
modem wakes a sleeping module, or refuses, per its PSM policy).

Received data reaches the owner one of two ways. With ``on_data`` the object reads the connection itself and
calls ``on_data(data)`` for every chunk (a :meth:`~_Exchange.request` waiting for a reply also gets it).
Without it the owner reads: :meth:`~_Exchange.receive` and ``async for`` follow the connection across
re-opens and end only at :meth:`~_Exchange.close`; read that way, the back-pressure of the transport's receive
buffer is kept (nothing is read while the owner is busy).

``on_state(state)`` tells the owner of each :class:`PersistentState` change (e.g. to count open connections);
openings, losses and retries are logged here, under the object's ``name``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeAlias

from . import const
from .connection import Connection, ReceiveTimeoutError, Server
from .events import ModemEvent
from .exceptions import (
    ConnectionClosedError,
    NoReplyError,
    PayloadError,
    SendTimeoutError,
    Sim7020Error,
    SocketError,
    describe_error,
)
from .models import LinkState
from .reconnect import Backoff, ReconnectLogic, retry

_LOGGER = logging.getLogger(__name__)

#: What a failed send or open may be retried after (anything else is a bug, raised at once).
_RETRYABLE = (Sim7020Error, TimeoutError, OSError)


class ConnectionHost(Protocol):
    """What a persistent connection or server needs of its modem (a :class:`~sim7020_core.modem.Modem`)."""

    @property
    def state(self) -> LinkState:
        """The modem's link state (background work waits for ``ready``)."""
        ...

    def subscribe(self, callback: Callable[[ModemEvent], None]) -> Callable[[], None]:
        """Call ``callback`` for every modem event; returns the unsubscribe function."""
        ...

    async def open_connection(
        self, protocol: str, host: str, port: int, *, transport: str = "native", **options: Any
    ) -> Connection:
        """Open a data connection."""
        ...

    async def listen(self, port: int, *, transport: str = "native", **options: Any) -> Server:
        """Listen for TCP clients."""
        ...


#: A modem, or an async callable returning the modem to use now (it may wait until one is usable).
ModemSource: TypeAlias = ConnectionHost | Callable[[], Awaitable[ConnectionHost]]
DataCallback = Callable[[bytes], None]
StateCallback = Callable[["PersistentState"], None]


class PersistentState(enum.Enum):
    """Where a persistent connection or server is."""

    IDLE = "idle"  # nothing open: opens on the next use (or, kept open, once the modem is ready)
    OPENING = "opening"  # opening (listening) now
    OPEN = "open"  # open (listening)
    WAITING = "waiting"  # opening failed: waiting the backoff before the next attempt
    CLOSED = "closed"  # close() was called, or the idle timeout passed (final)


async def wait_ready(modem: ConnectionHost) -> ConnectionHost:
    """Return ``modem`` once it is ready (initialised and awake).

    :raises ConnectionClosedError: the modem is closed: it will never be ready
    """
    loop = asyncio.get_running_loop()
    while True:
        if modem.state is LinkState.READY:
            return modem
        if modem.state is LinkState.CLOSED:
            raise ConnectionClosedError("the modem is closed")
        changed: asyncio.Future[None] = loop.create_future()

        def on_event(_event: ModemEvent, changed: asyncio.Future[None] = changed) -> None:
            if not changed.done():
                changed.set_result(None)

        remove = modem.subscribe(on_event)
        try:
            if modem.state not in (LinkState.READY, LinkState.CLOSED):
                await changed
        finally:
            remove()


def _acknowledges(conn: Connection) -> bool:
    """True when ``conn`` can wait for the peer's acknowledgement of a send (TCP on a transport with an
    acknowledged send; a native transport only when its connections were opened with ``send_ack=True``)."""
    transport = conn.transport
    return (
        transport.capabilities.acknowledged_send
        and conn.protocol == "tcp"
        and bool(getattr(transport, "send_ack", True))
    )


async def _close_quietly(item: Connection | Server, name: str) -> None:
    """Close a connection or server, bounded; a failure is only logged (it is gone for us either way)."""
    try:
        async with asyncio.timeout(const.PERSISTENT_CLOSE_TIMEOUT):
            await item.close()
    except (*_RETRYABLE,) as err:
        _LOGGER.debug("%s: closing %r failed: %s", name, item, describe_error(err))


class _Exchange:
    """Sending and receiving over a connection that may come and go; the base of :class:`PersistentConnection`
    and :class:`ServerClient`.

    Subclasses say how a connection is had (:meth:`_usable_connection`) and what follows its loss
    (:meth:`_after_loss`).
    """

    #: A connection that ended is replaced by a new one (False: the object ends with its connection).
    _reopens = True

    def __init__(
        self,
        *,
        name: str,
        idle_timeout: float | None,
        on_data: DataCallback | None,
        on_state: StateCallback | None,
    ) -> None:
        if idle_timeout is not None and idle_timeout <= 0:
            raise ValueError(f"idle_timeout must be positive, not {idle_timeout!r}")
        self.name = name
        self.idle_timeout = idle_timeout
        #: Why the last connection ended or the last open failed (None: nothing went wrong yet).
        self.last_error: BaseException | None = None
        self._on_data = on_data
        self._on_state = on_state
        self._conn: Connection | None = None
        self._state = PersistentState.IDLE
        self._changed = asyncio.Event()
        self._waiters: list[asyncio.Future[bytes]] = []
        self._reader: asyncio.Task[None] | None = None
        self._idle_timer: asyncio.TimerHandle | None = None
        self._idle_task: asyncio.Task[None] | None = None
        self._last_activity = 0.0
        self._started = False
        self._closing = False
        self._closed_event = asyncio.Event()

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> PersistentState:
        """Where the connection is."""
        return self._state

    @property
    def connection(self) -> Connection | None:
        """The connection open now (None while there is none)."""
        conn = self._conn
        return conn if conn is not None and not conn.closed else None

    @property
    def is_open(self) -> bool:
        """True while a connection is open."""
        return self.connection is not None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called or the idle timeout passed."""
        return self._state is PersistentState.CLOSED

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name} {self._state.value}>"

    def _set_state(self, state: PersistentState, error: BaseException | None = None) -> None:
        if error is not None:
            self.last_error = error
        self._pulse()
        if state is self._state:
            return
        self._state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                _LOGGER.exception("%s: the state callback failed", self.name)

    def _pulse(self) -> None:
        """Wake everyone waiting for a change (a connection came or went, the state changed)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def _check_not_closed(self) -> None:
        if self._state is PersistentState.CLOSED:
            raise ConnectionClosedError(f"{self.name} is closed")

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start the reader (with ``on_data``) and what the subclass runs in the background; idempotent.

        The first send, receive or request starts it too.
        """
        if self._started or self._state is PersistentState.CLOSED:
            return
        self._started = True
        if self._on_data is not None:
            self._reader = asyncio.get_running_loop().create_task(self._read(), name=f"{self.name} reader")
        self._on_start()

    async def close(self) -> None:
        """Close for good (idempotent): the connection, the reader, the background work. Pending requests
        fail with :class:`~sim7020_core.exceptions.ConnectionClosedError`."""
        if self._closing:  # closing already (the idle timeout, another caller): wait until it is done
            await self._closed_event.wait()
            return
        self._closing = True
        self._set_state(PersistentState.CLOSED)
        self._cancel_idle_timer()
        await self._on_close()
        current = asyncio.current_task()
        tasks = [t for t in (self._reader, self._idle_task) if t is not None and t is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn, self._conn = self._conn, None
        self._fail_waiters(ConnectionClosedError(f"{self.name} was closed"))
        if conn is not None and not conn.closed:
            await _close_quietly(conn, self.name)
        self._closed_for_good()
        self._closed_event.set()

    async def __aenter__(self) -> _Exchange:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # hooks of the subclasses

    def _on_start(self) -> None:
        """Start background work (a subclass's)."""

    async def _on_close(self) -> None:
        """Stop background work (a subclass's); the connection is closed after this."""

    def _closed_for_good(self) -> None:
        """Called once closed for good (at the end of :meth:`close`, or when a client ended)."""

    async def _usable_connection(self) -> Connection:
        """An open connection to send on (opening one if the subclass can)."""
        raise NotImplementedError

    def _after_loss(self) -> None:
        """The connection ended under us (not by :meth:`close`)."""

    # ------------------------------------------------------------------ sending

    async def send(self, data: bytes, *, timeout: float | None = None, acknowledged: bool = False) -> None:  # noqa: ASYNC109 - public API
        """Send ``data`` (one datagram for UDP), opening a connection first when there is none.

        A connection that ends under the send (a module reset between the check and the send) is replaced
        once.

        :param timeout: bound on the send itself, seconds (None: the transport's own command timeouts)
        :param acknowledged: also wait until the peer acknowledged the data where the connection can tell
            (TCP on a transport with an acknowledged send)
        :raises SendTimeoutError: no answer to the send within ``timeout``
        :raises ConnectionClosedError: closed (by :meth:`close`, or a client that went away)
        :raises PayloadError: the transport cannot carry ``data``
        :raises Sim7020Error: opening or sending failed
        """
        self.start()
        await self._send(data, timeout, acknowledged)

    async def request(
        self,
        data: bytes,
        timeout: float,  # noqa: ASYNC109 - public API
        *,
        send_timeout: float | None = None,
        acknowledged: bool = False,
    ) -> bytes:
        """Send ``data`` and return the next data received: the reply.

        With ``on_data`` the reply is the first chunk the reader gets after the request began (``on_data``
        gets it too); without it, the next chunk read from the connection the request was sent on.

        :param timeout: seconds to wait for the reply after the send
        :param send_timeout: bound on the send (see :meth:`send`)
        :raises ReceiveTimeoutError: no reply within ``timeout`` (also a TimeoutError)
        :raises NoReplyError: the connection ended before a reply came
        :raises ConnectionClosedError: closed (by :meth:`close`) before or while sending
        """
        self.start()
        if self._on_data is None:
            conn = await self._send(data, send_timeout, acknowledged)
            try:
                reply = await conn.receive(timeout)
            except ReceiveTimeoutError:
                raise
            except SocketError as err:
                raise NoReplyError(f"{self.name}: the connection ended before a reply came") from err
            self._touch()
            return reply
        waiter: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await self._send(data, send_timeout, acknowledged)
            try:
                async with asyncio.timeout(timeout):
                    return await waiter
            except TimeoutError:
                raise ReceiveTimeoutError(self.name, timeout) from None
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if not waiter.done():
                waiter.cancel()

    async def _send(self, data: bytes, timeout: float | None, acknowledged: bool) -> Connection:  # noqa: ASYNC109
        """Send on a usable connection, replacing it once when it turns out closed; returns it."""
        conn = await self._usable_connection()
        try:
            await self._send_on(conn, data, timeout, acknowledged)
        except ConnectionClosedError:
            if not (self._reopens and conn.closed) or self._state is PersistentState.CLOSED:
                raise
            _LOGGER.info("%s: the connection ended under the send; sending on a new one", self.name)
            conn = await self._usable_connection()
            await self._send_on(conn, data, timeout, acknowledged)
        return conn

    async def _send_on(
        self,
        conn: Connection,
        data: bytes,
        timeout: float | None,  # noqa: ASYNC109 - the bound of this send
        acknowledged: bool,
    ) -> None:
        options = {"wait_ack": True} if acknowledged and _acknowledges(conn) else {}
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                await conn.send(data, **options)
        except TimeoutError:
            if not scope.expired():
                raise  # the transport's own timeout (an AtTimeoutError, which names the command)
            raise SendTimeoutError(
                f"the module did not answer the send within {timeout:g} s", timeout or 0.0
            ) from None
        self._touch()

    async def _drop(self, conn: Connection) -> None:
        """A send failed on ``conn``: close it, so that the next attempt starts from a fresh one."""
        if not conn.closed:
            await _close_quietly(conn, self.name)

    async def _deliver(
        self,
        data: bytes,
        timeout: float | None,  # noqa: ASYNC109
        acknowledged: bool,
        backoff: Backoff,
        on_error: Callable[[BaseException, float], None] | None,
    ) -> None:
        async def attempt() -> None:
            conn = await self._usable_connection()
            try:
                await self._send_on(conn, data, timeout, acknowledged)
            except (PayloadError, TimeoutError):
                # A refused payload ends the delivery; a send the module did not answer (it stalled) is
                # tried again on the same connection: closing it now would stall behind the same silence.
                raise
            except _RETRYABLE:
                await self._drop(conn)
                raise

        await _retry_delivery(self, attempt, backoff, on_error)

    # ------------------------------------------------------------------ receiving

    async def receive(self, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - public API
        """Return the next received datagram (UDP) or chunk (TCP), from whichever connection is open.

        Waits while there is no connection (it is being opened again, or opens at the next send).

        :raises ReceiveTimeoutError: nothing arrived within ``timeout`` (also a TimeoutError)
        :raises ConnectionClosedError: :meth:`close` was called
        """
        self.start()
        try:
            async with asyncio.timeout(timeout):
                return await self._next_data()
        except TimeoutError:
            raise ReceiveTimeoutError(self.name, timeout or 0.0) from None

    def __aiter__(self) -> _Exchange:
        return self

    async def __anext__(self) -> bytes:
        """Yield received data until :meth:`close`."""
        try:
            return await self.receive()
        except ConnectionClosedError as exc:
            raise StopAsyncIteration from exc

    async def _next_data(self) -> bytes:
        while True:
            changed = self._changed
            self._check_not_closed()
            conn = self._conn
            if conn is None:
                await changed.wait()
                continue
            try:
                data = await conn.receive()
            except SocketError:  # that connection ended; its close callback has run
                if self._conn is conn:
                    self._conn_closed(conn)
                continue
            self._touch()
            return data

    async def _read(self) -> None:
        """With ``on_data``: read everything, answer the waiting requests, hand each chunk to the owner."""
        assert self._on_data is not None
        while True:
            try:
                data = await self._next_data()
            except ConnectionClosedError:
                return
            waiters, self._waiters = self._waiters, []
            for waiter in waiters:
                if not waiter.done():
                    waiter.set_result(data)
            try:
                self._on_data(data)
            except Exception:
                _LOGGER.exception("%s: the data callback failed", self.name)

    def _fail_waiters(self, error: Sim7020Error) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_exception(error)

    # ------------------------------------------------------------------ the connection

    def _adopt(self, conn: Connection) -> None:
        """``conn`` is the connection from now on."""
        self._conn = conn
        conn.add_close_callback(self._conn_closed)
        self._set_state(PersistentState.OPEN)
        self._touch()

    def _conn_closed(self, conn: Connection) -> None:
        """The connection ended (a close callback: right when the transport reports it)."""
        if conn is not self._conn:
            return
        self._conn = None
        error = conn.error
        self._fail_waiters(NoReplyError(f"{self.name}: the connection ended before a reply came"))
        if self._state is PersistentState.CLOSED:
            return
        self.last_error = error
        _LOGGER.info("%s: the connection ended (%s)", self.name, describe_error(error) if error else "closed")
        self._after_loss()

    # ------------------------------------------------------------------ idle timeout

    def _touch(self) -> None:
        """Traffic, or a new connection: the idle time starts again."""
        if self.idle_timeout is None or self._state is PersistentState.CLOSED:
            return
        loop = asyncio.get_running_loop()
        self._last_activity = loop.time()
        if self._idle_timer is None:
            self._idle_timer = loop.call_at(self._last_activity + self.idle_timeout, self._idle_check)

    def _idle_check(self) -> None:
        # One timer, moved on to the last activity's deadline when it fires early (no timer per chunk).
        self._idle_timer = None
        if self._state is PersistentState.CLOSED or self.idle_timeout is None:
            return
        loop = asyncio.get_running_loop()
        due = self._last_activity + self.idle_timeout
        if loop.time() < due:
            self._idle_timer = loop.call_at(due, self._idle_check)
            return
        _LOGGER.debug("%s: no traffic for %g s; closing", self.name, self.idle_timeout)
        self._idle_task = loop.create_task(self.close(), name=f"{self.name} idle close")

    def _cancel_idle_timer(self) -> None:
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None


async def _retry_delivery(
    owner: _Exchange | PersistentServer,
    attempt: Callable[[], Awaitable[None]],
    backoff: Backoff,
    on_error: Callable[[BaseException, float], None] | None,
) -> None:
    """Run ``attempt`` until it succeeds; a refused payload or the owner's close ends it (raised)."""

    def failed(err: BaseException, delay: float) -> None:
        if isinstance(err, PayloadError) or owner.closed:
            raise err
        if on_error is not None:
            on_error(err, delay)
        else:
            _LOGGER.warning(
                "%s: send failed (%s); retrying in %.1f s", owner.name, describe_error(err), delay
            )

    await retry(attempt, backoff=backoff, retry_on=_RETRYABLE, on_error=failed)


class PersistentConnection(_Exchange):
    """A connection to ``host:port`` through a modem that is opened again whenever it ends (see the module
    documentation).

    :param modem: the modem, or an async callable returning the modem to use now
    :param protocol: ``"udp"`` or ``"tcp"``
    :param host: the peer (a name is resolved by the modem)
    :param port: the peer's port
    :param transport: the transport plugin (``native``, ``cip`` …)
    :param options: options of :meth:`Modem.open_connection <sim7020_core.modem.Modem.open_connection>`
    :param keep_open: open at :meth:`start` and again at once after every loss (with backoff); otherwise a
        connection is opened when something is sent
    :param idle_timeout: close (for good, as :meth:`close`) after this many seconds without data sent or
        received; None: never
    :param open_timeout: bound on one opening, seconds (default :data:`const.PERSISTENT_OPEN_TIMEOUT`)
    :param backoff: the backoff between failed openings and deliveries (default
        :data:`const.PERSISTENT_RETRY_MIN` … :data:`const.PERSISTENT_RETRY_MAX`)
    :param on_data: read the connection here and call ``on_data(data)`` for every chunk (see the module doc)
    :param on_state: called with every :class:`PersistentState` change
    :param name: for log messages (default ``"<transport> <protocol> <host>:<port>"``)
    """

    def __init__(
        self,
        modem: ModemSource,
        protocol: str,
        host: str,
        port: int,
        *,
        transport: str = "native",
        options: Mapping[str, Any] | None = None,
        keep_open: bool = False,
        idle_timeout: float | None = None,
        open_timeout: float | None = None,
        backoff: Backoff | None = None,
        on_data: DataCallback | None = None,
        on_state: StateCallback | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(
            name=name or f"{transport} {protocol} {host}:{port}",
            idle_timeout=idle_timeout,
            on_data=on_data,
            on_state=on_state,
        )
        self.protocol = protocol
        self.host = host
        self.port = port
        self.transport = transport
        self.options: dict[str, Any] = dict(options or {})
        self.keep_open = keep_open
        self._source = modem
        self._open_timeout = open_timeout
        self._backoff = backoff or Backoff(const.PERSISTENT_RETRY_MIN, const.PERSISTENT_RETRY_MAX)
        self._open_lock = asyncio.Lock()
        self._keeper: ReconnectLogic | None = None

    async def deliver(
        self,
        data: bytes,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - public API
        acknowledged: bool = False,
        on_error: Callable[[BaseException, float], None] | None = None,
    ) -> None:
        """Send ``data`` until it is sent: after a failure the backoff is waited and ``data`` sent again (on a
        new connection, unless the module only did not answer in time). ``data`` may therefore reach the peer
        more than once.

        :param timeout: bound on each send (see :meth:`send`)
        :param on_error: called with each failure and the delay before the next attempt (default: a warning
            is logged); it may raise to give up
        :raises PayloadError: the transport cannot carry ``data`` (retrying cannot help)
        :raises ConnectionClosedError: :meth:`close` was called meanwhile
        """
        self.start()
        await self._deliver(data, timeout, acknowledged, self._backoff, on_error)

    # ------------------------------------------------------------------ opening

    def _on_start(self) -> None:
        if self.keep_open:
            self._keeper = ReconnectLogic(
                self._keep_attempt,
                on_connect_error=self._keep_failed,
                backoff=Backoff(
                    self._backoff.min_delay, self._backoff.max_delay, factor=self._backoff.factor
                ),
                name=self.name,
            )
            self._keeper.start()

    async def _on_close(self) -> None:
        if self._keeper is not None:
            await self._keeper.stop()

    async def _modem_now(self) -> ConnectionHost:
        source = self._source
        if callable(source):
            return await source()
        return source

    async def _usable_connection(self) -> Connection:
        self._check_not_closed()
        modem = (
            await self._modem_now()
        )  # a source that waits (the bridge's) holds sends while the modem sleeps
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        return await self._open(modem)

    async def _open(self, modem: ConnectionHost) -> Connection:
        async with self._open_lock:
            conn = self._conn
            if conn is not None and not conn.closed:
                return conn
            self._check_not_closed()
            self._set_state(PersistentState.OPENING)
            limit = const.PERSISTENT_OPEN_TIMEOUT if self._open_timeout is None else self._open_timeout
            scope = asyncio.timeout(limit)
            try:
                async with scope:
                    conn = await modem.open_connection(
                        self.protocol, self.host, self.port, transport=self.transport, **self.options
                    )
            except TimeoutError as err:
                if not scope.expired():
                    self._opening_failed(err)
                    raise
                error = SocketError(f"{self.name}: not open within {limit:g} s")
                self._opening_failed(error)
                raise error from None
            except Exception as err:
                self._opening_failed(err)
                raise
            except BaseException:
                self._opening_failed(None)
                raise
            if self._state is PersistentState.CLOSED:  # closed while it opened
                await _close_quietly(conn, self.name)
                self._check_not_closed()
            _LOGGER.info("%s: open", self.name)
            self._adopt(conn)
            return conn

    def _opening_failed(self, error: BaseException | None) -> None:
        if self._state is PersistentState.OPENING:
            self._set_state(PersistentState.IDLE, error)

    def _after_loss(self) -> None:
        self._set_state(PersistentState.IDLE)
        if self._keeper is not None:
            self._keeper.start()

    async def _keep_attempt(self) -> None:
        """One attempt of the keeper (``keep_open``): wait for a ready modem, then open; raises on failure."""
        if self._state is PersistentState.CLOSED or self.connection is not None:
            return
        source = self._source
        try:
            modem = await source() if callable(source) else await wait_ready(source)
        except ConnectionClosedError as err:  # the modem closed for good: nothing to keep open
            _LOGGER.info("%s: %s; not opening again", self.name, describe_error(err))
            self._set_state(PersistentState.IDLE, err)
            return
        await self._open(modem)

    def _keep_failed(self, err: BaseException) -> None:
        if self._state is PersistentState.CLOSED or self._keeper is None:
            return
        delay = self._keeper.next_delay()
        _LOGGER.warning("%s: cannot open (%s); retrying in %.1f s", self.name, describe_error(err), delay)
        self._set_state(PersistentState.WAITING, err)


class ServerClient(_Exchange):
    """A client accepted by a :class:`PersistentServer`: send to it, read from it, ask it. It is not opened
    again: once it ends (it hung up, the module reset, :meth:`close`, the idle timeout) it is closed for good.
    """

    _reopens = False

    def __init__(
        self,
        connection: Connection,
        *,
        name: str,
        idle_timeout: float | None = None,
        on_data: Callable[[ServerClient, bytes], None] | None = None,
        on_closed: Callable[[ServerClient], None] | None = None,
    ) -> None:
        self._client_data = on_data
        self._on_closed = on_closed
        super().__init__(
            name=name,
            idle_timeout=idle_timeout,
            on_data=self._data if on_data is not None else None,
            on_state=None,
        )
        self.remote_host = connection.remote_host
        self.remote_port = connection.remote_port
        self._told = False
        self._adopt(connection)

    def _data(self, data: bytes) -> None:
        assert self._client_data is not None
        self._client_data(self, data)

    async def _usable_connection(self) -> Connection:
        self._check_not_closed()
        conn = self._conn
        if conn is None or conn.closed:
            raise ConnectionClosedError(f"{self.name} is gone")
        return conn

    def _after_loss(self) -> None:
        # gone for good: nothing to open again
        self._closing = True
        self._set_state(PersistentState.CLOSED)
        self._cancel_idle_timer()
        self._closed_for_good()
        self._closed_event.set()

    def _closed_for_good(self) -> None:
        if self._told:
            return
        self._told = True
        if self._on_closed is not None:
            try:
                self._on_closed(self)
            except Exception:
                _LOGGER.exception("%s: the close callback failed", self.name)


class PersistentServer:
    """A TCP server on the modem that listens again after every module reset (see the module documentation).

    :param modem: the modem, or an async callable returning the modem to use now
    :param port: the modem's port to listen on
    :param transport: a transport with a server mode (``native``, ``cip``)
    :param options: options of :meth:`Modem.listen <sim7020_core.modem.Modem.listen>`
    :param listen_timeout: bound on one attempt to listen, seconds (default
        :data:`const.PERSISTENT_OPEN_TIMEOUT`)
    :param backoff: the backoff between failed attempts to listen and failed deliveries
    :param idle_timeout: close a client after this many seconds without traffic (None: never)
    :param on_client: called with each accepted :class:`ServerClient`; without it, clients wait for
        :meth:`accept`
    :param on_client_data: read every client here: called with the client and each chunk it sent
    :param on_client_closed: called when a client ended
    :param on_state: called with every :class:`PersistentState` change of the server
    :param name: for log messages (default ``"<transport> server :<port>"``)
    """

    def __init__(
        self,
        modem: ModemSource,
        port: int,
        *,
        transport: str = "native",
        options: Mapping[str, Any] | None = None,
        listen_timeout: float | None = None,
        backoff: Backoff | None = None,
        idle_timeout: float | None = None,
        on_client: Callable[[ServerClient], None] | None = None,
        on_client_data: Callable[[ServerClient, bytes], None] | None = None,
        on_client_closed: Callable[[ServerClient], None] | None = None,
        on_state: StateCallback | None = None,
        name: str | None = None,
    ) -> None:
        self.port = port
        self.transport = transport
        self.options: dict[str, Any] = dict(options or {})
        self.name = name or f"{transport} server :{port}"
        self.idle_timeout = idle_timeout
        #: Why the server last stopped listening or failed to listen (None: nothing went wrong yet).
        self.last_error: BaseException | None = None
        self._source = modem
        self._listen_timeout = listen_timeout
        self._backoff = backoff or Backoff(const.PERSISTENT_RETRY_MIN, const.PERSISTENT_RETRY_MAX)
        self._on_client = on_client
        self._on_client_data = on_client_data
        self._on_client_closed = on_client_closed
        self._on_state = on_state
        self._state = PersistentState.IDLE
        self._server: Server | None = None
        self._clients: list[ServerClient] = []
        self._accepted: asyncio.Queue[ServerClient] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._keeper: ReconnectLogic | None = None
        self._accept_task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed_event = asyncio.Event()

    # ------------------------------------------------------------------ state

    @property
    def state(self) -> PersistentState:
        """Where the server is (``open``: listening)."""
        return self._state

    @property
    def server(self) -> Server | None:
        """The listening server now (None while not listening)."""
        server = self._server
        return server if server is not None and not server.closed else None

    @property
    def clients(self) -> list[ServerClient]:
        """The connected clients, oldest first."""
        return [client for client in self._clients if not client.closed]

    @property
    def latest_client(self) -> ServerClient | None:
        """The most recently connected client still there."""
        clients = self.clients
        return clients[-1] if clients else None

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._state is PersistentState.CLOSED

    def __repr__(self) -> str:
        return f"<PersistentServer {self.name} {self._state.value}>"

    def _set_state(self, state: PersistentState, error: BaseException | None = None) -> None:
        if error is not None:
            self.last_error = error
        self._pulse()
        if state is self._state:
            return
        self._state = state
        if self._on_state is not None:
            try:
                self._on_state(state)
            except Exception:
                _LOGGER.exception("%s: the state callback failed", self.name)

    def _pulse(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start listening in the background (attempts are retried with backoff); idempotent."""
        if self._keeper is not None or self._state is PersistentState.CLOSED:
            return
        self._keeper = ReconnectLogic(
            self._listen_attempt,
            on_connect_error=self._listen_failed,
            backoff=Backoff(self._backoff.min_delay, self._backoff.max_delay, factor=self._backoff.factor),
            name=self.name,
        )
        self._keeper.start()

    async def close(self) -> None:
        """Stop listening for good and close every client (idempotent)."""
        if self._closing:
            await self._closed_event.wait()
            return
        self._closing = True
        self._set_state(PersistentState.CLOSED)
        if self._keeper is not None:
            await self._keeper.stop()
        task = self._accept_task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        server, self._server = self._server, None
        if server is not None and not server.closed:
            await _close_quietly(server, self.name)
        for client in list(self._clients):
            await client.close()
        self._closed_event.set()

    async def __aenter__(self) -> PersistentServer:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # ------------------------------------------------------------------ clients

    async def accept(self, timeout: float | None = None) -> ServerClient:  # noqa: ASYNC109 - public API
        """The next accepted client (only without ``on_client``).

        :raises ReceiveTimeoutError: no client within ``timeout``
        :raises ConnectionClosedError: the server was closed
        """
        if self._on_client is not None:
            raise RuntimeError(f"{self.name} hands its clients to on_client")
        self.start()
        try:
            async with asyncio.timeout(timeout):
                while True:
                    changed = self._changed
                    if not self._accepted.empty():
                        return self._accepted.get_nowait()
                    if self.closed:
                        raise ConnectionClosedError(f"{self.name} is closed")
                    await changed.wait()
        except TimeoutError:
            raise ReceiveTimeoutError(self.name, timeout or 0.0) from None

    def __aiter__(self) -> PersistentServer:
        return self

    async def __anext__(self) -> ServerClient:
        try:
            return await self.accept()
        except ConnectionClosedError as exc:
            raise StopAsyncIteration from exc

    async def send(self, data: bytes, *, timeout: float | None = None, acknowledged: bool = False) -> None:  # noqa: ASYNC109 - public API
        """Send ``data`` to the most recently connected client, waiting for one to connect.

        :param timeout: bound on the wait for a client and the send together, seconds
        """
        self.start()
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                client = await self._wait_client()
                await client.send(data, acknowledged=acknowledged)
        except TimeoutError:
            if not scope.expired():
                raise
            raise SendTimeoutError(
                f"{self.name}: no client took the data within {timeout:g} s", timeout or 0.0
            ) from None

    async def deliver(
        self,
        data: bytes,
        *,
        timeout: float | None = None,  # noqa: ASYNC109 - public API
        acknowledged: bool = False,
        on_error: Callable[[BaseException, float], None] | None = None,
    ) -> None:
        """Send ``data`` to the most recently connected client until it is sent (waiting for a client as long
        as it takes); after a failure that client is closed and the backoff waited.

        :param timeout: bound on each send (not on the wait for a client)
        :raises PayloadError: the transport cannot carry ``data``
        :raises ConnectionClosedError: :meth:`close` was called meanwhile
        """
        self.start()

        async def attempt() -> None:
            client = await self._wait_client()
            conn = await client._usable_connection()
            try:
                await client._send_on(conn, data, timeout, acknowledged)
            except (PayloadError, TimeoutError):
                raise  # see PersistentConnection.deliver
            except _RETRYABLE:
                await client.close()
                raise

        await _retry_delivery(self, attempt, self._backoff, on_error)

    async def _wait_client(self) -> ServerClient:
        while True:
            changed = self._changed
            if self.closed:
                raise ConnectionClosedError(f"{self.name} is closed")
            client = self.latest_client
            if client is not None:
                return client
            await changed.wait()

    def _client_closed(self, client: ServerClient) -> None:
        if client in self._clients:
            self._clients.remove(client)
        self._pulse()
        if self._on_client_closed is not None:
            try:
                self._on_client_closed(client)
            except Exception:
                _LOGGER.exception("%s: the client close callback failed", self.name)

    # ------------------------------------------------------------------ listening

    async def _listen_attempt(self) -> None:
        """One attempt of the keeper: wait for a ready modem, listen, start accepting; raises on failure."""
        if self.closed or self.server is not None:
            return
        source = self._source
        try:
            modem = await source() if callable(source) else await wait_ready(source)
        except ConnectionClosedError as err:  # the modem closed for good
            _LOGGER.info("%s: %s; not listening again", self.name, describe_error(err))
            self._set_state(PersistentState.IDLE, err)
            return
        self._set_state(PersistentState.OPENING)
        limit = const.PERSISTENT_OPEN_TIMEOUT if self._listen_timeout is None else self._listen_timeout
        scope = asyncio.timeout(limit)
        try:
            async with scope:
                server = await modem.listen(self.port, transport=self.transport, **self.options)
        except TimeoutError:
            if not scope.expired():
                raise
            raise SocketError(f"{self.name}: not listening within {limit:g} s") from None
        if self._state is PersistentState.CLOSED:  # closed while it listened
            await _close_quietly(server, self.name)
            return
        _LOGGER.info("%s: listening", self.name)
        self._server = server
        self._set_state(PersistentState.OPEN)
        self._accept_task = asyncio.get_running_loop().create_task(
            self._accept_clients(server), name=f"{self.name} accept"
        )

    def _listen_failed(self, err: BaseException) -> None:
        if self.closed or self._keeper is None:
            return
        delay = self._keeper.next_delay()
        _LOGGER.warning(
            "%s: cannot listen on TCP port %s (%s); retrying in %.1f s",
            self.name,
            self.port,
            describe_error(err),
            delay,
        )
        self._set_state(PersistentState.WAITING, err)

    async def _accept_clients(self, server: Server) -> None:
        """Hand out the server's clients until it ends; then listen again (unless closed)."""
        try:
            async for conn in server:
                self._accept(conn)
        except Sim7020Error as err:
            _LOGGER.debug("%s: accepting failed: %s", self.name, describe_error(err))
        if self._server is server:
            self._server = None
        if self.closed:
            return
        error = server.error
        _LOGGER.info(
            "%s: the server ended (%s); listening again",
            self.name,
            describe_error(error) if error else "closed",
        )
        self._set_state(PersistentState.IDLE, error)
        if not server.closed:
            await _close_quietly(server, self.name)
        if self._keeper is not None and not self.closed:
            self._keeper.start()

    def _accept(self, conn: Connection) -> None:
        client = ServerClient(
            conn,
            name=f"{self.name} client {conn.remote_host}:{conn.remote_port}",
            idle_timeout=self.idle_timeout,
            on_data=self._on_client_data,
            on_closed=self._client_closed,
        )
        self._clients.append(client)
        _LOGGER.info("%s: client %s:%s connected", self.name, conn.remote_host, conn.remote_port)
        client.start()
        self._pulse()
        if self._on_client is None:
            self._accepted.put_nowait(client)
            return
        try:
            self._on_client(client)
        except Exception:
            _LOGGER.exception("%s: the client callback failed", self.name)


__all__ = [
    "ConnectionHost",
    "ModemSource",
    "PersistentConnection",
    "PersistentServer",
    "PersistentState",
    "ServerClient",
    "wait_ready",
]
