"""The plugin manager: built-ins, entry points, validation, transport and codec look-up, hook calls."""

from __future__ import annotations

import json
import logging
import sys
import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core import plugins as plugins_mod
from sim7020_core.connection import Capabilities, Connection, Transport
from sim7020_core.exceptions import PayloadError, PluginError
from sim7020_core.hookspecs import hookimpl
from sim7020_core.plugins import (
    BUILTIN_CODECS,
    get_codec,
    get_transport_class,
    make_plugin_manager,
    notify_state_changed,
    transport_classes,
    wake_modem,
)

CAPS = Capabilities(
    max_connections=1, server=False, binary_safe=True, acknowledged_send=False, peer_addressing=False
)


def _transport(name: str) -> type[Transport]:
    class _T(Transport):
        capabilities = CAPS

        async def open_connection(self, protocol, ip, port, **options) -> Connection:
            conn = Connection(self, protocol, ip, port)
            self._register(conn)
            return conn

    _T.name = name
    _T.__qualname__ = f"T_{name}"
    return _T


def _plugin(name: str, **hooks: object) -> types.ModuleType:
    module = types.ModuleType(name)
    for hook, func in hooks.items():
        setattr(module, hook, hookimpl(func))  # type: ignore[arg-type]
    return module


# ------------------------------------------------------------------ discovery


def test_builtin_native_transport_is_registered_without_entry_points():
    pm = make_plugin_manager(load_entrypoints=False)
    assert "native" in transport_classes(pm)
    assert "echo" not in transport_classes(pm)


def test_third_party_distribution_is_discovered_through_its_entry_point(echo_plugin_installed):
    pm = make_plugin_manager()
    cls = get_transport_class(pm, "echo")
    assert cls.__module__ == "sim7020_echo_plugin"
    assert pm.get_plugin("echo") is sys.modules["sim7020_echo_plugin"]
    assert "reverse" in plugins_mod.codecs(pm)


def test_disable_skips_a_plugin_by_name(echo_plugin_installed):
    pm = make_plugin_manager(disable=["echo"])
    assert "echo" not in transport_classes(pm)
    pm = make_plugin_manager(disable=["sim7020_plugins.native"], load_entrypoints=False)
    with pytest.raises(PluginError, match="no transport named 'native'"):
        get_transport_class(pm, "native")


def test_unknown_transport_names_the_available_ones(echo_plugin_installed):
    pm = make_plugin_manager()
    with pytest.raises(PluginError) as info:
        get_transport_class(pm, "natve")
    assert "'natve'" in str(info.value)
    assert "echo" in str(info.value)
    assert "native" in str(info.value)


def _install_fake_distribution(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module_source: str) -> None:
    """A real (unpacked) distribution on sys.path whose entry point names module ``brokenplug``."""
    dist = tmp_path / "brokenplug-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: brokenplug\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[sim7020.plugins]\nbroken = brokenplug\n")
    (tmp_path / "brokenplug.py").write_text(module_source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "brokenplug", raising=False)


def test_plugin_that_fails_to_import_is_named(tmp_path, monkeypatch):
    _install_fake_distribution(tmp_path, monkeypatch, "raise RuntimeError('boom at import')\n")
    with pytest.raises(PluginError) as info:
        make_plugin_manager()
    msg = str(info.value)
    assert "'broken'" in msg
    assert "brokenplug" in msg
    assert "boom at import" in msg


def test_misspelled_hook_in_entry_point_plugin_is_rejected_at_load(tmp_path, monkeypatch):
    _install_fake_distribution(
        tmp_path,
        monkeypatch,
        "def sim7020_register_transport():\n    return []\n",  # unmarked and misspelled
    )
    with pytest.raises(PluginError) as info:
        make_plugin_manager()
    msg = str(info.value)
    assert "'broken'" in msg
    assert "sim7020_register_transport" in msg
    assert "sim7020_register_transports" in msg  # the list of known hooks helps fix the typo


def test_misspelled_marked_hook_is_rejected():
    bad = _plugin("typo_plugin", sim7020_data_recieved=lambda connection, data: None)
    with pytest.raises(PluginError, match=r"'typo_plugin'.*sim7020_data_recieved"):
        make_plugin_manager(load_entrypoints=False, plugins=[bad])


def test_hook_implementation_with_unknown_argument_is_rejected():
    bad = _plugin("argplugin", sim7020_wake_modem=lambda modem, gpio: True)
    with pytest.raises(PluginError, match="argplugin"):
        make_plugin_manager(load_entrypoints=False, plugins=[bad])


def test_two_plugins_registering_the_same_transport_name():
    one = _plugin("one", sim7020_register_transports=lambda: [_transport("dup")])
    two = _plugin("two", sim7020_register_transports=lambda: [_transport("dup")])
    pm = make_plugin_manager(load_entrypoints=False, plugins=[one, two])
    with pytest.raises(PluginError, match=r"'dup' is registered by both '(one|two)' and '(one|two)'"):
        get_transport_class(pm, "dup")


def test_plugin_returning_a_non_transport_is_rejected():
    bad = _plugin("notatransport", sim7020_register_transports=lambda: [object])
    pm = make_plugin_manager(load_entrypoints=False, plugins=[bad])
    with pytest.raises(PluginError, match=r"'notatransport'.*not a Transport subclass"):
        get_transport_class(pm, "native")


