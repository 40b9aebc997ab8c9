"""Actions with response data, the data event, the event entity and MQTT forwarding, end to end."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import Any
from unittest.mock import patch

import pytest
import voluptuous as vol
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers.event import async_track_state_change_event
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.sim7020.const import (
    CONF_ALLOW_RAW_AT,
    CONF_BAUDRATE,
    CONF_DEVICE,
    CONF_LISTEN_PORT,
    CONF_MQTT_TOPIC,
    CONF_PSM_HANDLING,
    DOMAIN,
    EVENT_DATA_RECEIVED,
)
from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer

from .common import entity_id, state_of, unload_mqtt, wait_for
from .conftest import EmulatedModem, SetupEntry


@pytest.fixture
async def udp_echo() -> AsyncGenerator[UdpPeer]:
    """A UDP peer answering ``echo:<data>``."""
    peer = await UdpPeer(lambda data: b"echo:" + data).start()
    yield peer
    peer.close()


async def _call(hass: HomeAssistant, service: str, data: dict[str, Any]) -> Any:
    return await hass.services.async_call(DOMAIN, service, data, blocking=True, return_response=True)


async def test_send_udp_and_wait_for_reply(
    hass: HomeAssistant, setup_entry: SetupEntry, udp_echo: UdpPeer
) -> None:
    """The payload reaches the peer; its reply is returned and fired on the bus."""
    entry = await setup_entry()
    events = async_capture_events(hass, EVENT_DATA_RECEIVED)
    response = await _call(
        hass,
        "send",
        {
            "host": "127.0.0.1",
            "port": udp_echo.port,
            "protocol": "udp",
            "payload": "hello",
            "wait_response": True,
        },
    )
    data, _ = await udp_echo.next()
    assert data == b"hello"
    assert response == {
        "sent": 5,
        "response": {
            "host": "127.0.0.1",
            "port": udp_echo.port,
            "protocol": "udp",
            "payload": "echo:hello",
            "payload_hex": b"echo:hello".hex(),
        },
    }
    await hass.async_block_till_done()
    assert len(events) == 1
    assert events[0].data["payload"] == "echo:hello"
    assert events[0].data["config_entry_id"] == entry.entry_id
    assert events[0].data["device_id"] == entry.runtime_data.device_id
    # The connection stays open for later replies and is counted.
    assert state_of(hass, "sensor", "open_connections") == "1"

    # A second send reuses it.
    await _call(
        hass, "send", {"host": "127.0.0.1", "port": udp_echo.port, "protocol": "udp", "payload": "again"}
    )
    assert (await udp_echo.next())[0] == b"again"
    assert state_of(hass, "sensor", "open_connections") == "1"


async def test_send_binary_hex_and_base64(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """Binary payloads go out byte-exact; a reply that is not UTF-8 has payload None and its hex."""
    peer = await UdpPeer(lambda data: b"\xff\x00\xfe").start()
    try:
        await setup_entry()
        response = await _call(
            hass,
            "send",
            {
                "host": "127.0.0.1",
                "port": peer.port,
                "protocol": "udp",
                "payload": "00 01 ff",
                "encoding": "hex",
                "wait_response": True,
            },
        )
        assert (await peer.next())[0] == b"\x00\x01\xff"
        assert response["response"]["payload"] is None
        assert response["response"]["payload_hex"] == "ff00fe"

        await _call(
            hass,
            "send",
            {
                "host": "127.0.0.1",
                "port": peer.port,
                "protocol": "udp",
                "payload": "AAH/",
                "encoding": "base64",
            },
        )
        assert (await peer.next())[0] == b"\x00\x01\xff"
    finally:
        peer.close()


async def test_send_needs_a_target(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """Without client_id, host, port and protocol are all required."""
    await setup_entry()
    with pytest.raises(vol.Invalid, match="port, protocol required"):
        await _call(hass, "send", {"host": "127.0.0.1", "payload": "x"})


@pytest.mark.parametrize(
    ("encoding", "payload"),
    [("hex", "0g"), ("hex", "abc"), ("base64", "not base64!")],
)
async def test_send_rejects_bad_payload(
    hass: HomeAssistant, setup_entry: SetupEntry, encoding: str, payload: str
) -> None:
    """A payload that does not match its encoding is refused before anything is sent."""
    await setup_entry()
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass,
            "send",
            {"host": "127.0.0.1", "port": 9, "protocol": "udp", "payload": payload, "encoding": encoding},
        )
    assert err.value.translation_key == "invalid_payload"
    assert state_of(hass, "sensor", "open_connections") == "0"


async def test_send_tcp(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """TCP through the modem: the server reads the payload and its answer comes back."""
    peer = await TcpPeer(lambda data: data.upper()).start()
    try:
        await setup_entry()
        response = await _call(
            hass,
            "send",
            {
                "host": "peer.test",
                "port": peer.port,
                "protocol": "tcp",
                "payload": "ping",
                "wait_response": True,
            },
        )
        assert await peer.next() == b"ping"
        assert response["response"]["payload"] == "PING"
    finally:
        await peer.close()


async def test_send_without_reply_returns_none(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """A silent peer: ``response`` is None after the timeout; data arriving later still fires the event."""
    peer = await UdpPeer().start()
    try:
        await setup_entry()
        events = async_capture_events(hass, EVENT_DATA_RECEIVED)
        response = await _call(
            hass,
            "send",
            {
                "host": "127.0.0.1",
                "port": peer.port,
                "protocol": "udp",
                "payload": "anyone?",
                "wait_response": True,
                "timeout": 0.3,
            },
        )
        assert response == {"sent": 7, "response": None}
        _, modem_addr = await peer.next()
        peer.send(b"late", modem_addr)
        await wait_for(hass, lambda: len(events) == 1, "the late datagram's event")
        assert events[0].data["payload"] == "late"
        assert events[0].data["port"] == peer.port
        assert events[0].data["protocol"] == "udp"

        # The event entity shows it too.
        state = hass.states.get(entity_id(hass, "event", "modem_event"))
        assert state is not None
        assert state.attributes["event_type"] == "data_received"
        assert state.attributes["payload"] == "late"
    finally:
        peer.close()


async def test_send_to_unreachable_host(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """A host the modem cannot reach is a modem failure (HomeAssistantError), not bad input."""
    await setup_entry()
    with pytest.raises(HomeAssistantError):
        await _call(
            hass, "send", {"host": "no-such-host.invalid", "port": 5683, "protocol": "tcp", "payload": "x"}
        )


async def test_ping(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """Ping returns one reply per probe with seq, ip, rtt_ms and ttl."""
    await setup_entry()
    response = await _call(hass, "ping", {"host": "127.0.0.1", "count": 2})
    replies = response["replies"]
    assert [reply["seq"] for reply in replies] == [1, 2]
    for reply in replies:
        assert reply["ip"] == "127.0.0.1"
        assert reply["rtt_ms"] is not None
        assert reply["ttl"] > 0


async def test_dns_lookup(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """Names resolve through the modem's DNS; an unknown name is a modem failure."""
    await setup_entry()
    assert await _call(hass, "dns_lookup", {"hostname": "example.com"}) == {"addresses": ["127.0.0.1"]}
    with pytest.raises(HomeAssistantError):
        await _call(hass, "dns_lookup", {"hostname": "unknown.invalid"})


