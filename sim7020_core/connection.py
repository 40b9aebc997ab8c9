"""Data connections: the contract between the modem and its transport plugins (a leaf of the core).

A :class:`Transport` (one instance per modem and transport name) opens :class:`Connection` objects and, when
it has a server mode, :class:`Server` objects. Transports subclass Connection and implement ``_do_send``,
``_do_close`` (and ``_do_send_to`` when they address peers); they feed incoming data with
:meth:`Connection._feed` and report the end of a connection with :meth:`Connection._set_closed`.

What a transport needs from the modem that carries it is the small :class:`TransportHost` protocol (the AT
engine, the status, the module-wide retention setting, and where to report received data), not the whole
:class:`~sim7020_core.modem.Modem`: this module imports nothing above the AT layer, so the hook specifications
and the plugin registry can build on it and the modem on them.

Session settings and stale state: a transport says which module-wide settings it relies on right now
(:meth:`Transport.session_settings`, a list of :class:`SessionSetting`); the modem re-applies them, with its
own, after every (re)initialisation and every wake from PSM, because real modules lose some of them there
(docs/plugin_hooks.md, "Session settings"). :meth:`Transport.reclaim` releases what a previous process left
on the module (sockets, links) when a modem connects. :meth:`Transport.ready_for_data` is awaited before
every send: data waits until the module is awake, has its settings back and is registered again after a wake.

Receive buffering: each connection queues what arrives until its owner reads it. The queue is bounded by
``buffer_limit`` bytes (:data:`RECEIVE_BUFFER_LIMIT` unless the transport says otherwise). When data arrives
past the bound, the **oldest** queued data are discarded to make room, :attr:`Connection.dropped_bytes` counts
them and a warning is logged; a transport with flow control (native ``manual_receive=True``) instead stops
pulling data from the module while the buffer is full (:meth:`Connection.buffer_space`), so nothing is lost.
"""

from __future__ import annotations

import abc
import asyncio
import collections
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

from .exceptions import ConnectionClosedError, PayloadError, Sim7020Error, SocketError, UnsupportedError
from .models import DataUsage

if TYPE_CHECKING:
    from .at.engine import AtEngine
    from .models import LinkState, ModemStatus

_LOGGER = logging.getLogger(__name__)

#: Default bound (bytes) of a connection's receive queue.
RECEIVE_BUFFER_LIMIT = 256 * 1024
#: Default bound (connections) of a server's queue of accepted, not yet taken, connections.
ACCEPT_QUEUE_LIMIT = 16

PROTOCOLS = frozenset({"udp", "tcp"})

Address = tuple[str, int]
CloseCallback = Callable[["Connection"], None]


class TransportHost(Protocol):
    """What a transport (and a plugin's hook) may use of the modem that carries it; a
    :class:`~sim7020_core.modem.Modem` is one.

    Transports issue their AT commands on :attr:`engine`, keep :attr:`retention` (module-wide,
    ``AT+RETENTION``) through the three retention members, and report every chunk of received data with
    :meth:`data_received` (:meth:`Connection._feed` does that for them).
    """

    @property
    def url(self) -> str:
        """The modem's device path or pyserial URL."""
        ...

    @property
    def engine(self) -> AtEngine:
        """The AT engine of the module."""
        ...

    @property
    def state(self) -> LinkState:
        """The modem's link state."""
        ...

    @property
    def status(self) -> ModemStatus:
        """The last known status (local IP address, registration, PSM …)."""
        ...

    @property
    def retention(self) -> bool | None:
        """Whether the module keeps its sockets across PSM (None: not known)."""
        ...

    async def refresh(self) -> ModemStatus:
        """Query the module and return the fresh status."""
        ...

    async def set_retention(self, enabled: bool) -> None:
        """Set ``AT+RETENTION``."""
        ...

    async def read_retention(self) -> bool:
        """Read ``AT+RETENTION?`` (and record it in :attr:`retention`)."""
        ...

    def data_received(self, connection: Connection, data: bytes) -> None:
        """Tell plugins and subscribers that ``data`` arrived on ``connection`` (queued for its owner)."""
        ...

    def data_sent(self, connection: Connection, size: int) -> None:
        """Count ``size`` payload bytes sent on ``connection`` (:meth:`Connection.send` and
        :meth:`Connection.send_to` report each successful send)."""
        ...

    async def ready_for_data(self) -> None:
        """Wait until data may go out: the module is awake (woken from PSM if need be), has its session
        settings back and, after a wake, is registered again (bounded; :class:`NotRegisteredError` when it
        does not register in time)."""
        ...


