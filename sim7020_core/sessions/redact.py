"""Redaction of a transcript: IMEI, IMSI, ICCID and IP addresses become stable fake values of the same shape.

Only the transcript is changed, never the bytes on the wire. Within one recording the same real value always
becomes the same fake value (so a replay still matches: a command that names the modem's own address names
the fake one in the transcript), and a fake keeps what is useful for debugging and identifies no one:

- IMEI (15 digits, 16 for an IMEISV): the type allocation code (first 8 digits, the model) is kept, the serial
  becomes ``000001``, ``000002`` … and the check digit is recomputed (Luhn);
- IMSI: the MCC and MNC (first 5 digits, the operator) are kept, the rest is a counter;
- ICCID (18 to 20 digits, optionally ending in ``F``): the issuer prefix (first 6 digits) is kept, the rest is
  a counter, with a valid Luhn digit at the end when the real one had one;
- IPv4 (also the dotted ``address.mask`` and the 16-number IPv6 form that ``+CGCONTRDP`` prints): every
  address except loopback, ``0.x``, netmasks, multicast and the documentation ranges becomes
  192.0.2.1, 192.0.2.2 …, then 198.51.100.x and 203.0.113.x (RFC 5737), then 198.18.0.0/15;
- IPv6 in text form (validated with :mod:`ipaddress`): ``2001:db8::1``, ``2001:db8::2`` … (RFC 3849).

IMEI, IMSI and ICCID are learned from their context (the answer line to ``AT+CGSN``, ``AT+CIMI``,
``AT+CCID`` and friends, or a ``+CGSN:``/``+CIMI:``/``+CCID:``/``+ICCID:`` line); once learned, every later
occurrence of the value in either direction is replaced too. Payload data that a socket carried is *not*
redacted (a hex payload may hold anything): review a transcript before you share it.

The redactor sees reads, not lines, so a value may be split across two reads. It therefore holds back the
tail of a read that could still be the start of a value (a trailing run of digits, hex letters, ``.`` and
``:``) and emits it with the next read from the same side, or before the next read from the other side.
Bytes that can never be part of a value (a prompt ``> ``, an ``OK``) are never held, so the order of the
two directions in the transcript stays true; held bytes get the time of the read that releases them.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .transcript import FROM_MODEM, TO_MODEM, Direction

#: Longest tail held back while waiting for the rest of a possible value (a 32-number dotted IPv6+mask).
MAX_HELD = 160

_TOKEN_CHARS = frozenset(b"0123456789abcdefABCDEF.:")
_DOTTED = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3})+(?![\d.])")
_IPV6 = re.compile(r"(?<![0-9A-Fa-f:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![0-9A-Fa-f:.])")
_IMEI_COMMANDS = frozenset({"AT+CGSN", "AT+GSN", "AT+CGSN=1", "AT+CGSN=0"})
_IMSI_COMMANDS = frozenset({"AT+CIMI"})
_ICCID_COMMANDS = frozenset({"AT+CCID", "AT+ICCID", "AT+QCCID", "AT+CICCID"})
_IMEI_LINE = re.compile(r"\+(?:CGSN|GSN):\s*\"?(\d{14,16})\"?")
_IMSI_LINE = re.compile(r"\+CIMI:\s*\"?(\d{6,15})\"?")
_ICCID_LINE = re.compile(r"\+(?:CCID|ICCID|QCCID|CICCID):\s*\"?(\d{17,20}[Ff]?)\"?")
_BARE_IMEI = re.compile(r"\d{14,16}")
_BARE_IMSI = re.compile(r"\d{6,15}")
_BARE_ICCID = re.compile(r"\d{17,20}[Ff]?")
_DOC_V4 = (
    ipaddress.ip_network("192.0.2.0/24"),
    ipaddress.ip_network("198.51.100.0/24"),
    ipaddress.ip_network("203.0.113.0/24"),
)
_FAKE_V4_POOLS = (*_DOC_V4, ipaddress.ip_network("198.18.0.0/15"))
_DOC_V6 = ipaddress.ip_network("2001:db8::/32")


def luhn_digit(digits: str) -> str:
    """The Luhn check digit for ``digits`` (IMEI and ICCID use it)."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """True when the last digit of ``number`` is its Luhn check digit."""
    return len(number) >= 2 and number.isdigit() and luhn_digit(number[:-1]) == number[-1]


def _is_netmask(addr: ipaddress.IPv4Address) -> bool:
    bits = int(addr)
    inverted = ~bits & 0xFFFFFFFF
    return bits != 0 and (inverted & (inverted + 1)) == 0


def _keep_v4(addr: ipaddress.IPv4Address) -> bool:
    return (
        addr.is_loopback
        or addr.is_unspecified
        or int(addr) >> 24 == 0
        or addr.is_multicast
        or _is_netmask(addr)
        or addr == ipaddress.IPv4Address("255.255.255.255")
        or any(addr in net for net in _DOC_V4)
    )


def _keep_v6(addr: ipaddress.IPv6Address) -> bool:
    return addr.is_loopback or addr.is_unspecified or addr in _DOC_V6 or addr.is_multicast


@dataclass(slots=True)
class _Side:
    held: bytes = b""  # not yet emitted: may be the start of a value
    line: str = ""  # the current line as far as it was seen (context for the identity rules)


@dataclass(slots=True)
class Redactor:
    """Rewrites reads so that no identifier of the module, the SIM or the network reaches the transcript.

    Feed every read in wire order with :meth:`feed`; it returns the ``(direction, bytes)`` pieces to write, in
    order (possibly none, possibly one for the other direction first). Call :meth:`flush` at the end.
    """

    mapping: dict[str, str] = field(default_factory=dict)
    _sides: dict[str, _Side] = field(default_factory=lambda: {TO_MODEM: _Side(), FROM_MODEM: _Side()})
    _last_command: str = ""
    _counters: dict[str, int] = field(default_factory=dict)
    _known: re.Pattern[str] | None = None

    # ------------------------------------------------------------------ stream handling

    def feed(self, direction: Direction, data: bytes) -> list[tuple[Direction, bytes]]:
        """Redact one read; returns what to write (held bytes of the other side come first)."""
        out: list[tuple[Direction, bytes]] = []
        other: Direction = FROM_MODEM if direction == TO_MODEM else TO_MODEM
        if self._sides[other].held:
            out.append((other, self._process(other, b"", final=True)))
        piece = self._process(direction, data, final=False)
        if piece:
            out.append((direction, piece))
        return out

    def flush(self) -> list[tuple[Direction, bytes]]:
        """Everything still held, redacted as well as it can be (end of the recording)."""
        out: list[tuple[Direction, bytes]] = []
        for direction in (TO_MODEM, FROM_MODEM):
            if self._sides[direction].held:
                out.append((direction, self._process(direction, b"", final=True)))
        return out

    def redact_all(self, records: list[tuple[Direction, bytes]]) -> list[tuple[Direction, bytes]]:
        """Redact a whole list of reads at once (for tests and for redacting an existing transcript)."""
        out: list[tuple[Direction, bytes]] = []
        for direction, data in records:
            out.extend(self.feed(direction, data))
        out.extend(self.flush())
        return out

    def _process(self, direction: Direction, data: bytes, *, final: bool) -> bytes:
        side = self._sides[direction]
        buf = side.held + data
        side.held = b""
        out: list[str] = []
        start = 0
        while True:
            ends = [i for i in (buf.find(b"\r", start), buf.find(b"\n", start)) if i >= 0]
            if not ends:
                break
            end = min(ends) + 1
            out.append(self._part(direction, side, buf[start:end].decode("latin-1"), complete=True))
            start = end
        rest = buf[start:]
        if rest and not final:
            keep = len(rest)
            while keep > 0 and rest[keep - 1] in _TOKEN_CHARS:
                keep -= 1
            if len(rest) - keep <= MAX_HELD:
                side.held = rest[keep:]
                rest = rest[:keep]
        if rest:
            out.append(self._part(direction, side, rest.decode("latin-1"), complete=False))
        return "".join(out).encode("latin-1")

    # ------------------------------------------------------------------ rules

    def _part(self, direction: Direction, side: _Side, part: str, *, complete: bool) -> str:
        """Redact ``part``, the next piece of the current line of ``direction``."""
        line = side.line + part
        if complete:
            side.line = ""
            content = line.strip("\r\n").strip()
            if direction == TO_MODEM:
                if content:
                    self._last_command = content.upper()
            else:
                self._learn(content)
        else:
            side.line = line
        return self._replace(part)

    def _learn(self, content: str) -> None:
        """Learn an IMEI/IMSI/ICCID from an answer line, by its prefix or by the command it answers."""
        for pattern, kind in ((_IMEI_LINE, "imei"), (_IMSI_LINE, "imsi"), (_ICCID_LINE, "iccid")):
            match = pattern.fullmatch(content)
            if match:
                self._fake(kind, match.group(1))
                return
        command = self._last_command
        if command in _IMEI_COMMANDS and _BARE_IMEI.fullmatch(content):
            self._fake("imei", content)
        elif command in _IMSI_COMMANDS and _BARE_IMSI.fullmatch(content):
            self._fake("imsi", content)
        elif command in _ICCID_COMMANDS and _BARE_ICCID.fullmatch(content):
            self._fake("iccid", content)

    def _replace(self, text: str) -> str:
        if self._known is not None:
            text = self._known.sub(lambda m: self.mapping[m.group(0)], text)
        text = _DOTTED.sub(self._dotted, text)
        return _IPV6.sub(self._ipv6_text, text)

    def _dotted(self, match: re.Match[str]) -> str:
        numbers = match.group(0).split(".")
        if any(int(n) > 255 for n in numbers):
            return match.group(0)
        if len(numbers) in (4, 8):
            groups = [".".join(numbers[i : i + 4]) for i in range(0, len(numbers), 4)]
            return ".".join(self._fake_v4(g) for g in groups)
        if len(numbers) in (16, 32):
            out = []
            for i in range(0, len(numbers), 16):
                packed = bytes(int(n) for n in numbers[i : i + 16])
                addr = ipaddress.IPv6Address(packed)
                if _keep_v6(addr) or (i and _is_v6_mask(addr)):
                    out.append(".".join(numbers[i : i + 16]))
                else:
                    fake = ipaddress.IPv6Address(self._fake_value("ipv6", str(addr), self._new_v6))
                    out.append(".".join(str(b) for b in fake.packed))
            return ".".join(out)
        return match.group(0)

    def _fake_v4(self, text: str) -> str:
        addr = ipaddress.IPv4Address(text)
        if _keep_v4(addr):
            return text
        return self._fake_value("ipv4", text, self._new_v4)

    def _ipv6_text(self, match: re.Match[str]) -> str:
        text = match.group(0)
        try:
            addr = ipaddress.IPv6Address(text)
        except ValueError:
            return text
        if _keep_v6(addr):
            return text
        return self._fake_value("ipv6", text, self._new_v6)

    # ------------------------------------------------------------------ fake values

    def _next(self, kind: str) -> int:
        self._counters[kind] = self._counters.get(kind, 0) + 1
        return self._counters[kind]

    def _fake_value(self, kind: str, real: str, make: Callable[[str], str]) -> str:
        fake = self.mapping.get(real)
        if fake is None:
            fake = make(real)
            self.mapping[real] = fake
            self.mapping.setdefault(fake, fake)  # a fake seen again (echoed back) stays as it is
            self._rebuild()
        return fake

    def _fake(self, kind: str, real: str) -> None:
        makers = {"imei": self._new_imei, "imsi": self._new_imsi, "iccid": self._new_iccid}
        self._fake_value(kind, real, makers[kind])

    def _rebuild(self) -> None:
        # identities (long digit strings) only; addresses have their own patterns
        values = sorted((v for v in self.mapping if v.isdigit() or v[:-1].isdigit()), key=len, reverse=True)
        values = [v for v in values if len(v) >= 6]
        self._known = (
            re.compile(r"(?<![0-9])(?:" + "|".join(re.escape(v) for v in values) + r")(?![0-9])")
            if values
            else None
        )

    def _new_imei(self, real: str) -> str:
        n = self._next("imei")
        body = real[:8] + f"{n:06d}"
        if len(real) == 16:  # IMEISV: software version digits instead of a check digit
            return body + "00"
        return body + luhn_digit(body)[: len(real) - 14]

    def _new_imsi(self, real: str) -> str:
        n = self._next("imsi")
        keep = real[:5]
        return keep + str(n).rjust(len(real) - len(keep), "0")

    def _new_iccid(self, real: str) -> str:
        n = self._next("iccid")
        suffix = "F" if real[-1] in "Ff" else ""
        digits = real[:-1] if suffix else real
        keep = digits[:6]
        if luhn_valid(digits):
            body = keep + str(n).rjust(len(digits) - len(keep) - 1, "0")
            return body + luhn_digit(body) + suffix
        return keep + str(n).rjust(len(digits) - len(keep), "0") + suffix

    def _new_v4(self, real: str) -> str:
        n = self._next("ipv4")
        for net in _FAKE_V4_POOLS:
            usable = net.num_addresses - 2
            if n <= usable:
                return str(net.network_address + n)
            n -= usable
        raise ValueError("more than 130,000 distinct IPv4 addresses in one session")

    def _new_v6(self, real: str) -> str:
        return str(_DOC_V6.network_address + self._next("ipv6"))


def _is_v6_mask(addr: ipaddress.IPv6Address) -> bool:
    bits = int(addr)
    inverted = ~bits & ((1 << 128) - 1)
    return bits != 0 and (inverted & (inverted + 1)) == 0
