"""Pure parsers for the modem manager: AT answers and URCs → plain values and models.

Liberal in what they accept (docs/at_notes.md, "The rule of thumb"): quoted or unquoted fields, optional
trailing fields, ``+CMD:`` headers split from their values. Each parser returns ``None`` (or a default) for
what is missing instead of raising, except where a malformed line would be a lie (:func:`parse_cipping`,
:func:`parse_cdnsgip` raise :class:`ValueError` naming the line).

These are driver-side parsers: the emulator has its own and the two never share code.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from .models import CellInfo, NeighbourCell, PingReply, Registration
from .psm import decode_t3324, decode_t3412

__all__ = [
    "CdnsResult",
    "RegInfo",
    "find_value",
    "is_ip_literal",
    "parse_cclk",
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
    "parse_gsv",
    "parse_identity",
    "parse_reg_read",
    "parse_reg_urc",
    "split_fields",
]


class Field(NamedTuple):
    """One AT parameter: its text (quotes removed, blanks stripped) and whether it was quoted."""

    text: str
    quoted: bool


def split_quoted(text: str) -> list[Field]:
    """Split an AT parameter list on commas outside double quotes, remembering which fields were quoted.

    Whether a field was quoted matters where it is the only sign of what the field is: a quoted
    ``"00"`` is a string (the ``<rac>`` of +CEREG on a SIM7020), an unquoted ``0`` an integer.
    """
    fields: list[Field] = []
    current: list[str] = []
    quoted = in_quotes = False
    for char in text:
        if char == '"':
            in_quotes = not in_quotes
            quoted = True
        elif char == "," and not in_quotes:
            fields.append(Field("".join(current).strip(), quoted))
            current = []
            quoted = False
        else:
            current.append(char)
    fields.append(Field("".join(current).strip(), quoted))
    return fields


def split_fields(text: str) -> list[str]:
    """Split an AT parameter list on commas outside double quotes; strip blanks and the quotes."""
    return [field.text for field in split_quoted(text)]


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
    """A decoded +CEREG/+CGREG (read answer or URC), whichever layout the module printed.

    :param active_s: the Active-Time (T3324) the network granted, seconds; None when not reported or
        not granted (deactivated)
    :param tau_s: the periodic TAU (T3412 extended; Periodic-RAU for +CGREG) the network granted, seconds;
        None when not reported or not granted (``111xxxxx``: deactivated, the network keeps its legacy timer)
    :param has_timers: the line carried the network's timers (``AT+CEREG=4``/``5``): a None timer then
        means "not granted" rather than "not reported"
    """

    registration: Registration
    tac: str | None = None
    cell_id: str | None = None
    act: int | None = None
    active_s: int | None = None
    tau_s: int | None = None
    has_timers: bool = False
    cause_type: int | None = None
    reject_cause: int | None = None


# +CEREG/+CGREG layouts. 3GPP TS 27.007 (https://www.3gpp.org/DynaReport/27007.htm), counted from <stat>:
#
#   +CEREG (10.1.22): <stat>[,[<tac>],[<ci>],[<AcT>] then by <n>:
#       n=3  [,<cause_type>,<reject_cause>]
#       n=4  [,,[,[<Active-Time>],[<Periodic-TAU>]]]            (the two cause fields are empty: ",,,")
#       n=5  [,[<cause_type>],[<reject_cause>][,[<Active-Time>],[<Periodic-TAU>]]]
#   +CGREG (10.1.20): the same with <rac> (routing area code: a quoted one-byte hex string) right after
#       <AcT>, and a third timer <GPRS-READY-timer> after <Active-Time>,<Periodic-RAU>.
#
# A SIM7020 prints the +CGREG layout for +CEREG too: `+CEREG: 4,1,"00A0","0002920C",9,"00",,,"00100010",
# "00010010"` has <rac> "00" after <AcT> (docs/status_formats.md), so <cause_type>, <reject_cause> and
# the timers sit one place further right than 27.007's +CEREG says. Other firmware (a SIM7028, modems of
# other makers) prints the plain layout. Field counts from <stat>, per <n>:
#
#   n       0/1   2   3       4       5
#   plain   1     4   4 or 6  4 or 8  4, 6 or 8
#   <rac>   1     5   5 or 7  5 or 9  5, 7 or 9      (+CGREG with its third timer: 10)
#
# _has_rac decides from what the field right after <AcT> is, and only falls back on positions and counts
# when that field is ambiguous (an unquoted small integer or empty: a cause field, or a <rac> some firmware
# printed without quotes).

_TIMER_BITS = re.compile(r"[01]{8}")
_DIGITS = re.compile(r"[0-9]+")


def _is_timer(field: Field) -> bool:
    return _TIMER_BITS.fullmatch(field.text) is not None


def _has_rac(fields: Sequence[Field]) -> bool:
    """True when ``fields`` (counted from <stat>) carry a <rac> right after <AcT>."""
    if len(fields) < 5:
        return False  # nothing after <AcT>: both layouts read the same
    after_act = fields[4]
    if after_act.quoted:
        return True  # <cause_type> is an integer and never quoted; n=4's empty cause fields are bare
    if after_act.text and not _DIGITS.fullmatch(after_act.text):
        return True  # hex letters ("A0"): a routing area code, not a cause type
    # Ambiguous: where are the timers? Plain: at 6 and 7. With <rac>: at 7 and 8, and position 6 then
    # holds <reject_cause>, an integer below 256 that is never eight 0/1 digits.
    if len(fields) > 7 and _is_timer(fields[6]):
        return False
    if len(fields) > 8 and _is_timer(fields[7]):
        return True
    return len(fields) % 2 == 1  # the table above: plain counts are even, counts with <rac> odd


def _timer(field: Field | None, decode: Callable[[str], int | None]) -> tuple[bool, int | None]:
    """(reported, seconds) of one timer field; an empty or malformed field is not reported."""
    if field is None or not _is_timer(field):
        return False, None
    return True, decode(field.text)


def _reg_from_fields(fields: Sequence[Field]) -> RegInfo | None:
    """Fields counted from <stat> (the URC layout), in either layout (see the table above)."""
    stat = _int(fields[0].text) if fields else None
    if stat is None:
        return None

    def text(index: int) -> str | None:
        return (fields[index].text or None) if index < len(fields) else None

    def number(index: int) -> int | None:
        return _int(fields[index].text) if index < len(fields) else None

    def field(index: int) -> Field | None:
        return fields[index] if index < len(fields) else None

    cause = 5 if _has_rac(fields) else 4  # index of <cause_type>
    active_reported, active_s = _timer(field(cause + 2), decode_t3324)
    tau_reported, tau_s = _timer(field(cause + 3), decode_t3412)
    return RegInfo(
        registration=Registration.from_stat(stat),
        tac=text(1),
        cell_id=text(2),
        act=number(3),
        active_s=active_s,
        tau_s=tau_s,
        has_timers=active_reported or tau_reported,
        cause_type=number(cause),
        reject_cause=number(cause + 1),
    )


def parse_reg_read(lines: Sequence[str], prefix: str = "+CEREG") -> RegInfo | None:
    """Read answer ``+CEREG: <n>,<stat>[,<tac>,<ci>,<AcT>[,…]]`` (also +CGREG), in either layout.

    A +CEREG URC that arrived while the read was in flight lands among the answer's lines; it is told
    apart by its second field (a quoted <tac>, where the read answer has the bare <stat>) and used only
    when there is no read answer (some firmware answer the read form in the URC layout).
    """
    fallback: RegInfo | None = None
    for value in _all_values(lines, prefix):
        fields = split_quoted(value)
        if len(fields) >= 2 and not fields[1].quoted:
            info = _reg_from_fields(fields[1:])
            if info is not None:
                return info
        elif fallback is None:
            fallback = _reg_from_fields(fields)
    return fallback


def parse_reg_urc(line: str) -> RegInfo | None:
    """URC ``+CEREG: <stat>[,<tac>,<ci>,<AcT>[,…]]`` (also +CGREG), in either layout.

    A read answer (``+CEREG: <n>,<stat>,…``) that reached the URC path (answered after its command
    gave up) is recognised by its second field, a bare small integer (<stat>) where a URC has the quoted
    4-digit <tac>, and read as such.
    """
    _, _, value = line.partition(":")
    fields = split_quoted(value.strip())
    second = fields[1] if len(fields) >= 2 else None
    if second is not None and not second.quoted and len(second.text) <= 2 and _DIGITS.fullmatch(second.text):
        return _reg_from_fields(fields[1:])
    return _reg_from_fields(fields)


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
    """Serving cell and neighbours from the lines of ``AT+CENG?``.

    - serving cell: ``+CENG: <earfcn>,<offset>,<pci>,"<cellid>",<rsrp>,<rsrq>,<rssi>,<snr>,<band>,"<tac>",
      <ecl>,<tx_pwr>,<re_rsrp>`` (13 fields; a real SIM7020 leaves ``<tx_pwr>`` empty at times);
    - each neighbour: ``+CENG: <earfcn>,<offset>,<pci>,<rsrp>`` (4 fields), kept in the module's order.

    Lines of any other shape (a mode header some firmware print) are skipped.
    """
    serving: CellInfo | None = None
    neighbours: list[NeighbourCell] = []
    for value in _all_values(lines, "+CENG"):
        fields = split_fields(value)
        if len(fields) >= 9 and serving is None:
            serving = CellInfo(
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
        elif len(fields) == 4 and all(_int(f) is not None for f in fields):
            earfcn, offset, pci, rsrp = (_int(f) for f in fields)
            neighbours.append(NeighbourCell(earfcn=earfcn, earfcn_offset=offset, pci=pci, rsrp_dbm=rsrp))
    return dataclasses.replace(serving or CellInfo(), neighbours=tuple(neighbours))


# +CCLK: "yy/MM/dd,hh:mm:ss±zz" (27.007; zz in quarter hours). A SIM7020 prints it unquoted with a 2-digit
# year, a SIM7028 quoted with a 4-digit year (docs/status_formats.md).
_CCLK = re.compile(
    r"(?P<year>\d{4}|\d{2})/(?P<month>\d{1,2})/(?P<day>\d{1,2}),"
    r"(?P<hour>\d{1,2}):(?P<minute>\d{1,2}):(?P<second>\d{1,2})"
    r"(?P<sign>[+-])(?P<quarters>\d{1,2})"
)


def parse_cclk(lines: Sequence[str]) -> dt.datetime:
    """``+CCLK: <time>``, quoted or not, 2- or 4-digit year → a timezone-aware datetime.

    :raises ValueError: no +CCLK line, or a time that is not ``yy/MM/dd,hh:mm:ss±zz`` (naming the line)
    """
    value = find_value(lines, "+CCLK")
    if value is None:
        raise ValueError(f"no +CCLK line in the answer {list(lines)!r}")
    text = value.strip().strip('"').strip()
    match = _CCLK.fullmatch(text)
    if match is None:
        raise ValueError(f"+CCLK time {value!r} is not yy/MM/dd,hh:mm:ss±zz (zz: quarter hours)")
    year = int(match["year"])
    quarters = int(match["quarters"]) * (-1 if match["sign"] == "-" else 1)
    try:
        zone = dt.timezone(dt.timedelta(minutes=15 * quarters))
        return dt.datetime(
            year + 2000 if len(match["year"]) == 2 else year,
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            tzinfo=zone,
        )
    except ValueError as err:
        raise ValueError(f"+CCLK time {value!r} is not a valid date and time: {err}") from None


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


def parse_gsv(lines: Sequence[str]) -> tuple[str, str, str]:
    """``AT+GSV`` → (manufacturer, model, revision); empty strings for what is missing.

    A SIM7020G answers three bare lines (docs/status_formats.md)::

        SIMCOM_Ltd
        SIM7020G
        Revision:1752B02SIM7020G
    """
    revision = ""
    others: list[str] = []
    for line in lines:
        text = line.strip()
        if not text:
            continue
        if text.upper().startswith("REVISION:"):
            revision = text[len("REVISION:") :].strip()
        else:
            others.append(text)
    others += ["", ""]
    return others[0], others[1], revision


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


# ------------------------------------------------ network settings (eDRX, bands, DNS, operator)


def parse_cedrxs(lines: Sequence[str]) -> tuple[bool, str | None]:
    """``AT+CEDRXS?`` → (enabled, requested 4-bit value): ``+CEDRXS: 5,"0010"`` while on (one line per
    access technology; the NB-S1 one, 5, is taken when there are several), nothing while off (27.007)."""
    chosen: str | None = None
    enabled = False
    for value in _all_values(lines, "+CEDRXS"):
        fields = split_fields(value)
        if not fields or not fields[0]:
            continue
        enabled = True
        bits = fields[1] if len(fields) > 1 and re.fullmatch(r"[01]{4}", fields[1]) else None
        if chosen is None or fields[0] == "5":
            chosen = bits
    return enabled, chosen


def parse_cedrxrdp(lines: Sequence[str]) -> tuple[str | None, str, str | None] | None:
    """``AT+CEDRXRDP`` → (requested, granted, paging time window) as 4-bit values, or None when eDRX is not
    in use: ``+CEDRXRDP: 5,"0010","0010","0011"`` / ``+CEDRXRDP: 0`` (SIMCom's eDRX note)."""
    value = find_value(lines, "+CEDRXRDP")
    if value is None:
        return None
    fields = split_fields(value)
    if len(fields) < 3 or fields[0] in ("", "0"):
        return None

    def bits(index: int) -> str | None:
        text = fields[index] if len(fields) > index else ""
        return text if re.fullmatch(r"[01]{4}", text) else None

    granted = bits(2)
    if granted is None:
        return None
    return bits(1), granted, bits(3)


def _band_numbers(text: str) -> tuple[int, ...] | None:
    numbers: list[int] = []
    for part in re.split(r"[,\s]+", text.strip().strip("()").replace('"', "")):
        if not part:
            continue
        if "-" in part:  # a range in a test answer: (1-3)
            low, _, high = part.partition("-")
            first, last = _int(low), _int(high)
            if first is None or last is None or last < first or last - first > 256:
                return None
            numbers.extend(range(first, last + 1))
            continue
        number = _int(part)
        if number is None:
            return None
        numbers.append(number)
    return tuple(sorted(set(numbers)))


def parse_cband(lines: Sequence[str]) -> tuple[int, ...] | None:
    """``AT+CBAND?`` → the bands the module may use: ``+CBAND: 3,8,20`` (the set form's list, as SIM7020
    drivers send it: ``AT+CBAND=1,3,5,8``); also ``+CBAND: (…)`` of the test form. None when unreadable."""
    value = find_value(lines, "+CBAND")
    if value is None:
        return None
    bands = _band_numbers(value)
    return bands or None


def parse_cdnscfg(lines: Sequence[str]) -> tuple[str, ...] | None:
    """``AT+CDNSCFG?`` → (primary, secondary) as printed, ``0.0.0.0`` included: SIMCom prints
    ``PrimaryDns: <ip>`` and ``SecondaryDns: <ip>`` lines; ``+CDNSCFG: "<ip>","<ip>"`` (other SIMCom
    modules) is read too. None when neither form is there."""
    primary = find_value(lines, "PrimaryDns")
    secondary = find_value(lines, "SecondaryDns")
    if primary is not None or secondary is not None:
        return tuple(s.strip().strip('"') for s in (primary, secondary) if s is not None)
    value = find_value(lines, "+CDNSCFG")
    if value is None:
        return None
    return tuple(f for f in split_fields(value) if f)


def parse_cops_selection(lines: Sequence[str]) -> tuple[int | None, int | None, str | None]:
    """``AT+COPS?`` → (mode, format, operator): mode 0 automatic, 1 manual, 4 manual then automatic."""
    value = find_value(lines, "+COPS")
    if value is None:
        return None, None, None
    fields = split_fields(value)
    mode = _int(fields[0]) if fields else None
    fmt = _int(fields[1]) if len(fields) > 1 else None
    operator = fields[2] or None if len(fields) > 2 else None
    return mode, fmt, operator


__all__ += [
    "parse_cband",
    "parse_cdnscfg",
    "parse_cedrxrdp",
    "parse_cedrxs",
    "parse_cops_selection",
]
