"""The demo's local broker (sim7020_core/bridge/broker.py): mosquitto, or amqtt in this process."""

from __future__ import annotations

import asyncio
import importlib
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sim7020_core.bridge import broker as broker_module
from sim7020_core.bridge.broker import BrokerError, LocalBroker
from sim7020_core.cli import main

from .conftest import Watcher


def _hide_mosquitto(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(broker_module, "MOSQUITTO_PATHS", ())


def _hide_amqtt(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if amqtt were not installed: importing it raises ModuleNotFoundError."""
    for name in ("amqtt", "amqtt.broker", "amqtt.errors"):
        monkeypatch.setitem(sys.modules, name, None)


def _refused(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=5).close()
    except ConnectionRefusedError:
        return True
    return False


@pytest.fixture
async def embedded() -> AsyncIterator[LocalBroker]:
    broker = LocalBroker(kind="embedded")
    await broker.start()
    yield broker
    await broker.stop()


async def test_embedded_broker_serves_paho_as_the_bridge_uses_it(
    embedded: LocalBroker, watcher_factory: Callable[..., Watcher]
) -> None:
    """MQTT 3.1.1, persistent session, QoS 1, retained state, wildcards and the last will."""
    assert embedded.name.startswith("amqtt ")
    sub = watcher_factory(embedded, client_id="sim7020-bridge-gw1", clean_session=False)
    pub = watcher_factory(embedded)
    await pub.apublish("sim7020/gw1/state", '{"link":"ready"}', qos=1, retain=True)
    await sub.asubscribe("sim7020/+/state")
    retained = await sub.aexpect("sim7020/gw1/state")
    assert (retained.payload, retained.retain) == (b'{"link":"ready"}', True)
    await sub.asubscribe("demo/sensors/#")
    await pub.apublish("demo/other/kitchen", "not subscribed", qos=1)
    await pub.apublish("demo/sensors/kitchen/telemetry", "21.5", qos=1)
    live = await sub.aexpect("demo/sensors/#")
    assert (live.topic, live.payload, live.qos, live.retain) == (
        "demo/sensors/kitchen/telemetry",
        b"21.5",
        1,
        False,
    )

    # A client that vanishes without DISCONNECT: the broker publishes its will (the bridge's availability).
    await sub.asubscribe("sim7020/gw1/availability")
    gone = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="vanisher", protocol=mqtt.MQTTv311)
    gone.will_set("sim7020/gw1/availability", "offline", qos=1, retain=True)
    connected = asyncio.Event()
    loop = asyncio.get_running_loop()
    gone.on_connect = lambda *_a: loop.call_soon_threadsafe(connected.set)
    gone.connect(embedded.host, embedded.port, keepalive=30)
    gone.loop_start()
    await asyncio.wait_for(connected.wait(), 10)
    gone.loop_stop()
    sock = gone.socket()
    assert isinstance(sock, socket.socket)
    sock.close()
    will = await sub.aexpect("sim7020/gw1/availability")
    assert will.payload == b"offline"


@pytest.mark.parametrize("kind", ["embedded", "mosquitto"])
async def test_broker_listens_on_loopback_only(kind: str) -> None:
    broker = LocalBroker(kind=kind)
    await broker.start()
    try:
        assert not _refused("127.0.0.1", broker.port)
        assert _refused("127.0.0.2", broker.port)  # another loopback address: nothing listens there
    finally:
        await broker.stop()
    assert _refused("127.0.0.1", broker.port)


async def test_embedded_broker_stops_with_nothing_left_running(
    watcher_factory: Callable[..., Watcher],
) -> None:
    # The loop's worker thread (the test's clients use it, so does amqtt's first import) is not the broker's.
    await asyncio.to_thread(importlib.import_module, "amqtt.broker")
    tasks_before = asyncio.all_tasks()
    threads_before = set(threading.enumerate())
    broker = LocalBroker(kind="embedded")
    await broker.start()
    client = watcher_factory(broker, client_id="still-connected", clean_session=False)
    await client.asubscribe("demo/#")
    await broker.stop()  # with the client still connected
    client.close()
    await asyncio.sleep(0)
    assert asyncio.all_tasks() == tasks_before
    assert set(threading.enumerate()) == threads_before
    assert _refused("127.0.0.1", broker.port)


async def test_a_taken_port_is_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        broker = LocalBroker(port=port, kind="embedded")
        with pytest.raises(BrokerError, match=rf"amqtt\) did not start on 127\.0\.0\.1:{port}"):
            await broker.start()
        await broker.stop()  # nothing to stop: no error either


@pytest.mark.parametrize(
    ("kind", "missing", "message"),
    [
        ("mosquitto", "mosquitto", "mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)"),
        ("embedded", "amqtt", "the embedded broker needs amqtt: pip install 'sim7020[demo]'"),
    ],
)
async def test_the_broker_asked_for_is_missing(
    kind: str, missing: str, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    if missing == "mosquitto":
        _hide_mosquitto(monkeypatch, tmp_path)
    else:
        _hide_amqtt(monkeypatch)
    with pytest.raises(BrokerError) as err:
        await LocalBroker(kind=kind).start()
    assert message in str(err.value)


def test_demo_without_any_broker_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _hide_mosquitto(monkeypatch, tmp_path)
    _hide_amqtt(monkeypatch)
    assert main(["demo", "--once"]) == 1
    err = capsys.readouterr().err
    assert "apt-get install mosquitto" in err
    assert "pip install 'sim7020[demo]'" in err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "mini"}, "broker kind must be one of auto, mosquitto, embedded, not 'mini'"),
        ({"host": "0.0.0.0"}, "loopback address only"),
        ({"host": "localhost"}, "loopback address only"),
    ],
)
def test_bad_arguments_are_named(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        LocalBroker(**kwargs)
