"""Sensors of the SIM7020 integration: radio, registration, addresses, PSM and eDRX grants, connections,
and the data usage.

Each sensor is one :class:`Sim7020SensorDescription` (how to read its value from the manager), grouped by
topic in the tuples below; a further value is one more description. Sensors of the status
follow the coordinator; the data usage sensors (:data:`USAGE_SENSORS`) follow the library's
:class:`~sim7020_core.events.UsageChanged` events.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    SIGNAL_STRENGTH_DECIBELS,
    SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
    EntityCategory,
    UnitOfInformation,
    UnitOfTime,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.typing import StateType

from sim7020_core import Registration

from . import Sim7020ConfigEntry
from .entity import Sim7020Entity
from .manager import Sim7020Manager

# Entities only read the coordinator's data; nothing is sent to the module per entity.
PARALLEL_UPDATES = 0

PSM_STATES = ["awake", "asleep"]


@dataclass(frozen=True, kw_only=True)
class Sim7020SensorDescription(SensorEntityDescription):
    """Describes a sensor and how to read its value from the manager."""

    value_fn: Callable[[Sim7020Manager], StateType]


def _psm_state(manager: Sim7020Manager) -> str:
    if manager.asleep:
        return "asleep"
    status = manager.coordinator.data
    return "asleep" if status is not None and status.psm.state == "asleep" else "awake"


def _status(attr: str) -> Callable[[Sim7020Manager], StateType]:
    def read(manager: Sim7020Manager) -> StateType:
        value: StateType = getattr(manager.coordinator.data, attr)
        return value

    return read


def _cell(attr: str) -> Callable[[Sim7020Manager], StateType]:
    def read(manager: Sim7020Manager) -> StateType:
        value: StateType = getattr(manager.coordinator.data.cell, attr)
        return value

    return read


def _granted(attr: str) -> Callable[[Sim7020Manager], StateType]:
    """A PSM timer the network granted (None: no grant reported, or that timer not granted)."""

    def read(manager: Sim7020Manager) -> StateType:
        psm = manager.coordinator.data.psm
        value: StateType = getattr(psm, attr) if psm.granted else None
        return value

    return read


def _usage(attr: str) -> Callable[[Sim7020Manager], StateType]:
    """A data usage total of the modem (bytes)."""

    def read(manager: Sim7020Manager) -> StateType:
        value: StateType = getattr(manager.modem.usage, attr)
        return value

    return read


def _joined(values: tuple[int, ...] | tuple[str, ...]) -> str | None:
    """A list as the state shows it (``"8, 20"``); None (unknown) when empty: not known, or none."""
    return ", ".join(map(str, values)) or None


def _registration(manager: Sim7020Manager) -> str:
    value = manager.coordinator.data.registration
    return value if value in Registration._value2member_map_ else Registration.UNKNOWN.value


STATUS_SENSORS: tuple[Sim7020SensorDescription, ...] = (
    Sim7020SensorDescription(
        key="signal_strength",
        translation_key="signal_strength",
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_status("rssi_dbm"),
    ),
    Sim7020SensorDescription(
        key="rsrp",
        translation_key="rsrp",
        device_class=SensorDeviceClass.SIGNAL_STRENGTH,
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS_MILLIWATT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_cell("rsrp_dbm"),
    ),
    Sim7020SensorDescription(
        key="rsrq",
        translation_key="rsrq",
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_cell("rsrq_db"),
    ),
    Sim7020SensorDescription(
        key="sinr",
        translation_key="sinr",
        native_unit_of_measurement=SIGNAL_STRENGTH_DECIBELS,
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=_cell("sinr_db"),
    ),
    Sim7020SensorDescription(
        key="registration",
        translation_key="registration",
        device_class=SensorDeviceClass.ENUM,
        options=[member.value for member in Registration],
        value_fn=_registration,
    ),
    Sim7020SensorDescription(
        key="operator",
        translation_key="operator",
        value_fn=_status("operator"),
    ),
    Sim7020SensorDescription(
        key="ip_address",
        translation_key="ip_address",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_status("ip"),
    ),
    Sim7020SensorDescription(
        key="apn",
        translation_key="apn",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_status("apn"),
    ),
    Sim7020SensorDescription(
        key="band_lock",
        translation_key="band_lock",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda manager: _joined(manager.coordinator.data.bands),
    ),
    Sim7020SensorDescription(
        key="operator_selection",
        translation_key="operator_selection",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda manager: manager.modem.network_settings.operator,
    ),
    Sim7020SensorDescription(
        key="dns_servers",
        translation_key="dns_servers",
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda manager: _joined(manager.coordinator.data.dns_servers),
    ),
    Sim7020SensorDescription(
        key="psm_state",
        translation_key="psm_state",
        device_class=SensorDeviceClass.ENUM,
        options=PSM_STATES,
        value_fn=_psm_state,
    ),
    Sim7020SensorDescription(
        key="open_connections",
        translation_key="open_connections",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=lambda manager: manager.open_connections,
    ),
)

#: What the network granted for PSM (the requested timers are the number entities).
PSM_GRANT_SENSORS: tuple[Sim7020SensorDescription, ...] = (
    Sim7020SensorDescription(
        key="psm_granted_tau",
        translation_key="psm_granted_tau",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_granted("tau_s"),
    ),
    Sim7020SensorDescription(
        key="psm_granted_active_time",
        translation_key="psm_granted_active_time",
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_granted("active_s"),
    ),
)


def _edrx(attr: str) -> Callable[[Sim7020Manager], StateType]:
    """What the network granted for eDRX (None: no grant, eDRX not in use)."""

    def read(manager: Sim7020Manager) -> StateType:
        value: StateType = getattr(manager.coordinator.data.edrx, attr)
        return value

    return read


#: What the network granted for eDRX (``AT+CEDRXRDP``; the request is the switch and the select).
EDRX_GRANT_SENSORS: tuple[Sim7020SensorDescription, ...] = tuple(
    Sim7020SensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.DURATION,
        native_unit_of_measurement=UnitOfTime.SECONDS,
        suggested_display_precision=2,
        entity_category=EntityCategory.DIAGNOSTIC,
        value_fn=_edrx(attr),
    )
    for key, attr in (("edrx_granted_cycle", "cycle_s"), ("edrx_paging_time_window", "ptw_s"))
)

#: The serving cell (AT+CENG) and how many neighbour cells the module measured; the neighbours themselves
#: are in the diagnostics download. For diagnosis: disabled by default.
CELL_SENSORS: tuple[Sim7020SensorDescription, ...] = (
    *(
        Sim7020SensorDescription(
            key=key,
            translation_key=key,
            entity_category=EntityCategory.DIAGNOSTIC,
            entity_registry_enabled_default=False,
            value_fn=_cell(attr),
        )
        for key, attr in (
            ("cell_id", "cell_id"),
            ("pci", "pci"),
            ("earfcn", "earfcn"),
            ("band", "band"),
            ("tac", "tac"),
            ("ecl", "ecl"),
        )
    ),
    Sim7020SensorDescription(
        key="neighbour_cells",
        translation_key="neighbour_cells",
        state_class=SensorStateClass.MEASUREMENT,
        entity_category=EntityCategory.DIAGNOSTIC,
        entity_registry_enabled_default=False,
        value_fn=lambda manager: len(manager.coordinator.data.cell.neighbours),
    ),
)

SENSORS: tuple[Sim7020SensorDescription, ...] = (
    *STATUS_SENSORS,
    *PSM_GRANT_SENSORS,
    *EDRX_GRANT_SENSORS,
    *CELL_SENSORS,
)

#: Payload bytes of all the modem's connections, counted by the library (:attr:`Modem.usage`): running totals
#: that module reboots do not reset and that the library keeps in the entry's usage file across restarts, so
#: ``total_increasing`` (utility_meter makes daily or monthly views of them). Counted in bytes, shown in kB
#: (NB-IoT plans are metered in kB to MB).
USAGE_SENSORS: tuple[Sim7020SensorDescription, ...] = tuple(
    Sim7020SensorDescription(
        key=key,
        translation_key=key,
        device_class=SensorDeviceClass.DATA_SIZE,
        native_unit_of_measurement=UnitOfInformation.BYTES,
        suggested_unit_of_measurement=UnitOfInformation.KILOBYTES,
        state_class=SensorStateClass.TOTAL_INCREASING,
        value_fn=_usage(attr),
    )
    for key, attr in (("data_sent", "sent_bytes"), ("data_received", "received_bytes"))
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: Sim7020ConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the modem's sensors."""
    manager = entry.runtime_data
    async_add_entities(
        [
            *(Sim7020Sensor(manager, description) for description in SENSORS),
            *(Sim7020UsageSensor(manager, description) for description in USAGE_SENSORS),
        ]
    )


class Sim7020Sensor(Sim7020Entity, SensorEntity):
    """A value read from the modem's status."""

    entity_description: Sim7020SensorDescription

    @property
    def native_value(self) -> StateType:
        """The value from the last status."""
        return self.entity_description.value_fn(self.manager)


class Sim7020UsageSensor(Sim7020Sensor):
    """A data usage total: updated when the library announces more bytes, known while the entry runs.

    The totals are the library's own count, not read from the module, so they stay valid (available) while
    the module is unreachable or recovering.
    """

    async def async_added_to_hass(self) -> None:
        """Follow the library's data usage events too."""
        await super().async_added_to_hass()
        self.async_on_remove(self.manager.async_add_usage_listener(self.async_write_ha_state))

    @property
    def available(self) -> bool:
        """Always: the library keeps counting whatever the module's state."""
        return True