async def test_at_command_needs_permission(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """Raw AT is refused unless allowed in the options."""
    await setup_entry()
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "at_command", {"command": "AT+CSQ"})
    assert err.value.translation_key == "raw_at_disabled"
    assert "Raw AT commands are not allowed for SIM7020E 8901" in str(err.value)


async def test_at_command(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """Allowed raw AT returns the answer lines; unsafe commands and ERROR answers are errors."""
    await setup_entry({CONF_ALLOW_RAW_AT: True})
    assert await _call(hass, "at_command", {"command": "AT+CSQ"}) == {"lines": ["+CSQ: 20,0"]}
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "at_command", {"command": "ATE1"})
    assert err.value.translation_key == "command_not_allowed"
    with pytest.raises(HomeAssistantError) as err2:
        await _call(hass, "at_command", {"command": "AT+NOSUCHCOMMAND?"})  # a read passes the allow-list
    assert err2.value.translation_key == "command_failed"


async def test_psm_fail_option(hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem) -> None:
    """With PSM handling "fail", actions fail at once while the modem sleeps instead of waking it."""
    await setup_entry({CONF_PSM_HANDLING: "fail"})
    modem.emulator.enter_psm()
    await wait_for(hass, lambda: state_of(hass, "sensor", "psm_state") == "asleep", "PSM entered")
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "dns_lookup", {"hostname": "example.com"})
    assert err.value.translation_key == "modem_asleep"


