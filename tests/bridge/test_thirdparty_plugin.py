"""The bridge with the third-party distribution of tests/plugins/thirdparty (installed with pip).

Its codec (``reverse``) and its transport (``echo``) are named in the bridge YAML exactly like built-in ones,
and carry real MQTT traffic through a real mosquitto, like ``sim7020 bridge -c FILE`` would: the plugin
manager is built by the bridge's composer and used for the configuration check and for every modem.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from sim7020_core.bridge.bridge import Bridge
from sim7020_core.bridge.config import load_config
from sim7020_core.emulator.peers import UdpPeer
from sim7020_core.exceptions import ConfigError
from sim7020_core.plugins import PluginManager, async_make_plugin_manager

from .conftest import Broker, Watcher
from .test_bridge import BRIDGE_START_TIMEOUT, wait_ready, write_config
from .test_routes import PEER_TIMEOUT, udp_peer  # noqa: F401 - the fixture

DOWNLINK = "sim7020/gw1/downlink/plugin"


@pytest.fixture
async def plugins(echo_plugin_installed: None) -> PluginManager:
    return await async_make_plugin_manager()


@pytest.fixture
def echo_plugin_installed() -> None:
    import importlib.metadata

    try:
        importlib.metadata.distribution("sim7020-echo-plugin")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("install the test plugin first: pip install tests/plugins/thirdparty")


def plugin_route(*, transport: str = "native", encoding: str = "raw", port: int = 9) -> str:
    return f"""\
routes:
  - name: plugin
    modem: gw1
    transport: {transport}
    host: 127.0.0.1
    port: {port}
    uplink: sensors/+/plugin
    downlink: {DOWNLINK}
    encoding: {encoding}
"""


@pytest.fixture
async def started() -> AsyncIterator[Callable[[Bridge], object]]:
    bridges: list[Bridge] = []

    async def start(bridge: Bridge) -> Bridge:
        async with asyncio.timeout(BRIDGE_START_TIMEOUT):
            await bridge.start()
        bridges.append(bridge)
        await wait_ready(bridge)
        return bridge

    yield start
    for bridge in bridges:
        await bridge.stop()


async def test_plugin_codec_both_ways(
    tmp_path: Path,
    broker: Broker,
    udp_peer: tuple[UdpPeer, int],  # noqa: F811 - the fixture
    watcher_factory: Callable[..., Watcher],
    plugins: PluginManager,
    started: Callable[[Bridge], object],
) -> None:
    """Uplink: the MQTT payload is decoded with the plugin's codec before it goes to the peer; downlink: what
    the peer answers is encoded with it before it is published."""
    peer, port = udp_peer
    config = load_config(
        write_config(tmp_path, broker, plugin_route(encoding="reverse", port=port)), plugins=plugins
    )
    await started(Bridge(config, plugins=plugins))
    w = watcher_factory(broker)
    await w.asubscribe(DOWNLINK)
    await w.apublish("sensors/s1/plugin", b"olleh", qos=1)
    assert await peer.wait_for(1, PEER_TIMEOUT) == [b"hello"]  # decoded (reversed back) on the way up
    # the peer answered b"echo:hello": encoded (reversed) on the way down
    assert (await w.aexpect(DOWNLINK)).payload == b"olleh:ohce"


async def test_plugin_transport_from_the_yaml(
    tmp_path: Path,
    broker: Broker,
    watcher_factory: Callable[..., Watcher],
    plugins: PluginManager,
    started: Callable[[Bridge], object],
) -> None:
    config = load_config(write_config(tmp_path, broker, plugin_route(transport="echo")), plugins=plugins)
    bridge = await started(Bridge(config, plugins=plugins))
    w = watcher_factory(broker)
    await w.asubscribe(DOWNLINK)
    await w.apublish("sensors/s1/plugin", b"\x00through the echo transport\xff", qos=1)
    assert (await w.aexpect(DOWNLINK)).payload == b"\x00through the echo transport\xff"
    assert isinstance(bridge, Bridge)
    assert bridge.modems[0].modem.transports["echo"].name == "echo"


async def test_bridge_without_a_plugin_manager_builds_one_with_the_plugins(
    tmp_path: Path,
    broker: Broker,
    watcher_factory: Callable[..., Watcher],
    echo_plugin_installed: None,
    started: Callable[[Bridge], object],
) -> None:
    config = load_config(write_config(tmp_path, broker, plugin_route(transport="echo", encoding="reverse")))
    bridge = Bridge(config)
    await started(bridge)
    assert bridge.plugins is not None
    assert bridge.modems[0].modem.plugins is bridge.plugins  # one plugin manager for the whole bridge
    w = watcher_factory(broker)
    await w.asubscribe(DOWNLINK)
    await w.apublish("sensors/s1/plugin", b"abc", qos=1)
    assert (await w.aexpect(DOWNLINK)).payload == b"abc"  # reversed up, echoed, reversed down


async def test_config_check_names_the_installed_plugins(
    tmp_path: Path, broker: Broker, plugins: PluginManager
) -> None:
    path = write_config(tmp_path, broker, plugin_route(transport="ech0", encoding="revers"))
    with pytest.raises(ConfigError) as info:
        load_config(path, plugins=plugins)
    transport_error, encoding_error = info.value.errors
    assert "routes[0].transport: unknown transport 'ech0' (available: cip, echo, native" in transport_error
    assert "routes[0].encoding: unknown encoding 'revers' (available: base64, hex, json, raw, reverse)" in (
        encoding_error
    )


async def test_bridge_refuses_a_route_the_plugins_cannot_carry(tmp_path: Path, broker: Broker) -> None:
    """A configuration loaded without the plugin manager is checked when the bridge starts."""
    config = load_config(write_config(tmp_path, broker, plugin_route(encoding="rot13")))
    bridge = Bridge(config)
    with pytest.raises(ConfigError, match=r"route 'plugin': no payload encoding named 'rot13' \(available: "):
        await bridge.start()
