"""Network settings over MQTT against a real mosquitto and the built-in emulated modem: ``cmd/psm``,
``cmd/edrx``, ``cmd/apn``, ``cmd/bands``, ``cmd/operator``, ``cmd/dns_servers`` (round trips and validation
errors), the state topic's ``psm``/``edrx``/``bands``/``dns_servers``, and the YAML's ``network:`` block."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sim7020_core.bridge.config import load_config
from sim7020_core.exceptions import ConfigError
from sim7020_core.models import NetworkSettings

from .conftest import Broker, Watcher
from .test_bridge import request, run_bridge, wait_ready, write_config

__all__ = ["run_bridge"]  # the fixture, imported


async def test_network_commands_round_trip(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], run_bridge: Any
) -> None:
    bridge = await run_bridge(write_config(tmp_path, broker))
    modem = await wait_ready(bridge)
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/cmd/+/response")
    await w.asubscribe("sim7020/gw1/state")

    reply = await request(w, "psm", {"id": 1, "enabled": True, "tau_s": 3600, "active_s": 60})
    assert reply["ok"] is True, reply
    psm = reply["result"]["psm"]
    assert (psm["enabled"], psm["requested_tau_s"], psm["requested_active_s"]) == (True, 3600, 60)
    assert (psm["granted"], psm["tau_s"], psm["active_s"]) == (True, 3600, 60)

    reply = await request(w, "edrx", {"id": 2, "enabled": True, "cycle_s": 40.96})
    assert reply["result"] == {
        "edrx": {"enabled": True, "requested_cycle_s": 40.96, "cycle_s": 40.96, "ptw_s": 10.24}
    }, reply

    reply = await request(w, "bands", {"id": 3, "bands": [8, 20]})
    assert reply["result"] == {"bands": [8, 20], "registration": "home"}, reply

    reply = await request(w, "operator", {"id": 4, "operator": "46001"})
    assert reply["result"] == {"operator": "CHN-UNICOM", "registration": "home"}, reply

    reply = await request(w, "dns_servers", {"id": 5, "servers": ["9.9.9.9"]})
    assert reply["result"] == {"dns_servers": ["10.250.0.1", "10.250.0.2"], "fallback": ["9.9.9.9"]}, reply

    reply = await request(w, "apn", {"id": 6, "apn": "nb.example"})
    assert reply["result"] == {"apn": "nb.example", "ip": "10.250.0.213", "registration": "home"}, reply

    assert modem.network_settings == NetworkSettings(
        apn="nb.example",
        psm=True,
        psm_tau_s=3600,
        psm_active_s=60,
        edrx=True,
        edrx_cycle_s=40.96,
        bands=(8, 20),
        operator="46001",
        dns_servers=("9.9.9.9",),
    )
    bridge.modems[0]._publish_state()
    msg = await w.aexpect("sim7020/gw1/state", where=lambda m: json.loads(m.payload)["bands"] == [8, 20])
    state = json.loads(msg.payload)
    assert state["edrx"]["cycle_s"] == 40.96
    assert state["dns_servers"] == ["10.250.0.1", "10.250.0.2"]
    assert state["psm"]["requested_tau_s"] == 3600
    assert state["psm"]["granted"] is True


@pytest.mark.parametrize(
    ("name", "body", "error"),
    [
        ("edrx", {"enabled": True, "cycle_s": 30}, "cycle_s: 30 s is not an eDRX cycle: NB-IoT allows 20.48"),
        ("edrx", {"cycle_s": 20.48}, "enabled: is required"),
        (
            "bands",
            {"bands": [8, 66]},
            "bands: band 66 is not supported: a SIM7020E supports 1, 3, 5, 8, 20, 28",
        ),
        ("bands", {"bands": [7]}, "bands: band 7 is not supported: a SIM7020 supports"),
        ("operator", {"operator": "4600x"}, "operator: must be 'auto' or an MCCMNC of 5-6 digits"),
        ("dns_servers", {"servers": ["9.9.9.9", "x"]}, "servers: server 'x' must be an IPv4 address"),
        ("psm", {"enabled": True, "active_s": 99999}, "active_s: must be from 0 to 11160 seconds, not 99999"),
        ("apn", {"apn": 'a"b'}, "apn: must be an APN"),
    ],
)
async def test_network_commands_refuse_bad_values_naming_them(
    tmp_path: Path,
    broker: Broker,
    watcher_factory: Callable[..., Watcher],
    run_bridge: Any,
    name: str,
    body: dict[str, Any],
    error: str,
) -> None:
    bridge = await run_bridge(write_config(tmp_path, broker))
    await wait_ready(bridge)
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/cmd/+/response")
    reply = await request(w, name, {"id": "bad", **body})
    assert reply["ok"] is False
    assert error in reply["error"]


async def test_the_network_block_is_applied_at_connect(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], run_bridge: Any
) -> None:
    extra = "network:\n  bands: [8]\n  edrx: true\n  edrx_cycle_s: 20.48\n  dns_servers: [9.9.9.9]"
    bridge = await run_bridge(write_config(tmp_path, broker, modem_extra=extra))
    modem = await wait_ready(bridge)
    assert modem.status.bands == (8,)
    assert modem.status.edrx.cycle_s == 20.48
    assert modem.network_settings.dns_servers == ("9.9.9.9",)


def test_check_config_names_bad_network_values(tmp_path: Path) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        "mqtt:\n  host: 127.0.0.1\nstate_dir: state\nmodems:\n  - id: gw1\n    device: emulator\n"
        "    network:\n      bands: [8, 99]\n      edrx_cycle_s: 12\n      operator: abc\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = "\n".join(info.value.errors)
    assert "modems[0].network.bands" in text
    assert "band 99 is not supported" in text
    assert "12 s is not an eDRX cycle" in text
    assert "must be 'auto' or an MCCMNC" in text
    assert "bridge.yaml:8: modems[0].network.bands" in text
