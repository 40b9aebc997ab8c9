"""sim7020_core: drive SIMCom SIM7020-family NB-IoT modems over their AT interface.

``from sim7020_core import Modem`` is the entry point (see :mod:`sim7020_core.modem`). The modem
manager is imported lazily (PEP 562), so ``import sim7020_core.emulator`` or the data models do not
load the serial stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .exceptions import (
    AtCommandError,
    AtTimeoutError,
    CmeError,
    CommandInterruptedError,
    CommandNotAllowedError,
    ConfigError,
    ModemAsleepError,
    NotRegisteredError,
    Sim7020Error,
    SimError,
    SocketError,
    TransportError,
)
from .markers import hookimpl
from .models import CellInfo, LinkState, ModemInfo, ModemStatus, PingReply, PsmStatus, Registration

if TYPE_CHECKING:
    from .connection import Capabilities, Connection, Server, Transport
    from .modem import Modem, ModemEvent, ModemOptions

__version__ = "0.1.0"

_LAZY = {
    "Capabilities": ".connection",
    "Connection": ".connection",
    "Modem": ".modem",
    "ModemEvent": ".modem",
    "ModemOptions": ".modem",
    "Server": ".connection",
    "Transport": ".connection",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "AtCommandError",
    "Capabilities",
    "Connection",
    "AtTimeoutError",
    "CellInfo",
    "CmeError",
    "CommandInterruptedError",
    "CommandNotAllowedError",
    "ConfigError",
    "LinkState",
    "Modem",
    "ModemAsleepError",
    "ModemEvent",
    "ModemInfo",
    "ModemOptions",
    "ModemStatus",
    "NotRegisteredError",
    "PingReply",
    "PsmStatus",
    "Registration",
    "Server",
    "Sim7020Error",
    "SimError",
    "SocketError",
    "Transport",
    "TransportError",
    "__version__",
    "hookimpl",
]
