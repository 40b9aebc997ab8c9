"""What the module will be sent is checked up front, the raw-AT guard is an allow-list, and a modem task never
dies silently (issue 13, cases 4 and 5), seen as an operator sees them: ``check-config`` exit codes, the
bridge's ``cmd/at`` replies and the state's ``problem`` over a real mosquitto, the log.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from sim7020_core import const
from sim7020_core.bridge.bridge import Bridge
from sim7020_core.bridge.config import load_config
from sim7020_core.cli import main

from .conftest import Broker, Watcher
from .test_bridge import BRIDGE_START_TIMEOUT, wait_ready, write_config
from .test_hostile_requests import ask

#: The APN of the issue: a quote and a line break, then a command that switches the radio off.
HOSTILE_APN = 'x"\r\nAT+CFUN=0'


# ------------------------------------------------------------------ check-config


def test_check_config_refuses_an_apn_the_module_cannot_take(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        "modems:\n"
        "  - id: gw1\n"
        "    device: emulator\n"
        f"    apn: {json.dumps(HOSTILE_APN)}\n"
        "routes:\n"
        "  - {name: r1, modem: gw1, host: 'sensor.example\\r\\nAT+CFUN=0', port: 5683, uplink: a/b}\n",
        encoding="utf-8",
    )
    assert main(["check-config", "-c", str(path)]) == 1
    err = capsys.readouterr().err
    assert (
        f"{path}:4: modems[0].apn: must be an APN (letters, digits, '.', '-', '_'); found '\"' at position 1"
        in err
    )
    assert f"{path}:6: routes[0].host: must be a host name or IP address" in err
    assert main(["bridge", "-c", str(path)]) == 1  # the bridge refuses it too


def test_check_config_takes_real_apns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bridge.yaml"
    path.write_text(
        "modems:\n"
        "  - {id: a, device: emulator, apn: iot.1nce.net}\n"
        "  - {id: b, device: emulator, apn: internet.mnc012.mcc345.gprs}\n"
        "  - {id: c, device: emulator, apn: m2m_corp-1}\n",
        encoding="utf-8",
    )
    assert main(["check-config", "-c", str(path)]) == 0


# ------------------------------------------------------------------ the modem task


@pytest.fixture
async def bridges() -> AsyncIterator[list[Bridge]]:
    started: list[Bridge] = []
    yield started
    for bridge in started:
        await bridge.stop()


async def state_with_problem(w: Watcher, link: str) -> dict[str, Any]:
    """The first state with a problem and this link state."""

    def wanted(msg: Any) -> bool:
        state = json.loads(msg.payload)
        return state.get("problem") is not None and state.get("link") == link

    msg = await w.aexpect("sim7020/gw1/state", 20, where=wanted)
    return dict(json.loads(msg.payload))


def modem_tasks() -> list[str]:
    """Background tasks of modems (watchdog, status poll, recovery) still running."""
    names = ("watchdog", "poll", "reconnect", "after wake")
    return [
        t.get_name() for t in asyncio.all_tasks() if any(n in t.get_name() for n in names) and not t.done()
    ]


async def test_a_modem_task_that_cannot_use_its_apn_says_why_and_leaves_nothing_running(
    tmp_path: Path,
    broker: Broker,
    watcher_factory: Callable[..., Watcher],
    bridges: list[Bridge],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A configuration built in code skips check-config: the library still refuses the APN before sending it,
    the modem task logs the cause, shows it in the state, and the half-opened modem is closed."""
    config = load_config(write_config(tmp_path, broker))
    config = dataclasses.replace(config, modems=[dataclasses.replace(config.modems[0], apn=HOSTILE_APN)])
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/state")
    caplog.set_level(logging.INFO)
    bridge = Bridge(config)
    bridges.append(bridge)
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        await bridge.start()
    state = await state_with_problem(w, "disconnected")
    assert state["problem"].startswith(
        "modem connection: the configuration is not usable: apn: must be an APN"
    )
    assert any("apn: must be an APN" in r.getMessage() and r.levelno >= logging.ERROR for r in caplog.records)
    emulator = bridge.factory.emulator("gw1")
    assert "MCGDEFCONT" not in b"".join(
        data for direction, data in getattr(emulator, "transcript", []) if direction == "rx"
    ).decode(errors="replace")
    await asyncio.sleep(0.2)
    assert modem_tasks() == []  # the modem that was opened for it is closed: nothing goes on reconnecting
    await bridge.stop()
    bridges.remove(bridge)
    assert modem_tasks() == []


