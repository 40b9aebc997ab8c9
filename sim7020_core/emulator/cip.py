"""SIM800-compatible TCP/IP command set (``AT+CIP*``) of the emulated SIM7020 (note chapter 6).

Written from the application note (chapter 6) and the SIM800/SIM7000 manuals (SIM7000 manual V1.03, the
CIP chapter), never from the driver. Remote peers are real loopback sockets reached through
:class:`~sim7020_core.emulator.base.Network`.

Commands: CIPMUX, CSTT, CIICR, CIFSR, CIFSREX, CIPSTATUS, CIPSTART, CIPSEND, CIPQSEND, CIPACK, CIPCLOSE,
CIPSHUT, CLPORT, CIPHEAD, CIPSRIP, CIPSHOWTP, CIPHEXS, CIPATS, CIPSPRT, CIPSERVER, CIPCSGP,
CIPUDPMODE, CIPRXGET, CIPTKA, CIPMODE, CIPCHAN and ``ATO``.

State machine (note 6.11)
=========================
Single link (``CIPMUX=0``): ``IP INITIAL`` -CSTT-> ``IP START`` -CIICR-> (``IP CONFIG``) ``IP GPRSACT``
-CIFSR-> ``IP STATUS`` -CIPSTART-> ``TCP CONNECTING``/``UDP CONNECTING`` -> ``CONNECT OK`` -CIPCLOSE->
(``TCP CLOSING``) ``TCP CLOSED``; ``CIPSERVER=1`` gives ``SERVER LISTENING``; losing PS service gives
``PDP DEACT``; ``CIPSHUT`` always returns to ``IP INITIAL``. Multi link (``CIPMUX=1``): the same bearer
states, then ``IP PROCESSING`` from the first CIPSTART/CIPSERVER until CIPSHUT.
A command in the wrong state answers ``ERROR``: CSTT outside IP INITIAL, CIICR outside IP START, CIFSR
before IP GPRSACT, CIPSTART in IP START/IP CONFIG/IP GPRSACT/PDP DEACT or while connected (``ALREADY
CONNECT``), CIPSEND/CIPCLOSE/CIPACK without a connection, CIPMUX outside IP INITIAL, CIPMODE=1 with
CIPMUX=1 (and CIPMUX=1 with CIPMODE=1), CIPRXGET=0/1 while a connection is up.
As on the SIM800 (its manual: "only when the state is IP INITIAL or IP STATUS"), CIPSTART and CIPSERVER in
single-link IP INITIAL bring the bearer up by themselves (CSTT+CIICR+CIFSR); the note's 6.5 and 6.9.4 rely
on it. Multi-link mode needs the explicit CSTT/CIICR/CIFSR (note 6.7).

CIP choices (where the note is garbled or silent)
=================================================
- Results with a link number use ``<n>, <TEXT>`` with one space: ``0, CONNECT OK``, ``1, SEND OK``,
  ``2, CLOSE OK``, ``0, CLOSED``, ``0, CONNECT FAIL``, ``0, SEND FAIL``, ``0, ALREADY CONNECT``,
  ``0, REMOTE IP: <ip>`` (SIM7000 manual ``<n>, SEND OK``; note 6.7 ``1, CONNECT OK``). The note's
  ``0,CONNECT OK`` (6.6) and ``1.SEND OK`` (6.6) are read as this form.
- Quick send: ``DATA ACCEPT: <len>`` / ``DATA ACCEPT: <n>,<len>``, one space after the colon (the SIM7000
  manual; the note's majority: ``DATA ACCEPT: 12``, ``DATA ACCEPT: 0,10``). The
  note's single ``DATA ACCEPT:5`` (6.9.3) is read as ``DATA ACCEPT: 5``; ``DATA ACCEPT: 2.3`` as
  ``DATA ACCEPT: 2,3``.
- ``AT+CIPSNED`` (6.6, 6.8) is a typo for ``AT+CIPSEND``; it is not a command (``ERROR``).
- ``CLOSED OK`` (6.3, after UDP data) is the answer to a local ``AT+CIPCLOSE``: ``CLOSE OK``. A UDP
  "connection" never closes from the remote side, so ``CLOSED`` is only reported for TCP.
- ``RECVFROM:`` / ``RECV FROM: 10.78.103.220: 5678`` (6.4) are read as ``RECV FROM: <ip>:<port>``.
- CIPSTATUS connection lines: ``C: <n>,<bearer>,"<TCP|UDP>","<ip>","<port>","<state>"`` with bearer ``0``;
  unused ones ``C: <n>,,"","","","INITIAL"`` (the note's ``C: 2,,"","","INITIAL"`` and ``"",","`` lose a
  field); the server line ``S: 0,0,"<port>","LISTENING"`` while listening. Multi link always lists C: 0-5
  (6.1: six sockets), whatever the bearer state. The lines come after ``OK`` as in 6.6/6.7: ``OK``,
  ``STATE: <state>``, then the ``S:``/``C:`` lines.
- The ``>`` prompt is ``\\r\\n> `` (SIM800 dumps show ``AT+CIPSEND\\r\\r\\n> `` with echo on: the echoed CR,
  then CRLF and ``> ``), sent only with CIPSPRT=1 (default); CIPSPRT=0 sends no prompt but ``SEND OK``;
  CIPSPRT=2 neither (SIM800/SIM900 manuals). Data typed after the prompt is echoed when ATE1 (the module
  echoes all UART input in command state); transparent-mode data is never echoed.
- ESC (0x1B) cancels a pending CIPSEND silently: nothing is sent and no result code follows (the SIM800 manual
  only says "tap ESC to cancel"); the module is back in command state at once.
- TCP ``SEND OK`` is sent once the data was handed to the peer's socket (loopback: at once; a command typed
  right behind the data may be answered first); UDP ``SEND OK`` and every ``DATA ACCEPT`` (CIPQSEND=1)
  come at once. A TCP send counts as acknowledged (CIPACK ``acklen``) once handed to the peer's socket;
  UDP data is never acknowledged (6.9.4 ``+CIPACK: 3,0,3``). A send on a connection that dropped gives
  ``SEND FAIL`` / ``<n>, SEND FAIL``.
- Maximum data per CIPSEND: 1460 bytes (``AT+CIPSEND?`` → ``+CIPSEND: 1460`` when connected, ``0`` when not;
  multi link one ``+CIPSEND: <n>,<size>`` line per link 0-5). Variable-length data longer than that is
  dropped and answered ``SEND FAIL`` after Ctrl+Z; ``AT+CIPSEND=<len>`` past it is ``ERROR``.
- Received data (automatic mode) is never followed by CRLF (headers carry the length): ``CIPHEAD=0`` → the
  bytes as they are, no header, no CRLF (the note shows ``hello SIM7020`` bare); ``CIPHEAD=1`` →
  ``\\r\\n+IPD,<len>:<data>`` (``+IPD,<len>,TCP:`` / ``,UDP:`` with CIPSHOWTP=1); multi link →
  ``\\r\\n+RECEIVE,<n>,<len>:\\r\\n<data>`` whatever CIPHEAD says (6.6/6.7); CIPSRIP=1 puts a framed
  ``\\r\\nRECV FROM: <ip>:<port>\\r\\n`` line before any of these.
  CIPHEXS=1 prints the data as upper-case hex (two characters per byte); ``<len>`` still counts bytes.
- CIPRXGET (6.10.2): mode 2 answers ``+CIPRXGET: 2,[<n>,]<read>,<left>`` then the data on its own line then
  ``OK`` (the note's ``+CIPRXGET: 2,11,0`` for a 1460-byte request that found 11 bytes; the SIM7000
  manual names them ``<req>,<cnf>``, the values are as in the note); mode 3 the same with hex (at most 730
  bytes per read); mode 4 ``+CIPRXGET: 4,[<n>,]<left>``. Omitted lengths default to 1460 / 730. The
  arrival URC ``+CIPRXGET: 1`` (``+CIPRXGET: 1,<n>`` multi link) is sent when data arrives in an empty buffer.
  Reading with nothing buffered gives ``+CIPRXGET: 2,0,0`` and ``OK`` (no data line).
- CIPSTART failures: ``CONNECT FAIL`` / ``<n>, CONNECT FAIL`` after ``OK`` (unknown host name, unreachable or
  refused address); the single-link state is then ``TCP CLOSED``. CIPSTART on a busy link gives
  ``ALREADY CONNECT`` (``<n>, ALREADY CONNECT``) then ``ERROR``.
- CIPSERVER: ``OK`` then ``SERVER OK``; ``CIPSERVER=0`` → ``OK`` then ``SERVER CLOSE``; ``CIPSERVER=0``
  with no server → ``ERROR``. Read form ``+CIPSERVER: 0`` / ``+CIPSERVER: 1,<port>``. A single-link server
  takes one client (a second one is reset); a multi-link server gives each client the lowest free link number.
- CIPUDPMODE: ``=0``/``=1`` (multi link ``=<n>,<mode>``) switch extended mode; ``=2,"<ip>",<port>`` needs
  mode 1 and a UDP connection, and retargets CIPSEND. The read form keeps mode ``1`` after ``=2`` as in the
  note: ``+CIPUDPMODE: 1,"<ip>",<port>`` (``+CIPUDPMODE: 0`` when off; multi link one
  ``+CIPUDPMODE: <n>,...`` line per link). Without extended mode a UDP link only accepts datagrams from its
  remote address.
- CLPORT: ``AT+CLPORT="TCP"|"UDP",<port>`` (multi link ``=<n>,...``), read ``+CLPORT: <tcp>,<udp>``. A UDP
  link opened after it uses that module port: peers reach it at ``emu.server_address(<port>, "udp")``. The
  TCP local port is stored only.
- CDNSCFG: in the basic command set (``basic.py``): the DNS servers are the module's, used by ``AT+CDNSGIP``.
- CIPATS: ``AT+CIPATS=<mode>[,<seconds 1-100>]``; the timer starts at the ``>`` prompt.
- Transparent mode: ``CIPCHAN`` (and ``ATO``) answer ``CONNECT``; ``+++`` with the guard time (default 1 s,
  :attr:`CipCommandSet.guard_time`, also ``Emulator(guard_time=...)``) idle before and after, and less
  than the guard time between the ``+`` characters, returns to command state with ``OK``; otherwise the ``+``
  are data. Tests shorten it with ``emu.command_sets["cip"].guard_time = 0.2``. Data that arrives while
  in command state is kept and written after ``ATO``'s ``CONNECT``. A remote close (or PS service loss)
  leaves data mode with ``CLOSED``. CIPSEND is ``ERROR`` while CIPMODE=1.
- Losing PS service (detach/CFUN=0) reports ``CLOSED`` for every open link, then ``+PDP: DEACT``; the state
  is ``PDP DEACT`` until CIPSHUT. Without RETENTION the CIP links do not survive PSM (the layer resets as
  after a reboot); with RETENTION=1 they do, and data that arrives while asleep is reported once the module
  is registered again after waking.
- Closing: CIPCLOSE (slow, mode 0) and CIPSHUT close TCP peers with FIN; quick CIPCLOSE (mode 1), a
  turned-away server client, and links lost to a reboot, PS service loss or PSM without retention get RST.
- CIPTKA: ``AT+CIPTKA=<mode>[,<idle 30-7200>[,<interval 30-600>[,<count 1-9>]]]``, read
  ``+CIPTKA: <mode>,<idle>,<interval>,<count>``; stored only (loopback peers never go silent).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from .base import (
    CommandError,
    CommandSet,
    Handler,
    ModemContext,
    ParsedCommand,
    ParseError,
    PsmState,
    Registry,
    TcpLink,
    TcpListener,
    UdpLink,
    reply_rx_read,
    reply_setting,
)
from .network import is_ipv4

__all__ = [
    "CONNECT_TIMEOUT",
    "DEFAULT_GUARD_TIME",
    "MAX_LINKS",
    "MAX_SEND_SIZE",
    "RXGET_MAX_BIN",
    "RXGET_MAX_HEX",
    "SEND_TIMEOUT",
    "CipCommandSet",
    "create_command_set",
]

_LOGGER = logging.getLogger(__name__)

#: Connections in multi-link mode (note 6.1: six sockets, numbered 0-5).
MAX_LINKS = 6
#: Most bytes one CIPSEND carries (``AT+CIPSEND?``).
MAX_SEND_SIZE = 1460
#: CIPRXGET read limits (note 6.10.2): binary and hex reads.
RXGET_MAX_BIN = 1460
RXGET_MAX_HEX = 730
#: Escape-sequence guard time of transparent mode (note 6.14.4: 1000 ms).
DEFAULT_GUARD_TIME = 1.0
#: Bound on connecting to a loopback peer (CIPSTART) and on handing data to it (CIPSEND).
CONNECT_TIMEOUT = 10.0
SEND_TIMEOUT = 10.0
#: Bound on opening a UDP endpoint or a listening socket.
OPEN_TIMEOUT = 5.0

CTRL_Z = 0x1A
ESC = 0x1B
PLUS = 0x2B


class Bearer(enum.Enum):
    """Bearer part of the CIP state (the part shared by single and multi link)."""

    INITIAL = "IP INITIAL"
    START = "IP START"
    CONFIG = "IP CONFIG"
    GPRSACT = "IP GPRSACT"
    STATUS = "IP STATUS"
    PDP_DEACT = "PDP DEACT"


class LinkState(enum.Enum):
    """State of one connection (the multi-link ``C:`` line words)."""

    CONNECTING = "CONNECTING"
    CONNECTED = "CONNECTED"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"


@dataclass(eq=False)
class _Link:
    """One TCP or UDP connection (client, or a client accepted by the server)."""

    n: int
    proto: str  # "TCP" | "UDP"
    ip: str
    port: int
    state: LinkState = LinkState.CONNECTING
    tcp: TcpLink | None = None
    udp: UdpLink | None = None
    dest: tuple[str, int] = ("", 0)  # UDP send target (CIPUDPMODE=2 retargets it)
    extended: bool = False  # UDP extended mode (receive from anyone)
    from_server: bool = False
    txlen: int = 0
    acklen: int = 0
    rxbuf: bytearray = field(default_factory=bytearray)  # CIPRXGET manual mode
    held: bytearray = field(default_factory=bytearray)  # transparent mode, while in command state

    @property
    def active(self) -> bool:
        return self.state in (LinkState.CONNECTING, LinkState.CONNECTED)

    def close_sockets(self, *, abort: bool = False) -> None:
        if self.tcp is not None and not self.tcp.closed:
            self.tcp.close(abort=abort)
        if self.udp is not None:
            self.udp.close()
            self.udp = None


class _Send:
    """One CIPSEND in progress: collects the data typed after the prompt."""

    def __init__(self, owner: CipCommandSet, link: _Link, fixed: int | None) -> None:
        self.owner = owner
        self.link = link
        self.fixed = fixed
        self.buf = bytearray()
        self.overflow = False
        self.done = False
        self.timer: asyncio.TimerHandle | None = None

    def feed(self, chunk: bytes) -> int | None:
        """Data sink: returns the count consumed when the data is complete (or cancelled)."""
        if self.done:
            return 0
        ctx = self.owner.ctx
        if self.fixed is not None:
            need = self.fixed - len(self.buf)
            take = chunk[:need]
            self.buf += take
            if ctx.state.echo:
                ctx.write(bytes(take))
            if len(self.buf) >= self.fixed:
                self._finish(send=True)
                return len(take)
            return None
        for i, byte in enumerate(chunk):
            if byte in (CTRL_Z, ESC):
                if ctx.state.echo and i:
                    ctx.write(bytes(chunk[:i]))
                self._finish(send=byte == CTRL_Z)
                return i + 1
            if len(self.buf) < MAX_SEND_SIZE:
                self.buf.append(byte)
            else:
                self.overflow = True
        if ctx.state.echo:
            ctx.write(bytes(chunk))
        return None

    def timeout(self) -> None:
        """CIPATS timer: send what was typed so far."""
        self.timer = None
        if not self.done:
            self.owner.ctx.end_data()
            self._finish(send=True)

    def cancel(self) -> None:
        """ESC, PSM or a reset: nothing is sent and no result code follows."""
        self._finish(send=False)

    def _finish(self, *, send: bool) -> None:
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.owner.pending_send is self:
            self.owner.pending_send = None
        if send:
            self.owner.transmit(self.link, bytes(self.buf), overflow=self.overflow)


class _Transparent:
    """Transparent data mode on the single link: raw bytes both ways, ``+++`` escape with guard times."""

    def __init__(self, owner: CipCommandSet, link: _Link) -> None:
        self.owner = owner
        self.link = link
        self.plus = 0  # '+' characters held back as a possible escape
        self.last_plus = 0.0
        self.last_byte = time.monotonic()  # CONNECT was just sent: the idle time starts now
        self.timer: asyncio.TimerHandle | None = None
        self.active = True

    def feed(self, chunk: bytes) -> int | None:
        if not self.active:
            return 0
        now = time.monotonic()
        guard = self.owner.guard_time
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        out = bytearray()
        for byte in chunk:
            if byte == PLUS and self.plus < 3:
                if self.plus == 0 and now - self.last_byte >= guard:
                    self.plus, self.last_plus = 1, now
                    self.last_byte = now
                    continue
                if self.plus and now - self.last_plus < guard:
                    self.plus, self.last_plus = self.plus + 1, now
                    self.last_byte = now
                    continue
            if self.plus:
                # the held '+' were data after all; this byte may start a new escape only after idle time
                out += b"+" * self.plus
                idle_from = self.last_plus
                self.plus = 0
                if byte == PLUS and now - idle_from >= guard:
                    self.plus, self.last_plus = 1, now
                    self.last_byte = now
                    continue
            out.append(byte)
            self.last_byte = now
        if out:
            self.owner.forward(self.link, bytes(out))
        if self.plus == 3:
            self.timer = self.owner.ctx.call_later(guard, self._escape)
        elif self.plus:
            self.timer = self.owner.ctx.call_later(guard, self._flush_plus)
        return None

    def _flush_plus(self) -> None:
        self.timer = None
        if self.active and self.plus:
            self.owner.forward(self.link, b"+" * self.plus)
            self.plus = 0

    def _escape(self) -> None:
        self.timer = None
        if not self.active:
            return
        self.owner.leave_transparent()
        self.owner.ctx.end_data()
        self.owner.ctx.final("OK")

    def stop(self) -> None:
        self.active = False
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class CipCommandSet(CommandSet):
    """The SIM800-compatible TCP/IP commands and their state (one instance per emulated module)."""

    def __init__(self, ctx: ModemContext) -> None:
        super().__init__(ctx)
        self.links: list[_Link | None] = [None] * MAX_LINKS
        self.server: TcpListener | None = None
        self.server_port = 0
        self.pending_send: _Send | None = None
        self.transparent: _Transparent | None = None
        self._asleep_queue: list[Callable[[], None]] = []
        self._guard_time: float | None = None
        self._reset_settings()

    # ------------------------------------------------------------------------------------------ config

    @property
    def guard_time(self) -> float:
        """Transparent-mode ``+++`` guard time in seconds (default 1.0, note 6.14.4).

        Set it with ``Emulator(guard_time=0.2)`` or on the instance
        (``emu.command_sets["cip"].guard_time = 0.2``). Survives reboots.
        """
        return DEFAULT_GUARD_TIME if self._guard_time is None else self._guard_time

    @guard_time.setter
    def guard_time(self, seconds: float) -> None:
        if not seconds > 0:
            raise ValueError(f"guard time must be a positive number of seconds, got {seconds!r}")
        self._guard_time = float(seconds)

    def _reset_settings(self) -> None:
        self.bearer = Bearer.INITIAL
        self.processing = False
        self.mux = 0
        self.mode = 0  # CIPMODE
        self.apn: str | None = None
        self.user = ""
        self.password = ""
        self.qsend = 0
        self.head = 0
        self.srip = 0
        self.showtp = 0
        self.hexs = 0
        self.sprt = 1
        self.ats_mode = 0
        self.ats_time = 1
        self.rxget = 0
        self.udpmode = [0] * MAX_LINKS
        self.lport_tcp = [0] * MAX_LINKS
        self.lport_udp = [0] * MAX_LINKS
        self.tka = (0, 7200, 75, 9)

    def register(self, registry: Registry) -> None:
        """Register the CIP handlers."""
        table: dict[str, Handler] = {
            "+CIPMUX": self.h_cipmux,
            "+CSTT": self.h_cstt,
            "+CIICR": self.h_ciicr,
            "+CIFSR": self.h_cifsr,
            "+CIFSREX": self.h_cifsrex,
            "+CIPSTATUS": self.h_cipstatus,
            "+CIPSTART": self.h_cipstart,
            "+CIPSEND": self.h_cipsend,
            "+CIPQSEND": self.h_cipqsend,
            "+CIPACK": self.h_cipack,
            "+CIPCLOSE": self.h_cipclose,
            "+CIPSHUT": self.h_cipshut,
            "+CLPORT": self.h_clport,
            "+CIPHEAD": self.h_flag("head"),
            "+CIPSRIP": self.h_flag("srip"),
            "+CIPSHOWTP": self.h_flag("showtp"),
            "+CIPHEXS": self.h_flag("hexs"),
            "+CIPATS": self.h_cipats,
            "+CIPSPRT": self.h_cipsprt,
            "+CIPSERVER": self.h_cipserver,
            "+CIPCSGP": self.h_cipcsgp,
            "+CIPUDPMODE": self.h_cipudpmode,
            "+CIPRXGET": self.h_ciprxget,
            "+CIPTKA": self.h_ciptka,
            "+CIPMODE": self.h_cipmode,
            "+CIPCHAN": self.h_cipchan,
            "O": self.h_ato,
        }
        for name, fn in table.items():
            if registry.lookup(name) is not None:
                _LOGGER.warning("emulator: %s is already registered; the CIP set leaves it alone", name)
                continue
            registry.register(name, fn)

    # ------------------------------------------------------------------------------------- lifecycle

    def on_reboot(self) -> None:
        """Everything is lost; settings return to their defaults."""
        self._drop_all(report=False)
        self._reset_settings()

    def on_detach(self) -> None:
        """PS service lost: links report ``CLOSED``, then ``+PDP: DEACT`` (state PDP DEACT until CIPSHUT)."""
        if self.bearer not in (Bearer.GPRSACT, Bearer.STATUS):
            return  # no PDP context was active (IP INITIAL / IP START) or it is already gone
        self._drop_all(report=True)
        self.bearer = Bearer.PDP_DEACT
        self.ctx.urc("+PDP: DEACT")

    def on_psm_enter(self, retention: bool) -> None:
        """The UART is dead: a prompt or data mode ends. Without retention the CIP layer is gone."""
        self.leave_transparent()
        self._cancel_send()
        if not retention:
            self.on_reboot()

    def on_ready(self) -> None:
        """Registered again after the wake: report what arrived while asleep (only kept with retention)."""
        if self._asleep_queue:
            self.ctx.call_later(0, self._flush_asleep_queue)

    def _flush_asleep_queue(self) -> None:
        queued, self._asleep_queue = self._asleep_queue, []
        for fn in queued:
            fn()

    async def aclose(self) -> None:
        """Close the real sockets."""
        self._drop_all(report=False)

    def _drop_all(self, *, report: bool, abort: bool = True) -> None:
        """Forget every link and the server; ``abort`` resets TCP peers (state lost) instead of closing."""
        owned_data_mode = self.transparent is not None or self.pending_send is not None
        self.leave_transparent()
        self._cancel_send()
        if owned_data_mode and self.ctx.in_data_mode:
            self.ctx.end_data()
        self._close_server()
        for i, link in enumerate(self.links):
            if link is None:
                continue
            was_open = link.active
            link.close_sockets(abort=abort)
            link.state = LinkState.CLOSED
            if report and was_open:
                self.ctx.urc(self._numbered(link.n, "CLOSED"))
            self.links[i] = None
        self.processing = False
        self._asleep_queue.clear()

    def _cancel_send(self) -> None:
        """Drop a CIPSEND waiting for its data (nothing is sent, no result code)."""
        if self.pending_send is not None:
            self.pending_send.cancel()

    def _close_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            server.close()

    # ----------------------------------------------------------------------------------- helpers

    def _numbered(self, n: int, text: str) -> str:
        return f"{n}, {text}" if self.mux else text

    def _state_text(self) -> str:
        if self.bearer is not Bearer.STATUS:
            return str(self.bearer.value)
        if self.mux:
            return "IP PROCESSING" if self.processing else "IP STATUS"
        link = self.links[0]
        if link is not None and (link.active or self.server is None):
            if link.state is LinkState.CONNECTED:
                return "CONNECT OK"
            return f"{link.proto} {link.state.value}"
        if self.server is not None:
            return "SERVER LISTENING"
        return "IP STATUS"

    def _link_line(self, prefix: str, n: int) -> str:
        link = self.links[n]
        if link is None:
            return f'{prefix}{n},,"","","","INITIAL"'
        return f'{prefix}{n},0,"{link.proto}","{link.ip}","{link.port}","{link.state.value}"'

    def _link_arg(self, cmd: ParsedCommand, index: int) -> int:
        return cmd.int_arg(index, 0, MAX_LINKS - 1)

    def _leading_link(self, cmd: ParsedCommand) -> tuple[int, int]:
        """``(<n>, index of the next argument)``: multi link puts the link number first, single link is 0."""
        if self.mux:
            return self._link_arg(cmd, 0), 1
        return 0, 0

    def _link_tag(self, n: int) -> str:
        """``"<n>,"`` before a value in multi link, nothing in single link (``DATA ACCEPT: 0,5``)."""
        return f"{n}," if self.mux else ""

    def _per_link(self, name: str, value: Callable[[int], str]) -> list[str]:
        """Read-form lines: ``<name>: <n>,<value>`` per link 0-5 (multi link), else ``<name>: <value>``."""
        return [f"{name}: {self._link_tag(n)}{value(n)}" for n in range(MAX_LINKS if self.mux else 1)]

    def _open_link(self, n: int) -> _Link:
        link = self.links[n]
        if link is None or link.state is not LinkState.CONNECTED:
            raise CommandError(reason=f"link {n} is not connected")
        return link

    def _put_link(self, link: _Link) -> None:
        """Give ``link`` its number (the closed link it replaces lets go of its sockets)."""
        old = self.links[link.n]
        if old is not None:
            old.close_sockets()
        self.links[link.n] = link

    def _transparent_on(self, link: _Link) -> bool:
        """True while ``link`` is in transparent data mode."""
        return self.transparent is not None and self.transparent.link is link

    def _bring_up_implicitly(self) -> None:
        """Single link, IP INITIAL: CIPSTART/CIPSERVER do CSTT+CIICR+CIFSR themselves (SIM800)."""
        if self.bearer is Bearer.INITIAL and not self.mux:
            if not self.ctx.state.has_service:
                raise CommandError(reason="no PS service")
            self.bearer = Bearer.STATUS

    def _activity(self) -> None:
        """Data moved: restart the PSM inactivity timer (``Emulator.activity``; not in the base contract)."""
        activity = getattr(self.ctx, "activity", None)
        if callable(activity):
            activity()

    def _has_active_link(self) -> bool:
        return any(link is not None and link.active for link in self.links)

    @staticmethod
    def _onoff(cmd: ParsedCommand, index: int = 0) -> int:
        return cmd.int_arg(index, 0, 1)

    # ------------------------------------------------------------------------------------ handlers

    def h_cipmux(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPMUX=<0|1>``: only in IP INITIAL; 1 is refused while CIPMODE=1."""
        if cmd.kind == "read":
            ctx.reply(f"+CIPMUX: {self.mux}")
        elif cmd.kind == "test":
            ctx.reply("+CIPMUX: (0,1)")
        elif cmd.kind == "set":
            cmd.check_count(1)
            value = self._onoff(cmd)
            if self.bearer is not Bearer.INITIAL or self.server is not None or self._has_active_link():
                raise CommandError(reason="CIPMUX only in IP INITIAL")
            if value == 1 and self.mode == 1:
                raise CommandError(reason="transparent mode needs single link")
            self.mux = value
        else:
            raise CommandError(reason="AT+CIPMUX needs a value")
        ctx.ok()

    def h_cstt(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CSTT[="<apn>"[,"<user>","<pwd>"]]``: IP INITIAL → IP START."""
        if cmd.kind == "read":
            ctx.reply(f"+CSTT: {self._apn_fields()}")
        elif cmd.kind == "test":
            ctx.reply('+CSTT: "APN","USER","PWD"')
        else:
            if cmd.kind == "set":
                cmd.check_count(1, 3)
                apn, user, pwd = (
                    cmd.str_arg(0, default=""),
                    cmd.str_arg(1, default=""),
                    cmd.str_arg(2, default=""),
                )
            else:
                apn, user, pwd = ctx.state.apn, "", ""
            if self.bearer is not Bearer.INITIAL:
                raise CommandError(reason=f"CSTT in {self.bearer.value}")
            self.apn, self.user, self.password = apn or ctx.state.apn, user, pwd
            self.bearer = Bearer.START
        ctx.ok()

    def _apn_fields(self) -> str:
        """``"<apn>","<user>","<pwd>"`` of the CSTT/CIPCSGP read forms (the module's APN until CSTT)."""
        apn = self.apn if self.apn is not None else self.ctx.state.apn
        return f'"{apn}","{self.user}","{self.password}"'

    def h_ciicr(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIICR``: IP START → IP CONFIG → IP GPRSACT (needs PS service)."""
        if cmd.kind != "exec":
            raise CommandError(reason="AT+CIICR takes no parameters")
        if self.bearer is not Bearer.START:
            raise CommandError(reason=f"CIICR in {self.bearer.value}")
        if not ctx.state.has_service:
            raise CommandError(reason="no PS service")
        self.bearer = Bearer.GPRSACT
        ctx.ok()

    def _require_ip(self) -> None:
        if self.bearer is Bearer.GPRSACT:
            self.bearer = Bearer.STATUS
        elif self.bearer is not Bearer.STATUS:
            raise CommandError(reason=f"no IP address in {self.bearer.value}")

    def h_cifsr(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIFSR``: the local IP alone (no OK); IP GPRSACT → IP STATUS."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "exec":
            raise CommandError(reason="AT+CIFSR takes no parameters")
        self._require_ip()
        ctx.reply(ctx.state.local_ip)

    def h_cifsrex(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIFSREX``: ``+CIFSREX: <ip>`` then OK."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "exec":
            raise CommandError(reason="AT+CIFSREX takes no parameters")
        self._require_ip()
        ctx.reply(f"+CIFSREX: {ctx.state.local_ip}")
        ctx.ok()

    def h_cipstatus(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPSTATUS``: OK, then ``STATE:`` (and ``S:``/``C:`` lines in multi link)."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind == "set":
            if not self.mux:
                raise CommandError(reason="AT+CIPSTATUS=<n> is for multi link")
            cmd.check_count(1)
            n = self._link_arg(cmd, 0)
            ctx.reply(self._link_line("+CIPSTATUS: ", n))
            ctx.ok()
            return
        if cmd.kind != "exec":
            raise CommandError(reason="AT+CIPSTATUS? is not supported")
        ctx.ok()
        lines = [f"STATE: {self._state_text()}"]
        if self.mux:
            if self.server is not None:
                lines.append(f'S: 0,0,"{self.server_port}","LISTENING"')
            lines.extend(self._link_line("C: ", n) for n in range(MAX_LINKS))
        ctx.reply(*lines)

    # ---------------------------------------------------------------------------------- CIPSTART

    def h_cipstart(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPSTART=[<n>,]"TCP|UDP","<ip|name>","<port>"``: OK, then CONNECT OK / CONNECT FAIL."""
        if cmd.kind == "test":
            ctx.reply('+CIPSTART: ("TCP","UDP"),("(0-255).(0-255).(0-255).(0-255)"),(1-65535)')
            ctx.ok()
            return
        if cmd.kind != "set":
            raise CommandError(reason="AT+CIPSTART needs parameters")
        n, base = self._leading_link(cmd)
        cmd.check_count(3 + base)
        proto = cmd.str_arg(base).upper()
        if proto not in ("TCP", "UDP"):
            raise ParseError(f"CIPSTART mode must be TCP or UDP, got {proto!r}")
        host = cmd.str_arg(base + 1).strip()
        if not host:
            raise ParseError("CIPSTART address missing")
        port = cmd.int_arg(base + 2, 1, 65535)
        self._bring_up_implicitly()
        if self.bearer is not Bearer.STATUS:
            raise CommandError(reason=f"CIPSTART in {self.bearer.value}")
        old = self.links[n]
        if old is not None and old.active:
            ctx.reply(self._numbered(n, "ALREADY CONNECT"))
            raise CommandError(reason="already connected")
        if not self.mux and self.server is not None:
            raise CommandError(reason="single link is in server mode")
        link = _Link(n=n, proto=proto, ip=host, port=port)
        self._put_link(link)
        self.processing = True
        ctx.ok()
        ctx.spawn(self._connect(link, host))

    async def _connect(self, link: _Link, host: str) -> None:
        ctx = self.ctx
        ip = host
        if not is_ipv4(host):
            found = ctx.net.resolve(host)
            if not found:
                self._connect_failed(link)
                return
            ip = found[0]
        link.ip = ip
        link.dest = (ip, link.port)
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                if link.proto == "TCP":
                    tcp = await ctx.net.open_tcp(
                        ip,
                        link.port,
                        on_data=lambda data: self._received(link, data, (link.ip, link.port)),
                        on_close=lambda exc: self._remote_closed(link, exc),
                    )
                    if not self._still_connecting(link):
                        tcp.close()
                        return
                    link.tcp = tcp
                else:
                    link.extended = bool(self.udpmode[link.n])
                    udp = await ctx.net.open_udp(
                        on_datagram=lambda data, addr: self._datagram(link, data, addr),
                        local_port=self.lport_udp[link.n],
                    )
                    if not self._still_connecting(link):
                        udp.close()
                        return
                    link.udp = udp
        except (OSError, TimeoutError) as err:
            _LOGGER.debug("CIPSTART %s:%s failed: %s", ip, link.port, err)
            self._connect_failed(link)
            return
        link.state = LinkState.CONNECTED
        ctx.urc(self._numbered(link.n, "CONNECT OK"))

    def _still_connecting(self, link: _Link) -> bool:
        """False once the CIPSTART was overtaken (CIPCLOSE, CIPSHUT, reboot while connecting)."""
        return self.links[link.n] is link and link.state is LinkState.CONNECTING

    def _connect_failed(self, link: _Link) -> None:
        if not self._still_connecting(link):
            return
        link.state = LinkState.CLOSED
        self.ctx.urc(self._numbered(link.n, "CONNECT FAIL"))

    # ------------------------------------------------------------------------------------- receive

    def _datagram(self, link: _Link, data: bytes, sender: tuple[str, int]) -> None:
        if link.state is not LinkState.CONNECTED:
            return
        if not (link.extended or self.udpmode[link.n]) and sender != (link.ip, link.port):
            _LOGGER.debug("UDP link %d drops a datagram from %s:%s", link.n, *sender)
            return
        self._received(link, data, sender)

    def _received(self, link: _Link, data: bytes, sender: tuple[str, int]) -> None:
        if self.links[link.n] is not link or not data:
            return
        if self.ctx.state.psm_state is PsmState.ASLEEP:
            self._asleep_queue.append(lambda: self._received(link, data, sender))
            return
        self._activity()
        if self._transparent_on(link):
            self.ctx.write(data)
            return
        if self.mode == 1 and not self.mux and link.n == 0:
            link.held += data  # transparent link in command state: kept for ATO
            return
        if self.rxget:
            was_empty = not link.rxbuf
            link.rxbuf += data
            if was_empty:
                self.ctx.urc(f"+CIPRXGET: 1,{link.n}" if self.mux else "+CIPRXGET: 1")
            return
        payload = data.hex().upper().encode() if self.hexs else data
        if self.srip:
            self.ctx.urc(f"RECV FROM: {sender[0]}:{sender[1]}")
        if self.mux:
            self.ctx.write(f"\r\n+RECEIVE,{link.n},{len(data)}:\r\n".encode() + payload)
        elif self.head:
            tp = f",{link.proto}" if self.showtp else ""
            self.ctx.write(f"\r\n+IPD,{len(data)}{tp}:".encode() + payload)
        else:
            self.ctx.write(payload)

    def _remote_closed(self, link: _Link, exc: BaseException | None) -> None:
        if self.links[link.n] is not link or link.state is LinkState.CLOSED:
            return
        if self.ctx.state.psm_state is PsmState.ASLEEP:
            self._asleep_queue.append(lambda: self._remote_closed(link, exc))
            return
        _LOGGER.debug("link %d closed by the peer (%s)", link.n, exc)
        link.state = LinkState.CLOSED
        if self._transparent_on(link):
            self.leave_transparent()
            self.ctx.end_data()
        self.ctx.urc(self._numbered(link.n, "CLOSED"))

    # ---------------------------------------------------------------------------------------- send

    def h_cipsend(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPSEND[=[<n>,]<len>]``: ``> `` prompt, data, Ctrl+Z (or exactly len bytes); ESC cancels."""
        if cmd.kind == "test":
            ctx.reply(
                f"+CIPSEND: (0-{MAX_LINKS - 1}),{MAX_SEND_SIZE}" if self.mux else f"+CIPSEND: {MAX_SEND_SIZE}"
            )
            ctx.ok()
            return
        if cmd.kind == "read":
            ctx.reply(*self._per_link("+CIPSEND", lambda n: str(self._max_size(n))))
            ctx.ok()
            return
        if self.mode == 1:
            raise CommandError(reason="CIPSEND is not used in transparent mode")
        fixed: int | None = None
        if self.mux:
            if cmd.kind != "set":
                raise CommandError(reason="multi link: AT+CIPSEND=<n>[,<len>]")
            cmd.check_count(1, 2)
            n = self._link_arg(cmd, 0)
            if len(cmd.args) == 2:
                fixed = cmd.int_arg(1, 1, MAX_SEND_SIZE)
        else:
            n = 0
            if cmd.kind == "set":
                cmd.check_count(1)
                fixed = cmd.int_arg(0, 1, MAX_SEND_SIZE)
        link = self._open_link(n)
        send = _Send(self, link, fixed)
        self.pending_send = send
        if self.sprt == 1:
            ctx.write(b"\r\n> ")
        ctx.expect_data(send.feed)
        if fixed is None and self.ats_mode:
            send.timer = ctx.call_later(float(self.ats_time), send.timeout)

    def _max_size(self, n: int) -> int:
        link = self.links[n]
        return MAX_SEND_SIZE if link is not None and link.state is LinkState.CONNECTED else 0

    def transmit(self, link: _Link, data: bytes, *, overflow: bool = False) -> None:
        """Hand ``data`` to the link's peer and report SEND OK / DATA ACCEPT / SEND FAIL.

        UDP and quick-send results are immediate; a normal TCP send reports ``SEND OK`` once the data was
        handed to the peer's socket (so a command typed before it may be answered first).
        """
        usable = not overflow and link.state is LinkState.CONNECTED and self.links[link.n] is link
        self._activity()
        if usable and link.udp is not None:
            if data:
                link.udp.sendto(data, link.dest)
                link.txlen += len(data)
            self._sent(link, len(data))
        elif usable and link.tcp is not None and not link.tcp.closed:
            link.tcp.send(data)
            link.txlen += len(data)
            if self.qsend:
                self._sent(link, len(data))
            self.ctx.spawn(self._acknowledge(link, len(data), report=not self.qsend))
        else:
            self.ctx.final(self._numbered(link.n, "SEND FAIL"))

    def _sent(self, link: _Link, size: int) -> None:
        if self.qsend:
            self.ctx.final(f"DATA ACCEPT: {self._link_tag(link.n)}{size}")
        elif self.sprt != 2:
            self.ctx.final(self._numbered(link.n, "SEND OK"))

    async def _acknowledge(self, link: _Link, size: int, *, report: bool) -> None:
        """TCP: the data counts as acknowledged once the peer's socket took it."""
        assert link.tcp is not None
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                await link.tcp.drain()
        except (OSError, TimeoutError) as err:
            _LOGGER.debug("send on link %d failed: %s", link.n, err)
            if report:
                self.ctx.final(self._numbered(link.n, "SEND FAIL"))
            return
        if link.tcp.closed and report:
            self.ctx.final(self._numbered(link.n, "SEND FAIL"))
            return
        link.acklen += size
        if report:
            self._sent(link, size)

    def forward(self, link: _Link, data: bytes) -> None:
        """Transparent mode: bytes from the UART go to the peer as they come."""
        if link.state is not LinkState.CONNECTED:
            return
        self._activity()
        if link.tcp is not None and not link.tcp.closed:
            link.tcp.send(data)
            link.txlen += len(data)
            link.acklen += len(data)
        elif link.udp is not None:
            link.udp.sendto(data, link.dest)
            link.txlen += len(data)

    def h_cipqsend(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPQSEND=<0|1>``: 1 answers ``DATA ACCEPT`` instead of ``SEND OK``."""
        reply_setting(ctx, cmd, self, "qsend")

    def h_cipack(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPACK[=<n>]`` → ``+CIPACK: <txlen>,<acklen>,<nacklen>``."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if self.mux:
            if cmd.kind != "set":
                raise CommandError(reason="multi link: AT+CIPACK=<n>")
            cmd.check_count(1)
            n = self._link_arg(cmd, 0)
        else:
            if cmd.kind != "exec":
                raise CommandError(reason="single link: AT+CIPACK")
            n = 0
        link = self.links[n]
        if link is None or link.state is LinkState.CONNECTING:
            raise CommandError(reason=f"no connection {n}")
        ack = link.acklen if link.proto == "TCP" else 0
        ctx.reply(f"+CIPACK: {link.txlen},{ack},{link.txlen - ack}")
        ctx.ok()

    # --------------------------------------------------------------------------------------- close

    def h_cipclose(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPCLOSE[=[<n>,]<mode>]`` (0 slow, 1 quick) → ``CLOSE OK`` / ``<n>, CLOSE OK``."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if self.mux:
            if cmd.kind != "set":
                raise CommandError(reason="multi link: AT+CIPCLOSE=<n>[,<mode>]")
            cmd.check_count(1, 2)
            n = self._link_arg(cmd, 0)
            quick = cmd.int_arg(1, 0, 1, default=0)
        else:
            if cmd.kind == "set":
                cmd.check_count(1)
                quick = self._onoff(cmd)
            elif cmd.kind == "exec":
                quick = 0
            else:
                raise CommandError(reason="AT+CIPCLOSE? is not supported")
            n = 0
        link = self.links[n]
        if link is None or not link.active:
            raise CommandError(reason=f"link {n} is not open")
        link.state = LinkState.CLOSING
        link.close_sockets(abort=bool(quick))
        link.state = LinkState.CLOSED
        if self._transparent_on(link):
            self.leave_transparent()
        ctx.final(self._numbered(n, "CLOSE OK"))

    def h_cipshut(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPSHUT``: close everything, deactivate the bearer → IP INITIAL, ``SHUT OK``."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "exec":
            raise CommandError(reason="AT+CIPSHUT takes no parameters")
        self._drop_all(report=False, abort=False)
        self.bearer = Bearer.INITIAL
        ctx.final("SHUT OK")

    # --------------------------------------------------------------------------------- settings

    def h_flag(self, attr: str) -> Callable[[ModemContext, ParsedCommand], None]:
        """A 0/1 setting with read and test forms (CIPHEAD, CIPSRIP, CIPSHOWTP, CIPHEXS)."""

        def handle(ctx: ModemContext, cmd: ParsedCommand) -> None:
            reply_setting(ctx, cmd, self, attr)

        return handle

    def h_cipsprt(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPSPRT=<0|1|2>``: prompt and SEND OK style."""
        reply_setting(ctx, cmd, self, "sprt", test="(0,1,2)", hi=2)

    def h_cipats(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPATS=<mode>[,<time>]``: send the prompt's data automatically after <time> seconds."""
        if cmd.kind == "read":
            ctx.reply(f"+CIPATS: {self.ats_mode},{self.ats_time}")
        elif cmd.kind == "test":
            ctx.reply("+CIPATS: (0,1),(1-100)")
        elif cmd.kind == "set":
            cmd.check_count(1, 2)
            mode = self._onoff(cmd)
            seconds = cmd.int_arg(1, 1, 100, default=self.ats_time)
            self.ats_mode, self.ats_time = mode, seconds
        else:
            raise CommandError(reason="AT+CIPATS needs a value")
        ctx.ok()

    def h_clport(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CLPORT=[<n>,]"TCP"|"UDP",<port>``; read ``+CLPORT: <tcp>,<udp>``."""
        if cmd.kind == "read":
            ctx.reply(*self._per_link("+CLPORT", lambda n: f"{self.lport_tcp[n]},{self.lport_udp[n]}"))
        elif cmd.kind == "test":
            ctx.reply('+CLPORT: ("TCP","UDP"),(0-65535)')
        elif cmd.kind == "set":
            n, base = self._leading_link(cmd)
            cmd.check_count(2 + base)
            proto = cmd.str_arg(base).upper()
            port = cmd.int_arg(base + 1, 0, 65535)
            link = self.links[n]
            if link is not None and link.active:
                raise CommandError(reason="CLPORT with an open connection")
            if proto == "TCP":
                self.lport_tcp[n] = port
            elif proto == "UDP":
                self.lport_udp[n] = port
            else:
                raise ParseError(f"CLPORT mode must be TCP or UDP, got {proto!r}")
        else:
            raise CommandError(reason="AT+CLPORT needs a value")
        ctx.ok()

    def h_cipcsgp(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPCSGP=1[,"<apn>","<user>","<pwd>"]`` (GPRS only; CSD mode 0 is refused)."""
        if cmd.kind == "read":
            ctx.reply(f"+CIPCSGP: 1,{self._apn_fields()}")
        elif cmd.kind == "test":
            ctx.reply('+CIPCSGP: 1-GPRS,("APN"),("USER"),("PWD")')
        elif cmd.kind == "set":
            cmd.check_count(1, 4)
            if cmd.int_arg(0, 0, 1) != 1:
                raise CommandError(reason="CSD is not available on NB-IoT")
            if len(cmd.args) > 1:
                self.apn = cmd.str_arg(1, default="") or None
                self.user = cmd.str_arg(2, default="")
                self.password = cmd.str_arg(3, default="")
        else:
            raise CommandError(reason="AT+CIPCSGP needs a value")
        ctx.ok()

    def h_ciptka(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPTKA=<mode>[,<idle>[,<interval>[,<count>]]]``."""
        if cmd.kind == "read":
            ctx.reply("+CIPTKA: {},{},{},{}".format(*self.tka))
        elif cmd.kind == "test":
            ctx.reply("+CIPTKA: (0,1),(30-7200),(30-600),(1-9)")
        elif cmd.kind == "set":
            cmd.check_count(1, 4)
            self.tka = (
                self._onoff(cmd),
                cmd.int_arg(1, 30, 7200, default=self.tka[1]),
                cmd.int_arg(2, 30, 600, default=self.tka[2]),
                cmd.int_arg(3, 1, 9, default=self.tka[3]),
            )
        else:
            raise CommandError(reason="AT+CIPTKA needs a value")
        ctx.ok()

    def h_ciprxget(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPRXGET=<mode>[,<n>][,<len>]`` (note 6.10.2)."""
        if cmd.kind == "read":
            ctx.reply(f"+CIPRXGET: {self.rxget}")
            ctx.ok()
            return
        if cmd.kind == "test":
            ctx.reply("+CIPRXGET: (0-4),(1-1460)")
            ctx.ok()
            return
        if cmd.kind != "set":
            raise CommandError(reason="AT+CIPRXGET needs a mode")
        mode = cmd.int_arg(0, 0, 4)
        if mode in (0, 1):
            cmd.check_count(1)
            if self._has_active_link():
                raise CommandError(reason="CIPRXGET mode must be set before connecting")
            self.rxget = mode
            ctx.ok()
            return
        if not self.rxget:
            raise CommandError(reason="manual receive is off (AT+CIPRXGET=1 first)")
        base = 2 if self.mux else 1
        if mode == 4:
            cmd.check_count(base)
        else:
            cmd.check_count(base, base + 1)
        n = self._link_arg(cmd, 1) if self.mux else 0
        link = self.links[n]
        if link is None:
            raise CommandError(reason=f"no connection {n}")
        tag = f"{mode},{self._link_tag(n)}"
        if mode == 4:
            ctx.reply(f"+CIPRXGET: {tag}{len(link.rxbuf)}")
            ctx.ok()
            return
        limit = RXGET_MAX_BIN if mode == 2 else RXGET_MAX_HEX
        want = cmd.int_arg(base, 1, limit, default=limit)
        reply_rx_read(ctx, f"+CIPRXGET: {tag}", link.rxbuf, want, as_hex=mode == 3)
        ctx.ok()

    # ---------------------------------------------------------------------------------- server

    async def h_cipserver(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPSERVER=1,<port>`` → OK, ``SERVER OK``; ``AT+CIPSERVER=0`` → OK, ``SERVER CLOSE``."""
        if cmd.kind == "read":
            ctx.reply(f"+CIPSERVER: 1,{self.server_port}" if self.server is not None else "+CIPSERVER: 0")
            ctx.ok()
            return
        if cmd.kind == "test":
            ctx.reply("+CIPSERVER: (0-CLOSE SERVER,1-OPEN SERVER),(1-65535)")
            ctx.ok()
            return
        if cmd.kind != "set":
            raise CommandError(reason="AT+CIPSERVER needs a mode")
        mode = cmd.int_arg(0, 0, 1)
        if mode == 0:
            cmd.check_count(1)
            if self.server is None:
                raise CommandError(reason="no server is listening")
            self._close_server()
            ctx.ok()
            ctx.urc("SERVER CLOSE")
            return
        cmd.check_count(2)
        port = cmd.int_arg(1, 1, 65535)
        if self.mode == 1:
            raise CommandError(reason="no server in transparent mode")
        self._bring_up_implicitly()
        if self.bearer is not Bearer.STATUS or self.server is not None:
            raise CommandError(reason=f"CIPSERVER in {self._state_text()}")
        if not self.mux and self.links[0] is not None and self.links[0].active:
            raise CommandError(reason="single link is busy")
        try:
            async with asyncio.timeout(OPEN_TIMEOUT):
                listener = await ctx.net.listen_tcp(port, self._accepted)
        except (OSError, TimeoutError) as err:
            raise CommandError(reason=f"cannot listen: {err}") from None
        self.server, self.server_port = listener, port
        self.processing = True
        ctx.ok()
        ctx.urc("SERVER OK")

    def _accepted(self, tcp: TcpLink) -> None:
        n = self._free_link() if self.mux else (0 if not self._has_active_link() else None)
        if n is None or self.server is None:
            tcp.close(abort=True)
            return
        ip, port = tcp.peer
        link = _Link(n=n, proto="TCP", ip=ip, port=port, state=LinkState.CONNECTED, tcp=tcp, from_server=True)
        self._put_link(link)
        tcp.on_data = lambda data: self._received(link, data, (link.ip, link.port))
        tcp.on_close = lambda exc: self._remote_closed(link, exc)
        self.ctx.urc(self._numbered(n, f"REMOTE IP: {ip}"))

    def _free_link(self) -> int | None:
        for n, link in enumerate(self.links):
            if link is None or not link.active:
                return n
        return None

    # -------------------------------------------------------------------------------- UDP extended

    def h_cipudpmode(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPUDPMODE=[<n>,]<0|1>`` / ``=[<n>,]2,"<ip>",<port>`` (note 6.4)."""
        if cmd.kind == "read":
            ctx.reply(*self._per_link("+CIPUDPMODE", self._udpmode_value))
            ctx.ok()
            return
        if cmd.kind == "test":
            ctx.reply('+CIPUDPMODE: (0-2),("(0-255).(0-255).(0-255).(0-255)"),(1-65535)')
            ctx.ok()
            return
        if cmd.kind != "set":
            raise CommandError(reason="AT+CIPUDPMODE needs a mode")
        n, base = self._leading_link(cmd)
        mode = cmd.int_arg(base, 0, 2)
        if mode in (0, 1):
            cmd.check_count(base + 1)
            self.udpmode[n] = mode
            link = self.links[n]
            if link is not None and link.proto == "UDP":
                link.extended = bool(mode)
                if not mode:
                    link.dest = (link.ip, link.port)
            ctx.ok()
            return
        cmd.check_count(base + 3)
        ip = cmd.str_arg(base + 1)
        port = cmd.int_arg(base + 2, 1, 65535)
        if not is_ipv4(ip):
            raise ParseError(f"CIPUDPMODE: not an IPv4 address: {ip!r}")
        link = self.links[n]
        if (
            self.udpmode[n] != 1
            or link is None
            or link.proto != "UDP"
            or link.state is not LinkState.CONNECTED
        ):
            raise CommandError(reason="CIPUDPMODE=2 needs extended mode on a UDP connection")
        link.dest = (ip, port)
        ctx.ok()

    def _udpmode_value(self, n: int) -> str:
        if not self.udpmode[n]:
            return "0"
        link = self.links[n]
        if link is None or link.proto != "UDP":
            return "1"
        return f'1,"{link.dest[0]}",{link.dest[1]}'

    # ------------------------------------------------------------------------------- transparent

    def h_cipmode(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPMODE=<0|1>``: 1 (transparent) only with CIPMUX=0 and no open connection."""
        if cmd.kind == "set":
            cmd.check_count(1)
            value = self._onoff(cmd)
            if value == 1 and self.mux:
                raise CommandError(reason="transparent mode needs CIPMUX=0")
            if self._has_active_link() or self.server is not None:
                raise CommandError(reason="CIPMODE with an open connection")
            self.mode = value
            ctx.ok()
            return
        reply_setting(ctx, cmd, self, "mode")

    def h_cipchan(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``AT+CIPCHAN``: enter transparent data mode on the connected single link (``CONNECT``)."""
        if cmd.kind == "test":
            ctx.ok()
            return
        if cmd.kind != "exec":
            raise CommandError(reason="AT+CIPCHAN takes no parameters")
        self._enter_transparent(ctx)

    def h_ato(self, ctx: ModemContext, cmd: ParsedCommand) -> None:
        """``ATO``: back to transparent data mode (``CONNECT``) while the connection lasts."""
        if cmd.args and cmd.args[0].text not in ("", "0"):
            raise CommandError(reason="ATO takes no parameters")
        self._enter_transparent(ctx)

    def _enter_transparent(self, ctx: ModemContext) -> None:
        link = self.links[0]
        if self.mode != 1 or self.mux or link is None or link.state is not LinkState.CONNECTED:
            raise CommandError(reason="no transparent connection")
        if self.transparent is not None:
            raise CommandError(reason="already in data mode")
        ctx.final("CONNECT")
        held, link.held = bytes(link.held), bytearray()
        if held:
            ctx.write(held)
        self.transparent = _Transparent(self, link)
        ctx.expect_data(self.transparent.feed)

    def leave_transparent(self) -> None:
        """Stop transparent data mode bookkeeping (the caller ends the core's data mode if needed)."""
        if self.transparent is not None:
            self.transparent.stop()
            self.transparent = None


def create_command_set(ctx: ModemContext) -> CipCommandSet:
    """Entry point used by the emulator core: the CIP command set bound to ``ctx``."""
    return CipCommandSet(ctx)
