"""Base class of the SIM7020 entities."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity import EntityDescription
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import Sim7020Coordinator
from .manager import Sim7020Manager


class Sim7020Entity(CoordinatorEntity[Sim7020Coordinator]):
    """An entity of one modem: named after its translation key, attached to the modem's device.

    Unavailable while the library has lost the module (link disconnected or recovering) or the last
    poll failed; available while the module sleeps in PSM, which is its normal low-power state.
    """

    _attr_has_entity_name = True

    def __init__(self, manager: Sim7020Manager, description: EntityDescription) -> None:
        super().__init__(manager.coordinator)
        self.manager = manager
        self.entity_description = description
        imei = manager.modem.info.imei
        self._attr_unique_id = f"{imei}_{description.key}"
        self._attr_device_info = DeviceInfo(identifiers={(DOMAIN, imei)})

    @property
    def available(self) -> bool:
        """Reachable (ready or asleep) and the last status poll worked."""
        return self.manager.available
