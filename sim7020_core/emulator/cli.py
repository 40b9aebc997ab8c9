"""``sim7020 emulator``: run the emulated module until Ctrl+C / SIGTERM.

Example::

    sim7020 emulator --tcp 127.0.0.1:7020 --host example.com=127.0.0.1 --route 116.247.119.165=127.0.0.1
    socat - TCP:127.0.0.1:7020,crlf        # then type AT commands
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from ..exceptions import Sim7020Error
from .core import Emulator, PsmTimings
from .network import parse_endpoint
from .profiles import PROFILES
from .radio import Grant

#: Seconds the transcript writer may take to flush when stopping.
TRANSCRIPT_FLUSH_TIMEOUT = 5.0


def _host_entry(text: str) -> tuple[str, str]:
    name, sep, ips = text.partition("=")
    if not sep or not name.strip() or not ips.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=IP[,IP...], got {text!r}")
    return name.strip(), ips.strip()


def _route_entry(text: str) -> tuple[str, str]:
    src, sep, dst = text.partition("=")
    if not sep or not src.strip() or not dst.strip():
        raise argparse.ArgumentTypeError(f"expected IP[:PORT]=HOST[:PORT], got {text!r}")
    try:
        parse_endpoint(src)
        parse_endpoint(dst)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return src.strip(), dst.strip()


_GRANT_KEYS = tuple(Grant.__dataclass_fields__)


def _grant_entry(text: str) -> tuple[str, str | None]:
    key, sep, value = text.partition("=")
    key = key.strip()
    if not sep or key not in _GRANT_KEYS:
        raise argparse.ArgumentTypeError(
            f"expected KEY=VALUE with KEY one of {', '.join(_GRANT_KEYS)}, got {text!r}"
        )
    value = value.strip()
    return key, (None if key == "edrx" and value.lower() == "none" else value)


def _tcp_endpoint(text: str) -> tuple[str, int]:
    try:
        host, port = parse_endpoint(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    if port is None:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host or "127.0.0.1", port


def add_cli(subparsers: Any) -> None:
    """Add the ``emulator`` subcommand."""
    p: argparse.ArgumentParser = subparsers.add_parser(
        "emulator",
        help="run an emulated SIM7020 on TCP and/or a pty",
        description="Run an emulated SIM7020 module. Connect with `nc 127.0.0.1 7020`, "
        "`socat - TCP:127.0.0.1:7020,crlf`, or --device socket://127.0.0.1:7020.",
    )
    p.add_argument(
        "--tcp",
        type=_tcp_endpoint,
        metavar="HOST:PORT",
        help="serve the AT interface over TCP (default 127.0.0.1:7020 when --pty is not given)",
    )
    p.add_argument("--pty", metavar="PATH", help="also serve on a pseudo-terminal, symlinked at PATH")
    p.add_argument(
        "--host",
        type=_host_entry,
        action="append",
        default=[],
        metavar="NAME=IP",
        help="DNS entry for AT+CDNSGIP (repeatable; IP may be a comma-separated list)",
    )
    p.add_argument(
        "--route",
        type=_route_entry,
        action="append",
        default=[],
        metavar="IP[:PORT]=HOST[:PORT]",
        help="reach the module-side address IP[:PORT] at the loopback peer HOST[:PORT] (repeatable)",
    )
    p.add_argument("--baud", type=int, default=None, metavar="N", help="pace the UART at N baud")
    p.add_argument("--transcript", type=Path, metavar="FILE", help="log every byte in and out to FILE")
    p.add_argument(
        "--registration-delay", type=float, default=0.2, metavar="S", help="seconds to register (default 0.2)"
    )
    p.add_argument(
        "--wake-on-uart",
        action="store_true",
        help="input while in PSM wakes the module (the real UART is dead in PSM)",
    )
    p.add_argument(
        "--profile",
        choices=sorted(PROFILES),
        default="sim7020",
        help="firmware behaviour: sim7020 (as real modules were captured, default), sim7028, note "
        "(the application note's forms)",
    )
    p.add_argument(
        "--grant",
        type=_grant_entry,
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="what the network grants instead of the request, e.g. periodic_tau=11100000, "
        "active_time=00000001, edrx=none (repeatable)",
    )
    p.set_defaults(func=run_emulator)


def _remove_link(path: Path) -> None:
    if path.is_symlink():
        with contextlib.suppress(OSError):
            path.unlink()


async def _write_transcript(queue: asyncio.Queue[str | None], fh: TextIO) -> None:
    while (line := await queue.get()) is not None:
        await asyncio.to_thread(fh.write, line)
        await asyncio.to_thread(fh.flush)


async def run_emulator(args: argparse.Namespace) -> int:
    """Run until interrupted; print where the module listens."""
    if args.baud is not None and args.baud <= 0:
        raise Sim7020Error(f"--baud must be positive, got {args.baud}")
    hosts = dict(args.host)
    routes = dict(args.route)
    try:
        emu = Emulator(
            hosts=hosts,
            routes=routes,
            baudrate=args.baud,
            registration_delay=args.registration_delay,
            psm_timings=PsmTimings(wake_on_uart=args.wake_on_uart),
            profile=args.profile,
            grant=dict(args.grant),
        )
    except ValueError as err:
        raise Sim7020Error(str(err)) from None

    queue: asyncio.Queue[str | None] = asyncio.Queue()
    writer_task: asyncio.Task[None] | None = None
    fh: TextIO | None = None
    if args.transcript is not None:
        try:
            fh = await asyncio.to_thread(args.transcript.open, "a", encoding="utf-8")
        except OSError as err:
            raise Sim7020Error(f"cannot open transcript {args.transcript}: {err}") from None
        assert fh is not None
        writer_task = asyncio.create_task(_write_transcript(queue, fh))
        emu.add_transcript_listener(lambda d, data: queue.put_nowait(f"{time.time():.3f} {d} {data!r}\n"))

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        tcp = args.tcp or (None if args.pty else ("127.0.0.1", 7020))
        if tcp is not None:
            try:
                host, port = await emu.start_tcp(*tcp)
            except OSError as err:
                raise Sim7020Error(f"cannot listen on {tcp[0]}:{tcp[1]}: {err.strerror or err}") from None
            print(f"SIM7020 emulator listening on tcp {host}:{port} (socket://{host}:{port})", flush=True)
        if args.pty:
            try:
                path = await emu.start_pty(args.pty)
            except OSError as err:
                raise Sim7020Error(f"cannot create pty link {args.pty}: {err.strerror or err}") from None
            print(f"SIM7020 emulator on pty {path}", flush=True)
        print("Press Ctrl+C to stop.", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)
        await emu.stop()
        if args.pty:
            await asyncio.to_thread(_remove_link, Path(args.pty))
        if writer_task is not None and fh is not None:
            queue.put_nowait(None)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(TRANSCRIPT_FLUSH_TIMEOUT):
                    await writer_task
            await asyncio.to_thread(fh.close)
    return 0
