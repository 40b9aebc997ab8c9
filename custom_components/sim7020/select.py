"""Select entities of the SIM7020 integration: settings with a fixed set of values (the eDRX cycle).

Each select is one :class:`Sim7020SelectDescription`: its value from the manager and how to change it
through the library, so a further setting is one more description. Options are the values as strings
(``"20.48"`` seconds), shown with their unit through the translations.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from homeassistant.components.select import SelectEntity, SelectEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from sim7020_core.netvalues import EDRX_CYCLE_VALUES, edrx_bits

from . import Sim7020ConfigEntry
from .entity import Sim7020Entity
from .manager import Sim7020Manager
from .services import guarded

# Each change is an AT command sequence on the module's one UART: one at a time.
PARALLEL_UPDATES = 1


def cycle_option(cycle_s: float) -> str:
    """The option of an eDRX cycle in seconds (``20.48`` → ``"20.48"``, ``10485.76`` → ``"10485.76"``)."""
    return f"{cycle_s:.2f}".rstrip("0").rstrip(".")


#: The eDRX cycles NB-IoT allows (3GPP TS 24.008, table 10.5.5.32, NB-S1 mode), as options.
EDRX_CYCLE_OPTIONS: list[str] = [cycle_option(value) for value in EDRX_CYCLE_VALUES]


def _edrx_cycle(manager: Sim7020Manager) -> str | None:
    """The requested eDRX cycle as an option (None: the module's default, or a value NB-IoT does not have)."""
    cycle = manager.edrx_request
    if cycle is None or edrx_bits(cycle) is None:
        return None
    return cycle_option(cycle)


@dataclass(frozen=True, kw_only=True)
class Sim7020SelectDescription(SelectEntityDescription):
    """Describes a select: its value from the manager and how to set it."""

    value_fn: Callable[[Sim7020Manager], str | None]
    set_fn: Callable[[Sim7020Manager, str], Coroutine[Any, Any, None]]


SELECTS: tuple[Sim7020SelectDescription, ...] = (
    Sim7020SelectDescription(
        key="edrx_cycle",
        translation_key="edrx_cycle",
        options=EDRX_CYCLE_OPTIONS,
        entity_category=EntityCategory.CONFIG,
        value_fn=_edrx_cycle,
        set_fn=lambda manager, option: manager.async_set_edrx(cycle_s=float(option)),
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Sim7020ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the modem's selects."""
    manager = entry.runtime_data
    async_add_entities(Sim7020Select(manager, description) for description in SELECTS)


class Sim7020Select(Sim7020Entity, SelectEntity):
    """A setting of the module with a fixed set of values."""

    entity_description: Sim7020SelectDescription

    @property
    def current_option(self) -> str | None:
        """The requested value (None: the module's default)."""
        return self.entity_description.value_fn(self.manager)

    async def async_select_option(self, option: str) -> None:
        """Request ``option``."""
        await guarded(self.entity_description.set_fn(self.manager, option))
