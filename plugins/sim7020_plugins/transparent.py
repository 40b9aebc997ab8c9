"""The ``transparent`` transport: one TCP or UDP link in data mode (``AT+CIPMODE=1``, ``AT+CIPCHAN``;
application note 6.14).

Once the link is up the serial line *is* the connection: every byte written goes to the peer and every byte
from the peer comes out of the serial port, unparsed (the AT engine is put in data mode). Only single-link
mode supports it (``AT+CIPMUX=0``; the module refuses CIPMODE=1 with CIPMUX=1).

- :meth:`TransparentConnection.escape` leaves data mode with ``+++`` and its guard times (1 s of silence
  before and after, as the note says), so AT commands work again; :meth:`TransparentConnection.resume` goes
  back with ``ATO`` (data that arrived meanwhile is delivered after ``CONNECT``). Sending while escaped
  resumes first. Data the peer sends during the second guard time (after ``+++``, before the module's ``OK``)
  reaches the engine as AT text and is lost: escape while the peer is quiet.
- While in data mode every other AT command fails at once with a clear error (nothing leaks into the stream).
- When the peer closes (or the PDP context drops) the module prints ``CLOSED`` (``+PDP: DEACT``) and returns
  to command mode: the transport recognises ``\\r\\nCLOSED\\r\\n`` where it ends what arrived or AT output
  follows it (holding back a possible partial marker for :data:`MARKER_HOLD` seconds), strips it, and reports
  the connection closed. A peer that sends exactly that text as data at the end of a burst is
  indistinguishable on the wire; this is the module's design. While escaped, the same lines arrive as URCs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sim7020_core import const
from sim7020_core.connection import Capabilities, Connection, Transport
from sim7020_core.exceptions import AtCommandError, ConnectionClosedError, SocketError, UnsupportedError
from sim7020_core.hookspecs import hookimpl

from ._cipcore import SingleLinkTransport
from ._common import check_ip, check_port
from ._common import check_options as _check_names

if TYPE_CHECKING:
    from sim7020_core.at.engine import Urc
    from sim7020_core.connection import TransportHost

_LOGGER = logging.getLogger(__name__)

#: What the module prints when it drops back to command mode by itself.
CLOSE_MARKERS = (b"\r\nCLOSED\r\n", b"\r\n+PDP: DEACT\r\n", b"\r\nPDP DEACT\r\n")
#: How long bytes that may start a close marker are held back before they are delivered as data.
MARKER_HOLD = 0.05
#: ``AT+CIPCHAN`` / ``ATO`` answer ``CONNECT``.
CONNECT_TIMEOUT = 10.0

_OPTIONS = frozenset({"guard_time", "buffer_limit"})


def find_close_marker(buf: bytes) -> tuple[int, int] | None:
    """Where the module's own ``CLOSED`` / ``+PDP: DEACT`` line sits in data-mode bytes: ``(start, end)``.

    A marker counts when it ends ``buf`` or AT output (a CRLF, or a CR at the very end) follows it; the first
    such marker wins.
    """
    best: tuple[int, int] | None = None
    for marker in CLOSE_MARKERS:
        start = buf.find(marker)
        while start >= 0:
            end = start + len(marker)
            if b"\r\n".startswith(buf[end : end + 2]):  # nothing, a CR (more to come) or a CRLF follows
                if best is None or start < best[0]:
                    best = (start, end)
                break
            start = buf.find(marker, start + 1)
    return best


class TransparentConnection(Connection):
    """The one transparent-mode link; the serial line carries its bytes both ways."""

    transport: TransparentTransport

    def __init__(
        self, transport: TransparentTransport, protocol: str, host: str, port: int, **kw: Any
    ) -> None:
        super().__init__(transport, protocol, host, port, **kw)
        self.guard_time = const.DATA_MODE_GUARD_TIME
        self.in_data_mode = False
        self._held = b""
        self._flush: asyncio.TimerHandle | None = None

    async def _do_send(self, data: bytes, **options: Any) -> None:
        _check_names(self.transport_name, options, ())
        if not self.in_data_mode:
            await self._resume()
        await self.transport.modem.engine.write_raw(data)

    async def escape(self) -> None:
        """Leave data mode (``+++`` with guard times) so AT commands can run; the link stays up.

        Data the peer sends from now on waits in the module until :meth:`resume` (or the next send).

        :raises ConnectionClosedError: the connection is closed
        :raises AtTimeoutError: the module did not answer ``OK`` to ``+++``
        """
        async with self._send_lock:  # no data may be written during the guard times
            self._check_open()
            await self._escape()

    async def resume(self) -> None:
        """Go back to data mode (``ATO`` → ``CONNECT``); data that arrived meanwhile is delivered.

        :raises ConnectionClosedError: the connection is closed (or the module refused ATO: the link is gone)
        """
        async with self._send_lock:
            self._check_open()
            await self._resume()

    async def _escape(self) -> None:
        if not self.in_data_mode:
            return
        self._deliver_held()
        try:
            await self.transport.modem.engine.escape_data_mode(guard_time=self.guard_time)
        finally:
            self.in_data_mode = False  # the engine parses AT answers again either way

    async def _resume(self) -> None:
        if self.in_data_mode:
            return
        try:
            await self.transport.modem.engine.command_to_data_mode(
                "ATO", self._on_data, timeout=CONNECT_TIMEOUT
            )
        except AtCommandError as exc:
            self._link_gone(SocketError(f"{self!r}: the module could not resume data mode: {exc.final}"))
            raise self._closed_error() from exc
        self.in_data_mode = True

    async def _do_close(self) -> None:
        engine = self.transport.modem.engine
        try:
            await self._escape()
            await engine.command("AT+CIPCLOSE", timeout=const.CIPCLOSE_TIMEOUT)
        except AtCommandError:
            _LOGGER.debug("AT+CIPCLOSE: the link was already closed")
        finally:
            self._leave()

    # ------------------------------------------------------------ data path

    def _on_data(self, data: bytes) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        buf = self._held + data
        self._held = b""
        found = find_close_marker(buf)
        if found is not None:
            start, end = found
            self._feed(buf[:start])
            text = buf[start:end].strip().decode()
            error = (
                ConnectionClosedError(f"{self!r}: closed by the peer ({text})")
                if text == "CLOSED"
                else SocketError(f"{self!r}: the PDP context was deactivated ({text})")
            )
            # the engine parses AT output again from here on, starting with what came in the same read
            # as the marker (``+PDP: DEACT`` after ``CLOSED``)
            self._link_gone(error, buf[end:])
            return
        hold = 0
        for marker in CLOSE_MARKERS:
            for size in range(min(len(marker) - 1, len(buf)), 0, -1):
                if buf.endswith(marker[:size]):
                    hold = max(hold, size)
                    break
        if hold:
            self._held = buf[-hold:]
            buf = buf[:-hold]
            self._flush = asyncio.get_running_loop().call_later(MARKER_HOLD, self._deliver_held)
        if buf:
            self._feed(buf)

    def _deliver_held(self) -> None:
        self._flush = None
        held, self._held = self._held, b""
        if held:
            self._feed(held)

    def _link_gone(self, error: SocketError, rest: bytes = b"") -> None:
        """The module dropped back to command mode by itself (peer close, PDP deactivated); ``rest`` is
        module output that followed the marker."""
        self._leave(rest)
        self._set_closed(error)

    def _leave(self, rest: bytes = b"") -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        if self.in_data_mode:
            self.in_data_mode = False
            self.transport.modem.engine.leave_data_mode(rest)


class TransparentTransport(SingleLinkTransport[TransparentConnection]):
    """One TCP or UDP link in transparent (data) mode; binary safe, no server, no per-send results.

    Options of :meth:`open_connection`: ``guard_time`` (seconds of silence around ``+++``, default 1.0 as the
    module requires) and ``buffer_limit``.
    """

    name = "transparent"
    capabilities = Capabilities(
        max_connections=1,
        server=False,
        binary_safe=True,
        acknowledged_send=False,
        peer_addressing=False,
        protocols=frozenset({"udp", "tcp"}),
        max_payload=None,
    )

    def __init__(self, modem: TransportHost) -> None:
        # ``CLOSED`` / ``+PDP: DEACT`` while escaped (command mode) arrive as URCs
        super().__init__(
            modem, [(prefix, self._on_closed_urc) for prefix in ("CLOSED", "+PDP: DEACT", "PDP DEACT")]
        )

    def _on_closed_urc(self, urc: Urc) -> None:
        conn = self._conn
        if conn is None or conn.closed or conn.in_data_mode or self.session.holder != self.name:
            return
        conn._link_gone(ConnectionClosedError(f"{conn!r}: closed while in command mode ({urc.line})"))

    @classmethod
    def check_options(cls, protocol: str, options: Mapping[str, Any], *, server: bool = False) -> None:
        """Check link options without a modem (see :meth:`Transport.check_options
        <sim7020_core.connection.Transport.check_options>`)."""
        if server:
            raise UnsupportedError(f"transport {cls.name!r} has no server mode")
        _check_names(cls.name, options, _OPTIONS)
        guard = options.get("guard_time", const.DATA_MODE_GUARD_TIME)
        if isinstance(guard, bool) or not isinstance(guard, int | float) or guard <= 0:
            raise ValueError(f"guard_time must be a positive number of seconds, not {guard!r}")

    async def open_connection(
        self, protocol: str, ip: str, port: int, **options: Any
    ) -> TransparentConnection:
        """Open the link and enter data mode (``CIPMUX=0``, ``CIPMODE=1``, ``CIPSTART``, ``CIPCHAN``).

        :raises SocketError: a transparent link is already open, the CIP layer is held by another transport,
            or the module could not connect
        """
        proto = self.check_protocol(protocol)
        addr = check_ip(ip)
        check_port(port)
        self.check_options(proto, options)
        guard = float(options.pop("guard_time", const.DATA_MODE_GUARD_TIME))
        kw = {"buffer_limit": options.pop("buffer_limit")} if "buffer_limit" in options else {}
        conn = TransparentConnection(self, proto, str(addr), port, **kw)
        conn.guard_time = guard
        async with self._opening(
            conn,
            busy="transparent mode carries one link; close the open one first",
            failure=f"cannot enter transparent mode to {addr}:{port}",
            cipmode=1,
        ) as engine:
            await self.session.start(None, proto, str(addr), port, others_open=False)
            await engine.command_to_data_mode("AT+CIPCHAN", conn._on_data, timeout=CONNECT_TIMEOUT)
            conn.in_data_mode = True
        return conn

    async def on_modem_reset(self) -> None:
        """The module rebooted: it left data mode, the link and the bearer are gone."""
        conn = self._conn
        if conn is not None:
            conn._leave()
        await super().on_modem_reset()


@hookimpl
def sim7020_register_transports() -> list[type[Transport]]:
    """The transparent transport."""
    return [TransparentTransport]
