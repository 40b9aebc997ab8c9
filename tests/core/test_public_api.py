"""The public surface of ``sim7020_core`` is pinned: what users, plugin authors and Home Assistant import.

Adding a name to ``__all__`` (or dropping one) is a decision: change EXPECTED with it, and docs/internals.md.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import types

import sim7020_core
from sim7020_core import exceptions

EXPECTED = {
    # the modem and its data
    "Modem",
    "ModemOptions",
    "ModemInfo",
    "ModemStatus",
    "NeighbourCell",
    "LinkState",
    "Registration",
    "PsmStatus",
    "CellInfo",
    "EdrxStatus",
    "NetworkSettings",
    "PingReply",
    "ModemProblem",
    "ProblemKind",
    "DataUsage",
    # what a modem publishes
    "ModemEvent",
    "StateChanged",
    "StatusChanged",
    "PsmChanged",
    "ModuleReset",
    "DataReceived",
    "ProblemChanged",
    "UsageChanged",
    # data connections and the transport-plugin contract
    "Connection",
    "Server",
    "Transport",
    "TransportHost",
    "Capabilities",
    # connection lifecycles owned by the library, and its one backoff
    "PersistentConnection",
    "PersistentServer",
    "PersistentState",
    "ServerClient",
    "Backoff",
    "describe_error",
    "SessionSetting",
    # plugins and codecs
    "hookimpl",
    "PluginManager",
    "make_plugin_manager",
    "async_make_plugin_manager",
    "Codec",
    "BUILTIN_CODECS",
    "CODEC_ALIASES",
    # exceptions
    "Sim7020Error",
    "TransportError",
    "PortBusyError",
    "AtCommandError",
    "CmeError",
    "AtTimeoutError",
    "NotRegisteredError",
    "SimError",
    "ModemAsleepError",
    "CommandInterruptedError",
    "DataModeError",
    "CommandNotAllowedError",
    "SocketError",
    "ConnectionClosedError",
    "NoReplyError",
    "PayloadError",
    "ReceiveTimeoutError",
    "SendTimeoutError",
    "UnsupportedError",
    "PluginError",
    "ConfigError",
    "__version__",
}


def test_all_is_pinned() -> None:
    assert set(sim7020_core.__all__) == EXPECTED
    assert len(sim7020_core.__all__) == len(EXPECTED)  # no name listed twice


def test_every_exported_name_resolves() -> None:
    for name in sim7020_core.__all__:
        assert getattr(sim7020_core, name) is not None, name


def test_every_exception_of_the_library_is_exported() -> None:
    defined = {
        name
        for name, obj in vars(exceptions).items()
        if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == exceptions.__name__
    }
    assert defined <= set(sim7020_core.__all__)
    for name in sim7020_core.__all__:
        obj = getattr(sim7020_core, name)
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            assert issubclass(obj, sim7020_core.Sim7020Error), name  # one root


def test_everything_of_ours_at_the_top_is_listed() -> None:
    """A class or function of the library reachable as ``sim7020_core.X`` is in ``__all__`` (the typing
    helpers the package's own code imports are not)."""
    ours = {
        name
        for name, value in vars(sim7020_core).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", "").startswith("sim7020_core")
    }
    assert ours <= set(sim7020_core.__all__), ours - set(sim7020_core.__all__)
    assert not {"Any", "TYPE_CHECKING", "annotations", "importlib"} & set(sim7020_core.__all__)


def test_import_paths_that_plugins_use_still_work() -> None:
    """docs/plugin_hooks.md shows these; third-party plugins written from it import them."""
    from sim7020_core.connection import Capabilities, Connection, Server, Transport
    from sim7020_core.hookspecs import hookimpl

    assert (Capabilities, Connection, Server, Transport) == (
        sim7020_core.Capabilities,
        sim7020_core.Connection,
        sim7020_core.Server,
        sim7020_core.Transport,
    )
    assert hookimpl is sim7020_core.hookimpl


def test_importing_the_package_does_not_load_the_serial_stack() -> None:
    code = (
        "import sys, sim7020_core, sim7020_core.emulator\n"
        "heavy = ('serial', 'serial_asyncio_fast', 'sim7020_core.link', 'sim7020_core.modem')\n"
        "loaded = [m for m in heavy if m in sys.modules]\n"
        "print(loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
