"""Routes end to end: MQTT → bridge → emulated modem → a real loopback peer → back to MQTT."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from sim7020_core.bridge.bridge import Bridge
from sim7020_core.bridge.config import load_config
from sim7020_core.bridge.routes import ROUTE_RETRY_MIN, ROUTE_SEND_TIMEOUT
from sim7020_core.emulator.peers import UdpPeer
from sim7020_core.events import ModemEvent

from .conftest import Broker, Watcher
from .test_bridge import BRIDGE_START_TIMEOUT, wait_ready, write_config

PEER_TIMEOUT = 20.0


def echo(data: bytes) -> bytes:
    """The remote server's answer to each datagram."""
    return b"echo:" + data


@pytest.fixture
async def udp_peer() -> AsyncIterator[tuple[UdpPeer, int]]:
    """The remote server: a real UDP socket on loopback that records datagrams and echoes them."""
    async with UdpPeer(reply=echo) as peer:
        yield peer, peer.port


async def queue_drained(bridge: Bridge, timeout: float = PEER_TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while await bridge.queue.count():
            await asyncio.sleep(0.02)


def route_yaml(port: int, encoding: str = "raw", protocol: str = "udp") -> str:
    return f"""\
routes:
  - name: telemetry
    modem: gw1
    protocol: {protocol}
    host: 127.0.0.1
    port: {port}
    uplink: sensors/+/telemetry
    downlink: sim7020/gw1/downlink/telemetry
    encoding: {encoding}
"""


@pytest.fixture
async def bridge_with_route(
    tmp_path: Path, broker: Broker, udp_peer: tuple[UdpPeer, int], request: pytest.FixtureRequest
) -> AsyncIterator[Bridge]:
    encoding = getattr(request, "param", "raw")
    bridge = Bridge(load_config(write_config(tmp_path, broker, route_yaml(udp_peer[1], encoding))))
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        await bridge.start()
    await wait_ready(bridge)
    yield bridge
    await bridge.stop()


async def test_uplink_and_downlink_round_trip(
    bridge_with_route: Bridge,
    broker: Broker,
    udp_peer: tuple[UdpPeer, int],
    watcher_factory: Callable[..., Watcher],
) -> None:
    peer, _port = udp_peer
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/downlink/telemetry")
    for i in range(5):
        await w.apublish(f"sensors/s{i}/telemetry", f"reading {i}".encode(), qos=1)
    received = await peer.wait_for(5, PEER_TIMEOUT)
    assert received == [f"reading {i}".encode() for i in range(5)]  # in order
    echoes = [(await w.aexpect("sim7020/gw1/downlink/telemetry")).payload for _ in range(5)]
    assert sorted(echoes) == sorted(b"echo:" + r for r in received)
    await queue_drained(bridge_with_route)
    stats = bridge_with_route.stats()["modems"]["gw1"]["routes"]["telemetry"]
    assert stats["uplink_sent"] == 5
    assert stats["downlink_published"] == 5


async def test_binary_payload_is_carried_unchanged(
    bridge_with_route: Bridge,
    broker: Broker,
    udp_peer: tuple[UdpPeer, int],
    watcher_factory: Callable[..., Watcher],
) -> None:
    peer, _port = udp_peer
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/downlink/telemetry")
    blob = bytes(range(256))
    await w.apublish("sensors/bin/telemetry", blob, qos=1)
    assert (await peer.wait_for(1, PEER_TIMEOUT))[0] == blob
    assert (await w.aexpect("sim7020/gw1/downlink/telemetry")).payload == b"echo:" + blob


@pytest.mark.parametrize("bridge_with_route", ["hex"], indirect=True)
async def test_hex_encoding_and_bad_input(
    bridge_with_route: Bridge,
    broker: Broker,
    udp_peer: tuple[UdpPeer, int],
    watcher_factory: Callable[..., Watcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    peer, _port = udp_peer
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/downlink/telemetry")
    caplog.set_level(logging.WARNING)
    await w.apublish("sensors/a/telemetry", "zz-not-hex", qos=1)
    await w.apublish("sensors/a/telemetry", "48 65 6c 6c 6f", qos=1)
    assert await peer.wait_for(1, PEER_TIMEOUT) == [b"Hello"]
    assert (await w.aexpect("sim7020/gw1/downlink/telemetry")).payload == (b"echo:Hello").hex().encode()
    assert "sensors/a/telemetry" in caplog.text
    assert "not valid hex" in caplog.text
    stats = bridge_with_route.stats()["modems"]["gw1"]["routes"]["telemetry"]
    assert stats["uplink_rejected"] == 1


@pytest.mark.parametrize("bridge_with_route", ["base64"], indirect=True)
async def test_base64_encoding(
    bridge_with_route: Bridge,
    broker: Broker,
    udp_peer: tuple[UdpPeer, int],
    watcher_factory: Callable[..., Watcher],
) -> None:
    peer, _port = udp_peer
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/downlink/telemetry")
    await w.apublish("sensors/a/telemetry", base64.b64encode(b"\x00\xffdata"), qos=1)
    assert await peer.wait_for(1, PEER_TIMEOUT) == [b"\x00\xffdata"]
    echo = (await w.aexpect("sim7020/gw1/downlink/telemetry")).payload
    assert base64.b64decode(echo) == b"echo:\x00\xffdata"


async def test_uplink_waits_in_psm_and_goes_out_in_order_on_wake(
    bridge_with_route: Bridge,
    broker: Broker,
    udp_peer: tuple[UdpPeer, int],
    watcher_factory: Callable[..., Watcher],
) -> None:
    peer, _port = udp_peer
    emu = bridge_with_route.factory.emulator("gw1")
    modem_bridge = bridge_with_route.modems[0]
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/state")
    # Let the route open its connection first: a command in flight when the module falls asleep is
    # lost and the driver waits out its timeout (a driver matter, not what this test is about).
    await w.apublish("sensors/a/telemetry", "awake", qos=1)
    assert await peer.wait_for(1, PEER_TIMEOUT) == [b"awake"]
    peer.received.clear()
    emu.enter_psm()
    await w.aexpect("sim7020/gw1/state", where=lambda m: b'"link": "asleep"' in m.payload)
    for i in range(3):
        await w.apublish("sensors/a/telemetry", f"m{i}", qos=1)
    async with asyncio.timeout(PEER_TIMEOUT):
        while await bridge_with_route.queue.count() < 3:  # stored and acknowledged to the broker …
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    assert peer.received == []  # … but nothing goes out while the modem sleeps
    assert await bridge_with_route.queue.count() == 3
    emu.exit_psm()
    assert await peer.wait_for(3, PEER_TIMEOUT) == [b"m0", b"m1", b"m2"]
    assert modem_bridge.modem is not None


async def test_uplink_survives_a_modem_reboot(
    bridge_with_route: Bridge,
    broker: Broker,
    udp_peer: tuple[UdpPeer, int],
    watcher_factory: Callable[..., Watcher],
) -> None:
    peer, _port = udp_peer
    emu = bridge_with_route.factory.emulator("gw1")
    w = watcher_factory(broker)
    await w.apublish("sensors/a/telemetry", "before", qos=1)
    await peer.wait_for(1, PEER_TIMEOUT)
    modem = bridge_with_route.modems[0].modem
    events: list[tuple[str, str]] = []
    recovered = asyncio.Event()

    def on_event(event: ModemEvent) -> None:
        events.append((type(event).__name__, event.state.value))
        if ("ModuleReset", "recovering") in events and event.state.value == "ready":
            recovered.set()

    unsubscribe = modem.subscribe(on_event)
    emu.reboot()
    async with asyncio.timeout(PEER_TIMEOUT):
        await recovered.wait()  # the driver noticed the reboot and re-initialised the module
    unsubscribe()
    for i in range(3):
        await w.apublish("sensors/a/telemetry", f"after{i}", qos=1)
    assert await peer.wait_for(4, PEER_TIMEOUT) == [b"before", b"after0", b"after1", b"after2"]


async def test_a_module_stall_is_named_and_uplink_resumes_within_seconds(
    bridge_with_route: Bridge,
    broker: Broker,
    udp_peer: tuple[UdpPeer, int],
    watcher_factory: Callable[..., Watcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A module that stalls for 3 s loses the send in flight: the log says so, and the message goes out as
    soon as the send's bound and one backoff step have passed (once, it took a minute and said nothing)."""
    peer, _port = udp_peer
    emu = bridge_with_route.factory.emulator("gw1")
    w = watcher_factory(broker)
    await w.apublish("sensors/a/telemetry", "before", qos=1)
    assert await peer.wait_for(1, PEER_TIMEOUT) == [b"before"]
    caplog.set_level(logging.WARNING)
    emu.stall(3.0)
    await w.apublish("sensors/a/telemetry", "during the stall", qos=1)
    received = await peer.wait_for(2, timeout=ROUTE_SEND_TIMEOUT + 4 * ROUTE_RETRY_MIN + 3.0)
    assert received == [b"before", b"during the stall"]
    assert (
        f"route telemetry: send failed (the module did not answer the send within {ROUTE_SEND_TIMEOUT:g} s)"
        in caplog.text
    )
    stats = bridge_with_route.stats()["modems"]["gw1"]["routes"]["telemetry"]
    assert stats["send_errors"] >= 1


async def test_queued_uplink_survives_a_bridge_restart(
    tmp_path: Path, broker: Broker, udp_peer: tuple[UdpPeer, int], watcher_factory: Callable[..., Watcher]
) -> None:
    peer, port = udp_peer
    config = load_config(write_config(tmp_path, broker, route_yaml(port)))
    bridge = Bridge(config)
    await bridge.start()
    await wait_ready(bridge)
    emu = bridge.factory.emulator("gw1")
    w = watcher_factory(broker)
    await w.apublish("sensors/a/telemetry", "awake", qos=1)  # the route's connection is open (see above)
    assert await peer.wait_for(1, PEER_TIMEOUT) == [b"awake"]
    peer.received.clear()
    emu.enter_psm()
    async with asyncio.timeout(PEER_TIMEOUT):
        while bridge.modems[0].modem.state.value != "asleep":
            await asyncio.sleep(0.02)
    for i in range(4):
        await w.apublish("sensors/a/telemetry", f"q{i}", qos=1)
    async with asyncio.timeout(10):
        while await bridge.queue.count() < 4:
            await asyncio.sleep(0.05)
    await bridge.stop()
    assert peer.received == []

    bridge = Bridge(config)  # a new process would do the same: the queue is on disk
    await bridge.start()
    try:
        assert bridge.queue.stats["recovered"] == 4
        assert await peer.wait_for(4, PEER_TIMEOUT) == [b"q0", b"q1", b"q2", b"q3"]
    finally:
        await bridge.stop()


async def test_downlink_waits_for_the_broker(
    tmp_path: Path, make_broker: Callable[..., Broker], udp_peer: tuple[UdpPeer, int], watcher_factory: Any
) -> None:
    peer, port = udp_peer
    broker = make_broker(persistence=True)
    bridge = Bridge(load_config(write_config(tmp_path, broker, route_yaml(port))))
    await bridge.start()
    try:
        await wait_ready(bridge)
        w = watcher_factory(broker, client_id="downlink-watcher", clean_session=False)
        await w.asubscribe("sim7020/gw1/downlink/telemetry")
        await w.apublish("sensors/a/telemetry", "hello", qos=1)
        await peer.wait_for(1, PEER_TIMEOUT)
        await w.aexpect("sim7020/gw1/downlink/telemetry")  # the echo of "hello"
        modem_addr = peer.last_sender
        await asyncio.to_thread(broker.stop)
        peer.send(b"while the broker is down", modem_addr)
        async with asyncio.timeout(PEER_TIMEOUT):
            while await bridge.queue.count() == 0:  # stored, waiting for the broker
                await asyncio.sleep(0.05)
        await asyncio.to_thread(broker.start)
        msg = await w.aexpect("sim7020/gw1/downlink/telemetry", 30)
        if msg.payload == b"echo:hello":
            # At least once: the broker stopped before the watcher's PUBACK of the first echo reached it,
            # so the watcher's persistent session gets that echo again first.
            msg = await w.aexpect("sim7020/gw1/downlink/telemetry", 30)
        assert msg.payload == b"while the broker is down"
        await queue_drained(bridge)  # removed once the broker acknowledged it
    finally:
        await bridge.stop()


async def test_tcp_route_with_acknowledged_send(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher]
) -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            received.append(data)
            writer.write(b"echo:" + data)
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    bridge = Bridge(load_config(write_config(tmp_path, broker, route_yaml(port, protocol="tcp"))))
    await bridge.start()
    try:
        await wait_ready(bridge)
        w = watcher_factory(broker)
        await w.asubscribe("sim7020/gw1/downlink/telemetry")
        await w.apublish("sensors/a/telemetry", "over tcp", qos=1)
        assert (await w.aexpect("sim7020/gw1/downlink/telemetry")).payload == b"echo:over tcp"
        assert b"".join(received) == b"over tcp"
        route = bridge.modems[0].routes[0]
        assert route.connection is not None
        assert route.connection.transport.send_ack  # the uplink is deleted only after the peer's TCP ack
        await queue_drained(bridge)
    finally:
        await bridge.stop()
        server.close()
        await server.wait_closed()


async def test_listen_route_serves_tcp_clients(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher]
) -> None:
    body = """\
routes:
  - name: inbound
    modem: gw1
    protocol: tcp
    listen_port: 5000
    uplink: to-device/#
    downlink: sim7020/gw1/downlink/inbound
"""
    bridge = Bridge(load_config(write_config(tmp_path, broker, body)))
    await bridge.start()
    try:
        await wait_ready(bridge)
        w = watcher_factory(broker)
        await w.asubscribe("sim7020/gw1/downlink/inbound")
        await w.apublish("to-device/x", "queued before any client", qos=1)  # waits for a client
        emu = bridge.factory.emulator("gw1")
        async with asyncio.timeout(PEER_TIMEOUT):
            while True:  # the bridge opens the server in the background
                try:
                    reader, writer = await asyncio.open_connection(*emu.server_address(5000))
                    break
                except (OSError, KeyError, LookupError):
                    await asyncio.sleep(0.05)
        writer.write(b"hello from a client")
        await writer.drain()
        assert (await w.aexpect("sim7020/gw1/downlink/inbound")).payload == b"hello from a client"
        async with asyncio.timeout(PEER_TIMEOUT):
            assert await reader.readexactly(len(b"queued before any client")) == b"queued before any client"
        await w.apublish("to-device/x", "second", qos=1)
        async with asyncio.timeout(PEER_TIMEOUT):
            assert await reader.readexactly(6) == b"second"
        writer.close()
    finally:
        await bridge.stop()


async def test_send_command_with_response(
    tmp_path: Path, broker: Broker, udp_peer: tuple[UdpPeer, int], watcher_factory: Callable[..., Watcher]
) -> None:
    peer, port = udp_peer
    bridge = Bridge(load_config(write_config(tmp_path, broker)))
    await bridge.start()
    try:
        await wait_ready(bridge)
        w = watcher_factory(broker)
        await w.asubscribe("sim7020/gw1/cmd/send/response")
        request = {"id": "s1", "host": "127.0.0.1", "port": port, "payload": "cafe", "encoding": "hex"}
        await w.apublish("sim7020/gw1/cmd/send", json.dumps({**request, "wait_response": True}))
        reply = json.loads((await w.aexpect("sim7020/gw1/cmd/send/response", 20)).payload)
        assert reply["ok"] is True, reply
        assert reply["result"]["sent"] == 2
        assert reply["result"]["response"] == (b"echo:\xca\xfe").hex()
        assert peer.received == [b"\xca\xfe"]
        await w.apublish("sim7020/gw1/cmd/send", json.dumps({**request, "id": "s2", "payload": "xyz"}))
        reply = json.loads((await w.aexpect("sim7020/gw1/cmd/send/response", 20)).payload)
        assert reply["id"] == "s2"
        assert reply["ok"] is False
        assert "not valid hex" in reply["error"]
    finally:
        await bridge.stop()


async def test_cip_route_options_keepalive_and_timed_send(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher]
) -> None:
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(4096):
            received.append(data)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    body = f"""\
routes:
  - name: telemetry
    modem: gw1
    transport: cip
    protocol: tcp
    host: 127.0.0.1
    port: {port}
    uplink: sensors/+/telemetry
    options: {{keepalive: [60, 30, 3], timed_send: 1}}
"""
    bridge = Bridge(load_config(write_config(tmp_path, broker, body)))
    await bridge.start()
    try:
        modem = await wait_ready(bridge)
        w = watcher_factory(broker)
        loop = asyncio.get_running_loop()
        started = loop.time()
        await w.apublish("sensors/a/telemetry", "timed over cip", qos=1)
        async with asyncio.timeout(PEER_TIMEOUT):
            while b"".join(received) != b"timed over cip":
                await asyncio.sleep(0.02)
        assert loop.time() - started >= 0.9  # the module held it for its AT+CIPATS timer
        assert await modem.command("AT+CIPTKA?") == ["+CIPTKA: 1,60,30,3"]
        assert await modem.command("AT+CIPATS?") == ["+CIPATS: 1,1"]
    finally:
        await bridge.stop()
        server.close()
        await server.wait_closed()
