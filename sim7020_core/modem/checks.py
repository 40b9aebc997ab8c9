"""What may go into an AT command: values (APN, credentials, host names) and raw commands.

Values: a string that ends up inside an AT command must not end the command line (CR, LF), the quoted
string (``"``) or start an escape (``\\``), and must be something the module can use. Each check returns the
problem in words (None when the value is fine), so every front end words it the same way: the library raises
``ValueError("<field>: <problem>")`` (:func:`check_apn`, :func:`check_host`, :func:`check_credential`),
the bridge's ``check-config``, the CLI and Home Assistant name the field their own way.

Raw commands (:meth:`Modem.command <sim7020_core.modem.Modem.command>` without ``allow_unsafe``): an
allow-list. A raw command may read anything (``AT+X?``, ``AT+X=?``, the plain queries in :data:`QUERIES`,
``ATI``) and set only what cannot break the session or the library's view of it (:data:`SETTABLE`).
Settings the library models (PSM, eDRX, APN, bands, operator, attach, the PDP context, sockets and CIP links,
retention, DNS, ping)
are refused with the API to use instead (:data:`MODELLED`); the driver's own session settings (echo, result
format, error format, ``AT+CEREG``, ``AT+CPSMSTATUS``) and everything not on the list are refused too. A
command line may chain commands (``AT+CSQ;+CGATT?``, ``ATE0&F``, ``ATE0Z``): it is split into its commands
(:func:`split_command`, V.250 syntax) and each is checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from ..exceptions import CommandNotAllowedError
from ..netvalues import MAX_APN_LENGTH, apn_problem

#: Longest host name (RFC 1035).
MAX_HOST_LENGTH = 253
#: Longest user name or password. The module's own limit is not published; this keeps the command line far
#: below any line buffer (the emulator, docs/emulator.md, discards lines over 4096 bytes).
MAX_CREDENTIAL_LENGTH = 255

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")
_HOST_CHARS = re.compile(r"[A-Za-z0-9._:-]*")
_CREDENTIAL_CHARS = re.compile(r"[\x20-\x7e]*")  # printable ASCII; '"' and '\' are checked apart


def _first_bad(text: str, allowed: re.Pattern[str]) -> str | None:
    """Where ``text`` leaves ``allowed``, e.g. ``"'\\r' at position 3"``; None when it does not."""
    match = allowed.match(text)
    end = match.end() if match else 0
    return None if end == len(text) else f"{text[end]!r} at position {end}"


def _clip(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}… ({len(text)} characters)"


# ---------------------------------------------------------------------------------------------- values


def host_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a host name or IP address (``AT+CDNSGIP="<host>"``, ``AT+CIPPING``,
    a connection's peer), or None."""
    if not isinstance(value, str):
        return f"must be a host name or IP address (a string), not {_clip(value)}"
    if not value:
        return "must not be empty"
    if len(value) > MAX_HOST_LENGTH:
        return f"must be at most {MAX_HOST_LENGTH} characters, not {len(value)}"
    bad = _first_bad(value, _HOST_CHARS)
    if bad is not None:
        return f"must be a host name or IP address (letters, digits, '.', '-', '_', ':'); found {bad}"
    return None


def credential_problem(value: object) -> str | None:
    """What is wrong with ``value`` as a user name or password inside an AT command, or None."""
    if not isinstance(value, str):
        return f"must be a string, not {_clip(value)}"
    if len(value) > MAX_CREDENTIAL_LENGTH:
        return f"must be at most {MAX_CREDENTIAL_LENGTH} characters, not {len(value)}"
    bad = _first_bad(value, _CREDENTIAL_CHARS)
    if bad is None:
        for char in '"\\':
            if char in value:
                bad = f"{char!r} at position {value.index(char)}"
                break
    if bad is not None:
        return f"must be printable ASCII without '\"' or '\\'; found {bad}"
    return None


def _check(field: str, value: object, problem: str | None) -> None:
    if problem is not None:
        raise ValueError(f"{field}: {problem}")


def check_apn(value: str, field: str = "apn") -> str:
    """``value`` if it is a usable APN, else ``ValueError`` naming ``field``."""
    _check(field, value, apn_problem(value))
    return value


def check_host(value: str, field: str = "host") -> str:
    """``value`` without surrounding blanks if it is a host name or IP address, else ``ValueError`` naming
    ``field``."""
    if not isinstance(value, str):
        raise TypeError(f"{field}: must be a str, not {type(value).__name__}")
    name = value.strip()
    _check(field, value, host_problem(name))
    return name


