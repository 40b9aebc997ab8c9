"""What a modem tells its subscribers and plugins: a small union of frozen dataclasses.

:meth:`Modem.subscribe <sim7020_core.modem.Modem.subscribe>` callbacks and the ``sim7020_modem_state_changed``
hook receive one :data:`ModemEvent` per change, in the event loop, in the order the changes happened::

    def on_event(event: ModemEvent) -> None:
        match event:
            case StateChanged(state=LinkState.READY, previous=previous):
                ...
            case PsmChanged(entered=True):
                ...
            case DataReceived(connection=connection, data=data):
                ...

Every event carries the modem's ``state`` and ``status`` right after the change (a snapshot: the modem may
have moved on when a subscriber looks at it later).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

from .models import DataUsage, LinkState, ModemProblem, ModemStatus

if TYPE_CHECKING:
    from .connection import Connection


@dataclass(frozen=True, slots=True, kw_only=True)
class StateChanged:
    """The link state changed (``connecting`` → ``ready`` when :meth:`Modem.connect` is done, ``ready`` →
    ``asleep`` in PSM, → ``recovering``, ``disconnected``, ``closed`` …).

    :ivar state: the state after the change
    :ivar previous: the state before
    :ivar reason: why, for people (``initialised``, ``entered PSM``, ``watchdog: …``)
    :ivar status: the status at the time
    """

    state: LinkState
    previous: LinkState
    reason: str
    status: ModemStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusChanged:
    """The :class:`~sim7020_core.models.ModemStatus` changed (a refresh, a registration or PSM URC …).

    :ivar status: the new status
    :ivar state: the link state at the time
    """

    status: ModemStatus
    state: LinkState


@dataclass(frozen=True, slots=True, kw_only=True)
class ModuleReset:
    """The module lost its state (it rebooted, recovery reset it, or the port was reopened): every connection
    and server is gone, and the module-wide settings must be assumed lost. Announced once per episode.

    :ivar reason: what showed it (``module rebooted (boot message 'RDY')``, ``port reopened`` …)
    :ivar state: the link state at the time (``recovering``)
    :ivar status: the status at the time
    """

    reason: str
    state: LinkState
    status: ModemStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class PsmChanged:
    """The module entered (``entered=True``) or left PSM.

    :ivar entered: True on entering, False on leaving PSM
    :ivar state: the link state after the change (``asleep`` or ``ready``)
    :ivar status: the status after the change
    """

    entered: bool
    state: LinkState
    status: ModemStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class DataReceived:
    """Data arrived on a connection (one datagram for UDP, one chunk for TCP), already queued for its owner.

    :ivar connection: where it arrived (``remote_host``, ``remote_port``, ``protocol``, ``transport_name``)
    :ivar data: the bytes
    :ivar state: the link state at the time
    :ivar status: the status at the time
    """

    connection: Connection
    data: bytes
    state: LinkState
    status: ModemStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class ProblemChanged:
    """:attr:`Modem.problem <sim7020_core.modem.Modem.problem>` changed: something appeared that does not heal
    by itself (``problem``), or it went away (``problem`` is None).

    :ivar problem: the problem now (None: nothing needs a human)
    :ivar previous: the problem before
    :ivar state: the link state at the time
    :ivar status: the status at the time
    """

    problem: ModemProblem | None
    previous: ModemProblem | None
    state: LinkState
    status: ModemStatus


@dataclass(frozen=True, slots=True, kw_only=True)
class UsageChanged:
    """:attr:`Modem.usage <sim7020_core.modem.Modem.usage>` grew: payload was sent or received. Coalesced:
    at most one event per :data:`~sim7020_core.const.USAGE_EVENT_INTERVAL` (about a second), carrying the
    totals at the time it is published.

    :ivar usage: the modem's running totals (persisted across module reboots and, with
        ``ModemOptions.usage_file``, across restarts)
    :ivar state: the link state at the time
    :ivar status: the status at the time
    """

    usage: DataUsage
    state: LinkState
    status: ModemStatus


#: Everything a modem publishes.
ModemEvent: TypeAlias = (
    StateChanged | StatusChanged | ModuleReset | PsmChanged | DataReceived | ProblemChanged | UsageChanged
)

__all__ = [
    "DataReceived",
    "ModemEvent",
    "ModuleReset",
    "ProblemChanged",
    "PsmChanged",
    "StateChanged",
    "StatusChanged",
    "UsageChanged",
]
