"""The replayer: serve a recorded session transcript as if it were the modem (over TCP or a pty).

How a transcript becomes a modem (:func:`build_script`):

- The client's bytes are cut into *inputs*: a command is the text up to CR or LF (surrounding whitespace and
  an LF after the CR dropped); after the modem sent a data prompt (output ending in ``>`` or ``> `` at the
  start of a line) the client's next bytes, up to the modem's next output that is not their echo, are a
  *data block* instead. When it is replayed, a data block ends after as many bytes as were recorded (the
  length named in ``AT+CSODSEND=0,5`` / ``AT+CIPSEND=5``), or earlier at a Ctrl+Z or ESC byte when the
  recorded block ended with one and held no other (``AT+CIPSEND`` without a length; binary data sent with a
  length may contain those bytes anywhere).
- Everything the modem said after an input, up to the next input, is that input's *answer*: a list of
  ``(delay after the input, bytes)`` pieces, replayed with the recorded delays (divided by ``speed``).
- *Probes* (bare ``AT``, read commands ``AT+X?``, test commands ``AT+X=?`` and the pure queries
  ``AT+CSQ``, ``AT+CGMI`` …, see :data:`PURE_QUERIES`) never cause unsolicited output, so a probe's answer
  ends at its final result (``OK``, ``ERROR``, ``+CME ERROR: n``); whatever the modem said after that
  (a ``+CSONMI`` that arrived while a watchdog ``AT+CMEE?`` was in flight) belongs to the last input that
  was not a probe, with its delay after that input. Without this a URC would be tied to whichever poll
  happened to precede it, and a replayed client that polls at other moments would never see it.
- Modem output before the first input (a boot banner) is sent when the first client connects, with its
  delay after the recorded connection (``* client connected`` event, or the start of the transcript).

Serving: an input is matched by its text (exactly, else ignoring case; a data block by its bytes and the
command that prompted it). The n-th time an input arrives it gets the n-th recorded answer for it; once
those are used up, the last one again (repeated ``AT`` syncs, status polls and watchdog probes keep working
in any number). An input that was never recorded gets ``\\r\\nERROR\\r\\n`` and a logged warning, and is
listed in :attr:`Replayer.unmatched`. A new TCP client replaces the old one; the position in each answer
list is kept (one modem, one session).

Not replayed: transparent data mode (after ``CONNECT``), data sent without a prompt (``AT+CIPSPRT=2``)
and serial line signals; a session with those still forwards its other exchanges.

Why no existing library: serial mocks (``mock-serial``, pytest-reserial) replay one client's reads and
writes in their exact recorded order inside the client's process; a modem serving any client over a real
socket or tty, tolerant of a different order and count of polls, has to know what a command, a prompt and
a final result look like on an AT wire, which is what this module does. It never uses the driver's code
(two sides of a wire): the rules above are its own, from the wire format alone.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import re
from collections import defaultdict
from dataclasses import dataclass, field

from .ports import ClientPort, PtyPort, TcpPort
from .transcript import FROM_MODEM, Event, Session

_LOGGER = logging.getLogger(__name__)

#: Execution commands that only report something (no state change, no unsolicited output afterwards).
PURE_QUERIES = frozenset(
    {"AT+CSQ", "AT+CGMI", "AT+CGMM", "AT+CGMR", "AT+CGSN", "AT+CIMI", "AT+CCID", "AT+GSV", "AT+CGCONTRDP"}
    | {"AT+GMI", "AT+GMM", "AT+GMR", "AT+GSN", "ATI", "ATI0", "AT&V"}
)
_READ_OR_TEST = re.compile(rb"AT.*(\?|=\?)", re.IGNORECASE | re.DOTALL)
_FINAL = re.compile(rb"(OK|ERROR|\+CM[ES] ERROR:.*)", re.DOTALL)
_TERMINATORS = b"\x1a\x1b"
_CONNECT_NOTES = ("client connected", "pty ")
ERROR_ANSWER = b"\r\nERROR\r\n"

Key = tuple[bytes, bytes]  # (command, b"") for a command; (command that prompted, block) for a data block
Piece = tuple[float, bytes]  # (seconds after the input, bytes)


def is_probe(command: bytes) -> bool:
    """True for inputs that never cause unsolicited output (see the module docstring)."""
    text = command.strip().upper()
    return text == b"AT" or bool(_READ_OR_TEST.fullmatch(text)) or text.decode("latin-1") in PURE_QUERIES


def command_key(command: bytes) -> bytes:
    """The text a command is matched by: without surrounding whitespace, CR and LF."""
    return command.strip()


@dataclass(frozen=True, slots=True)
class DataSpec:
    """How a data block after a prompt ends: after ``length`` bytes, or earlier at one of ``terminators``."""

    length: int
    terminators: bytes = b""

    @classmethod
    def of(cls, block: bytes) -> DataSpec:
        """The spec that ends a replayed block where the recorded ``block`` ended."""
        ends_with_terminator = bool(block) and block[-1] in _TERMINATORS
        inner = any(t in block[:-1] for t in _TERMINATORS)
        return cls(len(block), _TERMINATORS if ends_with_terminator and not inner else b"")

    def end(self, buf: bytes) -> int | None:
        """Where the block ends in ``buf`` (bytes received so far), or None while it goes on."""
        cuts = [i for i in (buf.find(t, 0, self.length) for t in self.terminators) if i >= 0]
        if cuts:
            return min(cuts) + 1
        return self.length if len(buf) >= self.length else None


@dataclass(slots=True)
class Exchange:
    """One recorded input and the modem's answer to it."""

    key: Key
    time: float
    probe: bool
    output: list[Piece] = field(default_factory=list)
    data: DataSpec | None = None  # set when a data block followed this command's prompt

    @property
    def answer(self) -> bytes:
        """All bytes of the answer (for reading and tests)."""
        return b"".join(data for _, data in self.output)


