"""Power saving from Home Assistant: the PSM switch, the requested timers and the network's grant.

Against the emulated module, whose network grants other timers than requested (``Emulator.set_grant``), as
real networks do: the numbers show the request, the diagnostic sensors what the network granted.
"""

from __future__ import annotations

import pytest
from homeassistant.components.number import ATTR_VALUE, SERVICE_SET_VALUE
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from sim7020_core.psm import encode_t3324, encode_t3412

from .common import entity_id, state_of, wait_for
from .conftest import EmulatedModem, SetupEntry

#: What the emulated network grants whatever is requested: periodic TAU 2 h, Active-Time 2 min.
GRANTED_TAU = "00100010"  # unit 1 h, value 2
GRANTED_ACTIVE = "00100010"  # unit 1 min, value 2


async def _set_number(hass: HomeAssistant, key: str, value: float) -> None:
    await hass.services.async_call(
        "number",
        SERVICE_SET_VALUE,
        {ATTR_ENTITY_ID: entity_id(hass, "number", key), ATTR_VALUE: value},
        blocking=True,
    )


async def _switch(hass: HomeAssistant, on: bool) -> None:
    await hass.services.async_call(
        "switch",
        SERVICE_TURN_ON if on else SERVICE_TURN_OFF,
        {ATTR_ENTITY_ID: entity_id(hass, "switch", "psm")},
        blocking=True,
    )


@pytest.mark.usefixtures("entity_registry_enabled_by_default")
async def test_psm_on_with_chosen_timers_shows_the_grant(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Timers chosen while PSM is off wait for the switch; turned on, the module gets them and the
    network's (different) grant is shown; turned off, the grant is gone."""
    emulator = modem.emulator
    emulator.set_grant(periodic_tau=GRANTED_TAU, active_time=GRANTED_ACTIVE)
    await setup_entry()
    assert state_of(hass, "switch", "psm") == "off"
    assert state_of(hass, "binary_sensor", "psm_granted") == "off"
    assert state_of(hass, "sensor", "psm_granted_tau") == STATE_UNKNOWN

    await _set_number(hass, "psm_tau", 3600)
    await _set_number(hass, "psm_active_time", 60)
    assert state_of(hass, "number", "psm_tau") == "3600"
    assert state_of(hass, "number", "psm_active_time") == "60"
    assert emulator.state.psm_mode == 0  # nothing sent while PSM is off

    await _switch(hass, True)
    assert emulator.state.psm_mode == 1
    assert (emulator.state.psm_tau, emulator.state.psm_active) == (encode_t3412(3600), encode_t3324(60))
    assert state_of(hass, "switch", "psm") == "on"
    assert state_of(hass, "number", "psm_tau") == "3600"
    assert state_of(hass, "number", "psm_active_time") == "60"
    assert state_of(hass, "binary_sensor", "psm_granted") == "on"
    assert state_of(hass, "sensor", "psm_granted_tau") == "7200"
    assert state_of(hass, "sensor", "psm_granted_active_time") == "120"

    # With PSM on, a changed timer goes to the module at once (rounded up to what the module can encode).
    await _set_number(hass, "psm_active_time", 100)
    assert emulator.state.psm_active == encode_t3324(100)
    assert state_of(hass, "number", "psm_active_time") == "120"  # 2 min: the next encodable value

    await _switch(hass, False)
    assert emulator.state.psm_mode == 0
    assert state_of(hass, "switch", "psm") == "off"
    assert state_of(hass, "binary_sensor", "psm_granted") == "off"
    assert state_of(hass, "sensor", "psm_granted_active_time") == STATE_UNKNOWN


async def test_psm_on_with_the_module_defaults(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Without chosen timers the switch asks for PSM with the timers the module holds; the grant is shown."""
    await setup_entry()
    await _switch(hass, True)
    assert modem.emulator.state.psm_mode == 1
    await wait_for(hass, lambda: state_of(hass, "binary_sensor", "psm_granted") == "on", "the grant")


async def test_timer_out_of_range_is_refused(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """The numbers accept what PSM timers can encode (Active-Time at most 3 h 6 min)."""
    await setup_entry()
    with pytest.raises(ServiceValidationError):
        await _set_number(hass, "psm_active_time", 11161)
    assert modem.emulator.state.psm_mode == 0


async def test_psm_change_while_asleep_with_fail_policy(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """The module sleeps and the options say not to wait: turning PSM off fails saying so."""
    entry = await setup_entry({"psm_handling": "fail"})
    await _switch(hass, True)
    modem.emulator.enter_psm()
    await wait_for(hass, lambda: entry.runtime_data.asleep, "the module asleep")
    with pytest.raises(HomeAssistantError) as caught:
        await _switch(hass, False)
    assert caught.value.translation_key == "modem_asleep"
    assert state_of(hass, "switch", "psm") == "on"
    modem.emulator.exit_psm()
