"""Raw clients, real loopback peers and a replay engine for the note's AT transcripts.

Nothing here imports the driver: the host side of the wire is raw bytes, written the way a host program
would (ATE0 first, then commands terminated by CR, data after the ``>`` prompt, Ctrl+Z, ESC).

A transcript is data (see ``tests/emulator/transcripts/README.md`` for the file format). ``parse_file``
turns a ``.txt`` file into :class:`Transcript` objects, and :func:`replay` runs one against a fresh
:class:`~sim7020_core.emulator.Emulator` over a real pty or a real TCP socket, with every remote address of
the note mapped onto an asyncio TCP/UDP peer on 127.0.0.1 through ``emu.route()``.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import os
import re
import signal
import socket
import sys
import termios
import tty
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

#: how long one step may wait for the bytes it expects (seconds)
STEP_TIMEOUT = 5.0
#: how long a peer waits for its TCP connection from the emulated module
PEER_ACCEPT_TIMEOUT = 5.0
#: how long a clean shutdown of the emulator and peers may take
SHUTDOWN_TIMEOUT = 5.0
#: a complete answer that does not match a regex fails if nothing more arrives within this time
REGEX_GRACE = 0.3
#: settle time used by ``expect_silence`` style checks
SILENCE_WINDOW = 0.2
#: gap between bytes when a client types one byte at a time (seconds)
BYTE_GAP = 0.001
#: guard time we ask the emulator for in transparent-mode transcripts (the note's default is 1 s)
FAST_GUARD_TIME = 0.2

CR = b"\r"
CTRL_Z = b"\x1a"
ESC = b"\x1b"


def framed(*lines: str | bytes) -> bytes:
    """Frame information/result lines the way the module sends them: ``\\r\\n<line>\\r\\n`` each."""
    out = bytearray()
    for line in lines:
        out += b"\r\n" + (line.encode() if isinstance(line, str) else line) + b"\r\n"
    return bytes(out)


class TranscriptMismatch(AssertionError):
    """The module sent something other than what the note shows."""


# ----------------------------------------------------------------------------------------------- clients


class RawClient:
    """Byte-level host side of the serial line. Subclasses feed ``_feed`` and implement ``_write``."""

    #: on a mismatch, how long to keep collecting bytes so the failure message shows the whole answer
    mismatch_settle = 0.1

    def __init__(self) -> None:
        self._buf = bytearray()
        self._changed = asyncio.Event()
        self.eof = False
        self.received = bytearray()  # everything ever received, for failure messages
        #: write one byte at a time with a small gap, like a person typing in a terminal
        self.bytewise = False

    # -- transport side
    def _feed(self, data: bytes) -> None:
        self._buf += data
        self.received += data
        self._changed.set()

    def _set_eof(self) -> None:
        self.eof = True
        self._changed.set()

    async def write(self, data: bytes) -> None:
        """Send bytes to the module (one at a time when ``bytewise``)."""
        if not self.bytewise:
            await self._write(data)
            return
        for i in range(len(data)):
            await self._write(data[i : i + 1])
            await asyncio.sleep(BYTE_GAP)

    async def _write(self, data: bytes) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    # -- helpers
    async def _wait_change(self, deadline: float) -> bool:
        """Wait for more bytes until ``deadline`` (loop time); False on timeout or EOF."""
        if self.eof:
            return False
        loop = asyncio.get_running_loop()
        remaining = deadline - loop.time()
        if remaining <= 0:
            return False
        self._changed.clear()
        try:
            async with asyncio.timeout(remaining):
                await self._changed.wait()
        except TimeoutError:
            return False
        return True

    @property
    def pending(self) -> bytes:
        """Bytes received and not consumed yet."""
        return bytes(self._buf)

    def take_all(self) -> bytes:
        """Consume and return whatever is buffered."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    async def send_line(self, line: str | bytes) -> None:
        """Send one command line terminated by CR, as a terminal program does."""
        await self.write((line.encode() if isinstance(line, str) else line) + CR)

    async def expect(self, expected: bytes, timeout: float = STEP_TIMEOUT, *, what: str = "") -> None:
        """Consume exactly ``expected`` from the stream, failing at the first differing byte."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            n = min(len(self._buf), len(expected))
            if bytes(self._buf[:n]) != expected[:n]:
                # give the module a moment so the failure message shows the whole answer
                await self._settle(self.mismatch_settle)
                raise TranscriptMismatch(self._describe(what, expected, "differs"))
            if len(self._buf) >= len(expected):
                del self._buf[: len(expected)]
                return
            if not await self._wait_change(deadline):
                raise TranscriptMismatch(self._describe(what, expected, "timed out / EOF"))

    async def expect_re(self, pattern: bytes, timeout: float = STEP_TIMEOUT, *, what: str = "") -> bytes:
        """Consume a prefix matching ``pattern`` (a bytes regex, anchored at the start)."""
        rx = re.compile(pattern, re.DOTALL)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            m = rx.match(bytes(self._buf))
            if m is not None:
                del self._buf[: m.end()]
                return m.group(0)
            if self._buf.endswith(b"\r\n") and len(self._buf) > 2:
                # a complete answer is there and does not match: fail unless more arrives soon
                loop_now = loop.time()
                if not await self._wait_change(min(deadline, loop_now + REGEX_GRACE)):
                    raise TranscriptMismatch(self._describe(what, pattern, "no match for regex"))
                continue
            if not await self._wait_change(deadline):
                raise TranscriptMismatch(self._describe(what, pattern, "no match for regex"))

    async def read_until(self, terminator: bytes, timeout: float = STEP_TIMEOUT) -> bytes:
        """Consume and return everything up to and including ``terminator``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            idx = self._buf.find(terminator)
            if idx >= 0:
                data = bytes(self._buf[: idx + len(terminator)])
                del self._buf[: idx + len(terminator)]
                return data
            if not await self._wait_change(deadline):
                raise TranscriptMismatch(self._describe("", terminator, "terminator not seen"))

    async def expect_silence(self, window: float = SILENCE_WINDOW) -> None:
        """Fail if anything arrives within ``window`` seconds."""
        loop = asyncio.get_running_loop()
        await self._wait_change(loop.time() + window)
        if self._buf:
            raise TranscriptMismatch(self._describe("silence", b"", "unexpected bytes"))

    async def _settle(self, window: float = 0.1) -> None:
        """Wait until nothing has arrived for ``window`` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + window
        while await self._wait_change(deadline):
            pass

    def _describe(self, what: str, expected: bytes, why: str) -> str:
        head = f"{what}: " if what else ""
        return f"{head}{why}\n  expected: {expected!r}\n  got:      {bytes(self._buf)!r}"

    async def sync(self, timeout: float = STEP_TIMEOUT) -> None:
        """Host-style resynchronisation: send ``AT`` until an ``OK`` comes back, drop everything else."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            self.take_all()
            await self.send_line("AT")
            try:
                await self.read_until(b"OK\r\n", timeout=0.5)
            except TranscriptMismatch:
                continue
            await self._settle(0.05)
            self.take_all()
            return
        raise TranscriptMismatch(f"module does not answer AT any more; last bytes {self.received[-200:]!r}")


