"""A tiny third-party sim7020 plugin, installed as a real distribution by the test setup (scripts/bootstrap).

Written only from docs/plugin_hooks.md, with the public plugin contract (``sim7020_core.hookimpl``,
``Transport``, ``Connection``, ``Capabilities``). It implements every hook:

- the transport ``echo``: every datagram sent comes straight back (no module I/O);
- the payload codec ``reverse``: published payloads are the received bytes reversed, and values to send are
  reversed back;
- ``sim7020_register_urc_handlers``: records every ``+CEREG`` URC of each modem (:data:`URCS`);
- ``sim7020_modem_state_changed``: records every event of each modem (:data:`EVENTS`);
- ``sim7020_wake_modem``: records each modem it was asked to wake (:data:`WAKE_CALLS`) and abstains (returns
  None), so the modem wakes the module over the UART;
- ``sim7020_data_received``: records the data of each connection (:data:`RECEIVED`).

The records are keyed weakly by modem (or connection), so a test looks at its own modem only.
"""

from __future__ import annotations

import weakref
from typing import Any

from sim7020_core import Capabilities, Connection, Transport, hookimpl

#: modem -> the +CEREG URC lines its engine delivered to this plugin's handler
URCS: weakref.WeakKeyDictionary[Any, list[str]] = weakref.WeakKeyDictionary()
#: modem -> the events the modem published
EVENTS: weakref.WeakKeyDictionary[Any, list[Any]] = weakref.WeakKeyDictionary()
#: modem -> how often it asked this plugin to wake the module
WAKE_CALLS: weakref.WeakKeyDictionary[Any, int] = weakref.WeakKeyDictionary()
#: connection -> the data received on it
RECEIVED: weakref.WeakKeyDictionary[Any, list[bytes]] = weakref.WeakKeyDictionary()


class EchoConnection(Connection):
    """Sends go straight back to the receive queue."""

    async def _do_send(self, data: bytes, **options: Any) -> None:
        self._feed(data)


class EchoTransport(Transport):
    """In-memory loopback transport."""

    name = "echo"
    capabilities = Capabilities(
        max_connections=2, server=False, binary_safe=True, acknowledged_send=False, peer_addressing=False
    )

    async def open_connection(self, protocol: str, ip: str, port: int, **options: Any) -> Connection:
        proto = self.check_protocol(protocol)
        if len(self.connections) >= self.capabilities.max_connections:
            raise RuntimeError("echo: too many connections")
        conn = EchoConnection(self, proto, ip, port)
        self._register(conn)
        return conn


class ReverseCodec:
    """Publishes the payload reversed (as bytes); decoding reverses it back."""

    name = "reverse"

    def encode(self, data: bytes) -> bytes:
        return bytes(data)[::-1]

    def decode(self, value: str | bytes) -> bytes:
        raw = value.encode() if isinstance(value, str) else bytes(value)
        return raw[::-1]


@hookimpl
def sim7020_register_transports() -> list[type[Transport]]:
    return [EchoTransport]


@hookimpl
def sim7020_register_codecs() -> dict[str, ReverseCodec]:
    return {"reverse": ReverseCodec()}


@hookimpl
def sim7020_register_urc_handlers(modem: Any) -> dict[str, Any]:
    lines = URCS.setdefault(modem, [])
    return {"+CEREG": lambda urc: lines.append(urc.line)}


@hookimpl
def sim7020_modem_state_changed(modem: Any, event: Any) -> None:
    EVENTS.setdefault(modem, []).append(event)


@hookimpl
def sim7020_wake_modem(modem: Any) -> bool | None:
    WAKE_CALLS[modem] = WAKE_CALLS.get(modem, 0) + 1
    return None  # no wake line on this board: let the modem wake the module over the UART


@hookimpl
def sim7020_data_received(connection: Any, data: bytes) -> None:
    RECEIVED.setdefault(connection, []).append(data)
