"""The SIM7020 NB-IoT modem integration (a thin layer over :mod:`sim7020_core`)."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, Platform
from homeassistant.core import Event, HomeAssistant
from homeassistant.exceptions import ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.storage import STORAGE_DIR
from homeassistant.helpers.typing import ConfigType

from sim7020_core import Sim7020Error
from sim7020_core.exceptions import PortBusyError, SimError
from sim7020_core.models import NetworkSettings, ProblemKind
from sim7020_core.modem import Modem, ModemOptions
from sim7020_core.modem.usage import CORRUPT_SUFFIX
from sim7020_core.plugins import async_make_plugin_manager

from .const import (
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_NETWORK,
    CONF_POLL_INTERVAL,
    CONF_PSM_HANDLING,
    CONNECT_TIMEOUT,
    DEFAULT_BAUDRATE,
    DEFAULT_PSM_HANDLING,
    DOMAIN,
    POLL_INTERVAL,
)
from .issues import async_create_problem_issue, async_delete_issues
from .manager import Sim7020Manager
from .services import async_setup_services

_LOGGER = logging.getLogger(__name__)

PLATFORMS: list[Platform] = [
    Platform.BINARY_SENSOR,
    Platform.BUTTON,
    Platform.EVENT,
    Platform.NUMBER,
    Platform.SELECT,
    Platform.SENSOR,
    Platform.SWITCH,
]

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

Sim7020ConfigEntry = ConfigEntry[Sim7020Manager]


def modem_options(entry: Sim7020ConfigEntry, usage_file: Path | None = None) -> ModemOptions:
    """The library options of an entry: the fixed poll interval, its PSM policy, no wait for registration,
    where the library keeps the modem's data usage (``usage_file``, see :func:`usage_file_path`) and the
    network settings the user set from Home Assistant (:func:`network_settings`).

    Registration is not awaited at setup: it is reported (and the entities follow) when it happens.
    """
    return ModemOptions(
        registration_timeout=0,
        poll_interval=POLL_INTERVAL,
        psm_policy=entry.options.get(CONF_PSM_HANDLING, DEFAULT_PSM_HANDLING),
        usage_file=usage_file,
        network=network_settings(entry),
    )


#: Fields of :class:`NetworkSettings` kept in ``entry.data[CONF_NETWORK]`` (lists stored for tuples).
NETWORK_FIELDS = (
    "apn",
    "psm",
    "psm_tau_s",
    "psm_active_s",
    "edrx",
    "edrx_cycle_s",
    "bands",
    "operator",
    "dns_servers",
)


def network_settings(entry: Sim7020ConfigEntry) -> NetworkSettings | None:
    """The network settings the user set from Home Assistant (``entry.data[CONF_NETWORK]``), for the library
    to apply at connect and again after every module reset; None when nothing was set.

    The APN goes to the library only without credentials and with the default PDP type, the only APN
    :class:`NetworkSettings` can express (otherwise the library would set it without them); the module keeps
    an APN in its own memory anyway. A stored value the library refuses is logged and left out.
    """
    stored: dict[str, Any] = entry.data.get(CONF_NETWORK) or {}
    values: dict[str, Any] = {}
    for field in NETWORK_FIELDS:
        value: Any = stored.get(field)
        if value is None:
            continue
        if field == "apn" and (stored.get("apn_username") or stored.get("apn_pdp_type", "IP") != "IP"):
            continue
        if isinstance(value, list):
            value = tuple(value)
        try:
            NetworkSettings(**{field: value})
        except (TypeError, ValueError) as err:
            _LOGGER.warning("%s: the stored network setting %s is ignored: %s", entry.title, field, err)
            continue
        values[field] = value
    return NetworkSettings(**values) if values else None


def reload_key(entry: Sim7020ConfigEntry) -> tuple[dict[str, Any], dict[str, Any]]:
    """What a change of reloads the entry: its data (port, baud rate) and options, but not the network
    settings, which the running modem has already taken when they are stored."""
    data = {key: value for key, value in entry.data.items() if key != CONF_NETWORK}
    return data, dict(entry.options)


def usage_file_path(hass: HomeAssistant, entry: Sim7020ConfigEntry) -> Path:
    """The file in which the library keeps the entry's data usage totals (``ModemOptions.usage_file``).

    It lies in Home Assistant's storage directory (``<config>/.storage``), named after the entry, as other
    integrations keep a file their library writes itself (HomeKit: ``homekit.<entry_id>.state``). The library
    owns it: it reads it at connect and writes it atomically (a temporary file renamed over it) in a worker
    thread. Removing the entry removes it (:func:`async_remove_entry`).
    """
    return Path(hass.config.path(STORAGE_DIR, f"{DOMAIN}.{entry.entry_id}.usage.json"))


def _remove_usage_files(path: Path) -> None:
    """Delete the usage file and the copy the library keeps aside when it finds one corrupt; blocking (run
    it in the executor)."""
    for file in (path, path.with_name(path.name + CORRUPT_SUFFIX)):
        try:
            file.unlink(missing_ok=True)
        except OSError as err:
            _LOGGER.warning("Could not remove the data usage file %s: %s", file, err.strerror or err)


def port_busy_issue_id(entry: Sim7020ConfigEntry) -> str:
    """Return the repair issue id raised when the entry's serial port is held by another process."""
    return f"port_busy_{entry.entry_id}"


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Register the integration's actions (they work for every SIM7020 entry)."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: Sim7020ConfigEntry) -> bool:
    """Open the modem, publish its device and entities."""
    device: str = entry.data[CONF_DEVICE]
    issue_id = port_busy_issue_id(entry)
    try:
        # The entry composes the application: one plugin manager (entry points read off the event loop),
        # handed to the modem for its transports, codecs and hooks.
        plugins = await async_make_plugin_manager()
        usage_file = usage_file_path(hass, entry)
        # The storage directory exists in every running Home Assistant; made here for a fresh config dir.
        await hass.async_add_executor_job(lambda: os.makedirs(usage_file.parent, exist_ok=True))
        async with asyncio.timeout(CONNECT_TIMEOUT):
            modem = await Modem.connect(
                device,
                baudrate=entry.data.get(CONF_BAUDRATE, DEFAULT_BAUDRATE),
                options=modem_options(entry, usage_file),
                plugin_manager=plugins,
            )
    except PortBusyError as err:
        ir.async_create_issue(
            hass,
            DOMAIN,
            issue_id,
            is_fixable=False,
            is_persistent=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key="port_busy",
            translation_placeholders={"device": device, "title": entry.title},
        )
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="port_busy",
            translation_placeholders={"device": device},
        ) from err
    except SimError as err:
        # What the library reports as a problem of a running modem, shown the same way while setup retries.
        async_create_problem_issue(hass, entry, ProblemKind.SIM, str(err))
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="sim_missing",
            translation_placeholders={"error": str(err)},
        ) from err
    except (Sim7020Error, TimeoutError, OSError) as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"device": device, "error": str(err) or type(err).__name__},
        ) from err
    ir.async_delete_issue(hass, DOMAIN, issue_id)

    manager = Sim7020Manager(hass, entry, modem, reload_key(entry))
    try:
        await manager.async_start()
    except BaseException:
        await manager.async_stop()
        raise

    info = modem.info
    device_entry = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, info.imei)},
        manufacturer=info.manufacturer or "SIMCom",
        model=info.model or None,
        name=info.model or "SIM7020",
        sw_version=info.revision or None,
    )
    manager.device_id = device_entry.id
    entry.runtime_data = manager
    # Changed options, and data a flow changes while the entry runs, take effect through one reload here;
    # the config flow therefore never asks Home Assistant to reload a running entry (see config_flow.py).
    entry.async_on_unload(entry.add_update_listener(_async_update_listener))

    async def _async_close_on_stop(event: Event) -> None:
        # Release the serial port cleanly when Home Assistant stops (entries are not unloaded then).
        await manager.async_stop()

    entry.async_on_unload(hass.bus.async_listen(EVENT_HOMEASSISTANT_STOP, _async_close_on_stop))
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def _async_update_listener(hass: HomeAssistant, entry: Sim7020ConfigEntry) -> None:
    """Apply changed options or data by reloading the entry (once per change); a change of the stored
    network settings alone (made by the running modem's entities and actions) needs none."""
    if reload_key(entry) == entry.runtime_data.reload_key:
        return
    await hass.config_entries.async_reload(entry.entry_id)


