"""Config flow of the SIM7020 integration: port picker, manual URL, USB discovery, reconfigure, options."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import serial.tools.list_ports
import voluptuous as vol
from homeassistant.components import usb
from homeassistant.config_entries import (
    ConfigEntry,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.core import callback
from homeassistant.helpers import selector
from homeassistant.helpers.service_info.usb import UsbServiceInfo

from sim7020_core import ModemInfo, Sim7020Error
from sim7020_core.exceptions import PortBusyError, SimError
from sim7020_core.modem import Modem, ModemOptions

from .const import (
    BAUDRATES,
    CLOSE_TIMEOUT,
    CONF_ALLOW_RAW_AT,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_LISTEN_PORT,
    CONF_MQTT_TOPIC,
    CONF_POLL_INTERVAL,
    CONF_PSM_HANDLING,
    CONNECT_TIMEOUT,
    DEFAULT_BAUDRATE,
    DEFAULT_POLL_INTERVAL,
    DEFAULT_PSM_HANDLING,
    DOMAIN,
    MAX_POLL_INTERVAL,
    MIN_POLL_INTERVAL,
    PSM_HANDLING_OPTIONS,
)

_LOGGER = logging.getLogger(__name__)

#: Value of the port picker's entry that leads to the free-text step.
CONF_MANUAL_PATH = "manual"
#: Model names of the supported module family (``AT+CGMM`` answers start with one of these).
SUPPORTED_MODELS = ("SIM7020", "SIM7030", "SIM7060")

#: The probe only identifies the module: no waiting for registration, no background work.
PROBE_OPTIONS = ModemOptions(
    registration_timeout=0, poll_interval=None, watchdog_interval=None, auto_recover=False
)


class ProbeError(Exception):
    """The device could not be used; ``reason`` is the translation key of the form error."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def is_supported(info: ModemInfo) -> bool:
    """True when the module identifies as a member of the SIM7020 family."""
    model = info.model.upper().replace("SIMCOM_", "").replace("SIMCOM ", "").strip()
    return model.startswith(SUPPORTED_MODELS)


async def async_probe(device: str, baudrate: int) -> ModemInfo:
    """Open ``device``, read the module's identity and close it again.

    :raises ProbeError: ``cannot_connect``, ``port_busy``, ``not_sim7020`` or ``sim_missing``
    """
    try:
        async with asyncio.timeout(CONNECT_TIMEOUT):
            modem = await Modem.connect(device, baudrate=baudrate, options=PROBE_OPTIONS)
    except PortBusyError as err:
        _LOGGER.debug("Port %s is busy: %s", device, err)
        raise ProbeError("port_busy") from err
    except SimError as err:
        _LOGGER.debug("SIM problem on %s: %s", device, err)
        raise ProbeError("sim_missing") from err
    except (Sim7020Error, TimeoutError, OSError) as err:
        _LOGGER.debug("Cannot use %s: %r", device, err)
        raise ProbeError("cannot_connect") from err
    info = modem.info
    with contextlib.suppress(Sim7020Error, TimeoutError, OSError):
        async with asyncio.timeout(CLOSE_TIMEOUT):
            await modem.close()
    if not is_supported(info) or not info.imei:
        _LOGGER.debug("%s is not a SIM7020-family module: %s", device, info)
        raise ProbeError("not_sim7020")
    if not info.imsi and not info.iccid:
        raise ProbeError("sim_missing")
    return info


def _title(info: ModemInfo) -> str:
    return f"{info.model} {info.imei[-4:]}"


def _baudrate_schema(default: int) -> dict[vol.Marker, Any]:
    return {vol.Required(CONF_BAUDRATE, default=default): vol.In(BAUDRATES)}


