"""Every command request gets exactly one answer, through a real mosquitto and the emulated modem: invalid
fields (CR/LF in a host or an AT command, huge values, wrong types) are answered naming the field, without
logging the value whole; a flood is answered "busy"; timeouts say why (issue 13, case 3)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest

from sim7020_core.bridge import commands
from sim7020_core.bridge.bridge import Bridge
from sim7020_core.bridge.config import load_config

from .conftest import Broker, Watcher
from .test_bridge import BRIDGE_START_TIMEOUT, wait_ready, write_config

MODEM = "at_commands: true\noptions: {emulator: {hosts: {sensor.example: 127.0.0.1}}}"
#: How long to listen for a second (wrong) reply after all requests were answered.
QUIET_PERIOD = 1.0


@pytest.fixture
async def bridge(tmp_path: Path, broker: Broker) -> AsyncIterator[Bridge]:
    bridge = Bridge(load_config(write_config(tmp_path, broker, modem_extra=MODEM)))
    async with asyncio.timeout(BRIDGE_START_TIMEOUT):
        await bridge.start()
    await wait_ready(bridge)
    yield bridge
    await bridge.stop()


@pytest.fixture
async def client(bridge: Bridge, broker: Broker, watcher_factory: Callable[..., Watcher]) -> Watcher:
    w = watcher_factory(broker)
    await w.asubscribe("sim7020/gw1/cmd/+/response")
    return w


async def ask(w: Watcher, name: str, body: Any, timeout: float = 20.0) -> dict[str, Any]:
    """Publish one request (a dict as JSON, or raw bytes/str) and return the next reply on its topic."""
    payload = json.dumps(body) if isinstance(body, dict) else body
    await w.apublish(f"sim7020/gw1/cmd/{name}", payload, qos=1)
    msg = await w.aexpect(f"sim7020/gw1/cmd/{name}/response", timeout)
    return dict(json.loads(msg.payload))


async def no_more_replies(w: Watcher) -> None:
    """Nothing else arrives: each request was answered exactly once."""
    await asyncio.sleep(QUIET_PERIOD)
    extra = [m.payload[:200] for m in w.backlog]
    while not w.messages.empty():
        extra.append(w.messages.get_nowait().payload[:200])
    assert extra == [], extra


async def test_invalid_fields_are_answered_naming_the_field(client: Watcher) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("dns", {"id": 1, "host": "sensor.example\r\nAT+CFUN=0"}, "host: must be a host name or IP address"),
        ("dns", {"id": 2, "host": 'x"y'}, "host: must be a host name or IP address"),
        ("dns", {"id": 3, "host": "h" * 300}, "host: must be at most 253 characters, not 300"),
        ("dns", {"id": 4, "host": ""}, "host: must not be empty"),
        ("send", {"id": 5, "host": "127.0.0.1", "port": True, "payload": "x"}, "port: must be an integer"),
        (
            "send",
            {"id": 6, "host": "127.0.0.1", "port": 70000, "payload": "x"},
            "port: must be from 1 to 65535",
        ),
        ("send", {"id": 7, "host": "127.0.0.1", "port": 9, "payload": "x", "transport": "a b"}, "transport:"),
        ("send", {"id": 8, "host": "127.0.0.1", "port": 9, "payload": "zz", "encoding": "hex"}, "payload:"),
        (
            "send",
            {"id": 9, "host": "127.0.0.1", "port": 9, "payload": "x", "wait_response": 1},
            "wait_response",
        ),
        ("ping", {"id": 10, "host": "127.0.0.1", "count": "3"}, "count: must be an integer"),
        ("ping", {"id": 11, "host": "127.0.0.1", "timeout": True}, "timeout: must be a number of seconds"),
        ("at", {"id": 12, "command": "AT+CSQ\r\nAT+CFUN=0"}, "command: must be one line of printable ASCII"),
        ("at", {"id": 13, "command": "AT+CSQ\x1a"}, "command: must be one line of printable ASCII"),
        ("at", {"id": 14, "command": 'AT+CDNSGIP="x'}, "command: has an unbalanced quote"),
        ("at", {"id": 15, "command": "AT" + "X" * 3000}, "command: must be at most 2048 characters"),
        ("at", {"id": 16, "command": "CSQ"}, "command: must start with 'AT'"),
    ]
    for name, body, expected in cases:
        reply = await ask(client, name, body)
        assert reply["id"] == body["id"], reply
        assert reply["ok"] is False, reply
        assert expected in reply["error"], (body, reply)
    crlf = (await ask(client, "dns", {"id": 17, "host": "a\r\nb"}))["error"]
    assert "found '\\r' at position 1" in crlf  # says where, not the whole value
    await no_more_replies(client)


async def test_ids_must_be_bounded_strings_or_numbers(client: Watcher) -> None:
    reply = await ask(client, "dns", {"id": True, "host": "127.0.0.1"})
    assert reply == {"id": None, "ok": False, "error": "id: must be a string or a number, not True"}
    huge = "i" * 200_000
    raw = json.dumps({"id": huge, "host": "127.0.0.1"})
    await client.apublish("sim7020/gw1/cmd/dns", raw, qos=1)
    msg = await client.aexpect("sim7020/gw1/cmd/dns/response")
    assert len(msg.payload) < 500  # the 200 kB id is not echoed back
    assert json.loads(msg.payload) == {
        "id": None,
        "ok": False,
        "error": "id: must be at most 128 characters, not 200000",
    }
    reply = await ask(client, "dns", {"id": 2**60, "host": "127.0.0.1"})
    assert reply["id"] is None
    assert "id: must be an integer within ±2**53" in reply["error"]
    reply = await ask(client, "dns", {"id": "ok-id", "host": "127.0.0.1"})
    assert reply == {"id": "ok-id", "ok": True, "result": {"host": "127.0.0.1", "addresses": ["127.0.0.1"]}}
    reply = await ask(client, "dns", {"id": 1.5, "host": "127.0.0.1"})
    assert reply["id"] == 1.5
    await no_more_replies(client)


async def test_a_huge_request_is_answered_without_logging_it(
    client: Watcher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    host = "h" * (1024 * 1024)
    reply = await ask(client, "dns", {"id": "big", "host": host})
    assert reply["ok"] is False
    assert reply["id"] is None  # a request this size is not parsed
    assert "request:" in reply["error"]
    assert "more than the 262144 a request may have" in reply["error"]
    mid = {"id": "mid", "host": "h" * 100_000}  # small enough to parse: the field is named
    reply = await ask(client, "dns", mid)
    assert reply == {"id": "mid", "ok": False, "error": "host: must be at most 253 characters, not 100000"}
    await no_more_replies(client)
    logged = sum(len(r.getMessage()) for r in caplog.records)
    assert logged < 20_000, f"{logged} characters of log for two oversized requests"
    assert "never retrieved" not in caplog.text


async def test_garbage_and_library_refusals_still_get_one_answer(
    client: Watcher, caplog: pytest.LogCaptureFixture
) -> None:
    replies = [
        await ask(client, "dns", b"\xff\xfe not utf-8"),
        await ask(client, "dns", "[1, 2]"),
        await ask(client, "dns", '{"id": 1, "host": "127.0.0.1", "' + "k" * 5000 + '": 1}'),
        await ask(client, "ping", '{"id": 2, "host": "127.0.0.1", "count": 1' + "0" * 5000 + "}"),
        await ask(
            client, "send", {"id": 3, "host": "127.0.0.1", "port": 9, "payload": "x", "transport": "nope"}
        ),
        # raw AT the library itself refuses (its own guard, not the bridge's checks)
        await ask(client, "at", {"id": 4, "command": "AT+CFUN=0"}),
    ]
    assert all(r["ok"] is False for r in replies), replies
    assert "not JSON" in replies[0]["error"]
    assert "JSON object" in replies[1]["error"]
    assert "unknown field" in replies[2]["error"]
    assert len(replies[2]["error"]) < 200  # the 5,000-character key is not quoted whole
    assert "not JSON" in replies[3]["error"]  # a 5,000-digit number
    assert "nope" in replies[4]["error"]
    assert replies[5]["id"] == 4
    await no_more_replies(client)
    assert "never retrieved" not in caplog.text


async def test_a_flood_is_answered_busy_and_each_request_once(bridge: Bridge, client: Watcher) -> None:
    emu = bridge.factory.emulator("gw1")
    emu.stall()  # the modem stops answering: the first requests hold their turns
    total = commands.MAX_RUNNING_COMMANDS + commands.MAX_WAITING_COMMANDS + 24
    for i in range(total):
        client.client.publish("sim7020/gw1/cmd/dns", json.dumps({"id": i, "host": "sensor.example"}), qos=1)
    busy: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while len(busy) < 24:
            msg = await client.aexpect("sim7020/gw1/cmd/dns/response")
            busy.append(json.loads(msg.payload))
    assert {r["id"] for r in busy} == set(range(total - 24, total))  # the last ones, at once
    assert all(
        r["error"] == "busy: 32 requests are queued for this modem (it runs 4 at a time); try again later"
        for r in busy
    ), busy[0]
    emu.unstall()
    rest: list[dict[str, Any]] = []
    async with asyncio.timeout(commands.COMMAND_TIMEOUT + 20):
        while len(rest) < total - 24:
            rest.append(json.loads((await client.aexpect("sim7020/gw1/cmd/dns/response")).payload))
    counts = Counter(r["id"] for r in busy + rest)
    assert sorted(counts) == list(range(total))
    assert set(counts.values()) == {1}
    errors = [r["error"] for r in rest if not r["ok"]]
    assert all(e and e != "TimeoutError" for e in errors), errors
    assert any(r["ok"] for r in rest)  # once the modem answers again, the waiting ones are served
    await no_more_replies(client)


async def test_timeouts_say_why(bridge: Bridge, client: Watcher, monkeypatch: pytest.MonkeyPatch) -> None:
    emu = bridge.factory.emulator("gw1")
    emu.stall()
    try:
        # the library's own bound (the request's timeout) …
        reply = await ask(client, "at", {"id": "at", "command": "AT+CSQ", "timeout": 0.5})
        assert reply["error"] == "timed out: no final result for 'AT+CSQ' within 0.5 s"
        # … and the bridge's: four requests hold the turns in the silent modem (3 s each, below the
        # library's own 5 s), a fifth with 1 s runs out waiting for a turn
        monkeypatch.setattr(commands, "COMMAND_TIMEOUT", 3.0)
        for i in range(commands.MAX_RUNNING_COMMANDS):
            client.client.publish("sim7020/gw1/cmd/dns", json.dumps({"id": i, "host": "sensor.example"}))
        await asyncio.sleep(0.5)
        monkeypatch.setattr(commands, "COMMAND_TIMEOUT", 1.0)
        await client.apublish("sim7020/gw1/cmd/dns", json.dumps({"id": "late", "host": "sensor.example"}))
        replies = {}
        async with asyncio.timeout(20):
            while len(replies) < commands.MAX_RUNNING_COMMANDS + 1:
                r = json.loads((await client.aexpect("sim7020/gw1/cmd/dns/response")).payload)
                replies[r["id"]] = r["error"]
    finally:
        emu.unstall()
    assert replies["late"] == (
        "timed out: waited 1 s for a turn (4 requests were ahead of it; this modem runs 4 at a time)"
    )
    for i in range(commands.MAX_RUNNING_COMMANDS):
        assert replies[i].startswith(
            "timed out: the modem gave no result within 3 s (the bridge's limit for one request);"
            " its link is "
        )
    await no_more_replies(client)


async def test_mqtt5_correlation_data_matches_answers_without_an_id(
    tmp_path: Path, broker: Broker, watcher_factory: Callable[..., Watcher]
) -> None:
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    bridge = Bridge(load_config(write_config(tmp_path, broker, mqtt_extra="protocol: 5")))
    await bridge.start()
    try:
        await wait_ready(bridge)
        w = watcher_factory(broker, protocol=mqtt.MQTTv5)
        await w.asubscribe("replies/me")
        props = Properties(PacketTypes.PUBLISH)
        props.ResponseTopic = "replies/me"
        props.CorrelationData = b"req-7"
        await w.apublish("sim7020/gw1/cmd/dns", b"x" * (commands.MAX_REQUEST_BYTES + 1), properties=props)
        msg = await w.aexpect("replies/me")
        assert msg.properties.CorrelationData == b"req-7"
        assert json.loads(msg.payload)["error"].startswith("request: 262145 bytes")
    finally:
        await bridge.stop()
