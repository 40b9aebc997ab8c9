"""Plain data types of the public API (immutable, JSON-friendly through :func:`dataclasses.asdict`)."""

from __future__ import annotations

import enum
from dataclasses import asdict, dataclass, field, replace
from typing import Any


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
