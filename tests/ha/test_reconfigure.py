"""Reconfigure a running modem, the way a user does it: the entry is set up first and stays loaded."""

from __future__ import annotations

import socket

from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.sim7020.const import CONF_BAUDRATE, CONF_DEVICE, DOMAIN
from sim7020_core import LinkState
from sim7020_core.emulator import Emulator

from .common import state_of
from .conftest import EmulatedModem, SetupEntry


def _closed_port_url() -> str:
    """A socket:// URL where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"socket://127.0.0.1:{port}"


async def _reconfigure(
    hass: HomeAssistant, entry: MockConfigEntry, device: str, baudrate: int = 115200
) -> dict:
    result = await entry.start_reconfigure_flow(hass)
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "reconfigure"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: device, CONF_BAUDRATE: baudrate}
    )
    await hass.async_block_till_done()
    return dict(result)


async def test_reconfigure_same_port(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Confirming the port of the running modem (with another baud rate) works and leaves it running."""
    entry = await setup_entry()
    first = entry.runtime_data
    result = await _reconfigure(hass, entry, modem.url, 57600)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data == {CONF_DEVICE: modem.url, CONF_BAUDRATE: 57600}
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not first
    assert first.modem.state is LinkState.CLOSED
    assert entry.runtime_data.modem.state is LinkState.READY
    assert state_of(hass, "sensor", "registration") == "home"


async def test_reconfigure_to_another_port(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Moving the running modem to another path of the same module (its pty) works and leaves it running."""
    entry = await setup_entry()
    pty = await modem.emulator.start_pty()
    result = await _reconfigure(hass, entry, pty)
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    assert entry.data[CONF_DEVICE] == pty
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.modem.state is LinkState.READY
    assert state_of(hass, "sensor", "registration") == "home"


async def test_reconfigure_failure_restarts_with_old_settings(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """A port where nothing answers: the form says so and the modem runs on with its old settings."""
    entry = await setup_entry()
    result = await _reconfigure(hass, entry, _closed_port_url())
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    assert entry.data[CONF_DEVICE] == modem.url
    assert entry.state is ConfigEntryState.LOADED
    assert state_of(hass, "sensor", "registration") == "home"


async def test_reconfigure_to_another_modem_is_refused(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """A port leading to a module with another IMEI is refused; the entry keeps its own modem."""
    entry = await setup_entry()
    other = Emulator(imei="861234567890123", registration_delay=0.0)
    host, port = await other.start_tcp("127.0.0.1", 0)
    try:
        result = await _reconfigure(hass, entry, f"socket://{host}:{port}")
    finally:
        await other.stop()
    assert result["errors"] == {"base": "wrong_device"}
    assert entry.data[CONF_DEVICE] == modem.url
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_to_a_port_in_use(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """A port another entry uses is refused before anything is stopped or opened."""
    entry = await setup_entry()
    MockConfigEntry(domain=DOMAIN, unique_id="other", data={CONF_DEVICE: "socket://127.0.0.1:9"}).add_to_hass(
        hass
    )
    MockConfigEntry(domain="zha", data={"device": {"path": "/dev/ttyUSB5"}}).add_to_hass(hass)
    first = entry.runtime_data
    result = await _reconfigure(hass, entry, "socket://127.0.0.1:9")
    assert result["errors"] == {"base": "already_configured"}
    result = await _reconfigure(hass, entry, "/dev/ttyUSB5")
    assert result["errors"] == {"base": "port_in_use"}
    assert entry.runtime_data is first
    assert entry.state is ConfigEntryState.LOADED


async def test_reconfigure_entry_that_is_not_running(hass: HomeAssistant, modem: EmulatedModem) -> None:
    """An entry whose modem was not found (retrying) is pointed at the right URL and starts."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="866123045678901",
        data={CONF_DEVICE: _closed_port_url(), CONF_BAUDRATE: 115200},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    result = await _reconfigure(hass, entry, _closed_port_url())
    assert result["errors"] == {"base": "cannot_connect"}
    assert entry.state is ConfigEntryState.SETUP_RETRY
    result = await _reconfigure(hass, entry, modem.url)
    assert result["reason"] == "reconfigure_successful"
    assert entry.state is ConfigEntryState.LOADED
    assert await hass.config_entries.async_unload(entry.entry_id)
