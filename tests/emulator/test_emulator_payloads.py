"""Any payload survives the native socket wire formats both ways (Hypothesis, real loopback peers)."""

from __future__ import annotations

import asyncio

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer
from tests.emulator.conftest import WAIT, TcpHost

SERVER = ("116.247.119.165", 5245)


async def _round_trip(up: bytes, down: bytes, raw: bool) -> tuple[bytes, bytes]:
    peer = await TcpPeer().start()
    emu = Emulator(registration_delay=0)
    emu.route(*SERVER, to=peer.address)
    try:
        h = await TcpHost.connect(await emu.start_tcp())
        await h.send("ATE0")
        await h.read_until(b"OK\r\n")
        await h.cmd(f"AT+CSORCVFLAG={int(raw)}", "OK")
        await h.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
        await h.cmd(f'AT+CSOCON=0,{SERVER[1]},"{SERVER[0]}"', "OK")
        reader, writer = await peer.accept()
        await h.cmd(f"AT+CSOSEND=0,{len(up) * 2},{up.hex()}", "OK")
        async with asyncio.timeout(WAIT):
            got_up = await reader.readexactly(len(up))
        writer.write(down)
        got_down = b""
        while len(got_down) < len(down):
            m = await h.expect_re(rb"\r\n\+CSONMI: 0,(\d+),")
            n = int(m.group(1))
            if raw:
                m = await h.expect_re(rb"(.{%d})\r\n" % n)
                got_down += m.group(1)
            else:
                m = await h.expect_re(rb"([0-9A-F]{%d})\r\n" % n)
                got_down += bytes.fromhex(m.group(1).decode())
        await h.quiet(0.05)
        await h.close()
        return got_up, got_down
    finally:
        await emu.stop()
        await peer.close()


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(up=st.binary(min_size=1, max_size=256), down=st.binary(min_size=1, max_size=3000), raw=st.booleans())
def test_payloads_round_trip(up: bytes, down: bytes, raw: bool) -> None:
    assert asyncio.run(_round_trip(up, down, raw)) == (up, down)
