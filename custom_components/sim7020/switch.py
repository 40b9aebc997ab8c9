"""Switches of the SIM7020 integration: device settings the library keeps (PSM, eDRX).

Each switch is one :class:`Sim7020SwitchDescription`: how to read the setting from the manager and how to
change it through the library, so a further setting is one more description.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from homeassistant.components.switch import SwitchEntity, SwitchEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import Sim7020ConfigEntry
from .entity import Sim7020Entity
from .manager import Sim7020Manager
from .services import guarded

# Each change is an AT command sequence on the module's one UART: one at a time.
PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class Sim7020SwitchDescription(SwitchEntityDescription):
    """Describes a switch: its value from the manager and how to set it."""

    value_fn: Callable[[Sim7020Manager], bool | None]
    set_fn: Callable[[Sim7020Manager, bool], Coroutine[Any, Any, None]]


SWITCHES: tuple[Sim7020SwitchDescription, ...] = (
    Sim7020SwitchDescription(
        key="psm",
        translation_key="psm",
        entity_category=EntityCategory.CONFIG,
        value_fn=lambda manager: manager.coordinator.data.psm.enabled,
        set_fn=lambda manager, on: manager.async_set_psm(on),
    ),
    Sim7020SwitchDescription(
        key="edrx",
        translation_key="edrx",
        entity_category=EntityCategory.CONFIG,
        value_fn=lambda manager: manager.coordinator.data.edrx.enabled,
        set_fn=lambda manager, on: manager.async_set_edrx(on),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Sim7020ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the modem's switches."""
    manager = entry.runtime_data
    async_add_entities(Sim7020Switch(manager, description) for description in SWITCHES)


class Sim7020Switch(Sim7020Entity, SwitchEntity):
    """A setting of the module, on or off."""

    entity_description: Sim7020SwitchDescription

    @property
    def is_on(self) -> bool | None:
        """The setting as the module reports it."""
        return self.entity_description.value_fn(self.manager)

    async def async_turn_on(self, **kwargs: Any) -> None:
        """Turn the setting on."""
        await guarded(self.entity_description.set_fn(self.manager, True))

    async def async_turn_off(self, **kwargs: Any) -> None:
        """Turn the setting off."""
        await guarded(self.entity_description.set_fn(self.manager, False))