def check_credential(value: str, field: str) -> str:
    """``value`` if it can go inside an AT command as a user name or password, else ``ValueError``."""
    _check(field, value, credential_problem(value))
    return value


# ---------------------------------------------------------------------------------------- raw commands

Form = Literal["exec", "read", "test", "set"]


@dataclass(frozen=True, slots=True)
class CommandPart:
    """One command of a command line (``ATE0&F`` has two: ``E0`` and ``&F``).

    :ivar text: as written (without ``AT`` and separators)
    :ivar name: ``"+CSQ"``, ``"*MCGDEFCONT"``, ``"E"``, ``"&F"``, ``"S3"`` (upper case)
    :ivar form: ``exec`` (``AT+CSQ``, ``ATI``), ``read`` (``AT+CSQ?``, ``ATS3?``), ``test`` (``AT+CSQ=?``) or
        ``set`` (``AT+CMEE=1``, ``ATE0``)
    :ivar args: what follows ``=`` (extended) or the letter (basic: ``"0"`` of ``E0``)
    """

    text: str
    name: str
    form: Form
    args: str


_EXTENDED_PREFIXES = "+*$%^#!"
_NAME_CHAR = re.compile(r"[A-Za-z0-9_]")


def split_command(command: str) -> list[CommandPart]:
    """The commands of one AT command line (V.250 syntax: extended commands end at ``;``, basic commands
    follow one another: ``ATE0&F`` is ``E0`` and ``&F``).

    :raises ValueError: not an AT command line, or something that is no command (the message says where)
    """
    text = _without_blanks(command)
    if text[:2].upper() != "AT":
        raise ValueError(f"not an AT command (must start with 'AT'): {_clip(command)}")
    body = text[2:]
    parts: list[CommandPart] = []
    i, n = 0, len(body)
    while i < n:
        char = body[i]
        start = i
        if char == ";":
            i += 1
            continue
        if char in _EXTENDED_PREFIXES:
            i += 1
            while i < n and _NAME_CHAR.match(body[i]):
                i += 1
            name = body[start:i].upper()
            form: Form = "exec"
            args = ""
            if body.startswith("=?", i):
                form, i = "test", i + 2
            elif body.startswith("?", i):
                form, i = "read", i + 1
            elif body.startswith("=", i):
                form, i = "set", i + 1
                quoted = False
                args_start = i
                while i < n and (quoted or body[i] != ";"):
                    if body[i] == '"':
                        quoted = not quoted
                    i += 1
                args = body[args_start:i].strip()
            parts.append(CommandPart(body[start:i].strip(), name, form, args))
            continue
        if char == "&" or char.isalpha():
            if char == "&":
                i += 1
                if i >= n or not body[i].isalpha():
                    raise ValueError(
                        f"'&' without a command letter at position {start + 2} of {_clip(command)}"
                    )
            letter = body[i].upper()
            i += 1
            if letter == "D" and char != "&":  # dial: the rest of the line is its number
                parts.append(CommandPart(body[start:].strip(), "D", "set", body[i:].strip()))
                break
            digits_start = i
            while i < n and body[i].isdigit():
                i += 1
            name = ("&" if char == "&" else "") + letter
            if letter == "S" and char != "&":  # S-registers: S<n>? and S<n>=<value>
                name = f"S{body[digits_start:i]}"
                if body.startswith("?", i):
                    parts.append(CommandPart(body[start : i + 1], name, "read", ""))
                    i += 1
                    continue
                if body.startswith("=", i):
                    i += 1
                    value_start = i
                    while i < n and body[i].isdigit():
                        i += 1
                    parts.append(CommandPart(body[start:i], name, "set", body[value_start:i]))
                    continue
                parts.append(CommandPart(body[start:i], name, "exec", ""))
                continue
            digits = body[digits_start:i]
            parts.append(CommandPart(body[start:i], name, "set" if digits else "exec", digits))
            continue
        raise ValueError(f"cannot read {_clip(command)}: {char!r} at position {start + 2} starts no command")
    return parts


def _without_blanks(text: str) -> str:
    """``text`` without the blanks outside quoted strings (V.250 ignores them)."""
    out: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if quoted or char not in " \t":
            out.append(char)
    return "".join(out)


