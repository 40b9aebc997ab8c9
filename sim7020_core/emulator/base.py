"""Framework contract for the emulator's command sets.

This module is the small, stable surface that command sets (the native ``CSO*`` commands in ``native.py``,
the SIM800-compatible ``CIP*`` commands in ``cip.py``) are written against. The emulator core (``core.py``)
implements it. Nothing here knows about the driver: the emulator is written from the reference documents.

Pieces
======

``ParsedCommand`` / ``Arg``
    One AT command line split up: ``name`` (upper case: ``"+CIPSTART"``, ``"E"``, ``"I"``, ``"&F"``,
    ``"*MCGDEFCONT"``, ``""`` for a bare ``AT``), ``kind`` (``"exec"``, ``"read"`` for ``?``, ``"test"`` for
    ``=?``, ``"set"`` for ``=``), ``args`` (a tuple of :class:`Arg`, each remembering whether it was quoted
    and its text; an omitted argument is an empty unquoted ``Arg``) and ``raw`` (the line without ``AT``).
    Basic commands keep their numeric suffix as the single argument: ``ATE0`` is name ``"E"``, kind
    ``"exec"``, args ``(Arg("0"),)``. Parse with :func:`parse_command`.

``Registry``
    Maps command names to handlers. ``registry.register("+CIPSTART", fn)`` or ``@registry.handler(...)``.
    A handler is ``fn(ctx, cmd)`` and may be a plain function or a coroutine function; it answers through
    ``ctx``. Raising :class:`CommandError` (``CommandError(cme=50)``) answers ``ERROR`` / ``+CME ERROR``;
    any other exception is logged and answered with ``ERROR`` (the emulator never crashes on input).
    Commands run one at a time: while an async handler runs, further input waits.

``ModemContext`` (``ctx``)
    What a handler may use: ``reply(*lines)``, ``reply_block(*lines)``, ``ok()``, ``error(cme=None)``,
    ``final(text)``, ``urc(line, payload=b"")``, ``write(bytes)``, ``expect_data(sink)`` / ``end_data()`` for
    ``>`` prompts, fixed-length, Ctrl+Z/ESC input and transparent mode, ``state`` (:class:`ModemState`),
    ``net`` (:class:`Network`), ``profile`` (the firmware :class:`~.profiles.Profile`), ``call_later(delay,
    fn)``, ``spawn(coro)``, ``require_service()``, ``activity()`` (restarts the PSM inactivity timer) and
    ``asleep``. Output while the module sleeps, boots or is stalled is dropped.

``CommandSet``
    A group of commands with its own state (sockets, modes). The emulator builds each set with
    ``create_command_set(ctx)`` from the set's module (``cip.create_command_set``, ...), calls
    ``register(registry)`` once, and tells it about lifecycle events: ``on_reboot()``, ``on_detach()``,
    ``on_psm_enter(retention)``, ``on_psm_exit(retention)``, ``on_ready()`` (registered again after a wake:
    data may flow) and ``await aclose()`` when the emulator stops.

``Network``
    Real loopback sockets that stand in for the remote peers of the emulated modem: ``open_tcp``,
    ``open_udp``, ``listen_tcp``, ``resolve``, ``is_reachable``. Addresses given and reported are always
    the note's (modem-side) addresses; the network maps them onto loopback peers through the routes.

Shared answers
    :func:`reply_setting` (a numeric setting's read/test/set forms) and :func:`reply_rx_read` (a manual
    receive read: header line, then the data) serve more than one command set.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import re
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from .profiles import Profile
from .radio import DEACTIVATED

__all__ = [
    "CME_INCORRECT_PARAMETERS",
    "CME_NOT_SUPPORTED",
    "CME_NO_NETWORK",
    "CME_OPERATION_NOT_ALLOWED",
    "CME_SIM_BUSY",
    "CME_SIM_FAILURE",
    "CME_SIM_NOT_INSERTED",
    "CME_TEXT",
    "CME_UNKNOWN",
    "Arg",
    "CommandError",
    "CommandKind",
    "CommandSet",
    "DataSink",
    "Handler",
    "ModemContext",
    "ModemState",
    "Network",
    "ParseError",
    "ParsedCommand",
    "PsmState",
    "Registry",
    "TcpLink",
    "TcpListener",
    "UdpLink",
    "parse_command",
    "reply_rx_read",
    "reply_setting",
]

# --------------------------------------------------------------------------------------------- CME codes

CME_OPERATION_NOT_ALLOWED = 3
CME_NOT_SUPPORTED = 4
CME_SIM_NOT_INSERTED = 10
CME_SIM_FAILURE = 13
CME_SIM_BUSY = 14
CME_NO_NETWORK = 30
CME_INCORRECT_PARAMETERS = 50
CME_UNKNOWN = 100

#: Verbose texts used with ``AT+CMEE=2`` (3GPP 27.007 wording; "SIM busy" as seen in a SIM7020 log).
CME_TEXT: dict[int, str] = {
    CME_OPERATION_NOT_ALLOWED: "operation not allowed",
    CME_NOT_SUPPORTED: "operation not supported",
    CME_SIM_NOT_INSERTED: "SIM not inserted",
    CME_SIM_FAILURE: "SIM failure",
    CME_SIM_BUSY: "SIM busy",
    CME_NO_NETWORK: "no network service",
    CME_INCORRECT_PARAMETERS: "incorrect parameters",
    CME_UNKNOWN: "unknown",
}


class CommandError(Exception):
    """Raised by a handler to answer ``ERROR`` (``cme=None``) or ``+CME ERROR: <cme>`` (per CMEE)."""

    def __init__(self, cme: int | None = None, reason: str = "") -> None:
        super().__init__(reason or (f"CME {cme}" if cme is not None else "ERROR"))
        self.cme = cme
        self.reason = reason


class ParseError(CommandError):
    """The command line or one of its arguments is malformed (answered with ``+CME ERROR: 50``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(CME_INCORRECT_PARAMETERS, reason)


# ------------------------------------------------------------------------------------------------ parsing

CommandKind = Literal["exec", "read", "test", "set"]


@dataclass(frozen=True, slots=True)
class Arg:
    """One argument of an AT command.

    ``text`` is the content without the quotes (quoted: verbatim, spaces kept; unquoted: stripped).
    An omitted argument (``AT+CPSMS=1,,,...``) is ``Arg("", quoted=False)`` and :attr:`empty` is true.
    """

    text: str
    quoted: bool = False

    @property
    def empty(self) -> bool:
        """True when the argument was omitted (an empty quoted string ``""`` is not empty)."""
        return not self.quoted and self.text == ""

    def as_int(self, lo: int | None = None, hi: int | None = None, *, default: int | None = None) -> int:
        """The argument as a decimal integer within ``lo..hi``; ``default`` when omitted.

        Quoted numbers (``"8500"``, as CIPSTART ports are written in the note) are accepted.
        Raises :class:`ParseError` naming what was wrong.
        """
        text = self.text.strip()
        if self.empty:
            if default is None:
                raise ParseError("missing numeric argument")
            return default
        try:
            value = int(text, 10)
        except ValueError:
            raise ParseError(f"not a number: {self.text!r}") from None
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ParseError(f"{value} out of range {lo}..{hi}")
        return value


@dataclass(frozen=True, slots=True)
class ParsedCommand:
    """One AT command line, parsed. See the module docstring for the field meanings."""

    name: str
    kind: CommandKind
    args: tuple[Arg, ...] = ()
    raw: str = ""

    def arg(self, index: int) -> Arg:
        """Argument ``index``, or an empty (omitted) ``Arg`` past the end."""
        return self.args[index] if index < len(self.args) else Arg("")

    def int_arg(
        self, index: int, lo: int | None = None, hi: int | None = None, *, default: int | None = None
    ) -> int:
        """Argument ``index`` as an integer (see :meth:`Arg.as_int`)."""
        try:
            return self.arg(index).as_int(lo, hi, default=default)
        except ParseError as err:
            raise ParseError(f"{self.name} argument {index + 1}: {err.reason}") from None

    def str_arg(self, index: int, *, default: str | None = None) -> str:
        """Argument ``index`` as text (quoted or not); ``default`` when omitted."""
        a = self.arg(index)
        if a.empty:
            if default is None:
                raise ParseError(f"{self.name} argument {index + 1} missing")
            return default
        return a.text

    def check_count(self, lo: int, hi: int | None = None) -> None:
        """Raise :class:`ParseError` unless the argument count is within ``lo..hi`` (``hi`` default lo)."""
        hi = lo if hi is None else hi
        if not lo <= len(self.args) <= hi:
            raise ParseError(f"{self.name} takes {lo}..{hi} arguments, got {len(self.args)}")


def _split_args(text: str) -> tuple[Arg, ...]:
    """Split ``a,"b,c", d`` into arguments. An unterminated quote is a :class:`ParseError`."""
    args: list[Arg] = []
    i, n = 0, len(text)
    while True:
        # skip leading spaces of an argument
        while i < n and text[i] == " ":
            i += 1
        if i < n and text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise ParseError(f"unterminated quote in {text!r}")
            args.append(Arg(text[i + 1 : end], quoted=True))
            i = end + 1
            while i < n and text[i] == " ":
                i += 1
            if i < n and text[i] != ",":
                # junk after a closing quote: keep it glued on so the handler can reject it
                comma = text.find(",", i)
                stop = n if comma < 0 else comma
                last = args.pop()
                args.append(Arg(last.text + '"' + text[i:stop], quoted=False))
                i = stop
        else:
            comma = text.find(",", i)
            stop = n if comma < 0 else comma
            args.append(Arg(text[i:stop].strip(), quoted=False))
            i = stop
        if i >= n:
            return tuple(args)
        i += 1  # the comma
        if i >= n:  # trailing comma: one more omitted argument
            args.append(Arg(""))
            return tuple(args)


_EXT_PREFIXES = "+*^$%#"
_NAME_TAIL = re.compile(r"[A-Z0-9_]*")
_BASIC_AMP = "&"


def parse_command(line: str) -> ParsedCommand:
    """Parse one command line (``"AT+CSOC=1,1,1"``; the ``AT`` prefix is required, any case).

    Raises :class:`ParseError` when the line does not start with ``AT``.
    """
    stripped = line.strip()
    if len(stripped) < 2 or stripped[:2].upper() != "AT":
        raise ParseError(f"not an AT command: {line!r}")
    body = stripped[2:]
    if not body:
        return ParsedCommand(name="", kind="exec", raw=body)
    head = body[0]
    if head in _EXT_PREFIXES:
        # extended command: name runs until '=', '?' or end
        j = 1
        while j < len(body) and body[j] not in "=?":
            j += 1
        name = body[:j].strip().upper()
        if not _NAME_TAIL.fullmatch(name[1:]):
            raise ParseError(f"bad command name {name!r}")
        rest = body[j:]
        if rest == "":
            return ParsedCommand(name=name, kind="exec", raw=body)
        if rest.strip() == "?":
            return ParsedCommand(name=name, kind="read", raw=body)
        if rest.startswith("=") and rest[1:].strip() == "?":
            return ParsedCommand(name=name, kind="test", raw=body)
        if rest.startswith("="):
            return ParsedCommand(name=name, kind="set", args=_split_args(rest[1:]), raw=body)
        raise ParseError(f"unexpected text after {name}: {rest!r}")
    # basic command: one letter (or '&' + letter), then an optional number / '?' / '=...'
    if head == _BASIC_AMP and len(body) >= 2:
        name, rest = body[:2].upper(), body[2:]
    else:
        name, rest = head.upper(), body[1:]
    rest = rest.strip()
    if rest == "":
        return ParsedCommand(name=name, kind="exec", raw=body)
    if rest == "?":
        return ParsedCommand(name=name, kind="read", raw=body)
    if rest == "=?":
        return ParsedCommand(name=name, kind="test", raw=body)
    if rest.startswith("="):
        return ParsedCommand(name=name, kind="set", args=_split_args(rest[1:]), raw=body)
    return ParsedCommand(name=name, kind="exec", args=(Arg(rest),), raw=body)


# ----------------------------------------------------------------------------------------------- registry

Handler = Callable[["ModemContext", ParsedCommand], "Awaitable[None] | None"]


class Registry:
    """Command name → handler. Names are matched case-insensitively (stored upper case)."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, name: str, fn: Handler, *, replace: bool = False) -> None:
        """Register ``fn`` for ``name`` (``"+CSOC"``, ``"E"``, ``"*MCGDEFCONT"``).

        Registering a name twice is a programming error unless ``replace=True``.
        """
        key = name.upper()
        if key in self._handlers and not replace:
            raise ValueError(f"AT command {key} already registered")
        self._handlers[key] = fn

    def handler(self, *names: str) -> Callable[[Handler], Handler]:
        """Decorator form of :meth:`register` for one or more names."""

        def deco(fn: Handler) -> Handler:
            for n in names:
                self.register(n, fn)
            return fn

        return deco

    def lookup(self, name: str) -> Handler | None:
        """The handler for ``name``, or None (the core answers unknown commands with ``ERROR``)."""
        return self._handlers.get(name.upper())

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._handlers)


# ------------------------------------------------------------------------------------------------- state


class PsmState(enum.Enum):
    """Power-saving state of the emulated module."""

    AWAKE = "awake"
    ASLEEP = "asleep"


@dataclass(slots=True)
class ModemState:
    """Shared module state. Command sets read it; the core owns the transitions (use ctx methods)."""

    echo: bool = True
    cmee: int = 0
    cfun: int = 1
    sim_ready: bool = True
    #: 27.007 registration stat: 0 not registered, 1 home, 2 searching, 5 roaming
    reg_stat: int = 0
    creg_n: int = 0
    cgreg_n: int = 0
    cereg_n: int = 0
    attached: bool = False
    pdn_active: bool = False
    cid: int = 1
    pdp_type: str = "IP"
    apn: str = "iot.example"
    apn_user: str = ""
    apn_password: str = ""
    local_ip: str = "10.250.0.213"
    subnet_mask: str = "255.255.255.0"
    operator: str = "CHN-UNICOM"
    csq: int = 20
    ber: int = 0
    psm_mode: int = 0
    psm_tau: str = "00100001"  # requested T3412ext bit string
    psm_active: str = "00100001"  # requested T3324 bit string
    #: what the network granted (T3324, T3412 extended); DEACTIVATED while PSM is not in use
    psm_grant_active: str = DEACTIVATED
    psm_grant_tau: str = DEACTIVATED
    psm_state: PsmState = PsmState.AWAKE
    cpsmstatus_urc: bool = True
    retention: int = 0
    ipr: int = 115200
    #: AT+CEDRXS mode (0-2) and requested eDRX value (4 bits)
    edrx_mode: int = 0
    edrx_value: str = "0000"
    #: AT+CSCLK (UART sleep mode; stored only)
    csclk: int = 0
    #: AT+CBAND: the bands the module may use (None: every band of its variant)
    bands: tuple[int, ...] | None = None
    #: AT+COPS: selection mode (0 automatic, 1 manual, 2 deregistered), answer format (0 long, 1 short,
    #: 2 numeric) and the manually selected PLMN
    cops_mode: int = 0
    cops_format: int = 0
    cops_plmn: str = ""
    #: AT+CDNSCFG: the servers set (primary, secondary); None: the ones the network handed out
    dns: tuple[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def has_service(self) -> bool:
        """Registered, attached and the default PDN active (data may flow)."""
        return self.cfun == 1 and self.reg_stat in (1, 5) and self.attached and self.pdn_active


# ----------------------------------------------------------------------------------------------- network


class TcpLink(abc.ABC):
    """A TCP connection to a (loopback) peer.

    ``on_data(bytes)`` and ``on_close(exc_or_None)`` are set by the owner; for accepted connections set them
    inside the ``on_accept`` callback (it runs before any data is delivered). ``peer`` is the note address.
    """

    peer: tuple[str, int]
    on_data: Callable[[bytes], None] | None
    on_close: Callable[[BaseException | None], None] | None

    @abc.abstractmethod
    def send(self, data: bytes) -> None:
        """Queue ``data`` to the peer (never blocks)."""

    @abc.abstractmethod
    async def drain(self) -> None:
        """Wait until queued data was handed to the peer's socket (bounded by the core's timeout)."""

    @abc.abstractmethod
    def close(self, *, abort: bool = False) -> None:
        """Close (``abort=True``: reset). ``on_close`` is not called for a local close."""

    @property
    @abc.abstractmethod
    def closed(self) -> bool:
        """True once closed by either side."""


class UdpLink(abc.ABC):
    """A UDP endpoint. ``on_datagram(data, (note_ip, port))`` is called for each datagram."""

    local_port: int
    on_datagram: Callable[[bytes, tuple[str, int]], None] | None

    @abc.abstractmethod
    def sendto(self, data: bytes, addr: tuple[str, int]) -> bool:
        """Send one datagram to the note address; False when unroutable (the datagram is lost)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Close the endpoint."""


class TcpListener(abc.ABC):
    """A listening TCP server standing in for the module's server port."""

    modem_port: int
    #: where peers really connect (127.0.0.1, ephemeral port); also ``Emulator.server_address(port)``
    address: tuple[str, int]

    @abc.abstractmethod
    def close(self) -> None:
        """Stop listening (accepted connections stay open)."""


