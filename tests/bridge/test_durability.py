"""Durability: 1,000 uplink messages while the broker restarts twice and the bridge is SIGKILLed once.

The bridge runs as a real process (``python -m sim7020_core bridge -c …``) with the built-in emulated modem;
the remote peer is a UDP server on loopback. Every message must reach the peer; duplicates are allowed,
reported and bounded.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from .conftest import Broker, Watcher
from .test_bridge import start_bridge_process, write_config

MESSAGES = 1000
#: Bound on the whole delivery after the last publish.
DELIVERY_TIMEOUT = 120.0
#: Duplicates come only from failure windows: each failure (a broker restart, the bridge's SIGKILL) may
#: repeat a message at most once (the bridge's one in-flight send, and whatever the broker had not recorded
#: as acknowledged and redelivers). So no message may arrive more than 1 + <failures> times (a redelivery
#: loop or storm would break this), and in all fewer duplicates than messages. The totals are reported.
#: Typical runs see 2-20; after a broker restart with persistence mosquitto occasionally redelivers a few
#: hundred messages the bridge had acknowledged (seen under CPU load).
MAX_DUPLICATES = MESSAGES - 1


class UdpSink:
    """A UDP server in a thread that records every datagram."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, _addr = self.sock.recvfrom(65535)
            except TimeoutError:
                continue
            except OSError:
                return
            self.received.append(data)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()


def wait_online(w: Watcher, timeout: float = 60.0) -> None:
    w.expect("sim7020/gw1/availability", timeout, where=lambda m: m.payload == b"online")


@pytest.mark.slow
def test_no_message_lost_across_broker_restarts_and_a_bridge_sigkill(
    tmp_path: Path, make_broker: Callable[..., Broker], watcher_factory: Callable[..., Watcher]
) -> None:
    broker = make_broker(persistence=True)
    sink = UdpSink()
    body = f"""\
routes:
  - name: load
    modem: gw1
    protocol: udp
    host: 127.0.0.1
    port: {sink.port}
    uplink: load/+
"""
    config = write_config(tmp_path, broker, body, mqtt_extra="keepalive: 10")
    log = tmp_path / "bridge.log"
    watcher = watcher_factory(broker)
    watcher.subscribe("sim7020/gw1/availability")
    bridge = start_bridge_process(config, log)
    publisher = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id="durability-publisher", clean_session=False
    )
    publisher.reconnect_delay_set(0.1, 1)
    acknowledged: set[int] = set()  # mids the broker acknowledged (paho resends the others after reconnects)
    publisher.on_publish = lambda _c, _u, mid, _rc, _p: acknowledged.add(mid)
    events: list[str] = []
    try:
        wait_online(watcher)
        publisher.connect(broker.host, broker.port, keepalive=10)
        publisher.loop_start()
        infos = []
        for i in range(MESSAGES):
            infos.append(publisher.publish(f"load/s{i % 7}", f"msg-{i:04d}", qos=1))
            if i == 250:
                broker.restart()
                events.append("broker restarted")
            elif i == 500:
                bridge.send_signal(signal.SIGKILL)
                bridge.wait(10)
                events.append("bridge killed")
            elif i == 600:
                bridge = start_bridge_process(config, log)
                events.append("bridge restarted")
            elif i == 800:
                broker.restart()
                events.append("broker restarted")
            time.sleep(0.002)
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        mids = {info.mid for info in infos}
        while time.monotonic() < deadline and not mids <= acknowledged:
            time.sleep(0.05)
        assert mids <= acknowledged, f"the broker never acknowledged {len(mids - acknowledged)} publishes"
        expected = {f"msg-{i:04d}".encode() for i in range(MESSAGES)}
        while time.monotonic() < deadline and not expected <= set(sink.received):
            time.sleep(0.1)
    finally:
        publisher.disconnect()
        publisher.loop_stop()
        if bridge.poll() is None:
            bridge.send_signal(signal.SIGTERM)
            try:
                bridge.wait(20)
            except subprocess.TimeoutExpired:
                bridge.kill()
                bridge.wait(10)
        sink.close()
    received = Counter(sink.received)
    missing = sorted(expected - set(received))
    duplicates = sum(count - 1 for count in received.values())
    print(
        f"events: {events}; received {len(sink.received)} datagrams, {len(received)} distinct,"
        f" {duplicates} duplicates"
    )
    assert not missing, f"{len(missing)} messages lost, e.g. {missing[:5]}; log:\n{log.read_text()[-3000:]}"
    assert max(received.values()) <= 1 + len(events), received.most_common(3)
    assert duplicates <= MAX_DUPLICATES
    assert set(received) == expected  # nothing foreign or corrupted