class TcpClient(RawClient):
    """The host on a TCP socket (pyserial ``socket://`` style)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        super().__init__()
        self._reader = reader
        self._writer = writer
        self._task = asyncio.create_task(self._pump())

    @classmethod
    async def connect(cls, host: str, port: int) -> TcpClient:
        async with asyncio.timeout(STEP_TIMEOUT):
            reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def _pump(self) -> None:
        try:
            while data := await self._reader.read(65536):
                self._feed(data)
        except (ConnectionError, OSError):
            pass
        self._set_eof()

    async def _write(self, data: bytes) -> None:
        self._writer.write(data)
        async with asyncio.timeout(STEP_TIMEOUT):
            await self._writer.drain()

    async def close(self) -> None:
        self._writer.close()
        with contextlib.suppress(Exception):
            async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                await self._writer.wait_closed()
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class PtyClient(RawClient):
    """The host on a real tty (the slave side of the emulator's pty), non-blocking, raw mode."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(fd, self._on_readable)

    @classmethod
    async def open(cls, path: str) -> PtyClient:
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        # a serial program (pyserial) puts the line in raw mode on open
        tty.setraw(fd, termios.TCSANOW)
        return cls(fd)

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 65536)
        except BlockingIOError:
            return
        except OSError:  # EIO: the other side closed
            self._loop.remove_reader(self._fd)
            self._set_eof()
            return
        if not data:
            self._loop.remove_reader(self._fd)
            self._set_eof()
            return
        self._feed(data)

    async def _write(self, data: bytes) -> None:
        view = memoryview(data)
        async with asyncio.timeout(STEP_TIMEOUT):
            while view:
                try:
                    n = os.write(self._fd, view)
                except BlockingIOError:
                    await asyncio.sleep(0.005)
                    continue
                view = view[n:]

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self._loop.remove_reader(self._fd)
        with contextlib.suppress(OSError):
            os.close(self._fd)


