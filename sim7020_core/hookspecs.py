"""Plugin hook specifications of sim7020 (pluggy project name ``sim7020``).

Plugins implement these hooks with the exported :data:`hookimpl` marker::

    from sim7020_core.hookspecs import hookimpl

    @hookimpl
    def sim7020_register_transports():
        return [MyTransport]

Rules every hook follows:

- hooks are plain functions: **no coroutine ever crosses pluggy** (a hook that has async work to do starts
  a task itself, or returns a class whose async methods the core awaits);
- each hook is documented in ``docs/plugin_hooks.md`` with its signature (a test enforces it);
- third-party plugins are found through the ``sim7020.plugins`` entry-point group; misspelled hook
  implementations are rejected when the plugin manager is built
  (:func:`sim7020_core.plugins.make_plugin_manager`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .markers import PROJECT_NAME, hookimpl, hookspec

if TYPE_CHECKING:
    from .at.engine import Urc
    from .codecs import Codec
    from .connection import Connection, Transport
    from .modem import Modem, ModemEvent


@hookspec(historic=True)
def sim7020_register_transports() -> list[type[Transport]]:
    """Return the transport classes this plugin provides.

    Each class subclasses :class:`sim7020_core.connection.Transport` and carries a unique ``name`` (what
    users pass as ``transport=``) and ``capabilities``. The modem instantiates a class once, on first use,
    with the modem as only argument. Called once when a transport is looked up; results of all plugins are
    merged and a name provided twice is a :class:`~sim7020_core.exceptions.PluginError`.

    :return: a list of Transport subclasses (may be empty)
    """
    raise NotImplementedError


@hookspec
def sim7020_register_urc_handlers(modem: Modem) -> Mapping[str, Callable[[Urc], None]] | None:
    """Return URC handlers to install on a modem's AT engine, keyed by URC prefix.

    Called once per modem after it is initialised (and again after the modem reconnects, on the new
    engine). The modem installs each handler with ``engine.add_urc_handler(prefix, handler)`` and removes
    them when it closes. Handlers run in the event loop, must not block and must not raise.

    :param modem: the :class:`sim7020_core.modem.Modem` being set up
    :return: a mapping ``{"+PREFIX:": handler}`` or None
    """
    raise NotImplementedError


@hookspec(historic=True)
def sim7020_register_codecs() -> Mapping[str, Codec] | None:
    """Return payload codecs keyed by name (what ``encoding:`` names in the bridge config and HA services).

    A codec turns the bytes of a connection into a publishable value and back: ``encode(bytes) -> str |
    bytes`` and ``decode(str | bytes) -> bytes`` (see :class:`sim7020_core.plugins.Codec`). The built-in
    codecs are ``raw``, ``hex``, ``base64`` and ``json``; a name provided twice is a PluginError.

    :return: a mapping ``{name: codec}`` or None
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def sim7020_wake_modem(modem: Modem) -> bool | None:
    """Wake the module from PSM by outside means (e.g. pulse its PWRKEY/DTR line through a GPIO).

    ``firstresult``: the first implementation that returns a non-None value ends the call. Return True when
    the wake-up was triggered, False when it was attempted and failed, None to let another plugin try.
    Implementations must return quickly (start a task for anything slow); the modem then waits for the
    module to answer. With no implementation the modem wakes the module by sending AT (which the UART
    wake-up of SIM7020 honours).

    :param modem: the :class:`sim7020_core.modem.Modem` that needs the module awake
    :return: True, False or None
    """
    raise NotImplementedError


@hookspec
def sim7020_modem_state_changed(modem: Modem, event: ModemEvent) -> None:
    """Be told about a change of a modem's state (what bridges and integrations react to).

    Called by the modem for each :class:`sim7020_core.modem.ModemEvent` it publishes (kinds ``status``,
    ``state``, ``reboot``, ``psm``, ``data``), in the event loop, after the modem's own subscribers.
    Implementations must not block; exceptions are logged and otherwise ignored.

    :param modem: the :class:`sim7020_core.modem.Modem` whose state changed
    :param event: the ModemEvent describing the change
    """


@hookspec
def sim7020_data_received(connection: Connection, data: bytes) -> None:
    """Be told that data arrived on a connection (one datagram for UDP, one chunk for TCP).

    Called in the event loop right after the data was queued for the connection's owner (so the owner still
    receives it through ``receive()``/async iteration). ``connection.remote_host``/``remote_port`` and
    ``connection.transport_name`` identify where it came from. Implementations must not block and must not
    consume the data; exceptions are logged and otherwise ignored.

    :param connection: the :class:`sim7020_core.connection.Connection` the data arrived on
    :param data: the payload bytes
    """


__all__ = [
    "PROJECT_NAME",
    "hookimpl",
    "hookspec",
    "sim7020_data_received",
    "sim7020_modem_state_changed",
    "sim7020_register_codecs",
    "sim7020_register_transports",
    "sim7020_register_urc_handlers",
    "sim7020_wake_modem",
]
