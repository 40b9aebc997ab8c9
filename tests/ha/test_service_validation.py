"""What the actions would put inside an AT command is checked in the action's schema (issue 13, case 4):
a host or AT command with a line break or a quote is refused naming the field, before the modem is asked;
a raw command the library's allow-list refuses says why (case 5)."""

from __future__ import annotations

from typing import Any

import pytest
import voluptuous as vol
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError

from custom_components.sim7020.const import CONF_ALLOW_RAW_AT, DOMAIN

from .conftest import SetupEntry


async def _call(hass: HomeAssistant, service: str, data: dict[str, Any]) -> Any:
    return await hass.services.async_call(DOMAIN, service, data, blocking=True, return_response=True)


@pytest.mark.parametrize(
    ("service", "data", "field"),
    [
        ("dns_lookup", {"hostname": 'example.com"\r\nAT+CFUN=0'}, "hostname"),
        ("ping", {"host": "a b"}, "host"),
        ("send", {"host": "h\nx", "port": 5683, "protocol": "udp", "payload": "x"}, "host"),
    ],
)
async def test_a_host_the_module_cannot_take_is_refused_naming_the_field(
    hass: HomeAssistant, setup_entry: SetupEntry, service: str, data: dict[str, Any], field: str
) -> None:
    await setup_entry()
    with pytest.raises(vol.Invalid) as err:
        await _call(hass, service, data)
    assert "must be a host name or IP address" in str(err.value)
    assert err.value.path == [field]  # the field it names (HA words the message differently across releases)


async def test_an_at_command_with_a_line_break_is_refused_naming_the_field(
    hass: HomeAssistant, setup_entry: SetupEntry
) -> None:
    await setup_entry({CONF_ALLOW_RAW_AT: True})
    with pytest.raises(vol.Invalid) as err:
        await _call(hass, "at_command", {"command": "AT+CSQ\r\nAT+CFUN=0"})
    assert "control characters" in str(err.value)
    assert err.value.path == ["command"]


async def test_a_raw_command_the_allow_list_refuses_says_what_to_use(
    hass: HomeAssistant, setup_entry: SetupEntry
) -> None:
    await setup_entry({CONF_ALLOW_RAW_AT: True})
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "at_command", {"command": 'AT+CPSMS=1,,,"00000001","00000001"'})
    assert err.value.translation_key == "command_not_allowed"
    assert "Modem.set_psm()" in str(err.value)
