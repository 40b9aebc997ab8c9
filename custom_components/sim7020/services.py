"""Actions of the SIM7020 integration: send, ping, dns_lookup, at_command, and the network settings set_apn,
set_bands, set_operator and set_dns_servers."""

from __future__ import annotations

import dataclasses
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import voluptuous as vol
from homeassistant.config_entries import ConfigEntryState
from homeassistant.core import HomeAssistant, ServiceCall, ServiceResponse, SupportsResponse, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import config_validation as cv

from sim7020_core import AtCommandError, Sim7020Error
from sim7020_core.exceptions import (
    CommandNotAllowedError,
    ModemAsleepError,
    NotRegisteredError,
    PayloadError,
    PluginError,
    UnsupportedError,
)
from sim7020_core.modem.checks import apn_problem, check_command_line, credential_problem, host_problem
from sim7020_core.netvalues import bands_problem, dns_servers_problem, operator_problem

from .const import (
    ATTR_APN,
    ATTR_BANDS,
    ATTR_CLIENT_ID,
    ATTR_COMMAND,
    ATTR_CONFIG_ENTRY_ID,
    ATTR_COUNT,
    ATTR_ENCODING,
    ATTR_HOST,
    ATTR_HOSTNAME,
    ATTR_OPERATOR,
    ATTR_PASSWORD,
    ATTR_PAYLOAD,
    ATTR_PDP_TYPE,
    ATTR_PORT,
    ATTR_PROTOCOL,
    ATTR_SERVERS,
    ATTR_TIMEOUT,
    ATTR_TRANSPORT,
    ATTR_USERNAME,
    ATTR_WAIT_RESPONSE,
    CONF_ALLOW_RAW_AT,
    DEFAULT_RESPONSE_TIMEOUT,
    DEFAULT_TRANSPORT,
    DOMAIN,
    PDP_TYPES,
    PROTOCOLS,
    SERVICE_AT_COMMAND,
    SERVICE_DNS_LOOKUP,
    SERVICE_PING,
    SERVICE_SEND,
    SERVICE_SET_APN,
    SERVICE_SET_BANDS,
    SERVICE_SET_DNS_SERVERS,
    SERVICE_SET_OPERATOR,
)

if TYPE_CHECKING:
    from .manager import Sim7020Manager

_T = TypeVar("_T")

MAX_PING_COUNT = 20
MAX_RESPONSE_TIMEOUT = 300.0

_BASE: dict[Any, Any] = {vol.Optional(ATTR_CONFIG_ENTRY_ID): cv.string}


def _host(value: Any) -> str:
    """A host name or IP address the module can take inside its AT command (the library's check)."""
    text = cv.string(value).strip()
    problem = host_problem(text)
    if problem is not None:
        raise vol.Invalid(problem)
    return text


def _command(value: Any) -> str:
    """One AT command line (no CR, LF or other control characters, starting with AT)."""
    try:
        return check_command_line(cv.string(value))
    except ValueError as err:
        raise vol.Invalid(str(err)) from None


def _require_target(data: dict[str, Any]) -> dict[str, Any]:
    """``send`` needs host, port and protocol, unless it answers a server client by ``client_id``."""
    if ATTR_CLIENT_ID in data:
        return data
    missing = [key for key in (ATTR_HOST, ATTR_PORT, ATTR_PROTOCOL) if key not in data]
    if missing:
        raise vol.Invalid(f"{', '.join(missing)} required (or client_id to answer a client of the listener)")
    return data


