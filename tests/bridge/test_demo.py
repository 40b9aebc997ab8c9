"""``sim7020 demo``: the README's first command, end to end, on each broker it can start."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

import pytest

from sim7020_core.bridge import broker as broker_module
from sim7020_core.bridge.demo import run_demo

DEMO_TIMEOUT = 60.0


@pytest.mark.parametrize(
    ("kind", "mosquitto_installed", "expected_broker"),
    [
        pytest.param("embedded", True, "amqtt ", id="embedded"),
        pytest.param("mosquitto", True, "mosquitto ", id="mosquitto"),
        pytest.param("auto", False, "amqtt ", id="auto-without-mosquitto"),
    ],
)
async def test_demo_once_shows_the_round_trip(
    kind: str,
    mosquitto_installed: bool,
    expected_broker: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    if not mosquitto_installed:  # as on a machine without Debian's mosquitto: none on PATH nor in /usr/sbin
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.setattr(broker_module, "MOSQUITTO_PATHS", ())
        assert broker_module.find_mosquitto() is None
    out = io.StringIO()
    async with asyncio.timeout(DEMO_TIMEOUT):
        code = await run_demo(once=True, interval=0.1, stop=asyncio.Event(), out=out, broker_kind=kind)
    text = out.getvalue()
    assert code == 0, text
    lines = text.splitlines()
    broker_line = next(line for line in lines if line.startswith("broker    "))
    assert broker_line.startswith("broker    " + expected_broker), text
    assert " on 127.0.0.1:" in broker_line
    sent = next(line for line in lines if line.startswith("sensor    ->"))
    reading = sent.split(": ", 1)[1]
    assert any(line.startswith("  cloud   <- " + reading) for line in lines), text
    assert any(
        line.startswith("downlink  <- sim7020/gw1/downlink/telemetry") and reading in line for line in lines
    )
    assert any(line.startswith("state     link=ready registration=home") for line in lines), text
