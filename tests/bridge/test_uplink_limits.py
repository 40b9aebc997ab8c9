"""Uplinks the route's transport cannot send are refused before they take disk space, and the space of sent
or refused messages goes back to the filesystem (issue 13)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from sim7020_core.bridge.bridge import Bridge
from sim7020_core.bridge.config import load_config
from sim7020_core.bridge.queue import QUEUE_WAL_SIZE_LIMIT, DurableQueue
from sim7020_core.emulator.peers import UdpPeer

from .conftest import Broker, Watcher
from .test_bridge import BRIDGE_START_TIMEOUT, wait_ready, write_config
from .test_routes import PEER_TIMEOUT, route_yaml


async def test_an_oversize_uplink_is_refused_before_it_is_stored(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], caplog: pytest.LogCaptureFixture
) -> None:
    peer = await UdpPeer().start()
    port = peer.port
    bridge = Bridge(load_config(write_config(tmp_path, broker, route_yaml(port))))
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        await bridge.start()
    try:
        await wait_ready(bridge)
        w = watcher_factory(broker)
        await w.apublish("sensors/a/telemetry", b"small", qos=1)
        assert await peer.wait_for(1, PEER_TIMEOUT) == [b"small"]
        size_before = await bridge.queue.file_size()
        caplog.set_level(logging.WARNING)
        await w.apublish("sensors/big/telemetry", b"x" * 100_000, qos=1)  # native sends 64 KiB at most
        await w.apublish("sensors/huge/telemetry", b"y" * 1_000_000, qos=1)  # not even decoded
        await w.apublish("sensors/a/telemetry", b"after", qos=1)
        assert await peer.wait_for(2, PEER_TIMEOUT) == [b"small", b"after"]
        stats = bridge.stats()["modems"]["gw1"]["routes"]["telemetry"]
        assert stats["uplink_rejected"] == 2
        assert stats["uplink_queued"] == 2
        assert await bridge.queue.file_size() < size_before + 50_000  # neither reached the disk
        assert "dropping message on sensors/big/telemetry: 100000 bytes, more than the 65536" in caplog.text
        assert "dropping message on sensors/huge/telemetry: 1000000 bytes, far more than" in caplog.text
        assert "x" * 100 not in caplog.text
    finally:
        await bridge.stop()
        peer.close()


async def test_the_space_of_deleted_messages_goes_back_to_the_filesystem(tmp_path: Path) -> None:
    q = DurableQueue(tmp_path / "state" / "q.sqlite3")
    await q.open()
    try:
        idle = await q.file_size()
        payload = bytes(1000)
        for _ in range(30):  # a backlog of 3 MB, e.g. while the modem was away
            await q.put_many("up", [("t", payload)] * 100)
        assert await q.file_size() > 3_000_000
        while messages := await q.peek("up", 100):
            await q.delete([m.id for m in messages])
        assert await q.count() == 0
        assert q.stats["vacuumed_pages"] > 500
        # once the backlog has drained, the files are back to their idle size
        assert await q.file_size() <= idle + 64 * 1024
        for _ in range(5):  # and while messages come and go, the WAL stays within its limit
            await q.put_many("up", [("t", payload)] * 300)
            while messages := await q.peek("up", 100):
                await q.delete([m.id for m in messages])
            wal = q.path.with_name(q.path.name + "-wal")
            assert wal.stat().st_size <= QUEUE_WAL_SIZE_LIMIT + 64 * 1024
    finally:
        await q.close()
