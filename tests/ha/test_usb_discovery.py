"""USB discovery through Home Assistant's own usb component and the manifest's matchers.

Home Assistant matches a plugged-in USB serial device against every integration's ``usb`` matchers and
starts a discovery flow for each match. A SIM7020 reaches USB only through a generic USB-UART bridge that
keeps its chip's factory strings; Zigbee and Thread sticks on the very same chips carry their own product
strings. Only the port scan is replaced here (USB hardware cannot exist in a test); the matching, the
flow start and our manifest's matchers are Home Assistant's and ours, unchanged.
"""

from __future__ import annotations

import dataclasses
from typing import Any
from unittest.mock import patch

import pytest
from homeassistant.components import usb
from homeassistant.const import EVENT_HOMEASSISTANT_STARTED
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component

from custom_components.sim7020.const import DOMAIN

#: name: (vid, pid, manufacturer, product string) as the devices report them.
DEVICES: dict[str, tuple[str, str, str | None, str]] = {
    # SIM7020 boards: the bridge chip's factory strings (docs/home-assistant.md, "USB discovery").
    "cp2102 bridge": ("10C4", "EA60", "Silicon Labs", "CP2102 USB to UART Bridge Controller"),
    "cp2102n bridge": ("10C4", "EA60", "Silicon Labs", "CP2102N USB to UART Bridge Controller"),
    "ch340 bridge": ("1A86", "7523", None, "USB Serial"),
    "ch343 bridge": ("1A86", "55D3", "wch.cn", "USB Single Serial"),
    "ft232r bridge": ("0403", "6001", "FTDI", "FT232R USB UART"),
    # Zigbee/Thread sticks on the same chips (their strings as Home Assistant's own manifests match them).
    "sonoff zbdongle-p": ("10C4", "EA60", "ITead", "Sonoff Zigbee 3.0 USB Dongle Plus"),
    "sonoff zbdongle-e": ("1A86", "55D4", "ITead", "Sonoff Zigbee 3.0 USB Dongle Plus V2"),
    "skyconnect": ("10C4", "EA60", "Nabu Casa", "SkyConnect v1.0"),
    "connect zbt-1": ("10C4", "EA60", "Nabu Casa", "Home Assistant Connect ZBT-1"),
    "conbee ii": ("1CF1", "0030", "dresden elektronik ingenieurtechnik GmbH", "ConBee II"),
}


def usb_device(name: str) -> Any:
    """The usb component's record of one plugged-in device (its fields differ between HA versions)."""
    from homeassistant.components.usb.models import USBDevice

    vid, pid, manufacturer, description = DEVICES[name]
    values = {
        "device": f"/dev/serial/by-id/usb-{name.replace(' ', '_')}-if00-port0",
        "vid": vid,
        "pid": pid,
        "serial_number": "0001",
        "manufacturer": manufacturer,
        "description": description,
    }
    fields = {field.name for field in dataclasses.fields(USBDevice)}
    extra = {"resolved_device": values["device"]}
    return USBDevice(**{name: values.get(name, extra.get(name)) for name in fields})


async def discovered_domains(hass: HomeAssistant, name: str) -> set[str]:
    """The integrations whose discovery flow Home Assistant starts when device ``name`` is plugged in."""
    started: list[str] = []
    with (
        patch.object(usb, "scan_serial_ports", return_value=[usb_device(name)]),
        patch.object(
            usb.discovery_flow,
            "async_create_flow",
            side_effect=lambda hass, domain, context, data, **kwargs: started.append(domain),
        ),
    ):
        assert await async_setup_component(hass, "usb", {"usb": {}})
        hass.bus.async_fire(EVENT_HOMEASSISTANT_STARTED)
        await hass.async_block_till_done()
    return set(started)


@pytest.mark.parametrize(
    "name", ["cp2102 bridge", "cp2102n bridge", "ch340 bridge", "ch343 bridge", "ft232r bridge"]
)
async def test_bridge_with_factory_strings_is_offered(hass: HomeAssistant, name: str) -> None:
    """A USB-UART bridge as SIM7020 boards carry it starts a SIM7020 discovery flow."""
    assert DOMAIN in await discovered_domains(hass, name)


@pytest.mark.parametrize(
    "name", ["sonoff zbdongle-p", "sonoff zbdongle-e", "skyconnect", "connect zbt-1", "conbee ii"]
)
async def test_zigbee_sticks_on_the_same_chips_are_not(hass: HomeAssistant, name: str) -> None:
    """A Zigbee stick on the same bridge chip never starts a SIM7020 flow."""
    assert DOMAIN not in await discovered_domains(hass, name)
