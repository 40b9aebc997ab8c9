"""Native socket commands (application note chapter 5; public SIM7020 drivers where the note is silent:
TinyGSM's SIM7020 forks, OneOS, Kampi/ESP32-SIM70XX): ``AT+CSO*``, ``+CSONMI``, ``+CSOERR``.

Five sockets, ids 0-4, each backed by a real loopback socket (see ``network.py``). Choices where the note is
silent or garbled are listed in ``docs/emulator.md``; the main ones:

- ``AT+CSOSEND=<id>,0,"text"`` sends ASCII; with ``<len> > 0`` the data is hex (quoted or not) and ``<len>``
  counts hex characters: even, equal to the data, at most 512 (256 bytes). Anything else is ``ERROR``.
- ``AT+CSODSEND=<id>,<len>`` (1-1460): prompt ``\\r\\n> ``, exactly ``<len>`` raw bytes (every byte is data:
  CR, LF, Ctrl+Z and ESC), then ``DATA ACCEPT: <len>`` and ``OK``. ``dsend_esc_cancels = True`` makes ESC
  cancel the send instead (a host's way out of a prompt on some firmware).
- ``AT+CSOSENDFLAG=1``: after a TCP send reached the peer, the URC ``SEND: <id>,<bytes>`` (note 5.8).
- ``+CSONMI: <id>,<hexlen>,<HEX>`` (CSORCVFLAG=0) or ``+CSONMI: <id>,<len>,<raw bytes>`` (CSORCVFLAG=1); one
  per UDP datagram, TCP data in chunks of at most 1460 bytes.
- PSM: without ``AT+RETENTION=1`` every socket is gone after the wake; with it, what arrived while asleep is
  reported once the module is registered again. CSORCVFLAG is back to its default (hex) after every wake
  (profile ``wake_resets_csorcvflag``); CSOSENDFLAG is kept.
- ``AT+CSOLIS``: each accepted client gets the lowest free id and the URC ``+NEW CLIENT CONNEC: <id>``.
- Peer closes a TCP connection: ``+CSOERR: <id>,4`` (TinyGSM: "expected automatic disconnection"); peer reset:
  ``+CSOERR: <id>,3``; PS service lost: ``+CSOERR: <id>,11``. The id stays taken until ``AT+CSOCL``.
- Manual receive: ``AT+CSORXGET=1[,<id>]`` (all sockets / one socket) answers ``OK``; data landing in an empty
  buffer raises ``+CSORXGET: 1,<id>``; ``=2,<id>,<len>`` (≤1460) / ``=3,<id>,<len>`` (≤730, hex) answer
  ``+CSORXGET: <mode>,<id>,<read>,<left>`` then the data on its own line; ``=4,<id>`` answers
  ``+CSORXGET: 4,<id>,<left>``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from dataclasses import dataclass, field

from .base import (
    CME_NOT_SUPPORTED,
    CME_OPERATION_NOT_ALLOWED,
    CME_UNKNOWN,
    CommandError,
    CommandSet,
    ModemContext,
    ParsedCommand,
    ParseError,
    Registry,
    TcpLink,
    TcpListener,
    UdpLink,
    reply_rx_read,
    reply_setting,
)
from .network import is_ip

_LOGGER = logging.getLogger(__name__)

MAX_SOCKETS = 5
#: Largest ``<len>`` of ``AT+CSOSEND`` in hex mode (hex characters) and ASCII payload (characters).
MAX_SEND_HEX = 512
MAX_SEND_ASCII = 512
#: Largest ``AT+CSODSEND`` length (bytes).
MAX_DSEND = 1460
#: Largest ``AT+CSORXGET`` reads: mode 2 (bytes), mode 3 (bytes, sent as hex).
MAX_RXGET_RAW = 1460
MAX_RXGET_HEX = 730
#: TCP data is reported in +CSONMI chunks of at most this many bytes.
NMI_CHUNK = 1460
#: Receive buffer per socket in manual mode (bytes); more is dropped (TCP: the module stops reading).
RX_BUFFER = 65536
#: Seconds to wait for a send to reach the peer before giving up on the ``SEND:`` ack.
ACK_TIMEOUT = 5.0

ERR_RESET = 3
ERR_CLOSED = 4
ERR_BEARER = 11

ESC = 0x1B
_HEX = re.compile(r"^[0-9A-Fa-f]*$")

TCP, UDP = 1, 2


@dataclass(eq=False)
class Socket:
    """One native socket."""

    sock_id: int
    kind: int  # 1 TCP, 2 UDP
    domain: int = 1
    protocol: int = 1
    remote: tuple[str, int] | None = None
    local_port: int | None = None
    tcp: TcpLink | None = None
    udp: UdpLink | None = None
    listener: TcpListener | None = None
    failed: bool = False
    manual: bool = False
    rx: bytearray = field(default_factory=bytearray)
    held: list[bytes] = field(default_factory=list)  # arrived while asleep
    sent: int = 0
    acked: int = 0
    keepalive: tuple[int, ...] = (0,)

    @property
    def status(self) -> int:
        """``AT+CSOSTATUS`` value: 1 created (or listening / failed), 2 connected."""
        if self.failed:
            return 1
        if self.tcp is not None or (self.kind == UDP and self.remote is not None):
            return 2
        return 1

    def close(self, *, abort: bool = False) -> None:
        """Close every real socket behind it."""
        if self.tcp is not None:
            self.tcp.close(abort=abort)
            self.tcp = None
        if self.udp is not None:
            self.udp.close()
            self.udp = None
        if self.listener is not None:
            self.listener.close()
            self.listener = None


class NativeCommands(CommandSet):
    """``AT+CSOC``, ``CSOCON``, ``CSOB``, ``CSOLIS``, ``CSOSEND``, ``CSODSEND``, ``CSOCL``, ``CSOSENDFLAG``,
    ``CSORCVFLAG``, ``CSOSTATUS``, ``CSOACK``, ``CSOALIVE``, ``CSORXGET``."""

    #: ``AT+CSODSEND`` gives its length, so every byte is data (ESC included). Set True on the instance
    #: (``emu.command_sets["native"].dsend_esc_cancels = True``) to make ESC cancel a CSODSEND instead.
    dsend_esc_cancels = False

    def __init__(self, ctx: ModemContext) -> None:
        super().__init__(ctx)
        self.sockets: dict[int, Socket] = {}
        self.send_flag = 0
        self.recv_flag = 0
        self.manual_all = False

    def register(self, registry: Registry) -> None:
        """Register the handlers."""
        for name, fn in {
            "+CSOC": self.csoc,
            "+CSOCON": self.csocon,
            "+CSOB": self.csob,
            "+CSOLIS": self.csolis,
            "+CSOSEND": self.csosend,
            "+CSODSEND": self.csodsend,
            "+CSOCL": self.csocl,
            "+CSOSENDFLAG": self.csosendflag,
            "+CSORCVFLAG": self.csorcvflag,
            "+CSOSTATUS": self.csostatus,
            "+CSOACK": self.csoack,
            "+CSOALIVE": self.csoalive,
            "+CSORXGET": self.csorxget,
        }.items():
            registry.register(name, fn)

    # ------------------------------------------------------------------------------------------ helpers

    def _free_id(self) -> int | None:
        for i in range(MAX_SOCKETS):
            if i not in self.sockets:
                return i
        return None

    def _sock(self, cmd: ParsedCommand, index: int = 0) -> Socket:
        sock_id = cmd.int_arg(index, 0, MAX_SOCKETS - 1)
        sock = self.sockets.get(sock_id)
        if sock is None:
            raise CommandError(CME_OPERATION_NOT_ALLOWED, f"socket {sock_id} not created")
        return sock

    @staticmethod
    def _set_only(cmd: ParsedCommand) -> None:
        if cmd.kind != "set":
            raise CommandError()

    def _release(self, sock: Socket) -> None:
        sock.close()
        if self.sockets.get(sock.sock_id) is sock:
            del self.sockets[sock.sock_id]

    def _fail(self, sock: Socket, code: int, *, abort: bool = False) -> None:
        """The socket died: ``+CSOERR: <id>,<code>``; the id stays taken until AT+CSOCL."""
        if sock.failed or self.sockets.get(sock.sock_id) is not sock:
            return
        sock.failed = True
        sock.close(abort=abort)
        self.ctx.urc(f"+CSOERR: {sock.sock_id},{code}")

    def inject_error(self, sock_id: int, code: int) -> None:
        """Fault API (``Emulator.socket_error``)."""
        sock = self.sockets.get(sock_id)
        if sock is None:
            raise ValueError(f"native socket {sock_id} does not exist")
        if sock.failed:
            raise ValueError(f"native socket {sock_id} already failed")
        self._fail(sock, code, abort=True)

    # ---------------------------------------------------------------------------------------- receive

    def _incoming(self, sock: Socket, data: bytes) -> None:
        if self.sockets.get(sock.sock_id) is not sock or sock.failed or not data:
            return
        if self.ctx.asleep:
            sock.held.append(data)
            return
        self.ctx.activity()
        if sock.manual:
            was_empty = not sock.rx
            room = RX_BUFFER - len(sock.rx)
            sock.rx += data[: max(0, room)]
            if was_empty and sock.rx:
                self.ctx.urc(f"+CSORXGET: 1,{sock.sock_id}")
            return
        chunks = (
            [data] if sock.kind == UDP else [data[i : i + NMI_CHUNK] for i in range(0, len(data), NMI_CHUNK)]
        )
        for chunk in chunks:
            if self.recv_flag:
                self.ctx.urc(f"+CSONMI: {sock.sock_id},{len(chunk)},", chunk)
            else:
                self.ctx.urc(f"+CSONMI: {sock.sock_id},{len(chunk) * 2},{chunk.hex().upper()}")

    def _tcp_closed(self, sock: Socket, exc: BaseException | None) -> None:
        if self.sockets.get(sock.sock_id) is not sock:
            return
        sock.tcp = None
        if self.ctx.asleep:
            sock.held.append(b"")  # report after wake-up
            return
        self._fail(sock, ERR_CLOSED if exc is None else ERR_RESET)

    def _wire_tcp(self, sock: Socket, link: TcpLink) -> None:
        sock.tcp = link
        link.on_data = lambda data: self._incoming(sock, data)
        link.on_close = lambda exc: self._tcp_closed(sock, exc)

    # --------------------------------------------------------------------------------------- commands

    def csoc(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSOC=<domain>,<type>,<protocol>[,<cid>]`` → ``+CSOC: <id>``."""
        if cmd.kind == "test":
            ctx.reply("+CSOC: (1,2),(1-3),(1-3)")
            ctx.ok()
            return
        self._set_only(cmd)
        cmd.check_count(3, 4)
        domain = cmd.int_arg(0, 1, 2)
        kind = cmd.int_arg(1, 1, 3)
        protocol = cmd.int_arg(2, 1, 3)
        cmd.int_arg(3, 1, 10, default=1)
        if domain != 1 or kind == 3:
            raise CommandError(CME_NOT_SUPPORTED, "only IPv4 TCP/UDP sockets are emulated")
        ctx.require_service()
        sock_id = self._free_id()
        if sock_id is None:
            raise CommandError(CME_OPERATION_NOT_ALLOWED, "all 5 sockets in use")
        self.sockets[sock_id] = Socket(sock_id, kind, domain, protocol, manual=self.manual_all)
        ctx.reply(f"+CSOC: {sock_id}")
        ctx.ok()

    async def csocon(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSOCON=<id>,<port>,"<ip>"``: a real TCP connect (ERROR when unreachable) / UDP peer."""
        self._set_only(cmd)
        cmd.check_count(3)
        sock = self._sock(cmd)
        port = cmd.int_arg(1, 1, 65535)
        ip = cmd.str_arg(2).strip()
        if not is_ip(ip):
            raise ParseError(f"CSOCON needs an IP address, got {ip!r}")
        if sock.failed or sock.remote is not None or sock.listener is not None:
            raise CommandError(CME_OPERATION_NOT_ALLOWED, "socket already connected")
        ctx.require_service()
        if sock.kind == TCP:
            sid = sock.sock_id
            try:
                link = await ctx.net.open_tcp(
                    ip,
                    port,
                    on_data=lambda data: self._incoming(sock, data),
                    on_close=lambda exc: self._tcp_closed(sock, exc),
                )
            except (OSError, TimeoutError) as err:
                _LOGGER.debug("emulator: CSOCON %s:%s failed: %s", ip, port, err)
                raise CommandError(CME_UNKNOWN, f"connect to {ip}:{port} failed") from None
            if self.sockets.get(sid) is not sock or sock.failed:  # closed while connecting
                link.close()
                raise CommandError(CME_UNKNOWN, "socket gone while connecting")
            sock.tcp = link
        else:
            await self._ensure_udp(sock)
        sock.remote = (ip, port)
        ctx.activity()
        ctx.ok()

    async def _ensure_udp(self, sock: Socket) -> UdpLink:
        if sock.udp is None:
            sock.udp = await self.ctx.net.open_udp(
                on_datagram=lambda data, addr: self._incoming(sock, data), local_port=sock.local_port or 0
            )
        return sock.udp

    async def csob(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSOB=<id>,<port>[,"<local ip>"]``: bind the local port (spaces around the IP tolerated)."""
        self._set_only(cmd)
        cmd.check_count(2, 3)
        sock = self._sock(cmd)
        port = cmd.int_arg(1, 1, 65535)
        ip = cmd.str_arg(2, default="").strip()
        if ip and not is_ip(ip):
            raise ParseError(f"CSOB needs an IP address, got {ip!r}")
        if sock.local_port is not None or sock.remote is not None or sock.failed:
            raise CommandError(CME_OPERATION_NOT_ALLOWED, "socket already bound")
        if any(s.local_port == port and s.kind == sock.kind for s in self.sockets.values()):
            raise CommandError(CME_OPERATION_NOT_ALLOWED, f"port {port} in use")
        sock.local_port = port
        if sock.kind == UDP:
            await self._ensure_udp(sock)
        ctx.ok()

    async def csolis(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSOLIS=<id>``: listen on the bound port (one server at a time)."""
        self._set_only(cmd)
        cmd.check_count(1)
        sock = self._sock(cmd)
        if sock.kind != TCP or sock.local_port is None or sock.remote is not None or sock.failed:
            raise CommandError(CME_OPERATION_NOT_ALLOWED, "CSOLIS needs a bound, unconnected TCP socket")
        if sock.listener is not None or any(s.listener is not None for s in self.sockets.values()):
            raise CommandError(CME_OPERATION_NOT_ALLOWED, "a server is already listening")
        ctx.require_service()
        sock.listener = await ctx.net.listen_tcp(sock.local_port, lambda link: self._accepted(sock, link))
        ctx.ok()

    def _accepted(self, server: Socket, link: TcpLink) -> None:
        sock_id = self._free_id()
        if sock_id is None or self.ctx.asleep or self.sockets.get(server.sock_id) is not server:
            link.close(abort=True)
            return
        sock = Socket(sock_id, TCP, manual=self.manual_all, remote=link.peer)
        self.sockets[sock_id] = sock
        self._wire_tcp(sock, link)
        self.ctx.activity()
        self.ctx.urc(f"+NEW CLIENT CONNEC: {sock_id}")

    def _check_sendable(self, sock: Socket) -> None:
        if sock.failed or sock.remote is None or (sock.kind == TCP and sock.tcp is None):
            raise CommandError(CME_OPERATION_NOT_ALLOWED, f"socket {sock.sock_id} not connected")

    def csosend(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSOSEND=<id>,<len>,<data>``: len 0 → ASCII, else hex with len in hex characters (≤512)."""
        self._set_only(cmd)
        cmd.check_count(3)
        sock = self._sock(cmd)
        length = cmd.int_arg(1, 0, MAX_SEND_HEX)
        arg = cmd.arg(2)
        if arg.empty:
            raise ParseError("CSOSEND: no data")
        if length == 0:
            if not arg.text or len(arg.text) > MAX_SEND_ASCII:
                raise ParseError("CSOSEND: ASCII data must be 1-512 characters")
            data = arg.text.encode("latin-1")
        else:
            text = arg.text
            if len(text) != length or length % 2 or not _HEX.match(text):
                raise ParseError(f"CSOSEND: {length} does not describe the hex data {text[:20]!r}")
            data = bytes.fromhex(text)
        self._check_sendable(sock)
        self._send(sock, data)
        ctx.ok()

    def _send(self, sock: Socket, data: bytes) -> None:
        assert sock.remote is not None
        self.ctx.activity()
        sock.sent += len(data)
        if sock.kind == UDP:
            assert sock.udp is not None
            if sock.udp.sendto(data, sock.remote):
                sock.acked += len(data)
            return
        assert sock.tcp is not None
        sock.tcp.send(data)
        self.ctx.spawn(self._confirm(sock, sock.tcp, len(data)))

    async def _confirm(self, sock: Socket, link: TcpLink, size: int) -> None:
        try:
            async with asyncio.timeout(ACK_TIMEOUT):
                await link.drain()
        except (TimeoutError, OSError):
            return
        if link.closed and sock.tcp is not link:
            return
        sock.acked += size
        if self.send_flag and self.sockets.get(sock.sock_id) is sock:
            self.ctx.urc(f"SEND: {sock.sock_id},{size}")

    def csodsend(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSODSEND=<id>,<len>``: ``> `` prompt, ``<len>`` raw bytes, ``DATA ACCEPT: <len>``, ``OK``."""
        self._set_only(cmd)
        cmd.check_count(2)
        sock = self._sock(cmd)
        length = cmd.int_arg(1, 1, MAX_DSEND)
        self._check_sendable(sock)
        buf = bytearray()

        def sink(chunk: bytes) -> int | None:
            need = length - len(buf)
            esc = chunk.find(bytes([ESC]), 0, need) if self.dsend_esc_cancels else -1
            if esc >= 0:
                return esc + 1  # cancelled: nothing sent, no result code
            buf.extend(chunk[:need])
            if len(buf) < length:
                return None
            if self.sockets.get(sock.sock_id) is sock and not sock.failed and sock.remote is not None:
                self._send(sock, bytes(buf))
                ctx.final(f"DATA ACCEPT: {length}")
                ctx.ok()
            else:
                ctx.error(CME_OPERATION_NOT_ALLOWED)
            return need

        ctx.write(b"\r\n> ")
        ctx.expect_data(sink)

    def csocl(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSOCL=<id>``: close (a listening socket stops listening; its clients stay)."""
        self._set_only(cmd)
        cmd.check_count(1)
        sock = self._sock(cmd)
        self._release(sock)
        ctx.ok()

    def csosendflag(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSOSENDFLAG=<0|1>``: ``SEND: <id>,<len>`` once TCP data reached the peer."""
        reply_setting(ctx, cmd, self, "send_flag")

    def csorcvflag(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSORCVFLAG=<0|1>``: +CSONMI data in hex (0) or raw (1)."""
        reply_setting(ctx, cmd, self, "recv_flag")

    def csostatus(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSOSTATUS=<id>`` → ``+CSOSTATUS: <id>,<0 unused|1 created|2 connected>``."""
        self._set_only(cmd)
        cmd.check_count(1)
        sock_id = cmd.int_arg(0, 0, MAX_SOCKETS - 1)
        sock = self.sockets.get(sock_id)
        ctx.reply(f"+CSOSTATUS: {sock_id},{0 if sock is None else sock.status}")
        ctx.ok()

    def csoack(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSOACK=<id>`` → ``+CSOACK: <id>,<sent>,<acked>,<unacked>`` (bytes, as CIPACK)."""
        self._set_only(cmd)
        cmd.check_count(1)
        sock = self._sock(cmd)
        ctx.reply(f"+CSOACK: {sock.sock_id},{sock.sent},{sock.acked},{sock.sent - sock.acked}")
        ctx.ok()

    def csoalive(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSOALIVE=<id>,<0|1>[,<idle s>,<interval s>,<count>]`` (stored; loopback never idles out)."""
        self._set_only(cmd)
        cmd.check_count(2, 5)
        sock = self._sock(cmd)
        enable = cmd.int_arg(1, 0, 1)
        if sock.kind != TCP:
            raise CommandError(CME_OPERATION_NOT_ALLOWED, "keepalive is for TCP sockets")
        if enable:
            sock.keepalive = (
                1,
                cmd.int_arg(2, 1, 7200, default=7200),
                cmd.int_arg(3, 1, 600, default=75),
                cmd.int_arg(4, 1, 10, default=9),
            )
        else:
            if len(cmd.args) > 2:
                raise ParseError("CSOALIVE=<id>,0 takes no timers")
            sock.keepalive = (0,)
        ctx.ok()

    def csorxget(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSORXGET=<mode>[,<id>[,<len>]]``: manual receive (modes 0/1 switch, 2/3 read, 4 query)."""
        if cmd.kind == "test":
            ctx.reply(f"+CSORXGET: (0-4),(0-4),(1-{MAX_RXGET_RAW})")
            ctx.ok()
            return
        self._set_only(cmd)
        mode = cmd.int_arg(0, 0, 4)
        if mode in (0, 1):
            cmd.check_count(1, 2)
            if len(cmd.args) == 2:
                self._sock(cmd, 1).manual = bool(mode)
            else:
                self.manual_all = bool(mode)
                for s in self.sockets.values():
                    s.manual = bool(mode)
            ctx.ok()
            return
        if mode == 4:
            cmd.check_count(2)
            sock = self._sock(cmd, 1)
            if not sock.manual:
                raise CommandError(CME_OPERATION_NOT_ALLOWED, "manual receive is off")
            ctx.reply(f"+CSORXGET: 4,{sock.sock_id},{len(sock.rx)}")
            ctx.ok()
            return
        cmd.check_count(3)
        sock = self._sock(cmd, 1)
        limit = MAX_RXGET_RAW if mode == 2 else MAX_RXGET_HEX
        want = cmd.int_arg(2, 1, limit)
        if not sock.manual:
            raise CommandError(CME_OPERATION_NOT_ALLOWED, "manual receive is off")
        reply_rx_read(ctx, f"+CSORXGET: {mode},{sock.sock_id},", sock.rx, want, as_hex=mode == 3)
        ctx.ok()

    # ------------------------------------------------------------------------------------- lifecycle

    def _drop_all(self) -> None:
        """Every socket is gone, silently (peers are reset)."""
        for sock in list(self.sockets.values()):
            with contextlib.suppress(Exception):
                sock.close(abort=True)
        self.sockets.clear()

    def on_reboot(self) -> None:
        """Reset: every socket is gone, silently."""
        self._drop_all()
        self.send_flag = self.recv_flag = 0
        self.manual_all = False

    def on_detach(self) -> None:
        """PS service lost: every live socket fails with ``+CSOERR: <id>,11``."""
        for sock in list(self.sockets.values()):
            self._fail(sock, ERR_BEARER, abort=True)

    def on_psm_enter(self, retention: bool) -> None:
        """Asleep: without retention every socket is gone (silently); with it they stay."""
        if not retention:
            self._drop_all()

    def on_psm_exit(self, retention: bool) -> None:
        """Awake: CSORCVFLAG is back to hex, RETENTION or not (profile ``wake_resets_csorcvflag``; the KTH
        Contiki SIM7020 driver, which sets RETENTION=1: "RCVFLAG gets reset after PSM, so set it again").
        CSOSENDFLAG stays: nicolaij/thcam sets it once and waits for ``SEND:`` after every later wake."""
        if self.ctx.profile.wake_resets_csorcvflag:
            self.recv_flag = 0

    def on_ready(self) -> None:
        """Registered again after the wake: deliver what arrived for retained sockets while asleep."""
        for sock in list(self.sockets.values()):
            held, sock.held = sock.held, []
            for data in held:
                if data:
                    self._incoming(sock, data)
                else:
                    self._fail(sock, ERR_CLOSED)

    async def aclose(self) -> None:
        """Emulator stops: close every real socket."""
        self._drop_all()


def create_command_set(ctx: ModemContext) -> CommandSet:
    """Entry point used by the emulator core."""
    return NativeCommands(ctx)
