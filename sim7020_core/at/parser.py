"""Incremental AT byte-stream parser: bytes in, events out.

:class:`AtParser` turns the byte stream from the module into events: a ``str`` (one text line,
CR/LF stripped), :class:`Prompt` (the ``> `` data prompt, which has no CRLF after it),
:class:`Payload` (a length-delimited binary block with its header, e.g. ``+IPD,5:hello``) and
:class:`Garbage` (bytes that cannot be a valid line: control or 8-bit bytes, overlong lines).

Any chunking of the same stream yields the same events: the parser only emits an item once it is
complete, and keeps a partial item in its buffer. It knows nothing about commands; the engine
decides what a line means.

Binary payloads are described by a small table of :class:`PayloadRule` (prefix, header regex
with a ``len`` group). The built-in rules cover ``+IPD``, ``+RECEIVE`` and ``+CIPRXGET: 2``; the
rules for raw ``+CSONMI`` / ``+CSORXGET`` (only on after ``AT+CSORCVFLAG=1``) are exported as
:data:`CSONMI_RAW_RULE` and :data:`CSORXGET_RAW_RULE` for plugins to switch on.
"""

from __future__ import annotations

import re
from collections.abc import Generator
from dataclasses import dataclass

from .. import const

__all__ = [
    "CIPRXGET_RULE",
    "CSONMI_RAW_RULE",
    "CSORXGET_RAW_RULE",
    "DEFAULT_RULES",
    "IPD_RULE",
    "RECEIVE_RULE",
    "AtParser",
    "Event",
    "Garbage",
    "Line",
    "Payload",
    "PayloadRule",
    "Prompt",
]


@dataclass(frozen=True, slots=True)
class Prompt:
    """The ``>`` data prompt (after AT+CIPSEND / AT+CSODSEND)."""


@dataclass(frozen=True, slots=True)
class Payload:
    """A length-delimited binary block.

    :param header: the header as text, without the separator before the data
        (``+IPD,5``, ``+RECEIVE,0,16``, ``+CSONMI: 0,6``, ``+CIPRXGET: 2,11,0``)
    :param data: exactly the announced number of bytes
    :param rule: name of the rule that matched
    """

    header: str
    data: bytes
    rule: str


@dataclass(frozen=True, slots=True)
class Garbage:
    """Bytes that cannot be part of a valid answer (line noise, wrong baud rate)."""

    data: bytes


#: A text line is yielded as a plain ``str`` (CR/LF and surrounding blanks removed, never empty):
#: lines are by far the most common event, and a str costs nothing to build.
Line = str
Event = str | Prompt | Payload | Garbage

PROMPT_EVENT = Prompt()


@dataclass(frozen=True, slots=True)
class PayloadRule:
    """How to find a binary payload that follows a header at the start of a line.

    :param prefix: literal bytes the header starts with (checked first, cheaply)
    :param pattern: regex matched at the line start; it must end exactly where the data begins and
        have a group named ``len`` holding the data length in bytes
    :param max_header: a header longer than this is not one (the line is parsed as text)
    """

    prefix: bytes
    pattern: re.Pattern[bytes]
    max_header: int = 64


#: ``+IPD,<len>:<data>`` and ``+IPD,<len>,TCP:<data>`` (AT+CIPHEAD=1, AT+CIPSHOWTP=1).
IPD_RULE = PayloadRule(b"+IPD,", re.compile(rb"\+IPD,(?P<len>\d+)(?:,[A-Za-z]+)?:"))
#: ``+RECEIVE,<n>,<len>:`` CRLF ``<data>`` (multi-link receive, application note 6.8).
RECEIVE_RULE = PayloadRule(b"+RECEIVE,", re.compile(rb"\+RECEIVE,\d+,(?P<len>\d+):\r?\n"))
#: ``+CIPRXGET: 2,[<n>,]<len>,<remaining>`` CRLF ``<data>`` (manual read, raw mode).
CIPRXGET_RULE = PayloadRule(b"+CIPRXGET: 2,", re.compile(rb"\+CIPRXGET: 2,(?:\d+,)?(?P<len>\d+),\d+\r?\n"))
#: ``+CSONMI: <id>,<len>,<len raw bytes>`` (after AT+CSORCVFLAG=1). Not on by default.
CSONMI_RAW_RULE = PayloadRule(b"+CSONMI:", re.compile(rb"\+CSONMI: ?\d+,(?P<len>\d+),"))
#: ``+CSORXGET: 2,<id>,<req>,<len>,<len raw bytes>`` (manual read with AT+CSORCVFLAG=1). Not on by default.
CSORXGET_RAW_RULE = PayloadRule(b"+CSORXGET:", re.compile(rb"\+CSORXGET: ?2,\d+,\d+,(?P<len>\d+),"))

DEFAULT_RULES: dict[str, PayloadRule] = {
    "ipd": IPD_RULE,
    "receive": RECEIVE_RULE,
    "ciprxget": CIPRXGET_RULE,
}

