"""Plain data types of the public API (immutable, JSON-friendly through :func:`dataclasses.asdict`)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from .netvalues import (
    PSM_ACTIVE_MAX_S,
    PSM_TAU_MAX_S,
    apn_problem,
    bands_problem,
    check,
    dns_servers_problem,
    edrx_cycle_problem,
    operator_problem,
    psm_timer_problem,
)


class Registration(enum.StrEnum):
    """Network registration state (+CEREG/+CGREG <stat>)."""

    NOT_REGISTERED = "not_registered"
    HOME = "home"
    SEARCHING = "searching"
    DENIED = "denied"
    UNKNOWN = "unknown"
    ROAMING = "roaming"

    @classmethod
    def from_stat(cls, stat: int) -> Registration:
        """Map a 3GPP <stat> value (0..7) to a Registration."""
        return _STAT.get(stat, cls.UNKNOWN)

    @property
    def registered(self) -> bool:
        return self in (Registration.HOME, Registration.ROAMING)


_STAT = {
    0: Registration.NOT_REGISTERED,
    1: Registration.HOME,
    2: Registration.SEARCHING,
    3: Registration.DENIED,
    4: Registration.UNKNOWN,
    5: Registration.ROAMING,
    6: Registration.HOME,  # SMS only, home
    7: Registration.ROAMING,  # SMS only, roaming
}


class LinkState(enum.StrEnum):
    """State of the driver's session with the module (what HA and the bridge reflect)."""

    CONNECTING = "connecting"
    READY = "ready"
    ASLEEP = "asleep"  # in PSM: not a failure
    RECOVERING = "recovering"
    DISCONNECTED = "disconnected"
    CLOSED = "closed"


class ProblemKind(enum.StrEnum):
    """What needs a human (:attr:`ModemProblem.kind`): stable keys, e.g. for translations."""

    SIM = "sim"  # no usable SIM, or it is locked (PIN/PUK)
    UNRESPONSIVE = "unresponsive"  # the module stays silent after every recovery step
    STALE_STATE = "stale_state"  # what a previous process left on the module could not be released
    REGISTRATION_DENIED = "registration_denied"  # the network refuses the module


@dataclass(frozen=True, slots=True)
class ModemProblem:
    """Something about a modem that does not heal by itself
    (:attr:`Modem.problem <sim7020_core.modem.Modem.problem>`).

    :ivar kind: what kind of problem (:class:`ProblemKind`)
    :ivar message: for people: what is wrong and what to do, in one line
    """

    kind: ProblemKind
    message: str


@dataclass(frozen=True, slots=True)
class ModemInfo:
    """Identity of the module (read once at init)."""

    manufacturer: str = ""
    model: str = ""
    revision: str = ""
    imei: str = ""
    imsi: str = ""
    iccid: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PsmStatus:
    """Power saving mode: the setting, the module's state and its timers.

    The network decides the timers: it may grant other values than the module requested with
    ``AT+CPSMS`` (it reports its grant in ``+CEREG`` with ``AT+CEREG=4``, in read answers and in the URCs
    that follow ``AT+CPSMS``), and then the grant is what the module lives by.

    :param enabled: PSM requested (``AT+CPSMS=1``)
    :param state: ``"awake"`` or ``"asleep"``
    :param tau_s: periodic TAU (T3412 extended) in effect, seconds: the network's grant when ``granted``,
        else the requested value
    :param active_s: active time (T3324) in effect, seconds: the network's grant when ``granted``, else the
        requested value
    :param granted: True when ``tau_s``/``active_s`` are what the network granted. A timer that is None
        then was not granted: T3412 extended deactivated (the network keeps its legacy periodic timer,
        which the module does not report), or T3324 deactivated (no PSM). False: the module reported no
        grant (not registered, PSM never requested, or firmware without ``AT+CEREG=4``)
    :param requested_tau_s: periodic TAU requested with ``AT+CPSMS`` (None: not set or deactivated)
    :param requested_active_s: active time requested with ``AT+CPSMS`` (None: not set or deactivated)
    """

    enabled: bool = False
    state: str = "awake"  # "awake" | "asleep"
    tau_s: int | None = None
    active_s: int | None = None
    granted: bool = False
    requested_tau_s: int | None = None
    requested_active_s: int | None = None

    def with_request(self, enabled: bool, tau_s: int | None, active_s: int | None) -> PsmStatus:
        """This status with the setting read from ``AT+CPSMS?``; the requested timers are in effect
        only while no grant is known."""
        return replace(
            self,
            enabled=enabled,
            requested_tau_s=tau_s,
            requested_active_s=active_s,
            tau_s=self.tau_s if self.granted else tau_s,
            active_s=self.active_s if self.granted else active_s,
        )

    def with_grant(self, tau_s: int | None, active_s: int | None) -> PsmStatus:
        """This status with the network's grant in effect (None: that timer was not granted)."""
        return replace(self, tau_s=tau_s, active_s=active_s, granted=True)

    def without_grant(self) -> PsmStatus:
        """This status with no grant known: the requested timers are in effect."""
        return replace(self, tau_s=self.requested_tau_s, active_s=self.requested_active_s, granted=False)