#: Plain queries (the command without ``=``/``?`` reads something) raw commands may send.
QUERIES: frozenset[str] = frozenset(
    {
        "+CSQ",
        "+CGMI",
        "+CGMM",
        "+CGMR",
        "+CGSN",
        "+GMI",
        "+GMM",
        "+GMR",
        "+GSN",
        "+GSV",
        "+CIMI",
        "+CCID",
        "+CBC",
        "+CGCONTRDP",
        "+CGPADDR",
        "+CEDRXRDP",
        "+CIPSTATUS",
        "+CIFSR",
        "+CIPACK",
        "+CEER",
        "I",
    }
)

#: Set commands raw AT may send: name → pattern of the arguments (None: any), and what it does.
SETTABLE: dict[str, re.Pattern[str] | None] = {
    "+CMEE": re.compile(r"1"),  # what the driver sets anyway
    "E": re.compile(r"0?"),  # echo off: what the driver sets anyway
    "V": re.compile(r"1"),  # verbose result codes: the default
    "Q": re.compile(r"0?"),  # result codes on: the default
    "&W": None,  # saves the profile; the session does not change
    "I": None,  # identification
    "+CCLK": None,  # the clock
    "+CTZR": None,  # time zone reporting
    "+CTZU": None,  # automatic time zone update
    "+CREG": None,  # URCs the driver does not rely on
    "+CGREG": None,
    "+CPIN": None,  # entering the PIN
    "+CGSN": None,  # the query with a parameter (AT+CGSN=1)
    "+CGPADDR": None,  # the address of a context
    "+CSOSTATUS": None,  # a socket's state: a query
    "+CSOACK": None,  # a socket's acknowledgement counters: a query
    "+CIPACK": None,  # a link's acknowledgement counters: a query
    "+CSORXGET": re.compile(r"4,.*"),  # bytes a socket holds: a query (2/3 would take the transport's data)
}

_OPEN = "use Modem.open_connection(..., transport={t!r}) or Modem.listen() instead"
_NATIVE = "native sockets belong to the native transport: " + _OPEN.format(t="native")
_CIP = "CIP links belong to the cip, transparent and udp_extended transports: " + _OPEN.format(t="cip")
_SESSION = (
    "sets {}, a session setting of the driver (re-applied after every wake and reboot): changing it breaks "
    "the session"
)
_NATIVE_COMMANDS = (
    "+CSOC",
    "+CSOCON",
    "+CSOSEND",
    "+CSODSEND",
    "+CSOCL",
    "+CSOB",
    "+CSOLIS",
    "+CSORCVFLAG",
    "+CSOSENDFLAG",
    "+CSOALIVE",
    "+CSORXGET",
)
_CIP_COMMANDS = (
    "+CIPSTART",
    "+CIPSEND",
    "+CIPQSEND",
    "+CIPCLOSE",
    "+CIPSHUT",
    "+CIPMUX",
    "+CIPMODE",
    "+CIPCHAN",
    "+CIPRXGET",
    "+CIPHEAD",
    "+CIPSRIP",
    "+CIPSHOWTP",
    "+CIPHEXS",
    "+CIPUDPMODE",
    "+CIPSERVER",
    "+CIPTKA",
    "+CIPSPRT",
    "+CIPATS",
    "+CIPCSGP",
    "+CSTT",
    "+CIICR",
    "+CLPORT",
)

