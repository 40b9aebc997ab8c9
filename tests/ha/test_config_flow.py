"""Config flow: every branch, against a real emulated modem (only the USB port listing is patched)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any
from unittest.mock import patch

import pytest
import serial
from homeassistant import config_entries
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.usb import UsbServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry
from serial.tools.list_ports_common import ListPortInfo

from custom_components.sim7020.config_flow import CONF_MANUAL_PATH
from custom_components.sim7020.const import (
    CONF_ALLOW_RAW_AT,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_LISTEN_PORT,
    CONF_MQTT_TOPIC,
    CONF_PSM_HANDLING,
    DOMAIN,
)
from sim7020_core.emulator import Emulator
from sim7020_core.emulator.base import ModemContext, ParsedCommand

from .common import IMEI, unload_mqtt
from .conftest import EmulatedModem


def _port(device: str, serial_number: str = "0001") -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.serial_number = serial_number
    info.manufacturer = "Silicon Labs"
    info.description = "CP2102 USB to UART Bridge Controller"
    info.vid = 0x10C4
    info.pid = 0xEA60
    return info


@pytest.fixture
def ports() -> Iterator[list[ListPortInfo]]:
    """The serial ports the flow lists (USB adapters cannot exist here, so the listing is patched)."""
    listed: list[ListPortInfo] = []
    with patch("serial.tools.list_ports.comports", return_value=listed):
        yield listed


@pytest.fixture(autouse=True)
async def _no_setup_after_flow(hass: HomeAssistant) -> AsyncIterator[None]:
    """The flow tests stop at the entry: setting it up is covered by test_init."""
    with (
        patch("custom_components.sim7020.async_setup_entry", return_value=True),
        patch("custom_components.sim7020.async_unload_entry", return_value=True),
    ):
        yield
        for entry in hass.config_entries.async_loaded_entries(DOMAIN):
            await hass.config_entries.async_unload(entry.entry_id)


async def _closed_port_url() -> str:
    """A socket:// URL where nothing listens (connection refused)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"socket://127.0.0.1:{port}"


async def test_user_without_ports_goes_to_manual(
    hass: HomeAssistant, ports: list[ListPortInfo], modem: EmulatedModem
) -> None:
    """No serial port found: the flow asks for a path or URL and creates the entry keyed by IMEI."""
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: f"  {modem.url} ", CONF_BAUDRATE: 115200}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"].startswith("SIM7020")
    assert result["title"].endswith(IMEI[-4:])
    assert result["data"] == {CONF_DEVICE: modem.url, CONF_BAUDRATE: 115200}
    assert result["result"].unique_id == IMEI


async def test_user_picks_a_listed_port(
    hass: HomeAssistant, ports: list[ListPortInfo], modem: EmulatedModem
) -> None:
    """A listed port (here the emulator's real pty) is shown with its USB identity and probed."""
    pty = await modem.emulator.start_pty()
    ports.append(_port(pty))
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    labels = result["data_schema"].schema[CONF_DEVICE].container
    assert pty in labels
    assert "Silicon Labs" in labels[pty]
    assert CONF_MANUAL_PATH in labels

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: pty, CONF_BAUDRATE: 115200}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_DEVICE: pty, CONF_BAUDRATE: 115200}


async def test_user_port_error_then_manual(
    hass: HomeAssistant, ports: list[ListPortInfo], modem: EmulatedModem, tmp_path: object
) -> None:
    """A listed port that answers nothing shows cannot_connect; "enter manually" leads to the URL step."""
    ports.append(_port("/dev/ttyNOSUCHSIM7020"))
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: "/dev/ttyNOSUCHSIM7020", CONF_BAUDRATE: 9600}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {"base": "cannot_connect"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: CONF_MANUAL_PATH, CONF_BAUDRATE: 115200}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "manual"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: modem.url, CONF_BAUDRATE: 115200}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_configured_port_is_not_listed(
    hass: HomeAssistant, ports: list[ListPortInfo], modem: EmulatedModem
) -> None:
    """A port already used by an entry is left out; with no other port the manual step is shown."""
    MockConfigEntry(domain=DOMAIN, unique_id="other", data={CONF_DEVICE: "/dev/ttyUSB7"}).add_to_hass(hass)
    ports.append(_port("/dev/ttyUSB7"))
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert result["step_id"] == "manual"


async def test_manual_cannot_connect_then_recovers(
    hass: HomeAssistant, ports: list[ListPortInfo], modem: EmulatedModem
) -> None:
    """Nothing listening: cannot_connect, the typed value is kept, and a good URL then succeeds."""
    bad = await _closed_port_url()
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: bad, CONF_BAUDRATE: 115200}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": "cannot_connect"}
    schema_keys = {str(key): key for key in result["data_schema"].schema}
    assert schema_keys[CONF_DEVICE].description == {"suggested_value": bad}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: modem.url, CONF_BAUDRATE: 115200}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY


async def test_manual_port_busy(hass: HomeAssistant, ports: list[ListPortInfo], modem: EmulatedModem) -> None:
    """A port held by another program (as ModemManager would) is reported as port_busy."""
    pty = await modem.emulator.start_pty()
    holder = await hass.async_add_executor_job(lambda: serial.Serial(pty, exclusive=True))
    try:
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_USER}
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_DEVICE: pty, CONF_BAUDRATE: 115200}
        )
    finally:
        await hass.async_add_executor_job(holder.close)
    assert result["errors"] == {"base": "port_busy"}


async def test_manual_not_sim7020(hass: HomeAssistant, ports: list[ListPortInfo]) -> None:
    """A module of another family answers: not_sim7020."""
    emulator = Emulator(model="SIM800L", registration_delay=0.0)
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    try:
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_USER}
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_DEVICE: f"socket://{host}:{port}", CONF_BAUDRATE: 115200}
        )
    finally:
        await emulator.stop()
    assert result["errors"] == {"base": "not_sim7020"}


@pytest.mark.parametrize(
    ("command", "cme"),
    [
        ("+CPIN", 10),  # +CME ERROR: 10, SIM not inserted: the library raises SimError
        ("+CIMI", None),  # plain ERROR to CIMI and CCID: no SIM identity at all
    ],
)
async def test_manual_sim_missing(
    hass: HomeAssistant, ports: list[ListPortInfo], command: str, cme: int | None
) -> None:
    """A module without a usable SIM card: sim_missing."""
    emulator = Emulator(registration_delay=0.0)

    def refuse(ctx: ModemContext, cmd: ParsedCommand) -> None:
        ctx.error(cme)

    emulator.registry.register(command, refuse, replace=True)
    if command == "+CIMI":
        emulator.registry.register("+CCID", refuse, replace=True)
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    try:
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_USER}
        )
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_DEVICE: f"socket://{host}:{port}", CONF_BAUDRATE: 115200}
        )
    finally:
        await emulator.stop()
    assert result["errors"] == {"base": "sim_missing"}


async def test_same_modem_on_new_port_updates_entry(
    hass: HomeAssistant, ports: list[ListPortInfo], modem: EmulatedModem
) -> None:
    """The same IMEI found on another port aborts as already configured and moves the entry there."""
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=IMEI, data={CONF_DEVICE: "/dev/ttyUSB0", CONF_BAUDRATE: 115200}
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: modem.url, CONF_BAUDRATE: 57600}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == {CONF_DEVICE: modem.url, CONF_BAUDRATE: 57600}


async def test_configured_url_aborts_without_probing(hass: HomeAssistant, ports: list[ListPortInfo]) -> None:
    """Typing the URL of a configured entry aborts at once (the port is in use by that entry)."""
    MockConfigEntry(domain=DOMAIN, unique_id=IMEI, data={CONF_DEVICE: "socket://127.0.0.1:1"}).add_to_hass(
        hass
    )
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: "socket://127.0.0.1:1", CONF_BAUDRATE: 115200}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"


def _usb_info(device: str) -> UsbServiceInfo:
    return UsbServiceInfo(
        device=device,
        vid="10C4",
        pid="EA60",
        serial_number="0001",
        manufacturer="Silicon Labs",
        description="CP2102 USB to UART Bridge Controller",
    )


def _record_rx(emulator: Emulator) -> list[bytes]:
    """Everything the emulated module receives from now on."""
    received: list[bytes] = []
    emulator.add_transcript_listener(
        lambda direction, data: received.append(data) if direction == "rx" else None
    )
    return received


async def test_usb_discovery_identifies_then_confirms(hass: HomeAssistant, modem: EmulatedModem) -> None:
    """A discovered bridge is probed at once; the user is asked about the modem found, then it is added."""
    pty = await modem.emulator.start_pty()
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USB}, data=_usb_info(pty)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "usb_confirm"
    assert result["description_placeholders"]["name"].startswith(f"SIM7020E {IMEI[-4:]}")

    # A second discovery of the same modem while the first flow is open is dropped.
    second = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USB}, data=_usb_info(pty)
    )
    assert second["type"] is FlowResultType.ABORT
    assert second["reason"] == "already_in_progress"

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == f"SIM7020E {IMEI[-4:]}"
    assert result["data"] == {CONF_DEVICE: pty, CONF_BAUDRATE: 115200}
    assert result["result"].unique_id == IMEI


async def test_usb_discovery_without_answer_aborts_quietly(hass: HomeAssistant) -> None:
    """Nothing answers on the discovered port: the flow ends without asking the user anything."""
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USB}, data=_usb_info("/dev/ttyNOSUCHSIM7020")
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "cannot_connect"
    assert not hass.config_entries.flow.async_progress_by_handler(DOMAIN)


