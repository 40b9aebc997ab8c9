"""Entities of every platform (syrupy snapshots) and what they show."""

from __future__ import annotations

from unittest.mock import patch

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from pytest_homeassistant_custom_component.common import snapshot_platform
from syrupy.assertion import SnapshotAssertion

from .common import entity_id
from .conftest import SetupEntry


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    "platform", [Platform.SENSOR, Platform.BINARY_SENSOR, Platform.BUTTON, Platform.EVENT]
)
async def test_entities(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    """Each platform's entities, their registry entries and states against the emulated modem."""
    with patch("custom_components.sim7020.PLATFORMS", [platform]):
        entry = await setup_entry()
    await snapshot_platform(hass, entity_registry, snapshot, entry.entry_id)


async def test_radio_details_disabled_by_default(
    hass: HomeAssistant, setup_entry: SetupEntry, entity_registry: er.EntityRegistry
) -> None:
    """RSRP, RSRQ and SINR are for diagnosis: registered but disabled until the user enables them."""
    await setup_entry()
    for key in ("rsrp", "rsrq", "sinr"):
        registry_entry = entity_registry.async_get(entity_id(hass, "sensor", key))
        assert registry_entry is not None
        assert registry_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert entity_registry.async_get(entity_id(hass, "sensor", "signal_strength")).disabled_by is None
