"""Fixtures for tests/core (shared by the engine, link and modem-manager tests).

- ``fake_modem``: a started :class:`tests.fakes.fake_modem.FakeModem` (scriptable AT peer on a real
  loopback socket); ``fake_modem.url`` is its ``socket://`` URL. Stopped after the test.
- ``link``: a :class:`sim7020_core.link.SerialLink` open to ``fake_modem``.
- ``engine``: an :class:`sim7020_core.at.AtEngine` attached to ``link``.
- ``fast_timeouts``: patches the engine's grace/sync constants in :mod:`sim7020_core.const` down so
  timeout paths run in milliseconds (every wait is a constant of sim7020_core/const.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from sim7020_core import const
from sim7020_core.at import AtEngine
from sim7020_core.link import SerialLink
from tests.fakes.fake_modem import FakeModem


class StartedFakeModem(FakeModem):
    url: str


@pytest.fixture
async def fake_modem() -> AsyncIterator[StartedFakeModem]:
    fake = StartedFakeModem()
    fake.url = await fake.start()
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def link(fake_modem: StartedFakeModem) -> AsyncIterator[SerialLink]:
    link = await SerialLink.open(fake_modem.url)
    await fake_modem.wait_connected()
    try:
        yield link
    finally:
        await link.close()


@pytest.fixture
async def engine(link: SerialLink) -> AsyncIterator[AtEngine]:
    engine = AtEngine(link)
    yield engine
    await engine.detach()  # its deadline timer goes with the link


@pytest.fixture
def fast_timeouts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(const, "STALE_ANSWER_GRACE", 0.2)
    monkeypatch.setattr(const, "SYNC_ATTEMPT_TIMEOUT", 0.05)
    monkeypatch.setattr(const, "SYNC_ATTEMPTS", 2)
    monkeypatch.setattr(const, "DATA_MODE_GUARD_TIME", 0.02)
    monkeypatch.setattr(const, "SET_BAUDRATE_SETTLE", 0.0)