#: Commands the library models (any form but read and test), with what to use instead.
MODELLED: dict[str, str] = {
    "+CPSMS": "sets PSM, which the library models: use Modem.set_psm() instead",
    "*MCGDEFCONT": "sets the APN: use Modem.set_apn() instead",
    "+CGDCONT": "sets the PDP context: use Modem.set_apn() instead",
    "+CGAUTH": "sets the PDP context's credentials: use Modem.set_apn(..., username=, password=) instead",
    "+CGATT": "attaches or detaches: the library keeps the module attached (Modem.set_apn() re-attaches, "
    "Modem.reboot() restarts the module)",
    "+CGACT": "activates or deactivates the PDP context the library relies on: use Modem.set_apn() instead",
    "+CFUN": "switches the radio or restarts the module: use Modem.reboot() (Modem.set_apn() switches the "
    "radio itself)",
    "+RETENTION": "sets socket retention across PSM: use Modem.set_retention() instead",
    "+CDNSGIP": "resolves a host name: use Modem.resolve() instead",
    "+CIPPING": "pings: use Modem.ping() instead",
    "+COPS": "selects the network, which the library keeps and applies again after a reset: use "
    "Modem.set_operator() instead",
    "+CBAND": "locks the bands, which the library keeps and applies again after a reset: use "
    "Modem.set_bands() instead",
    "+CEDRXS": "sets eDRX, which the library keeps and applies again after a reset: use "
    "Modem.set_edrx() instead",
    "+CDNSCFG": "sets the DNS servers, which the library keeps as a fallback: use Modem.set_dns_servers() "
    "instead",
    "+CPOWD": "powers the module off: use Modem.reboot() to restart it",
    "+CRESET": "restarts the module: use Modem.reboot() instead",
    "Z": "resets the module's settings: use Modem.reboot() to restart it",
    "&F": "restores the factory settings, which breaks the session: use Modem.reboot() to restart the module",
    "O": "switches to data mode: use Modem.open_connection(..., transport='transparent') instead",
    "D": "dials: the module has no voice or CSD calls",
    "+IPR": "changes the baud rate the driver talks at",
    "+IFC": "changes the flow control of the serial line",
    "+ICF": "changes the character framing of the serial line",
    "+CSCLK": "lets the module's UART sleep, which the driver would take for a lost module",
    "+CEREG": _SESSION.format("the registration and PSM-grant URCs"),
    "+CPSMSTATUS": _SESSION.format("the PSM URCs"),
    "+CMEE": _SESSION.format("the error format"),
    "E": _SESSION.format("echo"),
    "V": _SESSION.format("the result code format"),
    "Q": _SESSION.format("whether result codes are sent"),
    **dict.fromkeys(_NATIVE_COMMANDS, _NATIVE),
    **dict.fromkeys(_CIP_COMMANDS, _CIP),
}

_UNLISTED = (
    "not on the list of settings raw AT may change (raw AT reads anything and sets only what cannot break "
    "the session or the library's view of it)"
)


def part_refusal(part: CommandPart) -> str | None:
    """Why raw AT may not send ``part``, or None when it may."""
    if part.form in ("read", "test"):
        return None
    if part.form == "exec" and part.name in QUERIES:
        return None
    if part.name.startswith("S") and part.name[1:].isdigit():
        return "changes an S-register (the line format the driver parses)"
    if part.name in SETTABLE:
        pattern = SETTABLE[part.name]
        if pattern is None or pattern.fullmatch(part.args):
            return None
    return MODELLED.get(part.name, _UNLISTED)


def check_command_line(command: str) -> str:
    """``command`` without surrounding blanks if it is one AT command line, else ``ValueError``.

    :raises TypeError: not a string
    :raises ValueError: empty, a control character (CR, LF, Ctrl-Z …), or not starting with ``AT``
    """
    if not isinstance(command, str):
        raise TypeError(f"command must be a str, not {type(command).__name__}")
    text = command.strip()
    if not text:
        raise ValueError("empty AT command")
    if _CONTROL_CHARS.search(text):
        raise ValueError(f"AT command {_clip(command)} contains control characters (CR/LF/Ctrl-Z …)")
    if not text.upper().startswith("AT"):
        raise ValueError(f"not an AT command (must start with 'AT'): {_clip(command)}")
    return text


def check_raw_command(command: str) -> str:
    """``command`` (stripped) if raw AT may send it without ``allow_unsafe``.

    :raises ValueError: not one AT command line, or something in it is no command
    :raises CommandNotAllowedError: the line (or a command chained in it) is not on the allow-list; the
        message says why and what to use instead
    """
    text = check_command_line(command)
    reason = raw_command_refusal(text)
    if reason is not None:
        raise CommandNotAllowedError(f"{_clip(text)}: {reason}; pass allow_unsafe=True to send it anyway")
    return text


def raw_command_refusal(command: str) -> str | None:
    """Why raw AT may not send ``command`` (naming the part of a chained line), or None when it may.

    :raises ValueError: not an AT command line
    """
    parts = split_command(command)
    for part in parts:
        reason = part_refusal(part)
        if reason is not None:
            where = f"{part.text!r} " if len(parts) > 1 else ""
            return f"{where}{reason}"
    return None


__all__ = [
    "MAX_APN_LENGTH",
    "MAX_CREDENTIAL_LENGTH",
    "MAX_HOST_LENGTH",
    "MODELLED",
    "QUERIES",
    "SETTABLE",
    "CommandPart",
    "apn_problem",
    "check_apn",
    "check_command_line",
    "check_credential",
    "check_host",
    "check_raw_command",
    "credential_problem",
    "host_problem",
    "part_refusal",
    "raw_command_refusal",
    "split_command",
]
