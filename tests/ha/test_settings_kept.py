"""Network settings set from Home Assistant survive a restart of Home Assistant and resets of the module.

What the user sets (PSM and its timers, eDRX and its cycle, the APN, bands, operator, DNS servers) is stored
in the config entry without reloading it, and handed to the library at setup (``ModemOptions.network``), which
applies it at connect and again after every module reset. The emulated module is told to forget all of it in
a reset (``Emulator.reboot_forgets``), as a module without non-volatile settings would.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_ON
from homeassistant.core import HomeAssistant

from custom_components.sim7020.const import CONF_NETWORK, DOMAIN
from custom_components.sim7020.diagnostics import async_get_config_entry_diagnostics
from sim7020_core.emulator.core import REBOOT_SETTINGS
from sim7020_core.netvalues import edrx_bits
from sim7020_core.psm import encode_t3324, encode_t3412

from .common import entity_id, state_of, wait_for
from .conftest import EmulatedModem, SetupEntry

#: What the emulated module starts with (and falls back to when it forgets).
DEFAULT_APN = "iot.example"


async def _entity_call(hass: HomeAssistant, domain: str, service: str, key: str, **data: Any) -> None:
    await hass.services.async_call(
        domain, service, {ATTR_ENTITY_ID: entity_id(hass, domain, key), **data}, blocking=True
    )


async def _call(hass: HomeAssistant, service: str, **data: Any) -> None:
    await hass.services.async_call(DOMAIN, service, data, blocking=True)


def _forgetful(modem: EmulatedModem) -> None:
    """The module forgets every network setting in a reset, and the network hands out no DNS server."""
    modem.emulator.reboot_forgets = frozenset(REBOOT_SETTINGS)
    modem.emulator.set_network_dns(())


def _applied(modem: EmulatedModem) -> bool:
    """The module holds the settings the tests set."""
    state = modem.emulator.state
    return (
        state.bands == (8, 20)
        and (state.cops_mode, state.cops_plmn) == (1, "46001")
        and state.edrx_mode == 1
        and state.edrx_value == edrx_bits(163.84)
        and state.dns is not None
        and state.dns[0] == "9.9.9.9"
        and state.apn == "nbiot.example"
    )


def _forgotten(modem: EmulatedModem) -> bool:
    state = modem.emulator.state
    return state.bands is None and state.cops_mode == 0 and state.edrx_mode == 0 and state.dns is None


async def _reset_module(hass: HomeAssistant, modem: EmulatedModem) -> None:
    """A module reset (power glitch): it forgets, and is back after its boot."""
    modem.emulator.reboot()
    assert _forgotten(modem)
    await asyncio.sleep(0.5)  # the UART is dead for 0.15 s, then RDY


async def test_settings_survive_a_restart_and_module_resets(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Set from Home Assistant, stored without a reload; after a restart on a module that forgot them, the
    module gets them again (PSM timers chosen while PSM is off included), and again after a module reset."""
    _forgetful(modem)
    entry = await setup_entry()
    manager = entry.runtime_data

    await _entity_call(hass, "number", SERVICE_SET_VALUE, "psm_tau", **{ATTR_VALUE: 3600})
    await _entity_call(hass, "select", SERVICE_SELECT_OPTION, "edrx_cycle", **{ATTR_OPTION: "163.84"})
    await _entity_call(hass, "switch", SERVICE_TURN_ON, "edrx")
    await _call(hass, "set_bands", bands=[20, 8])
    await _call(hass, "set_operator", operator="46001")
    await _call(hass, "set_dns_servers", servers=["9.9.9.9"])
    await _call(hass, "set_apn", apn="nbiot.example")
    await hass.async_block_till_done()
    assert _applied(modem)
    assert entry.runtime_data is manager  # stored without reloading the entry
    assert entry.data[CONF_NETWORK] == {
        "psm_tau_s": 3600,
        "edrx": True,
        "edrx_cycle_s": 163.84,
        "bands": [8, 20],
        "operator": "46001",
        "dns_servers": ["9.9.9.9"],
        "apn": "nbiot.example",
        "apn_pdp_type": "IP",
    }

    # Home Assistant stops; the module is reset meanwhile and forgets everything; Home Assistant starts.
    assert await hass.config_entries.async_unload(entry.entry_id)
    await _reset_module(hass, modem)
    assert modem.emulator.state.apn == DEFAULT_APN
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert _applied(modem)
    assert modem.emulator.state.psm_mode == 0  # PSM stays off, its chosen timer waits for the switch
    assert state_of(hass, "number", "psm_tau") == "3600"
    assert state_of(hass, "switch", "edrx") == "on"
    assert state_of(hass, "select", "edrx_cycle") == "163.84"
    assert state_of(hass, "sensor", "band_lock") == "8, 20"
    assert state_of(hass, "sensor", "operator_selection") == "46001"
    assert state_of(hass, "sensor", "dns_servers").startswith("9.9.9.9")

    # The module resets while Home Assistant runs: the library applies them again.
    await _reset_module(hass, modem)
    await wait_for(hass, lambda: _applied(modem), "the settings applied again after the reset", timeout=20)
    await wait_for(hass, lambda: state_of(hass, "sensor", "registration") == "home", "registration")


