"""Bridge configuration: every broken file gives an error naming the file, the line and the key."""

from __future__ import annotations

import functools
import textwrap
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.bridge.config import (
    BridgeConfig,
    load_config,
    summary,
    topic_filter_error,
    validate_config,
)
from sim7020_core.exceptions import ConfigError
from sim7020_core.plugins import make_plugin_manager

VALID = """\
mqtt:
  host: 127.0.0.1
  port: 1883
  base_topic: sim7020
state_dir: state
modems:
  - id: gw1
    device: socket://127.0.0.1:7020
routes:
  - name: telemetry
    modem: gw1
    host: 127.0.0.1
    port: 5683
    uplink: sensors/+/telemetry
    downlink: sim7020/gw1/downlink/telemetry
"""


def write(tmp_path: Path, text: str, name: str = "bridge.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


#: Only the native and cip transports and the built-in codecs: error messages list exactly these.
PLUGINS = make_plugin_manager(disable=["echo", "transparent", "udp_extended"])


def errors_of(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config(path, plugins=PLUGINS)
    return info.value.errors


def test_valid_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, VALID), plugins=PLUGINS)
    assert isinstance(config, BridgeConfig)
    assert config.mqtt.port == 1883
    assert config.mqtt.discovery_prefix == "homeassistant"
    assert config.mqtt.protocol == "3.1.1"
    assert config.state_dir == tmp_path / "state"
    assert config.modems[0].baudrate == 115200
    assert config.modems[0].at_commands is False
    route = config.routes[0]
    assert route.uplink == ("sensors/+/telemetry",)
    assert (route.transport, route.protocol, route.encoding, route.qos) == ("native", "udp", "raw", 1)
    assert "configuration is valid" in summary(config)


def test_example_file_is_valid() -> None:
    example = Path(__file__).parents[2] / "examples" / "bridge.yaml"
    config = load_config(example, plugins=PLUGINS)
    assert config.modems[0].device == "emulator"


def test_secret_and_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, "mqtt_pass: s3cret\n", "secrets.yaml")
    monkeypatch.setenv("SIM7020_TEST_USER", "alice")
    path = write(
        tmp_path,
        """\
        mqtt:
          username: !env SIM7020_TEST_USER
          password: !secret mqtt_pass
        modems:
          - {id: gw1, device: emulator}
        """,
    )
    config = load_config(path, plugins=PLUGINS)
    assert (config.mqtt.username, config.mqtt.password) == ("alice", "s3cret")


def test_env_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SIM7020_UNSET_VAR", raising=False)
    path = write(
        tmp_path, "mqtt:\n  host: !env SIM7020_UNSET_VAR localhost\nmodems: [{id: a, device: emulator}]\n"
    )
    assert load_config(path, plugins=PLUGINS).mqtt.host == "localhost"


def test_tls_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("x")
    path = write(tmp_path, "mqtt:\n  tls: {ca_certs: ca.pem}\nmodems: [{id: a, device: emulator}]\n")
    tls = load_config(path, plugins=PLUGINS).mqtt.tls
    assert tls is not None
    assert tls.ca_certs == str(tmp_path / "ca.pem")


