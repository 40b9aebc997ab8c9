"""Pure parsers for the modem manager: AT answers and URCs → plain values and models.

Liberal in what they accept (AT_NOTES "rule of thumb"): quoted or unquoted fields, optional trailing
fields, ``+CMD:`` headers split from their values. Each parser returns ``None`` (or a default) for what
is missing instead of raising, except where a malformed line would be a lie (:func:`parse_cipping`,
:func:`parse_cdnsgip` raise :class:`ValueError` naming the line).

These are driver-side parsers: the emulator has its own and the two never share code.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from .models import CellInfo, PingReply, Registration
from .psm import decode_t3324, decode_t3412

__all__ = [
    "CdnsResult",
    "RegInfo",
    "find_value",
    "is_ip_literal",
    "parse_ceng",
    "parse_cdnsgip",
    "parse_cgact",
    "parse_cgatt",
    "parse_cgcontrdp",
    "parse_cipping",
    "parse_cops",
    "parse_cpin",
    "parse_cpsms",
    "parse_cpsmstatus",
    "parse_csq",
    "parse_identity",
    "parse_reg_read",
    "parse_reg_urc",
    "split_fields",
]


def split_fields(text: str) -> list[str]:
    """Split an AT parameter list on commas outside double quotes; strip blanks and the quotes."""
    fields: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        elif char == "," and not quoted:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    fields.append("".join(current).strip())
    return fields


def find_value(lines: Sequence[str], prefix: str) -> str | None:
    """Return the text after ``prefix:`` in the first line that has it, or None.

    Tolerates the header on its own line with the values on the next one (as printed in the note).
    """
    head = prefix if prefix.endswith(":") else prefix + ":"
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.upper().startswith(head.upper()):
            rest = stripped[len(head) :].strip()
            if not rest and index + 1 < len(lines):
                rest = lines[index + 1].strip()
            return rest
    return None


def _all_values(lines: Sequence[str], prefix: str) -> list[str]:
    head = prefix if prefix.endswith(":") else prefix + ":"
    values: list[str] = []
    for index, line in enumerate(lines):
        stripped = line.strip()
        if stripped.upper().startswith(head.upper()):
            rest = stripped[len(head) :].strip()
            if not rest and index + 1 < len(lines):
                rest = lines[index + 1].strip()
            values.append(rest)
    return values


def _int(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip(), 10)
    except ValueError:
        return None


def is_ip_literal(host: str) -> bool:
    """True when ``host`` is an IPv4 or IPv6 address (no DNS needed)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_csq(lines: Sequence[str]) -> tuple[int | None, int | None]:
    """``+CSQ: <rssi>,<ber>`` → (rssi, ber); 99 (unknown) becomes None."""
    value = find_value(lines, "+CSQ")
    if value is None:
        return None, None
    fields = split_fields(value)
    rssi = _int(fields[0])
    ber = _int(fields[1]) if len(fields) > 1 else None
    return (None if rssi == 99 else rssi), (None if ber == 99 else ber)


@dataclass(frozen=True, slots=True)
class RegInfo:
    """A decoded +CEREG/+CGREG (read answer or URC)."""

    registration: Registration
    tac: str | None = None
    cell_id: str | None = None
    act: int | None = None
    active_s: int | None = None
    tau_s: int | None = None
    has_timers: bool = False


def _reg_from_fields(fields: list[str]) -> RegInfo | None:
    """Fields starting with <stat> (the URC layout)."""
    stat = _int(fields[0]) if fields else None
    if stat is None:
        return None
    tac = fields[1] or None if len(fields) > 1 else None
    ci = fields[2] or None if len(fields) > 2 else None
    act = _int(fields[3]) if len(fields) > 3 else None
    active_s: int | None = None
    tau_s: int | None = None
    has_timers = False
    if len(fields) > 7:
        try:
            active_s = decode_t3324(fields[6]) if fields[6] else None
            tau_s = decode_t3412(fields[7]) if fields[7] else None
            has_timers = bool(fields[6] or fields[7])
        except ValueError:
            active_s = tau_s = None
    return RegInfo(Registration.from_stat(stat), tac, ci, act, active_s, tau_s, has_timers)


