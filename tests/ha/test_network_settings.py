"""The network setting actions against the emulated module: ``sim7020.set_bands``, ``sim7020.set_operator``
and ``sim7020.set_dns_servers``, the sensors showing what is in effect, and the library's checks as
translated validation errors naming the field and the value, with nothing sent."""

from __future__ import annotations

from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from custom_components.sim7020.const import DOMAIN

from .common import state_of, wait_for
from .conftest import EmulatedModem, SetupEntry

#: The emulated module is a SIM7020E (application note, chapter 1) on a band 8 cell of the network 46001.
SIM7020E_BANDS = (1, 3, 5, 8, 20, 28)


async def _call(hass: HomeAssistant, service: str, **data: Any) -> None:
    await hass.services.async_call(DOMAIN, service, data, blocking=True)


def _registered(hass: HomeAssistant) -> bool:
    return state_of(hass, "sensor", "registration") == "home"


async def test_band_lock_reaches_the_module(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """The module is locked to the bands (the selector's strings too); the sensor shows the lock in effect,
    the module registers again; an empty list allows every band again."""
    await setup_entry()
    assert state_of(hass, "sensor", "band_lock") == "1, 3, 5, 8, 20, 28"
    await _call(hass, "set_bands", bands=["20", 8])
    assert modem.emulator.state.bands == (8, 20)
    await wait_for(hass, lambda: state_of(hass, "sensor", "band_lock") == "8, 20", "the band lock shown")
    await wait_for(hass, lambda: _registered(hass), "registration again")

    await _call(hass, "set_bands", bands=[])
    assert modem.emulator.state.bands == SIM7020E_BANDS
    await wait_for(hass, lambda: state_of(hass, "sensor", "band_lock") == "1, 3, 5, 8, 20, 28", "all bands")


async def test_a_band_lock_without_the_cells_band_leaves_the_module_searching(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Locked out of its cell's band the module does not find the network: registration says so."""
    await setup_entry()
    await _call(hass, "set_bands", bands=[20])
    await wait_for(hass, lambda: state_of(hass, "sensor", "registration") == "searching", "searching")


@pytest.mark.parametrize(
    ("bands", "words"),
    [
        ([2], "band 2 is not supported: a SIM7020E supports 1, 3, 5, 8, 20, 28"),
        (["eight"], "band 'eight' is not a band number"),
        ([8, 8], "lists a band twice"),
    ],
)
async def test_invalid_bands_are_refused_naming_the_value(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem, bands: list[Any], words: str
) -> None:
    """The library's check for the module's variant; the module keeps its bands."""
    await setup_entry()
    with pytest.raises(ServiceValidationError) as caught:
        await _call(hass, "set_bands", bands=bands)
    assert caught.value.translation_key == "invalid_value"
    assert caught.value.translation_placeholders is not None
    assert caught.value.translation_placeholders["field"] == "bands"
    assert str(caught.value).startswith("Invalid bands: ")
    assert words in str(caught.value)
    assert modem.emulator.state.bands is None


async def test_operator_selection_reaches_the_module(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """A numeric MCCMNC selects that network by hand, ``auto`` hands the choice back to the module; the
    sensor shows the selection."""
    await setup_entry()
    assert state_of(hass, "sensor", "operator_selection") == "unknown"
    await _call(hass, "set_operator", operator="46001")
    state = modem.emulator.state
    assert (state.cops_mode, state.cops_plmn) == (1, "46001")
    await wait_for(hass, lambda: state_of(hass, "sensor", "operator_selection") == "46001", "the selection")
    await wait_for(hass, lambda: _registered(hass), "registration again")

    await _call(hass, "set_operator", operator="auto")
    assert modem.emulator.state.cops_mode == 0
    await wait_for(hass, lambda: state_of(hass, "sensor", "operator_selection") == "auto", "automatic")


@pytest.mark.parametrize("operator", ["4600", "Vodafone", "46001x", "automatic"])
async def test_invalid_operator_is_refused_naming_the_value(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem, operator: str
) -> None:
    """Neither ``auto`` nor 5-6 digits: refused before anything is sent."""
    await setup_entry()
    with pytest.raises(ServiceValidationError) as caught:
        await _call(hass, "set_operator", operator=operator)
    assert caught.value.translation_key == "invalid_value"
    assert caught.value.translation_placeholders is not None
    assert caught.value.translation_placeholders["field"] == "operator"
    assert repr(operator) in str(caught.value)
    assert "'auto' or an MCCMNC of 5-6 digits" in str(caught.value)
    assert modem.emulator.state.cops_mode == 0


async def test_an_unavailable_network_is_the_modules_error(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """A well-formed MCCMNC of a network that is not there: the module's refusal, named."""
    await setup_entry()
    with pytest.raises(HomeAssistantError) as caught:
        await _call(hass, "set_operator", operator="26201")
    assert caught.value.translation_key == "command_failed"
    assert str(caught.value) == 'The modem answered +CME ERROR: 30 to AT+COPS=1,2,"26201"'


async def test_fallback_dns_used_when_the_network_hands_out_none(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """On a network without DNS servers the fallback is applied and shown; names resolve through it."""
    modem.emulator.set_network_dns(())
    await setup_entry()
    assert state_of(hass, "sensor", "dns_servers") == "unknown"
    await _call(hass, "set_dns_servers", servers=["9.9.9.9", " 1.1.1.1 "])
    assert modem.emulator.state.dns == ("9.9.9.9", "1.1.1.1")
    await wait_for(hass, lambda: state_of(hass, "sensor", "dns_servers") == "9.9.9.9, 1.1.1.1", "the servers")
    reply = await hass.services.async_call(
        DOMAIN, "dns_lookup", {"hostname": "example.com"}, blocking=True, return_response=True
    )
    assert reply == {"addresses": ["127.0.0.1"]}


async def test_fallback_dns_leaves_the_networks_servers(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """A network that hands out DNS servers keeps them: the fallback stays unused."""
    await setup_entry()
    await _call(hass, "set_dns_servers", servers=["9.9.9.9"])
    assert modem.emulator.state.dns is None
    assert state_of(hass, "sensor", "dns_servers") == "10.250.0.1, 10.250.0.2"


@pytest.mark.parametrize(
    ("servers", "words"),
    [
        (["1.2.3"], "server '1.2.3' must be an IPv4 address"),
        (["9.9.9.9", "1.1.1.1", "8.8.8.8"], "must list at most 2 servers"),
        (["0.0.0.0"], "must be a unicast IPv4 address"),
        (["2001:db8::1"], "must be an IPv4 address"),
    ],
)
async def test_invalid_dns_servers_are_refused_naming_the_value(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem, servers: list[str], words: str
) -> None:
    """The library's check; nothing is sent."""
    modem.emulator.set_network_dns(())
    await setup_entry()
    with pytest.raises(ServiceValidationError) as caught:
        await _call(hass, "set_dns_servers", servers=servers)
    assert caught.value.translation_key == "invalid_value"
    assert caught.value.translation_placeholders is not None
    assert caught.value.translation_placeholders["field"] == "servers"
    assert words in str(caught.value)
    assert modem.emulator.state.dns is None
