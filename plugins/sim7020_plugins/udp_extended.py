"""The ``udp_extended`` transport: one UDP link that talks to any peer (UDP extended mode, note 6.4).

Wire formats (application note 6.4; the SIM800-compatible layer of :mod:`._cipcore` in single-link mode):

- open: ``AT+CIPMUX=0`` (and the bearer, see :mod:`._cipcore`), ``AT+CLPORT="UDP",<local_port>`` when the
  ``local_port`` option is given, ``AT+CIPSRIP=1`` (show the sender), ``AT+CIPHEAD=1`` (length header),
  ``AT+CIPUDPMODE=1`` (extended mode), then ``AT+CIPSTART="UDP","<ip>",<port>`` → ``OK``, ``CONNECT OK``;
- receive: every datagram, from whichever peer, arrives as ``RECV FROM: <ip>:<port>`` then
  ``+IPD,<len>:<data>``; :meth:`Connection.receive_from` returns ``(data, (ip, port))``;
- send: the fixed-length ``AT+CIPSEND=<len>`` (binary safe, at most 1460 bytes) → ``SEND OK``
  (``DATA ACCEPT: <len>`` when quick send is on); :meth:`Connection.send` goes to the connected peer,
  :meth:`Connection.send_to` to any peer: ``AT+CIPUDPMODE=2,"<ip>",<port>`` retargets CIPSEND first, only
  when the target changes;
- close: ``AT+CIPCLOSE`` → ``CLOSE OK``. ``CLOSED`` or ``+PDP: DEACT`` (the context dropped) ends the
  connection.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from sim7020_core import const
from sim7020_core.connection import Address, Capabilities, Connection, Transport
from sim7020_core.exceptions import AtCommandError, ConnectionClosedError, SocketError, UnsupportedError
from sim7020_core.hookspecs import hookimpl

from ._cipcore import CIPSEND_MAX, SETTING_TIMEOUT, SingleLinkTransport
from ._common import check_ip, check_port
from ._common import check_options as _check_names

if TYPE_CHECKING:
    from sim7020_core.at.engine import Urc
    from sim7020_core.connection import TransportHost

_LOGGER = logging.getLogger(__name__)

_OPTIONS = frozenset({"local_port", "buffer_limit"})


def parse_sender(line: str) -> Address | None:
    """``RECV FROM: 10.78.103.220:5678`` → ``("10.78.103.220", 5678)``.

    Also accepts the note's ``RECVFROM:`` and a blank after the address's colon; None when malformed.
    """
    _, sep, rest = line.partition(":")
    host, sep2, port = rest.strip().rpartition(":")
    host, port = host.strip(), port.strip()
    if not sep or not sep2 or not host or not port.isdigit():
        return None
    return host, int(port)


class UdpExtendedConnection(Connection):
    """The one UDP link in extended mode: datagrams from any peer, :meth:`send_to` any peer."""

    transport: UdpExtendedTransport

    def __init__(self, transport: UdpExtendedTransport, host: str, port: int, **kw: Any) -> None:
        super().__init__(transport, "udp", host, port, **kw)
        self.local_port: int | None = None
        self._target: Address = (host, port)  # where AT+CIPSEND goes now

    async def _do_send(self, data: bytes, **options: Any) -> None:
        _check_names(self.transport_name, options, ())
        await self._send(data, (self.remote_host, self.remote_port))

    async def _do_send_to(self, data: bytes, host: str, port: int, **options: Any) -> None:
        _check_names(self.transport_name, options, ())
        addr = check_ip(host)
        check_port(port)
        await self._send(data, (str(addr), port))

    async def _send(self, data: bytes, target: Address) -> None:
        engine = self.transport.modem.engine
        try:
            if target != self._target:
                await engine.command(f'AT+CIPUDPMODE=2,"{target[0]}",{target[1]}', timeout=SETTING_TIMEOUT)
                self._target = target
            await engine.send_data(f"AT+CIPSEND={len(data)}", data, timeout=const.CIPSEND_TIMEOUT)
        except AtCommandError as exc:
            if self.closed:
                raise self._closed_error() from exc
            where = f"{target[0]}:{target[1]}"
            raise SocketError(
                f"{self!r}: the module could not send {len(data)} bytes to {where}: {exc.final}"
            ) from exc

    async def _do_close(self) -> None:
        try:
            await self.transport.modem.engine.command("AT+CIPCLOSE", timeout=const.CIPCLOSE_TIMEOUT)
        except AtCommandError:
            _LOGGER.debug("AT+CIPCLOSE: the link was already closed")


class UdpExtendedTransport(SingleLinkTransport[UdpExtendedConnection]):
    """One UDP link in extended mode (``AT+CIPUDPMODE=1``): talks to and hears from any peer; binary safe.

    Options of :meth:`open_connection`: ``local_port`` (``AT+CLPORT="UDP",<port>``, the module's own port, so
    peers can reach it first) and ``buffer_limit``.
    """

    name = "udp_extended"
    capabilities = Capabilities(
        max_connections=1,
        server=False,
        binary_safe=True,
        acknowledged_send=False,
        peer_addressing=True,
        protocols=frozenset({"udp"}),
        max_payload=CIPSEND_MAX,
    )

    def __init__(self, modem: TransportHost) -> None:
        super().__init__(
            modem,
            [
                ("RECV FROM", self._on_sender),
                ("RECVFROM", self._on_sender),
                ("+IPD", self._on_ipd),
                ("CLOSED", self._on_closed),
                ("+PDP: DEACT", self._on_closed),
                ("PDP DEACT", self._on_closed),
            ],
        )
        self._sender: Address | None = None

    @classmethod
    def check_options(cls, protocol: str, options: Mapping[str, Any], *, server: bool = False) -> None:
        """Check link options without a modem (see :meth:`Transport.check_options
        <sim7020_core.connection.Transport.check_options>`)."""
        if server:
            raise UnsupportedError(f"transport {cls.name!r} has no server mode")
        _check_names(cls.name, options, _OPTIONS)
        local_port = options.get("local_port")
        if local_port is not None:
            check_port(local_port, "local_port")

    async def open_connection(
        self, protocol: str, ip: str, port: int, **options: Any
    ) -> UdpExtendedConnection:
        """Open the UDP link in extended mode (see the module docstring for the commands).

        :raises SocketError: the link is already open, the CIP layer is held by another transport, or the
            module refused
        """
        self.check_protocol(protocol)
        addr = check_ip(ip)
        check_port(port)
        self.check_options(protocol, options)
        local_port = options.get("local_port")
        kw = {"buffer_limit": options["buffer_limit"]} if "buffer_limit" in options else {}
        conn = UdpExtendedConnection(self, str(addr), port, **kw)
        async with self._opening(
            conn,
            busy="udp_extended carries one UDP link; close the open one first (or use send_to)",
            failure=f"cannot open an extended-mode UDP link to {addr}:{port}",
        ) as engine:
            if local_port is not None:
                await engine.command(f'AT+CLPORT="UDP",{local_port}', timeout=SETTING_TIMEOUT)
            for setting in ("AT+CIPSRIP=1", "AT+CIPHEAD=1", "AT+CIPUDPMODE=1"):
                await engine.command(setting, timeout=SETTING_TIMEOUT)
            self._sender = None
            await self.session.start(None, "udp", str(addr), port, others_open=False)
            conn.local_port = local_port
        return conn

    # ------------------------------------------------------------------ URCs

    def _on_sender(self, urc: Urc) -> None:
        self._sender = parse_sender(urc.line)
        if self._sender is None:
            _LOGGER.debug("ignoring malformed %r", urc.line)

    def _on_ipd(self, urc: Urc) -> None:
        sender, self._sender = self._sender, None
        conn = self._conn
        if conn is None or urc.payload is None:
            return
        conn._feed(urc.payload, sender)

    def _on_closed(self, urc: Urc) -> None:
        conn = self._conn
        if conn is None or conn.closed or self.session.holder != self.name:
            return
        if "DEACT" in urc.line.upper():
            conn._set_closed(SocketError(f"the PDP context was deactivated ({urc.line})"))
            self.session.bearer_up = False
        else:
            conn._set_closed(ConnectionClosedError(f"{conn!r}: the module closed the link ({urc.line})"))


@hookimpl
def sim7020_register_transports() -> list[type[Transport]]:
    """The udp_extended transport."""
    return [UdpExtendedTransport]