async def test_the_librarys_problem_shows_in_the_state(
    tmp_path: Path,
    broker: Broker,
    watcher_factory: Callable[..., Watcher],
    bridges: list[Bridge],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(const, "SIM_BUSY_RETRY_DELAY", 0.01)
    bridge = Bridge(load_config(write_config(tmp_path, broker)))
    bridges.append(bridge)
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        await bridge.start()
    await wait_ready(bridge)
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/state")
    emulator = bridge.factory.emulator("gw1")
    emulator.sim_busy_at_boot(1000)  # after the reboot the SIM never answers: a human has to look
    emulator.reboot()
    state = await state_with_problem(w, "disconnected")
    assert state["problem"].startswith("modem: the SIM stayed busy")


# ------------------------------------------------------------------ the raw-AT allow-list over MQTT


@pytest.fixture
async def at_client(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher], bridges: list[Bridge]
) -> Watcher:
    bridge = Bridge(load_config(write_config(tmp_path, broker, modem_extra="at_commands: true")))
    bridges.append(bridge)
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        await bridge.start()
    await wait_ready(bridge)
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/cmd/+/response")
    return w


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ('AT+CPSMS=1,,,"00000001","00000001"', "use Modem.set_psm() instead"),
        ("AT+CGATT=0", "attaches or detaches"),
        ("AT+CGACT=0,1", "use Modem.set_apn() instead"),
        ('AT+CSOSEND=0,4,"ABCD"', "native sockets belong to the native transport"),
        ("ATE0&F", "'&F' restores the factory settings"),
        ("ATE0Z", "'Z' resets the module's settings"),
        ("AT+CSQ;+CFUN=0", "'+CFUN=0' switches the radio"),
        ("AT+RETENTION=1", "use Modem.set_retention() instead"),
        ("AT+FOO=1", "not on the list of settings raw AT may change"),
    ],
)
async def test_raw_at_refuses_what_would_break_the_session(
    at_client: Watcher, command: str, expected: str
) -> None:
    reply = await ask(at_client, "at", {"id": 1, "command": command})
    assert reply["ok"] is False, reply
    assert expected in reply["error"]
    assert await ask(at_client, "at", {"id": 2, "command": "AT+CGATT?"}) == {
        "id": 2,
        "ok": True,
        "result": {"lines": ["+CGATT: 1"]},  # still attached: nothing of the refused line was sent
    }


@pytest.mark.parametrize(
    "command", ["AT+CPSMS?", "AT+CEREG?", "ATI", "AT+CEREG=?", "AT+CSOSTATUS=0", "AT+CMEE=1", "AT+CCLK?"]
)
async def test_raw_at_reads_anything(at_client: Watcher, command: str) -> None:
    reply = await ask(at_client, "at", {"id": 1, "command": command})
    assert reply["ok"] is True, reply


async def test_any_failure_to_open_the_modem_is_logged_shown_and_retried(
    tmp_path: Path,
    broker: Broker,
    watcher_factory: Callable[..., Watcher],
    bridges: list[Bridge],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A modem factory (a public parameter of Bridge) failing with an error the bridge does not know: logged
    with its traceback, shown in the state, and retried, instead of ending the task silently."""
    calls = 0

    async def failing_factory(modem_cfg: Any, plugins: Any) -> object:
        nonlocal calls
        calls += 1
        raise RuntimeError("the factory has a bug")

    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/state")
    bridge = Bridge(load_config(write_config(tmp_path, broker)), modem_factory=failing_factory)
    bridges.append(bridge)
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        await bridge.start()
    state = await state_with_problem(w, "disconnected")
    assert state["problem"] == "modem connection: cannot open emulator: the factory has a bug"
    assert any("unexpected error opening it" in r.getMessage() and r.exc_info for r in caplog.records)
    async with asyncio.timeout(10):
        while calls < 2:  # retried (after 1 s)
            await asyncio.sleep(0.05)
