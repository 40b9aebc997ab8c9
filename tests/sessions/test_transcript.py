"""The transcript format: exact round trips, readable escapes, clear errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.sessions.transcript import (
    FROM_MODEM,
    TO_MODEM,
    Event,
    Record,
    TranscriptError,
    dumps,
    escape,
    loads,
    unescape,
)


@pytest.mark.parametrize(
    ("data", "text"),
    [
        (b"AT\r", "AT\\r"),
        (b"\r\n+CSQ: 20,0\r\n\r\nOK\r\n", "\\r\\n+CSQ: 20,0\\r\\n\\r\\nOK\\r\\n"),
        (b"\r\n> ", "\\r\\n>\\x20"),  # the data prompt keeps its trailing space
        (b" x ", "\\x20x\\x20"),
        (b"\x00\x01\xff\x1a\\", "\\x00\\x01\\xff\\x1a\\\\"),
        (b'AT+CSOSEND=0,0,"Hello Light"\r', 'AT+CSOSEND=0,0,"Hello Light"\\r'),
        (b"a\tb", "a\\tb"),
    ],
)
def test_escape_is_readable_and_reversible(data: bytes, text: str) -> None:
    assert escape(data) == text
    assert unescape(text) == data


def test_example_transcript_reads_as_documented() -> None:
    session = loads(
        "# sim7020-session 1\n"
        "# started: 2026-03-01T10:00:00+00:00\n"
        "# device: /dev/ttyUSB0\n"
        "\n"
        "  0.000000 > AT\\r\n"
        "# a comment between records\n"
        "  0.004181 < AT\\r\\r\\nOK\\r\\n\n"
        "  1.250007 * client disconnected\n"
    )
    assert session.version == 1
    assert session.metadata == {"started": "2026-03-01T10:00:00+00:00", "device": "/dev/ttyUSB0"}
    assert session.entries == [
        Record(0.0, TO_MODEM, b"AT\r"),
        Record(0.004181, FROM_MODEM, b"AT\r\r\nOK\r\n"),
        Event(1.250007, "client disconnected"),
    ]
    assert session.stream(FROM_MODEM) == b"AT\r\r\nOK\r\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("hello\n", "the first line must be '# sim7020-session 1'"),
        ("# sim7020-session 2\n", "version '2' is not supported"),
        ("# sim7020-session 1\n0.1 > AT\\q\n", ":2: bad escape at column 3"),
        ("# sim7020-session 1\n0.1 > AT\\x4\n", ":2: bad escape"),
        (
            "# sim7020-session 1\n0.1 > caf\u00e9\n",
            "character '\u00e9' at column 4 must be written as an escape",
        ),
        ("# sim7020-session 1\n0.1 > a\tb\n", "character '\\t' at column 2"),
        ("# sim7020-session 1\n0.2 > AT\\r\n0.1 < OK\n", ":3: time 0.1 goes back"),
        ("# sim7020-session 1\n0.2 = AT\n", ":2: expected 'TIME DIR DATA'"),
        ("# sim7020-session 1\nAT\\r\n", ":2: expected 'TIME DIR DATA'"),
        ("# sim7020-session 1\n0.2 >\n", ":2: a record needs data"),
    ],
)
def test_bad_transcripts_are_rejected_with_line_and_reason(text: str, message: str) -> None:
    with pytest.raises(TranscriptError, match=None) as info:
        loads(text, name="s.txt")
    assert message in str(info.value)
    assert str(info.value).startswith("s.txt")


def test_a_record_line_needs_exactly_one_space_before_data() -> None:
    # a leading space in DATA is data (hand-written files should write \x20, as the writer does)
    session = loads("# sim7020-session 1\n0.5 <  OK\n")
    assert session.records == [Record(0.5, FROM_MODEM, b" OK")]


directions = st.sampled_from([TO_MODEM, FROM_MODEM])
chunks = st.lists(
    st.tuples(directions, st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=5_000_000)),
    max_size=40,
)


@given(chunks)
def test_any_stream_and_chunking_round_trips_exactly(items: list[tuple[str, bytes, int]]) -> None:
    """Write reads (any bytes, any split, either direction), read them back: the same reads, same order."""
    t = 0
    records = []
    for direction, data, step_us in items:
        t += step_us
        records.append(Record(t / 1e6, direction, data))  # type: ignore[arg-type]
    text = dumps(records, {"device": "socket://127.0.0.1:7020"})
    back = loads(text)
    assert back.records == records
    assert back.metadata == {"device": "socket://127.0.0.1:7020"}
    for line in text.splitlines():
        assert line == line.strip() or line.startswith(" ")  # nothing an editor could strip at the end
        assert all(0x20 <= ord(ch) <= 0x7E for ch in line)  # plain printable ASCII, one record per line


@given(st.binary(max_size=200), st.lists(st.integers(min_value=1, max_value=199), max_size=10))
def test_a_stream_split_anywhere_concatenates_back(data: bytes, cuts: list[int]) -> None:
    points = sorted({c for c in cuts if c < len(data)})
    pieces = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True) if data[a:b]]
    records = [Record(i * 0.001, FROM_MODEM, p) for i, p in enumerate(pieces)]
    assert loads(dumps(records)).stream(FROM_MODEM) == data
