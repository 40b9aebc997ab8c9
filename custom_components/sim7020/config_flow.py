"""Config flow of the SIM7020 integration: port picker, manual URL, USB discovery, reconfigure, options."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from typing import Any

import serial.tools.list_ports
import voluptuous as vol
from homeassistant.components import usb
from homeassistant.config_entries import (
    SOURCE_IGNORE,
    ConfigEntry,
    ConfigEntryState,
    ConfigFlow,
    ConfigFlowResult,
    OptionsFlow,
)
from homeassistant.core import callback
from homeassistant.data_entry_flow import AbortFlow
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
    CONF_PSM_HANDLING,
    CONNECT_TIMEOUT,
    DEFAULT_BAUDRATE,
    DEFAULT_PSM_HANDLING,
    DOMAIN,
    PSM_HANDLING_OPTIONS,
)

_LOGGER = logging.getLogger(__name__)

#: Value of the port picker's entry that leads to the free-text step.
CONF_MANUAL_PATH = "manual"
#: Model names of the supported module family (``AT+CGMM`` answers start with one of these).
SUPPORTED_MODELS = ("SIM7020", "SIM7030", "SIM7060")

#: Keys under which other integrations keep their serial port in entry data (HA's usb component reads the
#: same ones), so that a port in use by, say, ZHA or Z-Wave JS is neither listed, nor probed, nor discovered.
OTHER_PORT_KEYS: tuple[tuple[str, ...], ...] = (
    ("device",),
    ("device", "path"),
    ("device_path",),
    ("port",),
    ("serial_port",),
    ("usb_path",),
)
URL_SCHEMES = ("socket://", "rfc2217://", "tcp://", "esphome://")

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


def _ports_of(entry: ConfigEntry) -> list[str]:
    """The serial ports or URLs a config entry of any integration names (the usual keys, taken literally)."""
    if entry.domain == DOMAIN:
        device = entry.data.get(CONF_DEVICE)
        return [device] if isinstance(device, str) else []
    found: list[str] = []
    for path in OTHER_PORT_KEYS:
        value: Any = entry.data
        for key in path:
            value = value.get(key) if isinstance(value, Mapping) else None
        if isinstance(value, str) and value.startswith(("/dev/", *URL_SCHEMES)):
            found.append(value)
    return found


def _same_port(first: str, second: str) -> bool:
    """True when two device paths reach the same device (symlinks resolved) or two URLs are equal.

    Blocking (resolves symlinks): run it in the executor.
    """
    if first.startswith("/") and second.startswith("/"):
        return os.path.realpath(first) == os.path.realpath(second)
    return first == second


class Sim7020ConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up a SIM7020 modem: pick a port or type a pyserial URL, test the modem, store it by IMEI.

    No step opens a port that a config entry -- ours or another integration's -- already uses, and none asks
    Home Assistant to reload an entry that is running: a running entry reloads itself through its update
    listener when a flow changes its data (``__init__.py``), so every change reloads it exactly once.
    """

    VERSION = 1
    MINOR_VERSION = 2

    def __init__(self) -> None:
        self._discovered_device: str | None = None
        self._discovered_name: str = ""

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> Sim7020OptionsFlow:
        """Return the options flow."""
        return Sim7020OptionsFlow()

    async def _async_port_user(
        self, device: str, *, exclude: ConfigEntry | None = None
    ) -> ConfigEntry | None:
        """The config entry (of any integration) that uses ``device``, if one does.

        Home Assistant 2026.x keeps such a list itself (the usb component's serial port consumers), but not
        the oldest version this integration supports, hence this small version of it.
        """
        for entry in self.hass.config_entries.async_entries():
            if entry is exclude or entry.source == SOURCE_IGNORE:
                continue
            for port in _ports_of(entry):
                if await self.hass.async_add_executor_job(_same_port, port, device):
                    return entry
        return None

    async def _async_abort_if_port_used(self, device: str) -> None:
        """Abort the flow when a config entry already uses ``device`` (the port is not opened)."""
        user = await self._async_port_user(device)
        if user is not None:
            raise AbortFlow("already_configured" if user.domain == DOMAIN else "port_in_use")

    async def _async_create(self, device: str, baudrate: int) -> ConfigFlowResult:
        """Probe ``device``; create the entry (or abort when the modem is already configured).

        The same modem (IMEI) found on another port moves its entry there; a running entry applies that
        through its update listener (one reload), so no reload is asked for here.
        """
        info = await async_probe(device, baudrate)
        await self.async_set_unique_id(info.imei, raise_on_progress=False)
        self._abort_if_unique_id_configured(
            updates={CONF_DEVICE: device, CONF_BAUDRATE: baudrate}, reload_on_update=False
        )
        return self.async_create_entry(
            title=_title(info), data={CONF_DEVICE: device, CONF_BAUDRATE: baudrate}
        )

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Pick a serial port (labelled by its USB identity) or choose to enter a URL."""
        ports = await self.hass.async_add_executor_job(serial.tools.list_ports.comports)
        choices: dict[str, str] = {}
        for port in ports:
            if await self._async_port_user(port.device) is not None:
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
            await self._async_abort_if_port_used(device)
            try:
                return await self._async_create(device, user_input[CONF_BAUDRATE])
            except ProbeError as err:
                errors["base"] = err.reason
        schema = vol.Schema({vol.Required(CONF_DEVICE): str, **_baudrate_schema(DEFAULT_BAUDRATE)})
        if user_input is not None:
            schema = self.add_suggested_values_to_schema(schema, user_input)
        return self.async_show_form(step_id="manual", data_schema=schema, errors=errors)

    async def async_step_usb(self, discovery_info: UsbServiceInfo) -> ConfigFlowResult:
        """A USB serial bridge with its chip's factory strings was plugged in: is a SIM7020 behind it?

        The manifest's matchers only let through bridges that still carry their chip vendor's default
        descriptor strings, as the boards SIM7020 modules sit on do (docs/home-assistant.md, "USB discovery").
        A port that a config entry already uses is never opened. Otherwise the module is identified right
        away, and anything that is not a SIM7020-family modem with a SIM ends the flow quietly: the user is
        only asked about a modem that is really there. A configured modem found on a new port (same IMEI)
        moves its entry there.
        """
        device = await self.hass.async_add_executor_job(usb.get_serial_by_id, discovery_info.device)
        await self._async_abort_if_port_used(device)
        # Until the IMEI is known, the device path keeps a second flow for the same bridge away.
        await self.async_set_unique_id(f"usb:{device}")
        try:
            info = await async_probe(device, DEFAULT_BAUDRATE)
        except ProbeError as err:
            _LOGGER.debug("No SIM7020 set up on discovered %s: %s", device, err.reason)
            return self.async_abort(reason=err.reason)
        await self.async_set_unique_id(info.imei)
        self._abort_if_unique_id_configured(updates={CONF_DEVICE: device}, reload_on_update=False)
        self._discovered_device = device
        self._discovered_name = f"{_title(info)} ({os.path.basename(device)})"
        self.context["title_placeholders"] = {"name": self._discovered_name}
        return await self.async_step_usb_confirm()

    async def async_step_usb_confirm(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask before adding the discovered modem (it was identified at the default baud rate)."""
        assert self._discovered_device is not None
        if user_input is not None:
            return self.async_create_entry(
                title=self._discovered_name.split(" (")[0],
                data={CONF_DEVICE: self._discovered_device, CONF_BAUDRATE: DEFAULT_BAUDRATE},
            )
        self._set_confirm_only()
        return self.async_show_form(
            step_id="usb_confirm", description_placeholders={"name": self._discovered_name}
        )

    async def async_step_reconfigure(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Move the modem to another port or URL, or change its baud rate (same module: same IMEI).

        A running entry is stopped before the probe: the probe then never competes with it for the port,
        whether the user confirms the same port, changes only the baud rate, or names another path that
        reaches the same device. When the new settings do not work, the entry is started again with its
        old ones and the form says why. On success the entry is started with the new settings (stopped,
        it has no update listener, so asking Home Assistant to reload it is the one reload).
        """
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            device = user_input[CONF_DEVICE].strip()
            baudrate: int = user_input[CONF_BAUDRATE]
            user = await self._async_port_user(device, exclude=entry)
            if user is not None:
                errors["base"] = "already_configured" if user.domain == DOMAIN else "port_in_use"
            else:
                was_loaded = entry.state is ConfigEntryState.LOADED
                if was_loaded:
                    await self.hass.config_entries.async_unload(entry.entry_id)
                try:
                    info = await async_probe(device, baudrate)
                except ProbeError as err:
                    errors["base"] = err.reason
                else:
                    if info.imei == entry.unique_id:
                        return self.async_update_reload_and_abort(
                            entry, data_updates={CONF_DEVICE: device, CONF_BAUDRATE: baudrate}
                        )
                    errors["base"] = "wrong_device"
                if was_loaded:
                    await self.hass.config_entries.async_setup(entry.entry_id)
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
    """PSM handling, raw AT permission, the TCP listener and MQTT forwarding of received data.

    The entry's update listener reloads it once when the options change (``__init__.py``).
    """

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Show and store the options."""
        mqtt_available = "mqtt" in self.hass.config.components
        errors: dict[str, str] = {}
        if user_input is not None:
            options = dict(user_input)
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