class Network(abc.ABC):
    """The emulated module's view of the network (real loopback sockets behind it)."""

    @abc.abstractmethod
    def resolve(self, name: str) -> list[str] | None:
        """IPs for ``name`` from the hosts table (case-insensitive), or None when unknown."""

    @abc.abstractmethod
    def is_reachable(self, ip: str, port: int | None = None) -> bool:
        """True for 127.0.0.0/8 and for routed addresses."""

    @abc.abstractmethod
    async def open_tcp(
        self,
        ip: str,
        port: int,
        *,
        on_data: Callable[[bytes], None],
        on_close: Callable[[BaseException | None], None],
    ) -> TcpLink:
        """Connect to the note address ``ip:port``. Raises ``OSError`` when unreachable or refused."""

    @abc.abstractmethod
    async def open_udp(
        self, *, on_datagram: Callable[[bytes, tuple[str, int]], None], local_port: int = 0
    ) -> UdpLink:
        """Open a UDP endpoint on loopback (``local_port`` 0: ephemeral)."""

    @abc.abstractmethod
    async def listen_tcp(self, modem_port: int, on_accept: Callable[[TcpLink], None]) -> TcpListener:
        """Listen for peers of the module's server port ``modem_port`` on 127.0.0.1 (ephemeral port)."""


