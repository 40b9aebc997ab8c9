"""The session transcript format (version 1): timestamped, direction-marked, byte-exact, line-oriented text.

A transcript is UTF-8 text. Its first line names the format and its version; ``# key: value`` lines before
the first record are metadata; other ``#`` lines are comments; blank lines are ignored. Every other line is
a record::

    # sim7020-session 1
    # started: 2026-03-01T10:00:00.000000+00:00
    # device: /dev/ttyUSB0
      0.000000 > AT\\r
      0.004181 < AT\\r\\r\\nOK\\r\\n
      1.250007 * client disconnected

``TIME DIR DATA``, separated by single spaces (the time may be padded with leading spaces):

- ``TIME``: seconds since the start of the recording, never decreasing (written with 6 decimals).
- ``DIR``: ``>`` bytes the client sent to the modem, ``<`` bytes the modem sent to the client, ``*`` an
  event noted by the recorder (client connected/disconnected, device lost); its DATA is plain text.
- ``DATA``: the bytes of one read, exactly: printable ASCII as it is, ``\\r`` ``\\n`` ``\\t`` ``\\\\`` for
  CR, LF, TAB and backslash, ``\\xHH`` for every other byte, and a space at the start or end of DATA as
  ``\\x20`` (so that no editor or mail client can strip it: the data prompt is ``\\r\\n>\\x20``).

One record is one read from one side, so the chunking of the stream is kept as well as its bytes: reading a
written transcript gives back exactly the records that were written (a property test checks this for any
byte stream and any chunking).

Why a format of our own: pyserial's ``spy://`` handler and ser2net's trace files log only one client's
port, as hex dumps meant for reading, with no direction-tagged record that a program can read back, and
pytest-reserial (https://pypi.org/project/pytest-reserial/) stores base64 JSON of in-process pyserial calls;
none is both diff-able by a person reviewing a contributed session and exact down to the byte and the read.
The format is small enough that the reader and the writer below are its full specification.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

#: The format name in the first line, and the version this module writes and reads.
FORMAT_NAME = "sim7020-session"
FORMAT_VERSION = 1

Direction = Literal[">", "<"]
TO_MODEM: Direction = ">"
FROM_MODEM: Direction = "<"
EVENT = "*"

_ESCAPES = {0x0D: "\\r", 0x0A: "\\n", 0x09: "\\t", 0x5C: "\\\\"}
#: byte -> its text in DATA
_BYTE_TEXT: tuple[str, ...] = tuple(
    _ESCAPES.get(b, chr(b) if 0x20 <= b <= 0x7E else f"\\x{b:02x}") for b in range(256)
)
_HEADER = re.compile(r"#\s*" + re.escape(FORMAT_NAME) + r"\s+(\S+)\s*")
_META = re.compile(r"#\s*([A-Za-z][A-Za-z0-9_-]*):\s?(.*)")
_RECORD = re.compile(r" *([0-9]+(?:\.[0-9]+)?) ([<>*])(?: (.*))?")
_TOKEN = re.compile(r"\\x[0-9A-Fa-f]{2}|\\[rnt\\]|[\x20-\x5b\x5d-\x7e]+|(.)", re.DOTALL)
_UNESCAPE = {"\\r": b"\r", "\\n": b"\n", "\\t": b"\t", "\\\\": b"\\"}


class SessionError(Exception):
    """The recorder or the replayer cannot do what was asked (the message says why)."""


class TranscriptError(ValueError):
    """A transcript that cannot be read; the message names the file, the line and what is wrong."""


@dataclass(frozen=True, slots=True)
class Record:
    """Bytes that crossed the wire in one read: ``direction`` is ``>`` (to the modem) or ``<`` (from it)."""

    time: float
    direction: Direction
    data: bytes


@dataclass(frozen=True, slots=True)
class Event:
    """Something the recorder noted (``client connected 127.0.0.1:50312``); not wire data."""

    time: float
    text: str


@dataclass(slots=True)
class Session:
    """A transcript read back: its metadata and its entries in file order."""

    version: int = FORMAT_VERSION
    metadata: dict[str, str] = field(default_factory=dict)
    entries: list[Record | Event] = field(default_factory=list)

    @property
    def records(self) -> list[Record]:
        """The wire data only."""
        return [e for e in self.entries if isinstance(e, Record)]

    def stream(self, direction: Direction) -> bytes:
        """Everything one side sent, concatenated."""
        return b"".join(r.data for r in self.records if r.direction == direction)


def escape(data: bytes) -> str:
    """DATA text for ``data`` (see the module docstring)."""
    text = "".join([_BYTE_TEXT[b] for b in data])
    if text.startswith(" "):
        text = "\\x20" + text[1:]
    if text.endswith(" "):
        text = text[:-1] + "\\x20"
    return text


def unescape(text: str) -> bytes:
    """The bytes of a DATA field; :class:`ValueError` names the first character that is not allowed."""
    out = bytearray()
    for match in _TOKEN.finditer(text):
        bad = match.group(1)
        if bad is not None:
            if bad == "\\":
                raise ValueError(
                    f"bad escape at column {match.start() + 1} (use \\r \\n \\t \\\\ or \\xHH): {text!r}"
                )
            raise ValueError(
                f"character {bad!r} at column {match.start() + 1} must be written as an escape"
                f" (\\xHH per byte): {text!r}"
            )
        token = match.group(0)
        if token.startswith("\\x"):
            out.append(int(token[2:], 16))
        elif token in _UNESCAPE:
            out += _UNESCAPE[token]
        else:
            out += token.encode("ascii")
    return bytes(out)


def format_time(seconds: float) -> str:
    """TIME as written: seconds with 6 decimals, right-aligned for reading."""
    return f"{seconds:10.6f}"


def format_record(record: Record | Event) -> str:
    """One line of a transcript (without the newline)."""
    if isinstance(record, Event):
        if "\n" in record.text or "\r" in record.text:
            raise ValueError(f"an event is one line of text: {record.text!r}")
        return f"{format_time(record.time)} {EVENT} {record.text}"
    if record.direction not in (TO_MODEM, FROM_MODEM):
        raise ValueError(f"direction must be '>' or '<', not {record.direction!r}")
    return f"{format_time(record.time)} {record.direction} {escape(record.data)}"


def format_header(metadata: dict[str, str] | None = None) -> str:
    """The header lines (first line and metadata), each ending with a newline."""
    lines = [f"# {FORMAT_NAME} {FORMAT_VERSION}\n"]
    for key, value in (metadata or {}).items():
        if not _META.fullmatch(f"# {key}: {value}") or "\n" in value:
            raise ValueError(f"bad metadata entry {key!r}: {value!r}")
        lines.append(f"# {key}: {value}\n")
    return "".join(lines)


def now_iso() -> str:
    """The current wall-clock time in UTC, as the ``started`` metadata holds it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


