"""Data usage and radio diagnostics in the bridge's MQTT state (issue 15), with a real mosquitto, the built-in
emulated modem and a real UDP peer behind a route: ``usage`` counts what the route carried, ``cell`` shows the
serving cell and its neighbours, and the totals are kept in the state directory across bridge restarts."""

from __future__ import annotations

import asyncio
import json
import stat
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from sim7020_core.bridge.bridge import Bridge, usage_file_path
from sim7020_core.bridge.config import load_config
from sim7020_core.bridge.state_dir import StateDirError
from sim7020_core.emulator.peers import UdpPeer

from .conftest import Broker, Watcher
from .test_bridge import BRIDGE_START_TIMEOUT, wait_ready, write_config

ROUTE = """\
routes:
  - name: telemetry
    modem: gw1
    protocol: udp
    host: 127.0.0.1
    port: {port}
    uplink: sensors/+/telemetry
    downlink: sim7020/gw1/downlink/telemetry
"""


@pytest.fixture
async def udp_peer() -> AsyncIterator[UdpPeer]:
    async with UdpPeer(reply=lambda data: b"ack:" + data) as peer:
        yield peer


@pytest.fixture
async def bridges() -> AsyncIterator[list[Bridge]]:
    started: list[Bridge] = []
    yield started
    for bridge in started:
        await bridge.stop()


async def _start(config_path: Path, started: list[Bridge]) -> Bridge:
    bridge = Bridge(load_config(config_path))
    started.append(bridge)
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        await bridge.start()
    await wait_ready(bridge)
    return bridge


def _usage(msg: Any) -> dict[str, int] | None:
    usage: dict[str, int] | None = json.loads(msg.payload)["usage"]
    return usage


async def test_state_shows_usage_after_traffic_and_the_serving_cell(
    tmp_path: Path,
    broker: Broker,
    watcher_factory: Callable[..., Watcher],
    udp_peer: UdpPeer,
    bridges: list[Bridge],
) -> None:
    bridge = await _start(write_config(tmp_path, broker, ROUTE.format(port=udp_peer.port)), bridges)
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/state")
    await w.asubscribe("sim7020/gw1/downlink/#")
    first = await w.aexpect("sim7020/gw1/state", where=lambda m: json.loads(m.payload)["link"] == "ready")
    state = json.loads(first.payload)
    assert state["usage"] == {"sent_bytes": 0, "received_bytes": 0}
    # the serving cell and its neighbours, as the emulated network has them
    cell = bridge.factory.emulator("gw1").cell
    assert (state["cell"]["pci"], state["cell"]["earfcn"], state["cell"]["band"]) == (
        cell.pci,
        cell.earfcn,
        cell.band,
    )
    assert (state["cell"]["tac"], state["cell"]["cell_id"], state["cell"]["ecl"]) == (
        cell.tac,
        cell.cell_id,
        cell.ecl,
    )
    assert [n["pci"] for n in state["cell"]["neighbours"]] == [n.pci for n in cell.neighbours]

    publisher = watcher_factory(broker)
    for i in range(5):
        await publisher.apublish("sensors/t1/telemetry", f"reading {i}", qos=1)  # 9 bytes each
    for _ in range(5):
        await w.aexpect("sim7020/gw1/downlink/telemetry")  # the peer's answers came back ("ack:" + 9)
    assert sum(len(d) for d in udp_peer.received) == 45
    msg = await w.aexpect(
        "sim7020/gw1/state", where=lambda m: _usage(m) == {"sent_bytes": 45, "received_bytes": 65}
    )
    assert json.loads(msg.payload)["link"] == "ready"


async def test_usage_is_kept_in_the_state_dir_across_bridge_restarts(
    tmp_path: Path,
    broker: Broker,
    watcher_factory: Callable[..., Watcher],
    udp_peer: UdpPeer,
    bridges: list[Bridge],
) -> None:
    config_path = write_config(tmp_path, broker, ROUTE.format(port=udp_peer.port))
    bridge = await _start(config_path, bridges)
    publisher = watcher_factory(broker)
    await publisher.apublish("sensors/t1/telemetry", "0123456789", qos=1)
    async with asyncio.timeout(10):
        while len(udp_peer.received) < 1 or bridge.modems[0].modem.usage.received_bytes < 14:
            await asyncio.sleep(0.02)
    await bridge.stop()
    bridges.remove(bridge)

    usage_file = usage_file_path(load_config(config_path).state_dir, "gw1")
    assert json.loads(usage_file.read_text())["sent_bytes"] == 10
    assert stat.S_IMODE(usage_file.stat().st_mode) == 0o600

    await _start(config_path, bridges)  # a new process would do the same: read the file at connect
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/state")
    msg = await w.aexpect("sim7020/gw1/state", where=lambda m: json.loads(m.payload)["link"] == "ready")
    assert _usage(msg) == {"sent_bytes": 10, "received_bytes": 14}  # "ack:0123456789"


async def test_a_symlinked_usage_file_in_the_state_dir_is_refused(
    tmp_path: Path, broker: Broker, bridges: list[Bridge]
) -> None:
    config = load_config(write_config(tmp_path, broker))
    config.state_dir.mkdir(mode=0o700)
    target = tmp_path / "elsewhere.json"
    target.write_text("{}")
    usage_file_path(config.state_dir, "gw1").symlink_to(target)
    bridge = Bridge(config)
    with pytest.raises(StateDirError, match="symbolic link"):
        await bridge.start()
    assert target.read_text() == "{}"


async def test_discovery_offers_the_usage_as_total_increasing_sensors(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], bridges: list[Bridge]
) -> None:
    await _start(write_config(tmp_path, broker), bridges)
    w = watcher_factory(broker)
    await w.asubscribe("homeassistant/device/+/config")
    components = json.loads((await w.aexpect("homeassistant/device/+/config")).payload)["components"]
    for key in ("data_sent", "data_received"):
        assert components[key]["state_class"] == "total_increasing"
        assert components[key]["device_class"] == "data_size"
        assert components[key]["unit_of_measurement"] == "B"
