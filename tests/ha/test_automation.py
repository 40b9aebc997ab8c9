"""The YAML automations of docs/home-assistant.md, run against the emulated modem and a loopback peer."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from homeassistant.components import automation
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util.yaml import parse_yaml

from custom_components.sim7020.const import DOMAIN
from sim7020_core.emulator.peers import UdpPeer

from .common import modem_device
from .conftest import SetupEntry

DOCS = Path(__file__).parents[2] / "docs" / "home-assistant.md"


def doc_example(name: str) -> dict[str, Any]:
    """The YAML block that follows ``<!-- example: name -->`` in the docs."""
    match = re.search(rf"<!-- example: {re.escape(name)} -->\s*```yaml\n(.*?)```", DOCS.read_text(), re.S)
    assert match is not None, f"example {name} not found in {DOCS}"
    config = parse_yaml(match.group(1))
    assert isinstance(config, dict)
    return config


async def test_event_automation_replies(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """A peer sends "ping" on a connection the modem opened; the automation sends "pong" back to it."""
    peer = await UdpPeer(lambda data: b"ping" if data == b"hello" else None).start()
    try:
        await setup_entry()
        assert await async_setup_component(hass, automation.DOMAIN, doc_example("event-reply"))
        await hass.services.async_call(
            DOMAIN,
            "send",
            {"host": "127.0.0.1", "port": peer.port, "protocol": "udp", "payload": "hello"},
            blocking=True,
        )
        assert (await peer.next())[0] == b"hello"
        assert (await peer.next())[0] == b"pong"
    finally:
        peer.close()


async def test_device_trigger_automation_acknowledges(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """The device-trigger example acknowledges what arrives, quoting it in hex."""
    peer = await UdpPeer().start()
    try:
        device = modem_device(hass, await setup_entry())
        config = doc_example("device-trigger-ack")
        config[automation.DOMAIN][0]["triggers"][0]["device_id"] = device.id
        assert await async_setup_component(hass, automation.DOMAIN, config)
        await hass.services.async_call(
            DOMAIN,
            "send",
            {"host": "127.0.0.1", "port": peer.port, "protocol": "udp", "payload": "hello"},
            blocking=True,
        )
        _, modem_addr = await peer.next()
        peer.send(b"\x01\x02", modem_addr)
        assert (await peer.next())[0] == b"ack 0102"
    finally:
        peer.close()
