"""Home Assistant MQTT discovery (device-based) for a modem served by the bridge.

One retained config message per modem on ``<prefix>/device/<node>/config`` describes the device and its
entities (signal, registration, attach, PDN, operator, IP, PSM, data sent and received). Entities read the
modem's retained ``state`` JSON and are available when the bridge is online *and* the modem link is up
(``avty_mode: all``); a modem asleep in PSM counts as available (sleeping is not an outage).
"""

from __future__ import annotations

import re
from typing import Any

from ..models import ModemInfo
from ..version import __version__

ORIGIN = {"name": "sim7020-bridge", "sw": __version__, "url": "https://github.com/sim7020/sim7020"}
#: Link states in which the modem's entities are available.
AVAILABLE_LINK_STATES = ("ready", "asleep")


def node_id(modem_id: str, info: ModemInfo | None) -> str:
    """The discovery node id: derived from the IMEI (stable across ports), else from the modem id."""
    raw = f"sim7020_{info.imei}" if info is not None and info.imei else f"sim7020_{modem_id}"
    return re.sub(r"[^a-zA-Z0-9_-]", "_", raw)


def discovery_topic(prefix: str, modem_id: str, info: ModemInfo | None) -> str:
    """``<prefix>/device/<node>/config``."""
    return f"{prefix}/device/{node_id(modem_id, info)}/config"


def _sensor(node: str, key: str, name: str, template: str, **extra: Any) -> dict[str, Any]:
    return {"p": "sensor", "name": name, "unique_id": f"{node}_{key}", "value_template": template, **extra}


def _binary(node: str, key: str, name: str, field: str, **extra: Any) -> dict[str, Any]:
    return {
        "p": "binary_sensor",
        "name": name,
        "unique_id": f"{node}_{key}",
        "value_template": "{{ 'ON' if value_json.%s else 'OFF' }}" % field,  # noqa: UP031 - Jinja braces
        **extra,
    }


def _usage_components(node: str, diag: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Data usage: running totals in bytes (``total_increasing``: Home Assistant's utility_meter makes
    daily or monthly views of them); unknown while the state has no ``usage`` yet."""
    return {
        f"data_{direction}": _sensor(
            node,
            f"data_{direction}",
            f"Data {direction}",
            "{{ value_json.usage.%s_bytes if value_json.usage else None }}" % direction,  # noqa: UP031 - Jinja
            device_class="data_size",
            state_class="total_increasing",
            unit_of_measurement="B",
            **diag,
        )
        for direction in ("sent", "received")
    }


def discovery_payload(
    *,
    modem_id: str,
    base: str,
    info: ModemInfo | None,
    name: str | None = None,
    expire_after: int | None = None,
) -> dict[str, Any]:
    """The device discovery config for one modem.

    :param base: the modem's base topic (``<base_topic>/<modem_id>``)
    :param info: the modem's identity (IMEI, model, revision) when known
    :param expire_after: seconds after which HA marks values stale (leave None for PSM devices)
    """
    node = node_id(modem_id, info)
    device: dict[str, Any] = {
        "identifiers": [node],
        "name": name or f"SIM7020 {modem_id}",
        "manufacturer": (info.manufacturer if info and info.manufacturer else "SIMCom"),
        "model": (info.model if info and info.model else "SIM7020"),
    }
    if info is not None:
        if info.revision:
            device["sw_version"] = info.revision
        if info.imei:
            device["serial_number"] = info.imei
    link_ok = " or ".join(f"value_json.link == '{s}'" for s in AVAILABLE_LINK_STATES)
    diag = {"entity_category": "diagnostic"}
    if expire_after:
        diag["expire_after"] = str(expire_after)
    components = {
        "signal": _sensor(
            node,
            "signal",
            "Signal strength",
            "{{ value_json.rssi_dbm }}",
            device_class="signal_strength",
            state_class="measurement",
            unit_of_measurement="dBm",
            **diag,
        ),
        "csq": _sensor(node, "csq", "CSQ", "{{ value_json.csq }}", state_class="measurement", **diag),
        "registration": _sensor(
            node,
            "registration",
            "Registration",
            "{{ value_json.registration }}",
            device_class="enum",
            options=["not_registered", "home", "searching", "denied", "unknown", "roaming"],
            **diag,
        ),
        "attached": _binary(node, "attached", "Attached", "attached", device_class="connectivity", **diag),
        "pdn": _binary(node, "pdn", "PDN active", "pdn_active", device_class="connectivity", **diag),
        "operator": _sensor(node, "operator", "Operator", "{{ value_json.operator }}", **diag),
        "ip": _sensor(node, "ip", "IP address", "{{ value_json.ip }}", **diag),
        "psm": _sensor(
            node,
            "psm",
            "Power saving",
            "{{ value_json.psm.state if value_json.psm.enabled else 'off' }}",
            device_class="enum",
            options=["off", "awake", "asleep"],
            **diag,
        ),
        "link": _sensor(
            node,
            "link",
            "Link",
            "{{ value_json.link }}",
            device_class="enum",
            options=["connecting", "ready", "asleep", "recovering", "disconnected", "closed"],
            **diag,
        ),
    }
    components.update(_usage_components(node, diag))
    return {
        "device": device,
        "origin": ORIGIN,
        "availability": [
            {"topic": f"{base}/availability"},
            {
                "topic": f"{base}/state",
                "value_template": "{{ 'online' if %s else 'offline' }}" % link_ok,  # noqa: UP031 - Jinja braces
            },
        ],
        "availability_mode": "all",
        "state_topic": f"{base}/state",
        "qos": 1,
        "components": components,
    }
