"""Binary sensors of the SIM7020 integration: network attach, PDN context and the network's PSM grant."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.binary_sensor import (
    BinarySensorDeviceClass,
    BinarySensorEntity,
    BinarySensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from sim7020_core import ModemStatus

from . import Sim7020ConfigEntry
from .entity import Sim7020Entity

PARALLEL_UPDATES = 0


@dataclass(frozen=True, kw_only=True)
class Sim7020BinarySensorDescription(BinarySensorEntityDescription):
    """Describes a binary sensor and how to read it from the status."""

    value_fn: Callable[[ModemStatus], bool]


BINARY_SENSORS: tuple[Sim7020BinarySensorDescription, ...] = (
    Sim7020BinarySensorDescription(
        key="attached",
        translation_key="attached",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda status: status.attached,
    ),
    Sim7020BinarySensorDescription(
        key="pdn_active",
        translation_key="pdn_active",
        device_class=BinarySensorDeviceClass.CONNECTIVITY,
        value_fn=lambda status: status.pdn_active,
    ),
    # The network grants PSM when it reports an Active-Time (T3324): deactivated means no PSM.
    Sim7020BinarySensorDescription(
        key="psm_granted",
        translation_key="psm_granted",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda status: status.psm.granted and status.psm.active_s is not None,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Sim7020ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the modem's binary sensors."""
    manager = entry.runtime_data
    async_add_entities(Sim7020BinarySensor(manager, description) for description in BINARY_SENSORS)


class Sim7020BinarySensor(Sim7020Entity, BinarySensorEntity):
    """A yes/no value of the modem's status."""

    entity_description: Sim7020BinarySensorDescription

    @property
    def is_on(self) -> bool:
        """The value from the last status."""
        return self.entity_description.value_fn(self.coordinator.data)
