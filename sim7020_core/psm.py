"""PSM timer encoding: the 8-bit strings of AT+CPSMS and +CEREG (3GPP 24.008 GPRS Timer 2 and 3).

A timer byte is ``(unit << 5) | value`` with a 5-bit ``value`` (0..31), written as eight ``0``/``1``
characters, most significant bit first, e.g. ``"01000111"`` = unit 010 (10 h) x 7 = 70 h.

- **T3412 extended** (periodic TAU, GPRS Timer 3), units: 000 = 10 min, 001 = 1 h, 010 = 10 h, 011 = 2 s,
  100 = 30 s, 101 = 1 min, 110 = 320 h, 111 = deactivated.
- **T3324** (active time, GPRS Timer 2), units: 000 = 2 s, 001 = 1 min, 010 = 6 min (decihours),
  111 = deactivated. 24.008 says the other unit codes "shall be interpreted as multiples of 1 minute";
  :func:`decode_t3324` does so, :func:`encode_t3324` never produces them.

Encoding picks the **smallest representable duration that is at least the requested one** (the network
may grant a different value anyway: read it back from ``+CEREG`` with ``AT+CEREG=4``). Among encodings
of the same duration the finest unit wins, so ``encode_t3412(60)`` is ``"01111110"`` (30 x 2 s).
A requested duration above the largest representable one is refused with :class:`ValueError`.
``None`` encodes as "deactivated" (``"11100000"``) and decodes back to ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = [
    "T3324_MAX_S",
    "T3324_UNITS",
    "T3412_MAX_S",
    "T3412_UNITS",
    "DEACTIVATED",
    "decode_t3324",
    "decode_t3412",
    "encode_t3324",
    "encode_t3412",
]

#: Unit code → seconds per step for T3412 extended (None: timer deactivated).
T3412_UNITS: Mapping[int, int | None] = {
    0b000: 10 * 60,
    0b001: 60 * 60,
    0b010: 10 * 60 * 60,
    0b011: 2,
    0b100: 30,
    0b101: 60,
    0b110: 320 * 60 * 60,
    0b111: None,
}

#: Unit code → seconds per step for T3324 (None: timer deactivated). Codes 011..110 are not listed:
#: they are decoded as minutes (24.008) but never encoded.
T3324_UNITS: Mapping[int, int | None] = {
    0b000: 2,
    0b001: 60,
    0b010: 6 * 60,
    0b111: None,
}

#: The bit string of a deactivated timer.
DEACTIVATED = "11100000"

_VALUE_MAX = 31
T3412_MAX_S = _VALUE_MAX * 320 * 60 * 60  # 35,712,000 s, about 413 days
T3324_MAX_S = _VALUE_MAX * 6 * 60  # 3 h 6 min


def _parse_bits(bits: str, name: str) -> tuple[int, int]:
    text = bits.strip().strip('"')
    if len(text) != 8 or any(c not in "01" for c in text):
        raise ValueError(f"{name} timer must be 8 characters of 0/1, got {bits!r}")
    byte = int(text, 2)
    return byte >> 5, byte & 0x1F


def _encode(seconds: int | None, units: Mapping[int, int | None], name: str, maximum: int) -> str:
    if seconds is None:
        return DEACTIVATED
    if isinstance(seconds, bool) or not isinstance(seconds, int):
        raise TypeError(f"{name} must be an int number of seconds or None, got {seconds!r}")
    if seconds < 0:
        raise ValueError(f"{name} must not be negative, got {seconds} s")
    if seconds > maximum:
        raise ValueError(f"{name} of {seconds} s is above the largest encodable value ({maximum} s)")
    best: tuple[int, int, int, int] | None = None  # (duration, step, unit, value)
    for unit, step in units.items():
        if step is None:
            continue
        value = -(-seconds // step)  # ceiling division
        if value > _VALUE_MAX:
            continue
        candidate = (value * step, step, unit, value)
        if best is None or candidate < best:
            best = candidate
    assert best is not None  # seconds <= maximum guarantees the coarsest unit fits
    _, _, unit, value = best
    return f"{(unit << 5) | value:08b}"


def encode_t3412(seconds: int | None) -> str:
    """Encode a periodic TAU (T3412 extended) in seconds; the result is ≥ ``seconds`` and minimal.

    :param seconds: requested duration, 0..:data:`T3412_MAX_S`, or None for "deactivated"
    :raises ValueError: negative or too large
    """
    return _encode(seconds, T3412_UNITS, "periodic TAU (T3412)", T3412_MAX_S)


def encode_t3324(seconds: int | None) -> str:
    """Encode an active time (T3324) in seconds; the result is ≥ ``seconds`` and minimal.

    :param seconds: requested duration, 0..:data:`T3324_MAX_S`, or None for "deactivated"
    :raises ValueError: negative or too large
    """
    return _encode(seconds, T3324_UNITS, "active time (T3324)", T3324_MAX_S)


def decode_t3412(bits: str) -> int | None:
    """Decode a T3412 extended bit string (quotes tolerated) to seconds; None when deactivated.

    :raises ValueError: not 8 characters of 0/1
    """
    unit, value = _parse_bits(bits, "T3412")
    step = T3412_UNITS[unit]
    return None if step is None else step * value


def decode_t3324(bits: str) -> int | None:
    """Decode a T3324 bit string (quotes tolerated) to seconds; None when deactivated.

    :raises ValueError: not 8 characters of 0/1
    """
    unit, value = _parse_bits(bits, "T3324")
    if unit == 0b111:
        return None
    step = T3324_UNITS.get(unit, 60)
    assert step is not None
    return step * value
