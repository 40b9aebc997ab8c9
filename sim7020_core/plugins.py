"""Plugin manager factory, transport and codec look-up, and the built-in payload codecs.

There is no import-time global plugin manager: :func:`make_plugin_manager` builds one per call. Built-in
plugins are registered explicitly (:data:`DEFAULT_PLUGINS`, like datasette), third-party plugins come from the
``sim7020.plugins`` entry-point group, and ``check_pending()`` then rejects any ``sim7020_*`` function that
matches no hook (a misspelled hook name) with a :class:`~sim7020_core.exceptions.PluginError` naming the
plugin and the hook.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import importlib
import importlib.metadata
import inspect
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

import pluggy

from . import hookspecs
from .exceptions import PayloadError, PluginError

if TYPE_CHECKING:
    from .at.engine import AtEngine, Urc
    from .connection import Transport
    from .modem import Modem, ModemEvent

_LOGGER = logging.getLogger(__name__)

#: Entry-point group third-party plugins register under.
ENTRY_POINT_GROUP = "sim7020.plugins"

#: Built-in plugin modules, registered explicitly (by module name) before third-party plugins.
DEFAULT_PLUGINS: tuple[str, ...] = (
    "sim7020_core.plugins",
    "sim7020_plugins.native",
    "sim7020_plugins.cip",
    "sim7020_plugins.transparent",
    "sim7020_plugins.udp_extended",
)


# --------------------------------------------------------------------------- codecs


@runtime_checkable
class Codec(Protocol):
    """Turns connection bytes into a publishable value and back (MQTT payloads, HA service fields)."""

    name: str

    def encode(self, data: bytes) -> str | bytes:
        """Represent received bytes (raises PayloadError when the bytes cannot be represented)."""
        ...

    def decode(self, value: str | bytes) -> bytes:
        """Turn a user-supplied value into the bytes to send (raises PayloadError naming what is wrong)."""
        ...


def _as_text(value: str | bytes, codec: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        try:
            return bytes(value).decode("ascii")
        except UnicodeDecodeError as exc:
            raise PayloadError(f"{codec} payload must be ASCII text: {exc}") from None
    raise PayloadError(f"{codec} payload must be str or bytes, not {type(value).__name__}")


class RawCodec:
    """Bytes unchanged; text is sent as UTF-8."""

    name = "raw"

    def encode(self, data: bytes) -> bytes:
        return bytes(data)

    def decode(self, value: str | bytes) -> bytes:
        if isinstance(value, str):
            return value.encode("utf-8")
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value)
        raise PayloadError(f"raw payload must be str or bytes, not {type(value).__name__}")


class HexCodec:
    """Lower-case hex text; decoding ignores whitespace and accepts either case."""

    name = "hex"

    def encode(self, data: bytes) -> str:
        return bytes(data).hex()

    def decode(self, value: str | bytes) -> bytes:
        text = "".join(_as_text(value, "hex").split())
        try:
            return bytes.fromhex(text)
        except ValueError as exc:
            raise PayloadError(f"payload is not valid hex ({exc}): {text[:40]!r}") from None


class Base64Codec:
    """Standard base64 (RFC 4648) text; decoding is strict about the alphabet and padding."""

    name = "base64"

    def encode(self, data: bytes) -> str:
        return base64.b64encode(bytes(data)).decode("ascii")

    def decode(self, value: str | bytes) -> bytes:
        text = "".join(_as_text(value, "base64").split())
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise PayloadError(f"payload is not valid base64 ({exc}): {text[:40]!r}") from None


class JsonCodec:
    """JSON text carried as UTF-8; both directions check the payload really is JSON."""

    name = "json"

    def encode(self, data: bytes) -> str:
        try:
            text = bytes(data).decode("utf-8")
            json.loads(text)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PayloadError(f"received payload is not JSON ({exc}): {bytes(data)[:40]!r}") from None
        return text

    def decode(self, value: object) -> bytes:
        if isinstance(value, bytes | bytearray | memoryview):
            try:
                value = bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise PayloadError(f"JSON payload is not UTF-8: {exc}") from None
        if isinstance(value, str):
            try:
                json.loads(value)
            except ValueError as exc:
                raise PayloadError(f"payload is not JSON ({exc}): {value[:40]!r}") from None
            return value.encode("utf-8")
        try:  # an already parsed value (dict, list, number …), e.g. from a HA service call
            return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        except (TypeError, ValueError) as exc:
            raise PayloadError(f"payload cannot be written as JSON: {exc}") from None


BUILTIN_CODECS: dict[str, Codec] = {c.name: c for c in (RawCodec(), HexCodec(), Base64Codec(), JsonCodec())}


@hookspecs.hookimpl
def sim7020_register_codecs() -> Mapping[str, Codec]:
    """Built-in codecs: raw, hex, base64, json."""
    return BUILTIN_CODECS


# ------------------------------------------------------------------ plugin manager


class _PluginManager(pluggy.PluginManager):
    """Treats every ``sim7020_*`` function of a plugin as a hook implementation, marked or not (as pytest
    does for ``pytest_*``), so that ``check_pending()`` reports a misspelled hook instead of ignoring it.
    """

    def parse_hookimpl_opts(self, plugin: object, name: str) -> pluggy.HookimplOpts | None:
        opts = super().parse_hookimpl_opts(plugin, name)
        if opts is None and name.startswith(hookspecs.PROJECT_NAME + "_"):
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


def make_plugin_manager(
    *,
    load_entrypoints: bool = True,
    plugins: Iterable[object] = (),
    disable: Iterable[str] = (),
) -> pluggy.PluginManager:
    """Build a plugin manager with the built-in plugins, then third-party plugins, and validate them.

    :param load_entrypoints: also load plugins from the ``sim7020.plugins`` entry-point group
    :param plugins: extra plugin objects (modules or instances) to register, e.g. in tests
    :param disable: names of plugins not to load (built-in module names or entry-point names)
    :raises PluginError: a plugin cannot be imported, its hooks do not match the specifications, or it
        defines a ``sim7020_*`` function that is no known hook (the message names the plugin and hook)
    """
    pm = _PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    blocked = set(disable)
    for name in blocked:
        pm.set_blocked(name)
    for modname in DEFAULT_PLUGINS:
        if modname in blocked:
            continue
        try:
            module = importlib.import_module(modname)
        except ModuleNotFoundError as exc:
            if exc.name == modname:  # a built-in transport not shipped in this build
                _LOGGER.debug("built-in plugin %s is not available", modname)
                continue
            raise PluginError(f"built-in plugin {modname} cannot be imported: {exc}") from exc
        _register(pm, module, modname)
    if load_entrypoints:
        _load_entrypoints(pm, blocked)
    for plugin in plugins:
        _register(pm, plugin, None)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(_describe_validation_error(pm, exc)) from exc
    return pm


async def async_make_plugin_manager(
    *,
    load_entrypoints: bool = True,
    plugins: Iterable[object] = (),
    disable: Iterable[str] = (),
) -> pluggy.PluginManager:
    """:func:`make_plugin_manager` in a worker thread: importing plugins and scanning entry points reads
    files, which must not block the event loop (Home Assistant reports it as a blocking call)."""
    return await asyncio.to_thread(
        make_plugin_manager, load_entrypoints=load_entrypoints, plugins=list(plugins), disable=list(disable)
    )


def _register(pm: pluggy.PluginManager, plugin: object, name: str | None) -> None:
    if pm.is_registered(plugin):
        return
    try:
        pm.register(plugin, name=name)
    except pluggy.PluginValidationError as exc:
        raise PluginError(_describe_validation_error(pm, exc)) from exc
    except ValueError as exc:  # duplicate name
        raise PluginError(f"plugin {name or plugin!r} cannot be registered: {exc}") from exc


def _load_entrypoints(pm: pluggy.PluginManager, blocked: set[str]) -> None:
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in blocked or pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:
            raise PluginError(
                f"plugin {ep.name!r} (entry point {ep.value!r} in group {ENTRY_POINT_GROUP!r}) "
                f"cannot be loaded: {type(exc).__name__}: {exc}"
            ) from exc
        if pm.is_registered(plugin):  # a built-in also listed as an entry point
            continue
        _register(pm, plugin, ep.name)


def _describe_validation_error(pm: pluggy.PluginManager, exc: pluggy.PluginValidationError) -> str:
    plugin_name = pm.get_name(exc.plugin) or repr(exc.plugin)
    hooks = ", ".join(sorted(n for n in dir(pm.hook) if n.startswith(hookspecs.PROJECT_NAME + "_")))
    unknown = [
        name
        for name, caller in vars(pm.hook).items()
        if isinstance(caller, pluggy.HookCaller)
        and not caller.has_spec()
        and any(impl.plugin is exc.plugin for impl in caller.get_hookimpls())
    ]
    if unknown:
        return (
            f"plugin {plugin_name!r} implements unknown hook(s) {', '.join(sorted(unknown))} "
            f"(known hooks: {hooks})"
        )
    return f"plugin {plugin_name!r} is invalid: {exc}"


# ----------------------------------------------------------------------- look-ups


def transport_classes(pm: pluggy.PluginManager) -> dict[str, type[Transport]]:
    """Every transport class the plugins register, by name.

    :raises PluginError: a plugin returned something that is no Transport subclass, or two plugins register
        the same name
    """
    from .connection import Transport

    found: dict[str, type[Transport]] = {}
    owners: dict[str, str] = {}
    for impl in reversed(pm.hook.sim7020_register_transports.get_hookimpls()):
        result = cast("Iterable[object] | None", impl.function())
        for cls in result or ():
            if not (isinstance(cls, type) and issubclass(cls, Transport)):
                raise PluginError(
                    f"plugin {impl.plugin_name!r} returned {cls!r} from sim7020_register_transports, "
                    "not a Transport subclass"
                )
            name = getattr(cls, "name", None)
            if not isinstance(name, str) or not name:
                raise PluginError(
                    f"transport class {cls.__qualname__} of plugin {impl.plugin_name!r} has no name"
                )
            if name in found and found[name] is not cls:
                raise PluginError(
                    f"transport {name!r} is registered by both {owners[name]!r} and {impl.plugin_name!r}"
                )
            found[name] = cls
            owners[name] = impl.plugin_name
    return found


def get_transport_class(pm: pluggy.PluginManager, name: str) -> type[Transport]:
    """The transport class called ``name``.

    :raises PluginError: no plugin provides it (the message lists the available transports)
    """
    classes = transport_classes(pm)
    try:
        return classes[name]
    except KeyError:
        available = ", ".join(sorted(classes)) or "none"
        raise PluginError(f"no transport named {name!r} (available: {available})") from None


def codecs(pm: pluggy.PluginManager) -> dict[str, Codec]:
    """Every payload codec the plugins register, by name (the built-ins plus third-party ones).

    :raises PluginError: a codec lacks encode/decode, or two plugins register the same name
    """
    found: dict[str, Codec] = {}
    owners: dict[str, str] = {}
    for impl in reversed(pm.hook.sim7020_register_codecs.get_hookimpls()):
        table = cast("Mapping[str, object] | None", impl.function())
        for name, codec in (table or {}).items():
            if not isinstance(codec, Codec):
                raise PluginError(f"codec {name!r} of plugin {impl.plugin_name!r} lacks encode()/decode()")
            if name in found and found[name] is not codec:
                raise PluginError(
                    f"codec {name!r} is registered by both {owners[name]!r} and {impl.plugin_name!r}"
                )
            found[name] = codec
            owners[name] = impl.plugin_name
    return found


def get_codec(pm: pluggy.PluginManager | None, name: str) -> Codec:
    """The codec called ``name`` (``pm`` None: built-in codecs only).

    :raises PluginError: no such codec (the message lists the available ones)
    """
    table = BUILTIN_CODECS if pm is None else codecs(pm)
    try:
        return table[name]
    except KeyError:
        raise PluginError(
            f"no payload encoding named {name!r} (available: {', '.join(sorted(table))})"
        ) from None


def install_urc_handlers(pm: pluggy.PluginManager, modem: Modem, engine: AtEngine) -> Callable[[], None]:
    """Call ``sim7020_register_urc_handlers(modem)`` and install the handlers on ``engine``.

    Returns a function that removes them all (call it when the modem closes or swaps engines).

    :raises PluginError: a plugin returned something that is not a mapping of prefix to callable
    """
    removers: list[Callable[[], None]] = []
    for impl in pm.hook.sim7020_register_urc_handlers.get_hookimpls():
        handlers = impl.function(modem=modem)
        if handlers is None:
            continue
        if not isinstance(handlers, Mapping):
            raise PluginError(
                f"plugin {impl.plugin_name!r} returned {type(handlers).__name__} from "
                "sim7020_register_urc_handlers, not a mapping of URC prefix to handler"
            )
        for prefix, handler in handlers.items():
            if not isinstance(prefix, str) or not prefix or not callable(handler):
                raise PluginError(f"plugin {impl.plugin_name!r} registered an invalid URC handler {prefix!r}")
            removers.append(engine.add_urc_handler(prefix, _guarded(handler, impl.plugin_name)))

    def remove_all() -> None:
        while removers:
            removers.pop()()

    return remove_all


def _guarded(handler: Callable[[Urc], None], plugin: str) -> Callable[[Urc], None]:
    def call(urc: Urc) -> None:
        try:
            handler(urc)
        except Exception:
            _LOGGER.exception("URC handler of plugin %r failed on %r", plugin, urc)

    return call


def wake_modem(pm: pluggy.PluginManager, modem: Modem) -> bool | None:
    """Ask plugins to wake the module (``sim7020_wake_modem``, firstresult); a failing plugin means False."""
    try:
        result = pm.hook.sim7020_wake_modem(modem=modem)
    except Exception:
        _LOGGER.exception("a sim7020_wake_modem hook failed")
        return False
    return None if result is None else bool(result)


def notify_state_changed(pm: pluggy.PluginManager, modem: Modem, event: ModemEvent) -> None:
    """Call ``sim7020_modem_state_changed`` on each plugin; a failing one is logged, the others still run."""
    notify_each(pm, "sim7020_modem_state_changed", modem=modem, event=event)


def notify_each(pm: pluggy.PluginManager, hook: str, **kwargs: Any) -> None:
    """Call a notification hook on each plugin in turn (pluggy's order), isolating their failures.

    Unlike ``pm.hook.<name>(...)``, one plugin raising does not keep the others from being told.
    """
    caller: pluggy.HookCaller = getattr(pm.hook, hook)
    for impl in reversed(caller.get_hookimpls()):
        try:
            impl.function(*(kwargs[arg] for arg in impl.argnames))
        except Exception:
            _LOGGER.exception("plugin %r failed in %s", impl.plugin_name, hook)


__all__ = [
    "BUILTIN_CODECS",
    "DEFAULT_PLUGINS",
    "ENTRY_POINT_GROUP",
    "Base64Codec",
    "Codec",
    "HexCodec",
    "JsonCodec",
    "RawCodec",
    "async_make_plugin_manager",
    "codecs",
    "get_codec",
    "get_transport_class",
    "install_urc_handlers",
    "make_plugin_manager",
    "notify_each",
    "notify_state_changed",
    "transport_classes",
    "wake_modem",
]