SEND_SCHEMA = vol.All(
    vol.Schema(
        {
            **_BASE,
            vol.Optional(ATTR_HOST): _host,
            vol.Optional(ATTR_PORT): cv.port,
            vol.Optional(ATTR_PROTOCOL): vol.In(PROTOCOLS),
            vol.Optional(ATTR_CLIENT_ID): vol.All(vol.Coerce(int), vol.Range(min=1)),
            vol.Required(ATTR_PAYLOAD): cv.string,
            # any codec of the modem's plugin manager (raw, hex, base64, json, a plugin's; "text" = raw)
            vol.Optional(ATTR_ENCODING, default="raw"): vol.All(cv.string, vol.Length(min=1)),
            vol.Optional(ATTR_TRANSPORT, default=DEFAULT_TRANSPORT): vol.All(cv.string, vol.Length(min=1)),
            vol.Optional(ATTR_WAIT_RESPONSE, default=False): cv.boolean,
            vol.Optional(ATTR_TIMEOUT, default=DEFAULT_RESPONSE_TIMEOUT): vol.All(
                vol.Coerce(float), vol.Range(min=0.1, max=MAX_RESPONSE_TIMEOUT)
            ),
        }
    ),
    _require_target,
)
PING_SCHEMA = vol.Schema(
    {
        **_BASE,
        vol.Required(ATTR_HOST): _host,
        vol.Optional(ATTR_COUNT, default=4): vol.All(vol.Coerce(int), vol.Range(min=1, max=MAX_PING_COUNT)),
    }
)
DNS_SCHEMA = vol.Schema({**_BASE, vol.Required(ATTR_HOSTNAME): _host})
AT_SCHEMA = vol.Schema({**_BASE, vol.Required(ATTR_COMMAND): _command})
# The values are checked in the handler (the library's checks), so a bad one is a translated
# ServiceValidationError naming the field rather than a schema error.
SET_APN_SCHEMA = vol.Schema(
    {
        **_BASE,
        vol.Required(ATTR_APN): cv.string,
        vol.Optional(ATTR_USERNAME, default=""): cv.string,
        vol.Optional(ATTR_PASSWORD, default=""): cv.string,
        vol.Optional(ATTR_PDP_TYPE, default=PDP_TYPES[0]): vol.In(PDP_TYPES),
    }
)
SET_BANDS_SCHEMA = vol.Schema({**_BASE, vol.Required(ATTR_BANDS): cv.ensure_list})
SET_OPERATOR_SCHEMA = vol.Schema({**_BASE, vol.Required(ATTR_OPERATOR): cv.string})
SET_DNS_SERVERS_SCHEMA = vol.Schema({**_BASE, vol.Required(ATTR_SERVERS): cv.ensure_list})


def decode_payload(manager: Sim7020Manager, payload: str, encoding: str) -> bytes:
    """Turn the action's ``payload`` into bytes with the codec ``encoding`` of the modem's plugin manager;
    ServiceValidationError names what is wrong (an unknown codec lists the available ones)."""
    try:
        codec = manager.modem.plugins.codec(encoding)
    except PluginError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_request",
            translation_placeholders={"error": str(err)},
        ) from err
    try:
        return codec.decode(payload)
    except PayloadError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_payload",
            translation_placeholders={"encoding": encoding, "error": str(err)},
        ) from err


@callback
def _get_manager(hass: HomeAssistant, call: ServiceCall) -> Sim7020Manager:
    """Find the loaded entry the call is for (``config_entry_id`` or the only one)."""
    entry_id: str | None = call.data.get(ATTR_CONFIG_ENTRY_ID)
    if entry_id is not None:
        entry = hass.config_entries.async_get_entry(entry_id)
        if entry is None or entry.domain != DOMAIN:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="entry_not_found",
                translation_placeholders={"entry_id": entry_id},
            )
        if entry.state is not ConfigEntryState.LOADED:
            raise ServiceValidationError(
                translation_domain=DOMAIN,
                translation_key="entry_not_loaded",
                translation_placeholders={"title": entry.title},
            )
        manager: Sim7020Manager = entry.runtime_data
        return manager
    loaded = hass.config_entries.async_loaded_entries(DOMAIN)
    if not loaded:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="no_modem")
    if len(loaded) > 1:
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="several_modems")
    only: Sim7020Manager = loaded[0].runtime_data
    return only


