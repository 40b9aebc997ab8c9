"""Number entities of the SIM7020 integration: timers the library sets on the module (PSM).

Each number is one :class:`Sim7020NumberDescription`: its value from the manager and how to change it
through the library, so a further timer (eDRX cycle, ...) is one more description.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from homeassistant.components.number import (
    NumberDeviceClass,
    NumberEntity,
    NumberEntityDescription,
    NumberMode,
)
from homeassistant.const import EntityCategory, UnitOfTime
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from sim7020_core.psm import T3324_MAX_S, T3412_MAX_S

from . import Sim7020ConfigEntry
from .entity import Sim7020Entity
from .manager import Sim7020Manager
from .services import guarded

# Each change is an AT command sequence on the module's one UART: one at a time.
PARALLEL_UPDATES = 1


@dataclass(frozen=True, kw_only=True)
class Sim7020NumberDescription(NumberEntityDescription):
    """Describes a number: its value from the manager and how to set it."""

    value_fn: Callable[[Sim7020Manager], float | None]
    set_fn: Callable[[Sim7020Manager, float], Coroutine[Any, Any, None]]


NUMBERS: tuple[Sim7020NumberDescription, ...] = (
    Sim7020NumberDescription(
        key="psm_tau",
        translation_key="psm_tau",
        device_class=NumberDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        native_min_value=0,
        native_max_value=T3412_MAX_S,
        native_step=1,
        mode=NumberMode.BOX,
        entity_category=EntityCategory.CONFIG,
        value_fn=lambda manager: manager.psm_request[0],
        set_fn=lambda manager, value: manager.async_set_psm(tau_s=int(value)),
    ),
    Sim7020NumberDescription(
        key="psm_active_time",
        translation_key="psm_active_time",
        device_class=NumberDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        native_min_value=0,
        native_max_value=T3324_MAX_S,
        native_step=1,
        mode=NumberMode.BOX,
        entity_category=EntityCategory.CONFIG,
        value_fn=lambda manager: manager.psm_request[1],
        set_fn=lambda manager, value: manager.async_set_psm(active_s=int(value)),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Sim7020ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the modem's numbers."""
    manager = entry.runtime_data
    async_add_entities(Sim7020Number(manager, description) for description in NUMBERS)


class Sim7020Number(Sim7020Entity, NumberEntity):
    """A timer requested from the module."""

    entity_description: Sim7020NumberDescription

    @property
    def native_value(self) -> float | None:
        """The requested value (None: the module's default, or deactivated)."""
        return self.entity_description.value_fn(self.manager)

    async def async_set_native_value(self, value: float) -> None:
        """Request ``value``."""
        await guarded(self.entity_description.set_fn(self.manager, value))
