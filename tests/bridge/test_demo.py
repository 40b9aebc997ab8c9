"""``sim7020 demo``: the README's first command, end to end."""

from __future__ import annotations

import asyncio
import io

import pytest

from sim7020_core.bridge.broker import find_mosquitto
from sim7020_core.bridge.demo import run_demo

DEMO_TIMEOUT = 60.0


@pytest.mark.parametrize(
    "kind",
    [
        "embedded",
        pytest.param(
            "mosquitto",
            marks=pytest.mark.skipif(find_mosquitto() is None, reason="mosquitto is not installed"),
        ),
    ],
)
async def test_demo_once_shows_the_round_trip(kind: str) -> None:
    out = io.StringIO()
    async with asyncio.timeout(DEMO_TIMEOUT):
        code = await run_demo(once=True, interval=0.1, stop=asyncio.Event(), out=out, broker_kind=kind)
    text = out.getvalue()
    assert code == 0, text
    lines = text.splitlines()
    assert any(line.startswith("broker") and ("mosquitto" in line or "embedded" in line) for line in lines)
    sent = next(line for line in lines if line.startswith("sensor    ->"))
    reading = sent.split(": ", 1)[1]
    assert any(line.startswith("  cloud   <- " + reading) for line in lines), text
    assert any(
        line.startswith("downlink  <- sim7020/gw1/downlink/telemetry") and reading in line for line in lines
    )
    assert any(line.startswith("state     link=ready registration=home") for line in lines), text
