"""The event entity of the SIM7020 integration: data received and PSM transitions."""

from __future__ import annotations

from typing import Any

from homeassistant.components.event import EventEntity, EventEntityDescription
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import Sim7020ConfigEntry
from .const import TRIGGER_TYPES
from .entity import Sim7020Entity

PARALLEL_UPDATES = 0

EVENTS = EventEntityDescription(key="modem_event", translation_key="modem_event", event_types=TRIGGER_TYPES)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Sim7020ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the event entity."""
    async_add_entities([Sim7020EventEntity(entry.runtime_data, EVENTS)])


class Sim7020EventEntity(Sim7020Entity, EventEntity):
    """Fires ``data_received`` (host, port, protocol, payload, payload_hex), ``psm_entered`` and
    ``psm_exited``.
    """

    async def async_added_to_hass(self) -> None:
        """Listen to the manager's events."""
        await super().async_added_to_hass()
        self.async_on_remove(self.manager.async_add_event_listener(self._async_handle_event))

    @callback
    def _async_handle_event(self, event_type: str, attributes: dict[str, Any]) -> None:
        self._trigger_event(event_type, attributes)
        self.async_write_ha_state()
