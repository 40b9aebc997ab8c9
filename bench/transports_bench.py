"""Benchmark of the transports (issue 4): uplink payload bytes/s, the emulator paced at 115200 baud.

For each transport a Modem sends one stream of random payload bytes (every byte value) through the emulated
module to a real loopback peer (a TCP sink, or a UDP sink for ``udp_extended``), and the clock stops when the
peer has received all of it. The emulator is paced (``Emulator(baudrate=115200)``: 11,520 bytes/s each
way), so the line is the bottleneck and each figure is printed as a ratio to the line's limit for the
encoding:

- ``native hex``: ``AT+CSOSEND=<id>,<hexlen>,"<hex>"``, two line bytes per payload byte → limit 5,760 B/s
  (command overhead and the wait for ``OK`` come on top); target ≥ 0.9;
- ``native data``: ``AT+CSODSEND=<id>,<len>`` + raw bytes → limit 11,520 B/s (its payload holds no ESC byte:
  ESC cancels CSODSEND, so the transport sends pieces holding one in hex, which would measure hex again);
- ``cip``: ``AT+CIPSEND=<n>,<len>`` + raw bytes → limit 11,520 B/s;
- ``transparent``: raw bytes in data mode → limit 11,520 B/s;
- ``udp_extended``: ``AT+CIPSEND=<len>`` + raw 1,400-byte datagrams → limit 11,520 B/s.

Run: ``bench/run transports`` (or ``python bench/transports_bench.py [--bytes N] [--baud B]``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer
from sim7020_core.modem import Modem, ModemOptions
from sim7020_core.plugins import async_make_plugin_manager

OPTIONS = ModemOptions(
    poll_interval=None, watchdog_interval=None, registration_timeout=30.0, auto_recover=False
)
#: Bound on one transport's run (seconds).
RUN_TIMEOUT = 600.0
#: Datagram size for udp_extended (the module's CIPSEND limit is 1460).
DATAGRAM = 1400
#: Bytes per send() call on the stream transports (each transport splits it into its own commands).
SEND_SIZE = 4096


@dataclass(frozen=True)
class Case:
    label: str
    transport: str
    protocol: str
    options: dict[str, Any]
    hex_encoded: bool = False
    no_esc: bool = False


CASES = [
    Case("native hex (CSOSEND)", "native", "tcp", {"send_mode": "hex"}, hex_encoded=True),
    Case("native data (CSODSEND)", "native", "tcp", {"send_mode": "data"}, no_esc=True),
    Case("cip (CIPSEND=n,len)", "cip", "tcp", {}),
    Case("transparent (data mode)", "transparent", "tcp", {"guard_time": 0.2}),
    Case("udp_extended (CIPSEND=len)", "udp_extended", "udp", {}),
]


async def _sink(protocol: str, on_data: Callable[[int], None]) -> tuple[int, Callable[[], Awaitable[None]]]:
    """A loopback peer (sim7020_core.emulator.peers) that counts what arrives; returns its port, a closer."""

    def count(data: bytes) -> None:
        on_data(len(data))

    if protocol == "udp":
        udp = await UdpPeer(reply=count, record=False).start()

        async def close_udp() -> None:
            udp.close()

        return udp.port, close_udp

    tcp = await TcpPeer(reply=count, record=False).start()
    return tcp.port, tcp.close


async def run_case(case: Case, total: int, baud: int, seed: int) -> dict[str, Any]:
    emulator = Emulator(registration_delay=0.0, baudrate=baud)
    emulator.command_sets["cip"].guard_time = 0.2  # type: ignore[attr-defined]
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    received = 0
    done = asyncio.Event()

    def on_data(n: int) -> None:
        nonlocal received
        received += n
        if received >= total:
            done.set()

    sink_port, close_sink = await _sink(case.protocol, on_data)
    modem = await Modem.connect(
        f"socket://{host}:{port}", options=OPTIONS, plugin_manager=await async_make_plugin_manager()
    )
    try:
        conn = await modem.open_connection(
            case.protocol, "127.0.0.1", sink_port, transport=case.transport, **case.options
        )
        payload = random.Random(seed).randbytes(total)
        if case.no_esc:
            payload = payload.replace(b"\x1b", b"\x1c")
        size = DATAGRAM if case.protocol == "udp" else SEND_SIZE
        async with asyncio.timeout(RUN_TIMEOUT):
            start = time.perf_counter()
            for i in range(0, total, size):
                await conn.send(payload[i : i + size])
            await done.wait()
            elapsed = time.perf_counter() - start
        await conn.close()
    finally:
        await modem.close()
        await close_sink()
        await emulator.stop()
    line = baud / 10.0
    limit = line / 2 if case.hex_encoded else line
    rate = total / elapsed
    return {
        "transport": case.label,
        "bytes": total,
        "seconds": elapsed,
        "rate": rate,
        "limit": limit,
        "ratio": rate / limit,
    }


async def main_async(args: argparse.Namespace) -> list[dict[str, Any]]:
    results = []
    for case in CASES:
        if args.only and not any(name in case.label for name in args.only):
            continue
        results.append(await run_case(case, args.bytes, args.baud, args.seed))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bytes", type=int, default=32 * 1024, help="payload bytes per transport")
    parser.add_argument("--baud", type=int, default=115200, help="line rate the emulator is paced at")
    parser.add_argument("--seed", type=int, default=7020)
    parser.add_argument("--only", nargs="*", help="run the cases whose label contains one of these words")
    parser.add_argument("--quick", action="store_true", help="8 KiB per transport")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    if args.quick:
        args.bytes = 8 * 1024
    results = asyncio.run(main_async(args))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"uplink payload through the emulated module paced at {args.baud} baud, {args.bytes} bytes each")
    print(f"{'transport':<28} {'payload B/s':>12} {'limit B/s':>10} {'ratio':>6} {'seconds':>8}")
    for r in results:
        row = f"{r['transport']:<28} {r['rate']:>12.0f} {r['limit']:>10.0f}"
        print(f"{row} {r['ratio']:>6.2f} {r['seconds']:>8.2f}")
    hex_row = next((r for r in results if r["transport"].startswith("native hex")), None)
    if hex_row is not None:
        verdict = "meets" if hex_row["ratio"] >= 0.9 else "MISSES"
        print(f"native hex {verdict} the target of 0.9 of its limit ({hex_row['ratio']:.2f})")


if __name__ == "__main__":
    main()
