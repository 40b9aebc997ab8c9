"""A minimal MQTT 3.1.1 broker on asyncio, used by ``sim7020 demo`` when mosquitto is not installed.

It is *not* a production broker: one process, memory only, no authentication, no persistent sessions
(``clean_session=0`` is accepted and answered with ``session present = 0``). It supports what the demo and
the bridge use: CONNECT with a will, SUBSCRIBE/UNSUBSCRIBE with ``+``/``#`` filters, PUBLISH at QoS 0, 1 and 2
(delivered at min(publish, subscription) QoS, capped at 1), retained messages, PINGREQ and DISCONNECT.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from dataclasses import dataclass, field

from .config import topic_matches

_LOGGER = logging.getLogger(__name__)

#: A client that sends nothing for 1.5 x keepalive is dropped (MQTT 3.1.1 section 3.1.2.10).
KEEPALIVE_FACTOR = 1.5
#: Bound on the CONNECT packet after the TCP connection opened.
CONNECT_TIMEOUT = 10.0
MAX_PACKET = 1024 * 1024

CONNECT, CONNACK, PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP = 1, 2, 3, 4, 5, 6, 7
SUBSCRIBE, SUBACK, UNSUBSCRIBE, UNSUBACK, PINGREQ, PINGRESP, DISCONNECT = 8, 9, 10, 11, 12, 13, 14


class ProtocolError(Exception):
    """The client broke the protocol; its connection is closed."""


def _encode_length(length: int) -> bytes:
    out = bytearray()
    while True:
        byte, length = length % 128, length // 128
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out)


def _string(data: bytes, pos: int) -> tuple[str, int]:
    if pos + 2 > len(data):
        raise ProtocolError("truncated string")
    (size,) = struct.unpack_from("!H", data, pos)
    end = pos + 2 + size
    if end > len(data):
        raise ProtocolError("truncated string")
    return data[pos + 2 : end].decode("utf-8"), end


def _bin(data: bytes, pos: int) -> tuple[bytes, int]:
    (size,) = struct.unpack_from("!H", data, pos)
    return data[pos + 2 : pos + 2 + size], pos + 2 + size


def _pack_str(text: str) -> bytes:
    raw = text.encode("utf-8")
    return struct.pack("!H", len(raw)) + raw


@dataclass
class _Session:
    client_id: str
    writer: asyncio.StreamWriter
    subscriptions: dict[str, int] = field(default_factory=dict)
    will: tuple[str, bytes, int, bool] | None = None
    next_id: int = 0

    def packet_id(self) -> int:
        self.next_id = self.next_id % 65535 + 1
        return self.next_id

    def send(self, packet_type: int, flags: int, body: bytes) -> None:
        if not self.writer.is_closing():
            self.writer.write(bytes([(packet_type << 4) | flags]) + _encode_length(len(body)) + body)


class MiniBroker:
    """``await MiniBroker().start("127.0.0.1", 0)`` → (host, port); ``await stop()``."""

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._sessions: dict[str, _Session] = {}
        self._retained: dict[str, tuple[bytes, int]] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.host = "127.0.0.1"
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0: a free port)."""
        self._server = await asyncio.start_server(self._serve, host, port)
        self.host, self.port = self._server.sockets[0].getsockname()[:2]
        return self.host, self.port

    async def stop(self) -> None:
        """Close the listener and every client connection."""
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()  # the handlers see the connection end and finish on their own
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CONNECT_TIMEOUT):
                    await asyncio.gather(*self._handlers, return_exceptions=True)
                    await self._server.wait_closed()
            self._server = None

    async def _read_packet(self, reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
        header = await reader.readexactly(1)
        length = 0
        for shift in range(0, 28, 7):
            byte = (await reader.readexactly(1))[0]
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                break
        else:
            raise ProtocolError("bad remaining length")
        if length > MAX_PACKET:
            raise ProtocolError(f"packet of {length} bytes is too large")
        return header[0] >> 4, header[0] & 0x0F, await reader.readexactly(length)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.add(writer)
        session: _Session | None = None
        clean = False
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT):
                ptype, _flags, body = await self._read_packet(reader)
            session, keepalive = self._connect(ptype, body, writer)
            while True:
                timeout = keepalive * KEEPALIVE_FACTOR if keepalive else None
                async with asyncio.timeout(timeout):
                    ptype, flags, body = await self._read_packet(reader)
                if ptype == DISCONNECT:
                    clean = True
                    return
                self._handle(session, ptype, flags, body)
                await writer.drain()
        except (
            asyncio.IncompleteReadError,
            ConnectionError,
            TimeoutError,
            ProtocolError,
            UnicodeDecodeError,
        ) as err:
            _LOGGER.debug("mini broker: client %s gone: %r", session.client_id if session else "?", err)
        finally:
            self._handlers.discard(task)
            self._writers.discard(writer)
            if session is not None and self._sessions.get(session.client_id) is session:
                del self._sessions[session.client_id]
                if not clean and session.will is not None:
                    topic, payload, qos, retain = session.will
                    self._route(topic, payload, qos, retain)
            writer.close()

    def _connect(self, ptype: int, body: bytes, writer: asyncio.StreamWriter) -> tuple[_Session, int]:
        if ptype != CONNECT:
            raise ProtocolError("first packet is not CONNECT")
        proto, pos = _string(body, 0)
        if proto != "MQTT" or body[pos] != 4:
            writer.write(bytes([CONNACK << 4, 2, 0, 1]))  # unacceptable protocol version
            raise ProtocolError("only MQTT 3.1.1 is supported")
        flags = body[pos + 1]
        (keepalive,) = struct.unpack_from("!H", body, pos + 2)
        client_id, pos = _string(body, pos + 4)
        will = None
        if flags & 0x04:
            will_topic, pos = _string(body, pos)
            will_payload, pos = _bin(body, pos)
            will = (will_topic, will_payload, (flags >> 3) & 3, bool(flags & 0x20))
        client_id = client_id or f"anon-{id(writer):x}"
        old = self._sessions.get(client_id)
        if old is not None:  # session takeover (3.1.4-2)
            old.writer.close()
        session = _Session(client_id, writer, will=will)
        self._sessions[client_id] = session
        session.send(CONNACK, 0, b"\x00\x00")
        return session, keepalive

    def _handle(self, session: _Session, ptype: int, flags: int, body: bytes) -> None:
        if ptype == PUBLISH:
            qos, retain = (flags >> 1) & 3, bool(flags & 1)
            topic, pos = _string(body, 0)
            if qos:
                (pid,) = struct.unpack_from("!H", body, pos)
                pos += 2
                session.send(PUBACK if qos == 1 else PUBREC, 0, struct.pack("!H", pid))
            self._route(topic, body[pos:], qos, retain)
        elif ptype == PUBREL:
            session.send(PUBCOMP, 0, body[:2])
        elif ptype == SUBSCRIBE:
            pid = body[:2]
            pos, granted = 2, bytearray()
            new: list[tuple[str, int]] = []
            while pos < len(body):
                topic_filter, pos = _string(body, pos)
                qos = min(body[pos] & 3, 1)
                pos += 1
                session.subscriptions[topic_filter] = qos
                granted.append(qos)
                new.append((topic_filter, qos))
            session.send(SUBACK, 0, pid + bytes(granted))
            for topic_filter, qos in new:
                for topic, (payload, rqos) in list(self._retained.items()):
                    if topic_matches(topic_filter, topic):
                        self._deliver(session, topic, payload, min(qos, rqos), retain=True)
        elif ptype == UNSUBSCRIBE:
            pos = 2
            while pos < len(body):
                topic_filter, pos = _string(body, pos)
                session.subscriptions.pop(topic_filter, None)
            session.send(UNSUBACK, 0, body[:2])
        elif ptype == PINGREQ:
            session.send(PINGRESP, 0, b"")
        # PUBACK / PUBREC / PUBCOMP from subscribers: nothing is kept for redelivery.

    def _route(self, topic: str, payload: bytes, qos: int, retain: bool) -> None:
        if retain:
            if payload:
                self._retained[topic] = (payload, min(qos, 1))
            else:
                self._retained.pop(topic, None)
        for session in list(self._sessions.values()):
            granted = [q for f, q in session.subscriptions.items() if topic_matches(f, topic)]
            if granted:
                self._deliver(session, topic, payload, min(qos, max(granted)), retain=False)

    def _deliver(self, session: _Session, topic: str, payload: bytes, qos: int, *, retain: bool) -> None:
        body = _pack_str(topic)
        if qos:
            body += struct.pack("!H", session.packet_id())
        session.send(PUBLISH, (qos << 1) | int(retain), body + payload)
