"""A full disk under ``state_dir`` (a real tmpfs, mounted by the test): uplinks wait unacknowledged and the
failure is said as what it is, commands keep their answers, and delivery resumes by itself once space is
back (issue 13, case 2). Needs root to mount the tmpfs."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from sim7020_core.bridge.bridge import Bridge
from sim7020_core.bridge.config import load_config
from sim7020_core.bridge.queue import DurableQueue, QueueError
from sim7020_core.emulator.peers import UdpPeer

from .conftest import Broker, Watcher
from .test_bridge import BRIDGE_START_TIMEOUT, start_bridge_process, wait_ready, write_config
from .test_routes import PEER_TIMEOUT

#: Size of the test filesystem (the queue needs a few hundred kB).
TMPFS_SIZE = "2m"
#: Uplinks published while the disk is full: more than mosquitto's default in-flight window (20).
WHILE_FULL = 40
#: Delivery must resume within this after space is back (the queue's retry backoff is at most 10 s).
RESUME_TIMEOUT = 30.0
#: A bridge waiting for space at start stops within this after SIGTERM (seconds).
SIGTERM_BOUND = 5.0


class SmallDisk:
    """A tmpfs that can be filled to the last byte and emptied again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.filler = path / "filler"

    def fill(self) -> None:
        """Write until the filesystem refuses (ENOSPC), down to the last byte."""
        fd = os.open(self.filler, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            for size in (65536, 4096, 1):
                while True:
                    try:
                        os.write(fd, b"\0" * size)
                    except OSError as err:
                        if err.errno != errno.ENOSPC:
                            raise
                        break
        finally:
            os.close(fd)

    def free(self) -> None:
        self.filler.unlink()


def mounted_small_disk(mountpoint: Path, size: str, why: str) -> Iterator[SmallDisk]:
    """Mount a tmpfs of ``size`` on ``mountpoint`` (created) for the duration; skip, saying ``why`` the test
    mounts one, where that is not possible (not root, or mount refused)."""
    if os.geteuid() != 0:
        pytest.skip(f"{why}, and mounting needs root (CI runs as root)")
    mountpoint.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(mountpoint)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield SmallDisk(mountpoint)
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SmallDisk]:
    yield from mounted_small_disk(tmp_path / "small", TMPFS_SIZE, "the test fills a tmpfs")


async def test_queue_waits_out_a_full_disk_and_names_it(small_disk: SmallDisk) -> None:
    problems: list[str | None] = []
    q = DurableQueue(small_disk.path / "state" / "q.sqlite3", on_problem=problems.append)
    await q.open()
    try:
        await q.put("up", "t", b"before")
        small_disk.fill()
        put = asyncio.create_task(q.put_many("up", [("t", b"while full %d" % i) for i in range(3)]))
        async with asyncio.timeout(10):
            while not problems:
                await asyncio.sleep(0.05)
        assert not put.done()  # waiting, not failed: nothing is lost
        assert problems[0] is not None
        assert "is full" in problems[0]
        assert "database or disk is full" in problems[0]
        assert "SQLITE_FULL" in problems[0]
        assert "rollback" not in problems[0]
        small_disk.free()
        async with asyncio.timeout(20):
            ids = await put
        assert len(ids) == 3
        assert problems[-1] is None  # cleared once it works
        assert [m.payload for m in await q.peek("up")] == [b"before"] + [
            b"while full %d" % i for i in range(3)
        ]
        assert q.stats["storage_errors"] >= 1
    finally:
        await q.close()


async def test_closing_the_queue_ends_a_put_waiting_for_space(small_disk: SmallDisk) -> None:
    q = DurableQueue(small_disk.path / "state" / "q.sqlite3", on_problem=lambda _text: None)
    await q.open()
    small_disk.fill()
    put = asyncio.create_task(q.put("up", "t", b"x"))
    await asyncio.sleep(1.0)
    await q.close()
    with pytest.raises(QueueError, match="closed"):
        await put


def route_config(tmp_path: Path, broker: Broker, state_dir: Path, port: int, protocol: str) -> Path:
    body = f"""\
routes:
  - name: telemetry
    modem: gw1
    protocol: udp
    host: 127.0.0.1
    port: {port}
    uplink: sensors/+/telemetry
"""
    path = write_config(tmp_path, broker, body, mqtt_extra=f"protocol: '{protocol}'")
    text = path.read_text().replace("state_dir: state", f"state_dir: {state_dir}")
    path.write_text(text)
    return path


