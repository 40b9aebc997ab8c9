"""The bridge against a real mosquitto and the built-in emulated modem: availability, state, discovery,
commands (MQTT 3.1.1 and 5), TLS and authentication."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from sim7020_core.bridge.bridge import Bridge, BridgeError
from sim7020_core.bridge.config import load_config

from .conftest import MOSQUITTO_PASSWD, Broker, TlsFiles, Watcher

BRIDGE_START_TIMEOUT = 30.0


def write_config(
    tmp_path: Path, broker: Broker, body: str = "", *, mqtt_extra: str = "", modem_extra: str = ""
) -> Path:
    lines = ["mqtt:", "  host: 127.0.0.1", f"  port: {broker.port}", "  client_id: test-bridge"]
    lines += [f"  {line}" for line in mqtt_extra.splitlines()]
    lines += ["state_dir: state", "modems:", "  - id: gw1", "    device: emulator", "    poll_interval: 5"]
    lines += [f"    {line}" for line in modem_extra.splitlines()]
    path = tmp_path / "bridge.yaml"
    path.write_text("\n".join(lines) + "\n" + body, encoding="utf-8")
    return path


@pytest.fixture
async def run_bridge() -> AsyncIterator[Callable[[Path], Any]]:
    started: list[Bridge] = []

    async def start(path: Path) -> Bridge:
        bridge = Bridge(load_config(path))
        async with asyncio.timeout(BRIDGE_START_TIMEOUT):
            await bridge.start()
        started.append(bridge)
        return bridge

    yield start
    for bridge in started:
        await bridge.stop()


async def wait_ready(bridge: Bridge) -> Any:
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        return await bridge.modems[0].wait_ready()


async def test_availability_state_and_discovery(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], run_bridge: Any
) -> None:
    bridge = await run_bridge(write_config(tmp_path, broker))
    modem = await wait_ready(bridge)
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/#")
    await w.asubscribe("homeassistant/#")

    avail = await w.aexpect("sim7020/gw1/availability")
    assert avail.payload == b"online"

    state_msg = await w.aexpect("sim7020/gw1/state", where=lambda m: json.loads(m.payload)["link"] == "ready")
    state = json.loads(state_msg.payload)
    assert state["registration"] == "home"
    assert state["attached"] is True
    assert state["rssi_dbm"] == modem.status.rssi_dbm
    assert state["info"]["imei"] == modem.info.imei

    disc = await w.aexpect("homeassistant/device/+/config")
    assert disc.topic == f"homeassistant/device/sim7020_{modem.info.imei}/config"
    config = json.loads(disc.payload)

    # all three are retained: a client that subscribes later gets them at once
    late = watcher_factory(broker)
    await late.asubscribe("sim7020/gw1/availability")
    await late.asubscribe("sim7020/gw1/state")
    await late.asubscribe(disc.topic)
    for topic in ("sim7020/gw1/availability", "sim7020/gw1/state", disc.topic):
        assert (await late.aexpect(topic)).retain, topic
    assert config["device"]["identifiers"] == [f"sim7020_{modem.info.imei}"]
    assert config["origin"]["name"]
    assert config["state_topic"] == "sim7020/gw1/state"
    assert config["availability_mode"] == "all"
    assert config["availability"][0]["topic"] == "sim7020/gw1/availability"
    cmps = config["components"]
    assert {"signal", "registration", "attached", "pdn", "operator", "ip", "psm"} <= set(cmps)
    assert cmps["signal"]["device_class"] == "signal_strength"
    assert cmps["signal"]["unit_of_measurement"] == "dBm"
    assert cmps["attached"]["p"] == "binary_sensor"
    uids = [c["unique_id"] for c in cmps.values()]
    assert len(uids) == len(set(uids))
    assert all(c["entity_category"] == "diagnostic" for c in cmps.values())

    # Home Assistant restarts: its birth message makes the bridge republish discovery (a live message,
    # so it arrives without the retain flag, unlike the retained copy a new subscription gets).
    ha = watcher_factory(broker)
    await ha.asubscribe(disc.topic)
    assert (await ha.aexpect(disc.topic)).retain
    await ha.apublish("homeassistant/status", "online", qos=1)
    again = await ha.aexpect(disc.topic, where=lambda m: not m.retain)
    assert json.loads(again.payload) == config


async def test_state_follows_the_modem(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], run_bridge: Any
) -> None:
    bridge = await run_bridge(write_config(tmp_path, broker))
    await wait_ready(bridge)
    emu = bridge.factory.emulator("gw1")
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/state")
    await w.aexpect("sim7020/gw1/state")
    emu.set_signal(csq=5)
    await bridge.modems[0].modem.refresh()
    msg = await w.aexpect("sim7020/gw1/state", where=lambda m: json.loads(m.payload)["csq"] == 5)
    assert json.loads(msg.payload)["rssi_dbm"] == -113 + 2 * 5


async def request(w: Watcher, name: str, body: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
    await w.apublish(f"sim7020/gw1/cmd/{name}", json.dumps(body), qos=1)
    msg = await w.aexpect(
        f"sim7020/gw1/cmd/{name}/response",
        timeout,
        where=lambda m: json.loads(m.payload).get("id") == body.get("id"),
    )
    return dict(json.loads(msg.payload))


async def test_commands(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], run_bridge: Any
) -> None:
    bridge = await run_bridge(write_config(tmp_path, broker))
    await wait_ready(bridge)
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/cmd/+/response")

    reply = await request(w, "dns", {"id": "d1", "host": "127.0.0.1"})
    assert reply["ok"] is True, reply
    assert reply["result"]["addresses"] == ["127.0.0.1"]

    reply = await request(w, "ping", {"id": 7, "host": "127.0.0.1", "count": 2})
    assert reply["ok"] is True, reply
    assert [r["seq"] for r in reply["result"]["replies"]] == [1, 2]

    reply = await request(w, "at", {"id": "a1", "command": "AT+CSQ"})
    assert reply == {"id": "a1", "ok": False, "error": reply["error"]}
    assert "disabled" in reply["error"]

    reply = await request(w, "ping", {"id": "bad", "count": 2})
    assert reply["ok"] is False
    assert "host: is required" in reply["error"]

    await w.apublish("sim7020/gw1/cmd/dns", "not json", qos=1)
    msg = await w.aexpect("sim7020/gw1/cmd/dns/response")
    garbage = json.loads(msg.payload)
    assert garbage["id"] is None
    assert "not JSON" in garbage["error"]


async def test_at_command_enabled(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], run_bridge: Any
) -> None:
    bridge = await run_bridge(write_config(tmp_path, broker, modem_extra="at_commands: true"))
    await wait_ready(bridge)
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/cmd/+/response")
    reply = await request(w, "at", {"id": "a1", "command": "AT+CSQ"})
    assert reply["ok"] is True, reply
    assert reply["result"]["lines"][0].startswith("+CSQ: ")


async def test_mqtt5_response_topic_and_correlation_data(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], run_bridge: Any
) -> None:
    bridge = await run_bridge(write_config(tmp_path, broker, mqtt_extra="protocol: 5"))
    await wait_ready(bridge)
    w = watcher_factory(broker, protocol=mqtt.MQTTv5)
    await w.asubscribe("replies/me")
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = "replies/me"
    props.CorrelationData = b"\x00\x01corr"
    await w.apublish(
        "sim7020/gw1/cmd/dns", json.dumps({"id": 1, "host": "127.0.0.1"}), qos=1, properties=props
    )
    msg = await w.aexpect("replies/me")
    assert json.loads(msg.payload)["result"]["addresses"] == ["127.0.0.1"]
    assert msg.properties.CorrelationData == b"\x00\x01corr"


async def test_clean_stop_publishes_offline(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher]
) -> None:
    bridge = Bridge(load_config(write_config(tmp_path, broker)))
    await bridge.start()
    await wait_ready(bridge)
    await bridge.stop()
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/availability")
    msg = await w.aexpect("sim7020/gw1/availability")
    assert (msg.payload, msg.retain) == (b"offline", True)


def start_bridge_process(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "sim7020_core", "bridge", "-c", str(config), "--log-level", "INFO"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def test_last_will_on_sigkill(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher]
) -> None:
    config = write_config(tmp_path, broker, mqtt_extra="keepalive: 5")
    w = watcher_factory(broker)
    w.subscribe("sim7020/gw1/availability")
    proc = start_bridge_process(config, tmp_path / "bridge.log")
    try:
        w.expect("sim7020/gw1/availability", 30, where=lambda m: m.payload == b"online")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        offline = w.expect("sim7020/gw1/availability", 15, where=lambda m: m.payload == b"offline")
        assert offline.payload == b"offline"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    # the will is retained: a newcomer sees "offline"
    late = watcher_factory(broker)
    late.subscribe("sim7020/gw1/availability")
    assert late.expect("sim7020/gw1/availability").payload == b"offline"


def test_sigterm_shuts_down_cleanly(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher]
) -> None:
    config = write_config(tmp_path, broker)
    w = watcher_factory(broker)
    w.subscribe("sim7020/gw1/availability")
    log = tmp_path / "bridge.log"
    proc = start_bridge_process(config, log)
    try:
        w.expect("sim7020/gw1/availability", 30, where=lambda m: m.payload == b"online")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0, log.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    w.expect("sim7020/gw1/availability", where=lambda m: m.payload == b"offline")
    text = log.read_text()
    assert "stopping" in text
    assert "Traceback" not in text


def test_two_bridges_cannot_share_a_state_dir(tmp_path: Path, broker: Broker) -> None:
    config = load_config(write_config(tmp_path, broker))

    async def scenario() -> None:
        first = Bridge(config)
        await first.start()
        try:
            with pytest.raises(BridgeError, match="another bridge is using the state directory"):
                await Bridge(config).start()
        finally:
            await first.stop()

    asyncio.run(scenario())


async def test_tls_with_client_certificate(
    tmp_path: Path,
    make_broker: Callable[..., Broker],
    tls_files: TlsFiles,
    watcher_factory: Callable[..., Watcher],
) -> None:
    broker = make_broker(
        extra=[
            f"cafile {tls_files.ca}",
            f"certfile {tls_files.server_cert}",
            f"keyfile {tls_files.server_key}",
            "require_certificate true",
        ]
    )
    tls = (
        f"tls: {{ca_certs: {tls_files.ca}, certfile: {tls_files.client_cert},"
        f" keyfile: {tls_files.client_key}}}"
    )
    bridge = Bridge(load_config(write_config(tmp_path, broker, mqtt_extra=tls)))
    await bridge.start()
    try:
        assert bridge.modems[0].mqtt.connected
    finally:
        await bridge.stop()


async def test_tls_rejects_a_foreign_ca(
    tmp_path: Path, make_broker: Callable[..., Broker], tls_files: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    broker = make_broker(
        extra=[
            f"cafile {tls_files.ca}",
            f"certfile {tls_files.server_cert}",
            f"keyfile {tls_files.server_key}",
        ]
    )
    # the client trusts only its own certificate, not the CA that signed the server's
    tls = f"tls: {{ca_certs: {tls_files.client_cert}}}"
    bridge = Bridge(load_config(write_config(tmp_path, broker, mqtt_extra=tls)))
    monkeypatch.setattr("sim7020_core.bridge.mqtt.MQTT_CONNECT_TIMEOUT", 1.0)
    try:
        await bridge.start()  # the bridge keeps retrying in the background, as for an unreachable broker
        await asyncio.sleep(0.5)
        assert not bridge.modems[0].mqtt.connected
    finally:
        await bridge.stop()


@pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="mosquitto_passwd is not installed")
async def test_username_and_password(
    tmp_path: Path, make_broker: Callable[..., Broker], monkeypatch: pytest.MonkeyPatch
) -> None:
    pwfile = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(pwfile), "bridge", "s3cret"], check=True, timeout=10)
    broker = make_broker(extra=[f"password_file {pwfile}", "allow_anonymous false"])
    (tmp_path / "secrets.yaml").write_text("mqtt_pass: s3cret\n")
    good = write_config(tmp_path, broker, mqtt_extra="username: bridge\npassword: !secret mqtt_pass")
    bridge = Bridge(load_config(good))
    await bridge.start()
    try:
        assert bridge.modems[0].mqtt.connected
    finally:
        await bridge.stop()

    monkeypatch.setenv("SIM7020_TEST_PW", "wrong")
    bad = write_config(tmp_path, broker, mqtt_extra="username: bridge\npassword: !env SIM7020_TEST_PW")
    with pytest.raises(BridgeError, match="refused"):
        await Bridge(load_config(bad)).start()


def test_state_payload_before_the_modem_answers(tmp_path: Path, broker: Broker) -> None:
    config = load_config(write_config(tmp_path, broker))
    from sim7020_core.bridge.bridge import ModemBridge
    from sim7020_core.bridge.queue import DurableQueue
    from sim7020_core.plugins import make_plugin_manager

    async def scenario() -> dict[str, Any]:
        mb = ModemBridge(
            config,
            config.modems[0],
            queue=DurableQueue(tmp_path / "q.sqlite3"),
            plugins=make_plugin_manager(),
            modem_factory=None,  # type: ignore[arg-type]
        )
        return mb.state_payload()

    state = asyncio.run(scenario())
    assert state["link"] == "connecting"
    assert state["registration"] == "unknown"
    assert state["modem_id"] == "gw1"
    assert time.time() - state["updated"] < 60


async def test_several_modems_in_one_process(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], run_bridge: Any
) -> None:
    body = (
        "  - id: gw2\n    device: emulator\n    name: Cellar gateway\n"
        "    options: {emulator: {imei: '869714030000001'}}\n"
    )
    bridge = await run_bridge(write_config(tmp_path, broker, body))
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        await asyncio.gather(*(m.wait_ready() for m in bridge.modems))
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/+/availability")
    await w.asubscribe("homeassistant/device/+/config")
    for modem_id in ("gw1", "gw2"):
        assert (await w.aexpect(f"sim7020/{modem_id}/availability")).payload == b"online"
    names: set[str] = set()
    for _ in range(2):
        msg = await w.aexpect(
            "homeassistant/device/+/config",
            where=lambda m: json.loads(m.payload)["device"]["name"] not in names,
        )
        names.add(json.loads(msg.payload)["device"]["name"])
    assert names == {"SIM7020 gw1", "Cellar gateway"}
    await w.asubscribe("sim7020/gw2/cmd/dns/response")
    await w.apublish("sim7020/gw2/cmd/dns", json.dumps({"id": "two", "host": "127.0.0.1"}))
    assert json.loads((await w.aexpect("sim7020/gw2/cmd/dns/response")).payload)["id"] == "two"


async def test_everything_is_republished_after_a_broker_restart(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], run_bridge: Any
) -> None:
    bridge = await run_bridge(write_config(tmp_path, broker))
    await wait_ready(bridge)
    first = watcher_factory(broker)
    await first.asubscribe("sim7020/gw1/availability")
    await first.aexpect("sim7020/gw1/availability")
    await asyncio.to_thread(broker.restart)  # no persistence: every retained message is gone
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/#")
    await w.asubscribe("homeassistant/#")
    assert (await w.aexpect("sim7020/gw1/availability", 20)).payload == b"online"
    assert json.loads((await w.aexpect("sim7020/gw1/state", 20)).payload)["link"] == "ready"
    await w.aexpect("homeassistant/device/+/config", 20)
    assert bridge.modems[0].mqtt.connect_count == 2