@dataclass(slots=True)
class Script:
    """A transcript cut into inputs and answers (:func:`build_script`)."""

    prologue: list[Piece] = field(default_factory=list)
    answers: dict[Key, list[Exchange]] = field(default_factory=dict)
    exchanges: list[Exchange] = field(default_factory=list)

    def add(self, exchange: Exchange) -> None:
        self.answers.setdefault(exchange.key, []).append(exchange)
        self.exchanges.append(exchange)


class _Builder:
    """Walks the records once, in wire order (see the module docstring for the rules)."""

    def __init__(self) -> None:
        self.script = Script()
        self.reference = 0.0  # time the first client connected
        self.connected = False
        self.inbuf = b""
        self.data_command: bytes | None = None  # in a data block: the command that prompted it
        self.block = b""
        self.block_time = 0.0
        self.echoed = 0
        self.echo_pieces: list[tuple[float, bytes]] = []
        self.current: Exchange | None = None  # the last input
        self.anchor: Exchange | None = None  # the last input that was not a probe
        self.probe_open = False  # the current probe has not had its final result yet
        self.probe_line = b""
        self.tail = b""  # the end of the current input's answer so far (prompt detection)

    # -- the client's bytes
    def client(self, time: float, data: bytes) -> None:
        self.inbuf += data
        while self.inbuf:
            if self.data_command is not None:  # the block goes on until the modem answers it
                self.block += self.inbuf
                self.inbuf = b""
                self.block_time = time
                return
            stripped = self.inbuf.lstrip(b" \t\r\n")
            if not stripped:
                self.inbuf = b""
                return
            ends = [i for i in (stripped.find(b"\r"), stripped.find(b"\n")) if i >= 0]
            if not ends:
                self.inbuf = stripped
                return
            end = min(ends)
            command, self.inbuf = stripped[:end], stripped[end + 1 :]
            self._input(time, (command_key(command), b""), is_probe(command))

    def _end_block(self, time: float) -> None:
        command, block = self.data_command, self.block
        assert command is not None
        prompting = self.current
        if prompting is not None and prompting.key == (command, b""):
            prompting.data = DataSpec.of(block)
        self.data_command, self.block, self.echoed = None, b"", 0
        echo, self.echo_pieces = self.echo_pieces, []
        self._input(time, (command, block), False)
        assert self.current is not None
        self.current.output.extend((0.0, piece) for _, piece in echo)

    def _input(self, time: float, key: Key, probe: bool) -> None:
        exchange = Exchange(key, time, probe)
        self.script.add(exchange)
        self.current = exchange
        self.tail = b""
        self.probe_open = probe
        self.probe_line = b""
        if not probe:
            self.anchor = exchange

    # -- the modem's bytes
    def modem(self, time: float, data: bytes) -> None:
        if self.data_command is not None and self.block:
            echo = self.block[self.echoed : self.echoed + len(data)]
            if data == echo:  # the modem echoing the data block (ATE1): part of the block's answer
                self.echoed += len(data)
                self.echo_pieces.append((time, data))
                return
            self._end_block(self.block_time)
        if self.current is None:
            self._prologue(time, data)
            return
        if self.probe_open:
            split = self._probe_final_end(data)
            if split is None:
                self._append(self.current, time, data)
                return
            self._append(self.current, time, data[:split])
            self.probe_open = False
            data = data[split:]
            if not data:
                return
        if self.anchor is None:
            self._prologue(time, data)
        else:
            self._append(self.anchor, time, data)

    def _probe_final_end(self, data: bytes) -> int | None:
        """Where in ``data`` the probe's final result line ends, if it does."""
        start = 0
        while True:
            nl = data.find(b"\n", start)
            if nl < 0:
                self.probe_line += data[start:]
                return None
            line = (self.probe_line + data[start:nl]).strip()
            self.probe_line = b""
            start = nl + 1
            if _FINAL.fullmatch(line):
                return start

    def _append(self, exchange: Exchange, time: float, data: bytes) -> None:
        exchange.output.append((max(0.0, time - exchange.time), data))
        if exchange is self.current:
            self.tail = (self.tail + data)[-3:]
            if _ends_with_prompt(self.tail):
                self.data_command = exchange.key[0]
                self.block = b""

    def _prologue(self, time: float, data: bytes) -> None:
        if time >= self.reference:
            self.script.prologue.append((time - self.reference, data))

    def event(self, event: Event) -> None:
        if not self.connected and event.text.startswith(_CONNECT_NOTES):
            self.connected = True
            if self.current is None:
                self.reference = event.time
                self.script.prologue.clear()  # the client never saw what came before it connected

    def finish(self) -> Script:
        if self.data_command is not None and self.block:
            self._end_block(self.block_time)
        return self.script


