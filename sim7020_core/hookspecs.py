"""Plugin hook specifications of sim7020 (pluggy project name ``sim7020``).

Plugins implement these hooks with the exported :data:`hookimpl` marker::

    from sim7020_core import hookimpl

    @hookimpl
    def sim7020_register_transports():
        return [MyTransport]

Rules every hook follows:

- hooks are plain functions: **no coroutine ever crosses pluggy** (a hook that has async work to do starts
  a task itself, or returns a class whose async methods the core awaits);
- each hook is documented in ``docs/plugin_hooks.md`` with its signature and its ``firstresult``/``historic``
  flags (a test enforces both);
- the core calls every hook through its plugin manager (``pm.hook.<name>``; see
  :mod:`sim7020_core.plugins`), which finds plugins in the ``sim7020.plugins`` entry-point group and rejects
  misspelled hook implementations when it is built.

This module is a leaf above the transport contract: it imports only the modules its annotations name (the AT
engine's ``Urc``, :mod:`~sim7020_core.connection`, :mod:`~sim7020_core.codecs`, :mod:`~sim7020_core.events`),
never the modem or the registry. A hook's ``modem`` argument is a :class:`~sim7020_core.modem.Modem`, typed as
the :class:`~sim7020_core.connection.TransportHost` protocol: what plugins may rely on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .markers import PROJECT_NAME, hookimpl, hookspec

if TYPE_CHECKING:
    from .at.engine import Urc
    from .codecs import Codec
    from .connection import Connection, Transport, TransportHost
    from .events import ModemEvent


@hookspec(historic=True)
def sim7020_register_transports() -> list[type[Transport]]:
    """Return the transport classes this plugin provides.

    Each class subclasses :class:`sim7020_core.connection.Transport` and carries a unique ``name`` (what
    users pass as ``transport=``) and ``capabilities``. The modem instantiates a class once, on first use,
    with the modem as only argument.

    ``historic``: the plugin manager calls it once when it is built, and pluggy calls it for every plugin
    registered later. Each result is checked as it arrives: something that is no Transport subclass, a class
    without a name, or a name another plugin registered already is a
    :class:`~sim7020_core.exceptions.PluginError` naming the plugin, which is then not registered.

    :return: a list of Transport subclasses (may be empty)
    """
    raise NotImplementedError


@hookspec
def sim7020_register_urc_handlers(modem: TransportHost) -> Mapping[str, Callable[[Urc], None]] | None:
    """Return URC handlers to install on a modem's AT engine, keyed by URC prefix.

    Called once per modem when it connects, before the module is initialised, so the handlers see every URC
    from the first byte (also those the module sends while it is initialised). The modem installs each
    handler with ``engine.add_urc_handler(prefix, handler)``; they stay installed across reconnects and are
    removed when the modem closes. Handlers run in the event loop and must not block; an exception is logged
    with the plugin's name.

    :param modem: the :class:`sim7020_core.modem.Modem` being set up
    :return: a mapping ``{"+PREFIX:": handler}`` or None
    """
    raise NotImplementedError


@hookspec(historic=True)
def sim7020_register_codecs() -> Mapping[str, Codec] | None:
    """Return payload codecs keyed by name (what ``encoding`` names in the bridge config, the CLI and HA).

    A codec turns the bytes of a connection into a publishable value and back: ``encode(bytes) -> str |
    bytes`` and ``decode(str | bytes) -> bytes`` (see :class:`sim7020_core.codecs.Codec`). The built-in
    codecs are ``raw``, ``hex``, ``base64`` and ``json``. ``historic`` and checked on arrival, like
    :func:`sim7020_register_transports`; a name provided twice is a PluginError.

    :return: a mapping ``{name: codec}`` or None
    """
    raise NotImplementedError


@hookspec(firstresult=True)
def sim7020_wake_modem(modem: TransportHost) -> bool | None:
    """Wake the module from PSM by outside means (e.g. pulse its PWRKEY/DTR line through a GPIO).

    Asked whenever the module must be woken: a command while it sleeps in PSM, and :meth:`Modem.connect
    <sim7020_core.modem.Modem.connect>` when the module does not answer at first. ``firstresult``: the
    first implementation that returns a non-None value ends the call. Return True when the wake-up was
    triggered, False when it was attempted and failed, None to let another plugin try (an exception counts
    as False). Implementations must return quickly (start a task for anything slow); the modem then waits
    for the module to answer. With no implementation the modem wakes the module by sending AT (which the
    UART wake-up of SIM7020 honours).

    :param modem: the :class:`sim7020_core.modem.Modem` that needs the module awake
    :return: True, False or None
    """
    raise NotImplementedError


@hookspec
def sim7020_modem_state_changed(modem: TransportHost, event: ModemEvent) -> None:
    """Be told about a change of a modem's state (what bridges and integrations react to).

    Called by the modem for each :data:`~sim7020_core.events.ModemEvent` it publishes (``StateChanged``,
    ``StatusChanged``, ``PsmChanged``, ``ModuleReset``, ``DataReceived``), from the first one on (a plugin
    sees ``Modem.connect`` take the modem from ``connecting`` to ``ready``), in the event loop, after the
    modem's own subscribers. Implementations must not block; an exception is logged with the plugin's name
    and the other plugins are still told.

    :param modem: the :class:`sim7020_core.modem.Modem` whose state changed
    :param event: the event describing the change
    """


@hookspec
def sim7020_data_received(connection: Connection, data: bytes) -> None:
    """Be told that data arrived on a connection (one datagram for UDP, one chunk for TCP).

    Called in the event loop right after the data was queued for the connection's owner (so the owner still
    receives it through ``receive()``/async iteration). ``connection.remote_host``/``remote_port`` and
    ``connection.transport_name`` identify where it came from. Implementations must not block and must not
    consume the data; an exception is logged with the plugin's name and the other plugins are still told.

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
