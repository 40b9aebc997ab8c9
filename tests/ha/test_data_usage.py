"""Data usage in Home Assistant: the data sent and data received sensors, against the emulated module and a
real loopback peer.

The library counts payload bytes and keeps them in the entry's usage file (``<config>/.storage``); these
tests check what a user sees: the exact payload bytes, totals that survive a restart of Home Assistant (entry
reload, Home Assistant stopping) and a reboot of the module, and no file left behind when the entry is
deleted.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import ATTR_UNIT_OF_MEASUREMENT, EVENT_HOMEASSISTANT_STOP, STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.sim7020 import usage_file_path
from custom_components.sim7020.const import CONF_LISTEN_PORT, DOMAIN, EVENT_DATA_RECEIVED
from sim7020_core import LinkState
from sim7020_core.emulator.peers import UdpPeer

from .common import entity_id, state_of, wait_for
from .conftest import EmulatedModem, SetupEntry
from .test_automation import doc_example


@pytest.fixture
async def udp_echo() -> AsyncGenerator[UdpPeer]:
    """A UDP peer answering ``echo:<data>``."""
    peer = await UdpPeer(lambda data: b"echo:" + data).start()
    yield peer
    peer.close()


def usage_bytes(hass: HomeAssistant, key: str) -> int:
    """The bytes a usage sensor shows (its state is in kB, the suggested display unit)."""
    state = hass.states.get(entity_id(hass, "sensor", key))
    assert state is not None
    assert state.attributes[ATTR_UNIT_OF_MEASUREMENT] == "kB"
    value = Decimal(state.state) * 1000
    assert value == int(value), state.state
    return int(value)


def usage(hass: HomeAssistant) -> tuple[int, int]:
    """(data sent, data received) as the sensors show them, in bytes."""
    return usage_bytes(hass, "data_sent"), usage_bytes(hass, "data_received")


async def wait_for_usage(hass: HomeAssistant, expected: tuple[int, int]) -> None:
    """Wait until the sensors show ``expected`` (the library announces usage at most once a second)."""
    await wait_for(hass, lambda: usage(hass) == expected, f"data usage {expected}")


async def send(hass: HomeAssistant, peer: UdpPeer, payload: str, **extra: Any) -> dict[str, Any]:
    """``sim7020.send`` ``payload`` to ``peer`` and wait for its echo."""
    response = await hass.services.async_call(
        DOMAIN,
        "send",
        {
            "host": "127.0.0.1",
            "port": peer.port,
            "protocol": "udp",
            "payload": payload,
            "wait_response": True,
            **extra,
        },
        blocking=True,
        return_response=True,
    )
    assert isinstance(response, dict)
    assert response["response"] is not None
    return response


def stored(path: Path) -> tuple[int, int]:
    """(sent, received) in the usage file."""
    record = json.loads(path.read_text())
    return record["sent_bytes"], record["received_bytes"]


async def test_sensors_count_the_payload_bytes(
    hass: HomeAssistant, setup_entry: SetupEntry, udp_echo: UdpPeer
) -> None:
    """The sensors start at zero and show exactly the payload bytes sent and received, not the AT command
    bytes nor the hex text; they are total_increasing data sizes."""
    await setup_entry()
    assert usage(hass) == (0, 0)
    sent_state = hass.states.get(entity_id(hass, "sensor", "data_sent"))
    assert sent_state is not None
    assert sent_state.attributes["state_class"] == "total_increasing"
    assert sent_state.attributes["device_class"] == "data_size"

    await send(hass, udp_echo, "hello")  # 5 bytes out, "echo:hello" (10) back
    await wait_for_usage(hass, (5, 10))
    await send(hass, udp_echo, "00 01 ff", encoding="hex")  # 3 bytes out, 8 back
    await wait_for_usage(hass, (8, 18))


async def test_server_clients_are_counted(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Data of a client of the module's TCP server (option listen port) counts too."""
    entry = await setup_entry({CONF_LISTEN_PORT: 7000})
    await wait_for(hass, lambda: entry.runtime_data.server is not None, "the module's TCP server")
    events = async_capture_events(hass, EVENT_DATA_RECEIVED)
    reader, writer = await asyncio.open_connection(*modem.emulator.server_address(7000))
    try:
        writer.write(b"hello modem")
        await writer.drain()
        await wait_for(hass, lambda: len(events) == 1, "the client's data")
        await hass.services.async_call(
            DOMAIN, "send", {"client_id": events[0].data["client_id"], "payload": "welcome"}, blocking=True
        )
        async with asyncio.timeout(5):
            assert await reader.read(100) == b"welcome"
        await wait_for_usage(hass, (7, 11))
    finally:
        writer.close()
        await writer.wait_closed()


