"""Modem subcommands of the ``sim7020`` CLI: ``status``, ``at``, ``ping``, ``dns``, ``send``.

Each connects to ``--device`` (default ``socket://127.0.0.1:7020``, the emulator's default address), does
one thing and closes. ``--json`` prints machine-readable output. Exit codes: 0 success, 1 the modem or
the network failed, or the raw-AT guard refused the command (one line on stderr), 2 bad arguments. What ends
up inside an AT command (a host, the command of ``at``) is checked before the modem is opened, with the
library's checks (:mod:`sim7020_core.modem.checks`).

The command composes the application: it builds the one plugin manager (off the event loop) and hands it to
the modem, so every installed plugin's transports, codecs and hooks are there (``send --transport`` and
``--encoding`` accept a third party's names like the built-in ones).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from . import const
from .exceptions import PluginError, Sim7020Error
from .modem import Modem, ModemOptions
from .modem.checks import check_command_line, host_problem, raw_command_refusal
from .plugins import PluginManager, async_make_plugin_manager

DEFAULT_DEVICE = "socket://127.0.0.1:7020"

#: Options of the short-lived CLI modem: no polling, no watchdog, no recovery.
CLI_REGISTRATION_TIMEOUT = 10.0

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default=DEFAULT_DEVICE, help=f"modem URL or device path (default {DEFAULT_DEVICE})"
    )
    parser.add_argument(
        "--baudrate", type=int, default=const.DEFAULT_BAUDRATE, help="line rate of a device path"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument(
        "--registration-timeout",
        type=float,
        default=CLI_REGISTRATION_TIMEOUT,
        help="seconds to wait for network registration on connect (default %(default)s)",
    )
    parser.add_argument(
        "--usage-file",
        metavar="PATH",
        default=None,
        help="keep the data usage totals in this JSON file (read at start, written at the end);"
        " 'status --json' shows them",
    )


def add_cli(subparsers: Any) -> None:
    """Add the modem subcommands to the ``sim7020`` parser."""
    p = subparsers.add_parser("status", help="show the modem's identity and network status")
    _common(p)
    p.set_defaults(func=cmd_status)

    p = subparsers.add_parser("at", help="send a raw AT command and print its answer")
    _common(p)
    p.add_argument("at_command", metavar="COMMAND", help='e.g. "AT+CSQ"')
    p.add_argument(
        "--timeout", type=float, default=const.USER_COMMAND_TIMEOUT, help="seconds (default %(default)s)"
    )
    p.add_argument(
        "--allow-unsafe", action="store_true", help="also send commands that break the session (ATE1 …)"
    )
    p.set_defaults(func=cmd_at)

    p = subparsers.add_parser("ping", help="ping a host from the modem")
    _common(p)
    p.add_argument("host")
    p.add_argument("-c", "--count", type=int, default=4, help="probes (default %(default)s)")
    p.add_argument("-s", "--size", type=int, default=32, help="payload bytes (default %(default)s)")
    p.add_argument(
        "--timeout", type=float, default=10.0, help="per-probe timeout, seconds (default %(default)s)"
    )
    p.set_defaults(func=cmd_ping)

    # dns: registered by cli_network (HOST resolves with cmd_dns below; SERVERs set the DNS servers)

    p = subparsers.add_parser("send", help="send one payload over UDP/TCP and optionally print the answer")
    _common(p)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("payload", help="the data (text, or hex/base64 with --encoding)")
    p.add_argument("--protocol", choices=["udp", "tcp"], default="udp")
    p.add_argument(
        "--transport", default="native", help="native | cip | transparent | udp_extended | <plugin>"
    )
    p.add_argument(
        "--encoding",
        default="raw",
        help="how PAYLOAD is written: raw (text sent as UTF-8) | hex | base64 | json | <plugin codec>",
    )
    p.add_argument(
        "--wait-response",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait this long for an answer and print it (default: don't wait)",
    )
    p.set_defaults(func=cmd_send)


async def _with_modem(
    args: argparse.Namespace,
    action: Callable[[Modem], Awaitable[int]],
    plugins: PluginManager | None = None,
) -> int:
    options = ModemOptions(
        registration_timeout=max(0.0, args.registration_timeout),
        poll_interval=None,
        watchdog_interval=None,
        auto_recover=False,
        usage_file=args.usage_file or None,
    )
    try:
        if plugins is None:
            plugins = await async_make_plugin_manager()
        modem = await Modem.connect(
            args.device, baudrate=args.baudrate, options=options, plugin_manager=plugins
        )
    except Sim7020Error as err:
        _fail(f"cannot use the modem at {args.device}: {err}")
        return EXIT_FAILURE
    async with modem:
        try:
            return await action(modem)
        except ValueError as err:
            _fail(str(err))
            return EXIT_USAGE
        except Sim7020Error as err:
            _fail(str(err))
            return EXIT_FAILURE


def _fail(message: str) -> None:
    print(f"sim7020: error: {message}", file=sys.stderr)


def _bad_host(host: str) -> bool:
    """Say what is wrong with the HOST argument (True), before anything is opened."""
    problem = host_problem(host.strip())
    if problem is not None:
        _fail(f"HOST {host!r}: {problem}")
    return problem is not None


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, sort_keys=True, default=str))


async def cmd_status(args: argparse.Namespace) -> int:
    """``sim7020 status``: identity and network status."""

    async def action(modem: Modem) -> int:
        status = await modem.refresh()
        if args.json:
            _print_json(
                {
                    "info": modem.info.as_dict(),
                    "status": status.as_dict(),  # registration, signal, cell (+ neighbours), psm …
                    "state": modem.state.value,
                    "usage": modem.usage.as_dict(),  # the totals of --usage-file (zero without)
                }
            )
            return EXIT_OK
        info = modem.info
        rows = [
            ("model", " ".join(x for x in (info.manufacturer, info.model) if x) or "?"),
            ("revision", info.revision or "?"),
            ("IMEI", info.imei or "?"),
            ("IMSI", info.imsi or "?"),
            ("ICCID", info.iccid or "?"),
            ("state", modem.state.value),
            ("registration", status.registration),
            ("operator", status.operator or "-"),
            (
                "signal",
                f"{status.rssi_dbm} dBm (CSQ {status.csq})" if status.rssi_dbm is not None else "unknown",
            ),
            ("attached", "yes" if status.attached else "no"),
            (
                "PDN",
                f"active, APN {status.apn or '?'}, IP {status.ip or '?'}"
                if status.pdn_active
                else "inactive",
            ),
            ("PSM", _psm_text(status.psm.enabled, status.psm.state, status.psm.tau_s, status.psm.active_s)),
        ]
        cell = status.cell
        if cell.pci is not None or cell.cell_id is not None:
            rows.append(
                (
                    "cell",
                    f"id {cell.cell_id}, PCI {cell.pci}, band {cell.band}, RSRP {cell.rsrp_dbm} dBm, "
                    f"RSRQ {cell.rsrq_db} dB, SINR {cell.sinr_db} dB",
                )
            )
        width = max(len(name) for name, _ in rows)
        for name, value in rows:
            print(f"{name:<{width}}  {value}")
        return EXIT_OK

    return await _with_modem(args, action)


def _psm_text(enabled: bool, state: str, tau_s: int | None, active_s: int | None) -> str:
    if not enabled:
        return "off"
    tau = "?" if tau_s is None else str(tau_s)
    active = "?" if active_s is None else str(active_s)
    return f"on ({state}), TAU {tau} s, active {active} s"


async def cmd_at(args: argparse.Namespace) -> int:
    """``sim7020 at COMMAND``: the raw answer lines (the command is checked before the modem is opened)."""
    try:
        text = check_command_line(args.at_command)
        reason = None if args.allow_unsafe else raw_command_refusal(text)
    except ValueError as err:
        _fail(f"COMMAND: {err}")
        return EXIT_USAGE
    if reason is not None:
        _fail(f"{text!r}: {reason}; use --allow-unsafe to send it anyway")
        return EXIT_FAILURE

    async def action(modem: Modem) -> int:
        lines = await modem.command(args.at_command, timeout=args.timeout, allow_unsafe=args.allow_unsafe)
        if args.json:
            _print_json({"command": args.at_command, "lines": lines})
        else:
            for line in lines:
                print(line)
            print("OK")
        return EXIT_OK

    return await _with_modem(args, action)


async def cmd_ping(args: argparse.Namespace) -> int:
    """``sim7020 ping HOST``: one line per probe; exit 1 when no probe was answered."""
    if _bad_host(args.host):
        return EXIT_USAGE

    async def action(modem: Modem) -> int:
        replies = await modem.ping(args.host, count=args.count, size=args.size, timeout=args.timeout)
        answered = [r for r in replies if r.rtt_ms is not None]
        if args.json:
            _print_json(
                {
                    "host": args.host,
                    "replies": [
                        {"seq": r.seq, "ip": r.ip, "rtt_ms": r.rtt_ms, "ttl": r.ttl} for r in replies
                    ],
                }
            )
        else:
            for r in replies:
                if r.rtt_ms is None:
                    print(f"seq={r.seq} {r.ip}: timeout")
                else:
                    print(f"seq={r.seq} {r.ip}: time={r.rtt_ms:g} ms ttl={r.ttl}")
            print(f"{len(replies)} sent, {len(answered)} received")
        if not answered:
            _fail(f"no reply from {args.host}")
            return EXIT_FAILURE
        return EXIT_OK

    return await _with_modem(args, action)


async def cmd_dns(args: argparse.Namespace) -> int:
    """``sim7020 dns HOST``: the addresses, one per line."""
    if _bad_host(args.host):
        return EXIT_USAGE

    async def action(modem: Modem) -> int:
        addresses = await modem.resolve(args.host)
        if args.json:
            _print_json({"host": args.host, "addresses": addresses})
        else:
            for address in addresses:
                print(address)
        return EXIT_OK

    return await _with_modem(args, action)


def _show_payload(data: bytes) -> str:
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return data.hex()
    return text if text.isprintable() else data.hex()


async def cmd_send(args: argparse.Namespace) -> int:
    """``sim7020 send HOST PORT PAYLOAD``: send, and with ``--wait-response`` print what came back."""
    if _bad_host(args.host):
        return EXIT_USAGE
    try:
        plugins = await async_make_plugin_manager()
    except PluginError as err:
        _fail(str(err))
        return EXIT_FAILURE
    try:
        payload = plugins.codec(args.encoding).decode(args.payload)
    except PluginError as err:  # no such codec: the message lists the installed ones
        _fail(f"--encoding: {err}")
        return EXIT_USAGE
    except Sim7020Error as err:  # PayloadError: PAYLOAD does not match its encoding
        _fail(f"PAYLOAD: {err}")
        return EXIT_USAGE

    async def action(modem: Modem) -> int:
        conn = await modem.open_connection(args.protocol, args.host, args.port, transport=args.transport)
        async with conn:
            await conn.send(payload)
            response: bytes | None = None
            if args.wait_response > 0:
                response = await conn.receive(timeout=args.wait_response)
        if args.json:
            out: dict[str, Any] = {
                "host": args.host,
                "port": args.port,
                "protocol": args.protocol,
                "sent": len(payload),
            }
            if response is not None:
                out["response"] = _show_payload(response)
                out["response_hex"] = response.hex()
            _print_json(out)
        else:
            print(f"sent {len(payload)} bytes to {args.host}:{args.port}/{args.protocol}")
            if response is not None:
                print(_show_payload(response))
        return EXIT_OK

    return await _with_modem(args, action, plugins)
