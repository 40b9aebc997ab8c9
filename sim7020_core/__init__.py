"""sim7020_core: drive SIMCom SIM7020-family NB-IoT modems over their AT interface."""

from __future__ import annotations

from .exceptions import (
    AtCommandError,
    AtTimeoutError,
    CmeError,
    ConfigError,
    Sim7020Error,
    SocketError,
)
from .models import CellInfo, LinkState, ModemInfo, ModemStatus, PingReply, PsmStatus, Registration

__version__ = "0.1.0"

__all__ = [
    "AtCommandError",
    "AtTimeoutError",
    "CellInfo",
    "CmeError",
    "ConfigError",
    "LinkState",
    "ModemInfo",
    "ModemStatus",
    "PingReply",
    "PsmStatus",
    "Registration",
    "Sim7020Error",
    "SocketError",
    "__version__",
]
