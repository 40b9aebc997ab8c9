"""Network setting values and their checks: bands, operator, DNS servers, eDRX cycles, PSM timers, APN.

One check per value, shared by the library (:class:`~sim7020_core.models.NetworkSettings`, the ``Modem``
setters), the bridge (``cmd/`` requests, the ``network:`` block of its YAML, ``check-config``), the CLI and
Home Assistant. Each ``*_problem`` function returns what is wrong in words (None when the value is fine);
:func:`check` turns that into ``ValueError("<field>: <problem>")``, naming the field, the value and the
allowed range.

Sources (docs/at_notes.md, "Network settings"):

- bands: the application note's table of SIM7020 variants (chapter 1): SIM7020C 1/3/5/8, SIM7020E
  1/3/5/8/20/28, SIM7020G 1/2/3/4/5/8/12/13/17/18/19/20/25/26/28/66/70/71/85;
- eDRX cycles and paging time windows in NB-S1 mode: 3GPP TS 24.008, table 10.5.5.32 (the values
  ``AT+CEDRXS`` and ``AT+CEDRXRDP`` carry as 4 bits, 3GPP TS 27.007 7.40/7.41);
- PSM timers: 3GPP TS 24.008 GPRS timer 3 (T3412 extended) and GPRS timer 2 (T3324), as in
  :mod:`sim7020_core.psm`;
- operator: a numeric PLMN id is MCC (3 digits) + MNC (2 or 3 digits), 3GPP TS 23.003 2.2.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Mapping

#: Bands of each SIM7020 variant (application note, chapter 1).
VARIANT_BANDS: Mapping[str, tuple[int, ...]] = {
    "SIM7020C": (1, 3, 5, 8),
    "SIM7020E": (1, 3, 5, 8, 20, 28),
    "SIM7020G": (1, 2, 3, 4, 5, 8, 12, 13, 17, 18, 19, 20, 25, 26, 28, 66, 70, 71, 85),
}
#: Every band some SIM7020 supports (the SIM7020G's list includes the others').
SIM7020_BANDS: tuple[int, ...] = tuple(sorted({b for bands in VARIANT_BANDS.values() for b in bands}))

#: eDRX cycle lengths in NB-S1 mode, seconds, by their 4-bit value (3GPP TS 24.008, table 10.5.5.32).
EDRX_CYCLES: Mapping[str, float] = {
    "0010": 20.48,
    "0011": 40.96,
    "0101": 81.92,
    "1001": 163.84,
    "1010": 327.68,
    "1011": 655.36,
    "1100": 1310.72,
    "1101": 2621.44,
    "1110": 5242.88,
    "1111": 10485.76,
}
#: "All other values shall be interpreted as 0010" (NB-S1 mode, same table).
_EDRX_OTHER = "0010"
#: The allowed cycles, ascending.
EDRX_CYCLE_VALUES: tuple[float, ...] = tuple(sorted(EDRX_CYCLES.values()))

#: Largest periodic TAU (T3412 extended) and active time (T3324) a request can carry (31 x the largest
#: unit: 320 h and 6 min), as :data:`sim7020_core.psm.T3412_MAX_S` / ``T3324_MAX_S``.
PSM_TAU_MAX_S = 31 * 320 * 3600
PSM_ACTIVE_MAX_S = 31 * 6 * 60

#: Longest APN (3GPP TS 23.003, 9.1: at most 100 octets).
MAX_APN_LENGTH = 100
#: ``AT+CDNSCFG`` takes a primary and a secondary server.
MAX_DNS_SERVERS = 2

_APN_CHARS = re.compile(r"[A-Za-z0-9._-]*")
_MCCMNC = re.compile(r"[0-9]{5,6}")


def _clip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}… ({len(text)} characters)"


def check(field: str, problem: str | None) -> None:
    """Raise ``ValueError("<field>: <problem>")`` when there is a problem."""
    if problem is not None:
        raise ValueError(f"{field}: {problem}")


# ------------------------------------------------------------------------------------------------ APN


def apn_problem(value: object) -> str | None:
    """What is wrong with ``value`` as an APN (``AT*MCGDEFCONT="IP","<apn>"``), or None. Empty is allowed
    (the network's default)."""
    if not isinstance(value, str):
        return f"must be a string, not {_clip(value)}"
    if len(value) > MAX_APN_LENGTH:
        return f"must be at most {MAX_APN_LENGTH} characters, not {len(value)}"
    match = _APN_CHARS.match(value)
    end = match.end() if match else 0
    if end != len(value):
        return f"must be an APN (letters, digits, '.', '-', '_'); found {value[end]!r} at position {end}"
    if value.startswith(".") or value.endswith(".") or ".." in value:
        return f"must be dot-separated labels, not {_clip(value)}"
    return None


# ---------------------------------------------------------------------------------------------- bands


def supported_bands(model: str | None = None) -> tuple[int, ...]:
    """The bands of the SIM7020 variant named in ``model`` (``AT+CGMM``, e.g. ``SIM7020E``); every SIM7020
    band when the variant is unknown."""
    text = (model or "").upper()
    for variant, bands in VARIANT_BANDS.items():
        if variant in text:
            return bands
    return SIM7020_BANDS


def bands_problem(value: object, model: str | None = None) -> str | None:
    """What is wrong with ``value`` as a band lock (a list of band numbers; empty = all the module has)."""
    allowed = supported_bands(model)
    which = f"a {model}" if model and allowed is not SIM7020_BANDS else "a SIM7020"
    allowed_text = ", ".join(map(str, allowed))
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple | set | frozenset):
        return f"must be a list of band numbers ({allowed_text}), not {_clip(value)}"
    for band in value:
        if isinstance(band, bool) or not isinstance(band, int):
            return f"band {_clip(band)} is not a band number; {which} supports {allowed_text}"
        if band not in allowed:
            return f"band {band} is not supported: {which} supports {allowed_text}"
    if len(set(value)) != len(value):
        return f"lists a band twice: {_clip(list(value))}"
    return None