# (file text, expected error lines: "LINE: key: message fragment") — the file name is checked too.
BROKEN: list[tuple[str, str, list[str | tuple[str, ...]]]] = [
    ("empty file", "", ["1: (top level): the file is empty"]),
    ("top level is a list", "- a\n- b\n", ["1: (top level): expected a mapping"]),
    ("invalid yaml", "modems:\n  - id: gw1\n   device: x\n", ["3: invalid YAML"]),
    ("no modems", "mqtt: {host: h}\n", ["1: modems: required key is missing"]),
    ("empty modem list", "modems: []\n", ["1: modems: at least one modem is needed"]),
    (
        "modem without device",
        "modems:\n  - id: gw1\n    baudrate: 9600\n",
        ["2: modems[0].device: required key is missing"],
    ),
    ("bad modem id", "modems:\n  - id: gw 1\n    device: x\n", ["2: modems[0].id: 'gw 1' is not a valid id"]),
    (
        "duplicate modem ids",
        "modems:\n  - id: gw1\n    device: a\n  - id: gw1\n    device: b\n",
        ["4: modems[1].id: duplicate modem id 'gw1'"],
    ),
    (
        "negative baudrate",
        "modems:\n  - id: a\n    device: x\n    baudrate: -5\n",
        ["4: modems[0].baudrate: baudrate must be a positive"],
    ),
    (
        "port out of range",
        "mqtt:\n  port: 70000\nmodems: [{id: a, device: x}]\n",
        ["2: mqtt.port: port 70000 is out of range"],
    ),
    (
        "port is text",
        "mqtt:\n  port: abc\nmodems: [{id: a, device: x}]\n",
        ["2: mqtt.port: expected a port number"],
    ),
    ("unknown key", "mqtt:\n  hots: x\nmodems: [{id: a, device: x}]\n", ["2: mqtt.hots: unknown key"]),
    (
        "bad protocol version",
        "mqtt:\n  protocol: 4.0\nmodems: [{id: a, device: x}]\n",
        ["2: mqtt.protocol: MQTT protocol must be 3.1.1 or 5"],
    ),
    ("bad qos", "mqtt:\n  qos: 3\nmodems: [{id: a, device: x}]\n", ["2: mqtt.qos: QoS must be 0, 1 or 2"]),
    (
        "wildcard in base topic",
        "mqtt:\n  base_topic: sim/#\nmodems: [{id: a, device: x}]\n",
        ["2: mqtt.base_topic: wildcards are not allowed"],
    ),
    (
        "password without username",
        "mqtt:\n  password: x\nmodems: [{id: a, device: x}]\n",
        ["2: mqtt.password: a password needs a username"],
    ),
    (
        "tls file missing",
        "mqtt:\n  tls:\n    ca_certs: nope.pem\nmodems: [{id: a, device: x}]\n",
        ["3: mqtt.tls.ca_certs: file not found"],
    ),
    (
        "unset env",
        "mqtt:\n  password: !env SIM7020_DEFINITELY_UNSET\n  username: u\nmodems: [{id: a, device: x}]\n",
        [
            "2: mqtt.password: !env SIM7020_DEFINITELY_UNSET: environment variable SIM7020_DEFINITELY_UNSET is not set"  # noqa: E501
        ],
    ),
    (
        "secret without secrets.yaml",
        "mqtt:\n  username: u\n  password: !secret pw\nmodems: [{id: a, device: x}]\n",
        ["3: mqtt.password: !secret pw: no secrets.yaml beside the configuration"],
    ),
    (
        "duplicate key",
        "mqtt:\n  host: a\n  host: b\nmodems: [{id: a, device: x}]\n",
        ["3: mqtt.host: key appears twice"],
    ),
    (
        "route to unknown modem",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw2\n    host: h\n    port: 1\n    uplink: a/b\n",  # noqa: E501
        ["4: routes[0].modem: unknown modem 'gw2' (known: gw1)"],
    ),
    (
        "route bad filter",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw1\n    host: h\n    port: 1\n    uplink: a/#/b\n",  # noqa: E501
        ["7: routes[0].uplink: '#' must be a whole level at the end"],
    ),
    (
        "route plus inside level",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw1\n    host: h\n    port: 1\n    uplink: [a/b, a+/c]\n",  # noqa: E501
        ["7: routes[0].uplink[1]: '+' must be a whole level"],
    ),
    (
        "route wildcard downlink",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw1\n    host: h\n    port: 1\n    downlink: a/+\n",  # noqa: E501
        ["7: routes[0].downlink: wildcards are not allowed"],
    ),
    (
        "route without host",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw1\n    port: 1\n    uplink: a/b\n",  # noqa: E501
        ["3: routes[0]: host is missing"],
    ),
    (
        "route host and listen",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw1\n    host: h\n    port: 1\n    listen_port: 5\n    uplink: a\n",  # noqa: E501
        ["7: routes[0].listen_port: give either host/port or listen_port"],
    ),
    (
        "route listen on udp",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw1\n    listen_port: 5000\n    uplink: a\n",  # noqa: E501
        ["5: routes[0].listen_port: listening routes need protocol: tcp"],
    ),
    (
        "route without topics",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw1\n    host: h\n    port: 1\n",
        ["3: routes[0]: a route needs an uplink topic filter, a downlink topic, or both"],
    ),
    (
        "route duplicate names",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - {name: r, modem: gw1, host: h, port: 1, uplink: a}\n"
        "  - {name: r, modem: gw1, host: h, port: 2, uplink: b}\n",
        ["4: routes[1].name: duplicate route name 'r'"],
    ),
    (
        "route loop",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw1\n    host: h\n    port: 1\n"
        "    uplink: 'sim7020/#'\n    downlink: sim7020/gw1/down\n",
        ["8: routes[0].downlink: downlink topic 'sim7020/gw1/down' matches the route's own uplink filter"],
    ),
    (
        "route unknown transport",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw1\n    transport: carrier-pigeon\n"  # noqa: E501
        "    host: h\n    port: 1\n    uplink: a\n",
        ["5: routes[0].transport: unknown transport 'carrier-pigeon' (available: cip, native)"],
    ),
    (
        "route bad encoding and protocol",
        "modems: [{id: gw1, device: x}]\nroutes:\n  - name: r\n    modem: gw1\n    protocol: sctp\n"
        "    host: h\n    port: 1\n    uplink: a\n    encoding: rot13\n",
        [
            "5: routes[0].protocol: protocol must be udp or tcp",
            "9: routes[0].encoding: unknown encoding 'rot13' (available: base64, hex, json, raw)",
        ],
    ),
    (
        "state_dir is a file",
        "state_dir: bridge.yaml\nmodems: [{id: a, device: x}]\n",
        [("1: state_dir: ", "bridge.yaml exists and is not a directory")],
    ),
    (
        "several errors at once",
        "mqtt:\n  port: 0\nmodems:\n  - id: a\n    device: x\n    colour: red\n",
        ["2: mqtt.port: port 0 is out of range", "6: modems[0].colour: unknown key"],
    ),
]


