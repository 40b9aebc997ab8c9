"""Exception hierarchy of sim7020_core.

Every exception raised by the library derives from :class:`Sim7020Error`, so callers can catch one
root. Each carries the context needed to act on it (the command, the module's answer, the CME code).
"""

from __future__ import annotations

from collections.abc import Sequence


class Sim7020Error(Exception):
    """Root of every error raised by sim7020_core."""


class TransportError(Sim7020Error):
    """The serial link (device, socket:// or rfc2217://) cannot be opened or was lost."""


class PortBusyError(TransportError):
    """The serial port is held by another process (e.g. ModemManager)."""


class AtCommandError(Sim7020Error):
    """The module answered a command with ERROR or +CME ERROR.

    :param command: the AT command that failed (without the trailing CR)
    :param response: the information lines received before the final result
    :param final: the final result line, e.g. ``ERROR`` or ``+CME ERROR: 50``
    :param cme_code: the numeric +CME ERROR code when the module sent one (CMEE=1)
    :param cme_text: the verbose +CME ERROR text when the module sent one (CMEE=2)
    """

    def __init__(
        self,
        command: str,
        final: str,
        response: Sequence[str] = (),
        *,
        cme_code: int | None = None,
        cme_text: str | None = None,
    ) -> None:
        self.command = command
        self.final = final
        self.response = list(response)
        self.cme_code = cme_code
        self.cme_text = cme_text
        super().__init__(f"{command!r} failed: {final}")


class CmeError(AtCommandError):
    """An :class:`AtCommandError` that carried a ``+CME ERROR`` code or text."""


class AtTimeoutError(Sim7020Error, TimeoutError):
    """The module did not answer a command (or did not send the expected URC) in time."""

    def __init__(self, command: str, timeout: float, what: str = "final result") -> None:
        self.command = command
        self.timeout = timeout
        super().__init__(f"no {what} for {command!r} within {timeout:g} s")


class NotRegisteredError(Sim7020Error):
    """The module is not registered on the network (or has no PDN) when the operation needs it."""


class SimError(Sim7020Error):
    """The SIM card is missing, locked or failed; retrying does not help."""


class ModemAsleepError(Sim7020Error):
    """The module is in PSM and the caller asked not to wait for it to wake."""


class CommandInterruptedError(Sim7020Error):
    """The command was in flight when the module rebooted or fell asleep in PSM: no answer will come.

    Raised at once (instead of after the command's timeout); whether the command took effect is unknown.
    """

    def __init__(self, command: str, reason: str) -> None:
        self.command = command
        self.reason = reason
        super().__init__(f"{command!r} interrupted: {reason}")


class DataModeError(Sim7020Error):
    """An AT command was asked for while the link carries a transparent-mode connection's data.

    Escape first (``TransparentConnection.escape()``), or wait until the connection is closed.
    """


class CommandNotAllowedError(Sim7020Error):
    """A raw AT command would break the driver's session (ATE1, AT+IPR, AT+CFUN …) and was refused."""


class SocketError(Sim7020Error):
    """A data connection failed or was closed; ``code`` is the module's error code when known.

    :param message: what happened
    :param code: e.g. the +CSOERR code (see :data:`CSOERR_CODES`)
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        self.code = code
        super().__init__(message)


class ConnectionClosedError(SocketError):
    """The connection is closed (by us, by the peer, or because the modem rebooted)."""


class NoReplyError(ConnectionClosedError):
    """A request was sent, and the connection ended before its reply came (the peer hung up, the module
    reset); whether the peer got the request is unknown."""


class SendTimeoutError(SocketError, TimeoutError):
    """The module did not answer a send within the time the caller allowed (it stalled, or commands ahead
    of it took that long); whether the data left the module is unknown.

    :param message: what was not answered, and within how long
    :param timeout: the bound, seconds
    """

    def __init__(self, message: str, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(message)


class PayloadError(SocketError):
    """The payload cannot be carried by this transport (too large, or binary on a text-only path)."""


class UnsupportedError(Sim7020Error):
    """The transport or the module does not support the requested feature."""


class PluginError(Sim7020Error):
    """A plugin could not be loaded, or no plugin provides the requested transport/codec."""


class ConfigError(Sim7020Error):
    """The configuration is invalid; ``errors`` lists every problem found, each naming file, line and key."""

    def __init__(self, errors: Sequence[str]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(self.errors))


def describe_error(err: BaseException) -> str:
    """What went wrong, in words, for a log line or an error reply: never an empty string.

    Most exceptions say it themselves (``str(err)``); some say nothing: a bare ``TimeoutError`` (what
    ``asyncio.timeout`` raises), ``CancelledError``, an ``OSError`` without arguments. Those are named by
    their kind, so a log reads ``send failed (timed out)`` and not ``send failed ()``.
    """
    text = str(err).strip()
    if text:
        return text
    if isinstance(err, TimeoutError):
        return "timed out"
    if isinstance(err, ConnectionResetError):
        return "connection reset"
    if isinstance(err, ConnectionError):
        return "connection failed"
    cause = err.__cause__ or err.__context__
    if cause is not None and cause is not err:
        return f"{type(err).__name__} ({describe_error(cause)})"
    return type(err).__name__


#: Meanings of the +CSOERR codes (application note 5.11).
CSOERR_CODES: dict[int, str] = {
    -1: "common error",
    1: "route error (host unreachable)",
    2: "connection aborted",
    3: "connection reset",
    4: "connection closed by peer",
    5: "illegal value",
    6: "buffer error",
    7: "block error",
    8: "address in use",
    9: "already connecting",
    10: "already connected",
    11: "bearer error",
}

__all__ = [
    "CSOERR_CODES",
    "AtCommandError",
    "AtTimeoutError",
    "CmeError",
    "CommandInterruptedError",
    "CommandNotAllowedError",
    "ConfigError",
    "ConnectionClosedError",
    "DataModeError",
    "ModemAsleepError",
    "NoReplyError",
    "NotRegisteredError",
    "PayloadError",
    "PluginError",
    "PortBusyError",
    "SendTimeoutError",
    "SimError",
    "Sim7020Error",
    "SocketError",
    "TransportError",
    "UnsupportedError",
    "describe_error",
]
