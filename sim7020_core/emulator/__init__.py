"""A faithful SIM7020 emulator: real AT bytes over TCP or a pty, real loopback sockets as remote peers.

Written from the vendor's application note and ``AT_NOTES.md`` only; it never imports the driver.
See ``docs/emulator.md``.
"""

from __future__ import annotations

from .core import Emulator, PsmTimings

__all__ = ["Emulator", "PsmTimings"]
