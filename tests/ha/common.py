"""Helpers of the Home Assistant integration tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er

from custom_components.sim7020.const import DOMAIN

#: Identity of the emulated module used across the tests.
IMEI = "866123045678901"
IMSI = "460011234567890"
ICCID = "89860117851234567890"
#: Upper bound for waiting on something the emulator and the library do asynchronously.
WAIT_TIMEOUT = 10.0


async def wait_for(
    hass: HomeAssistant, predicate: Callable[[], bool], what: str, timeout: float = WAIT_TIMEOUT
) -> None:
    """Let the loop run until ``predicate()`` holds; fail naming ``what`` after ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            while not predicate():
                await asyncio.sleep(0.02)
                await hass.async_block_till_done()
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what}") from None


def modem_device(hass: HomeAssistant, entry: ConfigEntry) -> dr.DeviceEntry:
    """The one device of ``entry`` (looked up through the entry: identifiers are not unique in newer HA)."""
    devices = dr.async_entries_for_config_entry(dr.async_get(hass), entry.entry_id)
    assert len(devices) == 1, devices
    return devices[0]


def entity_id(hass: HomeAssistant, platform: str, key: str) -> str:
    """The entity id of the modem's entity ``key`` on ``platform`` (looked up by unique id)."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{IMEI}_{key}")
    assert found is not None, f"no {platform} entity {key}"
    return found


def state_of(hass: HomeAssistant, platform: str, key: str) -> str:
    """The current state string of the modem's entity ``key``."""
    state = hass.states.get(entity_id(hass, platform, key))
    assert state is not None
    return state.state


async def unload_mqtt(hass: HomeAssistant) -> None:
    """Unload the MQTT entry set up by ``mqtt_mock`` so that none of its timers outlive the test."""
    for mqtt_entry in hass.config_entries.async_entries("mqtt"):
        await hass.config_entries.async_unload(mqtt_entry.entry_id)
    await hass.async_block_till_done()
