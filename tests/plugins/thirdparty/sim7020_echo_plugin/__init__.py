"""A tiny third-party sim7020 plugin, installed as a real distribution by the test setup.

It provides the transport ``echo`` (every datagram sent comes straight back, no module I/O) and the payload
codec ``reverse``. It only uses the public plugin contract: ``hookimpl``, ``Transport``, ``Connection``,
``Capabilities``.
"""

from __future__ import annotations

from typing import Any

from sim7020_core.connection import Capabilities, Connection, Transport
from sim7020_core.hookspecs import hookimpl


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
