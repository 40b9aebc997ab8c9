"""The status coordinator of one modem: the last :class:`ModemStatus`, pushed by the library.

Nothing is polled here. The library reads what the module cannot report by itself (signal, attach, PDN
state, address) every :data:`~.const.POLL_INTERVAL` seconds while the module is awake -- never in PSM, so the
module can sleep -- and publishes every change together with what the module does report on its own
(registration, PSM, reboots); :meth:`.manager.Sim7020Manager._on_modem_event` feeds those into this
coordinator. A refresh runs only when asked for: the first one at setup, and ``homeassistant.update_entity``
for users who want a reading now.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from sim7020_core import LinkState, ModemStatus, Sim7020Error
from sim7020_core.exceptions import ModemAsleepError

from .const import DOMAIN, REFRESH_TIMEOUT

if TYPE_CHECKING:
    from sim7020_core.modem import Modem

    from . import Sim7020ConfigEntry

_LOGGER = logging.getLogger(__name__)

#: Link states in which the module is reachable (PSM is a normal, expected state, not a failure).
AVAILABLE_STATES = frozenset({LinkState.READY, LinkState.ASLEEP})


class Sim7020Coordinator(DataUpdateCoordinator[ModemStatus]):
    """Holds the modem's last status; the library polls and pushes it (``update_interval`` is None)."""

    config_entry: Sim7020ConfigEntry

    def __init__(self, hass: HomeAssistant, entry: Sim7020ConfigEntry, modem: Modem) -> None:
        super().__init__(
            hass,
            _LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} {entry.title}",
            update_interval=None,
            always_update=False,
        )
        self.modem = modem

    async def _async_update_data(self) -> ModemStatus:
        state = self.modem.state
        if state is LinkState.ASLEEP:
            # Querying would wake the module and defeat PSM: report the last known status.
            return self.modem.status
        if state not in AVAILABLE_STATES:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="link_down",
                translation_placeholders={"state": str(state)},
            )
        try:
            async with asyncio.timeout(REFRESH_TIMEOUT):
                return await self.modem.refresh()
        except ModemAsleepError:
            return self.modem.status
        except (Sim7020Error, TimeoutError) as err:
            raise UpdateFailed(
                translation_domain=DOMAIN,
                translation_key="refresh_failed",
                translation_placeholders={"error": str(err) or type(err).__name__},
            ) from err
