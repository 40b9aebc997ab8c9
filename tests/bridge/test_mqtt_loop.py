"""The MQTT client on the event loop: dispatch by exact topic and by wildcard (shared subscriptions too),
keepalive on a timer, no network thread; and the queue's memory mirror of a large backlog."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.bridge import queue as queue_module
from sim7020_core.bridge.config import MqttConfig
from sim7020_core.bridge.mqtt import IncomingMessage, MqttClient, _levels_match, matching_filter
from sim7020_core.bridge.queue import DurableQueue

from .conftest import Broker, Watcher

_LEVEL = st.sampled_from(["a", "b", "", "$x"])


@st.composite
def _filters(draw: st.DrawFn) -> str:
    levels = draw(st.lists(st.one_of(_LEVEL, st.just("+")), min_size=1, max_size=4))
    if draw(st.booleans()):
        levels.append("#")
    return "/".join(levels)


@given(_filters(), st.lists(_LEVEL, min_size=1, max_size=5).map("/".join))
def test_wildcard_matching_agrees_with_paho(topic_filter: str, topic: str) -> None:
    assert _levels_match(topic_filter.split("/"), topic) == mqtt.topic_matches_sub(topic_filter, topic)


def test_a_shared_subscription_matches_the_topics_of_its_filter() -> None:
    assert matching_filter("$share/gw/sensors/+/telemetry") == "sensors/+/telemetry"
    assert matching_filter("sensors/+/telemetry") == "sensors/+/telemetry"


async def test_messages_reach_their_handlers_on_the_loop_without_a_network_thread(
    broker: Broker, watcher_factory: Callable[..., Watcher]
) -> None:
    threads_before = {t.ident for t in threading.enumerate()}
    client = MqttClient(MqttConfig(host=broker.host, port=broker.port, keepalive=2), client_id="loop-test")
    got: dict[str, list[bytes]] = {"exact": [], "wild": [], "shared": []}
    loop_thread = threading.get_ident()

    def handler(name: str) -> Callable[[IncomingMessage], None]:
        def handle(msg: IncomingMessage) -> None:
            assert threading.get_ident() == loop_thread
            got[name].append(msg.payload)
            client.ack(msg.mid, msg.qos)

        return handle

    client.subscribe("t/exact", handler("exact"))
    client.subscribe("t/+/wild", handler("wild"))
    client.subscribe("$share/grp/s/#", handler("shared"))
    await client.start()
    try:
        # no thread of paho's lives on (a worker thread may have made the connection attempt)
        assert not any("paho" in t.name for t in threading.enumerate() if t.ident not in threads_before)
        w = watcher_factory(broker)
        for topic, payload in (("t/exact", b"1"), ("t/x/wild", b"2"), ("s/a/b", b"3"), ("t/exact", b"4")):
            await w.apublish(topic, payload)
        async with asyncio.timeout(10):
            while sum(len(v) for v in got.values()) < 4:
                await asyncio.sleep(0.05)
        assert got == {"exact": [b"1", b"4"], "wild": [b"2"], "shared": [b"3"]}
        # idle for more than 1.5 keepalive periods: the keepalive timer pings, the broker keeps us
        await asyncio.sleep(4)
        assert client.connected
        assert client.connect_count == 1
        await client.publish("t/exact", b"5")
        async with asyncio.timeout(10):
            while len(got["exact"]) < 3:
                await asyncio.sleep(0.05)
    finally:
        await client.stop()


async def test_reconnects_by_itself_after_a_broker_restart(broker: Broker) -> None:
    client = MqttClient(MqttConfig(host=broker.host, port=broker.port), client_id="restart-test")
    await client.start()
    try:
        await asyncio.to_thread(broker.restart)
        async with asyncio.timeout(20):
            while client.connect_count < 2 or not client.connected:
                await asyncio.sleep(0.1)
        await asyncio.wait_for(client.publish("t", b"after"), 10)
    finally:
        await client.stop()


async def test_a_backlog_larger_than_memory_is_read_back_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(queue_module, "QUEUE_MEMORY_LIMIT", 1000)  # ten 100-byte messages
    path = tmp_path / "q.sqlite3"
    q = DurableQueue(path)
    await q.open()
    sent: list[bytes] = []
    try:
        await q.put_many("up", [("t", b"%03d" % i + bytes(97)) for i in range(40)])
        for round_ in range(8):
            batch = await q.peek("up", 7)
            sent += [m.payload[:3] for m in batch]
            await q.delete([m.id for m in batch])
            await q.put("up", "t", b"%03d" % (40 + round_) + bytes(97))  # puts while the backlog drains
        await q.close()
        q = DurableQueue(path)
        await q.open()  # and again after a restart, from a disk holding more than the memory
        while batch := await q.peek("up", 5):
            sent += [m.payload[:3] for m in batch]
            await q.delete([m.id for m in batch])
        assert sent == [b"%03d" % i for i in range(48)]
        assert await q.count() == 0
    finally:
        await q.close()