@dataclass(frozen=True, slots=True)
class NeighbourCell:
    """A neighbour cell line of AT+CENG? (``<earfcn>,<earfcn_offset>,<pci>,<rsrp>``)."""

    earfcn: int | None = None
    earfcn_offset: int | None = None
    pci: int | None = None
    rsrp_dbm: int | None = None


@dataclass(frozen=True, slots=True)
class CellInfo:
    """Serving cell details from AT+CENG? (all optional: not every firmware reports them) and the
    neighbour cells the module measured, in its order."""

    earfcn: int | None = None
    pci: int | None = None
    cell_id: str | None = None
    rsrp_dbm: int | None = None
    rsrq_db: int | None = None
    rssi_dbm: int | None = None
    sinr_db: int | None = None
    band: int | None = None
    tac: str | None = None
    ecl: int | None = None
    neighbours: tuple[NeighbourCell, ...] = ()


@dataclass(frozen=True, slots=True)
class EdrxStatus:
    """Extended DRX: the request (``AT+CEDRXS``) next to what the network granted (``AT+CEDRXRDP``).

    :param enabled: eDRX requested (``AT+CEDRXS=1``)
    :param requested_cycle_s: the cycle requested, seconds (None: not known, or the module's default)
    :param cycle_s: the cycle the network granted, seconds (None: no grant: eDRX not in use)
    :param ptw_s: the paging time window the network granted, seconds (None: no grant)
    """

    enabled: bool = False
    requested_cycle_s: float | None = None
    cycle_s: float | None = None
    ptw_s: float | None = None


@dataclass(frozen=True, slots=True)
class ModemStatus:
    """A snapshot of the module's network state (docs/internals.md, "Public API")."""

    csq: int | None = None
    rssi_dbm: int | None = None
    ber: int | None = None
    registration: str = Registration.UNKNOWN.value
    attached: bool = False
    pdn_active: bool = False
    apn: str | None = None
    ip: str | None = None
    operator: str | None = None
    psm: PsmStatus = field(default_factory=PsmStatus)
    cell: CellInfo = field(default_factory=CellInfo)
    #: eDRX request and grant (``AT+CEDRXS?``, ``AT+CEDRXRDP``)
    edrx: EdrxStatus = field(default_factory=EdrxStatus)
    #: the bands the module may use (``AT+CBAND?``); () = not known
    bands: tuple[int, ...] = ()
    #: the DNS servers in effect (``AT+CDNSCFG?``, without 0.0.0.0); () = none or not known
    dns_servers: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class PingReply:
    """One reply of AT+CIPPING. ``rtt_ms`` is None (and ttl 0) for a timed-out probe."""

    seq: int
    ip: str
    rtt_ms: float | None
    ttl: int


