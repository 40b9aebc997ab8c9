"""The restart button of the SIM7020 integration."""

from __future__ import annotations

import asyncio

from homeassistant.components.button import ButtonDeviceClass, ButtonEntity, ButtonEntityDescription
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from sim7020_core import Sim7020Error

from . import Sim7020ConfigEntry
from .const import DOMAIN, REBOOT_TIMEOUT
from .entity import Sim7020Entity

PARALLEL_UPDATES = 1

RESTART = ButtonEntityDescription(
    key="restart",
    device_class=ButtonDeviceClass.RESTART,
    entity_category=EntityCategory.CONFIG,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Sim7020ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the restart button."""
    async_add_entities([Sim7020RestartButton(entry.runtime_data, RESTART)])


class Sim7020RestartButton(Sim7020Entity, ButtonEntity):
    """Reboot the module; the library re-initialises it and the entities follow its state."""

    async def async_press(self) -> None:
        """Reboot the module."""
        try:
            async with asyncio.timeout(REBOOT_TIMEOUT):
                await self.manager.async_reboot()
        except (Sim7020Error, TimeoutError) as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="reboot_failed",
                translation_placeholders={"error": str(err) or type(err).__name__},
            ) from err
