"""PSM timer bit strings (sim7020_core.psm): the note's example, the unit tables, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.psm import (
    DEACTIVATED,
    T3324_MAX_S,
    T3324_UNITS,
    T3412_MAX_S,
    T3412_UNITS,
    decode_t3324,
    decode_t3412,
    encode_t3324,
    encode_t3412,
)

bits8 = st.integers(0, 255).map(lambda b: f"{b:08b}")


def _representable(units: dict[int, int | None]) -> set[int]:
    return {step * v for step in units.values() if step is not None for v in range(32)}


T3412_VALUES = sorted(_representable(dict(T3412_UNITS)))
T3324_VALUES = sorted(_representable(dict(T3324_UNITS)))


def test_note_example_decodes() -> None:
    # 3GPP TS 24.008 GPRS timer 3/2: AT+CPSMS=1,,,"01000111","00000000" -> TAU 7 x 10 h, active time 0
    assert decode_t3412("01000111") == 70 * 3600
    assert decode_t3324("00000000") == 0
    assert encode_t3412(70 * 3600) == "01000111"
    assert encode_t3324(0) == "00000000"


@pytest.mark.parametrize(
    ("bits", "seconds"),
    [
        ("00000001", 600),  # 10 min
        ("00100001", 3600),  # 1 h
        ("01000001", 36000),  # 10 h
        ("01100001", 2),  # 2 s
        ("10000001", 30),  # 30 s
        ("10100001", 60),  # 1 min
        ("11000001", 320 * 3600),  # 320 h
        ("11100001", None),  # deactivated
    ],
)
def test_t3412_units(bits: str, seconds: int | None) -> None:
    assert decode_t3412(bits) == seconds


@pytest.mark.parametrize(
    ("bits", "seconds"),
    [("00000011", 6), ("00100011", 180), ("01000011", 18 * 60), ("11100011", None), ("01100010", 120)],
)
def test_t3324_units(bits: str, seconds: int | None) -> None:
    # 011..110 are "multiples of 1 minute" per 24.008
    assert decode_t3324(bits) == seconds


def test_rounds_up_to_next_representable() -> None:
    assert decode_t3412(encode_t3412(61)) == 62  # 31 x 2 s
    assert decode_t3412(encode_t3412(63)) == 90  # 3 x 30 s beats 2 x 1 min (120)
    assert decode_t3324(encode_t3324(63)) == 120  # 32 x 2 s does not fit in 5 bits: 2 x 1 min
    assert decode_t3324(encode_t3324(7 * 60 + 1)) == 8 * 60


def test_finest_unit_wins_on_ties() -> None:
    assert encode_t3412(60) == "01111110"  # 30 x 2 s, not 1 x 1 min


def test_deactivated_round_trip() -> None:
    assert encode_t3412(None) == DEACTIVATED
    assert encode_t3324(None) == DEACTIVATED
    assert decode_t3412(DEACTIVATED) is None


@pytest.mark.parametrize("bad", [-1, T3412_MAX_S + 1])
def test_t3412_out_of_range(bad: int) -> None:
    with pytest.raises(ValueError, match=str(bad)):
        encode_t3412(bad)


def test_t3324_too_large_names_the_limit() -> None:
    with pytest.raises(ValueError, match=f"{T3324_MAX_S}"):
        encode_t3324(T3324_MAX_S + 1)


@pytest.mark.parametrize("bad", ["0100011", "010001111", "0100011x", "", "abcdefgh"])
def test_malformed_bits_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="8 characters"):
        decode_t3412(bad)
    with pytest.raises(ValueError, match="8 characters"):
        decode_t3324(bad)


def test_quotes_tolerated() -> None:
    assert decode_t3412('"01000111"') == 70 * 3600


def test_non_int_rejected() -> None:
    with pytest.raises(TypeError):
        encode_t3412(1.5)  # type: ignore[arg-type]


@given(st.integers(0, T3412_MAX_S))
def test_t3412_encode_is_minimal_upper_bound(seconds: int) -> None:
    bits = encode_t3412(seconds)
    got = decode_t3412(bits)
    assert got is not None
    assert got >= seconds
    # nothing representable lies in [seconds, got)
    assert not any(seconds <= v < got for v in T3412_VALUES)


@given(st.integers(0, T3324_MAX_S))
def test_t3324_encode_is_minimal_upper_bound(seconds: int) -> None:
    got = decode_t3324(encode_t3324(seconds))
    assert got is not None
    assert got >= seconds
    assert not any(seconds <= v < got for v in T3324_VALUES)


@given(bits8)
def test_t3412_decode_encode_round_trip(bits: str) -> None:
    seconds = decode_t3412(bits)
    again = encode_t3412(seconds)
    assert decode_t3412(again) == seconds


@given(bits8)
def test_t3324_decode_encode_round_trip(bits: str) -> None:
    seconds = decode_t3324(bits)
    assert decode_t3324(encode_t3324(seconds)) == seconds
