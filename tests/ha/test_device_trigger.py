"""Device triggers (data received, PSM entered, PSM exited) and YAML automations using them."""

from __future__ import annotations

from homeassistant.components import automation
from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.core import HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import (
    MockConfigEntry,
    async_capture_events,
    async_get_device_automations,
)

from custom_components.sim7020.const import DOMAIN

from .common import modem_device, wait_for
from .conftest import EmulatedModem, SetupEntry


async def test_get_triggers(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """The modem's device offers the three triggers."""
    device = modem_device(hass, await setup_entry())
    triggers = await async_get_device_automations(hass, DeviceAutomationType.TRIGGER, device.id)
    ours = sorted(trigger["type"] for trigger in triggers if trigger["domain"] == DOMAIN)
    assert ours == ["data_received", "psm_entered", "psm_exited"]
    for trigger in triggers:
        if trigger["domain"] == DOMAIN:
            assert trigger["device_id"] == device.id
            assert trigger["platform"] == "device"


async def test_no_triggers_for_other_devices(hass: HomeAssistant) -> None:
    """A device of another integration gets none of these triggers."""
    from custom_components.sim7020.device_trigger import async_get_triggers

    other = MockConfigEntry(domain="other")
    other.add_to_hass(hass)
    device = dr.async_get(hass).async_get_or_create(
        config_entry_id=other.entry_id, identifiers={("other", "1")}
    )
    assert await async_get_triggers(hass, device.id) == []
    assert await async_get_triggers(hass, "no-such-device") == []


async def test_psm_device_triggers(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Automations on "entered PSM" and "left PSM" run when the emulated module sleeps and wakes."""
    device = modem_device(hass, await setup_entry())
    fired = async_capture_events(hass, "sim7020_test_psm")
    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: [
                {
                    "alias": f"modem {kind}",
                    "trigger": {"platform": "device", "domain": DOMAIN, "device_id": device.id, "type": kind},
                    "action": {"event": "sim7020_test_psm", "event_data": {"kind": kind}},
                }
                for kind in ("psm_entered", "psm_exited")
            ]
        },
    )
    modem.emulator.enter_psm()
    await wait_for(hass, lambda: len(fired) == 1, "the psm_entered automation")
    assert fired[0].data == {"kind": "psm_entered"}
    modem.emulator.exit_psm()
    await wait_for(hass, lambda: len(fired) == 2, "the psm_exited automation")
    assert fired[1].data == {"kind": "psm_exited"}