# ------------------------------------------------------------------------------------------------- peers


class _StreamPeer:
    """Common part of the TCP peers: one connection, exact reads, EOF checks."""

    reader: asyncio.StreamReader | None
    writer: asyncio.StreamWriter | None

    async def _conn(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        raise NotImplementedError

    async def send(self, data: bytes) -> None:
        _, w = await self._conn()
        w.write(data)
        async with asyncio.timeout(STEP_TIMEOUT):
            await w.drain()

    async def expect(self, data: bytes) -> None:
        r, _ = await self._conn()
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                got = await r.readexactly(len(data))
        except asyncio.IncompleteReadError as exc:
            raise TranscriptMismatch(f"TCP peer expected {data!r}, got {exc.partial!r} then EOF") from None
        except TimeoutError:
            raise TranscriptMismatch(f"TCP peer expected {data!r}, nothing (complete) arrived") from None
        if got != data:
            raise TranscriptMismatch(f"TCP peer expected {data!r}, got {got!r}")

    async def expect_closed(self) -> None:
        r, _ = await self._conn()
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                rest = await r.read()
        except TimeoutError:
            raise TranscriptMismatch("TCP peer: the module did not close the connection") from None
        except ConnectionError:
            return
        if rest:
            raise TranscriptMismatch(f"TCP peer: unexpected data {rest!r} before the close")

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await self.writer.wait_closed()


class TcpPeer(_StreamPeer):
    """A remote TCP server of the note (e.g. 116.247.119.165:5245), really listening on 127.0.0.1."""

    kind: Literal["tcp"] = "tcp"

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._accepted: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = asyncio.Queue()
        self.reader = None
        self.writer = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    async def start(self) -> None:
        async def on_client(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await self._accepted.put((r, w))

        self._server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        self.address = self._server.sockets[0].getsockname()[:2]

    async def _conn(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            try:
                async with asyncio.timeout(PEER_ACCEPT_TIMEOUT):
                    self.reader, self.writer = await self._accepted.get()
            except TimeoutError:
                raise TranscriptMismatch("the module never connected to this TCP peer") from None
        return self.reader, self.writer

    async def stop(self) -> None:
        await self.close()
        while not self._accepted.empty():
            _, w = self._accepted.get_nowait()
            w.close()
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(SHUTDOWN_TIMEOUT):
                    await self._server.wait_closed()


class _UdpProtocol(asyncio.DatagramProtocol):
    def __init__(self, queue: asyncio.Queue[tuple[bytes, tuple[str, int]]]) -> None:
        self.queue = queue

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queue.put_nowait((data, addr))


class UdpPeer:
    """A remote UDP peer of the note, really bound on 127.0.0.1. Replies go to the last sender."""

    kind: Literal["udp"] = "udp"

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[bytes, tuple[str, int]]] = asyncio.Queue()
        self._transport: asyncio.DatagramTransport | None = None
        self.last_sender: tuple[str, int] | None = None
        self.address: tuple[str, int] = ("127.0.0.1", 0)

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        transport, _ = await loop.create_datagram_endpoint(
            lambda: _UdpProtocol(self.queue), local_addr=("127.0.0.1", 0)
        )
        self._transport = transport
        self.address = transport.get_extra_info("sockname")[:2]

    async def expect(self, data: bytes) -> None:
        try:
            async with asyncio.timeout(STEP_TIMEOUT):
                got, addr = await self.queue.get()
        except TimeoutError:
            raise TranscriptMismatch(f"UDP peer expected datagram {data!r}, none arrived") from None
        self.last_sender = addr
        if got != data:
            raise TranscriptMismatch(f"UDP peer expected datagram {data!r}, got {got!r}")

    async def send(self, data: bytes) -> None:
        if self.last_sender is None:
            raise TranscriptMismatch("UDP peer cannot answer: the module never sent it a datagram")
        assert self._transport is not None
        self._transport.sendto(data, self.last_sender)

    async def expect_closed(self) -> None:
        raise TranscriptMismatch("a UDP peer has no connection to be closed")

    async def close(self) -> None:
        """UDP has no connection; closing the peer is a no-op."""

    async def stop(self) -> None:
        if self._transport is not None:
            self._transport.close()


class ClientPeer(_StreamPeer):
    """A remote TCP client that connects to the module's server (CSOLIS / CIPSERVER).

    Its socket is bound to a known loopback port first and a route maps its note address onto it, so the
    emulator can report the note's client address (``REMOTE IP: 10.78.103.220``).
    """

    kind: Literal["client"] = "client"

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setblocking(False)
        self._sock.bind(("127.0.0.1", 0))
        self.address: tuple[str, int] = self._sock.getsockname()[:2]
        self.reader = None
        self.writer = None

    async def start(self) -> None:
        """Nothing to do until the module listens."""

    async def connect(self, target: tuple[str, int]) -> None:
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(STEP_TIMEOUT):
            await loop.sock_connect(self._sock, target)
            self.reader, self.writer = await asyncio.open_connection(sock=self._sock)

    async def _conn(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self.reader is None or self.writer is None:
            raise TranscriptMismatch("client peer used before `connect`")
        return self.reader, self.writer

    async def stop(self) -> None:
        if self.writer is not None:
            await self.close()
        else:
            self._sock.close()


Peer = TcpPeer | UdpPeer | ClientPeer


# --------------------------------------------------------------------------------------------- transcript

StepKind = Literal[
    "send",  # a command line (CR appended)
    "raw",  # raw bytes from the host (data after '>', Ctrl+Z, +++ ...)
    "expect",  # exact bytes from the module
    "expect_re",  # regex over bytes from the module
    "silence",  # nothing from the module for a while
    "peer_send",
    "peer_expect",
    "peer_close",
    "peer_closed",
    "peer_connect",
    "emu",  # call a method of the emulator
    "sleep",
    "guard",  # idle for the +++ guard time
]


@dataclass(frozen=True)
class Step:
    """One step of a transcript; ``line`` is the file line it came from (for failure messages)."""

    kind: StepKind
    data: bytes = b""
    peer: str = ""
    method: str = ""
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()
    seconds: float = 0.0
    line: int = 0
    text: str = ""


@dataclass(frozen=True)
class PeerSpec:
    """A remote end of the note: its kind and the note's address for it."""

    name: str
    kind: Literal["tcp", "udp", "client"]
    ip: str
    port: int
    #: for ``client`` peers: the module port they connect to
    modem_port: int = 0


@dataclass
class Transcript:
    """One exchange of the note, as data."""

    title: str
    section: str
    source: str
    peers: list[PeerSpec] = field(default_factory=list)
    hosts: dict[str, list[str]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    #: note addresses routed to plain 127.0.0.1 (no peer needed, e.g. a ping target)
    routes: list[tuple[str, int | None]] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    uses_guard: bool = False

    @property
    def id(self) -> str:
        slug = re.sub(r"[^a-z0-9]+", "-", self.title.lower()).strip("-")
        return f"{self.section}-{slug}"


class TranscriptSyntaxError(ValueError):
    """A transcript file line that the format does not allow."""


def _eval_data(node: ast.expr, where: str) -> str | bytes | int:
    """Evaluate a tiny safe expression language: string/bytes/int literals, ``+`` and ``*``."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes | int):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add | ast.Mult):
        left, right = _eval_data(node.left, where), _eval_data(node.right, where)
        try:
            return left + right if isinstance(node.op, ast.Add) else left * right  # type: ignore[operator]
        except TypeError as exc:
            raise TranscriptSyntaxError(f"{where}: {exc}") from exc
    raise TranscriptSyntaxError(f"{where}: only string literals, + and * are allowed")


def _literal_bytes(text: str, where: str) -> bytes:
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except SyntaxError as exc:
        raise TranscriptSyntaxError(f"{where}: expected a quoted string, got {text!r}") from exc
    value = _eval_data(tree.body, where)
    if isinstance(value, str):
        return value.encode("latin-1")
    if isinstance(value, bytes):
        return value
    raise TranscriptSyntaxError(f"{where}: expected a quoted string, got {text!r}")


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


_ADDR = re.compile(r"^(?P<ip>[0-9.]+):(?P<port>\d+)$")


def parse_text(text: str, source: str = "<string>") -> list[Transcript]:
    """Parse the transcript format (see transcripts/README.md) into transcripts."""
    out: list[Transcript] = []
    cur: Transcript | None = None
    for lineno, raw_line in enumerate(text.splitlines(), start=1):
        where = f"{source}:{lineno}"
        line = raw_line.rstrip("\n")
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line.startswith("=== "):
            head = line[4:].strip()
            section, _, title = head.partition(" ")
            cur = Transcript(title=title.strip() or section, section=section, source=where)
            out.append(cur)
            continue
        if cur is None:
            raise TranscriptSyntaxError(f"{where}: step before the first '=== <section> <title>' header")
        op, _, rest = line.partition(" ")
        step: Step | None = None
        if op == ">":
            step = Step("send", data=rest.encode("latin-1"), line=lineno, text=line)
        elif op == ">>":
            step = Step("raw", data=_literal_bytes(rest, where), line=lineno, text=line)
        elif op == "<":
            step = Step("expect", data=framed(rest.encode("latin-1")), line=lineno, text=line)
        elif op == "<+":  # a further line of the same block: no empty line before it
            step = Step("expect", data=rest.encode("latin-1") + b"\r\n", line=lineno, text=line)
        elif op == "<~":
            pattern = b"\r\n" + rest.encode("latin-1") + b"\r\n"
            step = Step("expect_re", data=pattern, line=lineno, text=line)
        elif op == "<<":
            step = Step("expect", data=_literal_bytes(rest, where), line=lineno, text=line)
        elif op == "<silence":
            step = Step("silence", seconds=float(rest or SILENCE_WINDOW), line=lineno, text=line)
        elif op == "peer":
            parts = rest.split()
            if len(parts) not in (3, 4) or parts[1] not in ("tcp", "udp", "client"):
                raise TranscriptSyntaxError(f"{where}: 'peer NAME tcp|udp|client IP:PORT [MODEM_PORT]'")
            m = _ADDR.match(parts[2])
            if m is None:
                raise TranscriptSyntaxError(f"{where}: bad address {parts[2]!r}")
            modem_port = int(parts[3]) if len(parts) == 4 else 0
            if parts[1] == "client" and not modem_port:
                raise TranscriptSyntaxError(f"{where}: a client peer needs the module port it connects to")
            cur.peers.append(
                PeerSpec(parts[0], parts[1], m["ip"], int(m["port"]), modem_port)  # type: ignore[arg-type]
            )
        elif op == "route":
            ip, _, port = rest.strip().partition(":")
            cur.routes.append((ip, int(port) if port else None))
        elif op == "host":
            name, _, ips = rest.partition("=")
            cur.hosts[name.strip()] = [ip.strip() for ip in ips.split(",") if ip.strip()]
        elif op == "option":
            key, _, value = rest.partition("=")
            cur.options[key.strip()] = _literal(value.strip())
        elif op.startswith("@"):
            name = op[1:]
            verb, _, arg = rest.partition(" ")
            if name not in {p.name for p in cur.peers}:
                raise TranscriptSyntaxError(f"{where}: unknown peer {name!r}")
            kinds = {
                "send": "peer_send",
                "expect": "peer_expect",
                "close": "peer_close",
                "closed": "peer_closed",
                "connect": "peer_connect",
            }
            if verb not in kinds:
                raise TranscriptSyntaxError(f"{where}: peer verb must be one of {sorted(kinds)}")
            data = _literal_bytes(arg, where) if verb in ("send", "expect") else b""
            step = Step(kinds[verb], data=data, peer=name, line=lineno, text=line)  # type: ignore[arg-type]
        elif op == "emu":
            method, *words = rest.split()
            args = tuple(_literal(w) for w in words if "=" not in w)
            kwargs = tuple((k, _literal(v)) for k, _, v in (w.partition("=") for w in words if "=" in w))
            step = Step("emu", method=method, args=args, kwargs=kwargs, line=lineno, text=line)
        elif op == "sleep":
            step = Step("sleep", seconds=float(rest), line=lineno, text=line)
        elif op == "guard":
            cur.uses_guard = True
            step = Step("guard", line=lineno, text=line)
        else:
            raise TranscriptSyntaxError(f"{where}: unknown line {line!r}")
        if step is not None:
            cur.steps.append(step)
    return out


def parse_file(path: Path) -> list[Transcript]:
    """Parse one transcript file."""
    return parse_text(path.read_text(encoding="utf-8"), source=path.name)


def load_all(folder: Path) -> list[Transcript]:
    """Every transcript of every ``*.txt`` file in ``folder``, in file-name order."""
    out: list[Transcript] = []
    for path in sorted(folder.glob("*.txt")):
        out.extend(parse_file(path))
    return out


# -------------------------------------------------------------------------------------------- emulator

#: how the host reaches the module: TCP socket, pty, or pty typed one byte at a time
Over = Literal["tcp", "pty", "pty-bytewise"]


def make_emulator(hosts: dict[str, list[str]] | None = None, options: dict[str, Any] | None = None) -> Any:
    """Build an Emulator the way a test wants it: registration done at once, echo on (power-up state).

    ``options`` are keyword arguments of ``Emulator`` (e.g. ``guard_time``, the ``+++`` guard time of
    transparent mode).
    """
    from sim7020_core.emulator import Emulator

    kwargs: dict[str, Any] = {"registration_delay": 0.0}
    kwargs.update(options or {})
    table: dict[str, Any] = {}
    for name, ips in (hosts or {}).items():
        table[name] = ips[0] if len(ips) == 1 else list(ips)
    return Emulator(hosts=table, **kwargs)


async def stop_emulator(emu: Any) -> None:
    """Stop the emulator, bounded."""
    async with asyncio.timeout(SHUTDOWN_TIMEOUT):
        await emu.stop()


@contextlib.asynccontextmanager
async def serving(emu: Any, over: Over) -> AsyncIterator[RawClient]:
    """Serve ``emu`` over a real TCP socket or pty and yield a connected raw client."""
    client: RawClient
    if over == "tcp":
        async with asyncio.timeout(STEP_TIMEOUT):
            host, port = await emu.start_tcp("127.0.0.1", 0)
        client = await TcpClient.connect(host, port)
    else:
        async with asyncio.timeout(STEP_TIMEOUT):
            path = await emu.start_pty()
        client = await PtyClient.open(path)
        client.bytewise = over == "pty-bytewise"
    try:
        yield client
    finally:
        await client.close()


async def echo_off(client: RawClient) -> None:
    """The note's preamble (end of 5.10): send ``ATE0`` and consume its answer, then check echo is off."""
    await client.send_line("ATE0")
    answer = await client.read_until(b"OK\r\n")
    # with echo still on at that moment, the module repeats the command line first
    if not answer.endswith(b"\r\nOK\r\n"):
        raise TranscriptMismatch(f"ATE0 answered {answer!r}")
    await client.send_line("AT")
    await client.expect(framed("OK"), what="AT after ATE0 (echo must be off)")


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        async with asyncio.timeout(STEP_TIMEOUT):
            return await value
    return value


async def _start_peers(transcript: Transcript) -> dict[str, Peer]:
    peers: dict[str, Peer] = {}
    for spec in transcript.peers:
        peer: Peer = TcpPeer() if spec.kind == "tcp" else UdpPeer() if spec.kind == "udp" else ClientPeer()
        await peer.start()
        peers[spec.name] = peer
    return peers


async def _stop_peers(peers: dict[str, Peer]) -> None:
    for peer in peers.values():
        with contextlib.suppress(Exception):
            await peer.stop()


async def _run_steps(
    transcript: Transcript, over: str, client: RawClient, emu: Any, peers: dict[str, Peer], guard: float
) -> None:
    await echo_off(client)
    for index, step in enumerate(transcript.steps, start=1):
        try:
            await _run_step(step, client, emu, peers, transcript, guard)
        except TranscriptMismatch as exc:
            raise TranscriptMismatch(
                f"[{transcript.id} over {over}] step {index} ({transcript.source.split(':')[0]} "
                f"line {step.line}: {step.text!r}): {exc}"
            ) from None


async def replay(transcript: Transcript, over: Over) -> None:
    """Run ``transcript`` against a fresh emulator served ``over`` a pty or TCP, with loopback peers."""
    peers = await _start_peers(transcript)
    options = dict(transcript.options)
    if transcript.uses_guard:
        options.setdefault("guard_time", FAST_GUARD_TIME)
    guard = float(options.get("guard_time", 1.0))
    try:
        emu = make_emulator(transcript.hosts, options)
    except BaseException:
        await _stop_peers(peers)
        raise
    try:
        for spec in transcript.peers:
            emu.route(spec.ip, spec.port, to=peers[spec.name].address)
        for ip, port in transcript.routes:
            emu.route(ip, port, to="127.0.0.1")
        async with serving(emu, over) as client:
            await _run_steps(transcript, over, client, emu, peers, guard)
    finally:
        await _stop_peers(peers)
        await stop_emulator(emu)


def runs_on_cli(transcript: Transcript) -> bool:
    """Whether the transcript needs nothing the ``sim7020 emulator`` command line cannot give."""
    return not (
        transcript.options
        or transcript.uses_guard
        or any(step.kind == "emu" for step in transcript.steps)
        or any(spec.kind == "client" for spec in transcript.peers)
    )


#: how long the ``sim7020 emulator`` process may take to start listening / to stop on SIGTERM
CLI_START_TIMEOUT = 15.0
CLI_STOP_TIMEOUT = 10.0
_LISTENING = re.compile(rb"listening on tcp (?P<host>[0-9.]+):(?P<port>\d+)")


async def replay_cli(transcript: Transcript) -> None:
    """Run ``transcript`` against ``python -m sim7020_core emulator`` in a subprocess, as a user would.

    Hosts and routes go through ``--host NAME=IP[,IP]`` and ``--route IP[:PORT]=127.0.0.1:PORT``; the
    process must exit with status 0 on SIGTERM.
    """
    if not runs_on_cli(transcript):
        raise ValueError(f"{transcript.id} needs emulator options or calls the command line cannot give")
    peers = await _start_peers(transcript)
    argv = [
        sys.executable,
        "-m",
        "sim7020_core",
        "emulator",
        "--tcp",
        "127.0.0.1:0",
        "--registration-delay",
        "0",
    ]
    for name, ips in transcript.hosts.items():
        argv += ["--host", f"{name}={','.join(ips)}"]
    for spec in transcript.peers:
        host, port = peers[spec.name].address
        argv += ["--route", f"{spec.ip}:{spec.port}={host}:{port}"]
    for ip, maybe_port in transcript.routes:
        argv += ["--route", f"{ip}:{maybe_port}=127.0.0.1" if maybe_port else f"{ip}=127.0.0.1"]
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert proc.stderr is not None
        try:
            async with asyncio.timeout(CLI_START_TIMEOUT):
                line = await proc.stdout.readline()
        except TimeoutError:
            line = b""
        m = _LISTENING.search(line)
        if m is None:
            err = await _read_rest(proc.stderr)
            raise TranscriptMismatch(f"`sim7020 emulator` did not start: {line!r} {err!r}")
        client = await TcpClient.connect(m["host"].decode(), int(m["port"]))
        try:
            await _run_steps(transcript, "cli", client, None, peers, 1.0)
        finally:
            await client.close()
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(CLI_STOP_TIMEOUT):
            code = await proc.wait()
        if code != 0:
            err = await _read_rest(proc.stderr)
            raise TranscriptMismatch(f"`sim7020 emulator` exited with {code} on SIGTERM: {err!r}")
    finally:
        if proc.returncode is None:
            proc.kill()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLI_STOP_TIMEOUT):
                    await proc.wait()
        await _stop_peers(peers)


async def _read_rest(stream: asyncio.StreamReader) -> bytes:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(1.0):
            return await stream.read(4000)
    return b""


async def _run_step(
    step: Step,
    client: RawClient,
    emu: Any,
    peers: dict[str, Peer],
    transcript: Transcript,
    guard: float,
) -> None:
    kind = step.kind
    if kind == "send":
        await client.send_line(step.data)
    elif kind == "raw":
        await client.write(step.data)
    elif kind == "expect":
        await client.expect(step.data)
    elif kind == "expect_re":
        await client.expect_re(step.data)
    elif kind == "silence":
        await client.expect_silence(step.seconds)
    elif kind == "sleep":
        await asyncio.sleep(step.seconds)
    elif kind == "guard":
        await asyncio.sleep(guard * 1.5)
    elif kind == "emu":
        fn: Callable[..., Any] = getattr(emu, step.method)
        await _maybe_await(fn(*step.args, **dict(step.kwargs)))
    else:
        peer = peers[step.peer]
        if kind == "peer_send":
            await peer.send(step.data)
        elif kind == "peer_expect":
            await peer.expect(step.data)
        elif kind == "peer_close":
            await peer.close()
        elif kind == "peer_closed":
            await peer.expect_closed()
        elif kind == "peer_connect":
            if not isinstance(peer, ClientPeer):
                raise TranscriptMismatch(f"peer {step.peer!r} is not a client peer")
            spec = next(p for p in transcript.peers if p.name == step.peer)
            await peer.connect(tuple(emu.server_address(spec.modem_port)))


def iter_chunks(data: bytes, sizes: Iterable[int]) -> list[bytes]:
    """Split ``data`` into chunks of the given sizes (the rest in one last chunk)."""
    out: list[bytes] = []
    pos = 0
    for size in sizes:
        if pos >= len(data):
            break
        out.append(data[pos : pos + size])
        pos += size
    if pos < len(data):
        out.append(data[pos:])
    return out