@dataclass(frozen=True, slots=True)
class SessionSetting:
    """One module setting a session relies on, (re-)applied by the modem after every initialisation (connect,
    reboot, recovery) and every wake from PSM.

    The modem applies its own settings first (``ATE0``, ``AT+CMEE=1``, ``AT+CEREG=4``, ``AT+CPSMSTATUS=1``),
    then those of each transport it has used (:meth:`Transport.session_settings`), in order.

    :param command: the command that sets it, e.g. ``"AT+CSORCVFLAG=1"``
    :param alternatives: commands tried in order when the module refuses ``command`` (older firmware:
        ``AT+CEREG=4`` → ``AT+CEREG=2``)
    :param timeout: bound on each command's answer (None: the engine's default)
    :param prepare: called right before ``command`` is written (no await in between), e.g. to teach the AT
        parser a binary URC format that may follow the ``OK`` at once
    :param done: called with the command the module took, or None when it refused them all (a timeout or a
        module that went back to sleep ends the application: ``done`` is not called)
    """

    command: str
    alternatives: tuple[str, ...] = ()
    timeout: float | None = None
    prepare: Callable[[], None] | None = None
    done: Callable[[str | None], None] | None = None


class ReceiveTimeoutError(SocketError, TimeoutError):
    """Nothing arrived on a connection (or a server) within the time the caller allowed."""

    def __init__(self, what: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(f"nothing received on {what} within {timeout:g} s")


@dataclass(frozen=True)
class Capabilities:
    """What a transport can do (the bridge, HA and users check it before relying on a feature).

    :param max_connections: connections the transport holds open at once (servers and accepted clients count)
    :param server: the transport can listen for incoming TCP connections (:meth:`Transport.listen`)
    :param binary_safe: any byte value (0x00-0xFF, CR, LF, Ctrl-Z) is carried unchanged both ways
    :param acknowledged_send: ``send(..., wait_ack=True)`` waits until the peer acknowledged the data (TCP)
    :param peer_addressing: ``send_to``/``receive_from`` address other peers than the connected one (UDP)
    :param protocols: the protocols the transport opens, a subset of ``{"udp", "tcp"}``
    :param max_payload: the largest payload one ``send`` accepts (larger is a PayloadError), None if unbounded
    """

    max_connections: int
    server: bool
    binary_safe: bool
    acknowledged_send: bool
    peer_addressing: bool
    protocols: frozenset[str] = PROTOCOLS
    max_payload: int | None = None


class Connection:
    """One data connection (a UDP peer or a TCP stream) carried by the modem.

    Obtained from :meth:`sim7020_core.modem.Modem.open_connection` or :meth:`Server.accept`; use it as an
    async context manager or call :meth:`close`. Transports subclass it.

    :ivar protocol: ``"udp"`` or ``"tcp"``
    :ivar remote_host: the peer's IP address (as given to the modem, after DNS)
    :ivar remote_port: the peer's port
    :ivar transport_name: name of the transport that carries it (``native``, ``cip`` …)
    :ivar dropped_bytes: received bytes discarded because the receive queue was full

    Data usage: :attr:`usage` counts the payload bytes of this connection since it opened; every send that
    succeeds and every chunk that arrives is also reported to the modem (``data_sent``, ``data_received``),
    which keeps the running totals of all its connections (:attr:`Modem.usage
    <sim7020_core.modem.Modem.usage>`). Transports need do nothing for it: the counting happens here, in
    :meth:`send`, :meth:`send_to` and :meth:`_feed`.
    """

    def __init__(
        self,
        transport: Transport,
        protocol: str,
        remote_host: str,
        remote_port: int,
        *,
        buffer_limit: int = RECEIVE_BUFFER_LIMIT,
    ) -> None:
        if protocol not in PROTOCOLS:
            raise ValueError(f"protocol must be 'udp' or 'tcp', not {protocol!r}")
        if buffer_limit < 1:
            raise ValueError(f"buffer_limit must be positive, not {buffer_limit!r}")
        self.transport = transport
        self.protocol = protocol
        self.remote_host = remote_host
        self.remote_port = remote_port
        self.transport_name = transport.name
        self.buffer_limit = buffer_limit
        self.dropped_bytes = 0
        self._queue: collections.deque[tuple[bytes, Address | None]] = collections.deque()
        self._queued_bytes = 0
        self._readable = asyncio.Event()
        self._closed = False
        self._closing = False
        self._error: SocketError | None = None
        self._close_callbacks: list[CloseCallback] = []
        self._send_lock = asyncio.Lock()
        self._overflow_warned = False
        self._sent_bytes = 0
        self._received_bytes = 0

    # ----------------------------------------------------------------- state

    @property
    def closed(self) -> bool:
        """True once the connection is closed (by us, by the peer, by an error or by a module reset)."""
        return self._closed

    @property
    def error(self) -> SocketError | None:
        """Why the connection ended when its owner did not close it (None while open or after close())."""
        return self._error

    @property
    def usage(self) -> DataUsage:
        """Payload bytes sent (sends that succeeded) and received on this connection since it opened."""
        return DataUsage(self._sent_bytes, self._received_bytes)

    @property
    def queued_bytes(self) -> int:
        """Bytes received and not yet read by the owner."""
        return self._queued_bytes

    def buffer_space(self) -> int:
        """How many more bytes the receive queue takes before old data would be discarded."""
        return max(0, self.buffer_limit - self._queued_bytes)

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return (
            f"<{type(self).__name__} {self.transport_name} {self.protocol} "
            f"{self.remote_host}:{self.remote_port} {state}>"
        )

    # ------------------------------------------------------------ public API

    async def send(self, data: bytes, **options: Any) -> None:
        """Send ``data`` to the connected peer (one datagram for UDP).

        Waits first until data may go out (:meth:`Transport.ready_for_data`): a module in PSM is woken, and
        right after a wake the data waits until the module is registered again (real modules drop what is
        sent before).

        :raises ConnectionClosedError: the connection is closed (the cause is chained)
        :raises PayloadError: the payload is empty, not bytes, or too large for the transport
        :raises AtCommandError: the module refused the send
        :raises NotRegisteredError: the module did not register again in time after waking from PSM
        """
        payload = self._check_payload(data)
        async with self._send_lock:
            self._check_open()
            await self.transport.ready_for_data()
            self._check_open()
            await self._do_send(payload, **options)
            self._count_sent(len(payload))

    async def send_to(self, data: bytes, host: str, port: int, **options: Any) -> None:
        """Send one datagram to another peer than the connected one (``peer_addressing`` transports only).

        :raises UnsupportedError: the transport cannot address peers
        """
        if not self.transport.capabilities.peer_addressing:
            raise UnsupportedError(f"transport {self.transport_name!r} cannot send to another peer")
        payload = self._check_payload(data)
        async with self._send_lock:
            self._check_open()
            await self.transport.ready_for_data()
            self._check_open()
            await self._do_send_to(payload, host, port, **options)
            self._count_sent(len(payload))

    async def receive(self, timeout: float | None = None) -> bytes:  # noqa: ASYNC109 - public API
        """Return the next received datagram (UDP) or chunk (TCP), waiting up to ``timeout`` seconds.

        Data already queued is returned even after the connection closed.

        :raises ReceiveTimeoutError: nothing arrived in time (also a TimeoutError)
        :raises ConnectionClosedError: the connection is closed and everything received was read
        :raises SocketError: the connection failed (``code`` is the module's error code)
        """
        data, _sender = await self.receive_from(timeout)
        return data

    async def receive_from(self, timeout: float | None = None) -> tuple[bytes, Address]:  # noqa: ASYNC109 - public API
        """Like :meth:`receive`, also returning the sender's ``(host, port)``."""
        try:
            async with asyncio.timeout(timeout):
                while not self._queue:
                    if self._closed:
                        raise self._closed_error()
                    self._readable.clear()
                    await self._readable.wait()
        except TimeoutError:
            raise ReceiveTimeoutError(repr(self), timeout or 0.0) from None
        data, sender = self._queue.popleft()
        self._queued_bytes -= len(data)
        if not self._queue:
            self._overflow_warned = False
        self._on_consumed()
        return data, sender or (self.remote_host, self.remote_port)

    def __aiter__(self) -> Connection:
        return self

    async def __anext__(self) -> bytes:
        """Yield received data until the connection ends; a failure (not a clean close) is raised."""
        try:
            return await self.receive()
        except ConnectionClosedError as exc:
            if self._error is None or type(self._error) is ConnectionClosedError:
                raise StopAsyncIteration from exc
            raise

    async def close(self) -> None:
        """Close the connection (idempotent); queued data stays readable."""
        if self._closed or self._closing:
            return
        self._closing = True
        try:
            async with self._send_lock:
                await self._do_close()
        finally:
            self._set_closed(None)

    async def __aenter__(self) -> Connection:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def add_close_callback(self, callback: CloseCallback) -> Callable[[], None]:
        """Call ``callback(connection)`` when the connection ends (right when the module reports it).

        If the connection is already closed the callback is scheduled at once. Returns a function that removes
        the callback. Callbacks must not block; their exceptions are logged.
        """
        if self._closed:
            asyncio.get_running_loop().call_soon(self._run_callback, callback)
        else:
            self._close_callbacks.append(callback)

        def remove() -> None:
            if callback in self._close_callbacks:
                self._close_callbacks.remove(callback)

        return remove

    # -------------------------------------------------- for transports only

    def _feed(self, data: bytes, sender: Address | None = None) -> None:
        """Queue received ``data`` (a transport calls this from its URC handler)."""
        if self._closed or not data:
            return
        size = len(data)
        self._received_bytes += size
        while self._queue and self._queued_bytes + size > self.buffer_limit:
            old, _ = self._queue.popleft()
            self._queued_bytes -= len(old)
            self.dropped_bytes += len(old)
            if not self._overflow_warned:
                self._overflow_warned = True
                _LOGGER.warning(
                    "%r: receive buffer full (%d bytes), discarding the oldest data", self, self.buffer_limit
                )
        if size > self.buffer_limit:  # a single item larger than the whole buffer: keep its newest part
            self.dropped_bytes += size - self.buffer_limit
            data = data[-self.buffer_limit :]
            size = len(data)
        self._queue.append((data, sender))
        self._queued_bytes += size
        self._readable.set()
        self.transport._notify_data(self, data)

    def _set_closed(self, error: SocketError | None) -> None:
        """Mark the connection closed (``error`` None for a close by the owner) and tell the callbacks."""
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._readable.set()
        self.transport._forget(self)
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            self._run_callback(callback)

    def _count_sent(self, size: int) -> None:
        """Count a successful send of ``size`` payload bytes, here and in the modem's totals."""
        self._sent_bytes += size
        self.transport._notify_sent(self, size)

    def _on_consumed(self) -> None:
        """Hook for transports with flow control: the owner read data, the buffer has room again."""

    async def _do_send(self, data: bytes, **options: Any) -> None:
        raise UnsupportedError(f"{type(self).__name__} cannot send")

    async def _do_send_to(self, data: bytes, host: str, port: int, **options: Any) -> None:
        raise UnsupportedError(f"transport {self.transport_name!r} cannot send to another peer")

    async def _do_close(self) -> None:
        """Release the connection on the module (called once, under the send lock)."""

    # ------------------------------------------------------------- helpers

    def _check_payload(self, data: bytes) -> bytes:
        if not isinstance(data, bytes | bytearray | memoryview):
            raise PayloadError(f"payload must be bytes, not {type(data).__name__}")
        payload = bytes(data)
        if not payload:
            raise PayloadError("payload is empty")
        limit = self.transport.capabilities.max_payload
        if limit is not None and len(payload) > limit:
            raise PayloadError(
                f"payload of {len(payload)} bytes is larger than the {limit} bytes "
                f"transport {self.transport_name!r} sends at once"
            )
        return payload

    def _check_open(self) -> None:
        if self._closed or self._closing:
            raise self._closed_error()

    def _closed_error(self) -> SocketError:
        if self._error is not None and type(self._error) is not ConnectionClosedError:
            err = SocketError(f"{self!r} failed: {self._error}", self._error.code)
        else:
            code = self._error.code if self._error is not None else None
            err = ConnectionClosedError(f"{self!r} is closed", code)
        err.__cause__ = self._error
        return err

    def _run_callback(self, callback: CloseCallback) -> None:
        try:
            callback(self)
        except Exception:
            _LOGGER.exception("close callback %r of %r failed", callback, self)


class Server:
    """A listening TCP server; each accepted client is a :class:`Connection`.

    Iterate over it (``async for conn in server``) or call :meth:`accept`. Clients that the owner does not
    take are queued up to :data:`ACCEPT_QUEUE_LIMIT`; beyond that new clients are closed at once.
    """

    def __init__(self, transport: Transport, port: int, *, backlog: int = ACCEPT_QUEUE_LIMIT) -> None:
        self.transport = transport
        self.port = port
        self.transport_name = transport.name
        self._backlog = backlog
        self._pending: collections.deque[Connection] = collections.deque()
        self._ready = asyncio.Event()
        self._closed = False
        self._error: SocketError | None = None
        self.connections: list[Connection] = []

    @property
    def closed(self) -> bool:
        """True once the server stopped listening."""
        return self._closed

    @property
    def error(self) -> SocketError | None:
        """Why the server stopped, when its owner did not close it."""
        return self._error

    def __repr__(self) -> str:
        state = " closed" if self._closed else ""
        return f"<{type(self).__name__} {self.transport_name} tcp :{self.port}{state}>"

    async def accept(self, timeout: float | None = None) -> Connection:  # noqa: ASYNC109 - public API
        """Return the next accepted client connection, waiting up to ``timeout`` seconds.

        :raises ReceiveTimeoutError: no client connected in time
        :raises ConnectionClosedError: the server is closed
        """
        try:
            async with asyncio.timeout(timeout):
                while not self._pending:
                    if self._closed:
                        err = ConnectionClosedError(f"{self!r} is closed")
                        err.__cause__ = self._error
                        raise err
                    self._ready.clear()
                    await self._ready.wait()
        except TimeoutError:
            raise ReceiveTimeoutError(repr(self), timeout or 0.0) from None
        return self._pending.popleft()

    def __aiter__(self) -> Server:
        return self

    async def __anext__(self) -> Connection:
        try:
            return await self.accept()
        except ConnectionClosedError as exc:
            raise StopAsyncIteration from exc

    async def close(self) -> None:
        """Stop listening (idempotent). Accepted connections stay open until closed themselves."""
        if self._closed:
            return
        try:
            await self._do_close()
        finally:
            self._set_closed(None)

    async def __aenter__(self) -> Server:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    # -------------------------------------------------- for transports only

    def _accepted(self, connection: Connection) -> bool:
        """Queue a newly accepted client; False when the backlog is full (the transport then closes it)."""
        if self._closed or len(self._pending) >= self._backlog:
            return False
        self._pending.append(connection)
        self.connections.append(connection)
        self._ready.set()
        return True

    def _set_closed(self, error: SocketError | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._error = error
        self._ready.set()
        self.transport._forget_server(self)

    async def _do_close(self) -> None:
        """Stop listening on the module."""


class Transport(abc.ABC):
    """A way of carrying data through the modem (a transport plugin); one instance per modem.

    Subclasses set the class attributes ``name`` and ``capabilities`` and implement :meth:`open_connection`;
    those with a server mode implement :meth:`listen`. They are registered with the
    ``sim7020_register_transports`` hook and built by the modem with ``cls(modem)`` on first use.

    :ivar modem: the modem that carries the transport (seen through :class:`TransportHost`)
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self, modem: TransportHost) -> None:
        self.modem = modem
        self.connections: list[Connection] = []
        self.servers: list[Server] = []

    @abc.abstractmethod
    async def open_connection(self, protocol: str, ip: str, port: int, **options: Any) -> Connection:
        """Open a connection to ``ip:port`` (an IP address: the modem resolved names already).

        :raises UnsupportedError: the protocol or an option is not supported by this transport
        :raises SocketError: the module could not open it (all sockets in use, peer unreachable …)
        """

    async def listen(self, port: int, **options: Any) -> Server:
        """Listen for TCP clients on ``port`` (transports whose capabilities say ``server``)."""
        raise UnsupportedError(f"transport {self.name!r} has no server mode")

    async def on_modem_reset(self) -> None:
        """The module rebooted or the link was reopened: every connection and server is gone."""
        err = ConnectionClosedError("the module was reset")
        for conn in list(self.connections):
            conn._set_closed(err)
        for server in list(self.servers):
            server._set_closed(err)

    async def on_psm(self, entered: bool) -> None:
        """The module entered (``entered=True``) or left PSM. Default: nothing survives PSM.

        On leaving, the modem awaits this before it re-applies the session settings, so a transport can first
        take note of what the module forgot in PSM (real modules reset ``AT+CSORCVFLAG``)."""
        if entered:
            await self.on_modem_reset()

    def session_settings(self) -> Sequence[SessionSetting]:
        """The module-wide settings this transport relies on right now (e.g. ``AT+CSORCVFLAG=1`` while it
        reads raw data), which the modem re-applies after every initialisation and every wake from PSM.

        Called each time they are applied: return what holds at that moment. Default: none.
        """
        return ()

    @classmethod
    async def reclaim(cls, modem: TransportHost) -> int:
        """Release what a previous process left on the module with this transport's commands (sockets,
        links, a server), so it is free for this one. Returns how many things were released.

        The modem calls it when it connects and after every module reset it did not see happen (before any
        instance of the transport exists, so it is a class method), once per distinct implementation:
        transports that share module resources share one implementation (a common base class). Default:
        nothing to release.

        :raises SocketError: something could not be released (the message says what); the modem reports it
            as a problem (:attr:`~sim7020_core.modem.Modem.problem`)
        """
        return 0

    async def ready_for_data(self) -> None:
        """Wait until data may go out (:meth:`TransportHost.ready_for_data`); :meth:`Connection.send` calls it
        before every send. A transport that writes data by other ways should call it too."""
        ready = getattr(self.modem, "ready_for_data", None)  # a bare host (tests) may not have it
        if ready is not None:
            await ready()

    async def close(self) -> None:
        """Close every connection and server (the modem is closing); failures are logged, not raised."""
        items: list[Server | Connection] = [*self.servers, *self.connections]
        for item in items:
            try:
                await item.close()
            except Sim7020Error as exc:
                _LOGGER.debug("closing %r failed: %s", item, exc)

    @classmethod
    def check_options(cls, protocol: str, options: Mapping[str, Any], *, server: bool = False) -> None:
        """Check ``options`` as :meth:`open_connection` (or, with ``server``, :meth:`listen`) would take them
        for ``protocol``, without a modem and without sending anything: option names, values and ranges.

        Configuration is checked with it before it is used (``sim7020 check-config`` checks each bridge
        route's ``options``), so a mistake is reported at once instead of when the route first opens.
        Transports override it; the default checks nothing.

        :raises UnsupportedError: an option this transport does not have, or not for this protocol
        :raises ValueError: an option's value (the message names the option, the value and what is allowed)
        """
        return None  # nothing known to check: the transport checks its options when it opens

    def check_protocol(self, protocol: str) -> str:
        """Return the normalised protocol name or raise UnsupportedError naming what is supported."""
        proto = protocol.lower() if isinstance(protocol, str) else protocol
        if proto not in self.capabilities.protocols:
            supported = ", ".join(sorted(self.capabilities.protocols))
            raise UnsupportedError(f"transport {self.name!r} carries {supported}, not {protocol!r}")
        return str(proto)

    # ------------------------------------------------------------ plumbing

    def _register(self, connection: Connection) -> None:
        self.connections.append(connection)

    def _forget(self, connection: Connection) -> None:
        if connection in self.connections:
            self.connections.remove(connection)

    def _forget_server(self, server: Server) -> None:
        if server in self.servers:
            self.servers.remove(server)

    def _notify_sent(self, connection: Connection, size: int) -> None:
        """Tell the modem that ``size`` payload bytes went out on ``connection`` (its data usage); a failure
        there is only logged."""
        data_sent = getattr(self.modem, "data_sent", None)  # a bare host (tests, older hosts) may not have it
        if data_sent is None:
            return
        try:
            data_sent(connection, size)
        except Exception:
            _LOGGER.exception("telling the modem about data sent on %r failed", connection)

    def _notify_data(self, connection: Connection, data: bytes) -> None:
        """Tell the modem that data arrived (it calls the ``sim7020_data_received`` hook and publishes a
        ``data`` event); a failure there is only logged, the owner has the data anyway."""
        try:
            self.modem.data_received(connection, data)
        except Exception:
            _LOGGER.exception("telling the modem about data received on %r failed", connection)


__all__ = [
    "ACCEPT_QUEUE_LIMIT",
    "RECEIVE_BUFFER_LIMIT",
    "Address",
    "Capabilities",
    "Connection",
    "ReceiveTimeoutError",
    "Server",
    "SessionSetting",
    "Transport",
    "TransportHost",
]
