"""Setup, unload, reload, the device, the repair issue, and availability driven by emulator faults."""

from __future__ import annotations

from unittest.mock import patch

from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import EVENT_HOMEASSISTANT_STOP, STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_state_change_event
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.sim7020 as integration
from custom_components.sim7020 import port_busy_issue_id
from custom_components.sim7020.const import (
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_POLL_INTERVAL,
    CONF_PSM_HANDLING,
    DOMAIN,
    POLL_INTERVAL,
)
from sim7020_core import LinkState
from sim7020_core.emulator import Emulator

from .common import IMEI, entity_id, modem_device, state_of, wait_for
from .conftest import EmulatedModem, SetupEntry


async def test_setup_and_unload(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """The entry loads, registers the modem as a device, and closes the modem on unload."""
    entry = await setup_entry()
    device = modem_device(hass, entry)
    assert device.identifiers == {(DOMAIN, IMEI)}
    assert device.manufacturer == "SIMCOM_Ltd"
    assert device.model == "SIM7020E"
    assert device.sw_version == "1752B10SIM7020E"
    assert device.name == "SIM7020E"
    assert state_of(hass, "sensor", "registration") == "home"

    modem = entry.runtime_data.modem
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED
    assert modem.state is LinkState.CLOSED
    assert hass.states.get(entity_id(hass, "sensor", "registration")).state == STATE_UNAVAILABLE


async def test_options_change_reloads_once(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """Changing the options reloads the entry exactly once and hands the new PSM policy to the library."""
    entry = await setup_entry()
    first = entry.runtime_data
    assert first.modem.options.poll_interval == POLL_INTERVAL
    assert first.modem.options.psm_policy == "wait"
    with (
        patch.object(integration, "async_setup_entry", wraps=integration.async_setup_entry) as setups,
        patch.object(integration, "async_unload_entry", wraps=integration.async_unload_entry) as unloads,
    ):
        result = await hass.config_entries.options.async_init(entry.entry_id)
        result = await hass.config_entries.options.async_configure(
            result["flow_id"], {CONF_PSM_HANDLING: "fail", "allow_raw_at": False}
        )
        await hass.async_block_till_done()
    assert setups.call_count == 1
    assert unloads.call_count == 1
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data is not first
    assert entry.runtime_data.modem.options.psm_policy == "fail"
    assert first.modem.state is LinkState.CLOSED


async def test_old_poll_interval_option_is_dropped(hass: HomeAssistant, modem: EmulatedModem) -> None:
    """An entry from before the fixed poll interval (1.1) loses its poll_interval option, keeps the rest."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=IMEI,
        minor_version=1,
        data={CONF_DEVICE: modem.url, CONF_BAUDRATE: 115200},
        options={CONF_POLL_INTERVAL: 15, CONF_PSM_HANDLING: "fail"},
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert (entry.version, entry.minor_version) == (1, 2)
    assert entry.options == {CONF_PSM_HANDLING: "fail"}
    assert entry.runtime_data.modem.options.poll_interval == POLL_INTERVAL
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_entry_of_a_newer_version_is_not_loaded(hass: HomeAssistant, modem: EmulatedModem) -> None:
    """An entry written by a newer version of the integration (2.x) is left alone, not loaded."""
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=IMEI, version=2, data={CONF_DEVICE: modem.url, CONF_BAUDRATE: 115200}
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.MIGRATION_ERROR


async def test_setup_retries_when_nothing_answers(hass: HomeAssistant) -> None:
    """No modem behind the URL: the entry is retried later (ConfigEntryNotReady)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=IMEI, data={CONF_DEVICE: f"socket://127.0.0.1:{port}", CONF_BAUDRATE: 115200}
    )
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert ir.async_get(hass).async_get_issue(DOMAIN, port_busy_issue_id(entry)) is None


async def test_port_busy_raises_repair_issue(hass: HomeAssistant, modem: EmulatedModem) -> None:
    """A port held by another program (ModemManager) gives a repair issue, cleared once the port opens."""
    import serial

    pty = await modem.emulator.start_pty()
    entry = MockConfigEntry(domain=DOMAIN, unique_id=IMEI, data={CONF_DEVICE: pty, CONF_BAUDRATE: 115200})
    entry.add_to_hass(hass)
    holder = await hass.async_add_executor_job(lambda: serial.Serial(pty, exclusive=True))
    try:
        await hass.config_entries.async_setup(entry.entry_id)
        await hass.async_block_till_done()
    finally:
        await hass.async_add_executor_job(holder.close)
    assert entry.state is ConfigEntryState.SETUP_RETRY
    issue = ir.async_get(hass).async_get_issue(DOMAIN, port_busy_issue_id(entry))
    assert issue is not None
    assert issue.translation_key == "port_busy"
    assert issue.translation_placeholders == {"device": pty, "title": entry.title}

    # The other program let go: the retry succeeds and the issue disappears.
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert ir.async_get(hass).async_get_issue(DOMAIN, port_busy_issue_id(entry)) is None
    assert await hass.config_entries.async_unload(entry.entry_id)

    # Removing the entry removes a leftover issue too.
    ir.async_create_issue(
        hass,
        DOMAIN,
        port_busy_issue_id(entry),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key="port_busy",
        translation_placeholders={"device": pty, "title": entry.title},
    )
    await hass.config_entries.async_remove(entry.entry_id)
    assert ir.async_get(hass).async_get_issue(DOMAIN, port_busy_issue_id(entry)) is None


async def test_signal_drop(hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem) -> None:
    """A weaker signal shows up at the next poll (here a refresh of the coordinator)."""
    entry = await setup_entry()
    assert state_of(hass, "sensor", "signal_strength") == "-73"
    modem.emulator.set_signal(csq=5)
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert state_of(hass, "sensor", "signal_strength") == "-103"


async def test_detach_and_attach(hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem) -> None:
    """Losing the network is a state, not an outage: entities stay available and show it."""
    entry = await setup_entry()
    assert state_of(hass, "binary_sensor", "attached") == "on"
    modem.emulator.detach()
    # The registration URC is pushed at once; the attach state follows at the next poll.
    await wait_for(hass, lambda: state_of(hass, "sensor", "registration") != "home", "detach pushed")
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert state_of(hass, "binary_sensor", "attached") == "off"
    assert state_of(hass, "binary_sensor", "pdn_active") == "off"
    modem.emulator.attach()
    await wait_for(hass, lambda: state_of(hass, "sensor", "registration") == "home", "attach pushed")
    await entry.runtime_data.coordinator.async_refresh()
    await hass.async_block_till_done()
    assert state_of(hass, "binary_sensor", "attached") == "on"


async def test_psm_keeps_entities_available(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """In PSM the modem sleeps: entities keep their values and the PSM state says asleep."""
    entry = await setup_entry()
    assert state_of(hass, "sensor", "psm_state") == "awake"
    modem.emulator.enter_psm()
    await wait_for(hass, lambda: state_of(hass, "sensor", "psm_state") == "asleep", "PSM entered")
    assert state_of(hass, "sensor", "signal_strength") == "-73"
    assert state_of(hass, "binary_sensor", "pdn_active") != STATE_UNAVAILABLE
    # A refresh while asleep reports the last status instead of waking the module.
    coordinator = entry.runtime_data.coordinator
    await coordinator.async_refresh()
    assert coordinator.last_update_success
    assert state_of(hass, "sensor", "psm_state") == "asleep"
    modem.emulator.exit_psm()
    await wait_for(hass, lambda: state_of(hass, "sensor", "psm_state") == "awake", "PSM left")


async def test_reboot_goes_unavailable_and_back(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """A module reboot makes the entities unavailable while the library recovers, then they return."""
    await setup_entry()
    sensor = entity_id(hass, "sensor", "operator")
    seen: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None:
            seen.append(new.state)

    unsub = async_track_state_change_event(hass, [sensor], record)
    modem.emulator.reboot()
    await wait_for(hass, lambda: STATE_UNAVAILABLE in seen, "unavailable during the reboot")
    await wait_for(hass, lambda: hass.states.get(sensor).state == "CHN-UNICOM", "back after the reboot")
    unsub()


async def test_modem_gone_and_back(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """The link drops (modem gone): entities go unavailable; the library reconnects and they return."""
    entry = await setup_entry()
    port = int(modem.url.rsplit(":", 1)[1])
    await modem.emulator.stop()
    await wait_for(
        hass, lambda: state_of(hass, "sensor", "operator") == STATE_UNAVAILABLE, "unavailable after the drop"
    )
    assert state_of(hass, "binary_sensor", "attached") == STATE_UNAVAILABLE
    # A refresh meanwhile fails without touching the port (the library is reconnecting).
    await entry.runtime_data.coordinator.async_refresh()
    assert not entry.runtime_data.coordinator.last_update_success

    replacement = Emulator(imei=IMEI, registration_delay=0.0)
    await replacement.start_tcp("127.0.0.1", port)
    try:
        await wait_for(
            hass, lambda: state_of(hass, "sensor", "operator") == "CHN-UNICOM", "back after reconnect"
        )
    finally:
        await replacement.stop()


async def test_home_assistant_stop_closes_the_modem(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """When Home Assistant stops, the port is released (entries are not unloaded at shutdown)."""
    entry = await setup_entry()
    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert entry.runtime_data.modem.state is LinkState.CLOSED


async def test_setup_without_sim_retries(
    hass: HomeAssistant, entry: MockConfigEntry, modem: EmulatedModem
) -> None:
    """A modem whose SIM is gone (+CME ERROR: 10) is retried later, with the reason in the log."""
    modem.emulator.registry.register("+CPIN", lambda ctx, cmd: ctx.error(10), replace=True)
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert "SIM" in entry.reason


def _silence(emulator: Emulator, command: str, *, answered: int = 0) -> None:
    """Let the module answer ``command`` ``answered`` more times, then never again (a hung module)."""
    original = emulator.registry.lookup(command)
    assert original is not None
    calls = 0

    def handler(ctx, cmd):  # type: ignore[no-untyped-def]
        nonlocal calls
        calls += 1
        if calls <= answered:
            return original(ctx, cmd)

    emulator.registry.register(command, handler, replace=True)


async def test_setup_retries_when_the_first_status_fails(
    hass: HomeAssistant, entry: MockConfigEntry, modem: EmulatedModem
) -> None:
    """The module identifies itself but its status query goes unanswered: retried later, port released."""
    _silence(modem.emulator, "+CSQ", answered=1)  # the status read at connect
    entry.add_to_hass(hass)
    await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert "status" in entry.reason


async def test_unanswered_refresh_marks_entities_unavailable(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """A status read the module does not answer makes the entities unavailable until one works again."""
    entry = await setup_entry()
    _silence(modem.emulator, "+CSQ")
    coordinator = entry.runtime_data.coordinator
    await coordinator.async_refresh()
    await hass.async_block_till_done()
    assert not coordinator.last_update_success
    assert state_of(hass, "sensor", "operator") == STATE_UNAVAILABLE


async def test_restart_refused_while_asleep(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """With "fail at once" in PSM, pressing Restart while the module sleeps says why it did nothing."""
    import pytest
    from homeassistant.exceptions import HomeAssistantError

    await setup_entry({CONF_PSM_HANDLING: "fail"})
    modem.emulator.enter_psm()
    await wait_for(hass, lambda: state_of(hass, "sensor", "psm_state") == "asleep", "PSM entered")
    with pytest.raises(HomeAssistantError) as err:
        await hass.services.async_call(
            "button", "press", {"entity_id": entity_id(hass, "button", "restart")}, blocking=True
        )
    assert err.value.translation_key == "reboot_failed"
    modem.emulator.exit_psm()


async def test_modem_stays_open_when_a_platform_does_not_unload(
    hass: HomeAssistant, setup_entry: SetupEntry
) -> None:
    """If Home Assistant cannot unload the entities, the modem they read is not closed under them."""
    entry = await setup_entry()
    with patch.object(hass.config_entries, "async_unload_platforms", return_value=False):
        assert not await hass.config_entries.async_unload(entry.entry_id)
    assert entry.runtime_data.modem.state is LinkState.READY
    assert await integration.async_unload_entry(hass, entry)
    assert entry.runtime_data.modem.state is LinkState.CLOSED


async def test_unload_survives_a_failing_close(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """A port whose close fails (an adapter pulled out mid-way raises EIO) still unloads cleanly."""
    entry = await setup_entry()
    modem = entry.runtime_data.modem
    real_close = modem.close
    with patch.object(modem, "close", side_effect=OSError(5, "Input/output error")):
        assert await hass.config_entries.async_unload(entry.entry_id)
    assert entry.state is ConfigEntryState.NOT_LOADED
    await real_close()
