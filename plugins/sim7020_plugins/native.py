"""The ``native`` transport: the SIM7020's own socket commands (AT+CSOC, CSOCON, CSOSEND, CSOCL …).

Wire formats (application note chapter 5):

- open: ``AT+CSOC=<domain>,<type>,1`` → ``+CSOC: <id>`` (ids 0-4, five sockets), then
  ``AT+CSOCON=<id>,<port>,"<ip>"``;
- send: ``AT+CSOSEND=<id>,<hex chars>,"<hex>"``, at most :data:`CSOSEND_CHUNK` bytes per command (TCP data is
  split into such chunks; a larger UDP datagram goes in one ``AT+CSODSEND=<id>,<len>`` data-mode send so it
  stays one datagram);
- receive: ``+CSONMI: <id>,<len>,<data>``: hex by default (``<len>`` counts hex characters), raw bytes after
  ``AT+CSORCVFLAG=1`` (option ``receive_mode="raw"``; the AT engine is taught the binary payload rule);
- errors: ``+CSOERR: <id>,<code>`` ends the connection right when it arrives, with the code's meaning
  (code 4 is a close by the peer, reported as :class:`ConnectionClosedError`);
- TCP acknowledgements: ``AT+CSOSENDFLAG=1`` (option ``send_ack=True``) makes the module report
  ``SEND: <id>,<len>`` once the peer acknowledged data; ``send(data, wait_ack=True)`` waits for it;
- server: ``AT+CSOB=<id>,<port>,"<local ip>"`` then ``AT+CSOLIS=<id>``; each ``+NEW CLIENT CONNEC: <id>``
  becomes a Connection (one server per module);
- PSM: with ``retention=True`` (``AT+RETENTION=1``) connections survive PSM; without it they are reported
  closed when the module enters PSM. AT+RETENTION is module state, owned by the modem: the option calls
  :meth:`~sim7020_core.modem.Modem.set_retention`; without the option the first open reads it with
  :meth:`~sim7020_core.modem.Modem.read_retention` when :attr:`~sim7020_core.modem.Modem.retention` is not
  known; at PSM time the transport asks ``modem.retention`` (the module is asleep then);
- the module-wide settings it relies on (``AT+CSORCVFLAG=1`` in raw mode, ``AT+CSOSENDFLAG=1`` with
  acknowledgements) are session settings (:meth:`NativeTransport.session_settings`): the modem applies them
  again after every wake and every reset. Real modules are back to hex after every wake (docs/emulator.md,
  "Power saving"), so on waking the transport reads ``+CSONMI`` as hex until raw mode is set again;
- stale sockets: :meth:`NativeTransport.reclaim` closes what a previous process left open on the module
  (``AT+CSOSTATUS`` then ``AT+CSOCL`` for each id) and puts the receive format back to hex.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from sim7020_core import const
from sim7020_core.at.engine import Urc
from sim7020_core.at.parser import CSONMI_RAW_RULE
from sim7020_core.connection import Capabilities, Connection, Server, SessionSetting, Transport
from sim7020_core.exceptions import (
    CSOERR_CODES,
    AtCommandError,
    ConnectionClosedError,
    NotRegisteredError,
    PayloadError,
    Sim7020Error,
    SocketError,
    UnsupportedError,
)
from sim7020_core.hookspecs import hookimpl

from ._common import (
    BackgroundTasks,
    UrcHandlers,
    check_ip,
    check_port,
    parse_int,
    unquote,
    urc_fields,
)
from ._common import (
    check_options as _check_names,
)

if TYPE_CHECKING:
    from sim7020_core.at.engine import AtEngine
    from sim7020_core.connection import TransportHost

_LOGGER = logging.getLogger(__name__)

#: Sockets the module holds at once (ids 0-4; application note 5.1).
MAX_SOCKETS = 5
#: Payload bytes per AT+CSOSEND in hex mode (512 hex characters, the limit OneOS's SIM7020 driver keeps to).
CSOSEND_CHUNK = 256
#: Largest AT+CSODSEND (data mode) length in bytes: the module's 1460-byte limit (note 5.5; unverified for
#: CSODSEND on hardware). The length is given, so every byte is data: CSODSEND is binary safe.
MAX_DATA_SEND = 1460
#: Largest UDP datagram the transport sends: one AT+CSODSEND (larger is a PayloadError, never split).
MAX_DATAGRAM = MAX_DATA_SEND
#: Largest TCP payload one send() accepts (it is split into CSOSEND chunks).
MAX_TCP_SEND = 64 * 1024
#: Largest manual read in hex mode (``AT+CSORXGET=3``), bytes (application note 5.5: 730).
RXGET_HEX_MAX = 730
#: Waiting for the ``SEND: <id>,<len>`` acknowledgements of one send (the peer's TCP ack).
ACK_TIMEOUT = 60.0
#: Settings commands (AT+CSORCVFLAG, AT+CSOSENDFLAG, AT+CSOB, AT+CSOLIS; AT+RETENTION is the modem's).
SETTING_TIMEOUT = 5.0

_OPTIONS = frozenset(
    {"receive_mode", "send_ack", "retention", "buffer_limit", "send_mode", "manual_receive", "keepalive"}
)
_SERVER_OPTIONS = frozenset({"receive_mode", "send_ack", "retention", "buffer_limit", "local_ip", "backlog"})
_RAW_RULE_NAME = "csonmi"


class AckTimeoutError(SocketError, TimeoutError):
    """The peer did not acknowledge sent data in time (``send(..., wait_ack=True)``, ``wait_acked()``)."""


class NativeConnection(Connection):
    """A connection carried by one native socket (``socket_id`` is the module's id, 0-4)."""

    transport: NativeTransport

    def __init__(
        self, transport: NativeTransport, socket_id: int, protocol: str, host: str, port: int, **kw: Any
    ) -> None:
        super().__init__(transport, protocol, host, port, **kw)
        self.socket_id = socket_id
        self.send_mode: str = "auto"
        self._sent_total = 0  # bytes handed to the module
        self._acked_total = 0  # bytes the module reported acknowledged (SEND: <id>,<len>)
        self._acked = asyncio.Event()
        self.manual_receive = False  # AT+CSORXGET=1: data waits in the module until there is room here
        self._rx_ready = False  # the module holds data for us
        self._reader: asyncio.Task[None] | None = None

    @property
    def acked_bytes(self) -> int:
        """Bytes acknowledged by the peer so far (with ``send_ack=True``)."""
        return self._acked_total

    @property
    def unacked_bytes(self) -> int:
        """Bytes sent and not yet acknowledged (with ``send_ack=True``)."""
        return max(0, self._sent_total - self._acked_total)

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} socket {self.socket_id}>"

    async def send(self, data: bytes, *, wait_ack: bool = False, **options: Any) -> None:
        """Send ``data``; with ``wait_ack=True`` (needs ``send_ack=True``) also wait for the peer's ack.

        :raises PayloadError: empty, not bytes, a UDP datagram over :data:`MAX_DATAGRAM` bytes, or TCP
            data over :data:`MAX_TCP_SEND` bytes
        :raises UnsupportedError: ``wait_ack`` without ``send_ack``, or on UDP
        :raises SocketError: the module refused the data or the connection failed meanwhile
        """
        await super().send(data, wait_ack=wait_ack, **options)

    async def wait_acked(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - public API
        """Wait until everything sent so far was acknowledged (``send_ack=True`` TCP connections).

        :raises AckTimeoutError: not acknowledged within ``timeout`` (default :data:`ACK_TIMEOUT`)
        :raises SocketError: the connection failed meanwhile
        """
        if not self.transport.send_ack or self.protocol != "tcp":
            raise UnsupportedError("acknowledgements need a TCP connection opened with send_ack=True")
        limit = ACK_TIMEOUT if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                while self._acked_total < self._sent_total:
                    if self.closed:
                        raise self._closed_error()
                    self._acked.clear()
                    await self._acked.wait()
        except TimeoutError:
            raise AckTimeoutError(
                f"{self!r}: {self.unacked_bytes} bytes not acknowledged by the peer within {limit:g} s"
            ) from None

    async def ack_status(self) -> tuple[int, int, int]:
        """Ask the module (``AT+CSOACK``) for ``(sent, acknowledged, unacknowledged)`` byte counts."""
        self._check_open()
        resp = await self.transport.engine.command(
            f"AT+CSOACK={self.socket_id}", timeout=SETTING_TIMEOUT, priority=const.Priority.HIGH
        )
        for line in resp.lines:
            if line.startswith("+CSOACK"):
                fields = urc_fields(line)
                if len(fields) >= 4:
                    sent, acked, unacked = (parse_int(f, "byte count", line) for f in fields[1:4])
                    return sent, acked, unacked
        raise SocketError(f"{self!r}: no +CSOACK line in the answer {resp.lines!r}")

    def _set_closed(self, error: SocketError | None) -> None:
        super()._set_closed(error)
        self._acked.set()  # wake wait_acked()

    async def status(self) -> int:
        """Ask the module for the socket's state (``AT+CSOSTATUS``): 0 unused, 1 created, 2 connected."""
        self._check_open()
        resp = await self.transport.engine.command(
            f"AT+CSOSTATUS={self.socket_id}", timeout=const.CSOSTATUS_TIMEOUT, priority=const.Priority.HIGH
        )
        for line in resp.lines:
            if line.startswith("+CSOSTATUS"):
                fields = urc_fields(line)
                return parse_int(fields[-1], "socket status", line)
        raise SocketError(f"{self!r}: no +CSOSTATUS line in the answer {resp.lines!r}")

    def _plan(self, data: bytes) -> list[tuple[str, bytes]]:
        """Split ``data`` into (``"hex"`` | ``"data"``, piece) sends, or raise PayloadError saying why not.

        ``AT+CSOSEND`` (hex) carries at most :data:`CSOSEND_CHUNK` bytes; ``AT+CSODSEND`` (data mode, binary
        safe) up to :data:`MAX_DATA_SEND` bytes. A UDP datagram must go in one command (a split would make
        several datagrams); TCP data may be split freely.
        """
        mode = self.send_mode
        if self.protocol == "udp":
            if len(data) > MAX_DATAGRAM:
                raise PayloadError(f"UDP datagram of {len(data)} bytes is larger than {MAX_DATAGRAM} bytes")
            if len(data) <= CSOSEND_CHUNK and mode != "data":
                return [("hex", data)]
            if mode == "hex":
                raise PayloadError(
                    f"UDP datagram of {len(data)} bytes is larger than the {CSOSEND_CHUNK} bytes "
                    "send_mode='hex' (AT+CSOSEND) carries"
                )
            return [("data", data)]
        if len(data) > MAX_TCP_SEND:
            raise PayloadError(
                f"TCP payload of {len(data)} bytes is larger than {MAX_TCP_SEND} bytes per send"
            )
        how, step = ("data", MAX_DATA_SEND) if mode == "data" else ("hex", CSOSEND_CHUNK)
        return [(how, data[i : i + step]) for i in range(0, len(data), step)]

    async def _do_send(self, data: bytes, **options: Any) -> None:
        wait_ack = bool(options.pop("wait_ack", False))
        _check_names(self.transport_name, options, ())
        if wait_ack and (not self.transport.send_ack or self.protocol != "tcp"):
            raise UnsupportedError("wait_ack needs a TCP connection opened with send_ack=True")
        for how, piece in self._plan(data):
            self._check_open()
            try:
                if how == "data":
                    await self.transport.engine.send_data(
                        f"AT+CSODSEND={self.socket_id},{len(piece)}", piece, timeout=const.CSOSEND_TIMEOUT
                    )
                else:
                    hexdata = piece.hex().upper()
                    await self.transport.engine.command(
                        f'AT+CSOSEND={self.socket_id},{len(hexdata)},"{hexdata}"',
                        timeout=const.CSOSEND_TIMEOUT,
                        priority=const.Priority.LOW,
                    )
            except AtCommandError as exc:
                if self.closed:
                    raise self._closed_error() from exc
                raise SocketError(f"{self!r}: the module refused {len(piece)} bytes: {exc.final}") from exc
            self._sent_total += len(piece)
        if wait_ack:
            await self.wait_acked()

    async def _do_close(self) -> None:
        await self.transport._close_socket(self.socket_id)

    def _on_consumed(self) -> None:
        if self.manual_receive and self._rx_ready:
            self.transport._pull(self)

    def _ack(self, length: int) -> None:
        self._acked_total += length
        self._acked.set()


class NativeServer(Server):
    """The module's one TCP server (``AT+CSOLIS``); ``socket_id`` is the listening socket."""

    transport: NativeTransport

    def __init__(self, transport: NativeTransport, socket_id: int, port: int, **kw: Any) -> None:
        super().__init__(transport, port, **kw)
        self.socket_id = socket_id

    async def _do_close(self) -> None:
        await self.transport._close_socket(self.socket_id)


class NativeTransport(Transport):
    """Native CSO* sockets: 5 UDP/TCP connections or servers, binary safe, TCP acks, one TCP server.

    Options of :meth:`open_connection` (``Modem.open_connection(..., transport="native", **options)``):

    - ``receive_mode``: ``"hex"`` (default, ``AT+CSORCVFLAG=0``) or ``"raw"`` (``AT+CSORCVFLAG=1``); a
      module-wide setting, the last one asked for wins;
    - ``send_ack``: True to switch on ``AT+CSOSENDFLAG=1`` (module-wide); then ``send(..., wait_ack=True)``;
    - ``retention``: True/False → :meth:`Modem.set_retention` (``AT+RETENTION=1/0``, module-wide: CIP
      links follow it too); with it connections survive PSM;
    - ``send_mode``: ``"auto"`` (hex CSOSEND, CSODSEND for datagrams over 256 bytes), ``"hex"`` or ``"data"``
      (CSODSEND up to 1460 bytes per command);
    - ``manual_receive``: True (TCP) → ``AT+CSORXGET=1,<id>``: the module holds incoming data, read with
      ``AT+CSORXGET=3`` only while the connection's buffer has room (flow control, nothing is dropped);
    - ``keepalive``: True, False or ``(idle_s, interval_s, count)`` (TCP) → ``AT+CSOALIVE``;
    - ``buffer_limit``: bytes queued for the owner (default
      :data:`sim7020_core.connection.RECEIVE_BUFFER_LIMIT`).

    Options of :meth:`listen`: ``local_ip``, ``backlog`` and the module-wide ones above.
    """

    name = "native"
    capabilities = Capabilities(
        max_connections=MAX_SOCKETS,
        server=True,
        binary_safe=True,
        acknowledged_send=True,
        peer_addressing=False,
        protocols=frozenset({"udp", "tcp"}),
        max_payload=MAX_TCP_SEND,
    )

    def __init__(self, modem: TransportHost) -> None:
        super().__init__(modem)
        self._sockets: dict[int, NativeConnection | NativeServer] = {}
        self._stale: set[int] = set()  # ids the module may still hold (closed by PSM/errors, CSOCL pending)
        self._lock = asyncio.Lock()  # serialises open/close bookkeeping (CSOC ... CSOCON)
        self._urcs = UrcHandlers(
            [
                ("+CSONMI", self._on_csonmi),
                ("+CSOERR", self._on_csoerr),
                ("SEND:", self._on_send_ack),
                ("+NEW CLIENT", self._on_new_client),
                ("+CSORXGET: 1", self._on_rx_ready),
            ],
            on_install=self._raw_rule_on,
            on_remove=self._raw_rule_off,
        )
        self._tasks = BackgroundTasks(_LOGGER, "background socket release failed: %r")
        self.receive_mode = "hex"
        self.send_ack = False
        self._client_buffer: int | None = None

    # ------------------------------------------------------------------ engine

    @property
    def engine(self) -> AtEngine:
        """The modem's AT engine, with this transport's URC handlers installed."""
        return self._urcs.install(self.modem.engine)

    def _raw_rule_on(self, engine: AtEngine) -> None:
        if self.receive_mode == "raw":
            engine.set_raw_payload_rule(_RAW_RULE_NAME, CSONMI_RAW_RULE)

    def _raw_rule_off(self, engine: AtEngine) -> None:
        if self.receive_mode == "raw":
            engine.set_raw_payload_rule(_RAW_RULE_NAME, None)

    # ----------------------------------------------------------------- opening

    async def open_connection(self, protocol: str, ip: str, port: int, **options: Any) -> NativeConnection:
        """Open a UDP or TCP connection on a free native socket (see the class docstring for options).

        :raises SocketError: all :data:`MAX_SOCKETS` sockets are in use, or the module could not connect
            (the socket it created is released again)
        """
        proto = self.check_protocol(protocol)
        addr = check_ip(ip)
        check_port(port)
        self.check_options(proto, options)
        send_mode = options.pop("send_mode", "auto")
        manual = bool(options.pop("manual_receive", False))
        keepalive = _keepalive_args(options.pop("keepalive", None))
        kw = {"buffer_limit": options.pop("buffer_limit")} if "buffer_limit" in options else {}
        async with self._reserve():  # the lock covers the id bookkeeping, not the (slow) connect
            await self._apply_settings(**options)
            socket_id = await self._create(proto, addr.version)
            conn = NativeConnection(self, socket_id, proto, str(addr), port, **kw)
            conn.send_mode = send_mode
            self._sockets[socket_id] = conn
        step = "connect to"
        try:
            await self.engine.command(f'AT+CSOCON={socket_id},{port},"{addr}"', timeout=const.CSOCON_TIMEOUT)
            if keepalive is not None:
                step = f"set keepalive {keepalive!r} for"
                await self.engine.command(f"AT+CSOALIVE={socket_id},{keepalive}", timeout=SETTING_TIMEOUT)
            if manual:
                step = "switch on manual receive for"
                await self.engine.command(f"AT+CSORXGET=1,{socket_id}", timeout=SETTING_TIMEOUT)
                conn.manual_receive = True
        except BaseException as exc:
            await self._abandon(conn, f"cannot {step} {addr}:{port}")
            if isinstance(exc, AtCommandError):
                raise SocketError(f"{proto} {step} {addr}:{port} failed: {exc.final}") from exc
            raise
        if conn.closed:  # a +CSOERR arrived while connecting
            raise conn._closed_error()
        self._register(conn)
        return conn

    @classmethod
    def check_options(cls, protocol: str, options: Mapping[str, Any], *, server: bool = False) -> None:
        """Check connection (or, with ``server``, server) options without a modem (see
        :meth:`Transport.check_options <sim7020_core.connection.Transport.check_options>`)."""
        _check_names(cls.name, options, _SERVER_OPTIONS if server else _OPTIONS)
        receive_mode = options.get("receive_mode")
        if receive_mode is not None and receive_mode not in ("hex", "raw"):
            raise ValueError(f"receive_mode must be 'hex' or 'raw', not {receive_mode!r}")
        if server:
            if options.get("local_ip"):
                check_ip(options["local_ip"])
            return
        send_mode = options.get("send_mode", "auto")
        if send_mode not in ("auto", "hex", "data"):
            raise ValueError(f"send_mode must be 'auto', 'hex' or 'data', not {send_mode!r}")
        keepalive = _keepalive_args(options.get("keepalive"))
        udp = str(protocol).lower() == "udp"
        if udp and options.get("manual_receive"):
            raise UnsupportedError("manual_receive is for TCP (a manual read would merge UDP datagrams)")
        if udp and keepalive is not None:
            raise UnsupportedError("keepalive is for TCP connections")

    async def listen(self, port: int, **options: Any) -> NativeServer:
        """Start the module's TCP server on ``port`` (``AT+CSOC``, ``AT+CSOB``, ``AT+CSOLIS``).

        Options: ``local_ip`` (an IP address; default: the modem's current IP), ``backlog``, and the
        module-wide settings of :meth:`open_connection`.

        :raises SocketError: a server is already listening, all sockets are in use, or the module refused
        :raises ValueError: ``local_ip`` is not an IP address
        """
        check_port(port)
        self.check_options("tcp", options, server=True)
        if any(isinstance(s, NativeServer) for s in self._sockets.values()):
            raise SocketError("the module already runs its one TCP server (close it first)")
        given_ip = options.pop("local_ip", None)
        local_ip = str(check_ip(given_ip)) if given_ip else await self._local_ip()
        kw = {"backlog": options.pop("backlog")} if "backlog" in options else {}
        self._client_buffer = options.pop("buffer_limit", None)
        async with self._reserve():
            if any(isinstance(s, NativeServer) for s in self._sockets.values()):
                raise SocketError("the module already runs its one TCP server (close it first)")
            await self._apply_settings(**options)
            socket_id = await self._create("tcp", 4)
            server = NativeServer(self, socket_id, port, **kw)
            self._sockets[socket_id] = server
            try:
                await self.engine.command(f'AT+CSOB={socket_id},{port},"{local_ip}"', timeout=SETTING_TIMEOUT)
                await self.engine.command(f"AT+CSOLIS={socket_id}", timeout=SETTING_TIMEOUT)
            except BaseException as exc:
                await self._abandon(server, f"cannot listen on port {port}")
                if isinstance(exc, AtCommandError):
                    raise SocketError(f"cannot listen on TCP port {port}: {exc.final}") from exc
                raise
        self.servers.append(server)
        return server

    async def _abandon(self, sock: NativeConnection | NativeServer, reason: str) -> None:
        """An open or listen failed half-way: report ``sock`` closed and free its socket on the module."""
        if self._sockets.get(sock.socket_id) is sock:
            del self._sockets[sock.socket_id]
        sock._set_closed(SocketError(reason))
        with contextlib.suppress(Sim7020Error):
            await self._release(sock.socket_id)

    @contextlib.asynccontextmanager
    async def _reserve(self) -> AsyncIterator[None]:
        async with self._lock:
            await self._cleanup_stale()
            used = len(self._sockets) + len(self._stale)
            if used >= MAX_SOCKETS:
                ids = ", ".join(f"{i}: {s!r}" for i, s in sorted(self._sockets.items()))
                raise SocketError(f"all {MAX_SOCKETS} native sockets are in use ({ids}); close one first")
            yield

    async def _create(self, protocol: str, ip_version: int) -> int:
        domain = 1 if ip_version == 4 else 2
        sock_type = 1 if protocol == "tcp" else 2
        try:
            resp = await self.engine.command(f"AT+CSOC={domain},{sock_type},1", timeout=const.CSOC_TIMEOUT)
        except AtCommandError as exc:
            raise SocketError(f"the module cannot create a {protocol} socket: {exc.final}") from exc
        for line in resp.lines:
            if line.startswith("+CSOC"):
                socket_id = parse_int(urc_fields(line)[0], "socket id", line)
                old = self._sockets.pop(socket_id, None)
                if old is not None:  # the module reused an id we thought busy: it had lost that socket
                    old._set_closed(ConnectionClosedError("the module dropped the socket"))
                self._stale.discard(socket_id)
                return socket_id
        raise SocketError(f"no +CSOC line in the answer to AT+CSOC: {resp.lines!r}")

    async def _apply_settings(
        self, receive_mode: str | None = None, send_ack: bool | None = None, retention: bool | None = None
    ) -> None:
        if receive_mode is not None and receive_mode not in ("hex", "raw"):
            raise ValueError(f"receive_mode must be 'hex' or 'raw', not {receive_mode!r}")
        engine = self.engine
        if receive_mode is not None and receive_mode != self.receive_mode:
            flag = 1 if receive_mode == "raw" else 0
            if flag:  # teach the parser first: raw data may follow the OK at once
                engine.set_raw_payload_rule(_RAW_RULE_NAME, CSONMI_RAW_RULE)
            try:
                await engine.command(f"AT+CSORCVFLAG={flag}", timeout=SETTING_TIMEOUT)
            except BaseException:
                if flag:
                    engine.set_raw_payload_rule(_RAW_RULE_NAME, None)
                raise
            if not flag:
                engine.set_raw_payload_rule(_RAW_RULE_NAME, None)
            self.receive_mode = receive_mode
        if send_ack is not None and bool(send_ack) != self.send_ack:
            await engine.command(f"AT+CSOSENDFLAG={int(bool(send_ack))}", timeout=SETTING_TIMEOUT)
            self.send_ack = bool(send_ack)
            for sock in self._sockets.values():  # data sent before acks were on will never be acked
                if isinstance(sock, NativeConnection):
                    sock._acked_total = sock._sent_total
        # AT+RETENTION is module state (the modem owns it): known before any socket can meet PSM
        if retention is not None:
            await self.modem.set_retention(bool(retention))
        elif self.modem.retention is None:
            await self.modem.read_retention()

    async def _local_ip(self) -> str:
        status = getattr(self.modem, "status", None)
        ip = getattr(status, "ip", None)
        if not ip:
            status = await self.modem.refresh()
            ip = status.ip
        if not ip:
            raise NotRegisteredError("the modem has no IP address to listen on (no active PDN)")
        return str(ip)

    # ----------------------------------------------------------------- closing

    async def _close_socket(self, socket_id: int) -> None:
        """AT+CSOCL for an owner's close. Never fails: an ERROR means the module already dropped the socket;
        if the module cannot be reached the id is kept as stale and released before the next open."""
        self._sockets.pop(socket_id, None)
        try:
            await self._release(socket_id)
        except Sim7020Error as exc:
            _LOGGER.debug("AT+CSOCL=%d failed (%s): released before the next open", socket_id, exc)

    async def _release(self, socket_id: int) -> None:
        self._stale.add(socket_id)
        try:
            await self.engine.command(f"AT+CSOCL={socket_id}", timeout=const.CSOCL_TIMEOUT)
        except AtCommandError:
            _LOGGER.debug("AT+CSOCL=%d: the module had already released the socket", socket_id)
        self._stale.discard(socket_id)

    async def _cleanup_stale(self) -> None:
        for socket_id in sorted(self._stale):
            if socket_id not in self._sockets:
                await self._release(socket_id)

    def _release_later(self, socket_id: int) -> None:
        """After +CSOERR: free the module's socket in the background (the URC handler cannot await)."""
        self._stale.add(socket_id)

        async def release() -> None:
            async with self._lock:
                if socket_id in self._stale and socket_id not in self._sockets:
                    with contextlib.suppress(Sim7020Error):  # kept as stale: released before the next open
                        await self._release(socket_id)

        self._tasks.spawn(release())

    async def on_modem_reset(self) -> None:
        """The module rebooted: every socket is gone and the module prints hex again; the module-wide
        settings asked for (raw receive mode, acknowledgements) are applied again by the modem when it
        initialises the module (:meth:`session_settings`)."""
        self._stale.clear()
        for sock in list(self._sockets.values()):
            sock._set_closed(ConnectionClosedError("the module was reset"))
        self._sockets.clear()
        self._module_prints_hex()

    async def on_psm(self, entered: bool) -> None:
        """Without RETENTION the module drops its sockets in PSM: report them closed when it enters. On
        leaving, the module prints hex again (real modules reset ``AT+CSORCVFLAG`` in PSM) until the modem
        applies the session settings again, right after this."""
        if not entered:
            self._module_prints_hex()
            return
        if self.modem.retention:  # recorded earlier: the module is asleep now
            return
        for socket_id, sock in list(self._sockets.items()):
            self._stale.add(socket_id)  # released with AT+CSOCL before the next open, in case it kept it
            sock._set_closed(ConnectionClosedError("the module entered PSM without AT+RETENTION=1"))
        self._sockets.clear()

    def _module_prints_hex(self) -> None:
        """The module's receive format is its default (hex) now: read ``+CSONMI`` as hex."""
        if self._urcs.engine is not None:
            self._raw_rule_off(self._urcs.engine)

    # ------------------------------------------------------------------ session settings, stale sockets

    def session_settings(self) -> list[SessionSetting]:
        """``AT+CSORCVFLAG=1`` while raw receive mode was asked for (the parser learns the raw ``+CSONMI``
        right before), ``AT+CSOSENDFLAG=1`` while acknowledgements were; a setting the module refuses falls
        back to the module's default (hex, no acknowledgements) and is asked for again by the next open."""
        items: list[SessionSetting] = []
        if self.receive_mode == "raw":
            items.append(
                SessionSetting(
                    "AT+CSORCVFLAG=1", timeout=SETTING_TIMEOUT, prepare=self._raw_prepare, done=self._raw_done
                )
            )
        if self.send_ack:
            ack = SessionSetting("AT+CSOSENDFLAG=1", timeout=SETTING_TIMEOUT, done=self._send_ack_done)
            items.append(ack)
        return items

    def _raw_prepare(self) -> None:
        # raw data may follow the OK at once
        self.engine.set_raw_payload_rule(_RAW_RULE_NAME, CSONMI_RAW_RULE)

    def _raw_done(self, taken: str | None) -> None:
        if taken is None:
            _LOGGER.warning("the module did not take AT+CSORCVFLAG=1 again: native sockets receive hex")
            self._module_prints_hex()
            self.receive_mode = "hex"

    def _send_ack_done(self, taken: str | None) -> None:
        if taken is None:
            _LOGGER.warning("the module did not take AT+CSOSENDFLAG=1 again: no send acknowledgements")
            self.send_ack = False

    @classmethod
    async def reclaim(cls, modem: TransportHost) -> int:
        """Close the native sockets a previous process left open: ``AT+CSOSTATUS=<id>`` for each id, then
        ``AT+CSOCL=<id>`` for those in use (for every id on firmware without ``AT+CSOSTATUS``); then
        ``AT+CSORCVFLAG=0``, the receive format this transport starts from.

        :raises SocketError: a socket in use could not be closed
        """
        engine = modem.engine
        released = 0
        stuck: list[str] = []
        for socket_id in range(MAX_SOCKETS):
            known = True
            try:
                resp = await engine.command(
                    f"AT+CSOSTATUS={socket_id}", timeout=const.CSOSTATUS_TIMEOUT, priority=const.Priority.HIGH
                )
            except AtCommandError:
                known = False  # no AT+CSOSTATUS (or not for this id): close it in case
            else:
                if _socket_status(resp.lines) == 0:
                    continue
            try:
                await engine.command(f"AT+CSOCL={socket_id}", timeout=const.CSOCL_TIMEOUT)
            except AtCommandError as exc:
                if known:
                    stuck.append(f"socket {socket_id}: AT+CSOCL answered {exc.final}")
                continue
            released += 1
        with contextlib.suppress(AtCommandError):
            await engine.command("AT+CSORCVFLAG=0", timeout=SETTING_TIMEOUT, priority=const.Priority.HIGH)
        if stuck:
            raise SocketError(f"native sockets left open could not be closed ({'; '.join(stuck)})")
        return released

    async def close(self) -> None:
        """Close every socket, stop background work and remove the URC handlers."""
        await super().close()
        await self._tasks.cancel_all()
        self._urcs.remove()

    def _forget(self, connection: Connection) -> None:
        super()._forget(connection)
        if isinstance(connection, NativeConnection) and self._sockets.get(connection.socket_id) is connection:
            del self._sockets[connection.socket_id]

    def _forget_server(self, server: Server) -> None:
        super()._forget_server(server)
        if isinstance(server, NativeServer) and self._sockets.get(server.socket_id) is server:
            del self._sockets[server.socket_id]

    # -------------------------------------------------------------------- URCs

    def _socket(self, urc_line: str, field: str) -> NativeConnection | NativeServer | None:
        try:
            socket_id = int(field)
        except ValueError:
            _LOGGER.debug("ignoring %r: bad socket id", urc_line)
            return None
        sock = self._sockets.get(socket_id)
        if sock is None:
            _LOGGER.debug("ignoring %r: socket %d is not ours", urc_line, socket_id)
        return sock

    def _on_csonmi(self, urc: Urc) -> None:
        line = urc.line
        fields = urc_fields(line)
        if len(fields) < 2:
            _LOGGER.debug("ignoring malformed %r", line)
            return
        sock = self._socket(line, fields[0])
        if urc.payload is not None:
            data = urc.payload
        else:
            if len(fields) < 3:
                _LOGGER.debug("ignoring %r: no data", line)
                return
            text = unquote(line.partition(":")[2].split(",", 2)[2])
            try:
                data = bytes.fromhex(text)
            except ValueError:
                _LOGGER.warning("ignoring %r: the data is not hex", line)
                return
        if isinstance(sock, NativeConnection):
            sock._feed(data)
        elif isinstance(sock, NativeServer):  # data reported on the listening socket (application note 5.4)
            clients = [c for c in sock.connections if not c.closed]
            if len(clients) == 1:
                clients[0]._feed(data)
            else:
                _LOGGER.debug("ignoring %r on the server socket: cannot tell which client sent it", line)

    def _on_csoerr(self, urc: Urc) -> None:
        fields = urc_fields(urc.line)
        if len(fields) < 2:
            _LOGGER.debug("ignoring malformed %r", urc.line)
            return
        sock = self._socket(urc.line, fields[0])
        try:
            code = int(fields[1])
        except ValueError:
            code = -1
        if sock is None:
            return
        meaning = CSOERR_CODES.get(code, "unknown error")
        err: SocketError
        if code == 4:
            err = ConnectionClosedError(f"socket {sock.socket_id}: {meaning} (+CSOERR {code})", code)
        else:
            err = SocketError(f"socket {sock.socket_id}: {meaning} (+CSOERR {code})", code)
        socket_id = sock.socket_id
        self._sockets.pop(socket_id, None)
        sock._set_closed(err)
        self._release_later(socket_id)

    def _on_send_ack(self, urc: Urc) -> None:
        fields = urc_fields(urc.line)
        if len(fields) < 2:
            return
        sock = self._socket(urc.line, fields[0])
        if isinstance(sock, NativeConnection):
            try:
                sock._ack(int(fields[1]))
            except ValueError:
                _LOGGER.debug("ignoring malformed %r", urc.line)

    def _on_rx_ready(self, urc: Urc) -> None:
        """``+CSORXGET: 1,<id>``: data waits in the module for a manual-receive connection."""
        fields = urc_fields(urc.line)
        sock = self._socket(urc.line, fields[1]) if len(fields) > 1 else None
        if isinstance(sock, NativeConnection) and sock.manual_receive:
            sock._rx_ready = True
            self._pull(sock)

    def _pull(self, conn: NativeConnection) -> None:
        """Start reading what the module holds for ``conn`` (one reader per connection)."""
        if conn._reader is not None and not conn._reader.done():
            return
        conn._reader = self._tasks.spawn(self._read_held(conn))

    async def _read_held(self, conn: NativeConnection) -> None:
        """``AT+CSORXGET=3,<id>,<n>`` (hex) while the module holds data and the owner's buffer has room."""
        while conn._rx_ready and not conn.closed:
            room = conn.buffer_space()
            if room <= 0:
                return  # resumed by _on_consumed when the owner reads
            want = min(RXGET_HEX_MAX, room)
            try:
                resp = await self.engine.command(
                    f"AT+CSORXGET=3,{conn.socket_id},{want}",
                    timeout=const.CSOSEND_TIMEOUT,
                    priority=const.Priority.LOW,
                )
            except AtCommandError as exc:
                _LOGGER.debug("%r: manual read failed: %s", conn, exc.final)
                return
            data, left = _parse_rxget(resp.lines, conn.socket_id)
            for line in resp.lines:  # an arrival notice for another socket caught in this answer
                if line.startswith("+CSORXGET: 1,"):
                    self._on_rx_ready(Urc(line))
            if data:
                conn._feed(data)
            if left == 0 or (not data and left is None):
                conn._rx_ready = False

    def _on_new_client(self, urc: Urc) -> None:
        fields = urc_fields(urc.line)
        server = next((s for s in self._sockets.values() if isinstance(s, NativeServer)), None)
        try:
            socket_id = int(fields[0])
        except (ValueError, IndexError):
            _LOGGER.debug("ignoring malformed %r", urc.line)
            return
        if server is None or server.closed:
            _LOGGER.debug("%r without a server: releasing the socket", urc.line)
            self._release_later(socket_id)
            return
        host = fields[1] if len(fields) > 1 else ""
        port = int(fields[2]) if len(fields) > 2 and fields[2].isdigit() else 0
        kw = {"buffer_limit": self._client_buffer} if self._client_buffer else {}
        conn = NativeConnection(self, socket_id, "tcp", host, port, **kw)
        self._sockets[socket_id] = conn
        self._register(conn)
        if not server._accepted(conn):
            self._sockets.pop(socket_id, None)
            conn._set_closed(ConnectionClosedError("the server's accept queue is full"))
            self._release_later(socket_id)


def _keepalive_args(value: object) -> str | None:
    """The ``keepalive`` option (True, False or (idle_s, interval_s, count)) → ``AT+CSOALIVE=<id>,`` args."""
    if value is None:
        return None
    if value is True:
        return "1"
    if value is False:
        return "0"
    if (
        isinstance(value, tuple | list)
        and len(value) == 3
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        return "1," + ",".join(str(v) for v in value)
    raise ValueError(
        f"keepalive must be True, False or (idle_s, interval_s, count) positive ints, not {value!r}"
    )


def _socket_status(lines: list[str]) -> int | None:
    """The state in ``+CSOSTATUS: <id>,<state>`` (0 unused, 1 created, 2 connected); None without it."""
    for line in lines:
        if line.startswith("+CSOSTATUS"):
            fields = urc_fields(line)
            if fields and fields[-1].isdigit():
                return int(fields[-1])
    return None


def _parse_rxget(lines: list[str], socket_id: int) -> tuple[bytes, int | None]:
    """Data and bytes left in an ``AT+CSORXGET=3`` answer: ``+CSORXGET: 3,<id>,<read>,<left>``, then hex."""
    for i, line in enumerate(lines):
        if not line.startswith("+CSORXGET: 3,"):
            continue
        fields = urc_fields(line)
        read = parse_int(fields[2], "read length", line) if len(fields) > 2 else 0
        left = parse_int(fields[3], "bytes left", line) if len(fields) > 3 else None
        text = fields[4] if len(fields) > 4 else ""  # the data on the header line (some firmware)
        if not text and read and i + 1 < len(lines):
            text = lines[i + 1]
        try:
            data = bytes.fromhex(unquote(text))
        except ValueError:
            raise SocketError(f"socket {socket_id}: manual read returned bad hex {text[:40]!r}") from None
        return data, left
    return b"", None


@hookimpl
def sim7020_register_transports() -> list[type[Transport]]:
    """The native transport."""
    return [NativeTransport]
