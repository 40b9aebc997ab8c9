"""The command topics of a modem: ``<base>/<modem>/cmd/<ping|dns|send|at>``.

A request is JSON with an ``id``; the reply goes to ``cmd/<name>/response`` (or to the MQTT 5 response
topic when the request carried one, with its correlation data) as::

    {"id": <same id>, "ok": true, "result": {...}}
    {"id": <same id>, "ok": false, "error": "what was wrong"}

``at`` is refused unless the modem's ``at_commands`` option is on.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import asdict, is_dataclass
from typing import Any, Protocol

import voluptuous as vol

from ..exceptions import PluginError, Sim7020Error
from .mqtt import IncomingMessage

_LOGGER = logging.getLogger(__name__)

COMMANDS = ("ping", "dns", "send", "at")
#: Upper bound of one command (the request may ask for less).
COMMAND_TIMEOUT = 60.0
#: Default wait for a reply to ``send`` with ``wait_response``.
SEND_RESPONSE_TIMEOUT = 10.0


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


_ID = vol.Any(str, int)
_TIMEOUT = vol.All(vol.Coerce(float), vol.Range(min=0.1, max=COMMAND_TIMEOUT))

SCHEMAS: dict[str, vol.Schema] = {
    "ping": vol.Schema(
        {
            vol.Required("id"): _ID,
            vol.Required("host"): vol.All(str, vol.Length(min=1)),
            vol.Optional("count", default=4): vol.All(int, vol.Range(min=1, max=100)),
            vol.Optional("size", default=32): vol.All(int, vol.Range(min=0, max=5120)),
            vol.Optional("timeout", default=10.0): _TIMEOUT,
        }
    ),
    "dns": vol.Schema({vol.Required("id"): _ID, vol.Required("host"): vol.All(str, vol.Length(min=1))}),
    "send": vol.Schema(
        {
            vol.Required("id"): _ID,
            vol.Required("host"): vol.All(str, vol.Length(min=1)),
            vol.Required("port"): vol.All(int, vol.Range(min=1, max=65535)),
            vol.Required("payload"): vol.Any(str, dict, list, int, float, bool),
            vol.Optional("protocol", default="udp"): vol.In(("udp", "tcp")),
            vol.Optional("encoding", default="raw"): str,
            vol.Optional("transport", default="native"): str,
            vol.Optional("wait_response", default=False): bool,
            vol.Optional("timeout", default=SEND_RESPONSE_TIMEOUT): _TIMEOUT,
        }
    ),
    "at": vol.Schema(
        {
            vol.Required("id"): _ID,
            vol.Required("command"): vol.All(str, vol.Length(min=2)),
            vol.Optional("timeout", default=10.0): _TIMEOUT,
        }
    ),
}


def _plain(value: Any) -> Any:
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    return value


def parse_request(name: str, payload: bytes) -> dict[str, Any]:
    """Decode and validate a request; :class:`CommandError` names what is wrong."""
    try:
        data = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CommandError(f"request is not JSON: {err}") from None
    if not isinstance(data, dict):
        raise CommandError("request must be a JSON object with an 'id'")
    try:
        return dict(SCHEMAS[name](data))
    except vol.MultipleInvalid as err:
        problems = []
        for error in err.errors:
            key = ".".join(str(p) for p in error.path) or "request"
            msg = error.error_message
            if msg == "extra keys not allowed":
                msg = "unknown field"
            elif msg == "required key not provided":
                msg = "is required"
            problems.append(f"{key}: {msg}")
        raise CommandError("; ".join(problems)) from None


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
        self.stats = {"ok": 0, "failed": 0}

    def topics(self) -> dict[str, str]:
        """Command name → request topic."""
        return {name: f"{self._base}/cmd/{name}" for name in COMMANDS}

    def handle(self, name: str, msg: IncomingMessage) -> None:
        """Start handling one request (non-blocking; runs as a task)."""
        if msg.retain:
            _LOGGER.warning(
                "ignoring retained command on %s (clear it with an empty retained message)", msg.topic
            )
            return
        task = asyncio.create_task(self._run(name, msg), name=f"sim7020-cmd-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        """Cancel running commands."""
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _run(self, name: str, msg: IncomingMessage) -> None:
        request_id: Any = None
        try:
            try:
                raw = json.loads(msg.payload.decode("utf-8"))
                if isinstance(raw, dict):
                    request_id = raw.get("id")
            except (UnicodeDecodeError, ValueError):
                pass
            request = parse_request(name, msg.payload)
            if name == "at" and not self._allow_at:
                raise CommandError("the at command topic is disabled (set at_commands: true for this modem)")
            modem = self._modem_getter()
            if modem is None:
                raise CommandError("the modem is not connected")
            async with asyncio.timeout(COMMAND_TIMEOUT):
                result = await self._execute(name, modem, request)
            reply: dict[str, Any] = {"id": request_id, "ok": True, "result": result}
            self.stats["ok"] += 1
        except (Sim7020Error, TimeoutError) as err:
            reply = {"id": request_id, "ok": False, "error": str(err) or type(err).__name__}
            self.stats["failed"] += 1
            _LOGGER.info("command %s %r failed: %s", name, request_id, reply["error"])
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
        return await self._send(modem, request)

    async def _send(self, modem: CommandModem, request: Mapping[str, Any]) -> dict[str, Any]:
        try:
            codec = self._codec(request["encoding"])
        except PluginError as err:
            raise CommandError(f"encoding: {err}") from None
        payload = request["payload"]
        if not isinstance(payload, str) and request["encoding"] != "json":
            raise CommandError("payload: must be a string unless encoding is json")
        data: bytes = codec.decode(payload)
        conn = await modem.open_connection(
            request["protocol"], request["host"], request["port"], transport=request["transport"]
        )
        try:
            await conn.send(data)
            result: dict[str, Any] = {"sent": len(data)}
            if request["wait_response"]:
                answer: bytes = await conn.receive(timeout=request["timeout"])
                encoded = codec.encode(answer)
                result["response"] = (
                    encoded.decode("utf-8", "replace") if isinstance(encoded, bytes) else encoded
                )
                result["response_hex"] = answer.hex()
            return result
        finally:
            await conn.close()