async def test_a_full_disk_keeps_commands_working_and_delivery_resumes(
    tmp_path: Path,
    small_disk: SmallDisk,
    make_broker: Callable[..., Broker],
    watcher_factory: Callable[..., Watcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await run_full_disk_scenario(tmp_path, small_disk, make_broker, watcher_factory, caplog, "3.1.1")


async def test_a_full_disk_with_mqtt5(
    tmp_path: Path,
    small_disk: SmallDisk,
    make_broker: Callable[..., Broker],
    watcher_factory: Callable[..., Watcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    await run_full_disk_scenario(tmp_path, small_disk, make_broker, watcher_factory, caplog, "5")


async def run_full_disk_scenario(
    tmp_path: Path,
    small_disk: SmallDisk,
    make_broker: Callable[..., Broker],
    watcher_factory: Callable[..., Watcher],
    caplog: pytest.LogCaptureFixture,
    protocol: str,
) -> None:
    caplog.set_level(logging.INFO)
    # mosquitto's default in-flight window: 20 unacknowledged messages stalled the old single session
    broker = make_broker(extra=["max_inflight_messages 20"])
    peer = await UdpPeer().start()
    port = peer.port
    config = load_config(route_config(tmp_path, broker, small_disk.path / "state", port, protocol))
    bridge = Bridge(config)
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        await bridge.start()
    try:
        await wait_ready(bridge)
        w = watcher_factory(broker, protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311)
        await w.asubscribe("sim7020/gw1/cmd/dns/response")
        await w.asubscribe("sim7020/gw1/state")
        await w.apublish("sensors/a/telemetry", b"before", qos=1)
        assert await peer.wait_for(1, PEER_TIMEOUT) == [b"before"]

        small_disk.fill()
        for i in range(WHILE_FULL):
            await w.apublish(f"sensors/s{i}/telemetry", f"full {i}".encode(), qos=1)

        # commands keep their answers, although more uplinks wait than the broker lets be in flight
        for i in range(3):
            await w.apublish("sim7020/gw1/cmd/dns", json.dumps({"id": i, "host": "127.0.0.1"}), qos=1)
            reply = json.loads((await w.aexpect("sim7020/gw1/cmd/dns/response", 10)).payload)
            assert reply == {"id": i, "ok": True, "result": {"host": "127.0.0.1", "addresses": ["127.0.0.1"]}}

        # the state says what is wrong
        state = await w.aexpect(
            "sim7020/gw1/state", 20, where=lambda m: json.loads(m.payload).get("problem") is not None
        )
        problem = json.loads(state.payload)["problem"]
        assert problem.startswith("storage: ")
        assert "is full" in problem
        assert "database or disk is full" in problem
        assert peer.received == [b"before"]  # nothing is sent that was not stored

        small_disk.free()
        expected = [b"before"] + [f"full {i}".encode() for i in range(WHILE_FULL)]
        async with asyncio.timeout(RESUME_TIMEOUT):
            while sorted(set(peer.received)) != sorted(expected):
                await asyncio.sleep(0.1)
        cleared = await w.aexpect(
            "sim7020/gw1/state", 20, where=lambda m: json.loads(m.payload).get("problem") is None
        )
        assert json.loads(cleared.payload)["link"] == "ready"
    finally:
        await bridge.stop()
        peer.close()

    logged = caplog.text
    assert "cannot rollback" not in logged
    problem_lines = [r for r in caplog.records if "problem: storage" in r.getMessage()]
    assert len(problem_lines) == 1, [r.getMessage() for r in problem_lines]  # said once, not per retry
    assert any("storage works again" in r.getMessage() for r in caplog.records)
    stats: dict[str, Any] = bridge.stats()
    assert stats["queue"]["storage_errors"] >= 1


async def test_a_bridge_started_on_a_full_disk_waits_for_space_and_says_why(
    tmp_path: Path,
    small_disk: SmallDisk,
    broker: Broker,
    watcher_factory: Callable[..., Watcher],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A restart while the disk is full (the queue and its WAL left by a killed bridge cannot be opened):
    the start waits with backoff, the problem is logged once, and the bridge runs once space is back."""
    caplog.set_level(logging.INFO)
    peer = await UdpPeer().start()
    state_dir = small_disk.path / "state"
    config = load_config(route_config(tmp_path, broker, state_dir, peer.port, "3.1.1"))
    queue = DurableQueue(state_dir / "queue.sqlite3")  # a queue with messages, left open as a crash leaves it
    await queue.open()
    await queue.put("up:gw1:telemetry", "sensors/a/telemetry", b"stored before")
    small_disk.fill()
    bridge = Bridge(config)
    start = asyncio.create_task(bridge.start())
    try:
        async with asyncio.timeout(10):
            while not any("problem: storage" in r.getMessage() for r in caplog.records):
                await asyncio.sleep(0.05)
        await asyncio.sleep(2.0)  # a few retries
        assert not start.done()  # waiting, not failed
        small_disk.free()
        async with asyncio.timeout(BRIDGE_START_TIMEOUT):
            await start
        await wait_ready(bridge)
        w = watcher_factory(broker)
        await w.apublish("sensors/b/telemetry", b"after", qos=1)
        assert sorted(await peer.wait_for(2, PEER_TIMEOUT)) == [b"after", b"stored before"]
    finally:
        if not start.done():
            start.cancel()
        await asyncio.gather(start, return_exceptions=True)
        await bridge.stop()
        await queue.close()
        peer.close()
    problem_lines = [r.getMessage() for r in caplog.records if "problem: storage" in r.getMessage()]
    assert len(problem_lines) == 1, problem_lines  # said once, not per retry
    assert "is full" in problem_lines[0]
    assert "database or disk is full" in problem_lines[0]
    assert any("storage works again" in r.getMessage() for r in caplog.records)


def test_sigterm_stops_a_bridge_waiting_for_space_at_start(
    tmp_path: Path, small_disk: SmallDisk, broker: Broker
) -> None:
    state_dir = small_disk.path / "state"
    config = route_config(tmp_path, broker, state_dir, 9, "3.1.1")
    log = tmp_path / "bridge.log"

    async def leave_a_queue() -> None:
        queue = DurableQueue(state_dir / "queue.sqlite3")
        await queue.open()
        await queue.put("up:gw1:telemetry", "sensors/a/telemetry", b"stored before")
        await queue.close()

    asyncio.run(leave_a_queue())
    (state_dir / "queue.sqlite3-wal").unlink(missing_ok=True)
    small_disk.fill()
    proc = start_bridge_process(config, log)
    try:
        deadline = time.monotonic() + 20
        while "problem: storage" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.05)
        assert "problem: storage" in log.read_text()
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, log.read_text()
        assert time.monotonic() - started < SIGTERM_BOUND
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert "Traceback" not in log.read_text()