def write_transcript(
    fh: TextIO, entries: Iterable[Record | Event], metadata: dict[str, str] | None = None
) -> None:
    """Write a whole transcript to an open text file."""
    fh.write(format_header(metadata))
    for entry in entries:
        fh.write(format_record(entry) + "\n")


def dumps(entries: Iterable[Record | Event], metadata: dict[str, str] | None = None) -> str:
    """A whole transcript as a string."""
    lines = [format_header(metadata)]
    lines.extend(format_record(entry) + "\n" for entry in entries)
    return "".join(lines)


def loads(text: str, *, name: str = "<transcript>") -> Session:
    """Read a transcript from a string; :class:`TranscriptError` names the line and the problem."""
    return _read(text.splitlines(), name)


def load(path: str | Path) -> Session:
    """Read a transcript file (blocking: call it in a thread from async code)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise TranscriptError(f"{p}: not UTF-8 text ({err})") from None
    return _read(text.splitlines(), str(p))


def _read(lines: Iterable[str], name: str) -> Session:
    session = Session()
    seen_header = False
    in_metadata = True
    last_time = 0.0
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        where = f"{name}:{number}"
        if not seen_header:
            if not line.strip():
                continue
            match = _HEADER.fullmatch(line)
            if match is None:
                raise TranscriptError(
                    f"{where}: not a session transcript (the first line must be '# {FORMAT_NAME} "
                    f"{FORMAT_VERSION}'), got {line[:60]!r}"
                )
            if match.group(1) != str(FORMAT_VERSION):
                raise TranscriptError(
                    f"{where}: transcript format version {match.group(1)!r} is not supported "
                    f"(this version of sim7020 reads version {FORMAT_VERSION})"
                )
            seen_header = True
            continue
        if not line.strip():
            continue
        if line.startswith("#"):
            meta = _META.fullmatch(line)
            if in_metadata and meta is not None:
                session.metadata[meta.group(1)] = meta.group(2)
            continue
        in_metadata = False
        match = _RECORD.fullmatch(line)
        if match is None:
            raise TranscriptError(
                f"{where}: expected 'TIME DIR DATA' (e.g. '0.125000 > AT\\r') or a '#' comment,"
                f" got {line[:60]!r}"
            )
        time = float(match.group(1))
        if time < last_time:
            raise TranscriptError(f"{where}: time {time} goes back (the previous record is at {last_time})")
        last_time = time
        direction, data = match.group(2), match.group(3) or ""
        if direction == EVENT:
            session.entries.append(Event(time, data))
            continue
        if not data:
            raise TranscriptError(f"{where}: a record needs data after '{direction} '")
        try:
            payload = unescape(data)
        except ValueError as err:
            raise TranscriptError(f"{where}: {err}") from None
        session.entries.append(Record(time, TO_MODEM if direction == ">" else FROM_MODEM, payload))
    if not seen_header:
        raise TranscriptError(f"{name}: empty file, not a session transcript")
    return session