def parse_reg_read(lines: Sequence[str], prefix: str = "+CEREG") -> RegInfo | None:
    """Read answer ``+CEREG: <n>,<stat>[,<tac>,<ci>,<AcT>[,<cause>,<reject>[,<active>,<tau>]]]``."""
    value = find_value(lines, prefix)
    if value is None:
        return None
    fields = split_fields(value)
    if len(fields) < 2:
        # Some firmware answer the read form with the URC layout (just <stat>).
        return _reg_from_fields(fields)
    return _reg_from_fields(fields[1:])


def parse_reg_urc(line: str) -> RegInfo | None:
    """URC ``+CEREG: <stat>[,<tac>,<ci>,<AcT>[,<cause>,<reject>[,<active>,<tau>]]]`` (also +CGREG)."""
    _, _, value = line.partition(":")
    return _reg_from_fields(split_fields(value.strip()))


def parse_cgatt(lines: Sequence[str]) -> bool | None:
    """``+CGATT: <state>`` → attached?"""
    value = _int(find_value(lines, "+CGATT"))
    return None if value is None else value == 1


def parse_cgact(lines: Sequence[str]) -> bool | None:
    """``+CGACT: <cid>,<state>`` lines → is any PDN context active?"""
    values = _all_values(lines, "+CGACT")
    if not values:
        return None if lines else False
    return any(len(f := split_fields(v)) > 1 and _int(f[1]) == 1 for v in values)


def _address(text: str) -> str | None:
    """The module's address field: 8 dotted octets (address+mask), 4 octets, or IPv6 forms."""
    text = text.strip()
    if not text:
        return None
    if ":" in text:
        return text if is_ip_literal(text) else None
    parts = text.split(".")
    try:
        octets = [int(p) for p in parts]
    except ValueError:
        return None
    if any(not 0 <= o <= 255 for o in octets):
        return None
    if len(octets) in (4, 8):
        return ".".join(str(o) for o in octets[:4])
    if len(octets) in (16, 32):
        return str(ipaddress.IPv6Address(bytes(octets[:16])))
    return None


def parse_cgcontrdp(lines: Sequence[str]) -> tuple[str | None, str | None]:
    """``+CGCONTRDP: <cid>,<bearer>,"<apn>","<a.b.c.d.m.m.m.m>"[,…]`` → (apn, ip) of the first context."""
    for value in _all_values(lines, "+CGCONTRDP"):
        fields = split_fields(value)
        apn = fields[2] or None if len(fields) > 2 else None
        ip = _address(fields[3]) if len(fields) > 3 else None
        if apn is not None or ip is not None:
            return apn, ip
    return None, None


def parse_cops(lines: Sequence[str]) -> str | None:
    """``+COPS: <mode>[,<format>,"<oper>"[,<AcT>]]`` → operator name (None when not selected)."""
    value = find_value(lines, "+COPS")
    if value is None:
        return None
    fields = split_fields(value)
    return fields[2] or None if len(fields) > 2 else None


def parse_cpsms(lines: Sequence[str]) -> tuple[bool, int | None, int | None] | None:
    """``+CPSMS: <mode>[,,,"<T3412ext>","<T3324>"]`` → (enabled, tau_s, active_s) as requested."""
    value = find_value(lines, "+CPSMS")
    if value is None:
        return None
    fields = split_fields(value)
    enabled = _int(fields[0]) == 1
    tau_s: int | None = None
    active_s: int | None = None
    try:
        if len(fields) > 3 and fields[3]:
            tau_s = decode_t3412(fields[3])
        if len(fields) > 4 and fields[4]:
            active_s = decode_t3324(fields[4])
    except ValueError:
        tau_s = active_s = None
    return enabled, tau_s, active_s


def parse_cpsmstatus(line: str) -> bool | None:
    """``+CPSMSTATUS: "ENTER PSM"`` → True, ``"EXIT PSM"`` → False, anything else → None."""
    upper = line.upper()
    if "ENTER PSM" in upper:
        return True
    if "EXIT PSM" in upper:
        return False
    return None


