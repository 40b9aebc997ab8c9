"""The network-setting command topics of a modem: ``<base>/<modem>/cmd/<psm|edrx|apn|bands|operator|
dns_servers>``, and the fields of the ``network:`` block of a modem in the bridge's YAML.

Requests and replies follow :mod:`.commands` (``{"id": …, "ok": true, "result": {…}}``); the result is the
setting as the module reports it afterwards, next to what the network granted. Every value is checked with
the library's checks (:mod:`sim7020_core.netvalues`), so MQTT, the YAML, ``check-config``, the CLI and the
library word a bad value the same way (field, value, allowed range).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict
from typing import Any

import voluptuous as vol

from ..models import NetworkSettings
from ..netvalues import (
    PSM_ACTIVE_MAX_S,
    PSM_TAU_MAX_S,
    apn_problem,
    bands_problem,
    dns_servers_problem,
    edrx_cycle_problem,
    operator_problem,
    psm_timer_problem,
)

NET_COMMANDS = ("psm", "edrx", "apn", "bands", "operator", "dns_servers")


def _checked(problem_of: Callable[[Any], str | None]) -> Callable[[Any], Any]:
    def check(value: Any) -> Any:
        problem = problem_of(value)
        if problem is not None:
            raise vol.Invalid(problem)
        return value

    return check


def _optional(check: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """None, or a value ``check`` takes (its message kept, unlike ``vol.Any``)."""

    def optional(value: Any) -> Any:
        return None if value is None else check(value)

    return optional


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise vol.Invalid(f"must be true or false, not {value!r}")
    return value


def _text(limit: int) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str):
            raise vol.Invalid(f"must be a string, not {value!r}")
        if len(value) > limit:
            raise vol.Invalid(f"must be at most {limit} characters, not {len(value)}")
        if any(c in value for c in '"\\') or not value.isprintable():
            raise vol.Invalid("must be printable ASCII without '\"' or '\\'")
        return value

    return check


_TAU = _checked(lambda v: psm_timer_problem(v, PSM_TAU_MAX_S))
_ACTIVE = _checked(lambda v: psm_timer_problem(v, PSM_ACTIVE_MAX_S))
_CYCLE = _checked(edrx_cycle_problem)
_BANDS = _checked(bands_problem)
_OPERATOR = _checked(operator_problem)
_SERVERS = _checked(dns_servers_problem)
_APN = _checked(apn_problem)

#: The fields of each request (besides ``id``).
NET_FIELDS: dict[str, dict[Any, Any]] = {
    "psm": {
        vol.Required("enabled"): _boolean,
        vol.Optional("tau_s", default=None): _optional(_TAU),
        vol.Optional("active_s", default=None): _optional(_ACTIVE),
    },
    "edrx": {
        vol.Required("enabled"): _boolean,
        vol.Optional("cycle_s", default=None): _optional(_CYCLE),
    },
    "apn": {
        vol.Required("apn"): _APN,
        vol.Optional("username", default=""): _text(255),
        vol.Optional("password", default=""): _text(255),
        vol.Optional("pdp_type", default="IP"): vol.In(
            ("IP", "IPV6", "IPV4V6", "Non-IP"), msg="must be IP, IPV6, IPV4V6 or Non-IP"
        ),
    },
    "bands": {vol.Required("bands"): _BANDS},
    "operator": {vol.Required("operator"): _OPERATOR},
    "dns_servers": {vol.Required("servers"): _SERVERS},
}

#: The ``network:`` block of a modem in the bridge's YAML: the keys of the requests above.
NETWORK_SCHEMA = vol.Schema(
    {
        vol.Optional("apn"): _APN,
        vol.Optional("psm"): _boolean,
        vol.Optional("psm_tau_s"): _TAU,
        vol.Optional("psm_active_s"): _ACTIVE,
        vol.Optional("edrx"): _boolean,
        vol.Optional("edrx_cycle_s"): _CYCLE,
        vol.Optional("bands"): _BANDS,
        vol.Optional("operator"): _OPERATOR,
        vol.Optional("dns_servers"): _SERVERS,
    }
)


def network_settings(block: Mapping[str, Any] | None, apn: str | None = None) -> NetworkSettings | None:
    """The :class:`NetworkSettings` of a validated ``network:`` block (the modem's ``apn:`` counts as its
    ``apn`` when the block has none); None when there is nothing to keep."""
    values = dict(block or {})
    if apn and "apn" not in values:
        values["apn"] = apn
    if not values:
        return None
    for key in ("bands", "dns_servers"):
        if key in values:
            values[key] = tuple(values[key])
    return NetworkSettings(**values)


async def execute_net(name: str, modem: Any, request: Mapping[str, Any]) -> dict[str, Any]:
    """Run one network-setting request; the result is the setting as the module shows it afterwards."""
    if name == "psm":
        await modem.set_psm(request["enabled"], request["tau_s"], request["active_s"])
        return {"psm": asdict(modem.status.psm)}
    if name == "edrx":
        await modem.set_edrx(request["enabled"], request["cycle_s"])
        return {"edrx": asdict(modem.status.edrx)}
    if name == "apn":
        await modem.set_apn(request["apn"], request["pdp_type"], request["username"], request["password"])
        status = modem.status
        return {"apn": status.apn, "ip": status.ip, "registration": status.registration}
    if name == "bands":
        await modem.set_bands(list(request["bands"]))
        return {"bands": list(modem.status.bands), "registration": modem.status.registration}
    if name == "operator":
        await modem.set_operator(request["operator"])
        return {"operator": modem.status.operator, "registration": modem.status.registration}
    await modem.set_dns_servers(list(request["servers"]))
    fallback = modem.network_settings.dns_servers or ()
    return {"dns_servers": list(modem.status.dns_servers), "fallback": list(fallback)}


__all__ = ["NETWORK_SCHEMA", "NET_COMMANDS", "NET_FIELDS", "execute_net", "network_settings"]