async def test_plugin_manager_can_be_built_off_the_event_loop(echo_plugin_installed):
    pm = await plugins_mod.async_make_plugin_manager(disable=["echo"])
    assert "native" in transport_classes(pm)
    assert "echo" not in transport_classes(pm)


def test_plugin_manager_is_not_a_global():
    extra = _plugin("extra", sim7020_register_transports=lambda: [_transport("extra")])
    pm1 = make_plugin_manager(load_entrypoints=False, plugins=[extra])
    pm2 = make_plugin_manager(load_entrypoints=False)
    assert "extra" in transport_classes(pm1)
    assert "extra" not in transport_classes(pm2)


# ---------------------------------------------------------------------- hooks


def test_hook_sim7020_register_transports():
    cls = _transport("viaplugin")
    plugin = _plugin("p", sim7020_register_transports=lambda: [cls])
    pm = make_plugin_manager(load_entrypoints=False, plugins=[plugin])
    assert get_transport_class(pm, "viaplugin") is cls
    assert get_transport_class(pm, "native").name == "native"


def test_hook_sim7020_register_codecs(echo_plugin_installed):
    pm = make_plugin_manager()
    table = plugins_mod.codecs(pm)
    assert {"raw", "hex", "base64", "json", "reverse"} <= set(table)
    assert get_codec(pm, "reverse").encode(b"abc") == b"cba"
    with pytest.raises(PluginError, match=r"'rot13'.*base64, hex, json, raw, reverse"):
        get_codec(pm, "rot13")


def test_codec_without_decode_is_rejected():
    class Half:
        name = "half"

        def encode(self, data):
            return data

    pm = make_plugin_manager(
        load_entrypoints=False,
        plugins=[_plugin("halfplug", sim7020_register_codecs=lambda: {"half": Half()})],
    )
    with pytest.raises(PluginError, match=r"'half'.*'halfplug'"):
        plugins_mod.codecs(pm)


def test_hook_sim7020_wake_modem():
    calls: list[str] = []

    def abstain(modem):
        calls.append("abstain")

    def wake(modem):
        calls.append("wake")
        return True

    pm = make_plugin_manager(
        load_entrypoints=False,
        plugins=[_plugin("waker", sim7020_wake_modem=wake), _plugin("abstainer", sim7020_wake_modem=abstain)],
    )
    assert wake_modem(pm, object()) is True
    assert calls == ["abstain", "wake"]  # last registered runs first; None lets the next one try
    assert wake_modem(make_plugin_manager(load_entrypoints=False), object()) is None


def test_failing_wake_plugin_counts_as_failed(caplog):
    def explode(modem):
        raise OSError("gpio busy")

    pm = make_plugin_manager(load_entrypoints=False, plugins=[_plugin("gpio", sim7020_wake_modem=explode)])
    with caplog.at_level(logging.ERROR):
        assert wake_modem(pm, object()) is False
    assert "gpio busy" in caplog.text


def test_state_change_notification_survives_a_failing_plugin(caplog):
    seen: list[object] = []

    def broken(modem, event):
        raise ValueError("plugin bug")

    def record(modem, event):
        seen.append(event)

    pm = make_plugin_manager(
        load_entrypoints=False,
        plugins=[
            _plugin("rec", sim7020_modem_state_changed=record),
            _plugin("bug", sim7020_modem_state_changed=broken),
        ],
    )
    with caplog.at_level(logging.ERROR):
        notify_state_changed(pm, object(), "evt")
    assert "plugin bug" in caplog.text
    assert "'bug'" in caplog.text
    assert seen == ["evt"]  # the other plugin was still told


# --------------------------------------------------------------------- codecs


@given(st.binary(max_size=300))
def test_builtin_codecs_round_trip_any_bytes(data):
    for name in ("raw", "hex", "base64"):
        codec = BUILTIN_CODECS[name]
        assert codec.decode(codec.encode(data)) == data, name


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(),
    lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=5), c, max_size=3),
)


@given(st.lists(_JSON, max_size=4) | st.dictionaries(st.text(max_size=5), _JSON, max_size=4))
def test_json_codec_round_trips_parsed_values(value):
    """A parsed value (what HA hands over) is written as JSON; a str is taken as JSON text already."""
    codec = BUILTIN_CODECS["json"]
    data = codec.decode(value)
    assert json.loads(data) == value
    assert codec.decode(codec.encode(data)) == data


def test_raw_codec_sends_text_as_utf8():
    assert BUILTIN_CODECS["raw"].decode("é") == b"\xc3\xa9"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("hex", "0g", "not valid hex"),
        ("hex", "abc", "not valid hex"),
        ("base64", "a$==", "not valid base64"),
        ("base64", b"\xff", "must be ASCII"),
        ("json", "{nope", "not JSON"),
        ("json", b"\xff", "not UTF-8"),
        ("raw", 12, "must be str or bytes"),
    ],
)
def test_codec_errors_name_what_is_wrong(name, value, message):
    with pytest.raises(PayloadError, match=message):
        BUILTIN_CODECS[name].decode(value)


def test_json_codec_refuses_to_publish_non_json():
    with pytest.raises(PayloadError, match="not JSON"):
        BUILTIN_CODECS["json"].encode(b"\x00\x01")
    assert BUILTIN_CODECS["json"].encode(b'{"t": 21.5}') == '{"t": 21.5}'
    assert BUILTIN_CODECS["json"].decode({"t": 21.5}) == b'{"t":21.5}'