@pytest.mark.parametrize(("text", "expected"), [(t, e) for _, t, e in BROKEN], ids=[n for n, _, _ in BROKEN])
def test_broken_config(tmp_path: Path, text: str, expected: list[str | tuple[str, ...]]) -> None:
    path = write(tmp_path, text)
    errors = errors_of(path)
    assert len(errors) == len(expected), errors
    for error, fragment in zip(errors, expected, strict=True):
        assert error.startswith(f"{path}:"), error
        for part in fragment if isinstance(fragment, tuple) else (fragment,):
            assert part in error, f"{part!r} not in {error!r}"


def test_check_config_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim7020_core.cli import main

    good = write(tmp_path, VALID)
    assert main(["check-config", "-c", str(good)]) == 0
    assert "configuration is valid" in capsys.readouterr().out
    bad = write(
        tmp_path, "mqtt:\n  port: 0\nmodems:\n  - id: a\n    device: x\n    colour: red\n", "bad.yaml"
    )
    assert main(["check-config", "-c", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}:2: mqtt.port" in err
    assert f"{bad}:6: modems[0].colour: unknown key" in err
    assert "2 errors" in err


_level = st.text(alphabet="ab+#/", min_size=0, max_size=6)


@st.composite
def _downlink_and_filter(draw: st.DrawFn) -> tuple[str, str, bool]:
    """A downlink topic, an uplink filter built from it, and whether the filter matches it by construction."""
    levels = draw(st.lists(st.sampled_from(["a", "b", "sim7020"]), min_size=1, max_size=4))
    pattern = [draw(st.sampled_from([level, "+"])) for level in levels]
    how = draw(st.sampled_from(["same", "hash", "longer", "other"]))
    if how == "hash":  # '#' from some level on matches the rest (and the parent level)
        cut = draw(st.integers(0, len(pattern)))
        return "/".join(levels), "/".join([*pattern[:cut], "#"]), True
    if how == "longer":  # one level more than the topic has: never matches
        return "/".join(levels), "/".join([*pattern, draw(st.sampled_from(["a", "+"]))]), False
    if how == "other":  # one level spelt differently: never matches
        i = draw(st.integers(0, len(levels) - 1))
        pattern[i] = "c"
        return "/".join(levels), "/".join(pattern), False
    return "/".join(levels), "/".join(pattern), True


@given(_downlink_and_filter())
def test_a_route_whose_uplink_filter_catches_its_own_downlink_is_refused(case: tuple[str, str, bool]) -> None:
    """The loop check of check-config, against MQTT's matching rules (the check uses paho's matcher, the
    one the bridge's client dispatches with, so the two cannot disagree)."""
    downlink, uplink, loops = case
    data = {
        "modems": [{"id": "gw1", "device": "socket://127.0.0.1:7020"}],
        "routes": [
            {"name": "r", "modem": "gw1", "host": "h", "port": 1, "uplink": uplink, "downlink": downlink}
        ],
    }
    check = functools.partial(
        validate_config, data, source=Path("bridge.yaml"), plugins=make_plugin_manager(), check_files=False
    )
    if not loops:
        check()
        return
    with pytest.raises(ConfigError) as err:
        check()
    assert f"downlink topic {downlink!r} matches the route's own uplink filter {uplink!r}" in str(err.value)


@given(_level)
def test_topic_filter_validation_never_crashes(text: str) -> None:
    problem = topic_filter_error(text)
    levels = text.split("/")
    valid = bool(text) and all(
        (("#" not in lv) or (lv == "#" and i == len(levels) - 1)) and (("+" not in lv) or lv == "+")
        for i, lv in enumerate(levels)
    )
    assert (problem is None) == valid


def test_bridge_cli_refuses_a_broken_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim7020_core.cli import main

    bad = write(tmp_path, "modems:\n  - id: a\n", "bad.yaml")
    assert main(["bridge", "-c", str(bad)]) == 1
    assert f"{bad}:2: modems[0].device: required key is missing" in capsys.readouterr().err


def test_check_config_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sim7020_core.cli import main

    assert main(["check-config", "-c", str(tmp_path / "nope.yaml")]) == 1
    assert "nope.yaml: file not found" in capsys.readouterr().err


GROUPED = (
    VALID.replace("  base_topic: sim7020\n", "  base_topic: sim7020\n  protocol: 5\n") + "    group: fleet\n"
)


def test_a_route_group_subscribes_its_uplink_as_a_shared_subscription(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GROUPED), plugins=PLUGINS)
    route = config.routes[0]
    assert route.group == "fleet"
    assert route.uplink_subscriptions == ("$share/fleet/sensors/+/telemetry",)
    assert "group=fleet" in summary(config)
    ungrouped = load_config(write(tmp_path, VALID, "plain.yaml"), plugins=PLUGINS).routes[0]
    assert ungrouped.group is None
    assert ungrouped.uplink_subscriptions == ("sensors/+/telemetry",)


