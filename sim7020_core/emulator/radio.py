"""The emulated radio environment: the serving cell, its neighbours, and what the network grants.

These are plain values the Emulator is built with (``Emulator(cell=Cell(...), grant=Grant(...))``, or the
same as mappings, as a YAML file or a transcript gives them) and changes at run time (``change_cell``,
``set_grant``). They are the *network's* side: which firmware prints them how is the profile's business
(``profiles.py``).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["DEACTIVATED", "REQUESTED", "VARIANT_BANDS", "Cell", "Grant", "Neighbour", "as_cell", "as_grant"]

#: A grant field with this value gives the requested value back (the network honours the request).
REQUESTED = "requested"
#: The 3GPP 24.008 timer value "deactivated" (unit bits 111): PSM not granted / extended TAU not in use.
DEACTIVATED = "11100000"

_BITS8 = re.compile(r"^[01]{8}$")
_BITS4 = re.compile(r"^[01]{4}$")
_HEX = re.compile(r"^[0-9A-F]+$")


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A neighbour cell line of ``AT+CENG?``: ``+CENG: <earfcn>,<offset>,<pci>,<rsrp>``."""

    earfcn: int
    earfcn_offset: int
    pci: int
    rsrp: int


@dataclass(frozen=True, slots=True)
class Cell:
    """The serving cell, as ``+CEREG``, ``+CREG`` and ``AT+CENG?`` report it.

    ``tac`` (2 bytes) and ``cell_id`` (4 bytes) are upper-case hex, as the module quotes them. ``rsrp``,
    ``rssi`` and ``re_rsrp`` None follow the signal set with ``set_signal`` (RSSI = -113 + 2 x CSQ, RSRP =
    RSSI - 10); given, they are fixed. ``tx_power`` None prints the empty field of an idle module.
    """

    tac: str = "1A2B"
    cell_id: str = "0C3D4E5F"
    earfcn: int = 3683
    earfcn_offset: int = 0
    pci: int = 129
    band: int = 8
    rsrp: int | None = None
    rsrq: int = -10
    rssi: int | None = None
    snr: int = 12
    ecl: int = 0
    tx_power: int | None = None
    re_rsrp: int | None = None
    neighbours: tuple[Neighbour, ...] = (Neighbour(3683, 0, 130, -91), Neighbour(3683, 0, 131, -97))

    def __post_init__(self) -> None:
        if len(self.tac) != 4 or not _HEX.match(self.tac):
            raise ValueError(f"cell tac must be 4 upper-case hex digits, got {self.tac!r}")
        if len(self.cell_id) != 8 or not _HEX.match(self.cell_id):
            raise ValueError(f"cell cell_id must be 8 upper-case hex digits, got {self.cell_id!r}")
        if not 0 <= self.pci <= 503:
            raise ValueError(f"cell pci must be 0..503, got {self.pci}")

    def replace(self, **changes: Any) -> Cell:
        """A copy with some fields changed (``neighbours`` may be given as tuples or mappings)."""
        if "neighbours" in changes:
            changes["neighbours"] = _neighbours(changes["neighbours"])
        return dataclasses.replace(self, **changes)


def _neighbours(value: Sequence[Any]) -> tuple[Neighbour, ...]:
    out: list[Neighbour] = []
    for item in value:
        if isinstance(item, Neighbour):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(Neighbour(**item))
        else:
            out.append(Neighbour(*item))
    return tuple(out)


def as_cell(value: Cell | Mapping[str, Any] | None) -> Cell:
    """A :class:`Cell` from itself, a mapping of its fields, or None (the default cell)."""
    if value is None:
        return Cell()
    if isinstance(value, Cell):
        return value
    try:
        return Cell().replace(**dict(value))
    except TypeError as err:
        raise ValueError(f"bad cell {dict(value)!r}: {err}") from None


@dataclass(frozen=True, slots=True)
class Grant:
    """What the network grants when the module asks (3GPP 24.008 bit strings).

    ``active_time`` (T3324) and ``periodic_tau`` (T3412 extended): :data:`REQUESTED` grants what
    ``AT+CPSMS`` asked for, a bit string overrides it (``DEACTIVATED`` refuses). ``edrx``: REQUESTED, a
    4-bit value, or None (eDRX refused); ``paging_time_window`` is the 4-bit PTW the network adds.
    """

    active_time: str = REQUESTED
    periodic_tau: str = REQUESTED
    edrx: str | None = REQUESTED
    paging_time_window: str = "0011"

    def __post_init__(self) -> None:
        for name in ("active_time", "periodic_tau"):
            value = getattr(self, name)
            if value != REQUESTED and not _BITS8.match(value):
                raise ValueError(f"grant {name} must be {REQUESTED!r} or 8 bits, got {value!r}")
        if self.edrx not in (None, REQUESTED) and not _BITS4.match(self.edrx):
            raise ValueError(f"grant edrx must be {REQUESTED!r}, None or 4 bits, got {self.edrx!r}")
        if not _BITS4.match(self.paging_time_window):
            raise ValueError(f"grant paging_time_window must be 4 bits, got {self.paging_time_window!r}")

    def replace(self, **changes: Any) -> Grant:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def as_grant(value: Grant | Mapping[str, Any] | None) -> Grant:
    """A :class:`Grant` from itself, a mapping of its fields, or None (the network grants the requests)."""
    if value is None:
        return Grant()
    if isinstance(value, Grant):
        return value
    try:
        return Grant(**dict(value))
    except TypeError as err:
        raise ValueError(f"bad grant {dict(value)!r}: {err}") from None


#: Bands of each SIM7020 variant, from the application note's table of variants (chapter 1).
VARIANT_BANDS: dict[str, tuple[int, ...]] = {
    "SIM7020C": (1, 3, 5, 8),
    "SIM7020E": (1, 3, 5, 8, 20, 28),
    "SIM7020G": (1, 2, 3, 4, 5, 8, 12, 13, 17, 18, 19, 20, 25, 26, 28, 66, 70, 71, 85),
}
