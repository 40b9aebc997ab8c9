"""The state directory and its files: private modes, never a write through a planted symlink (issue 13)."""

from __future__ import annotations

import asyncio
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim7020_core.bridge.bridge import LOCK_FILE, QUEUE_FILE, Bridge
from sim7020_core.bridge.config import load_config
from sim7020_core.exceptions import Sim7020Error

from .conftest import Broker
from .test_bridge import wait_ready, write_config


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """A umask that would leave files world-readable unless the bridge sets their modes itself."""
    old = os.umask(0o022)
    yield
    os.umask(old)


async def test_state_files_are_private(tmp_path: Path, broker: Broker, loose_umask: None) -> None:
    config = load_config(write_config(tmp_path, broker))
    bridge = Bridge(config)
    await bridge.start()
    try:
        await wait_ready(bridge)
        await bridge.queue.put("up:test", "t", b"x")  # the WAL exists now
        state = config.state_dir
        assert mode(state) == 0o700
        for name in (QUEUE_FILE, f"{QUEUE_FILE}-wal", f"{QUEUE_FILE}-shm", LOCK_FILE):
            assert mode(state / name) == 0o600, name
    finally:
        await bridge.stop()


async def test_files_left_wider_by_an_older_version_are_narrowed(tmp_path: Path, broker: Broker) -> None:
    config = load_config(write_config(tmp_path, broker))
    state = config.state_dir
    state.mkdir(mode=0o700)
    for name in (QUEUE_FILE, LOCK_FILE):
        (state / name).touch()
        (state / name).chmod(0o644)
    bridge = Bridge(config)
    await bridge.start()
    try:
        assert mode(state / QUEUE_FILE) == 0o600
        assert mode(state / LOCK_FILE) == 0o600
    finally:
        await bridge.stop()


@pytest.mark.parametrize("name", [QUEUE_FILE, f"{QUEUE_FILE}-wal", f"{QUEUE_FILE}-shm", LOCK_FILE])
def test_a_planted_symlink_is_refused_and_its_target_untouched(
    tmp_path: Path, broker: Broker, name: str
) -> None:
    config = load_config(write_config(tmp_path, broker))
    state = config.state_dir
    state.mkdir(mode=0o700)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    victim.chmod(0o644)
    (state / name).symlink_to(victim)
    bridge = Bridge(config)
    with pytest.raises(Sim7020Error, match="is a symbolic link") as caught:
        asyncio.run(bridge.start())
    assert name in str(caught.value)
    assert victim.read_text() == "precious\n"
    assert mode(victim) == 0o644
    assert not (tmp_path / "victim.txt-wal").exists()


def test_a_state_dir_others_can_write_is_refused(tmp_path: Path, broker: Broker) -> None:
    config = load_config(write_config(tmp_path, broker))
    config.state_dir.mkdir()
    config.state_dir.chmod(0o777)
    with pytest.raises(Sim7020Error, match=r"writable by other users \(mode 0777\).*chmod 700"):
        asyncio.run(Bridge(config).start())
    assert not (config.state_dir / QUEUE_FILE).exists()


def test_a_state_file_that_is_not_a_file_is_refused(tmp_path: Path, broker: Broker) -> None:
    config = load_config(write_config(tmp_path, broker))
    config.state_dir.mkdir(mode=0o700)
    os.mkfifo(config.state_dir / QUEUE_FILE, 0o600)
    with pytest.raises(Sim7020Error, match="not a regular file"):
        asyncio.run(Bridge(config).start())