_EOL = re.compile(rb"[\r\n]")
_NOT_EOL = re.compile(rb"[^\r\n]")
_BAD_BYTE = re.compile(rb"[^\t\x20-\x7e]")
_BAD_BYTE_OR_EOL_OK = re.compile(rb"[^\t\r\n\x20-\x7e]")
#: the bytes a text line may hold, with CR and LF: ``data.translate(None, _TEXT_BYTES)`` keeps only the
#: others, which is several times faster than a regex search when (as nearly always) there are none
_TEXT_BYTES = b"\t\r\n" + bytes(range(0x20, 0x7F))


def _first_bad_byte(buf: bytes | bytearray, start: int, end: int) -> int:
    """Index of the first byte in ``buf[start:end]`` that is not text, CR or LF; -1 if there is none."""
    if not buf[start:end].translate(None, _TEXT_BYTES):
        return -1
    bad = _BAD_BYTE_OR_EOL_OK.search(buf, start, end)
    return -1 if bad is None else bad.start()


_NEED_MORE = object()
_LINE_ENDS = (b"\n", b"\r")


class AtParser:
    """Incremental parser; feed bytes with :meth:`feed`, then drain events with :meth:`events`.

    ``parser.feed(chunk); for event in parser.events(): ...``. :meth:`parse` does both and returns a
    list. Stop iterating early (e.g. to switch to transparent data mode) and take the unparsed
    bytes with :meth:`take_buffer`.
    """

    def __init__(self, rules: dict[str, PayloadRule] | None = None) -> None:
        self._buf = bytearray()
        self._waiting_payload = False  # the buffer starts with a matched header, data incomplete
        self._skip_header = False  # parse the header at the buffer start as a text line
        self._rules: dict[str, PayloadRule] = dict(DEFAULT_RULES if rules is None else rules)
        self._by_first: dict[int, tuple[PayloadRule, ...]] = {}
        self._rebuild()

    # -- rules ----------------------------------------------------------------------------------
    def set_rule(self, name: str, rule: PayloadRule | None) -> None:
        """Add, replace (``rule``) or remove (``None``) the payload rule called ``name``."""
        if rule is None:
            self._rules.pop(name, None)
        else:
            if not rule.prefix:
                raise ValueError(f"payload rule {name!r} needs a non-empty prefix")
            if "len" not in rule.pattern.groupindex:
                raise ValueError(f"payload rule {name!r}: pattern has no group named 'len'")
            self._rules[name] = rule
        self._rebuild()

    @property
    def rules(self) -> dict[str, PayloadRule]:
        """The active payload rules by name (a copy)."""
        return dict(self._rules)

    def _rebuild(self) -> None:
        by_first: dict[int, list[PayloadRule]] = {}
        self._names = {id(rule): name for name, rule in self._rules.items()}
        self._markers = (b">", *(rule.prefix for rule in self._rules.values()))
        self._any_marker = re.compile(b"|".join(re.escape(marker) for marker in self._markers))
        for rule in self._rules.values():
            by_first.setdefault(rule.prefix[0], []).append(rule)
        self._by_first = {k: tuple(v) for k, v in by_first.items()}

    # -- feeding ----------------------------------------------------------------------------------
    def feed(self, data: bytes) -> None:
        """Append received bytes to the buffer."""
        self._buf += data

    def parse(self, data: bytes) -> list[Event]:
        """Feed ``data`` and return every complete event."""
        self._buf += data
        return list(self.events())

    def quick_lines(self, data: bytes) -> list[str] | None:
        """Parse ``data`` at once if it is the simple, common case; otherwise return None and keep nothing.

        The simple case is what most reads bring: nothing buffered, whole lines of clean text ending in
        CR or LF, no prompt and no payload header. The result is then exactly what :meth:`feed` and
        :meth:`events` would give (:meth:`line_end` tells where a line ends in ``data``). In every other
        case call those.
        """
        if self._buf or self._skip_header or data[-1:] not in _LINE_ENDS:
            return None
        if _first_bad_byte(data, 0, len(data)) >= 0 or self._any_marker.search(data) is not None:
            return None  # a byte that is not text, a prompt or a payload header
        return [stripped for line in data.decode("ascii").splitlines() if (stripped := line.strip())]

    @staticmethod
    def line_end(data: bytes, index: int) -> int:
        """Offset in ``data`` just after the terminator of its ``index``-th (0-based) non-blank line, as
        :meth:`quick_lines` counts them (where transparent data starts when that line switches to data
        mode)."""
        pos = 0
        for piece in data.splitlines(True):
            pos += len(piece)
            if piece.strip():
                if index == 0:
                    return pos
                index -= 1
        return pos

    def take_buffer(self) -> bytes:
        """Remove and return the unparsed bytes (used when switching to transparent data mode)."""
        data = bytes(self._buf)
        self._buf.clear()
        return data

    @property
    def buffered(self) -> int:
        """Number of bytes waiting for the rest of their line or payload."""
        return len(self._buf)

    def reset(self) -> None:
        """Drop everything buffered (after the link was reopened)."""
        self._buf.clear()
        self._skip_header = False

    @property
    def in_payload(self) -> bool:
        """True while a binary header has been seen and its data is still incomplete."""
        return self._waiting_payload

    def abandon_payload(self) -> bool:
        """Give up on an incomplete binary payload (the module rebooted or lied about the length).

        The header is parsed as a text line instead, and what followed it as ordinary lines, so the
        answers that the payload was swallowing come out. Returns False if no payload was waiting.
        """
        if not self._waiting_payload:
            return False
        self._skip_header = True
        self._waiting_payload = False
        return True

    # -- the loop -----------------------------------------------------------------------------------
    def events(self) -> Generator[Event, None, None]:
        """Yield the complete events in the buffer; consumed bytes are removed when iteration ends."""
        buf = self._buf
        pos = 0
        by_first = self._by_first
        self._waiting_payload = False
        markers = self._markers
        cache: dict[bytes, int] = {}
        cache_end = -1
        try:
            while True:
                m = _NOT_EOL.search(buf, pos)
                if m is None:
                    pos = len(buf)
                    return
                pos = m.start()
                # Fast path: a run of complete, clean text lines is split in C. It stops before the
                # first byte that needs the careful path: a prompt, a payload header, a bad byte.
                last = max(buf.rfind(b"\n"), buf.rfind(b"\r"))
                if last > pos:
                    if last != cache_end:
                        cache.clear()
                        cache_end = last
                    stop = last
                    for marker in markers:
                        at = cache.get(marker)
                        if at is None or (0 <= at < pos):
                            at = buf.find(marker, pos, last)
                            cache[marker] = at
                        if 0 <= at < stop:
                            stop = at
                    at = cache.get(b"")
                    if at is None or (0 <= at < pos):
                        at = _first_bad_byte(buf, pos, last)
                        cache[b""] = at
                    if 0 <= at < stop:
                        stop = at
                    end = max(buf.rfind(b"\n", pos, stop), buf.rfind(b"\r", pos, stop))
                    if stop == last:
                        end = last
                    if end > pos:
                        for piece in bytes(buf[pos : end + 1]).splitlines(True):
                            pos += len(piece)
                            stripped = piece.strip()
                            if stripped:
                                yield stripped.decode("ascii")
                        continue
                first = buf[pos]
                if first == 0x3E:  # '>': the data prompt
                    pos += 1
                    if pos < len(buf) and buf[pos] == 0x20:
                        pos += 1
                    yield PROMPT_EVENT
                    continue
                rules = by_first.get(first)
                if self._skip_header:
                    self._skip_header = False
                    rules = None
                if rules is not None:
                    found = self._match_rules(buf, pos, rules)
                    if found is _NEED_MORE:
                        return
                    if found is not None:
                        assert isinstance(found, tuple)
                        event, pos = found
                        yield event
                        continue
                end_match = _EOL.search(buf, pos)
                if end_match is None:
                    if len(buf) - pos > const.MAX_LINE_LENGTH:
                        junk = bytes(buf[pos:])
                        pos = len(buf)
                        yield Garbage(junk)
                    return
                end = end_match.start()
                raw = bytes(buf[pos:end])
                pos = end + 1
                if buf[end] == 0x0D and pos < len(buf) and buf[pos] == 0x0A:
                    pos += 1  # CRLF is one terminator (matters when data mode starts right after)
                if _BAD_BYTE.search(raw) is not None:
                    yield Garbage(raw)
                    continue
                text = raw.decode("ascii").strip()
                if text:
                    yield text
        finally:
            if pos:
                del buf[:pos]

    def _match_rules(
        self, buf: bytearray, pos: int, rules: tuple[PayloadRule, ...]
    ) -> tuple[Payload, int] | object | None:
        avail = len(buf) - pos
        for rule in rules:
            prefix = rule.prefix
            if avail < len(prefix):
                if prefix.startswith(buf[pos:]):
                    return _NEED_MORE
                continue
            if not buf.startswith(prefix, pos):
                continue
            m = rule.pattern.match(buf, pos)
            if m is None:
                window_end = pos + rule.max_header
                if avail < rule.max_header and buf.find(b"\n", pos, window_end) < 0:
                    return _NEED_MORE  # the header may still be arriving
                continue
            length = int(m.group("len"))
            if length > const.MAX_PAYLOAD_LENGTH:
                continue
            start = m.end()
            if len(buf) - start < length:
                self._waiting_payload = True
                return _NEED_MORE
            header = m.group(0).decode("ascii", "replace").rstrip("\r\n:, ")
            data = bytes(buf[start : start + length])
            return Payload(header, data, self._names.get(id(rule), "?")), start + length
        return None
