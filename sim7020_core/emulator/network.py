"""The emulated module's network: real loopback sockets behind the note's addresses.

An IP in 127.0.0.0/8 is reached directly. Any other IP is reached only through a route
(``route("116.247.119.165", 5245, to=("127.0.0.1", 40000))`` or with ``port=None`` for every port of that IP);
without one it is unreachable (TCP connect fails, ping times out, UDP datagrams are lost). Data received
from a routed peer is reported with the routed (note) address, so transcripts match the note.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import ipaddress
import logging
import socket
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence

from .base import Network, TcpLink, TcpListener, UdpLink

_LOGGER = logging.getLogger(__name__)

#: Seconds to wait for a real loopback TCP connect.
CONNECT_TIMEOUT = 5.0
#: Seconds to wait for the peer to take queued data (flow control on loopback).
DRAIN_TIMEOUT = 5.0

Address = tuple[str, int]
RouteTarget = tuple[str, int | None]


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def is_ip(text: str) -> bool:
    """True when ``text`` is an IPv4 or IPv6 literal."""
    return _ip(text) is not None


def is_ipv4(text: str) -> bool:
    """True when ``text`` is a dotted IPv4 literal."""
    return isinstance(_ip(text), ipaddress.IPv4Address)


def is_loopback(ip: str) -> bool:
    """True for 127.0.0.0/8 (and ::1)."""
    addr = _ip(ip)
    return addr is not None and addr.is_loopback


def parse_endpoint(text: str) -> tuple[str, int | None]:
    """``"1.2.3.4"`` → ``("1.2.3.4", None)``; ``"1.2.3.4:80"`` → ``("1.2.3.4", 80)``."""
    host, sep, port = text.strip().rpartition(":")
    if not sep:
        return text.strip(), None
    if not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"bad port in {text!r}")
    return host, int(port)


class _TcpProtocol(asyncio.Protocol):
    def __init__(self, link: LoopbackTcpLink) -> None:
        self.link = link

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.link._transport = transport
        if self.link._accept_cb is not None:
            cb, self.link._accept_cb = self.link._accept_cb, None
            try:
                cb(self.link)
            except Exception:
                _LOGGER.exception("emulator: accept callback failed")
                transport.abort()

    def data_received(self, data: bytes) -> None:
        self.link._data(data)

    def eof_received(self) -> bool:
        return False  # close our side too: the module reports the peer close

    def pause_writing(self) -> None:
        self.link._can_write.clear()

    def resume_writing(self) -> None:
        self.link._can_write.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.link._lost(exc)


class LoopbackTcpLink(TcpLink):
    """A real TCP connection to a loopback peer, reported with its note address."""

    def __init__(
        self,
        peer: Address,
        on_data: Callable[[bytes], None] | None = None,
        on_close: Callable[[BaseException | None], None] | None = None,
        accept_cb: Callable[[TcpLink], None] | None = None,
    ) -> None:
        self.peer = peer
        self.on_data = on_data
        self.on_close = on_close
        self._accept_cb = accept_cb
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self._local_close = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._pending: list[bytes] = []

    def _data(self, data: bytes) -> None:
        if self.on_data is None:
            self._pending.append(data)
            return
        if self._pending:
            pending, self._pending = self._pending, []
            for chunk in pending:
                self.on_data(chunk)
        self.on_data(data)

    def _lost(self, exc: BaseException | None) -> None:
        if self._closed:
            return
        self._closed = True
        self._can_write.set()
        if not self._local_close and self.on_close is not None:
            try:
                self.on_close(exc)
            except Exception:
                _LOGGER.exception("emulator: close callback failed")

    def send(self, data: bytes) -> None:
        """Queue ``data`` to the peer (dropped silently when already closed)."""
        if self._transport is None or self._closed or self._transport.is_closing():
            return
        self._transport.write(data)

    async def drain(self) -> None:
        """Wait until the kernel took the queued data (bounded by ``DRAIN_TIMEOUT``)."""
        async with asyncio.timeout(DRAIN_TIMEOUT):
            await self._can_write.wait()

    def close(self, *, abort: bool = False) -> None:
        """Close the connection; the owner is not told (it asked)."""
        self._local_close = True
        if self._closed:
            return
        self._closed = True
        if self._transport is not None:
            if abort:
                sock = self._transport.get_extra_info("socket")
                if sock is not None:  # make the kernel send RST rather than FIN
                    with contextlib.suppress(OSError):
                        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self._transport.abort()
            else:
                self._transport.close()

    @property
    def closed(self) -> bool:
        """True once closed by either side."""
        return self._closed


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, link: LoopbackUdpLink) -> None:
        self.link = link

    def datagram_received(self, data: bytes, addr: tuple[str | object, ...]) -> None:
        host, port = str(addr[0]), int(str(addr[1]))
        cb = self.link.on_datagram
        if cb is not None:
            try:
                cb(data, self.link._net.map_in(host, port))
            except Exception:
                _LOGGER.exception("emulator: datagram callback failed")

    def error_received(self, exc: Exception) -> None:
        _LOGGER.debug("emulator: udp error %s", exc)


class LoopbackUdpLink(UdpLink):
    """A UDP endpoint on 127.0.0.1."""

    def __init__(self, net: LoopbackNetwork, on_datagram: Callable[[bytes, Address], None]) -> None:
        self._net = net
        self.on_datagram = on_datagram
        self.local_port = 0
        self.modem_port = 0
        self._transport: asyncio.DatagramTransport | None = None

    def sendto(self, data: bytes, addr: Address) -> bool:
        """Send one datagram to the note address; False when unroutable or the radio is not up (the
        datagram is lost)."""
        real = self._net.map_out(addr[0], addr[1])
        if real is None or self._transport is None or self._transport.is_closing():
            return False
        if not self._net.radio_up:
            _LOGGER.debug("emulator: radio not up, datagram to %s:%s lost", *addr)
            return False
        self._transport.sendto(data, real)
        return True

    def close(self) -> None:
        """Close the endpoint."""
        if self._transport is not None:
            self._transport.close()
        self._net._udp_ports.pop(self.modem_port, None)


class LoopbackListener(TcpListener):
    """A real listening socket on 127.0.0.1 standing in for the module's server port."""

    def __init__(self, net: LoopbackNetwork, modem_port: int, server: asyncio.Server) -> None:
        self._net = net
        self._server = server
        self.modem_port = modem_port
        sock = server.sockets[0].getsockname()
        self.address = (str(sock[0]), int(sock[1]))

    def close(self) -> None:
        """Stop listening (accepted connections stay open)."""
        self._server.close()
        if self._net._listeners.get(self.modem_port) is self:
            del self._net._listeners[self.modem_port]


