"""AT layer: the incremental parser and the command engine.

``from sim7020_core.at import AtEngine, AtResponse, Urc, Priority`` — see :mod:`.engine`;
payload rules for plugins (``CSONMI_RAW_RULE`` …) live in :mod:`.parser`.
"""

from __future__ import annotations

from .engine import AtEngine, AtResponse, EngineStats, Priority, Urc, UrcHandler, command_name
from .parser import (
    CIPRXGET_RULE,
    CSONMI_RAW_RULE,
    CSORXGET_RAW_RULE,
    IPD_RULE,
    RECEIVE_RULE,
    AtParser,
    PayloadRule,
)

__all__ = [
    "CIPRXGET_RULE",
    "CSONMI_RAW_RULE",
    "CSORXGET_RAW_RULE",
    "IPD_RULE",
    "RECEIVE_RULE",
    "AtEngine",
    "AtParser",
    "AtResponse",
    "EngineStats",
    "PayloadRule",
    "Priority",
    "Urc",
    "UrcHandler",
    "command_name",
]
