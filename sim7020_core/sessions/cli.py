"""``sim7020 record`` and ``sim7020 replay``.

Examples::

    sim7020 record --device /dev/ttyUSB0 --listen 127.0.0.1:7021 -o session.txt --redact
    sim7020 status --device socket://127.0.0.1:7021          # (or HA, minicom, socat) through the proxy
    sim7020 replay session.txt --tcp 127.0.0.1:7020           # the recorded modem, without the modem
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path
from typing import Any

from ..exceptions import Sim7020Error
from ..version import __version__
from .ports import ClientPort, PtyPort, TcpPort
from .recorder import Recorder, TranscriptFile
from .replayer import Replayer
from .transcript import SessionError, TranscriptError, load, now_iso

DEFAULT_REPLAY_TCP = ("127.0.0.1", 7020)


def _endpoint(text: str) -> tuple[str, int]:
    host, sep, port = text.strip().rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:7021), got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def _listen(text: str) -> tuple[str, int] | str:
    if text.strip().lower() == "pty":
        return "pty"
    return _endpoint(text)


def _speed(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive factor (1 = as recorded), got {text!r}")
    return value


def add_cli(subparsers: Any) -> None:
    """Add the ``record`` and ``replay`` subcommands."""
    rec: argparse.ArgumentParser = subparsers.add_parser(
        "record",
        help="record a session with a real modem through a transparent proxy",
        description="Sit between a client (this CLI, Home Assistant, minicom, socat) and a real modem, "
        "forward every byte unchanged, and write a timestamped, byte-exact transcript. "
        "Point the client at the --listen address (socket://HOST:PORT) or at the pty. "
        "How to send a session to the project: CONTRIBUTING.md.",
    )
    rec.add_argument(
        "--device", required=True, metavar="URL", help="the modem: device path, socket://, rfc2217://"
    )
    rec.add_argument("--baudrate", type=int, default=115200, metavar="N", help="line rate of a device path")
    side = rec.add_mutually_exclusive_group(required=True)
    side.add_argument(
        "--listen",
        type=_listen,
        metavar="HOST:PORT|pty",
        help="where the client connects: a TCP address, or 'pty' for a new pseudo-terminal (path printed)",
    )
    side.add_argument(
        "--pty", metavar="PATH", help="a new pseudo-terminal, with a symlink at PATH for the client"
    )
    rec.add_argument(
        "-o", "--output", required=True, type=Path, metavar="FILE", help="the transcript to write"
    )
    rec.add_argument("--force", action="store_true", help="overwrite FILE when it exists")
    rec.add_argument(
        "--redact",
        action="store_true",
        help="replace IMEI, IMSI, ICCID and IP addresses in the transcript (not on the wire) by fake values",
    )
    rec.add_argument(
        "--note", default="", metavar="TEXT", help="a note for the header (board, firmware, network)"
    )
    rec.set_defaults(func=run_record)

    rep: argparse.ArgumentParser = subparsers.add_parser(
        "replay",
        help="serve a recorded session as a modem (TCP or pty)",
        description="Answer each command with what the modem answered in the recording, and send its "
        "unsolicited lines at their recorded times. Unknown commands get ERROR (and a warning).",
    )
    rep.add_argument("transcript", type=Path, metavar="FILE", help="a transcript written by `sim7020 record`")
    where = rep.add_mutually_exclusive_group()
    where.add_argument(
        "--tcp", type=_endpoint, metavar="HOST:PORT", help="serve on TCP (default 127.0.0.1:7020)"
    )
    where.add_argument(
        "--pty",
        nargs="?",
        const="",
        metavar="PATH",
        help="serve on a new pseudo-terminal (with a symlink at PATH when given)",
    )
    rep.add_argument(
        "--speed", type=_speed, default=1.0, metavar="F", help="replay F times faster (default 1)"
    )
    rep.set_defaults(func=run_replay)


async def _wait_for_signal(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.remove_signal_handler(sig)


def _client_port(args: argparse.Namespace) -> ClientPort:
    if args.pty:
        return PtyPort(args.pty)
    if args.listen == "pty":
        return PtyPort()
    host, port = args.listen
    return TcpPort(host, port)


async def run_record(args: argparse.Namespace) -> int:
    """Record until Ctrl+C / SIGTERM, or until the modem goes away (exit 1)."""
    if args.baudrate <= 0:
        raise Sim7020Error(f"--baudrate must be positive, got {args.baudrate}")
    client = _client_port(args)
    metadata = {
        "started": now_iso(),
        "device": args.device,
        "baudrate": str(args.baudrate),
        "recorder": f"sim7020 {__version__}",
        "redacted": "yes" if args.redact else "no",
    }
    if args.note:
        metadata["note"] = " ".join(args.note.split())
    transcript = TranscriptFile(args.output, metadata, overwrite=args.force)
    if not args.force and await asyncio.to_thread(args.output.exists):
        raise Sim7020Error(f"{args.output} exists already (choose another name, or --force to overwrite)")
    recorder = Recorder(args.device, client, transcript.put, baudrate=args.baudrate, redact=args.redact)
    try:
        where = await recorder.start()  # the modem first: a failed open leaves no file behind
    except SessionError as err:
        raise Sim7020Error(str(err)) from None
    try:
        await asyncio.to_thread(transcript.open)  # entries queued meanwhile are written now
    except SessionError as err:
        await recorder.stop()
        raise Sim7020Error(str(err)) from None
    lost: str | None = None
    try:
        print(f"recording {args.device} <-> {where} to {args.output}", flush=True)
        print("Press Ctrl+C to stop.", file=sys.stderr, flush=True)
        stop = asyncio.Event()
        waiter = asyncio.ensure_future(recorder.wait_lost())
        stopper = asyncio.ensure_future(_wait_for_signal(stop))
        try:
            done, _ = await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, stopper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if waiter in done and not waiter.cancelled():
            lost = waiter.result()
    finally:
        await recorder.stop()
        await asyncio.to_thread(transcript.close)
    print(
        f"wrote {transcript.entries} entries to {args.output} "
        f"({recorder.bytes_to_modem} bytes to the modem, {recorder.bytes_from_modem} from it)",
        file=sys.stderr,
        flush=True,
    )
    if transcript.error is not None:
        raise Sim7020Error(f"writing {args.output} failed: {transcript.error}")
    if lost is not None:
        raise Sim7020Error(
            f"the modem at {args.device} went away ({lost}); the transcript so far is in {args.output}"
        )
    return 0


async def run_replay(args: argparse.Namespace) -> int:
    """Serve the transcript until Ctrl+C / SIGTERM."""
    try:
        session = await asyncio.to_thread(load, args.transcript)
    except TranscriptError as err:
        raise Sim7020Error(str(err)) from None
    except OSError as err:
        raise Sim7020Error(f"cannot read {args.transcript}: {err.strerror or err}") from None
    replayer = Replayer(session, speed=args.speed)
    try:
        if args.pty is not None:
            try:
                path = await replayer.start_pty(args.pty or None)
            except OSError as err:
                raise Sim7020Error(f"cannot create the pty: {err.strerror or err}") from None
            print(f"replaying {args.transcript} on pty {path}", flush=True)
        else:
            host, port = args.tcp or DEFAULT_REPLAY_TCP
            try:
                host, port = await replayer.start_tcp(host, port)
            except OSError as err:
                raise Sim7020Error(f"cannot listen on {host}:{port}: {err.strerror or err}") from None
            print(f"replaying {args.transcript} on tcp {host}:{port} (socket://{host}:{port})", flush=True)
        print("Press Ctrl+C to stop.", file=sys.stderr, flush=True)
        await _wait_for_signal(asyncio.Event())
    finally:
        await replayer.stop()
    if replayer.unmatched:
        print(
            f"{len(replayer.unmatched)} input(s) were not in the recording (answered ERROR)", file=sys.stderr
        )
    return 0
