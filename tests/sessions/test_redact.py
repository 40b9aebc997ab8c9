"""Redaction: identifiers become stable fakes of the same shape, wherever the reads are split."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.sessions.redact import Redactor, luhn_valid
from sim7020_core.sessions.transcript import FROM_MODEM, TO_MODEM

IMEI = "869714031234566"
IMSI = "460041234567890"
ICCID = "89860412345678901234"

#: an init and a socket exchange as a driver and a module would have them (client reads, module reads)
SESSION: list[tuple[str, bytes]] = [
    (TO_MODEM, b"AT+CGSN\r"),
    (FROM_MODEM, f"\r\n{IMEI}\r\n\r\nOK\r\n".encode()),
    (TO_MODEM, b"AT+CIMI\r"),
    (FROM_MODEM, f"\r\n{IMSI}\r\n\r\nOK\r\n".encode()),
    (TO_MODEM, b"AT+CCID\r"),
    (FROM_MODEM, f"\r\n{ICCID}\r\n\r\nOK\r\n".encode()),
    (TO_MODEM, b"AT+CGCONTRDP\r"),
    (FROM_MODEM, b'\r\n+CGCONTRDP: 1,5,"iot.example","10.250.0.213.255.255.255.0"\r\n\r\nOK\r\n'),
    (TO_MODEM, b'AT+CSOCON=0,5683,"203.0.113.77"\r'),  # a documentation address stays
    (FROM_MODEM, b"\r\nOK\r\n"),
    (TO_MODEM, b'AT+CSOCON=1,5683,"117.131.85.139"\r'),
    (FROM_MODEM, b"\r\nOK\r\n"),
    (TO_MODEM, b'AT+CDNSGIP="example.com"\r'),
    (
        FROM_MODEM,
        b'\r\nOK\r\n\r\n+CDNSGIP: 1,"example.com","93.184.216.34","2606:2800:220:1:248:1893:25c8:1946"\r\n',
    ),
    (TO_MODEM, b'AT+CSOCON=2,80,"127.0.0.1"\r'),
    (FROM_MODEM, b"\r\n+CSONMI: 0,10,706F6E67FF\r\n\r\n+CCLK: 24/04/30,07:49:36+12\r\n"),
    (TO_MODEM, b"AT+CSODSEND=0,3\r"),
    (FROM_MODEM, b"\r\n> "),
    (TO_MODEM, b"\x00\x01\x02"),
    (FROM_MODEM, b"\r\nDATA ACCEPT: 3\r\n\r\nOK\r\n+CGSN: " + IMEI.encode() + b"\r\n"),
]


def _streams(pieces: list[tuple[str, bytes]]) -> tuple[bytes, bytes]:
    to = b"".join(d for direction, d in pieces if direction == TO_MODEM)
    back = b"".join(d for direction, d in pieces if direction == FROM_MODEM)
    return to, back


def test_identities_and_addresses_are_replaced_by_fakes_of_the_same_shape() -> None:
    redactor = Redactor()
    to, back = _streams(redactor.redact_all(SESSION))
    text = (to + back).decode("latin-1")
    for secret in (IMEI, IMSI, ICCID, "10.250.0.213", "117.131.85.139", "93.184.216.34", "2606:2800:220:1"):
        assert secret not in text
    fake_imei = redactor.mapping[IMEI]
    assert fake_imei[:8] == IMEI[:8]
    assert len(fake_imei) == 15
    assert luhn_valid(fake_imei)
    fake_imsi = redactor.mapping[IMSI]
    assert fake_imsi[:5] == IMSI[:5]
    assert len(fake_imsi) == 15
    fake_iccid = redactor.mapping[ICCID]
    assert fake_iccid[:6] == ICCID[:6]
    assert len(fake_iccid) == 20
    assert luhn_valid(fake_iccid)
    assert f"\r\n{fake_imei}\r\n".encode() in back
    assert b'"192.0.2.1.255.255.255.0"' in back  # address replaced, netmask kept
    assert b'"192.0.2.2"' in to  # 117.131.85.139
    assert b'"203.0.113.77"' in to
    assert b'"127.0.0.1"' in to
    assert b'"2001:db8::1"' in back
    # what is not an identifier is untouched: payload hex, time, prompt, binary data
    assert b"706F6E67FF" in back
    assert b"+CCLK: 24/04/30,07:49:36+12" in back
    assert b"\r\n> " in back
    assert b"\x00\x01\x02" in to
    # a value learned once is replaced wherever it appears later
    assert f"+CGSN: {fake_imei}\r\n".encode() in back


def test_the_same_value_always_gets_the_same_fake() -> None:
    redactor = Redactor()
    pieces = redactor.redact_all(
        [
            (TO_MODEM, b'AT+CSOCON=0,1,"117.131.85.139"\r'),
            (FROM_MODEM, b"\r\nOK\r\n"),
            (TO_MODEM, b'AT+CSOCON=1,1,"117.131.85.139"\r'),
            (TO_MODEM, b'AT+CSOCON=1,1,"117.131.85.140"\r'),
        ]
    )
    to, _ = _streams(pieces)
    assert re.findall(rb'"([\d.]+)"', to) == [b"192.0.2.1", b"192.0.2.1", b"192.0.2.2"]


def test_the_order_of_the_two_directions_is_kept() -> None:
    """A prompt is never held back behind the data the client sends after it."""
    redactor = Redactor()
    pieces = redactor.redact_all(
        [
            (TO_MODEM, b"AT+CSODSEND=0,2\r"),
            (FROM_MODEM, b"\r\n> "),
            (TO_MODEM, b"AB"),  # hex-looking data is held (could be the start of a value) ...
            (FROM_MODEM, b"\r\nDATA ACCEPT: 2\r\n"),  # ... and written before the modem's next read
        ]
    )
    assert pieces == [
        (TO_MODEM, b"AT+CSODSEND=0,2\r"),
        (FROM_MODEM, b"\r\n> "),
        (TO_MODEM, b"AB"),
        (FROM_MODEM, b"\r\nDATA ACCEPT: 2\r\n"),
    ]


@st.composite
def chunked_session(draw: st.DrawFn) -> list[tuple[str, bytes]]:
    """SESSION with every read split at arbitrary points (the order of the two sides kept)."""
    out: list[tuple[str, bytes]] = []
    for direction, data in SESSION:
        cuts = sorted(
            set(draw(st.lists(st.integers(min_value=1, max_value=max(1, len(data) - 1)), max_size=6)))
        )
        points = [c for c in cuts if c < len(data)]
        for a, b in zip([0, *points], [*points, len(data)], strict=True):
            out.append((direction, data[a:b]))
    return out


@given(chunked_session())
def test_redaction_does_not_depend_on_how_the_reads_were_split(pieces: list[tuple[str, bytes]]) -> None:
    expected = _streams(Redactor().redact_all(SESSION))
    assert _streams(Redactor().redact_all(pieces)) == expected


@given(st.binary(max_size=300))
def test_bytes_without_identifiers_pass_unchanged(data: bytes) -> None:
    """Redaction only ever rewrites digits and addresses: a stream without any passes as it is."""
    clean = bytes(b for b in data if not (0x30 <= b <= 0x39) and b not in b":.")
    assert _streams(Redactor().redact_all([(FROM_MODEM, clean)]))[1] == clean