def _ends_with_prompt(tail: bytes) -> bool:
    for prompt in (b"> ", b">"):
        if tail.endswith(prompt):
            before = tail[: -len(prompt)]
            return not before or before.endswith(b"\n")
    return False


def build_script(session: Session) -> Script:
    """Cut a session into inputs and answers (rules in the module docstring)."""
    builder = _Builder()
    for entry in session.entries:
        if isinstance(entry, Event):
            builder.event(entry)
        elif entry.direction == FROM_MODEM:
            builder.modem(entry.time, entry.data)
        else:
            builder.client(entry.time, entry.data)
    return builder.finish()


class Replayer:
    """Serve ``session`` as a modem to one client at a time.

    :param session: a transcript (:func:`~.transcript.load`)
    :param speed: replay delays divided by this (2.0 answers twice as fast as recorded)
    """

    def __init__(self, session: Session | Script, *, speed: float = 1.0) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed!r}")
        self.script = session if isinstance(session, Script) else build_script(session)
        self.speed = speed
        #: inputs that were not in the recording (answered ERROR), in arrival order
        self.unmatched: list[Key] = []
        #: how many times each input was answered
        self.served: dict[Key, int] = defaultdict(int)
        self._by_upper: dict[bytes, bytes] = {}
        for command, _ in self.script.answers:
            self._by_upper.setdefault(command.upper(), command)
        self._ports: list[ClientPort] = []
        self._port: ClientPort | None = None
        self._inbuf = b""
        self._data: tuple[bytes, DataSpec] | None = None
        self._heap: list[tuple[float, int, bytes]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._greeted = False

    # ------------------------------------------------------------------ serving

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Serve on TCP (``socket://HOST:PORT``); returns the address (port 0 picks a free one)."""
        tcp = TcpPort(host, port)
        self._attach(tcp)
        await tcp.start()
        return tcp.address

    async def start_pty(self, link: str | None = None) -> str:
        """Serve on a new pseudo-terminal; returns its path (or ``link``, a symlink to it)."""
        pty = PtyPort(link)
        self._attach(pty)
        await pty.start()
        return pty.client_path

    def _attach(self, port: ClientPort) -> None:
        port.on_data = lambda data: self._on_data(port, data)
        port.on_connect = lambda text: self._on_connect(port, text)
        port.on_disconnect = lambda text: _LOGGER.info("replay: %s", text)
        self._ports.append(port)

    async def stop(self) -> None:
        """Stop serving and drop pending output."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._heap.clear()
        for port in self._ports:
            await port.close()
        self._ports.clear()

    async def __aenter__(self) -> Replayer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def _on_connect(self, port: ClientPort, text: str) -> None:
        _LOGGER.info("replay: %s", text)
        self._port = port
        self._inbuf = b""
        self._data = None
        if not self._greeted:
            self._greeted = True
            self._play(self.script.prologue)

    # ------------------------------------------------------------------ inputs

    def _on_data(self, port: ClientPort, data: bytes) -> None:
        self._port = port
        self._inbuf += data
        while self._inbuf:
            if self._data is not None:
                command, spec = self._data
                end = spec.end(self._inbuf)
                if end is None:
                    return
                block, self._inbuf = self._inbuf[:end], self._inbuf[end:]
                self._data = None
                self._answer((command, block))
                continue
            stripped = self._inbuf.lstrip(b" \t\r\n")
            ends = [i for i in (stripped.find(b"\r"), stripped.find(b"\n")) if i >= 0]
            if not ends:
                self._inbuf = stripped
                return
            end = min(ends)
            command, self._inbuf = stripped[:end], stripped[end + 1 :]
            self._answer((command_key(command), b""))

    def _answer(self, key: Key) -> None:
        exchanges = self.script.answers.get(key)
        if exchanges is None and not key[1]:
            recorded = self._by_upper.get(key[0].upper())
            if recorded is not None:
                key = (recorded, b"")
                exchanges = self.script.answers.get(key)
        if not exchanges:
            self.unmatched.append(key)
            if key[1]:
                _LOGGER.warning(
                    "replay: data block after %r not in the recording (%d bytes): ERROR", key[0], len(key[1])
                )
            else:
                _LOGGER.warning("replay: %r is not in the recording: ERROR", key[0].decode("latin-1"))
            self._play([(0.0, ERROR_ANSWER)])
            return
        n = self.served[key]
        self.served[key] = n + 1
        exchange = exchanges[min(n, len(exchanges) - 1)]
        self._play(exchange.output)
        if exchange.data is not None:
            self._data = (key[0], exchange.data)

    # ------------------------------------------------------------------ output, in order, on time

    def _play(self, pieces: list[Piece]) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for delay, data in pieces:
            heapq.heappush(self._heap, (now + delay / self.speed, self._seq, data))
            self._seq += 1
        self._arm()

    def _arm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._heap:
            self._timer = asyncio.get_running_loop().call_at(self._heap[0][0], self._fire)

    def _fire(self) -> None:
        self._timer = None
        # call_at may fire up to the clock's resolution early: take what is due within a millisecond
        now = asyncio.get_running_loop().time() + 0.001
        while self._heap and self._heap[0][0] <= now:
            _, _, data = heapq.heappop(self._heap)
            if self._port is not None:
                self._port.write(data)
        self._arm()
