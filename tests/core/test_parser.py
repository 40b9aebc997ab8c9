"""AtParser: examples from the application note and Hypothesis properties (any chunking, garbage)."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sim7020_core.at.parser import (
    CSONMI_RAW_RULE,
    CSORXGET_RAW_RULE,
    AtParser,
    Event,
    Garbage,
    Line,
    Payload,
    PayloadRule,
    Prompt,
)


def parse_chunks(chunks: list[bytes], parser: AtParser | None = None) -> list[Event]:
    parser = parser or AtParser()
    events: list[Event] = []
    for chunk in chunks:
        events.extend(parser.parse(chunk))
    return events


def test_note_transcript() -> None:
    stream = (
        b"AT+CSQ\r\r\n+CSQ: 20,0\r\n\r\nOK\r\n"
        b"\r\n+CSONMI: 0,6,313233\r\n"
        b"\r\n+CSOERR: 0,2\r\n"
        b"\r\nDATA ACCEPT: 0,10\r\n"
        b"\r\n0, CONNECT OK\r\n"
    )
    assert parse_chunks([stream]) == [
        Line("AT+CSQ"),
        Line("+CSQ: 20,0"),
        Line("OK"),
        Line("+CSONMI: 0,6,313233"),
        Line("+CSOERR: 0,2"),
        Line("DATA ACCEPT: 0,10"),
        Line("0, CONNECT OK"),
    ]


def test_prompt_without_crlf() -> None:
    parser = AtParser()
    assert parser.parse(b"AT+CIPSEND=0\r\r\n> ") == [Line("AT+CIPSEND=0"), Prompt()]
    assert parser.buffered == 0
    assert parser.parse(b"\r\n0, SEND OK\r\n") == [Line("0, SEND OK")]


def test_prompt_split_from_its_space() -> None:
    parser = AtParser()
    assert parser.parse(b"\r\n>") == [Prompt()]
    assert parser.parse(b" ") == []
    assert parser.parse(b"\r\nSEND OK\r\n") == [Line("SEND OK")]


def test_partial_line_waits() -> None:
    parser = AtParser()
    assert parser.parse(b"\r\n+CSQ: 2") == []
    assert parser.parse(b"0,0\r") == [Line("+CSQ: 20,0")]


def test_ipd_with_crlf_inside_payload() -> None:
    assert parse_chunks([b"\r\n+IPD,5:a\r\nbc\r\nOK\r\n"]) == [
        Payload("+IPD,5", b"a\r\nbc", "ipd"),
        Line("OK"),
    ]


def test_ipd_with_protocol() -> None:
    assert parse_chunks([b"+IPD,3,UDP:xyz"]) == [Payload("+IPD,3,UDP", b"xyz", "ipd")]


def test_receive_payload_after_crlf() -> None:
    assert parse_chunks([b"\r\n+RECEIVE,1,16:\r\n", b"0123456789ABCDEF\r\n"]) == [
        Payload("+RECEIVE,1,16", b"0123456789ABCDEF", "receive")
    ]


def test_ciprxget_2_single_and_multi_link() -> None:
    assert parse_chunks([b"\r\n+CIPRXGET: 2,11,0\r\nHELLO WORLD\r\nOK\r\n"]) == [
        Payload("+CIPRXGET: 2,11,0", b"HELLO WORLD", "ciprxget"),
        Line("OK"),
    ]
    assert parse_chunks([b"\r\n+CIPRXGET: 2,1,3,7\r\n\x00\r\n\r\nOK\r\n"]) == [
        Payload("+CIPRXGET: 2,1,3,7", b"\x00\r\n", "ciprxget"),
        Line("OK"),
    ]


def test_ciprxget_hex_mode_is_text() -> None:
    assert parse_chunks([b"\r\n+CIPRXGET: 3,11,0\r\n48454C4C4F20574F524C44\r\nOK\r\n"]) == [
        Line("+CIPRXGET: 3,11,0"),
        Line("48454C4C4F20574F524C44"),
        Line("OK"),
    ]


def test_raw_csonmi_only_when_enabled() -> None:
    stream = b"\r\n+CSONMI: 0,4,\r\n\r\n\r\nOK\r\n"
    assert parse_chunks([stream]) == [Line("+CSONMI: 0,4,"), Line("OK")]
    parser = AtParser()
    parser.set_rule("csonmi", CSONMI_RAW_RULE)
    assert parse_chunks([stream], parser) == [Payload("+CSONMI: 0,4", b"\r\n\r\n", "csonmi"), Line("OK")]
    parser.set_rule("csonmi", None)
    assert "csonmi" not in parser.rules


def test_raw_csorxget_rule() -> None:
    parser = AtParser()
    parser.set_rule("csorxget", CSORXGET_RAW_RULE)
    assert parser.parse(b"\r\n+CSORXGET: 2,0,1000,3,a\nb\r\nOK\r\n") == [
        Payload("+CSORXGET: 2,0,1000,3", b"a\nb", "csorxget"),
        Line("OK"),
    ]


def test_header_lookalike_is_a_line() -> None:
    assert parse_chunks([b"\r\n+IPD,not a header\r\n"]) == [Line("+IPD,not a header")]


def test_payload_length_over_limit_is_a_line() -> None:
    assert parse_chunks([b"\r\n+IPD,99999999:x\r\n"]) == [Line("+IPD,99999999:x")]


def test_control_and_8bit_bytes_are_garbage() -> None:
    assert parse_chunks([b"\r\n+CRE\xff\x80b\r\nOK\r\n"]) == [Garbage(b"+CRE\xff\x80b"), Line("OK")]


def test_overlong_line_is_dropped() -> None:
    parser = AtParser()
    events = parser.parse(b"x" * 10000)
    assert events == [Garbage(b"x" * 10000)]
    assert parser.parse(b"\r\nOK\r\n") == [Line("OK")]


def test_take_buffer_returns_unparsed() -> None:
    parser = AtParser()
    events = parser.events()
    parser.feed(b"\r\nCONNECT\r\n12345\r\n")
    assert next(events) == Line("CONNECT")
    events.close()
    assert parser.take_buffer() == b"12345\r\n"


def test_bad_rule_is_refused() -> None:
    parser = AtParser()
    with pytest.raises(ValueError, match="len"):
        parser.set_rule("x", PayloadRule(b"+X", re.compile(rb"\+X(\d+)")))
    with pytest.raises(ValueError, match="prefix"):
        parser.set_rule("x", PayloadRule(b"", re.compile(rb"(?P<len>\d+)")))


# --- properties -------------------------------------------------------------------------------------

_TEXT = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40)
_RULE_PREFIXES = ("+IPD,", "+RECEIVE,", "+CIPRXGET: 2,", "+CSONMI:")


def _plain(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and not stripped.startswith(">") and not stripped.startswith(_RULE_PREFIXES)


_line = _TEXT.filter(_plain).map(lambda t: ("line", t.strip()))
_urc = st.builds(
    lambda i, n: ("line", f"+CSONMI: {i},{2 * len(n)},{n.encode().hex().upper()}"),
    st.integers(0, 4),
    st.text(alphabet="abc", max_size=8),
)
_blob = st.binary(max_size=40)
_ipd = st.builds(lambda d: ("ipd", d), _blob)
_receive = st.builds(lambda n, d: ("receive", n, d), st.integers(0, 5), _blob)
_rxget = st.builds(lambda d: ("ciprxget", d), _blob)
_prompt = st.just(("prompt",))
_item = st.one_of(_line, _urc, _ipd, _receive, _rxget, _prompt)


def _encode(items: list[tuple]) -> tuple[bytes, list[Event]]:
    out = bytearray()
    expected: list[Event] = []
    for item in items:
        kind = item[0]
        if kind == "line":
            out += b"\r\n" + item[1].encode() + b"\r\n"
            expected.append(Line(item[1]))
        elif kind == "prompt":
            out += b"\r\n> "
            expected.append(Prompt())
        elif kind == "ipd":
            out += b"\r\n+IPD,%d:" % len(item[1]) + item[1] + b"\r\n"
            expected.append(Payload(f"+IPD,{len(item[1])}", item[1], "ipd"))
        elif kind == "receive":
            out += b"\r\n+RECEIVE,%d,%d:\r\n" % (item[1], len(item[2])) + item[2] + b"\r\n"
            expected.append(Payload(f"+RECEIVE,{item[1]},{len(item[2])}", item[2], "receive"))
        else:
            out += b"\r\n+CIPRXGET: 2,%d,0\r\n" % len(item[1]) + item[1] + b"\r\nOK\r\n"
            expected.append(Payload(f"+CIPRXGET: 2,{len(item[1])},0", item[1], "ciprxget"))
            expected.append(Line("OK"))
    return bytes(out), expected


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    chunks, last = [], 0
    for p in points:
        chunks.append(data[last:p])
        last = p
    chunks.append(data[last:])
    return chunks


@given(st.lists(_item, max_size=12), st.lists(st.integers(min_value=0), max_size=30))
@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
def test_any_chunking_gives_the_same_events(items: list[tuple], cuts: list[int]) -> None:
    data, expected = _encode(items)
    assert parse_chunks([data]) == expected
    assert parse_chunks(_split(data, cuts)) == expected


@given(st.lists(_item, max_size=8))
@settings(max_examples=100)
def test_byte_at_a_time_gives_the_same_events(items: list[tuple]) -> None:
    data, expected = _encode(items)
    assert parse_chunks([data[i : i + 1] for i in range(len(data))]) == expected


@given(st.binary(max_size=300), st.lists(st.integers(min_value=0), max_size=20))
@settings(max_examples=300)
def test_random_bytes_never_raise_and_chunking_is_irrelevant(data: bytes, cuts: list[int]) -> None:
    parser = AtParser()
    parser.set_rule("csonmi", CSONMI_RAW_RULE)
    whole = parse_chunks([data], parser)
    parser2 = AtParser()
    parser2.set_rule("csonmi", CSONMI_RAW_RULE)
    assert parse_chunks(_split(data, cuts), parser2) == whole
    for event in whole:
        if isinstance(event, str):
            assert event == event.strip()
            assert event
            assert "\r" not in event
            assert "\n" not in event


@given(
    st.binary(max_size=60).filter(lambda b: b"\r" not in b and b"\n" not in b), st.lists(_line, max_size=5)
)
@settings(max_examples=200)
def test_parser_resyncs_after_a_garbage_line(garbage: bytes, items: list[tuple]) -> None:
    """Whatever one garbage line holds, the lines after its CRLF come out intact."""
    assume(not garbage.lstrip(b"\t ").startswith((b">", b"+IPD,", b"+RECEIVE,", b"+CIPRXGET: 2,")))
    data, expected = _encode(items)
    events = parse_chunks([b"\r\n" + garbage + data])
    tail = events[len(events) - len(expected) :] if expected else []
    assert tail == expected


def test_abandoned_payload_is_parsed_as_text() -> None:
    parser = AtParser()
    assert parser.parse(b"\r\n+IPD,50:abc\r\nOK\r\n") == []
    assert parser.in_payload
    assert parser.abandon_payload()
    assert parser.parse(b"") == ["+IPD,50:abc", "OK"]
    assert not parser.in_payload
    assert not parser.abandon_payload()


# --- the quick path (AtParser.quick_lines) must agree with the careful one --------------------------------

_quick_bytes = st.one_of(
    st.binary(max_size=120),
    st.lists(
        st.sampled_from([b"\r\n", b"\r", b"\n", b"OK", b" ", b"\t", b"+CSQ: 20,0", b">", b"+IPD,3:", b"\x00"])
    ).map(b"".join),
    st.lists(_item, max_size=6).map(lambda items: _encode(items)[0]),
)


@given(_quick_bytes)
@settings(max_examples=500)
def test_quick_lines_is_either_declined_or_exactly_what_the_careful_path_gives(data: bytes) -> None:
    quick = AtParser().quick_lines(data)
    careful = AtParser()
    events = careful.parse(data)
    if quick is not None:
        assert quick == events
        assert careful.buffered == 0  # nothing was left half-parsed
        for index in range(len(quick)):  # line_end splits the data right after that line
            end = AtParser.line_end(data, index)
            assert AtParser().parse(data[:end]) == quick[: index + 1]
            assert AtParser().parse(data[end:]) == quick[index + 1 :]


def test_quick_lines_takes_the_common_answer_and_declines_the_rest() -> None:
    assert AtParser().quick_lines(b"\r\n+CSQ: 20,0\r\n\r\nOK\r\n") == ["+CSQ: 20,0", "OK"]
    assert AtParser().quick_lines(b"\r\nOK") is None  # incomplete line
    assert AtParser().quick_lines(b"\r\n> ") is None  # prompt
    assert AtParser().quick_lines(b"\r\n+IPD,2:ab\r\n") is None  # payload header
    assert AtParser().quick_lines(b"\r\nO\xffK\r\n") is None  # garbage
    busy = AtParser()
    busy.feed(b"+CS")
    assert busy.quick_lines(b"Q: 1,0\r\n") is None  # something is already buffered
