"""``sim7020 demo``: the whole chain on one machine, no hardware.

Starts an emulated SIM7020, a local broker (mosquitto, or amqtt in-process: :mod:`.broker`), a UDP echo
"cloud" server and the bridge; then publishes a sensor reading on the route's uplink topic, shows it reach
the cloud server and the echo come back on the downlink topic, and prints the modem's state. Repeats until
Ctrl+C (``--once``: one round).
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO, cast

from ..exceptions import Sim7020Error
from .bridge import Bridge
from .broker import LocalBroker, free_port
from .config import BridgeConfig, ModemConfig, MqttConfig, RouteConfig
from .mqtt import IncomingMessage, MqttClient

_LOGGER = logging.getLogger(__name__)

#: Bound on one round trip (sensor → modem → cloud → modem → MQTT).
DEMO_ROUND_TIMEOUT = 30.0
#: Bound on the modem becoming ready after start.
DEMO_READY_TIMEOUT = 60.0
UPLINK_TOPIC = "demo/sensors/kitchen/telemetry"


class EchoServer(asyncio.DatagramProtocol):
    """The "cloud": a UDP server on loopback that prints what it gets and echoes it back."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.transport: asyncio.DatagramTransport | None = None
        self.received: list[bytes] = []

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        self.received.append(data)
        print(
            f"  cloud   <- {data.decode(errors='replace')}  (from {addr[0]}:{addr[1]}), echoing",
            file=self.out,
        )
        assert self.transport is not None
        self.transport.sendto(b'{"ack":' + data + b"}", addr)


def demo_config(state_dir: Path, broker: LocalBroker, cloud_port: int) -> BridgeConfig:
    """The demo's bridge configuration (what examples/bridge.yaml spells out)."""
    return BridgeConfig(
        mqtt=MqttConfig(host=broker.host, port=broker.port, client_id="sim7020-demo", discovery=True),
        state_dir=state_dir,
        modems=(ModemConfig(id="gw1", device="emulator", poll_interval=10.0),),
        routes=(
            RouteConfig(
                name="telemetry",
                modem="gw1",
                transport="native",
                protocol="udp",
                host="127.0.0.1",
                port=cloud_port,
                uplink=("demo/sensors/+/telemetry",),
                downlink="sim7020/gw1/downlink/telemetry",
                encoding="json",
            ),
        ),
    )


async def run_demo(
    *, once: bool, interval: float, stop: asyncio.Event, out: TextIO | None = None, broker_kind: str = "auto"
) -> int:
    """Run the demo; returns the exit code (0 when every round trip came back)."""
    import sys

    out = out or sys.stdout
    loop = asyncio.get_running_loop()
    broker = LocalBroker(kind=broker_kind)
    await broker.start()
    print(f"broker    {broker.name} on {broker.host}:{broker.port}", file=out)
    cloud_port = free_port()
    transport, echo = await loop.create_datagram_endpoint(
        lambda: EchoServer(out), local_addr=("127.0.0.1", cloud_port)
    )
    print(f"cloud     UDP echo server on 127.0.0.1:{cloud_port}", file=out)
    tmp = tempfile.TemporaryDirectory(prefix="sim7020-demo-")
    config = demo_config(Path(tmp.name), broker, cloud_port)
    bridge = Bridge(config)
    sensor = MqttClient(config.mqtt, client_id="sim7020-demo-sensor", manual_ack=False)
    replies: asyncio.Queue[IncomingMessage] = asyncio.Queue()
    states: asyncio.Queue[IncomingMessage] = asyncio.Queue()
    sensor.subscribe(config.routes[0].downlink or "", replies.put_nowait)
    sensor.subscribe("sim7020/gw1/state", states.put_nowait)
    failures = 0
    try:
        await bridge.start()
        print("bridge    started: modem gw1 = built-in emulator, route telemetry (udp, json)", file=out)
        await sensor.start()
        modem_bridge = bridge.modems[0]
        async with asyncio.timeout(DEMO_READY_TIMEOUT):
            modem = await modem_bridge.wait_ready()
        print(f"modem     {modem.info.manufacturer} {modem.info.model} IMEI {modem.info.imei}", file=out)
        seq = 0
        while not stop.is_set():
            seq += 1
            reading = {
                "sensor": "kitchen",
                "seq": seq,
                "temperature": round(20 + (seq % 7) * 0.5, 1),
                "ts": round(time.time(), 1),
            }
            payload = json.dumps(reading, separators=(",", ":"))
            print(f"sensor    -> {UPLINK_TOPIC}: {payload}", file=out)
            started = time.monotonic()
            await sensor.publish(UPLINK_TOPIC, payload, qos=1)
            try:
                async with asyncio.timeout(DEMO_ROUND_TIMEOUT):
                    reply = await replies.get()
                elapsed = (time.monotonic() - started) * 1000
                print(
                    f"downlink  <- {reply.topic}: {reply.payload.decode(errors='replace')}"
                    f" ({elapsed:.0f} ms)",
                    file=out,
                )
            except TimeoutError:
                failures += 1
                print(f"downlink  !! no echo within {DEMO_ROUND_TIMEOUT:g} s", file=out)
            state = modem_bridge.state_payload()
            print(
                f"state     link={state['link']} registration={state['registration']} "
                f"rssi={state['rssi_dbm']} dBm operator={state['operator']} ip={state['ip']} "
                f"psm={state['psm']['state']}",
                file=out,
            )
            if once:
                break
            try:
                async with asyncio.timeout(interval):
                    await stop.wait()
            except TimeoutError:
                pass
    except Sim7020Error as err:
        print(f"demo failed: {err}", file=out)
        return 1
    finally:
        await sensor.stop()
        await bridge.stop()
        transport.close()
        await broker.stop()
        tmp.cleanup()
    del echo
    return 1 if failures else 0
