"""Bridge configuration: a YAML file validated with voluptuous.

The loader keeps where every value came from, so each error names the file, the line and the key path::

    bridge.yaml:14: routes[0].modem: unknown modem 'gw2' (known: gw1)

``!secret NAME`` reads ``secrets.yaml`` beside the file and ``!env NAME`` reads the environment (an unset
variable is an error naming the variable). :func:`load_config` collects *every* problem before raising a
single :class:`~sim7020_core.exceptions.ConfigError` whose ``errors`` list holds one line per problem.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import voluptuous as vol
import yaml
from paho.mqtt.client import topic_matches_sub

from ..exceptions import ConfigError, PluginError, Sim7020Error
from ..models import NetworkSettings
from ..modem.checks import apn_problem, host_problem
from .netcommands import NETWORK_SCHEMA, network_settings

if TYPE_CHECKING:
    from ..plugins import PluginManager

PROTOCOLS = ("udp", "tcp")
SECRETS_FILE = "secrets.yaml"

_ID_RE = re.compile(r"^[A-Za-z0-9_-]+$")
_PLUGIN_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")  # transport and codec names


# --------------------------------------------------------------------------------------------------
# YAML with line numbers


class _Marked:
    """Line information attached to a loaded mapping or sequence."""

    line: int  # 1-based line of the container itself
    key_lines: dict[Any, int]  # 1-based line of each key (mapping) or item (sequence)


class NodeDict(dict[Any, Any], _Marked):
    """A mapping loaded from YAML that remembers the line of each key."""


class NodeList(list[Any], _Marked):
    """A sequence loaded from YAML that remembers the line of each item."""


@dataclass(frozen=True, slots=True)
class _Unresolved:
    """A ``!secret``/``!env`` value that could not be resolved; reported with its key path."""

    message: str
    line: int


class _Loader(yaml.SafeLoader):
    """SafeLoader that records line numbers and resolves ``!secret`` and ``!env``."""

    secrets_path: Path
    secrets: dict[str, Any] | None
    secrets_error: str | None


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> NodeDict:
    loader.flatten_mapping(node)
    result = NodeDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            key = str(key)
        if key in result.key_lines:
            # Report duplicates instead of silently keeping the last one.
            dup = result.setdefault("__duplicate_keys__", [])
            dup.append((key, key_node.start_mark.line + 1))
            continue
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> NodeList:
    result = NodeList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.key_lines = {i: child.start_mark.line + 1 for i, child in enumerate(node.value)}
    return result


def _load_secrets(loader: _Loader) -> dict[str, Any] | None:
    if loader.secrets is None and loader.secrets_error is None:
        path = loader.secrets_path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            loader.secrets_error = f"no {path.name} beside the configuration ({path})"
            return None
        except OSError as err:
            loader.secrets_error = f"cannot read {path}: {err.strerror}"
            return None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as err:
            loader.secrets_error = f"{path} is not valid YAML: {err}"
            return None
        if not isinstance(data, dict):
            loader.secrets_error = f"{path} must be a mapping of NAME: value"
            return None
        loader.secrets = data
    return loader.secrets


def _construct_secret(loader: _Loader, node: yaml.Node) -> Any:
    name = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    line = node.start_mark.line + 1
    secrets = _load_secrets(loader)
    if secrets is None:
        return _Unresolved(f"!secret {name}: {loader.secrets_error}", line)
    if name not in secrets:
        return _Unresolved(f"!secret {name}: no such name in {loader.secrets_path}", line)
    return secrets[name]


def _construct_env(loader: _Loader, node: yaml.Node) -> Any:
    raw = str(loader.construct_scalar(node))  # type: ignore[arg-type]
    name, _, default = raw.partition(" ")  # "!env NAME default" gives a fallback
    line = node.start_mark.line + 1
    value = os.environ.get(name)
    if value is None:
        if default:
            return default
        return _Unresolved(f"!env {name}: environment variable {name} is not set", line)
    return value


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("!secret", _construct_secret)
_Loader.add_constructor("!env", _construct_env)


def load_yaml(path: Path) -> Any:
    """Load a YAML file with line numbers (:class:`NodeDict`/:class:`NodeList`) and ``!secret``/``!env``.

    :raises ConfigError: when the file cannot be read or is not valid YAML (naming file and line)
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: file not found"]) from None
    except OSError as err:
        raise ConfigError([f"{path}: cannot read: {err.strerror}"]) from None
    loader = _Loader(text)
    loader.name = str(path)
    loader.secrets_path = path.parent / SECRETS_FILE
    loader.secrets = None
    loader.secrets_error = None
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
        raise ConfigError([f"{where}: invalid YAML: {err.problem or err}"]) from None
    except yaml.YAMLError as err:
        raise ConfigError([f"{path}: invalid YAML: {err}"]) from None
    finally:
        loader.dispose()