async def test_psm_wait_option_waits_for_wake_up(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """With the default "wait", an action waits while the modem sleeps and runs once it wakes up."""
    await setup_entry()
    modem.emulator.enter_psm()
    await wait_for(hass, lambda: state_of(hass, "sensor", "psm_state") == "asleep", "PSM entered")
    # The UART is dead in PSM; the module wakes at its TAU timer (or PWRKEY), here a bit later.
    hass.loop.call_later(0.3, modem.emulator.exit_psm)
    assert await _call(hass, "dns_lookup", {"hostname": "example.com"}) == {"addresses": ["127.0.0.1"]}
    assert state_of(hass, "sensor", "psm_state") == "awake"


async def test_entry_selection(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """config_entry_id picks the modem; unknown or unloaded entries are clear errors."""
    entry = await setup_entry()
    assert await _call(hass, "dns_lookup", {"hostname": "example.com", "config_entry_id": entry.entry_id})
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "dns_lookup", {"hostname": "example.com", "config_entry_id": "nope"})
    assert err.value.translation_key == "entry_not_found"

    assert await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "dns_lookup", {"hostname": "example.com", "config_entry_id": entry.entry_id})
    assert err.value.translation_key == "entry_not_loaded"
    with pytest.raises(ServiceValidationError) as err:
        await _call(hass, "dns_lookup", {"hostname": "example.com"})
    assert err.value.translation_key == "no_modem"


# HA's mocked MQTT client leaves its 1 s misc-loop timer behind (it never sees the socket close).
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_forward_to_mqtt(
    hass: HomeAssistant, mqtt_mock: Any, setup_entry: SetupEntry, udp_echo: UdpPeer
) -> None:
    """With a forward topic set, received data is also published to MQTT as JSON."""
    await setup_entry({CONF_MQTT_TOPIC: "sim7020/gw1/rx"})
    await _call(
        hass,
        "send",
        {
            "host": "127.0.0.1",
            "port": udp_echo.port,
            "protocol": "udp",
            "payload": "hi",
            "wait_response": True,
        },
    )
    await wait_for(hass, lambda: mqtt_mock.async_publish.called, "the MQTT publish")
    topic, payload = mqtt_mock.async_publish.call_args[0][:2]
    assert topic == "sim7020/gw1/rx"
    assert json.loads(payload) == {
        "host": "127.0.0.1",
        "port": udp_echo.port,
        "protocol": "udp",
        "payload": "echo:hi",
        "payload_hex": b"echo:hi".hex(),
    }
    await unload_mqtt(hass)


