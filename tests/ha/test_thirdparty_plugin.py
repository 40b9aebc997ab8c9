"""The ``sim7020.send`` action with the third-party distribution of tests/plugins/thirdparty (installed by
scripts/bootstrap with pip): its transport and its codec are named like built-in ones."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError

from custom_components.sim7020.const import DOMAIN
from sim7020_core.emulator.peers import UdpPeer

from .conftest import SetupEntry


@pytest.fixture(autouse=True)
def echo_plugin_installed() -> None:
    try:
        importlib.metadata.distribution("sim7020-echo-plugin")
    except importlib.metadata.PackageNotFoundError:
        pytest.fail("install the test plugin first: pip install tests/plugins/thirdparty")


async def _send(hass: HomeAssistant, **data: Any) -> Any:
    return await hass.services.async_call(DOMAIN, "send", data, blocking=True, return_response=True)


async def test_send_through_the_plugin_transport_with_the_plugin_codec(
    hass: HomeAssistant, setup_entry: SetupEntry
) -> None:
    entry = await setup_entry()
    assert "echo" in entry.runtime_data.modem.plugins.transports  # the entry's plugin manager found it
    response = await _send(
        hass,
        host="127.0.0.1",
        port=9,
        protocol="udp",
        payload="olleh",
        encoding="reverse",  # the plugin's codec: the bytes sent are b"hello"
        transport="echo",  # the plugin's transport: what is sent comes straight back
        wait_response=True,
    )
    assert response["sent"] == 5
    assert response["response"]["payload"] == "hello"


async def test_text_is_still_accepted_for_raw(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    peer = await UdpPeer().start()
    try:
        await setup_entry()
        await _send(hass, host="127.0.0.1", port=peer.port, protocol="udp", payload="é", encoding="text")
        assert (await peer.next())[0] == "é".encode()
    finally:
        peer.close()


async def test_unknown_codec_names_the_available_ones(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    await setup_entry()
    with pytest.raises(ServiceValidationError) as err:
        await _send(hass, host="127.0.0.1", port=9, protocol="udp", payload="x", encoding="rot13")
    assert err.value.translation_key == "invalid_request"
    assert "base64, hex, json, raw, reverse" in err.value.translation_placeholders["error"]
