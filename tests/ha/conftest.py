"""Fixtures of the Home Assistant integration tests: a real emulated SIM7020 behind a socket:// URL.

The same tests run on the oldest Home Assistant the integration supports (hacs.json) and on the newest
release (scripts/ha-newest); nothing here depends on which one it is.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncGenerator, Callable, Coroutine, Generator
from pathlib import Path
from typing import Any
from unittest.mock import PropertyMock, patch

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry
from pytest_homeassistant_custom_component.syrupy import HomeAssistantSnapshotExtension
from syrupy.assertion import SnapshotAssertion

from custom_components.sim7020.const import CONF_BAUDRATE, CONF_DEVICE, DOMAIN
from sim7020_core.emulator import Emulator

from .common import ICCID, IMEI, IMSI


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom_components/sim7020."""


@pytest.fixture(autouse=True)
def verify_no_lingering_tasks() -> None:
    """Replaces the suite's check of tests/conftest.py: pytest-homeassistant-custom-component's own
    ``verify_cleanup`` fails a test that leaves tasks or timers behind, knowing which belong to Home
    Assistant itself; a second check in another event-loop fixture would only conflict with it."""


#: What Home Assistant logs when it reports an integration's use of a deprecated or soon-removed API
#: (helpers/frame.py: "Detected that custom integration 'x' ..."; config_entries.py and others: "... is
#: deprecated ...", "... will stop working in Home Assistant ...").
DEPRECATION_REPORT = re.compile(r"detected that custom integration|deprecat|stop working in", re.IGNORECASE)


def pytest_report_header() -> str:
    """Say which library the run uses: the source tree, or an installed wheel (scripts/ha-newest)."""
    import homeassistant.const

    import sim7020_core

    return f"Home Assistant {homeassistant.const.__version__}; sim7020_core from {sim7020_core.__file__}"


@pytest.fixture(autouse=True)
def no_deprecation_report_names_us(caplog: pytest.LogCaptureFixture) -> Generator[None]:
    """Fail a test during which Home Assistant reported a deprecated use by this integration."""
    caplog.set_level(logging.WARNING)
    yield
    reports = [
        record.getMessage()
        for record in caplog.get_records("call") + caplog.get_records("teardown")
        if DOMAIN in record.getMessage() and DEPRECATION_REPORT.search(record.getMessage())
    ]
    assert not reports, reports


@pytest.fixture(autouse=True)
def own_config_dir(request: pytest.FixtureRequest, tmp_path: Path) -> None:
    """Give each test's Home Assistant a configuration directory of its own, so files the integration keeps
    there (the data usage files in ``.storage``) never pass from one test to the next."""
    if "hass" in request.fixturenames:
        hass: HomeAssistant = request.getfixturevalue("hass")
        hass.config.config_dir = str(tmp_path / "config")


@pytest.fixture(autouse=True)
def loopback_sockets(socket_enabled: None) -> None:
    """Allow creating sockets: the emulator and its peers are real sockets on 127.0.0.1.

    The plugin's ``socket_allow_hosts(["127.0.0.1"])`` stays in force, so nothing else is reachable.
    """


@pytest.fixture
def snapshot(snapshot: SnapshotAssertion) -> SnapshotAssertion:
    """Snapshots through Home Assistant's serializer (stable ids and timestamps left out)."""
    return snapshot.use_extension(HomeAssistantSnapshotExtension)


@pytest.fixture
def entity_registry_enabled_by_default() -> Generator[None]:
    """Create the entities that are disabled by default as enabled (as HA core's fixture does)."""
    with patch(
        "homeassistant.helpers.entity.Entity.entity_registry_enabled_default",
        return_value=True,
        new_callable=PropertyMock,
    ):
        yield


class EmulatedModem:
    """An emulator serving the AT interface on 127.0.0.1 and the URL that reaches it."""

    def __init__(self, emulator: Emulator, url: str) -> None:
        self.emulator = emulator
        self.url = url


@pytest.fixture
async def modem() -> AsyncGenerator[EmulatedModem]:
    """A running emulated SIM7020 reachable at ``modem.url`` (socket://127.0.0.1:<port>)."""
    emulator = Emulator(
        hosts={"example.com": "127.0.0.1", "peer.test": "127.0.0.1"},
        imei=IMEI,
        imsi=IMSI,
        iccid=ICCID,
        registration_delay=0.0,
    )
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    try:
        yield EmulatedModem(emulator, f"socket://{host}:{port}")
    finally:
        await emulator.stop()


@pytest.fixture
def entry(modem: EmulatedModem) -> MockConfigEntry:
    """A config entry for the emulated modem (not added to hass)."""
    return MockConfigEntry(
        domain=DOMAIN,
        title="SIM7020E 8901",
        unique_id=IMEI,
        data={CONF_DEVICE: modem.url, CONF_BAUDRATE: 115200},
        entry_id="01JSIM7020TESTENTRY0000000",
    )


SetupEntry = Callable[..., Coroutine[Any, Any, MockConfigEntry]]


@pytest.fixture
async def setup_entry(
    hass: HomeAssistant, entry: MockConfigEntry, modem: EmulatedModem
) -> AsyncGenerator[SetupEntry]:
    """Add ``entry`` (optionally with options) and set it up; unload it again before the emulator stops."""
    added: list[MockConfigEntry] = []

    async def _setup(options: dict[str, Any] | None = None, *, expect_loaded: bool = True) -> MockConfigEntry:
        if entry not in added:
            entry.add_to_hass(hass)
            added.append(entry)
        if options is not None:
            hass.config_entries.async_update_entry(entry, options=options)
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
        if expect_loaded:
            assert entry.state is ConfigEntryState.LOADED
        return entry

    yield _setup
    for item in added:
        if item.state is ConfigEntryState.LOADED:
            assert await hass.config_entries.async_unload(item.entry_id)
    await hass.async_block_till_done()