async def test_totals_survive_a_restart(
    hass: HomeAssistant, setup_entry: SetupEntry, udp_echo: UdpPeer
) -> None:
    """Home Assistant stopping writes the totals to the entry's usage file in .storage; the modem set up again
    (a restart, or a reload) starts from them and counts on."""
    entry = await setup_entry()
    path = usage_file_path(hass, entry)
    assert path.parent == Path(hass.config.path(".storage"))
    await send(hass, udp_echo, "hello")
    await wait_for_usage(hass, (5, 10))

    hass.bus.async_fire(EVENT_HOMEASSISTANT_STOP)
    await hass.async_block_till_done()
    assert entry.runtime_data.modem.state is LinkState.CLOSED
    assert stored(path) == (5, 10)

    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED
    assert usage(hass) == (5, 10)
    await send(hass, udp_echo, "again")
    await wait_for_usage(hass, (10, 20))

    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert usage(hass) == (10, 20)
    assert stored(path) == (10, 20)


async def test_totals_continue_across_a_module_reboot(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem, udp_echo: UdpPeer
) -> None:
    """A reboot of the module (which resets its own counters) leaves the totals as they are, and they stay
    available while the library recovers the module; data sent afterwards adds to them."""
    await setup_entry()
    await send(hass, udp_echo, "hello")
    await wait_for_usage(hass, (5, 10))
    sent, operator = entity_id(hass, "sensor", "data_sent"), entity_id(hass, "sensor", "operator")
    seen: dict[str, list[str]] = {sent: [], operator: []}

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None:
            seen[new.entity_id].append(new.state)

    unsub = async_track_state_change_event(hass, [sent, operator], record)
    modem.emulator.reboot()
    await wait_for(hass, lambda: STATE_UNAVAILABLE in seen[operator], "the modem unavailable in the reboot")
    assert usage(hass) == (5, 10)  # still shown while the module is being recovered
    await wait_for(hass, lambda: state_of(hass, "sensor", "operator") == "CHN-UNICOM", "the modem back")
    unsub()
    assert STATE_UNAVAILABLE not in seen[sent]
    assert usage(hass) == (5, 10)

    await send(hass, udp_echo, "after reboot")  # 12 bytes out, 17 back
    await wait_for_usage(hass, (17, 27))


async def test_a_kept_usage_file_is_picked_up(
    hass: HomeAssistant, setup_entry: SetupEntry, entry: Any
) -> None:
    """Totals already in the entry's usage file (from before a restart) are what the sensors show at setup."""
    path = usage_file_path(hass, entry)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"format": 1, "sent_bytes": 123456, "received_bytes": 7890123}))
    await setup_entry()
    assert usage(hass) == (123456, 7890123)


async def test_usage_file_removed_with_the_entry(
    hass: HomeAssistant, setup_entry: SetupEntry, udp_echo: UdpPeer
) -> None:
    """Deleting the entry deletes its usage file (and a corrupt one the library had kept aside); unloading
    alone keeps it."""
    entry = await setup_entry()
    path = usage_file_path(hass, entry)
    corrupt = path.with_name(path.name + ".corrupt")
    corrupt.write_text("{")
    await send(hass, udp_echo, "hello")
    await wait_for_usage(hass, (5, 10))

    assert await hass.config_entries.async_unload(entry.entry_id)
    assert stored(path) == (5, 10)
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert not path.exists()
    assert not corrupt.exists()


# utility_meter schedules its next reset (the 1st of next month) and leaves it behind when the test ends.
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_utility_meter_example(hass: HomeAssistant, setup_entry: SetupEntry, udp_echo: UdpPeer) -> None:
    """The utility_meter example of docs/home-assistant.md meters what is sent and received."""
    await setup_entry()
    config = doc_example("utility-meter")
    for meter in config["utility_meter"].values():
        assert hass.states.get(meter["source"]) is not None, meter["source"]
    assert await async_setup_component(hass, "utility_meter", config)
    await hass.async_block_till_done()
    await send(hass, udp_echo, "hello")
    await wait_for_usage(hass, (5, 10))
    await wait_for(
        hass,
        lambda: (
            Decimal(hass.states.get("sensor.modem_data_sent_monthly").state) == Decimal("0.005")
            and Decimal(hass.states.get("sensor.modem_data_received_monthly").state) == Decimal("0.010")
        ),
        "the monthly meters",
    )


async def test_entry_removed_when_its_usage_file_cannot_be(
    hass: HomeAssistant, setup_entry: SetupEntry, caplog: pytest.LogCaptureFixture
) -> None:
    """A file that cannot be deleted (here a directory where the corrupt copy would be) is logged; the entry
    and the usage file are removed all the same."""
    entry = await setup_entry()
    path = usage_file_path(hass, entry)
    blocker = path.with_name(path.name + ".corrupt")
    blocker.mkdir()
    path.write_text(json.dumps({"format": 1, "sent_bytes": 1, "received_bytes": 2}))
    await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert hass.config_entries.async_get_entry(entry.entry_id) is None
    assert not path.exists()
    assert f"Could not remove the data usage file {blocker}" in caplog.text
