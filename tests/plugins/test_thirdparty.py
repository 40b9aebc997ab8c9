"""The third-party distribution of tests/plugins/thirdparty, installed with pip, through the public surfaces.

Nothing here hands the plugin to the modem: ``Modem.connect`` without ``plugin_manager`` builds the plugin
manager from the installed entry points, as an application that never heard of the plugin would. The bridge
and the CLI are covered in tests/bridge/test_thirdparty_plugin.py and tests/core/test_cli_modem.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from sim7020_core import LinkState, Modem
from sim7020_core.emulator import Emulator
from sim7020_core.events import StateChanged

from .conftest import FAST, WAIT


@pytest.fixture
def echo_plugin(echo_plugin_installed):
    import sim7020_echo_plugin

    return sim7020_echo_plugin


@pytest.fixture
async def slow_registration() -> AsyncIterator[str]:
    """A module that registers a while after it answers, so its +CEREG URC arrives during initialisation."""
    emu = Emulator(registration_delay=0.3)
    host, port = await emu.start_tcp("127.0.0.1", 0)
    yield f"socket://{host}:{port}"
    await emu.stop()


async def _until(predicate) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.01)


async def test_state_hook_sees_connecting_then_ready_during_connect(echo_plugin, emulator: Emulator) -> None:
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    modem = await Modem.connect(f"socket://{host}:{port}", options=FAST)
    try:
        states = [e for e in echo_plugin.EVENTS[modem] if isinstance(e, StateChanged)]
        assert (states[0].previous, states[0].state) == (LinkState.CONNECTING, LinkState.READY)
        assert states[0].status.registration == "home"
    finally:
        await modem.close()
    assert echo_plugin.EVENTS[modem][-1].state is LinkState.CLOSED


async def test_urc_handler_gets_a_urc_sent_during_initialisation(echo_plugin, slow_registration: str) -> None:
    modem = await Modem.connect(slow_registration, options=FAST)
    try:
        # connect() returned: initialisation is over, and the registration URC arrived while it ran
        assert any(line.startswith("+CEREG: 1") for line in echo_plugin.URCS[modem]), echo_plugin.URCS[modem]
    finally:
        await modem.close()


async def test_wake_hook_is_asked_when_a_module_in_psm_must_answer(echo_plugin) -> None:
    from sim7020_core.emulator import PsmTimings

    emu = Emulator(registration_delay=0.0, psm_timings=PsmTimings(auto=False, wake_on_uart=True))
    host, port = await emu.start_tcp("127.0.0.1", 0)
    try:
        modem = await Modem.connect(f"socket://{host}:{port}", options=FAST)
        try:
            assert modem not in echo_plugin.WAKE_CALLS
            emu.enter_psm()
            await _until(lambda: modem.state is LinkState.ASLEEP)
            # the plugin abstains (no wake line on its board): the modem falls back to the UART
            assert await modem.command("AT+CSQ") == ["+CSQ: 20,0"]
            assert echo_plugin.WAKE_CALLS[modem] == 1
            assert modem.state is LinkState.READY
        finally:
            await modem.close()
    finally:
        await emu.stop()


async def test_transport_and_data_hook_of_the_plugin(echo_plugin, emulator: Emulator) -> None:
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    async with await Modem.connect(f"socket://{host}:{port}", options=FAST) as modem:
        conn = await modem.open_connection("udp", "127.0.0.1", 5683, transport="echo")
        await conn.send(b"\x00ping\xff")
        assert await conn.receive(timeout=WAIT) == b"\x00ping\xff"
        assert echo_plugin.RECEIVED[conn] == [b"\x00ping\xff"]
        assert modem.plugins.codec("reverse").encode(b"abc") == b"cba"