# ------------------------------------------------------------------------------------------------ context

#: Data-mode sink: gets each chunk of UART input. Return None to keep receiving, or the number of bytes of
#: this chunk it consumed to leave data mode (the rest is parsed as commands again).
DataSink = Callable[[bytes], "int | None"]


class ModemContext(abc.ABC):
    """What a command handler (and a command set) may use. Implemented by the emulator core."""

    state: ModemState
    net: Network
    profile: Profile

    @abc.abstractmethod
    def reply(self, *lines: str) -> None:
        """Send information lines, each as ``\\r\\n<line>\\r\\n``."""

    @abc.abstractmethod
    def reply_block(self, *lines: str) -> None:
        """Send information lines as one block, ``\\r\\n<line>\\r\\n<line>...\\r\\n`` (how a real SIM7020
        prints the lines of ``AT+CENG?``: no empty line between them)."""

    @abc.abstractmethod
    def ok(self) -> None:
        """Final result ``OK``."""

    @abc.abstractmethod
    def error(self, cme: int | None = None) -> None:
        """Final ``ERROR``; with ``cme`` and CMEE 1/2 ``+CME ERROR: <n>`` / ``+CME ERROR: <text>``."""

    @abc.abstractmethod
    def final(self, text: str) -> None:
        """Another final result line (``SEND OK``, ``CLOSE OK``, ``DATA ACCEPT: 5`` ...)."""

    @abc.abstractmethod
    def urc(self, line: str, payload: bytes = b"") -> None:
        """Unsolicited line ``\\r\\n<line>`` + ``payload`` + ``\\r\\n``; sent any time (queued while asleep
        is not modelled: URCs raised while the module sleeps are dropped)."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None:
        """Raw bytes to the UART (prompts, transparent data)."""

    @abc.abstractmethod
    def expect_data(self, sink: DataSink) -> None:
        """Route all UART input to ``sink`` until it returns a count or :meth:`end_data` is called."""

    @abc.abstractmethod
    def end_data(self) -> None:
        """Leave data mode (input is parsed as commands again)."""

    @property
    @abc.abstractmethod
    def in_data_mode(self) -> bool:
        """True while a data sink is installed."""

    @abc.abstractmethod
    def call_later(self, delay: float, fn: Callable[[], None]) -> asyncio.TimerHandle:
        """Run ``fn`` after ``delay`` seconds (cancelled when the emulator stops)."""

    @abc.abstractmethod
    def spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Run a background task, owned by the emulator (cancelled on stop, errors logged)."""

    @abc.abstractmethod
    def activity(self) -> None:
        """Tell the power manager there was network activity (restarts the PSM inactivity timer)."""

    @property
    def asleep(self) -> bool:
        """True while the module is in PSM (the UART is dead: output is dropped)."""
        return self.state.psm_state is PsmState.ASLEEP

    @abc.abstractmethod
    def require_service(self) -> None:
        """Raise :class:`CommandError` (``+CME ERROR: 30``-style) unless the module has PS service."""


