"""The command topics of a modem: ``<base>/<modem>/cmd/<ping|dns|send|at>`` and the network settings'
(``psm``, ``edrx``, ``apn``, ``bands``, ``operator``, ``dns_servers``: :mod:`.netcommands`).

A request is JSON with an ``id``; the reply goes to ``cmd/<name>/response`` (or to the MQTT 5 response
topic when the request carried one, with its correlation data) as::

    {"id": <same id>, "ok": true, "result": {...}}
    {"id": <same id>, "ok": false, "error": "what was wrong"}

Every request gets exactly one reply (a retained request gets none: it is ignored, see docs/bridge.md):

* it is checked before any work: at most :data:`MAX_REQUEST_BYTES`; an ``id`` that is a string of at most
  :data:`MAX_ID_LENGTH` characters or a number (a request with another ``id`` is answered with ``"id":
  null``); every field's type, range and length; and every string that ends up inside an AT command (host
  names, raw AT commands) for what would break the command line (CR/LF, quotes, other control
  characters). The error names the field and quotes at most :data:`MAX_QUOTED` characters of a value;
* at most :data:`MAX_RUNNING_COMMANDS` requests of a modem run at once and :data:`MAX_WAITING_COMMANDS`
  wait for a turn; more are answered "busy" at once;
* each has :data:`COMMAND_TIMEOUT` seconds from its arrival, waiting included; the reply says whether the
  time ran out waiting for a turn or in the modem;
* any failure inside a handler (the module's error, a timeout, a library ``ValueError``, a bug) becomes an
  error reply; a request cancelled at shutdown is answered "the bridge is stopping".

``at`` is refused unless the modem's ``at_commands`` option is on.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from typing import Any, Protocol

import voluptuous as vol

from ..exceptions import PayloadError, PluginError, Sim7020Error
from ..modem.checks import host_problem
from .mqtt import IncomingMessage
from .netcommands import NET_COMMANDS, NET_FIELDS, execute_net

_LOGGER = logging.getLogger(__name__)

COMMANDS = ("ping", "dns", "send", "at", *NET_COMMANDS)
#: Upper bound of one command from its arrival, waiting for a turn included (the request may ask for less).
COMMAND_TIMEOUT = 60.0
#: Default wait for a reply to ``send`` with ``wait_response``.
SEND_RESPONSE_TIMEOUT = 10.0
#: Largest request (the MQTT payload); a larger one is answered without being parsed.
MAX_REQUEST_BYTES = 256 * 1024
#: Longest string ``id`` (numbers must be integers within ±2**53 or finite).
MAX_ID_LENGTH = 128
#: Longest raw AT command.
MAX_AT_COMMAND_LENGTH = 2048
#: Longest transport or encoding name.
MAX_NAME_LENGTH = 64
#: Largest payload of ``send`` after decoding (the most any built-in transport sends at once).
MAX_SEND_BYTES = 64 * 1024
#: Requests of one modem that run at once (the modem runs one AT command at a time anyway) …
MAX_RUNNING_COMMANDS = 4
#: … and that may wait for a turn; beyond this a request is answered "busy" at once.
MAX_WAITING_COMMANDS = 32
#: Longest piece of a value (or of an error text) quoted in a reply or in the log.
MAX_QUOTED = 80
#: Longest error text in a reply.
MAX_ERROR_LENGTH = 500
#: Problems of one request listed in its error (the rest are counted).
MAX_LISTED_PROBLEMS = 5
#: Bound on closing a ``send`` connection after the request.
CLOSE_TIMEOUT = 10.0

_JSON_SAFE_INTEGER = 2**53
_NAME_CHARS = re.compile(r"[A-Za-z0-9._-]+")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]+")


class CommandModem(Protocol):
    """What the command handlers need from a modem (:class:`sim7020_core.modem.Modem` provides it)."""

    async def resolve(self, host: str) -> list[str]: ...

    async def ping(
        self,
        host: str,
        count: int = 4,
        *,
        size: int = 32,
        timeout: float = 10.0,  # noqa: ASYNC109 - Modem API
    ) -> list[Any]: ...

    async def command(
        self,
        command: str,
        timeout: float = ...,  # noqa: ASYNC109 - Modem API
        *,
        allow_unsafe: bool = False,
    ) -> list[str]: ...

    async def open_connection(
        self, protocol: str, host: str, port: int, *, transport: str = ..., **options: Any
    ) -> Any: ...


class CommandError(Sim7020Error):
    """A command request is invalid or cannot run now."""


def clip(text: str, limit: int = MAX_QUOTED) -> str:
    """``text`` cut to ``limit`` characters, saying how long it was."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"


