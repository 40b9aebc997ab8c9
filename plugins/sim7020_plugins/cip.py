"""The ``cip`` transport: SIM800-compatible multi-link TCP/UDP (``AT+CIPMUX=1``, six links; note chapter 6).

Wire formats (application note 6.6-6.13; the SIM800-series AT manual where the note is silent):

- bearer: ``AT+CIPMUX=1``, ``AT+CSTT``, ``AT+CIICR``, ``AT+CIFSR`` (the state machine of 6.11, see
  :mod:`._cipcore`);
- open: ``AT+CIPSTART=<n>,"TCP"|"UDP","<ip>",<port>`` → ``OK`` then ``<n>, CONNECT OK`` / ``CONNECT FAIL``,
  with the recovery ladder of 6.13;
- send: the fixed-length form ``AT+CIPSEND=<n>,<len>`` (binary safe: no Ctrl+Z), at most 1460 bytes per
  command (TCP data is split; a larger UDP datagram is a PayloadError) → ``<n>, SEND OK`` or, with
  ``quick_send=True`` (``AT+CIPQSEND=1``), ``DATA ACCEPT: <n>,<len>``; ``send(data, wait_ack=True)`` then
  polls ``AT+CIPACK=<n>`` until the peer acknowledged everything (TCP); a timed send
  (``send(data, timed_send=<s>)``, note 6.9.2) is ``AT+CIPATS=1,<s>`` then the variable-length
  ``AT+CIPSEND=<n>``: the module sends what was written at the prompt when its timer runs out;
- TCP keepalive: ``AT+CIPTKA=<mode>[,<idle>,<interval>,<count>]`` (module-wide, set before the link opens);
- receive: ``+RECEIVE,<n>,<len>:`` CRLF data (automatic), or with ``receive_mode="manual"``
  (``AT+CIPRXGET=1``) the ``+CIPRXGET: 1,<n>`` arrival URC and ``AT+CIPRXGET=2,<n>,1460`` reads, paced by the
  connection's free buffer space (flow control: nothing is lost);
- close: ``AT+CIPCLOSE=<n>,<0 slow|1 quick>`` → ``<n>, CLOSE OK``; ``<n>, CLOSED`` when the peer closes;
- server: ``AT+CIPSERVER=1,<port>`` → ``SERVER OK``; each client ``<n>, REMOTE IP: <ip>`` is a Connection;
  ``AT+CIPSERVER=0`` → ``SERVER CLOSE``;
- ``PDP DEACT`` (the context dropped) closes every link; the next open brings the bearer up again;
- PSM: the links survive only with ``AT+RETENTION=1``, module state owned by the modem
  (:meth:`~sim7020_core.modem.Modem.set_retention`); each open/listen reads it
  (:meth:`~sim7020_core.modem.Modem.read_retention`) when :attr:`~sim7020_core.modem.Modem.retention` is not
  known, and the recorded value decides when the module enters PSM (it is asleep then).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sim7020_core import const
from sim7020_core.connection import Capabilities, Connection, Server, SessionSetting, Transport
from sim7020_core.exceptions import (
    AtCommandError,
    ConnectionClosedError,
    PayloadError,
    Sim7020Error,
    SocketError,
    UnsupportedError,
)
from sim7020_core.hookspecs import hookimpl

from ._cipcore import (
    CIPSEND_MAX,
    CIPSTATUS_TIMEOUT,
    SETTING_TIMEOUT,
    CipLayerReclaim,
    CipSession,
    session_for,
    split_link,
)
from ._common import BackgroundTasks, UrcHandlers, check_ip, check_port, urc_fields
from ._common import check_options as _check_names

if TYPE_CHECKING:
    from sim7020_core.at.engine import AtEngine, Urc
    from sim7020_core.connection import TransportHost

_LOGGER = logging.getLogger(__name__)

#: Links of the multi-link mode (application note 6.1: six sockets, TCP or UDP).
MAX_LINKS = 6
#: Largest TCP payload one send() accepts (it is split into CIPSEND_MAX chunks).
MAX_TCP_SEND = 64 * 1024
#: Waiting for the peer to acknowledge quick-send data (``AT+CIPACK`` polled every ACK_POLL_INTERVAL).
ACK_TIMEOUT = 60.0
ACK_POLL_INTERVAL = 0.05
#: Bytes asked per manual read (``AT+CIPRXGET=2,<n>,<len>``; the module's limit).
RXGET_MAX = 1460

_OPTIONS = frozenset({"quick_send", "receive_mode", "close_mode", "buffer_limit", "keepalive", "timed_send"})
_SEND_OPTIONS = ("timed_send",)
#: ``AT+CIPATS`` timer range (seconds; the SIM800/SIM7000 manuals, ``AT+CIPATS=?`` → ``(0,1),(1-100)``).
TIMED_SEND_RANGE = (1, 100)
#: ``AT+CIPTKA`` ranges (``AT+CIPTKA=?`` → ``(0,1),(30-7200),(30-600),(1-9)``): idle s, interval s, probes.
KEEPALIVE_RANGES = (("idle_s", 30, 7200), ("interval_s", 30, 600), ("count", 1, 9))
#: Bytes a timed send must not hold: the module ends a variable-length send at Ctrl+Z and cancels it at ESC.
_TIMED_SEND_STOPS = {0x1A: "Ctrl+Z", 0x1B: "ESC"}
_SERVER_OPTIONS = frozenset({"receive_mode", "buffer_limit", "backlog"})


def timed_send_seconds(value: object) -> int | None:
    """The ``timed_send`` option: None (an ordinary send) or the module's timer in whole seconds (1-100).

    :raises ValueError: naming the value and the range
    """
    if value is None:
        return None
    low, high = TIMED_SEND_RANGE
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValueError(f"timed_send must be whole seconds from {low} to {high} (AT+CIPATS), not {value!r}")
    return value


def keepalive_args(value: object) -> str | None:
    """The ``keepalive`` option → the arguments of ``AT+CIPTKA=``; the same values as the native transport's:
    True (the module's default timers), False, or ``(idle_s, interval_s, count)`` (a list from YAML too).

    :raises ValueError: naming the field, the value and its range
    """
    if value is None:
        return None
    if value is True:
        return "1"
    if value is False:
        return "0"
    if not isinstance(value, tuple | list) or len(value) != 3:
        raise ValueError(f"keepalive must be True, False or (idle_s, interval_s, count), not {value!r}")
    for item, (name, low, high) in zip(value, KEEPALIVE_RANGES, strict=True):
        if isinstance(item, bool) or not isinstance(item, int) or not low <= item <= high:
            raise ValueError(
                f"keepalive {name} must be an integer from {low} to {high} (AT+CIPTKA), not {item!r}"
            )
    return "1," + ",".join(str(item) for item in value)


def _check_receive_mode(receive_mode: object) -> None:
    if receive_mode is not None and receive_mode not in ("auto", "manual"):
        raise ValueError(f"receive_mode must be 'auto' or 'manual', not {receive_mode!r}")


class CipConnection(Connection):
    """A connection on one multi-link CIP link (``link`` is the module's ``<n>``, 0-5)."""

    transport: CipTransport

    def __init__(
        self, transport: CipTransport, link: int, protocol: str, host: str, port: int, **kw: Any
    ) -> None:
        super().__init__(transport, protocol, host, port, **kw)
        self.link = link
        #: every send is a timed send (``AT+CIPATS``) with this timer, unless a send says otherwise
        self.timed_send: int | None = None
        self.close_mode = 0  # slow close (CIPCLOSE=<n>,0, FIN) by default: the peer gets everything sent
        self._rx_pending = False  # the module holds data for us (manual receive)
        self._reading = False
        self._peer_closed: ConnectionClosedError | None = None  # CLOSED came while the module held data

    def __repr__(self) -> str:
        return f"{super().__repr__()[:-1]} link {self.link}>"

    async def send(self, data: bytes, *, wait_ack: bool = False, **options: Any) -> None:
        """Send ``data``; with ``wait_ack=True`` wait until the peer acknowledged it (TCP).

        Option ``timed_send=<seconds 1-100>`` (default: the connection's ``timed_send`` open option; None for
        an ordinary send): the note's timed send (6.9.2), ``AT+CIPATS=1,<s>`` then ``AT+CIPSEND=<n>`` with
        the data written at the prompt and no terminator; the module sends it when its timer runs out, so
        the send returns after about ``<s>`` seconds. At most 1460 bytes, without 0x1A (Ctrl+Z) or 0x1B (ESC).

        :raises PayloadError: empty, a UDP datagram over 1460 bytes, TCP data over 64 KiB; a timed send over
            1460 bytes or holding Ctrl+Z/ESC
        :raises ValueError: ``timed_send`` out of range
        :raises SocketError: ``SEND FAIL``, or the link closed meanwhile
        """
        await super().send(data, wait_ack=wait_ack, **options)

    async def _do_send(self, data: bytes, **options: Any) -> None:
        wait_ack = bool(options.pop("wait_ack", False))
        _check_names(self.transport_name, options, _SEND_OPTIONS)
        timed = timed_send_seconds(options.pop("timed_send", self.timed_send))
        if wait_ack and self.protocol != "tcp":
            raise UnsupportedError("wait_ack needs a TCP connection (UDP data is never acknowledged)")
        if timed is not None:
            await self._timed_send(data, timed)
            if wait_ack:
                await self.wait_acked()
            return
        if self.protocol == "udp" and len(data) > CIPSEND_MAX:
            raise PayloadError(f"UDP datagram of {len(data)} bytes is larger than {CIPSEND_MAX} bytes")
        if len(data) > MAX_TCP_SEND:
            raise PayloadError(
                f"TCP payload of {len(data)} bytes is larger than {MAX_TCP_SEND} bytes per send"
            )
        for start in range(0, len(data), CIPSEND_MAX):
            chunk = data[start : start + CIPSEND_MAX]
            self._check_open()
            try:
                await self.transport.engine.send_data(
                    f"AT+CIPSEND={self.link},{len(chunk)}", chunk, timeout=const.CIPSEND_TIMEOUT
                )
            except AtCommandError as exc:
                if self.closed:
                    raise self._closed_error() from exc
                raise SocketError(
                    f"{self!r}: the module could not send {len(chunk)} bytes: {exc.final}"
                ) from exc
        if wait_ack:
            await self.wait_acked()

    async def _timed_send(self, data: bytes, seconds: int) -> None:
        """``AT+CIPATS=1,<s>``, then ``AT+CIPSEND=<n>`` and the data without a terminator (note 6.9.2)."""
        if len(data) > CIPSEND_MAX:
            raise PayloadError(
                f"a timed send carries at most {CIPSEND_MAX} bytes (one AT+CIPSEND), not {len(data)}"
            )
        for position, byte in enumerate(data):
            if byte in _TIMED_SEND_STOPS:
                raise PayloadError(
                    f"a timed send cannot carry 0x{byte:02X} ({_TIMED_SEND_STOPS[byte]}, which ends or"
                    f" cancels it on the module): found at byte {position}; send it without timed_send"
                )
        engine = self.transport.engine
        async with self.transport._timed_lock:  # one timer on the module: set it and use it together
            self._check_open()
            try:
                await engine.command(f"AT+CIPATS=1,{seconds}", timeout=SETTING_TIMEOUT)
                await engine.send_data(
                    f"AT+CIPSEND={self.link}", data, timeout=seconds + const.CIPSEND_TIMEOUT
                )
            except AtCommandError as exc:
                if self.closed:
                    raise self._closed_error() from exc
                raise SocketError(
                    f"{self!r}: the module could not send {len(data)} bytes timed ({seconds} s): {exc.final}"
                ) from exc

    async def ack_status(self) -> tuple[int, int, int]:
        """``AT+CIPACK=<n>``: bytes sent, acknowledged by the peer, and not acknowledged yet."""
        self._check_open()
        resp = await self.transport.engine.command(f"AT+CIPACK={self.link}", timeout=SETTING_TIMEOUT)
        for line in resp.lines:
            if line.startswith("+CIPACK"):
                fields = urc_fields(line)[-3:]
                if len(fields) == 3 and all(f.isdigit() for f in fields):
                    return int(fields[0]), int(fields[1]), int(fields[2])
        raise SocketError(f"{self!r}: no +CIPACK line in the answer {resp.lines!r}")

    async def wait_acked(self, timeout: float | None = None) -> None:  # noqa: ASYNC109 - public API
        """Poll ``AT+CIPACK`` until the peer acknowledged everything sent (TCP).

        :raises SocketError: data still unacknowledged after ``timeout`` (default :data:`ACK_TIMEOUT`)
        """
        limit = ACK_TIMEOUT if timeout is None else timeout
        try:
            async with asyncio.timeout(limit):
                while True:
                    _, _, nack = await self.ack_status()
                    if nack == 0:
                        return
                    await asyncio.sleep(ACK_POLL_INTERVAL)
        except TimeoutError:
            raise SocketError(f"{self!r}: data not acknowledged by the peer within {limit:g} s") from None

    async def _do_close(self) -> None:
        await self.transport._close_link(self.link, self.close_mode)

    def _on_consumed(self) -> None:
        if self._rx_pending:
            self.transport._schedule_read(self)


class CipServer(Server):
    """The module's TCP server (``AT+CIPSERVER=1,<port>``); clients take free links."""

    transport: CipTransport

    async def accept(self, timeout: float | None = None) -> Connection:  # noqa: ASYNC109 - public API
        """Return the next client (see :meth:`Server.accept`); its ``remote_port`` is read with AT+CIPSTATUS
        (``<n>, REMOTE IP: <ip>`` names only the address)."""
        conn = await super().accept(timeout)
        if isinstance(conn, CipConnection) and not conn.remote_port and not conn.closed:
            try:
                conn.remote_port = await self.transport._remote_port(conn.link) or 0
            except Sim7020Error as exc:
                _LOGGER.debug("AT+CIPSTATUS for the port of %r failed: %s", conn, exc)
        return conn

    async def _do_close(self) -> None:
        await self.transport._stop_server()


class CipTransport(CipLayerReclaim, Transport):
    """SIM800-compatible multi-link TCP/UDP: six links, binary safe (fixed-length CIPSEND), one TCP server.

    Options of :meth:`open_connection`:

    - ``quick_send``: True → ``AT+CIPQSEND=1`` (``DATA ACCEPT`` instead of waiting for ``SEND OK``;
      module-wide);
    - ``receive_mode``: ``"auto"`` (``+RECEIVE`` URCs, default) or ``"manual"`` (``AT+CIPRXGET=1``, read as
      the owner consumes: flow control; a peer's close is reported once what the module held was read);
      module-wide, changed only while no link is open;
    - ``close_mode``: ``"slow"`` (default: FIN, the peer gets all data) or ``"quick"`` (RST) for
      :meth:`Connection.close`;
    - ``buffer_limit``: bytes queued for the owner;
    - ``keepalive`` (TCP): True (on, with the timers the module has), False or ``(idle_s, interval_s, count)``
      → ``AT+CIPTKA=1`` /
      ``AT+CIPTKA=0`` / ``AT+CIPTKA=1,<idle 30-7200>,<interval 30-600>,<count 1-9>`` (the native transport's
      option, but module-wide on the CIP layer: set before the link opens, the last one asked for wins, and
      applied again after a reset or a wake);
    - ``timed_send``: seconds (1-100): every :meth:`CipConnection.send` of the connection is a timed send
      (``AT+CIPATS``, note 6.9.2) unless the send gives ``timed_send`` itself.
    """

    name = "cip"
    capabilities = Capabilities(
        max_connections=MAX_LINKS,
        server=True,
        binary_safe=True,
        acknowledged_send=True,
        peer_addressing=False,
        protocols=frozenset({"udp", "tcp"}),
        max_payload=MAX_TCP_SEND,
    )

    def __init__(self, modem: TransportHost) -> None:
        super().__init__(modem)
        self._links: dict[int, CipConnection] = {}
        self._server: CipServer | None = None
        self._server_kw: dict[str, Any] = {}
        self._urcs = UrcHandlers(
            [
                ("+RECEIVE", self._on_receive),
                *((f"{n},", self._on_link_urc) for n in range(MAX_LINKS)),
                ("+CIPRXGET: 1", self._on_rx_ready),
                ("+PDP: DEACT", self._on_pdp_deact),
                ("PDP DEACT", self._on_pdp_deact),
            ]
        )
        self._tasks = BackgroundTasks(_LOGGER, "background CIP work failed: %r")
        self._lock = asyncio.Lock()
        self._timed_lock = asyncio.Lock()
        self.quick_send = False
        self.receive_mode = "auto"
        #: the ``AT+CIPTKA=`` arguments last asked for (None: never asked, the module's default)
        self.keepalive: str | None = None

    @property
    def session(self) -> CipSession:
        return session_for(self.modem)

    @property
    def engine(self) -> AtEngine:
        """The modem's AT engine, with this transport's URC handlers installed."""
        return self._urcs.install(self.modem.engine)

    # ------------------------------------------------------------------ opening

    async def open_connection(self, protocol: str, ip: str, port: int, **options: Any) -> CipConnection:
        """Open a TCP or UDP link (see the class docstring for options).

        :raises SocketError: all six links are in use, the CIP layer is held by another transport, or the
            module could not connect (after the recovery ladder of note 6.13)
        """
        proto = self.check_protocol(protocol)
        addr = check_ip(ip)
        check_port(port)
        self.check_options(proto, options)
        close_mode = options.pop("close_mode", "slow")
        kw = {"buffer_limit": options.pop("buffer_limit")} if "buffer_limit" in options else {}
        keepalive = keepalive_args(options.pop("keepalive", None))
        timed = timed_send_seconds(options.pop("timed_send", None))
        async with self._lock:
            link = self._free_link()
            self.engine  # noqa: B018 - installs the URC handlers before anything can arrive
            await self.session.acquire(self.name, 1)
            try:
                await self._learn_retention()
                await self._apply_settings(**options)
                if keepalive is not None and keepalive != self.keepalive:
                    await self.engine.command(f"AT+CIPTKA={keepalive}", timeout=SETTING_TIMEOUT)
                    self.keepalive = keepalive
                conn = CipConnection(self, link, proto, str(addr), port, **kw)
                conn.close_mode = 1 if close_mode == "quick" else 0
                conn.timed_send = timed
                self._links[link] = conn
                try:
                    await self.session.start(
                        link,
                        proto,
                        str(addr),
                        port,
                        others_open=len(self._links) > 1 or self._server is not None,
                    )
                except BaseException:
                    self._links.pop(link, None)
                    conn._set_closed(SocketError(f"cannot connect to {addr}:{port}"))
                    raise
            except BaseException:
                self.session.release()
                raise
        self._register(conn)
        return conn

    def _free_link(self) -> int:
        for n in range(MAX_LINKS):
            if n not in self._links:
                return n
        ids = ", ".join(f"{n}: {c!r}" for n, c in sorted(self._links.items()))
        raise SocketError(f"all {MAX_LINKS} CIP links are in use ({ids}); close one first")

    @classmethod
    def check_options(cls, protocol: str, options: Mapping[str, Any], *, server: bool = False) -> None:
        """Check link (or, with ``server``, server) options without a modem (see
        :meth:`Transport.check_options <sim7020_core.connection.Transport.check_options>`)."""
        _check_names(cls.name, options, _SERVER_OPTIONS if server else _OPTIONS)
        _check_receive_mode(options.get("receive_mode"))
        if server:
            return
        close_mode = options.get("close_mode", "slow")
        if close_mode not in ("quick", "slow"):
            raise ValueError(f"close_mode must be 'quick' or 'slow', not {close_mode!r}")
        keepalive = keepalive_args(options.get("keepalive"))
        if str(protocol).lower() == "udp" and keepalive is not None:
            raise UnsupportedError("keepalive is for TCP connections")
        timed_send_seconds(options.get("timed_send"))

    async def _apply_settings(self, quick_send: bool | None = None, receive_mode: str | None = None) -> None:
        engine = self.engine
        _check_receive_mode(receive_mode)
        if quick_send is not None and bool(quick_send) != self.quick_send:
            await engine.command(f"AT+CIPQSEND={int(bool(quick_send))}", timeout=SETTING_TIMEOUT)
            self.quick_send = bool(quick_send)
        if receive_mode is not None and receive_mode != self.receive_mode:
            if self._links or self._server is not None:
                raise SocketError(
                    f"receive_mode {receive_mode!r} can only change while no CIP link is open "
                    f"(links in use: {sorted(self._links)})"
                )
            await engine.command(
                f"AT+CIPRXGET={1 if receive_mode == 'manual' else 0}", timeout=SETTING_TIMEOUT
            )
            self.receive_mode = receive_mode

    async def listen(self, port: int, **options: Any) -> CipServer:
        """Start the module's TCP server on ``port`` (``AT+CIPSERVER=1,<port>`` → ``SERVER OK``).

        :raises SocketError: a server is already running, or the module refused
        """
        check_port(port)
        self.check_options("tcp", options, server=True)
        backlog = options.pop("backlog", None)
        buffer_limit = options.pop("buffer_limit", None)
        async with self._lock:
            if self._server is not None:
                raise SocketError("the module already runs its one CIP TCP server (close it first)")
            self.engine  # noqa: B018
            await self.session.acquire(self.name, 1)
            try:
                await self._learn_retention()
                await self._apply_settings(**options)
                await self.engine.command(
                    f"AT+CIPSERVER=1,{port}", after_ok=True, final=("SERVER OK",), timeout=SETTING_TIMEOUT
                )
            except BaseException as exc:
                self.session.release()
                if isinstance(exc, AtCommandError):
                    raise SocketError(f"cannot listen on TCP port {port}: {exc.final}") from exc
                raise
            self._server = CipServer(self, port, **({"backlog": backlog} if backlog else {}))
            self._server_kw = {"buffer_limit": buffer_limit} if buffer_limit else {}
        self.servers.append(self._server)
        return self._server

    async def _remote_port(self, link: int) -> int | None:
        """The peer port of ``link`` from the ``C: <n>,<bearer>,"TCP","<ip>","<port>","<state>"`` lines."""
        resp = await self.engine.command_with_urcs(
            "AT+CIPSTATUS",
            "C:",
            count=MAX_LINKS,
            partial=True,
            timeout=SETTING_TIMEOUT,
            urc_timeout=CIPSTATUS_TIMEOUT,
        )
        for line in resp.urcs:
            fields = urc_fields(line)
            if len(fields) >= 5 and fields[0] == str(link) and fields[4].isdigit():
                return int(fields[4])
        return None

    # ------------------------------------------------------------------ closing

    async def _close_link(self, link: int, mode: int) -> None:
        conn = self._links.pop(link, None)
        if conn is not None:
            self.session.release()
        try:
            await self.engine.command(f"AT+CIPCLOSE={link},{mode}", timeout=const.CIPCLOSE_TIMEOUT)
        except AtCommandError:
            _LOGGER.debug("AT+CIPCLOSE=%d: the link was already closed", link)

    async def _stop_server(self) -> None:
        if self._server is None:
            return
        self._server = None
        self.session.release()
        try:
            await self.engine.command(
                "AT+CIPSERVER=0", after_ok=True, final=("SERVER CLOSE",), timeout=SETTING_TIMEOUT
            )
        except AtCommandError:
            _LOGGER.debug("AT+CIPSERVER=0: no server was running")

    def _drop(self, link: int, error: SocketError) -> None:
        conn = self._links.pop(link, None)
        if conn is not None:
            self.session.release()
            conn._set_closed(error)

    def _forget(self, connection: Connection) -> None:
        super()._forget(connection)
        if isinstance(connection, CipConnection) and self._links.get(connection.link) is connection:
            del self._links[connection.link]
            self.session.release()

    def _forget_server(self, server: Server) -> None:
        super()._forget_server(server)
        if server is self._server:
            self._server = None
            self.session.release()

    async def on_modem_reset(self) -> None:
        """The module rebooted: every link, the server and the bearer are gone; the module-wide modes asked
        for (quick send, manual receive) are applied again by the modem (:meth:`session_settings`)."""
        for link in list(self._links):
            self._drop(link, ConnectionClosedError("the module was reset"))
        if self._server is not None:
            server, self._server = self._server, None
            server._set_closed(ConnectionClosedError("the module was reset"))
        self.session.reset()

    def session_settings(self) -> list[SessionSetting]:
        """``AT+CIPTKA=1[,…]`` while a keepalive was asked for; ``AT+CIPQSEND=1`` while quick send was;
        ``AT+CIPRXGET=1`` while manual receive was and no link is open (the module takes it only then; links
        kept across PSM keep the mode). A mode the module refuses falls back to its default and is asked for
        again by the next open."""
        items: list[SessionSetting] = []
        if self.keepalive is not None and self.keepalive != "0":
            items.append(
                SessionSetting(
                    f"AT+CIPTKA={self.keepalive}", timeout=SETTING_TIMEOUT, done=self._keepalive_done
                )
            )
        if self.quick_send:
            items.append(SessionSetting("AT+CIPQSEND=1", timeout=SETTING_TIMEOUT, done=self._quick_send_done))
        if self.receive_mode == "manual" and not self._links and self._server is None:
            items.append(SessionSetting("AT+CIPRXGET=1", timeout=SETTING_TIMEOUT, done=self._manual_done))
        return items

    def _keepalive_done(self, taken: str | None) -> None:
        if taken is None:
            self.keepalive = None

    def _quick_send_done(self, taken: str | None) -> None:
        if taken is None:
            self.quick_send = False

    def _manual_done(self, taken: str | None) -> None:
        if taken is None:
            self.receive_mode = "auto"

    async def on_psm(self, entered: bool) -> None:
        """Without RETENTION the CIP links do not survive PSM (the layer resets as after a reboot).

        The module is asleep by now: the modem's recorded :attr:`~sim7020_core.modem.Modem.retention`
        decides (learnt when the links were opened); unknown counts as off.
        """
        if entered and not self.modem.retention:
            await self.on_modem_reset()

    async def _learn_retention(self) -> None:
        """Make sure the modem knows ``AT+RETENTION`` before a link exists that PSM could take away."""
        if self.modem.retention is None:
            await self.modem.read_retention()

    async def close(self) -> None:
        await super().close()
        await self._tasks.cancel_all()
        self._urcs.remove()

    # --------------------------------------------------------------------- URCs

    def _on_receive(self, urc: Urc) -> None:
        fields = urc_fields(urc.line.replace("+RECEIVE,", "+RECEIVE:", 1))
        if not fields or not fields[0].isdigit() or urc.payload is None:
            _LOGGER.debug("ignoring malformed %r", urc.line)
            return
        conn = self._links.get(int(fields[0]))
        if conn is not None:
            conn._feed(urc.payload)
        else:
            _LOGGER.debug("ignoring %r: link %s is not ours", urc.line, fields[0])

    def _on_link_urc(self, urc: Urc) -> None:
        link, text = split_link(urc.line)
        if link is None:
            return
        upper = text.upper()
        if upper == "CLOSED":
            error = ConnectionClosedError(f"link {link} closed by the peer")
            conn = self._links.get(link)
            if conn is not None and (conn._rx_pending or conn._reading):
                # manual receive: what the module still holds is read first (at the owner's pace), then
                # the close is reported, so nothing that arrived before it is lost
                conn._peer_closed = error
                self._schedule_read(conn)
            else:
                self._drop(link, error)
        elif upper.startswith("REMOTE IP:"):
            self._accept(link, text.partition(":")[2].strip())
        elif upper in ("SEND FAIL", "CONNECT FAIL"):
            _LOGGER.debug("late %r", urc.line)

    def _accept(self, link: int, ip: str) -> None:
        server = self._server
        conn = CipConnection(self, link, "tcp", ip, 0, **self._server_kw)
        if server is None or server.closed:
            _LOGGER.debug("client %s on link %d without a server: closing it", ip, link)
            self._tasks.spawn(self._close_link(link, 1))
            return
        self._links[link] = conn
        self.session.users += 1
        self._register(conn)
        if not server._accepted(conn):
            self._tasks.spawn(self._close_link(link, 1))
            conn._set_closed(ConnectionClosedError("the server's accept queue is full"))

    def _on_pdp_deact(self, urc: Urc) -> None:
        for link in list(self._links):
            self._drop(link, SocketError(f"the PDP context was deactivated ({urc.line})"))
        if self._server is not None:
            server, self._server = self._server, None
            self.session.release()
            server._set_closed(SocketError(f"the PDP context was deactivated ({urc.line})"))
        self.session.bearer_up = False

    def _on_rx_ready(self, urc: Urc) -> None:
        fields = urc_fields(urc.line)
        if len(fields) < 2 or not fields[1].isdigit():
            return
        conn = self._links.get(int(fields[1]))
        if conn is not None:
            conn._rx_pending = True
            self._schedule_read(conn)

    # ---------------------------------------------------------------- manual rx

    def _schedule_read(self, conn: CipConnection) -> None:
        if conn._reading or conn.closed:
            return
        if conn._peer_closed is not None and not conn._rx_pending:
            if self._links.get(conn.link) is conn:
                self._drop(conn.link, conn._peer_closed)
            return
        conn._reading = True
        self._tasks.spawn(self._read_all(conn))

    async def _read_all(self, conn: CipConnection) -> None:
        """Read what the module holds for ``conn`` while its buffer has room (flow control)."""
        try:
            while conn._rx_pending and not conn.closed:
                room = min(RXGET_MAX, conn.buffer_space())
                if room <= 0:
                    return  # resumed by _on_consumed
                resp = await self.engine.command(
                    f"AT+CIPRXGET=2,{conn.link},{room}", timeout=SETTING_TIMEOUT, priority=const.Priority.LOW
                )
                left = 0
                for line in resp.lines:
                    if line.startswith("+CIPRXGET: 2"):
                        fields = urc_fields(line)
                        left = int(fields[-1]) if fields and fields[-1].isdigit() else 0
                for payload in resp.payloads:
                    conn._feed(payload)
                conn._rx_pending = left > 0
        except Sim7020Error as exc:
            _LOGGER.debug("manual read on %r failed: %s", conn, exc)
            conn._rx_pending = False
        finally:
            conn._reading = False
            if conn._peer_closed is not None and not conn._rx_pending and self._links.get(conn.link) is conn:
                self._drop(conn.link, conn._peer_closed)


@hookimpl
def sim7020_register_transports() -> list[type[Transport]]:
    """The cip transport."""
    return [CipTransport]
