"""Entities of every platform (syrupy snapshots) and what they show.

The snapshot holds what a user sees of each entity -- its registry settings and its state -- in plain
values, not Home Assistant's serialised registry entries: those gain fields from release to release, and the
same snapshot must hold on the oldest supported and on the newest Home Assistant.
"""

from __future__ import annotations

from enum import Enum
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.const import Platform
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from syrupy.assertion import SnapshotAssertion

from .common import entity_id, state_of
from .conftest import EmulatedModem, SetupEntry

#: Registry settings a user sees or that decide how an entity behaves.
REGISTRY_FIELDS = (
    "entity_id",
    "unique_id",
    "translation_key",
    "device_class",
    "original_device_class",
    "entity_category",
    "disabled_by",
    "hidden_by",
    "unit_of_measurement",
    "capabilities",
    "original_icon",
    "supported_features",
)


def _plain(value: Any) -> Any:
    """Enums as their values (keys too), containers recursively: no enum classes in the snapshot.

    Newer Home Assistant versions key state attributes by StrEnum members where older ones use strings.
    """
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {_plain(key): _plain(item) for key, item in sorted(value.items())}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def _state_value(registry_entry: er.RegistryEntry, value: str) -> Any:
    """A data size as its number: HA shows the bytes converted to kB with a number of decimals that differs
    between releases ('0.000' on 2025.4, '0.0' on 2026.10); the value is what the snapshot holds."""
    if registry_entry.original_device_class == "data_size":
        try:
            return float(value)
        except ValueError:
            return value
    return value


def entity_view(hass: HomeAssistant, registry_entry: er.RegistryEntry) -> dict[str, Any]:
    """What the snapshot records of one entity."""
    state = hass.states.get(registry_entry.entity_id)
    return {
        "registry": {field: _plain(getattr(registry_entry, field)) for field in REGISTRY_FIELDS},
        "state": None if state is None else _state_value(registry_entry, state.state),
        "attributes": None
        if state is None
        else {_plain(key): _plain(value) for key, value in sorted(state.attributes.items())},
    }


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
@pytest.mark.parametrize(
    "platform",
    [
        Platform.SENSOR,
        Platform.BINARY_SENSOR,
        Platform.BUTTON,
        Platform.EVENT,
        Platform.NUMBER,
        Platform.SELECT,
        Platform.SWITCH,
    ],
)
async def test_entities(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    entity_registry: er.EntityRegistry,
    snapshot: SnapshotAssertion,
    platform: Platform,
) -> None:
    """Each platform's entities, their registry settings and states against the emulated modem."""
    with patch("custom_components.sim7020.PLATFORMS", [platform]):
        entry = await setup_entry()
    entries = sorted(
        er.async_entries_for_config_entry(entity_registry, entry.entry_id), key=lambda item: item.entity_id
    )
    assert entries
    assert {item.domain for item in entries} == {platform.value}
    assert [entity_view(hass, item) for item in entries] == snapshot


async def test_radio_details_disabled_by_default(
    hass: HomeAssistant, setup_entry: SetupEntry, entity_registry: er.EntityRegistry
) -> None:
    """RSRP, RSRQ, SINR and the serving cell's details are for diagnosis: registered but disabled until the
    user enables them."""
    await setup_entry()
    for key in ("rsrp", "rsrq", "sinr", "cell_id", "pci", "earfcn", "band", "tac", "ecl", "neighbour_cells"):
        registry_entry = entity_registry.async_get(entity_id(hass, "sensor", key))
        assert registry_entry is not None
        assert registry_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    assert entity_registry.async_get(entity_id(hass, "sensor", "signal_strength")).disabled_by is None


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_radio_diagnostics_show_the_serving_cell(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """The serving cell as the module reports it (AT+CENG), and a move to another cell."""
    cell = modem.emulator.cell
    await setup_entry()
    assert state_of(hass, "sensor", "cell_id") == cell.cell_id
    assert state_of(hass, "sensor", "pci") == str(cell.pci)
    assert state_of(hass, "sensor", "earfcn") == str(cell.earfcn)
    assert state_of(hass, "sensor", "band") == str(cell.band)
    assert state_of(hass, "sensor", "tac") == cell.tac
    assert state_of(hass, "sensor", "ecl") == str(cell.ecl)
    assert state_of(hass, "sensor", "neighbour_cells") == str(len(cell.neighbours))

    modem.emulator.change_cell(cell_id="000A700B", pci=77, neighbours=())
    assert await async_setup_component(hass, "homeassistant", {})
    await hass.services.async_call(
        "homeassistant", "update_entity", {"entity_id": entity_id(hass, "sensor", "pci")}, blocking=True
    )
    assert state_of(hass, "sensor", "cell_id") == "000A700B"
    assert state_of(hass, "sensor", "pci") == "77"
    assert state_of(hass, "sensor", "neighbour_cells") == "0"
