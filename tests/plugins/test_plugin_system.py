"""The plugin manager: built-ins and third parties through entry points, validation, transport and codec
look-up, hooks called through pluggy (historic registration, guarded notifications)."""

from __future__ import annotations

import json
import logging
import sys
import types
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import sim7020_plugins.native
from sim7020_core import codecs as codecs_mod
from sim7020_core.codecs import BUILTIN_CODECS
from sim7020_core.connection import Capabilities, Connection, Transport
from sim7020_core.exceptions import PayloadError, PluginError
from sim7020_core.hookspecs import hookimpl
from sim7020_core.plugins import async_make_plugin_manager, make_plugin_manager

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


def test_builtin_plugins_come_from_entry_points_like_a_third_party():
    pm = make_plugin_manager(disable=["echo"])
    assert set(pm.transports) == {"native", "cip", "transparent", "udp_extended"}
    assert pm.get_plugin("native") is sim7020_plugins.native
    assert pm.get_plugin("codecs") is codecs_mod
    assert set(pm.codecs) == {"raw", "hex", "base64", "json"}
    bare = make_plugin_manager(load_entrypoints=False)  # nothing is registered behind the entry points' back
    assert not bare.transports
    assert not bare.codecs


def test_third_party_distribution_is_discovered_through_its_entry_point(echo_plugin_installed):
    pm = make_plugin_manager()
    cls = pm.transport_class("echo")
    assert cls.__module__ == "sim7020_echo_plugin"
    assert pm.get_plugin("echo") is sys.modules["sim7020_echo_plugin"]
    assert "reverse" in pm.codecs


def test_disable_skips_a_plugin_by_name(echo_plugin_installed):
    pm = make_plugin_manager(disable=["echo"])
    assert "echo" not in pm.transports
    pm = make_plugin_manager(disable=["native"])
    with pytest.raises(PluginError, match="no transport named 'native'"):
        pm.transport_class("native")


def test_unknown_transport_names_the_available_ones(echo_plugin_installed):
    pm = make_plugin_manager()
    with pytest.raises(PluginError) as info:
        pm.transport_class("natve")
    assert "'natve'" in str(info.value)
    assert "echo" in str(info.value)
    assert "native" in str(info.value)


def test_no_plugins_at_all_says_where_they_come_from():
    with pytest.raises(PluginError, match=r"available: none; is the sim7020 distribution installed"):
        make_plugin_manager(load_entrypoints=False).transport_class("native")


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


def test_two_plugins_registering_the_same_transport_name_are_refused_when_built():
    one = _plugin("one", sim7020_register_transports=lambda: [_transport("dup")])
    two = _plugin("two", sim7020_register_transports=lambda: [_transport("dup")])
    with pytest.raises(PluginError, match=r"transport 'dup' is registered by both 'one' and 'two'"):
        make_plugin_manager(load_entrypoints=False, plugins=[one, two])


def test_plugin_returning_a_non_transport_is_refused_and_left_unregistered():
    bad = _plugin(
        "notatransport", sim7020_register_transports=lambda: [object], sim7020_wake_modem=lambda modem: True
    )
    pm = make_plugin_manager(load_entrypoints=False)
    with pytest.raises(PluginError, match=r"'notatransport'.*not a Transport subclass"):
        pm.register(bad)
    assert not pm.is_registered(bad)
    assert pm.hook.sim7020_wake_modem(modem=object()) is None  # none of its hooks stayed behind


async def test_plugin_manager_can_be_built_off_the_event_loop(echo_plugin_installed):
    pm = await async_make_plugin_manager(disable=["echo"])
    assert "native" in pm.transports
    assert "echo" not in pm.transports


def test_plugin_manager_is_not_a_global():
    extra = _plugin("extra", sim7020_register_transports=lambda: [_transport("extra")])
    pm1 = make_plugin_manager(load_entrypoints=False, plugins=[extra])
    pm2 = make_plugin_manager(load_entrypoints=False)
    assert "extra" in pm1.transports
    assert "extra" not in pm2.transports


def test_a_plugin_registered_late_still_adds_its_transports_and_codecs():
    """The registration hooks are historic: pluggy replays them for a plugin registered after the build."""
    pm = make_plugin_manager(disable=["echo"])
    cls = _transport("late")
    late = _plugin(
        "late", sim7020_register_transports=lambda: [cls], sim7020_register_codecs=lambda: {"up": Upper()}
    )
    pm.register(late)
    assert pm.transport_class("late") is cls
    assert pm.codec("up").decode("x") == b"X"
    pm.unregister(late)
    assert "late" not in pm.transports
    assert "up" not in pm.codecs


class Upper:
    name = "up"

    def encode(self, data: bytes) -> str:
        return data.decode().lower()

    def decode(self, value: str | bytes) -> bytes:
        return (value if isinstance(value, bytes) else value.encode()).upper()


# ---------------------------------------------------------------------- hooks


def test_hook_sim7020_register_transports():
    cls = _transport("viaplugin")
    plugin = _plugin("p", sim7020_register_transports=lambda: [cls])
    pm = make_plugin_manager(plugins=[plugin])
    assert pm.transport_class("viaplugin") is cls
    assert pm.transport_class("native").name == "native"


def test_hook_sim7020_register_codecs(echo_plugin_installed):
    pm = make_plugin_manager()
    assert {"raw", "hex", "base64", "json", "reverse"} <= set(pm.codecs)
    assert pm.codec("reverse").encode(b"abc") == b"cba"
    with pytest.raises(PluginError, match=r"'rot13'.*base64, hex, json, raw, reverse"):
        pm.codec("rot13")


def test_codec_without_decode_is_rejected():
    class Half:
        name = "half"

        def encode(self, data):
            return data

    with pytest.raises(PluginError, match=r"'half'.*'halfplug'"):
        make_plugin_manager(
            load_entrypoints=False,
            plugins=[_plugin("halfplug", sim7020_register_codecs=lambda: {"half": Half()})],
        )


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
    assert pm.hook.sim7020_wake_modem(modem=object()) is True
    assert calls == ["abstain", "wake"]  # last registered runs first; None lets the next one try
    assert make_plugin_manager(load_entrypoints=False).hook.sim7020_wake_modem(modem=object()) is None


def test_failing_wake_plugin_counts_as_failed(caplog):
    def explode(modem):
        raise OSError("gpio busy")

    pm = make_plugin_manager(load_entrypoints=False, plugins=[_plugin("gpio", sim7020_wake_modem=explode)])
    with caplog.at_level(logging.ERROR):
        assert pm.hook.sim7020_wake_modem(modem=object()) is False
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
        pm.hook.sim7020_modem_state_changed(modem=object(), event="evt")  # through pluggy
    assert "plugin bug" in caplog.text
    assert "'bug'" in caplog.text
    assert seen == ["evt"]  # the other plugin was still told


def test_hook_wrappers_of_a_plugin_still_wrap_guarded_notifications():
    """Guarding implementations keeps pluggy's machinery: a wrapper sees the call and its outcome."""
    order: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def sim7020_modem_state_changed(self, modem, event):
            order.append("before")
            result = yield
            order.append("after")
            return result

    def broken(modem, event):
        order.append("broken")
        raise ValueError("plugin bug")

    pm = make_plugin_manager(
        load_entrypoints=False, plugins=[_plugin("bug", sim7020_modem_state_changed=broken), Wrapper()]
    )
    pm.hook.sim7020_modem_state_changed(modem=object(), event="evt")
    assert order == ["before", "broken", "after"]


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