class Sim7020ConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a SIM7020 modem: pick a port or type a pyserial URL, test the modem, store it by IMEI."""

    VERSION = 1

    def __init__(self) -> None:
        self._discovered_device: str | None = None
        self._discovered_name: str = ""

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> Sim7020OptionsFlow:
        """Return the options flow."""
        return Sim7020OptionsFlow()

    async def _async_create(self, device: str, baudrate: int) -> ConfigFlowResult:
        """Probe ``device``; create the entry (or abort when the modem is already configured)."""
        info = await async_probe(device, baudrate)
        await self.async_set_unique_id(info.imei, raise_on_progress=False)
        self._abort_if_unique_id_configured(updates={CONF_DEVICE: device, CONF_BAUDRATE: baudrate})
        return self.async_create_entry(
            title=_title(info), data={CONF_DEVICE: device, CONF_BAUDRATE: baudrate}
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Pick a serial port (labelled by its USB identity) or choose to enter a URL."""
        ports = await self.hass.async_add_executor_job(serial.tools.list_ports.comports)
        configured = {entry.data.get(CONF_DEVICE) for entry in self._async_current_entries()}
        choices: dict[str, str] = {}
        for port in ports:
            if port.device in configured:
                continue
            choices[port.device] = usb.human_readable_device_name(
                port.device, port.serial_number, port.manufacturer, port.description, port.vid, port.pid
            )
        if not choices:
            return await self.async_step_manual()
        choices[CONF_MANUAL_PATH] = "Enter manually (path or pyserial URL such as socket://host:port)"

        errors: dict[str, str] = {}
        if user_input is not None:
            device = user_input[CONF_DEVICE]
            if device == CONF_MANUAL_PATH:
                return await self.async_step_manual()
            by_id = await self.hass.async_add_executor_job(usb.get_serial_by_id, device)
            self._async_abort_entries_match({CONF_DEVICE: by_id})
            try:
                return await self._async_create(by_id, user_input[CONF_BAUDRATE])
            except ProbeError as err:
                errors["base"] = err.reason

        schema = vol.Schema(
            {
                vol.Required(CONF_DEVICE): vol.In(choices),
                **_baudrate_schema(DEFAULT_BAUDRATE),
            }
        )
        if user_input is not None:
            schema = self.add_suggested_values_to_schema(schema, user_input)
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)

    async def async_step_manual(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Enter a device path or any pyserial URL (``socket://host:port``, ``rfc2217://…``)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            device = user_input[CONF_DEVICE].strip()
            self._async_abort_entries_match({CONF_DEVICE: device})
            try:
                return await self._async_create(device, user_input[CONF_BAUDRATE])
            except ProbeError as err:
                errors["base"] = err.reason
        schema = vol.Schema({vol.Required(CONF_DEVICE): str, **_baudrate_schema(DEFAULT_BAUDRATE)})
        if user_input is not None:
            schema = self.add_suggested_values_to_schema(schema, user_input)
        return self.async_show_form(step_id="manual", data_schema=schema, errors=errors)

    async def async_step_usb(self, discovery_info: UsbServiceInfo) -> ConfigFlowResult:
        """A USB serial adapter that may carry a SIM7020 was plugged in; ask before talking to it."""
        device = await self.hass.async_add_executor_job(usb.get_serial_by_id, discovery_info.device)
        self._async_abort_entries_match({CONF_DEVICE: device})
        # Until the IMEI is known, the device path keeps a second flow for the same adapter away.
        await self.async_set_unique_id(f"usb:{device}")
        self._discovered_device = device
        self._discovered_name = usb.human_readable_device_name(
            device,
            discovery_info.serial_number,
            discovery_info.manufacturer,
            discovery_info.description,
            discovery_info.vid,
            discovery_info.pid,
        )
        self.context["title_placeholders"] = {"name": self._discovered_name}
        return await self.async_step_usb_confirm()

    async def async_step_usb_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Confirm the discovered adapter, then test the modem behind it."""
        assert self._discovered_device is not None
        errors: dict[str, str] = {}
        if user_input is not None:
            try:
                return await self._async_create(self._discovered_device, user_input[CONF_BAUDRATE])
            except ProbeError as err:
                errors["base"] = err.reason
        return self.async_show_form(
            step_id="usb_confirm",
            data_schema=vol.Schema(_baudrate_schema(DEFAULT_BAUDRATE)),
            description_placeholders={"name": self._discovered_name},
            errors=errors,
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Move the modem to another port or URL (it must be the same module: same IMEI)."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            device = user_input[CONF_DEVICE].strip()
            try:
                info = await async_probe(device, user_input[CONF_BAUDRATE])
            except ProbeError as err:
                errors["base"] = err.reason
            else:
                await self.async_set_unique_id(info.imei)
                self._abort_if_unique_id_mismatch(reason="wrong_device")
                return self.async_update_reload_and_abort(
                    entry, data_updates={CONF_DEVICE: device, CONF_BAUDRATE: user_input[CONF_BAUDRATE]}
                )
        schema = vol.Schema(
            {
                vol.Required(CONF_DEVICE): str,
                **_baudrate_schema(entry.data.get(CONF_BAUDRATE, DEFAULT_BAUDRATE)),
            }
        )
        schema = self.add_suggested_values_to_schema(schema, user_input or dict(entry.data))
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=schema,
            errors=errors,
            description_placeholders={"title": entry.title},
        )


class Sim7020OptionsFlow(OptionsFlow):
    """Poll interval, PSM handling, raw AT permission and MQTT forwarding of received data."""

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and store the options."""
        mqtt_available = "mqtt" in self.hass.config.components
        errors: dict[str, str] = {}
        if user_input is not None:
            options = dict(user_input)
            options[CONF_POLL_INTERVAL] = int(options[CONF_POLL_INTERVAL])
            if options.get(CONF_LISTEN_PORT):
                options[CONF_LISTEN_PORT] = int(options[CONF_LISTEN_PORT])
            else:
                options.pop(CONF_LISTEN_PORT, None)
            topic = str(options.pop(CONF_MQTT_TOPIC, "") or "").strip()
            if topic:
                if _valid_publish_topic(topic):
                    options[CONF_MQTT_TOPIC] = topic
                else:
                    errors[CONF_MQTT_TOPIC] = "invalid_topic"
            if not errors:
                return self.async_create_entry(data=options)

        fields: dict[vol.Marker, Any] = {
            vol.Required(CONF_POLL_INTERVAL, default=DEFAULT_POLL_INTERVAL): selector.NumberSelector(
                selector.NumberSelectorConfig(
                    min=MIN_POLL_INTERVAL,
                    max=MAX_POLL_INTERVAL,
                    step=1,
                    mode=selector.NumberSelectorMode.BOX,
                    unit_of_measurement="s",
                )
            ),
            vol.Required(CONF_PSM_HANDLING, default=DEFAULT_PSM_HANDLING): selector.SelectSelector(
                selector.SelectSelectorConfig(options=PSM_HANDLING_OPTIONS, translation_key=CONF_PSM_HANDLING)
            ),
            vol.Required(CONF_ALLOW_RAW_AT, default=False): selector.BooleanSelector(),
            vol.Optional(CONF_LISTEN_PORT): selector.NumberSelector(
                selector.NumberSelectorConfig(min=1, max=65535, step=1, mode=selector.NumberSelectorMode.BOX)
            ),
        }
        if mqtt_available:
            fields[vol.Optional(CONF_MQTT_TOPIC)] = selector.TextSelector()
        schema = self.add_suggested_values_to_schema(
            vol.Schema(fields), user_input or dict(self.config_entry.options)
        )
        return self.async_show_form(step_id="init", data_schema=schema, errors=errors)


def _valid_publish_topic(topic: str) -> bool:
    from homeassistant.components.mqtt import valid_publish_topic

    try:
        valid_publish_topic(topic)
    except vol.Invalid:
        return False
    return True