# --------------------------------------------------------------------------------------------------
# Typed result


@dataclass(frozen=True, slots=True)
class TlsConfig:
    """TLS towards the broker. Paths are resolved relative to the configuration file."""

    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    insecure: bool = False  # skip host name verification (tests only)


@dataclass(frozen=True, slots=True)
class MqttConfig:
    """Broker connection and topic layout."""

    host: str = "127.0.0.1"
    port: int = 1883
    client_id: str = "sim7020-bridge"
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | None = None
    protocol: str = "3.1.1"  # "3.1.1" | "5"
    keepalive: int = 60
    base_topic: str = "sim7020"
    discovery_prefix: str = "homeassistant"
    discovery: bool = True
    qos: int = 1


@dataclass(frozen=True, slots=True)
class ModemConfig:
    """One modem served by the bridge."""

    id: str
    device: str
    baudrate: int = 115200
    apn: str | None = None
    name: str | None = None
    at_commands: bool = False  # enable the raw ``cmd/at`` topic
    poll_interval: float = 60.0
    options: dict[str, Any] = field(default_factory=dict)
    #: the ``network:`` block (and ``apn``): kept by the modem and applied again after module resets
    network: NetworkSettings | None = None


@dataclass(frozen=True, slots=True)
class RouteConfig:
    """A data route between MQTT topics and a connection on a modem."""

    name: str
    modem: str
    transport: str = "native"
    protocol: str = "udp"
    host: str | None = None
    port: int | None = None
    listen_port: int | None = None
    uplink: tuple[str, ...] = ()
    downlink: str | None = None
    encoding: str = "raw"
    qos: int = 1
    retain: bool = False
    options: dict[str, Any] = field(default_factory=dict)  # passed to open_connection
    #: shared-subscription group: the uplink filters are subscribed as ``$share/<group>/<filter>``
    group: str | None = None

    @property
    def uplink_subscriptions(self) -> tuple[str, ...]:
        """The uplink filters as subscribed: ``$share/<group>/<filter>`` when the route has a group."""
        if self.group is None:
            return self.uplink
        return tuple(shared_filter(self.group, topic_filter) for topic_filter in self.uplink)


@dataclass(frozen=True, slots=True)
class BridgeConfig:
    """The whole validated bridge configuration."""

    mqtt: MqttConfig
    state_dir: Path
    modems: tuple[ModemConfig, ...]
    routes: tuple[RouteConfig, ...] = ()
    source: Path | None = None

    def modem(self, modem_id: str) -> ModemConfig:
        """Return the modem with this id (KeyError when unknown)."""
        for modem in self.modems:
            if modem.id == modem_id:
                return modem
        raise KeyError(modem_id)


# --------------------------------------------------------------------------------------------------
# Validators


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not _ID_RE.match(value):
        raise vol.Invalid(f"{value!r} is not a valid id (use letters, digits, '_' and '-')")
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise vol.Invalid(f"expected a string, got {type(value).__name__}")
    text = str(value)
    if not text:
        raise vol.Invalid("must not be empty")
    return text


def _at_value(problem_of: Callable[[object], str | None]) -> Callable[[Any], str]:
    """A validator of a string that ends up inside an AT command (APN, host): the library's check
    (:mod:`sim7020_core.modem.checks`), so the module is never sent what it cannot take."""

    def check(value: Any) -> str:
        text = _text(value)
        problem = problem_of(text)
        if problem:
            raise vol.Invalid(problem)
        return text

    return check