@pytest.mark.parametrize(
    ("group", "expected"),
    [
        ("a/b", "group name 'a/b' contains '/' at position 1"),
        ("'+'", "group name '+' contains '+' at position 0"),
        ("'fleet#'", "group name 'fleet#' contains '#' at position 5"),
        ("'two words'", "contains ' ' at position 3 (no spaces or control characters)"),
        ("'" + "g" * 65 + "'", "group name is 65 characters long, more than 64"),
        ("''", "must not be empty"),
    ],
)
def test_a_bad_group_name_is_refused_naming_the_route(tmp_path: Path, group: str, expected: str) -> None:
    text = GROUPED.replace("group: fleet", f"group: {group}")
    errors = errors_of(write(tmp_path, text))
    assert len(errors) == 1, errors
    assert "bridge.yaml:17: routes[0].group: " in errors[0], errors
    assert expected in errors[0], errors


def test_a_route_group_needs_mqtt_5(tmp_path: Path) -> None:
    errors = errors_of(write(tmp_path, VALID + "    group: fleet\n"))
    assert len(errors) == 1
    assert errors[0].endswith(
        "bridge.yaml:16: routes[0].group: group 'fleet' needs a shared subscription, which is MQTT 5: set"
        " mqtt.protocol: 5 (it is 3.1.1)"
    )


@given(st.text(max_size=80))
def test_group_name_validation_never_crashes(text: str) -> None:
    from sim7020_core.bridge.config import group_name_error

    problem = group_name_error(text)
    if problem is None:  # what is accepted is a valid MQTT 5 ShareName that prints
        assert text
        assert not set(text) & set("/+#")
        assert text.isprintable()
        assert len(text) <= 64


ROUTE_WITH_OPTIONS = """\
mqtt: {host: 127.0.0.1}
modems:
  - id: gw1
    device: socket://127.0.0.1:7020
routes:
  - name: r
    modem: gw1
    transport: %s
    protocol: %s
    host: 127.0.0.1
    port: 5683
    uplink: up/r
    options: %s
"""


@pytest.mark.parametrize(
    ("transport", "protocol", "options", "expected"),
    [
        ("cip", "tcp", "{keepalive: [10, 60, 3]}", "keepalive idle_s must be an integer from 30 to 7200"),
        ("cip", "tcp", "{timed_send: 500}", "timed_send"),
        ("cip", "udp", "{keepalive: true}", "keepalive is for TCP connections"),
        ("cip", "tcp", "{close_mode: later}", "close_mode must be 'quick' or 'slow'"),
        ("native", "udp", "{colour: red}", "has no option(s) colour (known: "),
        ("native", "udp", "{receive_mode: binary}", "receive_mode must be 'hex' or 'raw'"),
        ("native", "udp", "{manual_receive: true}", "manual_receive is for TCP"),
        ("native", "tcp", "{keepalive: [0, 1, 1]}", "keepalive must be True, False or (idle_s"),
    ],
)
def test_check_config_refuses_route_options_the_transport_would_refuse(
    tmp_path: Path, transport: str, protocol: str, options: str, expected: str
) -> None:
    """A wrong transport option is reported by check-config, naming the route's options and the line, not
    only when the route first opens (and then retried forever)."""
    path = write(tmp_path, ROUTE_WITH_OPTIONS % (transport, protocol, options))
    errors = errors_of(path)
    assert len(errors) == 1, errors
    assert errors[0].startswith(f"{path}:13: routes[0].options: "), errors[0]
    assert expected in errors[0]


@pytest.mark.parametrize(
    ("transport", "protocol", "options"),
    [
        ("cip", "tcp", "{keepalive: [60, 60, 3], timed_send: 5, close_mode: quick}"),
        ("native", "tcp", "{keepalive: true, send_mode: hex, receive_mode: raw}"),
    ],
)
def test_route_options_the_transport_takes_pass_check_config(
    tmp_path: Path, transport: str, protocol: str, options: str
) -> None:
    config = load_config(
        write(tmp_path, ROUTE_WITH_OPTIONS % (transport, protocol, options)), plugins=PLUGINS
    )
    assert config.routes[0].options