@dataclass(frozen=True, slots=True)
class DataUsage:
    """Payload bytes carried by a modem's connections (:attr:`Modem.usage
    <sim7020_core.modem.Modem.usage>`, :attr:`Connection.usage <sim7020_core.connection.Connection.usage>`).

    Counted by the library at the payload level: what owners sent (counted once the send succeeded) and
    what arrived for them, without IP/UDP/TCP headers, AT framing or the hex encoding some commands use.
    A network operator meters more (headers, retransmissions, signalling): these totals are a lower bound.

    :ivar sent_bytes: payload bytes sent
    :ivar received_bytes: payload bytes received
    """

    sent_bytes: int = 0
    received_bytes: int = 0

    def __post_init__(self) -> None:
        for name in ("sent_bytes", "received_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{name} must be a whole number of bytes >= 0, got {value!r}")

    def plus(self, sent: int = 0, received: int = 0) -> DataUsage:
        """These totals with ``sent``/``received`` more bytes."""
        return DataUsage(self.sent_bytes + sent, self.received_bytes + received)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def csq_to_dbm(csq: int | None) -> int | None:
    """Convert a +CSQ <rssi> (0..31, 99 unknown) to dBm (27.007: 0 → -113 dBm, step 2 dB)."""
    if csq is None or not 0 <= csq <= 31:
        return None
    return -113 + 2 * csq


@dataclass(frozen=True, slots=True)
class NetworkSettings:
    """Network settings the library keeps for a modem and applies again after every module reset (reboot,
    recovery): :attr:`Modem.network_settings <sim7020_core.modem.Modem.network_settings>`.

    Every field is optional: None leaves the module's own setting as it is. Each value is checked here
    (``ValueError`` naming the field, the value and the allowed range, :mod:`sim7020_core.netvalues`).

    :param apn: the APN (``AT*MCGDEFCONT``, set with the application note's chapter 3.2 sequence)
    :param psm: PSM on or off (``AT+CPSMS``)
    :param psm_tau_s: requested periodic TAU (T3412 extended), seconds
    :param psm_active_s: requested active time (T3324), seconds
    :param edrx: eDRX on or off (``AT+CEDRXS``)
    :param edrx_cycle_s: requested eDRX cycle, seconds: one of the NB-IoT values of 3GPP TS 24.008
        (20.48 … 10485.76); None: the module's default
    :param bands: band lock (``AT+CBAND``): the bands the module may use; () = all it supports
    :param operator: ``"auto"`` or a numeric MCCMNC (``AT+COPS=0`` / ``AT+COPS=1,2,"<mccmnc>"``)
    :param dns_servers: fallback DNS servers (``AT+CDNSCFG``, at most two IPv4 addresses), used when the
        network hands out none (``AT+CDNSCFG?`` shows ``0.0.0.0``); () = no fallback
    """

    apn: str | None = None
    psm: bool | None = None
    psm_tau_s: int | None = None
    psm_active_s: int | None = None
    edrx: bool | None = None
    edrx_cycle_s: float | None = None
    bands: tuple[int, ...] | None = None
    operator: str | None = None
    dns_servers: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.apn is not None:
            check("apn", apn_problem(self.apn))
        for name in ("psm", "edrx"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, bool):
                raise ValueError(f"{name}: must be true, false or None, not {value!r}")
        if self.psm_tau_s is not None:
            check("psm_tau_s", psm_timer_problem(self.psm_tau_s, PSM_TAU_MAX_S))
        if self.psm_active_s is not None:
            check("psm_active_s", psm_timer_problem(self.psm_active_s, PSM_ACTIVE_MAX_S))
        if self.edrx_cycle_s is not None:
            check("edrx_cycle_s", edrx_cycle_problem(self.edrx_cycle_s))
        if self.bands is not None:
            check("bands", bands_problem(self.bands))
            object.__setattr__(self, "bands", tuple(sorted(self.bands)))
        if self.operator is not None:
            check("operator", operator_problem(self.operator))
        if self.dns_servers is not None:
            check("dns_servers", dns_servers_problem(self.dns_servers))
            object.__setattr__(self, "dns_servers", tuple(self.dns_servers))

    def merged(self, **changes: Any) -> NetworkSettings:
        """These settings with ``changes`` (checked like the constructor's arguments)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