def _apn(value: Any) -> str | None:
    if value is None:
        return None
    return _at_value(apn_problem)(value)


def _port(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise vol.Invalid(f"expected a port number, got {value!r}")
    if not 1 <= value <= 65535:
        raise vol.Invalid(f"port {value} is out of range 1..65535")
    return value


def _qos(value: Any) -> int:
    if isinstance(value, bool) or value not in (0, 1, 2):
        raise vol.Invalid(f"QoS must be 0, 1 or 2, got {value!r}")
    return int(value)


def _protocol_version(value: Any) -> str:
    text = str(value).strip().lower()
    if text in ("3.1.1", "311", "mqttv311", "4"):
        return "3.1.1"
    if text in ("5", "5.0", "mqttv5"):
        return "5"
    raise vol.Invalid(f"MQTT protocol must be 3.1.1 or 5, got {value!r}")


def topic_filter_error(topic: str) -> str | None:
    """Return why ``topic`` is not a valid MQTT topic filter, or None when it is valid."""
    if not topic:
        return "topic filter is empty"
    if len(topic.encode("utf-8")) > 65535:
        return "topic filter is longer than 65535 bytes"
    if "\x00" in topic:
        return "topic filter contains a NUL character"
    levels = topic.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return f"'#' must be a whole level at the end of the filter: {topic!r}"
        if "+" in level and level != "+":
            return f"'+' must be a whole level: {topic!r}"
    return None


#: The longest shared-subscription group name accepted (MQTT allows more; a group name is a label).
GROUP_NAME_MAX = 64


def group_name_error(name: str) -> str | None:
    """Return why ``name`` cannot be a shared-subscription group (MQTT 5 ShareName), or None when it can.

    MQTT 5 (4.8.2) forbids '/', '+' and '#' in a ShareName and requires at least one character; control
    characters and spaces are refused too (they would not survive a log line or a YAML round trip).
    """
    if not name:
        return "group name is empty"
    if len(name) > GROUP_NAME_MAX:
        return f"group name is {len(name)} characters long, more than {GROUP_NAME_MAX}"
    for position, char in enumerate(name):
        if char in "/+#":
            return (
                f"group name {name[:80]!r} contains {char!r} at position {position} (a shared-subscription"
                " group may not contain '/', '+' or '#')"
            )
        if not char.isprintable() or char.isspace():
            return (
                f"group name {name[:80]!r} contains {char!r} at position {position} (no spaces or control"
                " characters)"
            )
    return None


def shared_filter(group: str, topic_filter: str) -> str:
    """The MQTT 5 shared subscription of ``topic_filter`` in ``group``: ``$share/<group>/<filter>``."""
    return f"$share/{group}/{topic_filter}"


def topic_name_error(topic: str) -> str | None:
    """Return why ``topic`` is not a valid topic name to publish on, or None."""
    if not topic:
        return "topic is empty"
    if "+" in topic or "#" in topic:
        return f"wildcards are not allowed in a topic to publish on: {topic!r}"
    if "\x00" in topic:
        return "topic contains a NUL character"
    return None


def _topic_filter(value: Any) -> str:
    text = _text(value)
    problem = topic_filter_error(text)
    if problem:
        raise vol.Invalid(problem)
    return text


def _topic_name(value: Any) -> str:
    text = _text(value)
    problem = topic_name_error(text)
    if problem:
        raise vol.Invalid(problem)
    return text


def _group_name(value: Any) -> str:
    text = _text(value)
    problem = group_name_error(text)
    if problem:
        raise vol.Invalid(problem)
    return text


def _base_topic(value: Any) -> str:
    text = _topic_name(value).strip("/")
    if not text:
        raise vol.Invalid("must not be empty")
    return text


def _filters(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not items:
        raise vol.Invalid("needs at least one topic filter")
    result = []
    for i, item in enumerate(items):
        try:
            result.append(_topic_filter(item))
        except vol.Invalid as err:
            raise vol.Invalid(err.msg, path=[i] if isinstance(value, list) else []) from None
    return result


def _plugin_name(kind: str, plugins: PluginManager | None) -> Callable[[Any], str]:
    """A validator of a transport or encoding name: its form, and when the plugins are known, that one of them
    provides it (an encoding may also be an older spelling, :data:`sim7020_core.codecs.CODEC_ALIASES`)."""

    def check(value: Any) -> str:
        text = _text(value)
        if not _PLUGIN_NAME_RE.match(text):
            raise vol.Invalid(f"{text!r} is not {'an' if kind[0] in 'aeiou' else 'a'} {kind} name")
        if plugins is not None:
            lookup, names = (
                (plugins.transport_class, plugins.transports)
                if kind == "transport"
                else (plugins.codec, plugins.codecs)
            )
            try:
                lookup(text)
            except PluginError:
                raise vol.Invalid(
                    f"unknown {kind} {text!r} (available: {', '.join(sorted(names)) or 'none'})"
                ) from None
        return text

    return check


def _baudrate(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise vol.Invalid(f"baudrate must be a positive integer, got {value!r}")
    return value


TLS_SCHEMA = vol.Schema(
    {
        vol.Optional("ca_certs"): _text,
        vol.Optional("certfile"): _text,
        vol.Optional("keyfile"): _text,
        vol.Optional("insecure", default=False): bool,
    }
)

MQTT_SCHEMA = vol.Schema(
    {
        vol.Optional("host", default="127.0.0.1"): _text,
        vol.Optional("port", default=1883): _port,
        vol.Optional("client_id"): _text,
        vol.Optional("username"): _text,
        vol.Optional("password"): _text,
        vol.Optional("tls"): vol.Any(None, TLS_SCHEMA),
        vol.Optional("protocol", default="3.1.1"): _protocol_version,
        vol.Optional("keepalive", default=60): vol.All(int, vol.Range(min=5, max=65535)),
        vol.Optional("base_topic", default="sim7020"): _base_topic,
        vol.Optional("discovery_prefix", default="homeassistant"): _base_topic,
        vol.Optional("discovery", default=True): bool,
        vol.Optional("qos", default=1): _qos,
    }
)

MODEM_SCHEMA = vol.Schema(
    {
        vol.Required("id"): _identifier,
        vol.Required("device"): _text,
        vol.Optional("baudrate", default=115200): _baudrate,
        vol.Optional("apn"): _apn,
        vol.Optional("name"): _text,
        vol.Optional("at_commands", default=False): bool,
        vol.Optional("poll_interval", default=60.0): vol.All(vol.Coerce(float), vol.Range(min=1.0)),
        vol.Optional("options", default=dict): vol.Any(None, dict),
        vol.Optional("network"): NETWORK_SCHEMA,
    }
)


def route_schema(plugins: PluginManager | None = None) -> vol.Schema:
    """The schema of one route; with ``plugins``, ``transport`` and ``encoding`` must name installed ones."""
    return vol.Schema(
        {
            vol.Required("name"): _identifier,
            vol.Required("modem"): _identifier,
            vol.Optional("transport", default="native"): _plugin_name("transport", plugins),
            vol.Optional("protocol", default="udp"): vol.In(PROTOCOLS, msg="protocol must be udp or tcp"),
            vol.Optional("host"): _at_value(host_problem),
            vol.Optional("port"): _port,
            vol.Optional("listen_port"): _port,
            vol.Optional("uplink"): _filters,
            vol.Optional("downlink"): _topic_name,
            vol.Optional("encoding", default="raw"): _plugin_name("encoding", plugins),
            vol.Optional("qos", default=1): _qos,
            vol.Optional("retain", default=False): bool,
            vol.Optional("options", default=dict): vol.Any(None, dict),
            vol.Optional("group"): _group_name,
        }
    )


def config_schema(plugins: PluginManager | None = None) -> vol.Schema:
    """The schema of the whole file (see :func:`route_schema` for ``plugins``)."""
    return vol.Schema(
        {
            vol.Optional("mqtt", default=dict): MQTT_SCHEMA,
            vol.Optional("state_dir"): _text,
            vol.Required("modems"): vol.All(
                [MODEM_SCHEMA], vol.Length(min=1, msg="at least one modem is needed")
            ),
            vol.Optional("routes", default=list): vol.Any(None, [route_schema(plugins)]),
        }
    )


# --------------------------------------------------------------------------------------------------
# Error reporting


def _path_text(path: Sequence[Any]) -> str:
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "(top level)"


def _line_of(data: Any, path: Sequence[Any]) -> int:
    """Best line number for ``path`` inside the loaded document (the deepest node that exists)."""
    line = getattr(data, "line", 1)
    node = data
    for part in path:
        key_lines = getattr(node, "key_lines", None)
        if key_lines is None:
            break
        if part in key_lines:
            line = key_lines[part]
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
    return int(line)


class _Errors:
    def __init__(self, source: Path, data: Any) -> None:
        self.source = source
        self.data = data
        self.items: list[tuple[int, str]] = []

    def add(self, path: Sequence[Any], message: str, line: int | None = None) -> None:
        if line is None:
            line = _line_of(self.data, path)
        self.items.append((line, f"{self.source}:{line}: {_path_text(path)}: {message}"))

    def raise_if_any(self) -> None:
        if self.items:
            self.items.sort(key=lambda item: item[0])
            raise ConfigError([text for _, text in dict.fromkeys(self.items)])


def _voluptuous_message(err: vol.Invalid) -> str:
    msg = err.error_message or str(err)
    if msg == "extra keys not allowed":
        return "unknown key"
    if msg == "required key not provided":
        return "required key is missing"
    if msg.startswith("expected ") and "for dictionary value" in msg:
        return msg.replace(" for dictionary value", "")
    return msg


def _find_unresolved(node: Any, path: list[Any], errors: _Errors) -> None:
    if isinstance(node, _Unresolved):
        errors.add(path, node.message, node.line)
    elif isinstance(node, dict):
        for key, value in list(node.items()):
            if key == "__duplicate_keys__":
                for dup_key, line in value:
                    errors.add([*path, dup_key], "key appears twice in the same mapping", line)
                continue
            _find_unresolved(value, [*path, key], errors)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            _find_unresolved(value, [*path, i], errors)


def _strip_duplicates(node: Any) -> None:
    if isinstance(node, dict):
        node.pop("__duplicate_keys__", None)
        for value in node.values():
            _strip_duplicates(value)
    elif isinstance(node, list):
        for value in node:
            _strip_duplicates(value)


# --------------------------------------------------------------------------------------------------
# Loading


def load_config(
    path: str | os.PathLike[str],
    *,
    plugins: PluginManager | None = None,
    check_files: bool = True,
) -> BridgeConfig:
    """Load, validate and cross-check a bridge configuration file.

    :param path: the YAML file
    :param plugins: the application's plugin manager: each route's ``transport`` and ``encoding`` must be one
        it has (built-in or third-party). Without it only their form is checked here, and the bridge checks
        them against its plugin manager when it starts.
    :param check_files: check that TLS files exist
    :raises ConfigError: listing every problem, each as ``FILE:LINE: key.path: message``
    """
    source = Path(path)
    data = load_yaml(source)
    return validate_config(data, source=source, plugins=plugins, check_files=check_files)


def validate_config(
    data: Any,
    *,
    source: Path,
    plugins: PluginManager | None = None,
    check_files: bool = True,
) -> BridgeConfig:
    """Validate already-loaded YAML data (see :func:`load_config`)."""
    errors = _Errors(source, data)
    if data is None:
        errors.add([], "the file is empty (at least 'modems' is needed)")
        errors.raise_if_any()
    if not isinstance(data, dict):
        errors.add([], f"expected a mapping at the top level, got {type(data).__name__}")
        errors.raise_if_any()
    _find_unresolved(data, [], errors)
    errors.raise_if_any()
    _strip_duplicates(data)

    try:
        checked = config_schema(plugins)(data)
    except vol.MultipleInvalid as err:
        for error in err.errors:
            errors.add(list(error.path), _voluptuous_message(error))
        errors.raise_if_any()
        raise  # pragma: no cover - raise_if_any always raises here

    base_dir = source.parent
    mqtt_raw = checked["mqtt"]
    tls: TlsConfig | None = None
    if mqtt_raw.get("tls") is not None:
        t = mqtt_raw["tls"]
        resolved: dict[str, str | None] = {}
        for key in ("ca_certs", "certfile", "keyfile"):
            value = t.get(key)
            if value is not None:
                file = Path(value).expanduser()
                if not file.is_absolute():
                    file = base_dir / file
                if check_files and not file.is_file():
                    errors.add(["mqtt", "tls", key], f"file not found: {file}")
                value = str(file)
            resolved[key] = value
        if (resolved["keyfile"] is None) != (resolved["certfile"] is None):
            errors.add(["mqtt", "tls"], "certfile and keyfile must be given together")
        tls = TlsConfig(insecure=t["insecure"], **resolved)
    if "password" in mqtt_raw and "username" not in mqtt_raw:
        errors.add(["mqtt", "password"], "a password needs a username")

    mqtt = MqttConfig(
        host=mqtt_raw["host"],
        port=mqtt_raw["port"],
        client_id=mqtt_raw.get("client_id") or f"sim7020-bridge-{socket.gethostname()}",
        username=mqtt_raw.get("username"),
        password=mqtt_raw.get("password"),
        tls=tls,
        protocol=mqtt_raw["protocol"],
        keepalive=mqtt_raw["keepalive"],
        base_topic=mqtt_raw["base_topic"],
        discovery_prefix=mqtt_raw["discovery_prefix"],
        discovery=mqtt_raw["discovery"],
        qos=mqtt_raw["qos"],
    )

    modems: list[ModemConfig] = []
    seen_ids: dict[str, int] = {}
    for i, m in enumerate(checked["modems"]):
        if m["id"] in seen_ids:
            errors.add(
                ["modems", i, "id"], f"duplicate modem id {m['id']!r} (also modems[{seen_ids[m['id']]}])"
            )
        seen_ids.setdefault(m["id"], i)
        modems.append(
            ModemConfig(
                id=m["id"],
                device=m["device"],
                baudrate=m["baudrate"],
                apn=m.get("apn"),
                name=m.get("name"),
                at_commands=m["at_commands"],
                poll_interval=m["poll_interval"],
                options=dict(m.get("options") or {}),
                network=network_settings(m.get("network"), m.get("apn")),
            )
        )

    routes: list[RouteConfig] = []
    seen_names: dict[str, int] = {}
    downlinks: dict[str, int] = {}
    for i, r in enumerate(checked.get("routes") or []):
        where = ["routes", i]
        if r["name"] in seen_names:
            errors.add(
                [*where, "name"], f"duplicate route name {r['name']!r} (also routes[{seen_names[r['name']]}])"
            )
        seen_names.setdefault(r["name"], i)
        if r["modem"] not in seen_ids:
            known = ", ".join(seen_ids) or "none"
            errors.add([*where, "modem"], f"unknown modem {r['modem']!r} (known: {known})")
        has_remote = "host" in r or "port" in r
        if "listen_port" in r and has_remote:
            errors.add([*where, "listen_port"], "give either host/port or listen_port, not both")
        elif "listen_port" in r and r["protocol"] != "tcp":
            errors.add(
                [*where, "listen_port"], "listening routes need protocol: tcp (a TCP server on the modem)"
            )
        elif "listen_port" not in r:
            if "host" not in r:
                errors.add(where, "host is missing (or give listen_port to accept connections)")
            if "port" not in r:
                errors.add(where, "port is missing (or give listen_port to accept connections)")
        if "uplink" not in r and "downlink" not in r:
            errors.add(where, "a route needs an uplink topic filter, a downlink topic, or both")
        group = r.get("group")
        if group is not None and mqtt.protocol != "5":
            errors.add(
                [*where, "group"],
                f"group {group!r} needs a shared subscription, which is MQTT 5: set mqtt.protocol: 5"
                f" (it is {mqtt.protocol})",
            )
        if group is not None and "uplink" not in r:
            errors.add(
                [*where, "group"], f"group {group!r} shares the uplink subscription; the route has no uplink"
            )
        if plugins is not None:
            _check_route_options(plugins, r, where, errors)
        uplink = tuple(r.get("uplink") or ())
        downlink = r.get("downlink")
        if downlink is not None:
            if downlink in downlinks:
                errors.add(
                    [*where, "downlink"], f"downlink topic already used by routes[{downlinks[downlink]}]"
                )
            downlinks.setdefault(downlink, i)
            for route_filter in uplink:
                if topic_matches_sub(route_filter, downlink):  # paho's rule: what the client delivers
                    errors.add(
                        [*where, "downlink"],
                        f"downlink topic {downlink!r} matches the route's own uplink filter {route_filter!r}"
                        " (a loop)",
                    )
        routes.append(
            RouteConfig(
                name=r["name"],
                modem=r["modem"],
                transport=r["transport"],
                protocol=r["protocol"],
                host=r.get("host"),
                port=r.get("port"),
                listen_port=r.get("listen_port"),
                uplink=uplink,
                downlink=downlink,
                encoding=r["encoding"],
                qos=r["qos"],
                retain=r["retain"],
                options=dict(r.get("options") or {}),
                group=group,
            )
        )

    state_dir_raw = checked.get("state_dir")
    state_dir = Path(state_dir_raw).expanduser() if state_dir_raw else base_dir / "state"
    if not state_dir.is_absolute():
        state_dir = base_dir / state_dir
    if state_dir.exists() and not state_dir.is_dir():
        errors.add(["state_dir"], f"{state_dir} exists and is not a directory")
    elif state_dir.is_dir() and not os.access(state_dir, os.W_OK | os.X_OK):
        errors.add(["state_dir"], f"{state_dir} is not writable")

    errors.raise_if_any()
    return BridgeConfig(
        mqtt=mqtt, state_dir=state_dir, modems=tuple(modems), routes=tuple(routes), source=source
    )


def _check_route_options(
    plugins: PluginManager, route: dict[str, Any], where: list[Any], errors: _Errors
) -> None:
    """A route's ``options`` as its transport will take them (:meth:`Transport.check_options
    <sim7020_core.connection.Transport.check_options>`): names, values and ranges, before anything opens."""
    try:
        transport = plugins.transport_class(route["transport"])
    except PluginError:
        return  # already reported: the transport is not installed
    options = dict(route.get("options") or {})
    try:
        transport.check_options(route["protocol"], options, server="listen_port" in route)
    except (ValueError, TypeError, Sim7020Error) as err:
        errors.add([*where, "options"], str(err))
    except Exception as err:  # noqa: BLE001 - a third-party transport's bug: say whose, do not crash
        errors.add(
            [*where, "options"], f"transport {route['transport']!r} could not check its options: {err!r}"
        )


def summary(config: BridgeConfig) -> str:
    """A short human summary of a valid configuration (``sim7020 check-config``)."""
    lines = [
        f"{config.source}: configuration is valid",
        f"  broker: {config.mqtt.host}:{config.mqtt.port} (MQTT {config.mqtt.protocol}"
        f"{', TLS' if config.mqtt.tls else ''}{', auth' if config.mqtt.username else ''})",
        f"  base topic: {config.mqtt.base_topic}/  discovery: "
        + (f"{config.mqtt.discovery_prefix}/" if config.mqtt.discovery else "off"),
        f"  state dir: {config.state_dir}",
    ]
    for modem in config.modems:
        lines.append(f"  modem {modem.id}: {modem.device} @ {modem.baudrate}")
    for route in config.routes:
        remote = f"listen :{route.listen_port}" if route.listen_port else f"{route.host}:{route.port}"
        lines.append(
            f"  route {route.name}: {route.modem} {route.transport}/{route.protocol} {remote}"
            f" uplink={list(route.uplink)} downlink={route.downlink} encoding={route.encoding}"
            + (f" group={route.group}" if route.group else "")
        )
    return "\n".join(lines)


def as_mapping(config: BridgeConfig) -> Mapping[str, Any]:
    """The configuration as plain data (for logs and diagnostics), with the password redacted."""
    from dataclasses import asdict

    data = asdict(config)
    if data["mqtt"].get("password"):
        data["mqtt"]["password"] = "**redacted**"
    data["state_dir"] = str(config.state_dir)
    data["source"] = str(config.source) if config.source else None
    return data