# ------------------------------------------------------------------------------------------- operator


def operator_problem(value: object) -> str | None:
    """What is wrong with ``value`` as an operator selection: ``"auto"`` or a numeric MCCMNC (5-6 digits)."""
    if not isinstance(value, str):
        return f"must be 'auto' or an MCCMNC of 5-6 digits (a string), not {_clip(value)}"
    if value == "auto" or _MCCMNC.fullmatch(value):
        return None
    return f"must be 'auto' or an MCCMNC of 5-6 digits (e.g. '46001'), not {_clip(value)}"


# ------------------------------------------------------------------------------------------------ DNS


def dns_server_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a DNS server for ``AT+CDNSCFG`` (an IPv4 address), or None."""
    if not isinstance(value, str):
        return f"must be an IPv4 address (a string), not {_clip(value)}"
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        return f"must be an IPv4 address such as '9.9.9.9', not {_clip(value)}"
    if address.is_unspecified or address.is_multicast or str(address) == "255.255.255.255":
        return f"must be a unicast IPv4 address, not {_clip(value)}"
    if str(address) != value:
        return f"must be written as a dotted quad without leading zeros, e.g. {str(address)!r}"
    return None


def is_ipv4_literal(value: str) -> bool:
    """True when ``value`` is an IPv4 address."""
    try:
        ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return True


def dns_servers_problem(value: object) -> str | None:
    """What is wrong with ``value`` as the list of fallback DNS servers (0 to 2 IPv4 addresses)."""
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        return f"must be a list of at most {MAX_DNS_SERVERS} IPv4 addresses, not {_clip(value)}"
    if len(value) > MAX_DNS_SERVERS:
        return f"must list at most {MAX_DNS_SERVERS} servers (primary, secondary), not {len(value)}"
    for server in value:
        problem = dns_server_problem(server)
        if problem is not None:
            return f"server {_clip(server)} {problem}"
    if len(set(value)) != len(value):
        return f"lists a server twice: {_clip(list(value))}"
    return None


# ----------------------------------------------------------------------------------------------- eDRX


def edrx_cycle_problem(value: object) -> str | None:
    """What is wrong with ``value`` as an eDRX cycle in seconds (one of :data:`EDRX_CYCLE_VALUES`)."""
    allowed = ", ".join(f"{v:g}" for v in EDRX_CYCLE_VALUES)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return f"must be an eDRX cycle in seconds (one of {allowed}), not {_clip(value)}"
    if edrx_bits(value) is None:
        return f"{value:g} s is not an eDRX cycle: NB-IoT allows {allowed} s"
    return None


def edrx_bits(cycle_s: float) -> str | None:
    """The 4-bit value of an eDRX cycle of :data:`EDRX_CYCLES` (within 0.01 s), else None."""
    for bits, seconds in EDRX_CYCLES.items():
        if abs(seconds - cycle_s) < 0.01:
            return bits
    return None


def edrx_cycle_s(bits: str) -> float | None:
    """The eDRX cycle (seconds) of a 4-bit value in NB-S1 mode; None when ``bits`` is not 4 bits."""
    if not re.fullmatch(r"[01]{4}", bits):
        return None
    return EDRX_CYCLES.get(bits, EDRX_CYCLES[_EDRX_OTHER])


def paging_window_s(bits: str) -> float | None:
    """The paging time window (seconds) of a 4-bit value in NB-S1 mode: 2.56 s x (value + 1)."""
    if not re.fullmatch(r"[01]{4}", bits):
        return None
    return round(2.56 * (int(bits, 2) + 1), 2)


# ------------------------------------------------------------------------------------------ PSM timers


def psm_timer_problem(value: object, maximum: int) -> str | None:
    """What is wrong with ``value`` as a PSM timer request in whole seconds (0..``maximum``), or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a whole number of seconds from 0 to {maximum}, not {_clip(value)}"
    if not 0 <= value <= maximum:
        return f"must be from 0 to {maximum} seconds, not {value}"
    return None


__all__ = [
    "EDRX_CYCLES",
    "EDRX_CYCLE_VALUES",
    "MAX_APN_LENGTH",
    "MAX_DNS_SERVERS",
    "PSM_ACTIVE_MAX_S",
    "PSM_TAU_MAX_S",
    "SIM7020_BANDS",
    "VARIANT_BANDS",
    "apn_problem",
    "bands_problem",
    "check",
    "dns_server_problem",
    "dns_servers_problem",
    "edrx_bits",
    "edrx_cycle_problem",
    "edrx_cycle_s",
    "is_ipv4_literal",
    "operator_problem",
    "paging_window_s",
    "psm_timer_problem",
    "supported_bands",
]
