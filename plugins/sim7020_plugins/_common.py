"""Small helpers shared by the built-in transports (argument checks, URC field parsing)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from sim7020_core.exceptions import UnsupportedError


def urc_fields(line: str) -> list[str]:
    """The comma-separated fields after ``<prefix>:`` with quotes and blanks removed.

    ``'+CSONMI: 0,6,"313233"'`` → ``['0', '6', '313233']``; a line without a colon gives its fields as is.
    """
    _, sep, rest = line.partition(":")
    body = rest if sep else line
    return [unquote(f) for f in body.split(",")] if body.strip() else []


def unquote(text: str) -> str:
    """Strip blanks and one pair of surrounding double quotes."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1]
    return text


def parse_int(text: str, what: str, line: str) -> int:
    """``int(text)`` or a ValueError naming the field and the line it came from."""
    try:
        return int(text.strip())
    except ValueError:
        raise ValueError(f"bad {what} {text!r} in {line!r}") from None


def check_port(port: object, what: str = "port") -> int:
    """Return ``port`` if it is an int in 1..65535, else raise ValueError naming it."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"{what} must be an integer from 1 to 65535, not {port!r}")
    return port


def check_ip(ip: object) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """Parse an IP address literal (transports get addresses the modem already resolved)."""
    if not isinstance(ip, str):
        raise TypeError(f"remote address must be an IP address string, not {ip!r}")
    try:
        return ipaddress.ip_address(ip.strip())
    except ValueError:
        raise ValueError(f"remote address must be an IP address (resolve names first), not {ip!r}") from None


def check_options(transport: str, options: Mapping[str, Any], allowed: Iterable[str]) -> None:
    """Raise UnsupportedError naming the options ``transport`` does not know."""
    known = set(allowed)
    unknown = sorted(set(options) - known)
    if unknown:
        names = ", ".join(sorted(known))
        raise UnsupportedError(
            f"transport {transport!r} has no option(s) {', '.join(unknown)} (known: {names})"
        )
