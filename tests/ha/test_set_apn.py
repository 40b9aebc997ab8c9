"""The ``sim7020.set_apn`` action against the emulated module: the APN reaches the module, and values the
library's checks refuse give a translated validation error naming the field, with nothing sent."""

from __future__ import annotations

from typing import Any

import pytest
import voluptuous as vol
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError

from custom_components.sim7020.const import DOMAIN

from .common import state_of, wait_for
from .conftest import EmulatedModem, SetupEntry


async def _set_apn(hass: HomeAssistant, **data: Any) -> None:
    await hass.services.async_call(DOMAIN, "set_apn", data, blocking=True)


async def test_set_apn_reaches_the_module(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """The module takes the APN and credentials; it registers again and the APN sensor shows it."""
    await setup_entry()
    await _set_apn(hass, apn="nbiot.example", username="user", password="secret", pdp_type="IPV4V6")
    state = modem.emulator.state
    assert (state.apn, state.apn_user, state.apn_password, state.pdp_type) == (
        "nbiot.example",
        "user",
        "secret",
        "IPV4V6",
    )
    await wait_for(hass, lambda: state_of(hass, "sensor", "apn") == "nbiot.example", "the new APN")
    await wait_for(hass, lambda: state_of(hass, "sensor", "registration") == "home", "registration again")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"apn": 'iot"\r\nAT+CFUN=0'}, "apn"),
        ({"apn": "a" * 101}, "apn"),
        ({"apn": "iot..example"}, "apn"),
        ({"apn": "iot", "username": "us\ner", "password": "x"}, "username"),
        ({"apn": "iot", "username": "user", "password": 'pa"ss'}, "password"),
    ],
)
async def test_invalid_values_are_refused_naming_the_field(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem, data: dict[str, Any], field: str
) -> None:
    """The library's checks, as a translated validation error; the module keeps its APN."""
    await setup_entry()
    before = modem.emulator.state.apn
    with pytest.raises(ServiceValidationError) as caught:
        await _set_apn(hass, **data)
    assert caught.value.translation_key == "invalid_setting"
    assert caught.value.translation_placeholders is not None
    assert caught.value.translation_placeholders["field"] == field
    assert str(caught.value).startswith(f"Invalid {field}: it must")
    assert modem.emulator.state.apn == before


async def test_credentials_come_in_pairs(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """A user name without a password (or the reverse) is refused before anything is sent."""
    await setup_entry()
    with pytest.raises(ServiceValidationError) as caught:
        await _set_apn(hass, apn="iot", username="user")
    assert caught.value.translation_key == "credentials_incomplete"
    assert modem.emulator.state.apn_user == ""


async def test_unknown_pdp_type_is_refused(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """The PDP type is one of the module's."""
    await setup_entry()
    with pytest.raises(vol.Invalid):
        await _set_apn(hass, apn="iot", pdp_type="X25")
