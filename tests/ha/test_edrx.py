"""eDRX from Home Assistant: the switch, the requested cycle (select) and the network's grant (sensors).

Against the emulated module, whose network grants another cycle than requested (``Emulator.set_grant``), as
real networks may: the select shows the request, the diagnostic sensors what the network granted
(``AT+CEDRXRDP``).
"""

from __future__ import annotations

import pytest
from homeassistant.components.select import ATTR_OPTION, SERVICE_SELECT_OPTION
from homeassistant.const import ATTR_ENTITY_ID, SERVICE_TURN_OFF, SERVICE_TURN_ON, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError

from custom_components.sim7020.select import EDRX_CYCLE_OPTIONS
from sim7020_core.netvalues import EDRX_CYCLE_VALUES, edrx_bits

from .common import entity_id, state_of, wait_for
from .conftest import EmulatedModem, SetupEntry

#: What the emulated network grants whatever is requested: an 81.92 s cycle.
GRANTED_CYCLE = "0101"


async def select_cycle(hass: HomeAssistant, option: str) -> None:
    await hass.services.async_call(
        "select",
        SERVICE_SELECT_OPTION,
        {ATTR_ENTITY_ID: entity_id(hass, "select", "edrx_cycle"), ATTR_OPTION: option},
        blocking=True,
    )


async def switch_edrx(hass: HomeAssistant, on: bool) -> None:
    await hass.services.async_call(
        "switch",
        SERVICE_TURN_ON if on else SERVICE_TURN_OFF,
        {ATTR_ENTITY_ID: entity_id(hass, "switch", "edrx")},
        blocking=True,
    )


def test_options_are_the_nbiot_cycles() -> None:
    """The select offers exactly the cycles NB-IoT allows, in seconds, ascending."""
    assert [float(option) for option in EDRX_CYCLE_OPTIONS] == list(EDRX_CYCLE_VALUES)
    assert EDRX_CYCLE_OPTIONS[0] == "20.48"
    assert EDRX_CYCLE_OPTIONS[-1] == "10485.76"


async def test_edrx_on_with_a_chosen_cycle_shows_the_grant(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """A cycle chosen while eDRX is off waits for the switch; turned on, the module gets it and the
    network's (different) grant and paging window are shown; turned off, the grant is gone."""
    emulator = modem.emulator
    emulator.set_grant(edrx=GRANTED_CYCLE)
    await setup_entry()
    assert state_of(hass, "switch", "edrx") == "off"
    assert state_of(hass, "sensor", "edrx_granted_cycle") == STATE_UNKNOWN
    assert state_of(hass, "sensor", "edrx_paging_time_window") == STATE_UNKNOWN

    await select_cycle(hass, "163.84")
    assert state_of(hass, "select", "edrx_cycle") == "163.84"
    assert emulator.state.edrx_mode == 0  # nothing sent while eDRX is off

    await switch_edrx(hass, True)
    assert emulator.state.edrx_mode == 1
    assert emulator.state.edrx_value == edrx_bits(163.84)
    assert state_of(hass, "switch", "edrx") == "on"
    assert state_of(hass, "select", "edrx_cycle") == "163.84"
    assert float(state_of(hass, "sensor", "edrx_granted_cycle")) == pytest.approx(81.92)
    assert float(state_of(hass, "sensor", "edrx_paging_time_window")) == pytest.approx(10.24)

    # With eDRX on, a changed cycle goes to the module at once.
    await select_cycle(hass, "20.48")
    assert emulator.state.edrx_value == edrx_bits(20.48)
    assert state_of(hass, "select", "edrx_cycle") == "20.48"

    await switch_edrx(hass, False)
    assert emulator.state.edrx_mode == 0
    assert state_of(hass, "switch", "edrx") == "off"
    assert state_of(hass, "sensor", "edrx_granted_cycle") == STATE_UNKNOWN


async def test_edrx_on_with_the_module_default(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Without a chosen cycle the switch asks for eDRX with the module's cycle; the network grants it."""
    await setup_entry()
    await switch_edrx(hass, True)
    assert modem.emulator.state.edrx_mode == 1
    assert state_of(hass, "sensor", "edrx_granted_cycle") != STATE_UNKNOWN


async def test_a_cycle_nbiot_does_not_have_is_refused(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Only the listed cycles are accepted; nothing reaches the module."""
    await setup_entry()
    await switch_edrx(hass, True)
    before = modem.emulator.state.edrx_value
    with pytest.raises(ServiceValidationError):
        await select_cycle(hass, "30")
    assert modem.emulator.state.edrx_value == before


async def test_edrx_change_while_asleep_with_fail_policy(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """The module sleeps and the options say not to wait: the change fails saying so."""
    entry = await setup_entry({"psm_handling": "fail"})
    await hass.services.async_call(
        "switch", SERVICE_TURN_ON, {ATTR_ENTITY_ID: entity_id(hass, "switch", "psm")}, blocking=True
    )
    modem.emulator.enter_psm()

    await wait_for(hass, lambda: entry.runtime_data.asleep, "the module asleep")
    with pytest.raises(HomeAssistantError) as caught:
        await switch_edrx(hass, True)
    assert caught.value.translation_key == "modem_asleep"
    assert state_of(hass, "switch", "edrx") == "off"
    modem.emulator.exit_psm()