class LoopbackNetwork(Network):
    """Hosts table + routes + real loopback sockets."""

    def __init__(
        self,
        hosts: Mapping[str, str | Sequence[str]] | None = None,
        routes: Mapping[str, str] | None = None,
    ) -> None:
        self.hosts: dict[str, list[str]] = {}
        for name, ips in (hosts or {}).items():
            self.add_host(name, ips)
        self._routes: dict[tuple[str, int | None], RouteTarget] = {}
        self._recent: dict[tuple[str, int], str] = {}  # real (host, port) -> note ip, for reverse mapping
        self._listeners: dict[int, LoopbackListener] = {}
        self._udp_ports: dict[int, LoopbackUdpLink] = {}
        #: False while the module is awake but not registered again after PSM: datagrams sent are lost
        self.radio_up = True
        for src, dst in (routes or {}).items():
            ip, port = parse_endpoint(src)
            host, tport = parse_endpoint(dst)
            self.route(ip, port, to=(host, tport) if tport is not None else host)

    # ----------------------------------------------------------------------------------- configuration

    def add_host(self, name: str, ips: str | Iterable[str]) -> None:
        """Add a DNS entry (``ips`` one IP, a comma-separated string or a list)."""
        values = [ips] if isinstance(ips, str) else list(ips)
        flat = [p.strip() for v in values for p in v.split(",") if p.strip()]
        for ip in flat:
            if not is_ip(ip):
                raise ValueError(f"hosts[{name!r}]: {ip!r} is not an IP address")
        self.hosts[name.lower()] = flat

    def route(self, ip: str, port: int | None, to: tuple[str, int | None] | tuple[str, int] | str) -> None:
        """Map the note address ``ip[:port]`` onto a loopback peer ``to`` (host or (host, port))."""
        if not is_ip(ip):
            raise ValueError(f"route: {ip!r} is not an IP address")
        target: RouteTarget = (to, None) if isinstance(to, str) else (to[0], to[1])
        self._routes[(ip, port)] = target

    @property
    def routes(self) -> dict[tuple[str, int | None], RouteTarget]:
        """The route table (note (ip, port|None) → loopback (host, port|None))."""
        return dict(self._routes)

    def map_out(self, ip: str, port: int) -> Address | None:
        """Note address → real address, or None when unreachable."""
        target = self._routes.get((ip, port)) or self._routes.get((ip, None))
        if target is not None:
            real = (target[0], target[1] if target[1] is not None else port)
            self._recent[real] = ip
            return real
        if is_loopback(ip):
            return (ip, port)
        return None

    def map_in(self, host: str, port: int) -> Address:
        """Real sender address → the note address it stands for."""
        for (ip, rport), (thost, tport) in self._routes.items():
            if rport is not None and tport is not None and (thost, tport) == (host, port):
                return (ip, rport)
        recent = self._recent.get((host, port))
        if recent is not None:
            return (recent, port)
        for (ip, rport), (thost, tport) in self._routes.items():
            if rport is None and tport is None and thost == host and not is_loopback(ip):
                return (ip, port)
        return (host, port)

    def server_address(self, modem_port: int, protocol: str = "tcp") -> Address:
        """Where peers really reach the module's server port (TCP listener or bound UDP port)."""
        if protocol == "udp":
            link = self._udp_ports.get(modem_port)
            if link is None:
                raise KeyError(f"no UDP endpoint on module port {modem_port}")
            return ("127.0.0.1", link.local_port)
        listener = self._listeners.get(modem_port)
        if listener is None:
            raise KeyError(f"no server listening on module port {modem_port}")
        return listener.address

    # ------------------------------------------------------------------------------------ Network API

    def resolve(self, name: str) -> list[str] | None:
        """IPs for ``name`` from the hosts table, or None."""
        ips = self.hosts.get(name.strip().lower())
        return list(ips) if ips else None

    def is_reachable(self, ip: str, port: int | None = None) -> bool:
        """True for loopback and routed addresses."""
        if is_loopback(ip):
            return True
        if port is not None:
            return (ip, port) in self._routes or (ip, None) in self._routes
        return any(rip == ip for rip, _ in self._routes)

    async def open_tcp(
        self,
        ip: str,
        port: int,
        *,
        on_data: Callable[[bytes], None],
        on_close: Callable[[BaseException | None], None],
    ) -> TcpLink:
        """Connect to the note address ``ip:port`` (``OSError`` when unreachable or refused)."""
        real = self.map_out(ip, port)
        if real is None:
            raise OSError(errno.EHOSTUNREACH, f"no route to {ip}")
        link = LoopbackTcpLink((ip, port), on_data, on_close)
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(CONNECT_TIMEOUT):
            await loop.create_connection(lambda: _TcpProtocol(link), real[0], real[1])
        return link

    async def open_udp(
        self, *, on_datagram: Callable[[bytes, Address], None], local_port: int = 0
    ) -> UdpLink:
        """Open a UDP endpoint on 127.0.0.1 (always an ephemeral real port; see ``server_address``)."""
        link = LoopbackUdpLink(self, on_datagram)
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(link), local_addr=("127.0.0.1", 0)
        )
        link._transport = transport
        link.local_port = int(transport.get_extra_info("sockname")[1])
        link.modem_port = local_port or link.local_port
        if local_port:
            self._udp_ports[local_port] = link
        return link

    async def listen_tcp(self, modem_port: int, on_accept: Callable[[TcpLink], None]) -> TcpListener:
        """Listen on 127.0.0.1 (ephemeral port) for peers of the module's ``modem_port``."""
        loop = asyncio.get_running_loop()

        def factory() -> _TcpProtocol:
            return _TcpProtocol(LoopbackTcpLink(("0.0.0.0", 0), accept_cb=_accepted))

        def _accepted(link: TcpLink) -> None:
            assert isinstance(link, LoopbackTcpLink)
            assert link._transport is not None
            peer = link._transport.get_extra_info("peername")
            link.peer = self.map_in(str(peer[0]), int(peer[1]))
            on_accept(link)

        server = await loop.create_server(factory, "127.0.0.1", 0)
        listener = LoopbackListener(self, modem_port, server)
        self._listeners[modem_port] = listener
        return listener
