"""sim7020_core: drive SIMCom SIM7020-family NB-IoT modems over their AT interface.

Everything users, plugin authors and integrations need is importable from here (``__all__`` is pinned by
tests/core/test_public_api.py):

- the modem: :class:`Modem` (``await Modem.connect(url)``), :class:`ModemOptions`, the data models
  (:class:`ModemInfo`, :class:`ModemStatus`, :class:`LinkState` …);
- what a modem publishes: :data:`ModemEvent`, a union of :class:`StateChanged`, :class:`StatusChanged`,
  :class:`PsmChanged`, :class:`ModuleReset`, :class:`DataReceived`, :class:`ProblemChanged` (with
  :class:`ModemProblem`, what needs a human) and :class:`UsageChanged` (with :class:`DataUsage`);
- data connections and the transport-plugin contract: :class:`Connection`, :class:`Server`,
  :class:`Transport`, :class:`TransportHost`, :class:`Capabilities`, :class:`SessionSetting`;
- connection lifecycles owned by the library: :class:`PersistentConnection` (opened again after resets and
  losses), :class:`PersistentServer` (listens again after resets) and its :class:`ServerClient`,
  :class:`PersistentState`; the one backoff, :class:`Backoff`, and :func:`describe_error`;
- plugins: :data:`hookimpl`, :class:`PluginManager`, :func:`make_plugin_manager`,
  :func:`async_make_plugin_manager`; payload codecs: :class:`Codec`, :data:`BUILTIN_CODECS`;
- every exception (all derive from :class:`Sim7020Error`).

The modem and the plugin registry are imported lazily (PEP 562), so ``import sim7020_core.emulator`` or the
data models do not load the serial stack.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .codecs import BUILTIN_CODECS, CODEC_ALIASES, Codec
from .connection import (
    Capabilities,
    Connection,
    ReceiveTimeoutError,
    Server,
    SessionSetting,
    Transport,
    TransportHost,
)
from .events import (
    DataReceived,
    ModemEvent,
    ModuleReset,
    ProblemChanged,
    PsmChanged,
    StateChanged,
    StatusChanged,
    UsageChanged,
)
from .exceptions import (
    AtCommandError,
    AtTimeoutError,
    CmeError,
    CommandInterruptedError,
    CommandNotAllowedError,
    ConfigError,
    ConnectionClosedError,
    DataModeError,
    ModemAsleepError,
    NoReplyError,
    NotRegisteredError,
    PayloadError,
    PluginError,
    PortBusyError,
    SendTimeoutError,
    Sim7020Error,
    SimError,
    SocketError,
    TransportError,
    UnsupportedError,
    describe_error,
)
from .markers import hookimpl
from .models import (
    CellInfo,
    DataUsage,
    EdrxStatus,
    LinkState,
    ModemInfo,
    ModemProblem,
    ModemStatus,
    NeighbourCell,
    NetworkSettings,
    PingReply,
    ProblemKind,
    PsmStatus,
    Registration,
)
from .reconnect import Backoff
from .version import __version__

if TYPE_CHECKING:
    from .modem import Modem, ModemOptions
    from .persistent import PersistentConnection, PersistentServer, PersistentState, ServerClient
    from .plugins import PluginManager, async_make_plugin_manager, make_plugin_manager


_LAZY = {
    "Modem": ".modem",
    "ModemOptions": ".modem",
    "PluginManager": ".plugins",
    "PersistentConnection": ".persistent",
    "PersistentServer": ".persistent",
    "PersistentState": ".persistent",
    "ServerClient": ".persistent",
    "async_make_plugin_manager": ".plugins",
    "make_plugin_manager": ".plugins",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "BUILTIN_CODECS",
    "CODEC_ALIASES",
    "AtCommandError",
    "AtTimeoutError",
    "Backoff",
    "Capabilities",
    "CellInfo",
    "CmeError",
    "Codec",
    "CommandInterruptedError",
    "CommandNotAllowedError",
    "ConfigError",
    "Connection",
    "ConnectionClosedError",
    "DataModeError",
    "DataReceived",
    "DataUsage",
    "EdrxStatus",
    "LinkState",
    "Modem",
    "ModemAsleepError",
    "ModemEvent",
    "ModemInfo",
    "ModemOptions",
    "ModemProblem",
    "ModemStatus",
    "ModuleReset",
    "NeighbourCell",
    "NetworkSettings",
    "NoReplyError",
    "NotRegisteredError",
    "PayloadError",
    "PersistentConnection",
    "PersistentServer",
    "PersistentState",
    "PingReply",
    "PluginError",
    "PluginManager",
    "PortBusyError",
    "ProblemChanged",
    "ProblemKind",
    "PsmChanged",
    "PsmStatus",
    "ReceiveTimeoutError",
    "Registration",
    "SendTimeoutError",
    "Server",
    "ServerClient",
    "SessionSetting",
    "Sim7020Error",
    "SimError",
    "SocketError",
    "StateChanged",
    "StatusChanged",
    "Transport",
    "TransportError",
    "TransportHost",
    "UnsupportedError",
    "UsageChanged",
    "__version__",
    "async_make_plugin_manager",
    "describe_error",
    "hookimpl",
    "make_plugin_manager",
]
