"""The suite's own check can fail: a test that leaves a task or a timer running is reported."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

LEAKY = """
import asyncio


async def test_leaves_a_task() -> None:
    asyncio.get_running_loop().create_task(asyncio.sleep(3600), name="forgotten")


async def test_leaves_a_timer() -> None:
    asyncio.get_running_loop().call_later(3600, print, "too late")


async def test_cleans_up() -> None:
    task = asyncio.get_running_loop().create_task(asyncio.sleep(3600))
    handle = asyncio.get_running_loop().call_later(3600, print)
    task.cancel()
    handle.cancel()


def test_without_a_loop() -> None:
    assert True
"""


def test_lingering_tasks_and_timers_fail_the_test_that_left_them(tmp_path: Path) -> None:
    shutil.copy(Path(__file__).with_name("conftest.py"), tmp_path / "conftest.py")
    (tmp_path / "test_leaky.py").write_text(LEAKY, encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-o",
            "asyncio_mode=auto",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    out = result.stdout
    assert result.returncode == 1, out
    assert "ERROR test_leaky.py::test_leaves_a_task" in out
    assert "task still running: <Task pending name='forgotten' coro=<sleep()" in out
    assert "ERROR test_leaky.py::test_leaves_a_timer" in out
    assert "timer still scheduled: <TimerHandle when=" in out
    assert "print('too late')" in out
    assert "4 passed, 2 errors" in out  # the leaky tests pass, and fail at teardown
