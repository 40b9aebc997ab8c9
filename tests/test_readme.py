"""The README's Python example really runs, against the emulator over socket:// and a loopback UDP echo peer.

Only the modem URL and the peer's port are substituted (the README shows the emulator CLI's default address
and a CoAP-style port); everything else is executed as printed.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import UdpPeer

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_blocks(language: str) -> list[str]:
    """The README's fenced code blocks of ``language``, in order."""
    return re.findall(rf"```{language}\n(.*?)```", README.read_text(encoding="utf-8"), re.DOTALL)


def python_blocks() -> list[str]:
    return readme_blocks("python")


@pytest.fixture
def world() -> Iterator[tuple[str, int]]:
    """An emulator and a UDP echo peer served from a background event loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def start() -> tuple[Emulator, UdpPeer, str]:
        emu = Emulator(hosts={"example.com": "127.0.0.1"}, registration_delay=0.01)
        host, port = await emu.start_tcp("127.0.0.1", 0)
        echo = await UdpPeer(reply=lambda data: b"echo:" + data).start()
        return emu, echo, f"socket://{host}:{port}"

    emu, echo, url = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    echo_port = echo.port
    try:
        yield url, echo_port
    finally:
        loop.call_soon_threadsafe(echo.close)
        asyncio.run_coroutine_threadsafe(emu.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_readme_has_one_python_example() -> None:
    assert len(python_blocks()) == 1


def test_readme_python_example_runs(world: tuple[str, int], capsys: pytest.CaptureFixture[str]) -> None:
    url, echo_port = world
    code = python_blocks()[0]
    assert "socket://127.0.0.1:7020" in code
    assert "5683" in code
    code = code.replace("socket://127.0.0.1:7020", url).replace("5683", str(echo_port))
    exec(compile(code, str(README), "exec"), {"__name__": "readme_example"})
    out = capsys.readouterr().out
    assert "imei=" in out  # print(modem.info)
    assert "['127.0.0.1']" in out  # resolve("example.com") through the emulator's DNS table
    assert "PingReply(" in out
    assert "b'echo:\\x00\\x01payload'" in out  # the datagram went out through the modem and came back


def test_readme_automations_are_the_tested_ones() -> None:
    """The README's YAML automations are verbatim the examples that tests/ha/test_automation.py runs."""
    docs = (README.parent / "docs" / "home-assistant.md").read_text(encoding="utf-8")
    tested = re.findall(r"<!-- example: [\w-]+ -->\n```yaml\n(.*?)```", docs, re.DOTALL)
    tested = [b for b in tested if b.startswith("automation:")]  # utility_meter: not in README
    shown = [b for b in readme_blocks("yaml") if b.startswith("automation:")]
    assert len(tested) == 2
    assert shown == tested


def test_readme_bridge_config_is_valid(tmp_path: Path) -> None:
    from sim7020_core.bridge.config import load_config

    blocks = [b for b in readme_blocks("yaml") if b.startswith("mqtt:")]
    assert len(blocks) == 1
    path = tmp_path / "bridge.yaml"
    path.write_text(blocks[0], encoding="utf-8")
    config = load_config(path)
    assert [route.name for route in config.routes] == ["telemetry"]