async def test_usb_discovery_of_another_modem_aborts_quietly(hass: HomeAssistant) -> None:
    """A modem of another family behind the bridge: the flow ends without asking the user anything."""
    emulator = Emulator(model="SIM800L", registration_delay=0.0)
    try:
        pty = await emulator.start_pty()
        result = await hass.config_entries.flow.async_init(
            DOMAIN, context={"source": config_entries.SOURCE_USB}, data=_usb_info(pty)
        )
    finally:
        await emulator.stop()
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "not_sim7020"


async def test_usb_discovery_of_configured_port_aborts_unopened(
    hass: HomeAssistant, modem: EmulatedModem
) -> None:
    """A discovered port that one of our entries uses is not opened."""
    pty = await modem.emulator.start_pty()
    received = _record_rx(modem.emulator)
    MockConfigEntry(domain=DOMAIN, unique_id=IMEI, data={CONF_DEVICE: pty}).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USB}, data=_usb_info(pty)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert received == []


@pytest.mark.parametrize(
    "data_of",
    [
        lambda port: {"device": {"path": port, "baudrate": 115200}, "radio_type": "ezsp"},  # ZHA
        lambda port: {"usb_path": port},  # Z-Wave JS
    ],
)
async def test_usb_discovery_of_another_integrations_port_aborts_unopened(
    hass: HomeAssistant, modem: EmulatedModem, data_of: Callable[[str], dict[str, Any]]
) -> None:
    """A discovered port that another integration's entry uses is not opened (say a Zigbee stick's)."""
    pty = await modem.emulator.start_pty()
    received = _record_rx(modem.emulator)
    MockConfigEntry(domain="zha", data=data_of(pty)).add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USB}, data=_usb_info(pty)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "port_in_use"
    assert received == []


async def test_usb_rediscovery_moves_the_configured_modem(hass: HomeAssistant, modem: EmulatedModem) -> None:
    """The configured modem (same IMEI) discovered on a new port: its entry follows it there."""
    pty = await modem.emulator.start_pty()
    entry = MockConfigEntry(
        domain=DOMAIN, unique_id=IMEI, data={CONF_DEVICE: "/dev/ttyUSB0", CONF_BAUDRATE: 115200}
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": config_entries.SOURCE_USB}, data=_usb_info(pty)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert entry.data == {CONF_DEVICE: pty, CONF_BAUDRATE: 115200}


async def test_manual_port_of_another_integration_aborts(
    hass: HomeAssistant, ports: list[ListPortInfo]
) -> None:
    """Typing a port that another integration uses aborts without opening it; the picker leaves it out."""
    MockConfigEntry(domain="zwave_js", data={"usb_path": "/dev/ttyUSB9"}).add_to_hass(hass)
    ports.append(_port("/dev/ttyUSB9"))
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": config_entries.SOURCE_USER})
    assert result["step_id"] == "manual"
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_DEVICE: "/dev/ttyUSB9", CONF_BAUDRATE: 115200}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "port_in_use"


async def test_options_without_mqtt(hass: HomeAssistant) -> None:
    """Without MQTT set up there is no topic field; the options are stored typed."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id=IMEI, data={CONF_DEVICE: "/dev/ttyUSB0"})
    entry.add_to_hass(hass)
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.FORM
    assert CONF_MQTT_TOPIC not in {str(key) for key in result["data_schema"].schema}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_PSM_HANDLING: "fail",
            CONF_ALLOW_RAW_AT: True,
            CONF_LISTEN_PORT: 5683.0,
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {
        CONF_PSM_HANDLING: "fail",
        CONF_ALLOW_RAW_AT: True,
        CONF_LISTEN_PORT: 5683,
    }


# HA's mocked MQTT client leaves its 1 s misc-loop timer behind (it never sees the socket close).
@pytest.mark.parametrize("expected_lingering_timers", [True])
@pytest.mark.usefixtures("mqtt_mock")
async def test_options_with_mqtt_topic(hass: HomeAssistant) -> None:
    """With MQTT set up a forward topic can be given; wildcards are refused, blank means none."""
    entry = MockConfigEntry(domain=DOMAIN, unique_id=IMEI, data={CONF_DEVICE: "/dev/ttyUSB0"})
    entry.add_to_hass(hass)
    base = {CONF_PSM_HANDLING: "wait", CONF_ALLOW_RAW_AT: False}

    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert CONF_MQTT_TOPIC in {str(key) for key in result["data_schema"].schema}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**base, CONF_MQTT_TOPIC: "sim7020/+/rx"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_MQTT_TOPIC: "invalid_topic"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**base, CONF_MQTT_TOPIC: " sim7020/gw1/rx "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == {**base, CONF_MQTT_TOPIC: "sim7020/gw1/rx"}

    result = await hass.config_entries.options.async_init(entry.entry_id)
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {**base, CONF_MQTT_TOPIC: ""}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert entry.options == base
    await unload_mqtt(hass)
