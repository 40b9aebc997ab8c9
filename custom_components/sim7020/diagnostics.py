"""Diagnostics of the SIM7020 integration (identities and addresses redacted)."""

from __future__ import annotations

from typing import Any

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.core import HomeAssistant

from . import Sim7020ConfigEntry

#: Identities, addresses and where the modem is (cell id and tracking area locate it); the neighbour cells'
#: EARFCN, PCI and RSRP stay (they say nothing without the serving cell's identity). The APN's credentials
#: stored with the network settings (``entry.data["network"]``) too.
TO_REDACT = {
    "imei",
    "imsi",
    "iccid",
    "ip",
    "unique_id",
    "title",
    "cell_id",
    "tac",
    "apn_username",
    "apn_password",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: Sim7020ConfigEntry
) -> dict[str, Any]:
    """Return the entry, the module's identity, its last status and the data usage, with personal data
    redacted."""
    manager = entry.runtime_data
    modem = manager.modem
    status = manager.coordinator.data
    return async_redact_data(
        {
            "entry": {
                "title": entry.title,
                "unique_id": entry.unique_id,
                "data": dict(entry.data),
                "options": dict(entry.options),
            },
            "link_state": str(modem.state),
            "available": manager.available,
            "last_update_success": manager.coordinator.last_update_success,
            "info": modem.info.as_dict(),
            "status": status.as_dict() if status is not None else None,
            "usage": modem.usage.as_dict(),
            "connections": [
                {"transport": transport, "protocol": protocol, "port": port}
                for transport, protocol, _host, port in manager.connections
            ],
            "server_clients": len(manager.clients),
            "listening": manager.server is not None,
        },
        TO_REDACT,
    )