async def test_psm_with_timers_is_applied_at_start(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """PSM turned on with chosen timers before a restart: the module that forgot it is asked again."""
    _forgetful(modem)
    entry = await setup_entry()
    await _entity_call(hass, "number", SERVICE_SET_VALUE, "psm_tau", **{ATTR_VALUE: 3600})
    await _entity_call(hass, "number", SERVICE_SET_VALUE, "psm_active_time", **{ATTR_VALUE: 60})
    await _entity_call(hass, "switch", SERVICE_TURN_ON, "psm")
    assert entry.data[CONF_NETWORK] == {"psm": True, "psm_tau_s": 3600, "psm_active_s": 60}
    assert await hass.config_entries.async_unload(entry.entry_id)
    await _reset_module(hass, modem)
    assert modem.emulator.state.psm_mode == 0
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    state = modem.emulator.state
    assert (state.psm_mode, state.psm_tau, state.psm_active) == (1, encode_t3412(3600), encode_t3324(60))
    assert state_of(hass, "switch", "psm") == "on"


async def test_an_apn_with_credentials_is_not_set_again_without_them(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """The library keeps an APN without its credentials only: such an APN is left to the module (which
    keeps it), never replaced at start by one without them."""
    entry = await setup_entry()
    await _call(hass, "set_apn", apn="nbiot.example", username="user", password="secret")
    assert entry.data[CONF_NETWORK]["apn_username"] == "user"
    assert await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    state = modem.emulator.state
    assert (state.apn, state.apn_user, state.apn_password) == ("nbiot.example", "user", "secret")
    diagnostics = await async_get_config_entry_diagnostics(hass, entry)
    assert diagnostics["entry"]["data"][CONF_NETWORK]["apn_password"] == "**REDACTED**"
    assert diagnostics["entry"]["data"][CONF_NETWORK]["apn_username"] == "**REDACTED**"


async def test_a_stored_value_the_library_refuses_is_ignored(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    modem: EmulatedModem,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A stored setting that is no longer valid is logged and left out; the others apply."""
    entry = await setup_entry()
    assert await hass.config_entries.async_unload(entry.entry_id)
    hass.config_entries.async_update_entry(
        entry, data={**entry.data, CONF_NETWORK: {"bands": [99], "operator": "46001"}}
    )
    caplog.set_level(logging.WARNING)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert (modem.emulator.state.cops_mode, modem.emulator.state.bands) == (1, None)
    assert "the stored network setting bands is ignored: bands: band 99 is not supported" in caplog.text


async def test_options_change_still_reloads(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """Only the network settings are stored without a reload: changed options still reload the entry."""
    entry = await setup_entry()
    manager = entry.runtime_data
    await _call(hass, "set_operator", operator="auto")
    assert entry.runtime_data is manager
    hass.config_entries.async_update_entry(entry, options={"psm_handling": "fail"})
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not manager
    assert entry.data[CONF_NETWORK] == {"operator": "auto"}