def _quote(value: Any) -> str:
    return clip(repr(value))


# ---------------------------------------------------------------------- field validators (voluptuous)


def _integer(low: int, high: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise vol.Invalid(f"must be an integer from {low} to {high}, not {_quote(value)}")
        if not low <= value <= high:
            raise vol.Invalid(f"must be from {low} to {high}, not {_quote(value)}")
        return value

    return check


def _seconds(low: float, high: float) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise vol.Invalid(f"must be a number of seconds from {low:g} to {high:g}, not {_quote(value)}")
        if not low <= value <= high:
            raise vol.Invalid(f"must be from {low:g} to {high:g} seconds, not {_quote(value)}")
        return float(value)

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid(f"must be true or false, not {_quote(value)}")
    return value


def _request_id(value: Any) -> str | int | float:
    if isinstance(value, str):
        if len(value) > MAX_ID_LENGTH:
            raise vol.Invalid(f"must be at most {MAX_ID_LENGTH} characters, not {len(value)}")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        if abs(value) > _JSON_SAFE_INTEGER:
            raise vol.Invalid(f"must be an integer within ±2**53, not {_quote(value)}")
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    raise vol.Invalid(f"must be a string or a number, not {_quote(value)}")


def _first_bad(text: str, allowed: re.Pattern[str]) -> str | None:
    """Where ``text`` leaves ``allowed``: e.g. ``"'\\r' at position 12"``, or None when it does not."""
    match = allowed.match(text)
    end = match.end() if match else 0
    if end == len(text):
        return None
    return f"{text[end]!r} at position {end}"


def _host(value: Any) -> str:
    """A host name or IP address as it will go inside ``AT+CDNSGIP="…"`` and friends (the library's check,
    :func:`sim7020_core.modem.checks.host_problem`)."""
    problem = host_problem(value)
    if problem is not None:
        raise vol.Invalid(problem)
    return str(value)


def _name(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise vol.Invalid(f"must be a name (a non-empty string), not {_quote(value)}")
    if len(value) > MAX_NAME_LENGTH:
        raise vol.Invalid(f"must be at most {MAX_NAME_LENGTH} characters, not {len(value)}")
    bad = _first_bad(value, _NAME_CHARS)
    if bad is not None:
        raise vol.Invalid(f"must be a name (letters, digits, '.', '-', '_'); found {bad}")
    return value


def _at_command(value: Any) -> str:
    """One AT command line: printable ASCII (no CR/LF/Ctrl-Z), starting with AT, balanced quotes."""
    if not isinstance(value, str):
        raise vol.Invalid(f"must be an AT command (a string), not {_quote(value)}")
    if len(value) > MAX_AT_COMMAND_LENGTH:
        raise vol.Invalid(f"must be at most {MAX_AT_COMMAND_LENGTH} characters, not {len(value)}")
    bad = _first_bad(value, _PRINTABLE_ASCII) if value else None
    if bad is not None:
        raise vol.Invalid(
            f"must be one line of printable ASCII (no CR, LF or other control characters); found {bad}"
        )
    if not value.strip().upper().startswith("AT"):
        raise vol.Invalid(f"must start with 'AT', not {_quote(value)}")
    if value.count('"') % 2:
        raise vol.Invalid('has an unbalanced quote (")')
    return value.strip()


def _payload(value: Any) -> Any:
    if isinstance(value, str | dict | list | int | float) and not isinstance(value, bool):
        return value
    raise vol.Invalid(f"must be a string (or, with encoding json, any JSON value), not {_quote(value)}")


_ID = _request_id
_TIMEOUT = _seconds(0.1, COMMAND_TIMEOUT)

SCHEMAS: dict[str, vol.Schema] = {
    "ping": vol.Schema(
        {
            vol.Required("id"): _ID,
            vol.Required("host"): _host,
            vol.Optional("count", default=4): _integer(1, 100),
            vol.Optional("size", default=32): _integer(0, 5120),
            vol.Optional("timeout", default=10.0): _TIMEOUT,
        }
    ),
    "dns": vol.Schema({vol.Required("id"): _ID, vol.Required("host"): _host}),
    "send": vol.Schema(
        {
            vol.Required("id"): _ID,
            vol.Required("host"): _host,
            vol.Required("port"): _integer(1, 65535),
            vol.Required("payload"): _payload,
            vol.Optional("protocol", default="udp"): vol.In(("udp", "tcp"), msg="must be 'udp' or 'tcp'"),
            vol.Optional("encoding", default="raw"): _name,
            vol.Optional("transport", default="native"): _name,
            vol.Optional("wait_response", default=False): _boolean,
            vol.Optional("timeout", default=SEND_RESPONSE_TIMEOUT): _TIMEOUT,
        }
    ),
    "at": vol.Schema(
        {
            vol.Required("id"): _ID,
            vol.Required("command"): _at_command,
            vol.Optional("timeout", default=10.0): _TIMEOUT,
        }
    ),
}
# The network settings (netcommands.py): psm, edrx, apn, bands, operator, dns_servers.
SCHEMAS.update({name: vol.Schema({vol.Required("id"): _ID, **fields}) for name, fields in NET_FIELDS.items()})


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


def decode_request(payload: bytes) -> dict[str, Any]:
    """The request's JSON object, after the size check; :class:`CommandError` says what is wrong."""
    if len(payload) > MAX_REQUEST_BYTES:
        raise CommandError(
            f"request: {len(payload)} bytes, more than the {MAX_REQUEST_BYTES} a request may have (not read)"
        )
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:  # ValueError also for a 5,000-digit number
        raise CommandError(f"request is not JSON: {clip(str(err))}") from None
    if not isinstance(data, dict):
        raise CommandError("request must be a JSON object with an 'id'")
    return data


def reply_id(data: Mapping[str, Any]) -> str | int | float | None:
    """The ``id`` to echo in the reply: the request's, when it is a valid one, else None."""
    try:
        return _request_id(data.get("id"))
    except vol.Invalid:
        return None


def validate_request(name: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """Check a decoded request against command ``name``'s schema; :class:`CommandError` names the fields."""
    try:
        return dict(SCHEMAS[name](data))
    except vol.MultipleInvalid as err:
        problems = []
        for error in err.errors:
            key = clip(".".join(str(p) for p in error.path), 40) or "request"
            msg = error.error_message
            if msg == "extra keys not allowed":
                msg = "unknown field"
            elif msg == "required key not provided":
                msg = "is required"
            problems.append(f"{key}: {msg}")
        more = len(problems) - MAX_LISTED_PROBLEMS
        listed = "; ".join(problems[:MAX_LISTED_PROBLEMS])
        raise CommandError(listed + (f"; and {more} more" if more > 0 else "")) from None


def parse_request(name: str, payload: bytes) -> dict[str, Any]:
    """Decode and validate a request; :class:`CommandError` names what is wrong."""
    return validate_request(name, decode_request(payload))


Publisher = Callable[[str, bytes, bytes | None], None]
CodecLookup = Callable[[str], Any]


class CommandHandler:
    """Runs command requests against a modem and publishes the replies.

    :param modem_getter: returns the modem when it is connected, else None
    :param publish: ``publish(topic, payload, correlation_data)``
    :param base: the modem's base topic
    :param allow_at: whether ``cmd/at`` is enabled
    :param codec: ``codec(name)`` returns a codec with ``encode``/``decode`` (raises PluginError naming the
        installed codecs when there is none by that name)
    """

    def __init__(
        self,
        *,
        modem_getter: Callable[[], CommandModem | None],
        publish: Publisher,
        base: str,
        allow_at: bool,
        codec: CodecLookup,
    ) -> None:
        self._modem_getter = modem_getter
        self._publish = publish
        self._base = base
        self._allow_at = allow_at
        self._codec = codec
        self._tasks: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(MAX_RUNNING_COMMANDS)
        self._running = 0
        self.stats = {"ok": 0, "failed": 0, "busy": 0}

    def topics(self) -> dict[str, str]:
        """Command name → request topic."""
        return {name: f"{self._base}/cmd/{name}" for name in COMMANDS}

    def handle(self, name: str, msg: IncomingMessage) -> None:
        """Check one request and start it as a task, or answer it at once (invalid, busy)."""
        if msg.retain:
            _LOGGER.warning(
                "ignoring retained command on %s (clear it with an empty retained message)", msg.topic
            )
            return
        request_id: Any = None
        try:
            data = decode_request(msg.payload)
            request_id = reply_id(data)
            request = self._admit(name, data)
        except CommandError as err:
            self._answer(name, msg, request_id, error=str(err))
            return
        ahead = len(self._tasks)
        task = asyncio.create_task(
            self._run(name, msg, request_id, request, ahead), name=f"sim7020-cmd-{name}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _admit(self, name: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """The validated request, if it may run now; :class:`CommandError` when not."""
        request = validate_request(name, data)
        if name == "at" and not self._allow_at:
            raise CommandError("the at command topic is disabled (set at_commands: true for this modem)")
        if len(self._tasks) >= MAX_RUNNING_COMMANDS + MAX_WAITING_COMMANDS:
            self.stats["busy"] += 1
            raise CommandError(
                # the first MAX_RUNNING_COMMANDS tasks hold (or are about to take) the slots, even when a
                # burst arrived before any of them ran
                f"busy: {len(self._tasks) - MAX_RUNNING_COMMANDS} requests are queued for this modem (it runs"
                f" {MAX_RUNNING_COMMANDS} at a time); try again later"
            )
        return request

    async def close(self) -> None:
        """Cancel running commands (each is answered "the bridge is stopping")."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(
        self, name: str, msg: IncomingMessage, request_id: Any, request: Mapping[str, Any], ahead: int
    ) -> None:
        phase = "waiting"
        modem: CommandModem | None = None
        limit = COMMAND_TIMEOUT
        try:
            async with asyncio.timeout(limit):
                try:
                    await self._slots.acquire()
                    self._running += 1
                    try:
                        phase = "running"
                        modem = self._modem_getter()
                        if modem is None:
                            raise CommandError("the modem is not connected")
                        result = await self._execute(name, modem, request)
                    finally:
                        self._running -= 1
                        self._slots.release()
                except TimeoutError as err:  # the library's own (ours arrives as a cancellation here)
                    raise CommandError(_describe_timeout(err)) from err
        except TimeoutError:
            if phase == "waiting":
                error = (
                    f"timed out: waited {limit:g} s for a turn ({ahead} requests were ahead of it;"
                    f" this modem runs {MAX_RUNNING_COMMANDS} at a time)"
                )
            else:
                state = getattr(getattr(modem, "state", None), "value", None)
                error = (
                    f"timed out: the modem gave no result within {limit:g} s (the bridge's limit"
                    f" for one request)" + (f"; its link is {state}" if state else "")
                )
            self._answer(name, msg, request_id, error=error)
        except (Sim7020Error, ValueError, TypeError) as err:
            # ValueError/TypeError: the library refused an argument the checks above let through
            self._answer(name, msg, request_id, error=str(err) or type(err).__name__)
        except asyncio.CancelledError:
            self._answer(name, msg, request_id, error="cancelled: the bridge is stopping")
            raise
        except Exception as err:  # a bug: still one answer, and the traceback in the log
            _LOGGER.exception("command %s (id %s) failed unexpectedly", name, _quote(request_id))
            self._answer(name, msg, request_id, error=f"internal error: {type(err).__name__}: {err}")
        else:
            self._answer(name, msg, request_id, result=result)

    def _answer(
        self,
        name: str,
        msg: IncomingMessage,
        request_id: Any,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> None:
        """Publish the one reply of a request."""
        if error is None:
            reply: dict[str, Any] = {"id": request_id, "ok": True, "result": result}
            self.stats["ok"] += 1
        else:
            error = clip(error, MAX_ERROR_LENGTH)
            reply = {"id": request_id, "ok": False, "error": error}
            self.stats["failed"] += 1
            _LOGGER.info("command %s (id %s) failed: %s", name, _quote(request_id), error)
        topic = msg.response_topic or f"{self._base}/cmd/{name}/response"
        self._publish(topic, json.dumps(reply).encode(), msg.correlation_data)

    async def _execute(self, name: str, modem: CommandModem, request: Mapping[str, Any]) -> dict[str, Any]:
        if name == "dns":
            return {"host": request["host"], "addresses": await modem.resolve(request["host"])}
        if name == "ping":
            replies = await modem.ping(
                request["host"], request["count"], size=request["size"], timeout=request["timeout"]
            )
            return {"host": request["host"], "replies": [_plain(r) for r in replies]}
        if name == "at":
            return {"lines": await modem.command(request["command"], request["timeout"])}
        if name in NET_COMMANDS:
            return await execute_net(name, modem, request)
        return await self._send(modem, request)

    async def _send(self, modem: CommandModem, request: Mapping[str, Any]) -> dict[str, Any]:
        encoding = request["encoding"]
        try:
            codec = self._codec(encoding)
        except PluginError as err:
            raise CommandError(f"encoding: {clip(str(err), MAX_QUOTED * 2)}") from None
        payload = request["payload"]
        if not isinstance(payload, str) and encoding != "json":
            raise CommandError("payload: must be a string unless encoding is json")
        try:
            data: bytes = codec.decode(payload)
        except (PayloadError, ValueError, TypeError) as err:
            raise CommandError(f"payload: {clip(str(err), MAX_QUOTED * 2)}") from None
        if not data:
            raise CommandError("payload: is empty")
        if len(data) > MAX_SEND_BYTES:
            raise CommandError(f"payload: {len(data)} bytes, more than the {MAX_SEND_BYTES} a send may carry")
        conn = await modem.open_connection(
            request["protocol"], request["host"], request["port"], transport=request["transport"]
        )
        try:
            await conn.send(data)
            result: dict[str, Any] = {"sent": len(data)}
            if request["wait_response"]:
                answer: bytes = await conn.receive(timeout=request["timeout"])
                try:
                    encoded = codec.encode(answer)
                except PayloadError:
                    encoded = None  # not representable in this encoding: response_hex has it
                result["response"] = (
                    encoded.decode("utf-8", "replace") if isinstance(encoded, bytes) else encoded
                )
                result["response_hex"] = answer.hex()
            return result
        finally:
            try:
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await conn.close()
            except (Sim7020Error, OSError, TimeoutError) as err:
                _LOGGER.debug("closing the send connection failed: %s", err)


def _describe_timeout(err: TimeoutError) -> str:
    """A timeout from inside the library, with its reason (never the bare text "TimeoutError")."""
    text = str(err)
    if text:
        return f"timed out: {text}"
    return "timed out inside the library without a reason (please report this)"
