"""The plugin registry: one :class:`PluginManager` per application, its factory, and the look-ups it serves.

Whoever composes an application builds one plugin manager and hands it to everything that needs plugins: the
CLI, the bridge (config validation, codecs, every modem), the Home Assistant entry, or :meth:`Modem.connect
<sim7020_core.modem.Modem.connect>` when nobody passed one. :func:`async_make_plugin_manager` builds it in a
worker thread, because importing plugins and reading entry points reads files (Home Assistant reports that as
blocking the event loop).

Every plugin, built-in or not, comes from the ``sim7020.plugins`` entry-point group: the built-in
transports (``native``, ``cip``, ``transparent``, ``udp_extended``) and codecs (``codecs``) are entry points
of the ``sim7020`` distribution, found exactly like a third party's. Then ``check_pending()`` rejects any
``sim7020_*`` function that matches no hook (a misspelled hook name) with a
:class:`~sim7020_core.exceptions.PluginError` naming the plugin and the hook.

Hooks are called through ``pm.hook.<name>(...)``, so pluggy's ordering, wrappers and tracing apply:

- ``sim7020_register_transports`` and ``sim7020_register_codecs`` are *historic*: the manager calls them
  once when it is built (:meth:`pluggy.HookCaller.call_historic`) and pluggy calls every plugin registered
  later, so a late ``pm.register(plugin)`` still adds its transports and codecs. The results are checked and
  merged into the manager's tables as they arrive, and a plugin whose result is invalid (a name registered
  twice, not a Transport subclass, a codec without ``decode``) is refused at registration with a PluginError
  naming it.
- The notification hooks (``sim7020_modem_state_changed``, ``sim7020_data_received``) promise that one
  plugin's failure does not keep the others from being told. pluggy ends a call at the first exception, so
  each of their implementations is wrapped once, when its plugin is registered, in a guard that logs the
  failure (naming the plugin) and lets the call go on. ``sim7020_wake_modem`` implementations are guarded
  the same way (a failing one counts as "tried and failed": False), and ``sim7020_register_urc_handlers``
  implementations have their result checked and each handler guarded, naming the plugin. Hook wrappers
  (``wrapper=True``) are left alone.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.metadata
import inspect
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, cast

import pluggy

from . import hookspecs
from .codecs import CODEC_ALIASES, Codec
from .connection import Transport
from .exceptions import PluginError
from .markers import PROJECT_NAME

if TYPE_CHECKING:
    from .at.engine import Urc

_LOGGER = logging.getLogger(__name__)

#: Entry-point group every plugin (built-in or third-party) registers under.
ENTRY_POINT_GROUP = "sim7020.plugins"

_NOTIFICATION_HOOKS = ("sim7020_modem_state_changed", "sim7020_data_received")


class PluginManager(pluggy.PluginManager):
    """The pluggy plugin manager of sim7020, with the transports and codecs its plugins registered.

    Build it with :func:`make_plugin_manager` (or :func:`async_make_plugin_manager` inside an event loop).
    Every ``sim7020_*`` function of a plugin is taken as a hook implementation, marked or not (as pytest does
    for ``pytest_*``), so that ``check_pending()`` reports a misspelled hook instead of ignoring it.
    """

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.add_hookspecs(hookspecs)
        self._transports: dict[str, type[Transport]] = {}
        self._codecs: dict[str, Codec] = {}
        self._owners: dict[tuple[str, str], str] = {}  # ("transport" | "codec", name) -> plugin name
        self._registering: str | None = None  # the plugin whose historic results are arriving
        # Historic: recorded now (no plugin yet) and replayed by pluggy for every plugin registered later.
        self.hook.sim7020_register_transports.call_historic(result_callback=self._add_transports)
        self.hook.sim7020_register_codecs.call_historic(result_callback=self._add_codecs)

    # ------------------------------------------------------------------ registration

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(PROJECT_NAME + "_"):
            method = getattr(plugin, name, None)
            if inspect.isroutine(method):
                return pluggy.HookimplOpts(
                    wrapper=False,
                    hookwrapper=False,
                    optionalhook=False,
                    tryfirst=False,
                    trylast=False,
                    specname=None,
                )
        return opts

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin`` (see :meth:`pluggy.PluginManager.register`).

        :raises PluginError: its hooks do not match the specifications, its name is taken, or the transports
            or codecs it registers are invalid (the plugin is then not registered)
        """
        plugin_name = name or self.get_canonical_name(plugin)
        self._registering = plugin_name
        try:
            registered = super().register(plugin, name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(self._describe_validation_error(exc)) from exc
        except ValueError as exc:  # the name or the object is registered already
            raise PluginError(f"plugin {plugin_name!r} cannot be registered: {exc}") from exc
        except PluginError:
            if self.is_registered(plugin):
                self.unregister(plugin)
            raise
        finally:
            self._registering = None
        if registered is not None:
            self._guard_implementations(plugin, registered)
        return registered

    def unregister(self, plugin: object | None = None, name: str | None = None) -> Any | None:
        """Unregister a plugin and forget the transports and codecs it registered."""
        plugin_name = name if name is not None else (self.get_name(plugin) if plugin is not None else None)
        removed = super().unregister(plugin, name)
        if plugin_name is not None:
            for kind, entry in [key for key, owner in self._owners.items() if owner == plugin_name]:
                del self._owners[(kind, entry)]
                table: dict[str, Any] = self._transports if kind == "transport" else self._codecs
                table.pop(entry, None)
        return removed

    def _add_transports(self, result: object) -> None:
        plugin = self._registering or "?"
        for cls in cast("Iterable[object]", result or ()):
            if not (isinstance(cls, type) and issubclass(cls, Transport)):
                raise PluginError(
                    f"plugin {plugin!r} returned {cls!r} from sim7020_register_transports, "
                    "not a Transport subclass"
                )
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(f"transport class {cls.__qualname__} of plugin {plugin!r} has no name")
            self._claim("transport", name, plugin)
            self._transports[name] = cls

    def _add_codecs(self, result: object) -> None:
        plugin = self._registering or "?"
        if result is None:
            return
        if not isinstance(result, Mapping):
            raise PluginError(
                f"plugin {plugin!r} returned {type(result).__name__} from sim7020_register_codecs, "
                "not a mapping of name to codec"
            )
        for name, codec in result.items():
            if not isinstance(name, str) or not name:
                raise PluginError(f"plugin {plugin!r} registered a codec without a name: {name!r}")
            if not isinstance(codec, Codec):
                raise PluginError(f"codec {name!r} of plugin {plugin!r} lacks encode()/decode()")
            self._claim("codec", name, plugin)
            self._codecs[name] = codec

    def _claim(self, kind: str, name: str, plugin: str) -> None:
        owner = self._owners.get((kind, name))
        if owner is not None and owner != plugin:
            raise PluginError(f"{kind} {name!r} is registered by both {owner!r} and {plugin!r}")
        self._owners[(kind, name)] = plugin

    def _guard_implementations(self, plugin: object, plugin_name: str) -> None:
        """Wrap this plugin's implementations of the guarded hooks (see the module docstring)."""
        guards: dict[str, Callable[[Callable[..., Any], str], Callable[..., Any]]] = dict.fromkeys(
            _NOTIFICATION_HOOKS, _notification_guard
        )
        guards["sim7020_wake_modem"] = _wake_guard
        guards["sim7020_register_urc_handlers"] = _urc_handlers_guard
        for hook_name, guard in guards.items():
            caller: pluggy.HookCaller = getattr(self.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin is plugin and not (impl.wrapper or impl.hookwrapper):
                    # HookImpl.function is what pluggy calls; the guard keeps its arguments as they are.
                    object.__setattr__(impl, "function", guard(impl.function, plugin_name))

    def _describe_validation_error(self, exc: pluggy.PluginValidationError) -> str:
        plugin_name = self.get_name(exc.plugin) or self._registering or repr(exc.plugin)
        unknown = [
            name
            for name, caller in vars(self.hook).items()
            if isinstance(caller, pluggy.HookCaller)
            and not caller.has_spec()
            and any(impl.plugin is exc.plugin for impl in caller.get_hookimpls())
        ]
        if unknown:
            return (
                f"plugin {plugin_name!r} implements unknown hook(s) {', '.join(sorted(unknown))} "
                f"(known hooks: {', '.join(_hook_names())})"
            )
        return f"plugin {plugin_name!r} is invalid: {exc}"

    def check_pending(self) -> None:
        """Refuse ``sim7020_*`` functions that match no hook (see :meth:`pluggy.PluginManager.check_pending`).

        :raises PluginError: naming the plugin and the unknown hook, and listing the known hooks
        """
        try:
            super().check_pending()
        except pluggy.PluginValidationError as exc:
            raise PluginError(self._describe_validation_error(exc)) from exc

    # ------------------------------------------------------------------ look-ups

    @property
    def transports(self) -> Mapping[str, type[Transport]]:
        """Every transport class the plugins registered, by name."""
        return dict(self._transports)

    @property
    def codecs(self) -> Mapping[str, Codec]:
        """Every payload codec the plugins registered, by name."""
        return dict(self._codecs)

    def transport_class(self, name: str) -> type[Transport]:
        """The transport class called ``name``.

        :raises PluginError: no plugin provides it (the message lists the installed transports)
        """
        try:
            return self._transports[name]
        except KeyError:
            raise PluginError(
                f"no transport named {name!r} (available: {_choices(self._transports)})"
            ) from None

    def codec(self, name: str) -> Codec:
        """The payload codec called ``name``, or named by an older spelling in
        :data:`~sim7020_core.codecs.CODEC_ALIASES`.

        :raises PluginError: no plugin provides it (the message lists the installed codecs)
        """
        try:
            return self._codecs[name]
        except KeyError:
            pass
        try:
            return self._codecs[CODEC_ALIASES[name]]
        except KeyError:
            raise PluginError(
                f"no payload encoding named {name!r} (available: {_choices(self._codecs)})"
            ) from None


def _choices(table: Mapping[str, object]) -> str:
    if table:
        return ", ".join(sorted(table))
    return (
        f"none; is the sim7020 distribution installed? its plugins are entry points of {ENTRY_POINT_GROUP!r}"
    )


def _hook_names() -> list[str]:
    return sorted(n for n in dir(hookspecs) if n.startswith(PROJECT_NAME + "_"))


def _notification_guard(function: Callable[..., Any], plugin: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def guarded(*args: Any) -> None:
        try:
            function(*args)
        except Exception:
            _LOGGER.exception("plugin %r failed in %s", plugin, function.__name__)

    return guarded


def _wake_guard(function: Callable[..., Any], plugin: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def guarded(*args: Any) -> bool | None:
        try:
            result = function(*args)
        except Exception:
            _LOGGER.exception("plugin %r failed to wake the module", plugin)
            return False
        return None if result is None else bool(result)

    return guarded


def _urc_handlers_guard(function: Callable[..., Any], plugin: str) -> Callable[..., Any]:
    @functools.wraps(function)
    def checked(*args: Any) -> dict[str, Callable[[Urc], None]] | None:
        handlers = function(*args)
        if handlers is None:
            return None
        if not isinstance(handlers, Mapping):
            raise PluginError(
                f"plugin {plugin!r} returned {type(handlers).__name__} from "
                "sim7020_register_urc_handlers, not a mapping of URC prefix to handler"
            )
        checked_handlers: dict[str, Callable[[Urc], None]] = {}
        for prefix, handler in handlers.items():
            if not isinstance(prefix, str) or not prefix or not callable(handler):
                raise PluginError(f"plugin {plugin!r} registered an invalid URC handler {prefix!r}")
            checked_handlers[prefix] = _guarded_urc_handler(handler, plugin)
        return checked_handlers

    return checked


def _guarded_urc_handler(handler: Callable[[Urc], None], plugin: str) -> Callable[[Urc], None]:
    def call(urc: Urc) -> None:
        try:
            handler(urc)
        except Exception:
            _LOGGER.exception("URC handler of plugin %r failed on %r", plugin, urc)

    return call


# ------------------------------------------------------------------ factory


def make_plugin_manager(
    *,
    load_entrypoints: bool = True,
    plugins: Iterable[object] = (),
    disable: Iterable[str] = (),
) -> PluginManager:
    """Build a plugin manager with the plugins of the ``sim7020.plugins`` entry points, and validate them.

    This reads files (entry points, plugin modules): in an event loop use :func:`async_make_plugin_manager`.

    :param load_entrypoints: load the plugins of the entry-point group (the built-in transports and codecs are
        entry points too: without them only ``plugins`` are registered)
    :param plugins: extra plugin objects (modules or instances) to register after the entry points, e.g. in
        tests or for a vendored copy that has no entry points
    :param disable: entry-point names not to load (``native``, ``cip``, ``codecs``, a third party's name …)
    :raises PluginError: a plugin cannot be imported, its hooks do not match the specifications, it defines a
        ``sim7020_*`` function that is no known hook, or it registers an invalid or duplicate transport or
        codec (the message names the plugin)
    """
    pm = PluginManager()
    for name in disable:
        pm.set_blocked(name)
    if load_entrypoints:
        _load_entrypoints(pm)
    for plugin in plugins:
        if not pm.is_registered(plugin):
            pm.register(plugin)
    pm.check_pending()
    return pm


async def async_make_plugin_manager(
    *,
    load_entrypoints: bool = True,
    plugins: Iterable[object] = (),
    disable: Iterable[str] = (),
) -> PluginManager:
    """:func:`make_plugin_manager` in a worker thread, so the event loop never waits for the file reads."""
    return await asyncio.to_thread(
        make_plugin_manager, load_entrypoints=load_entrypoints, plugins=list(plugins), disable=list(disable)
    )


def _load_entrypoints(pm: PluginManager) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(ep.name) or pm.get_plugin(ep.name) is not None:
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} (entry point {ep.value!r} in group {ENTRY_POINT_GROUP!r}) "
                f"cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        if pm.is_registered(plugin):  # the same module listed twice
            continue
        pm.register(plugin, name=ep.name)


__all__ = [
    "ENTRY_POINT_GROUP",
    "PluginManager",
    "async_make_plugin_manager",
    "make_plugin_manager",
]