class CommandSet:
    """A group of AT commands with its own state. Subclass, and expose ``create_command_set(ctx)``."""

    def __init__(self, ctx: ModemContext) -> None:
        self.ctx = ctx

    def register(self, registry: Registry) -> None:
        """Register this set's handlers."""
        raise NotImplementedError

    def on_reboot(self) -> None:
        """The module rebooted (CFUN=1,1 or a fault): drop everything."""

    def on_detach(self) -> None:
        """PS service was lost (detach, CFUN=0, PDN deactivated): sockets fail."""

    def on_psm_enter(self, retention: bool) -> None:
        """The module fell asleep."""

    def on_psm_exit(self, retention: bool) -> None:
        """The module woke up. Without retention, sockets are gone."""

    def on_ready(self) -> None:
        """After a wake: the module is registered again and data may flow (report what was held)."""

    async def aclose(self) -> None:
        """The emulator stops: close real sockets."""


# ------------------------------------------------------------------------------------- shared answers


def reply_setting(
    ctx: ModemContext, cmd: ParsedCommand, owner: object, attr: str, *, test: str = "(0,1)", hi: int = 1
) -> None:
    """Answer a numeric setting kept in ``owner.<attr>`` (``AT+CIPHEAD``, ``AT+CSORCVFLAG``, ...).

    ``AT<name>?`` → ``<name>: <value>``, ``AT<name>=?`` → ``<name>: <test>``, ``AT<name>=<0..hi>`` stores the
    value; each then ``OK``. The bare command is ``ERROR``.
    """
    if cmd.kind == "read":
        ctx.reply(f"{cmd.name}: {getattr(owner, attr)}")
    elif cmd.kind == "test":
        ctx.reply(f"{cmd.name}: {test}")
    elif cmd.kind == "set":
        cmd.check_count(1)
        setattr(owner, attr, cmd.int_arg(0, 0, hi))
    else:
        raise CommandError(reason=f"AT{cmd.name} needs a value")
    ctx.ok()


def reply_rx_read(ctx: ModemContext, header: str, buf: bytearray, want: int, *, as_hex: bool) -> None:
    """Manual-receive read (``CIPRXGET``/``CSORXGET`` modes 2 and 3): take up to ``want`` bytes from ``buf``.

    Answers ``<header><read>,<left>`` then, when anything was read, the data on its own line (upper-case
    hex when ``as_hex``). The final ``OK`` is the caller's.
    """
    data = bytes(buf[:want])
    del buf[:want]
    lines = f"\r\n{header}{len(data)},{len(buf)}\r\n".encode()
    if data:
        lines += (data.hex().upper().encode() if as_hex else data) + b"\r\n"
    ctx.write(lines)