def modem_error(err: BaseException) -> HomeAssistantError:
    """Map a library error (or a timeout) to the error an action raises."""
    if isinstance(err, CommandNotAllowedError):
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="command_not_allowed",
            translation_placeholders={"error": str(err)},
        )
    if isinstance(err, (PayloadError, UnsupportedError, PluginError)):
        return ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_request",
            translation_placeholders={"error": str(err)},
        )
    if isinstance(err, ModemAsleepError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="modem_asleep")
    if isinstance(err, NotRegisteredError):
        return HomeAssistantError(translation_domain=DOMAIN, translation_key="not_registered")
    if isinstance(err, AtCommandError):
        return HomeAssistantError(
            translation_domain=DOMAIN,
            translation_key="command_failed",
            translation_placeholders={"command": err.command, "final": err.final},
        )
    return HomeAssistantError(
        translation_domain=DOMAIN,
        translation_key="modem_error",
        translation_placeholders={"error": str(err) or type(err).__name__},
    )


async def guarded(awaitable: Awaitable[_T]) -> _T:
    """Await ``awaitable``; a library error (or a timeout) becomes the error an action or entity raises."""
    try:
        return await awaitable
    except (Sim7020Error, TimeoutError, OSError) as err:
        raise modem_error(err) from err


def _handler(
    hass: HomeAssistant, action: Callable[[Sim7020Manager, ServiceCall], Awaitable[ServiceResponse]]
) -> Callable[[ServiceCall], Coroutine[Any, Any, ServiceResponse]]:
    async def handle(call: ServiceCall) -> ServiceResponse:
        manager = _get_manager(hass, call)
        return await guarded(action(manager, call))

    return handle


async def _send(manager: Sim7020Manager, call: ServiceCall) -> ServiceResponse:
    data = decode_payload(manager, call.data[ATTR_PAYLOAD], call.data[ATTR_ENCODING])
    wait: bool = call.data[ATTR_WAIT_RESPONSE]
    if ATTR_CLIENT_ID in call.data:
        reply = await manager.async_send_to_client(
            call.data[ATTR_CLIENT_ID], data, wait_response=wait, response_timeout=call.data[ATTR_TIMEOUT]
        )
    else:
        reply = await manager.async_send(
            transport=call.data[ATTR_TRANSPORT],
            protocol=call.data[ATTR_PROTOCOL],
            host=call.data[ATTR_HOST],
            port=call.data[ATTR_PORT],
            data=data,
            wait_response=wait,
            response_timeout=call.data[ATTR_TIMEOUT],
        )
    result: dict[str, Any] = {"sent": len(data)}
    if wait:
        result["response"] = reply
    return result


async def _ping(manager: Sim7020Manager, call: ServiceCall) -> ServiceResponse:
    replies = await manager.async_ping(call.data[ATTR_HOST], call.data[ATTR_COUNT])
    return {"replies": [dataclasses.asdict(reply) for reply in replies]}


async def _dns_lookup(manager: Sim7020Manager, call: ServiceCall) -> ServiceResponse:
    return {"addresses": list(await manager.async_resolve(call.data[ATTR_HOSTNAME]))}


async def _at_command(manager: Sim7020Manager, call: ServiceCall) -> ServiceResponse:
    if not manager.entry.options.get(CONF_ALLOW_RAW_AT, False):
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="raw_at_disabled",
            translation_placeholders={"title": manager.entry.title},
        )
    return {"lines": list(await manager.async_command(call.data[ATTR_COMMAND]))}


def _setting_problem(field: str, problem: str | None) -> None:
    """Raise a ServiceValidationError naming ``field`` when the library's check found ``problem``."""
    if problem is not None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_setting",
            translation_placeholders={"field": field, "problem": problem},
        )