async def async_migrate_entry(hass: HomeAssistant, entry: Sim7020ConfigEntry) -> bool:
    """Bring an entry of an older version up to date.

    1.1 → 1.2: the user-set poll interval option is gone (the interval is fixed, see ``const.POLL_INTERVAL``).
    """
    if entry.version > 1:
        return False  # made by a newer version of the integration: leave it alone
    # Home Assistant calls this only for entries older than the flow's 1.2, that is 1.1.
    options = {key: value for key, value in entry.options.items() if key != CONF_POLL_INTERVAL}
    hass.config_entries.async_update_entry(entry, options=options, minor_version=2)
    _LOGGER.debug("Migrated %s to version 1.2 (poll interval option dropped)", entry.title)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: Sim7020ConfigEntry) -> bool:
    """Remove the entities and close the modem."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
    if unloaded:
        await entry.runtime_data.async_stop()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: Sim7020ConfigEntry) -> None:
    """Drop the entry's repair issues and its data usage file when the entry is deleted (it is unloaded
    before, so the library has written its last totals and holds the file no longer)."""
    ir.async_delete_issue(hass, DOMAIN, port_busy_issue_id(entry))
    async_delete_issues(hass, entry.entry_id)
    await hass.async_add_executor_job(_remove_usage_files, usage_file_path(hass, entry))