def parse_cpin(lines: Sequence[str]) -> str | None:
    """``+CPIN: READY`` (also ``+CPIN:READY``) → ``"READY"``, ``"SIM PIN"``, …"""
    value = find_value(lines, "+CPIN")
    return None if value is None else value.strip().strip('"').upper()


def parse_ceng(lines: Sequence[str]) -> CellInfo:
    """Serving cell from ``+CENG: <earfcn>,<offset>,<pci>,"<cellid>",<rsrp>,<rsrq>,<rssi>,<snr>,<band>,
    "<tac>",<ecl>,<tx_pwr>,<re_rsrp>``; neighbour lines (fewer fields) are ignored."""
    for value in _all_values(lines, "+CENG"):
        fields = split_fields(value)
        if len(fields) < 9:
            continue
        return CellInfo(
            earfcn=_int(fields[0]),
            pci=_int(fields[2]),
            cell_id=fields[3] or None,
            rsrp_dbm=_int(fields[4]),
            rsrq_db=_int(fields[5]),
            rssi_dbm=_int(fields[6]),
            sinr_db=_int(fields[7]),
            band=_int(fields[8]),
            tac=(fields[9] or None) if len(fields) > 9 else None,
            ecl=_int(fields[10]) if len(fields) > 10 else None,
        )
    return CellInfo()


_IDENTITY_PREFIXES = ("+CGMI:", "+CGMM:", "+CGMR:", "+CGSN:", "+CIMI:", "+CCID:", "+ICCID:", "REVISION:")


def parse_identity(lines: Sequence[str]) -> str:
    """The value of an identity command (CGMI/CGMM/CGMR/CGSN/CIMI/CCID): a bare line, or one with a
    ``+CGSN:``/``Revision:``-style prefix; quotes removed. Empty when the module sent nothing."""
    for line in lines:
        text = line.strip()
        if not text:
            continue
        upper = text.upper()
        for prefix in _IDENTITY_PREFIXES:
            if upper.startswith(prefix):
                text = text[len(prefix) :].strip()
                break
        return text.strip('"').strip()
    return ""


@dataclass(frozen=True, slots=True)
class CdnsResult:
    """A decoded +CDNSGIP URC: addresses on success, the module's error code otherwise."""

    ok: bool
    host: str | None
    addresses: list[str]
    error: int | None = None


def parse_cdnsgip(line: str) -> CdnsResult:
    """``+CDNSGIP: 1,"<host>","<ip1>"[,"<ip2>"]`` or ``+CDNSGIP: 0,<err>``.

    :raises ValueError: the line is not a +CDNSGIP result
    """
    _, sep, value = line.partition(":")
    fields = split_fields(value.strip()) if sep else []
    result = _int(fields[0]) if fields else None
    if result == 1 and len(fields) >= 3:
        addresses = [f for f in fields[2:] if f]
        if addresses and all(is_ip_literal(a) for a in addresses):
            return CdnsResult(True, fields[1], addresses)
    elif result == 0:
        return CdnsResult(False, None, [], _int(fields[1]) if len(fields) > 1 else None)
    raise ValueError(f"malformed +CDNSGIP line: {line!r}")


def parse_cipping(line: str) -> PingReply:
    """``+CIPPING: <id>,<ip>,<time in 100 ms>,<ttl>`` → PingReply (ttl 0: timed out, rtt None).

    :raises ValueError: the line is not a +CIPPING reply
    """
    _, _, value = line.partition(":")
    fields = split_fields(value.strip())
    if len(fields) < 4:
        raise ValueError(f"malformed +CIPPING line: {line!r}")
    seq, units, ttl = _int(fields[0]), _int(fields[2]), _int(fields[3])
    if seq is None or units is None or ttl is None:
        raise ValueError(f"malformed +CIPPING line: {line!r}")
    rtt = float(units * 100) if ttl > 0 else None
    return PingReply(seq=seq, ip=fields[1], rtt_ms=rtt, ttl=ttl)
