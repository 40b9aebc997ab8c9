"""A faithful SIM7020 emulator: real AT bytes over TCP or a pty, real loopback sockets as remote peers.

Written from the vendor's application note, public drivers' formats and logs of real modules
(``docs/emulator.md`` lists each behaviour with its source); it never imports the driver.
"""

from __future__ import annotations

from .core import Emulator, PsmTimings
from .profiles import PROFILES, Profile
from .radio import DEACTIVATED, REQUESTED, Cell, Grant, Neighbour

__all__ = [
    "DEACTIVATED",
    "PROFILES",
    "REQUESTED",
    "Cell",
    "Emulator",
    "Grant",
    "Neighbour",
    "Profile",
    "PsmTimings",
]