async def _set_apn(manager: Sim7020Manager, call: ServiceCall) -> ServiceResponse:
    apn: str = call.data[ATTR_APN]
    username: str = call.data[ATTR_USERNAME]
    password: str = call.data[ATTR_PASSWORD]
    _setting_problem(ATTR_APN, apn_problem(apn))
    _setting_problem(ATTR_USERNAME, credential_problem(username))
    _setting_problem(ATTR_PASSWORD, credential_problem(password))
    if bool(username) != bool(password):
        raise ServiceValidationError(translation_domain=DOMAIN, translation_key="credentials_incomplete")
    try:
        await manager.async_set_apn(apn, call.data[ATTR_PDP_TYPE], username, password)
    except ValueError as err:  # anything else the library refuses before it talks to the module
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_request",
            translation_placeholders={"error": str(err)},
        ) from err
    return None


def _network_problem(field: str, problem: str | None) -> None:
    """Raise a ServiceValidationError naming ``field`` when a check of :mod:`sim7020_core.netvalues` found
    ``problem`` (its words name the value and the allowed range)."""
    if problem is not None:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_value",
            translation_placeholders={"field": field, "problem": problem},
        )


def _band_number(value: Any) -> Any:
    """A band as a number: the UI's selector gives strings (``"3"``); anything else is left for the check
    to name."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return value


async def _refused(work: Awaitable[None]) -> None:
    """Await a library setter; what it refuses before talking to the module is a validation error."""
    try:
        await work
    except ValueError as err:
        raise ServiceValidationError(
            translation_domain=DOMAIN,
            translation_key="invalid_request",
            translation_placeholders={"error": str(err)},
        ) from err


async def _set_bands(manager: Sim7020Manager, call: ServiceCall) -> ServiceResponse:
    bands = [_band_number(band) for band in call.data[ATTR_BANDS]]
    _network_problem(ATTR_BANDS, bands_problem(bands, manager.modem.info.model or None))
    await _refused(manager.async_set_bands(bands))
    return None


async def _set_operator(manager: Sim7020Manager, call: ServiceCall) -> ServiceResponse:
    operator: str = call.data[ATTR_OPERATOR].strip()
    _network_problem(ATTR_OPERATOR, operator_problem(operator))
    await _refused(manager.async_set_operator(operator))
    return None


async def _set_dns_servers(manager: Sim7020Manager, call: ServiceCall) -> ServiceResponse:
    servers = [server.strip() if isinstance(server, str) else server for server in call.data[ATTR_SERVERS]]
    servers = [server for server in servers if server != ""]
    _network_problem(ATTR_SERVERS, dns_servers_problem(servers))
    await _refused(manager.async_set_dns_servers(servers))
    return None


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the integration's actions."""
    hass.services.async_register(
        DOMAIN, SERVICE_SEND, _handler(hass, _send), SEND_SCHEMA, supports_response=SupportsResponse.OPTIONAL
    )
    hass.services.async_register(
        DOMAIN, SERVICE_PING, _handler(hass, _ping), PING_SCHEMA, supports_response=SupportsResponse.ONLY
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_DNS_LOOKUP,
        _handler(hass, _dns_lookup),
        DNS_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(
        DOMAIN,
        SERVICE_AT_COMMAND,
        _handler(hass, _at_command),
        AT_SCHEMA,
        supports_response=SupportsResponse.ONLY,
    )
    hass.services.async_register(DOMAIN, SERVICE_SET_APN, _handler(hass, _set_apn), SET_APN_SCHEMA)
    hass.services.async_register(DOMAIN, SERVICE_SET_BANDS, _handler(hass, _set_bands), SET_BANDS_SCHEMA)
    hass.services.async_register(
        DOMAIN, SERVICE_SET_OPERATOR, _handler(hass, _set_operator), SET_OPERATOR_SCHEMA
    )
    hass.services.async_register(
        DOMAIN, SERVICE_SET_DNS_SERVERS, _handler(hass, _set_dns_servers), SET_DNS_SERVERS_SCHEMA
    )
