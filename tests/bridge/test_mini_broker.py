"""The embedded fallback broker (used by ``sim7020 demo`` without mosquitto), checked with paho clients."""

from __future__ import annotations

import asyncio
import json
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sim7020_core.bridge.bridge import Bridge
from sim7020_core.bridge.config import load_config
from sim7020_core.bridge.mini_broker import MiniBroker

from .conftest import Watcher
from .test_bridge import wait_ready, write_config


@pytest.fixture
async def mini() -> AsyncIterator[MiniBroker]:
    broker = MiniBroker()
    await broker.start("127.0.0.1", 0)
    yield broker
    await broker.stop()


def _str(text: str) -> bytes:
    raw = text.encode()
    return struct.pack("!H", len(raw)) + raw


async def test_retained_qos1_and_wildcards(mini: MiniBroker, watcher_factory: Callable[..., Watcher]) -> None:
    pub = watcher_factory(mini)
    await pub.apublish("a/b/c", "kept", qos=1, retain=True)
    await pub.apublish("a/x", "gone", qos=0, retain=False)
    sub = watcher_factory(mini)
    await sub.asubscribe("a/#")
    retained = await sub.aexpect("a/b/c")
    assert (retained.payload, retained.retain) == (b"kept", True)
    await pub.apublish("b/a/y", "other tree", qos=1)
    await pub.apublish("a/y", "live", qos=1)
    live = await sub.aexpect("a/y")
    assert (live.payload, live.qos, live.retain) == (b"live", 1, False)
    await pub.apublish("a/b/c", "", qos=1, retain=True)  # clears the retained message
    late = watcher_factory(mini)
    await late.asubscribe("a/b/c")
    await pub.apublish("a/b/c", "fresh", qos=1)
    assert (await late.aexpect("a/b/c")).payload == b"fresh"


async def test_last_will_when_a_client_vanishes(
    mini: MiniBroker, watcher_factory: Callable[..., Watcher]
) -> None:
    sub = watcher_factory(mini)
    await sub.asubscribe("dev/status")
    reader, writer = await asyncio.open_connection(mini.host, mini.port)
    flags = 0x02 | 0x04 | (1 << 3) | 0x20
    body = _str("MQTT") + bytes([4, flags]) + struct.pack("!H", 30) + _str("vanisher") + _str("dev/status")
    body += _str("offline")
    writer.write(bytes([0x10, len(body)]) + body)
    assert await reader.readexactly(4) == b"\x20\x02\x00\x00"  # CONNACK accepted
    writer.transport.abort()  # no DISCONNECT
    msg = await sub.aexpect("dev/status")
    assert msg.payload == b"offline"


async def test_rejects_mqtt5_and_garbage(mini: MiniBroker) -> None:
    reader, writer = await asyncio.open_connection(mini.host, mini.port)
    body = _str("MQTT") + bytes([5, 0x02]) + struct.pack("!H", 30) + b"\x00" + _str("v5")
    writer.write(bytes([0x10, len(body)]) + body)
    assert (await reader.readexactly(4))[3] == 1  # unacceptable protocol version
    assert await reader.read() == b""
    writer.close()
    reader, writer = await asyncio.open_connection(mini.host, mini.port)
    writer.write(b"\x30\x00")  # PUBLISH before CONNECT
    assert await reader.read() == b""
    writer.close()


async def test_bridge_runs_on_the_embedded_broker(
    tmp_path: Path, mini: MiniBroker, watcher_factory: Callable[..., Watcher]
) -> None:
    config = load_config(write_config(tmp_path, mini))  # type: ignore[arg-type]
    bridge = Bridge(config)
    await bridge.start()
    try:
        await wait_ready(bridge)
        w = watcher_factory(mini)
        await w.asubscribe("sim7020/gw1/#")
        assert (await w.aexpect("sim7020/gw1/availability")).payload == b"online"
        await w.apublish("sim7020/gw1/cmd/dns", json.dumps({"id": "x", "host": "127.0.0.1"}))
        reply = json.loads((await w.aexpect("sim7020/gw1/cmd/dns/response")).payload)
        assert reply["result"]["addresses"] == ["127.0.0.1"]
    finally:
        await bridge.stop()