# HA's mocked MQTT client leaves its 1 s misc-loop timer behind (it never sees the socket close).
@pytest.mark.parametrize("expected_lingering_timers", [True])
async def test_forward_to_mqtt_failure_is_logged(
    hass: HomeAssistant,
    mqtt_mock: Any,
    setup_entry: SetupEntry,
    udp_echo: UdpPeer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """MQTT refusing the publish does not lose the event: the data still fires it, the failure is logged."""
    mqtt_mock.async_publish.side_effect = HomeAssistantError("broker gone")
    await setup_entry({CONF_MQTT_TOPIC: "sim7020/gw1/rx"})
    events = async_capture_events(hass, EVENT_DATA_RECEIVED)
    send = {"host": "127.0.0.1", "port": udp_echo.port, "protocol": "udp", "payload": "hi"}
    await _call(hass, "send", {**send, "wait_response": True})
    await wait_for(hass, lambda: "Could not forward received data" in caplog.text, "the logged failure")
    assert len(events) == 1
    await unload_mqtt(hass)


async def test_event_listener_removal_is_idempotent(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """Removing an event listener twice is harmless, and a removed listener hears nothing more."""
    manager = (await setup_entry()).runtime_data
    heard: list[str] = []
    remove = manager.async_add_event_listener(lambda kind, attributes: heard.append(kind))
    remove()
    remove()
    manager._notify("data_received", {})
    assert heard == []


async def test_closed_connection_is_reopened(
    hass: HomeAssistant, setup_entry: SetupEntry, udp_echo: UdpPeer
) -> None:
    """A kept connection found closed at the next send is replaced by a fresh one."""
    manager = (await setup_entry()).runtime_data
    send = {"host": "127.0.0.1", "port": udp_echo.port, "protocol": "udp", "payload": "one"}
    await _call(hass, "send", send)
    (kept,) = manager.connections.values()
    first = kept.connection
    assert first is not None
    await first.close()  # closed under the integration, as a module reset or +CSOERR would
    await wait_for(hass, lambda: state_of(hass, "sensor", "open_connections") == "0", "the loss counted")
    await _call(hass, "send", {**send, "payload": "two"})
    assert [(await udp_echo.next())[0] for _ in range(2)] == [b"one", b"two"]
    (same,) = manager.connections.values()
    assert same.connection is not None
    assert same.connection is not first
    assert state_of(hass, "sensor", "open_connections") == "1"


async def test_restart_button(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """Pressing restart reboots the module: unavailable while it re-initialises, then back."""
    await setup_entry()
    sensor = entity_id(hass, "sensor", "operator")
    seen: list[str] = []

    @callback
    def record(event: Event[EventStateChangedData]) -> None:
        if (new := event.data["new_state"]) is not None:
            seen.append(new.state)

    unsub = async_track_state_change_event(hass, [sensor], record)
    await hass.services.async_call(
        "button", "press", {"entity_id": entity_id(hass, "button", "restart")}, blocking=True
    )
    await wait_for(hass, lambda: hass.states.get(sensor).state == "CHN-UNICOM", "back after the restart")
    unsub()
    assert STATE_UNAVAILABLE in seen


async def test_listener_receives_and_answers(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """With a listen port, a client's data fires the event and ``send`` answers it by ``client_id``."""
    entry = await setup_entry({CONF_LISTEN_PORT: 7000})
    await wait_for(hass, lambda: entry.runtime_data.server is not None, "the module's TCP server")
    events = async_capture_events(hass, EVENT_DATA_RECEIVED)
    host, port = modem.emulator.server_address(7000)
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(b"hello modem")
        await writer.drain()
        await wait_for(hass, lambda: len(events) == 1, "the client's data")
        data = events[0].data
        assert data["payload"] == "hello modem"
        assert data["protocol"] == "tcp"
        assert data["client_id"] == 1
        # Answer the client and wait for its next message, as a request/response exchange.
        call = hass.async_create_task(
            _call(
                hass,
                "send",
                {"client_id": data["client_id"], "payload": "welcome", "wait_response": True, "timeout": 5},
            )
        )
        async with asyncio.timeout(5):
            assert await reader.read(100) == b"welcome"
        writer.write(b"thanks")
        await writer.drain()
        response = await call
        assert response["response"]["payload"] == "thanks"
        assert response["response"]["client_id"] == 1
        assert state_of(hass, "sensor", "open_connections") == "1"
    finally:
        writer.close()
        await writer.wait_closed()
    await wait_for(hass, lambda: state_of(hass, "sensor", "open_connections") == "0", "the client gone")
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "send", {"client_id": 1, "payload": "anyone?"})
    assert err.value.translation_key == "client_not_connected"


async def test_peer_closing_frees_the_connection(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """A TCP peer that hangs up: the connection is dropped from the count, and the next send reopens."""
    peer = await TcpPeer(read=True).start()
    try:
        await setup_entry()
        send = {"host": "127.0.0.1", "port": peer.port, "protocol": "tcp", "payload": "one"}
        await _call(hass, "send", send)
        assert await peer.next() == b"one"
        assert state_of(hass, "sensor", "open_connections") == "1"
        for writer in peer.writers:
            writer.close()
        await wait_for(hass, lambda: state_of(hass, "sensor", "open_connections") == "0", "the hang-up")
        await _call(hass, "send", {**send, "payload": "two"})
        assert await peer.next() == b"two"
    finally:
        await peer.close()


async def test_unknown_transport_is_bad_input(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """A transport no plugin provides is refused as invalid input."""
    await setup_entry()
    with pytest.raises(ServiceValidationError) as err:
        await _call(
            hass,
            "send",
            {
                "host": "127.0.0.1",
                "port": 9,
                "protocol": "udp",
                "payload": "x",
                "transport": "carrier_pigeon",
            },
        )
    assert err.value.translation_key == "invalid_request"


async def test_send_while_detached(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem
) -> None:
    """Without network registration the modem cannot send: a clear modem error."""
    await setup_entry()
    modem.emulator.detach()
    await wait_for(hass, lambda: state_of(hass, "sensor", "registration") != "home", "detach pushed")
    with pytest.raises(HomeAssistantError) as err:
        await _call(hass, "send", {"host": "127.0.0.1", "port": 9, "protocol": "udp", "payload": "x"})
    assert err.value.translation_key == "not_registered"


async def test_several_modems_need_an_entry_id(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """With two modems, an action without config_entry_id is refused; with it, it reaches that modem."""
    first = await setup_entry()
    second_emulator = Emulator(
        imei="866123045678919", registration_delay=0.0, hosts={"example.com": "127.0.0.2"}
    )
    host, port = await second_emulator.start_tcp("127.0.0.1", 0)
    second = MockConfigEntry(
        domain=DOMAIN,
        title="SIM7020E 8919",
        unique_id="866123045678919",
        data={CONF_DEVICE: f"socket://{host}:{port}", CONF_BAUDRATE: 115200},
    )
    second.add_to_hass(hass)
    try:
        assert await hass.config_entries.async_setup(second.entry_id)
        await hass.async_block_till_done()
        with pytest.raises(ServiceValidationError) as err:
            await _call(hass, "dns_lookup", {"hostname": "example.com"})
        assert err.value.translation_key == "several_modems"
        assert await _call(
            hass, "dns_lookup", {"hostname": "example.com", "config_entry_id": second.entry_id}
        ) == {"addresses": ["127.0.0.2"]}
        assert await _call(
            hass, "dns_lookup", {"hostname": "example.com", "config_entry_id": first.entry_id}
        ) == {"addresses": ["127.0.0.1"]}
    finally:
        await hass.config_entries.async_unload(second.entry_id)
        await second_emulator.stop()


async def test_module_reboot_drops_connections_and_restarts_listener(
    hass: HomeAssistant,
    setup_entry: SetupEntry,
    modem: EmulatedModem,
    udp_echo: UdpPeer,
) -> None:
    """A reboot closes the sockets: they leave the count, sending opens afresh, the server returns."""
    entry = await setup_entry({CONF_LISTEN_PORT: 7000})
    manager = entry.runtime_data
    await wait_for(hass, lambda: manager.server is not None, "the module's TCP server")
    send = {"host": "127.0.0.1", "port": udp_echo.port, "protocol": "udp", "payload": "before"}
    await _call(hass, "send", send)
    assert (await udp_echo.next())[0] == b"before"
    first_server = manager.server

    modem.emulator.reboot()
    await wait_for(hass, lambda: state_of(hass, "sensor", "open_connections") == "0", "sockets dropped")
    await wait_for(hass, lambda: state_of(hass, "sensor", "operator") == "CHN-UNICOM", "modem back")
    await wait_for(
        hass, lambda: manager.server is not None and manager.server is not first_server, "server again"
    )
    response = await _call(hass, "send", {**send, "payload": "after", "wait_response": True})
    assert (await udp_echo.next())[0] == b"after"
    assert response["response"]["payload"] == "echo:after"


async def test_idle_connection_is_closed(
    hass: HomeAssistant, setup_entry: SetupEntry, udp_echo: UdpPeer
) -> None:
    """A connection without incoming data for the idle time is closed, freeing the module's socket."""
    await setup_entry()
    with patch("custom_components.sim7020.manager.CONNECTION_IDLE_TIMEOUT", 0.2):
        await _call(
            hass, "send", {"host": "127.0.0.1", "port": udp_echo.port, "protocol": "udp", "payload": "x"}
        )
        assert state_of(hass, "sensor", "open_connections") == "1"
        await wait_for(hass, lambda: state_of(hass, "sensor", "open_connections") == "0", "the idle close")


async def test_peer_closing_instead_of_answering(hass: HomeAssistant, setup_entry: SetupEntry) -> None:
    """A TCP peer that hangs up instead of replying: ``response`` is None at once, not after the timeout."""
    peer = await TcpPeer(read=True).start()

    async def hang_up() -> None:
        await peer.next()
        for writer in peer.writers:
            writer.close()

    try:
        await setup_entry()
        closer = hass.async_create_task(hang_up())
        response = await _call(
            hass,
            "send",
            {
                "host": "127.0.0.1",
                "port": peer.port,
                "protocol": "tcp",
                "payload": "bye",
                "wait_response": True,
                "timeout": 30,
            },
        )
        await closer
        assert response == {"sent": 3, "response": None}
    finally:
        await peer.close()


async def test_listen_port_refused_then_accepted(
    hass: HomeAssistant, setup_entry: SetupEntry, modem: EmulatedModem, caplog: pytest.LogCaptureFixture
) -> None:
    """The module refuses the TCP server at first: the reason is logged, and it is tried until it runs."""
    original = modem.emulator.registry.lookup("+CSOLIS")
    assert original is not None
    refusals = []

    def refuse_once(ctx, cmd):  # type: ignore[no-untyped-def]
        if refusals:
            return original(ctx, cmd)
        refusals.append(cmd)
        return ctx.error(3)

    modem.emulator.registry.register("+CSOLIS", refuse_once, replace=True)
    with patch("custom_components.sim7020.manager.LISTEN_RETRY_MIN", 0.01):
        entry = await setup_entry({CONF_LISTEN_PORT: 7000})
        await wait_for(hass, lambda: entry.runtime_data.server is not None, "the module's TCP server")
    assert len(refusals) == 1
    assert "cannot listen on TCP port 7000" in caplog.text
