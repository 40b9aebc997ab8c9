"""Network-setting subcommands of the ``sim7020`` CLI: ``psm``, ``edrx``, ``bands``, ``operator``, ``dns``,
``apn``.

Without a value each shows the module's current setting next to what the network granted; with one it
applies it (the library's setter, with the library's checks: a bad value exits 2 before the modem is opened,
naming the value and the allowed range). ``dns HOST`` still resolves a host name (``cli_modem``); ``dns`` with
IPv4 addresses sets the fallback DNS servers.

The CLI's modem lives only for one command: the module keeps what it stores in its non-volatile memory, but
re-applying settings after a module reset needs a long-running owner (the bridge's ``network:`` block, Home
Assistant, or a program holding a :class:`~sim7020_core.modem.Modem`).
"""

from __future__ import annotations

import argparse
from typing import Any

from .cli_modem import EXIT_OK, EXIT_USAGE, _common, _fail, _print_json, _with_modem, cmd_dns
from .models import ModemStatus, NetworkSettings
from .modem import Modem
from .netvalues import EDRX_CYCLE_VALUES, is_ipv4_literal, supported_bands


def add_cli(subparsers: Any) -> None:
    """Add the network-setting subcommands to the ``sim7020`` parser."""
    p = subparsers.add_parser("psm", help="show or set power saving mode (requested and granted timers)")
    _common(p)
    p.add_argument("state", nargs="?", choices=["on", "off"], help="switch PSM on or off")
    p.add_argument("--tau", type=int, metavar="S", help="requested periodic TAU (T3412), seconds")
    p.add_argument("--active", type=int, metavar="S", help="requested active time (T3324), seconds")
    p.set_defaults(func=cmd_psm)

    cycles = ", ".join(f"{c:g}" for c in EDRX_CYCLE_VALUES)
    p = subparsers.add_parser("edrx", help="show or set eDRX (requested and granted cycle)")
    _common(p)
    p.add_argument("state", nargs="?", choices=["on", "off"], help="switch eDRX on or off")
    p.add_argument("--cycle", type=float, metavar="S", help=f"requested cycle, seconds: {cycles}")
    p.set_defaults(func=cmd_edrx)

    p = subparsers.add_parser("bands", help="show or lock the bands the module may use")
    _common(p)
    p.add_argument("bands", nargs="*", metavar="N", help="band numbers, or 'all' (every band the module has)")
    p.set_defaults(func=cmd_bands)

    p = subparsers.add_parser("operator", help="show or select the network (auto or a numeric MCCMNC)")
    _common(p)
    p.add_argument("operator", nargs="?", metavar="auto|MCCMNC")
    p.set_defaults(func=cmd_operator)

    p = subparsers.add_parser(
        "dns", help="resolve HOST with the modem's DNS; without it show, with IPv4 addresses set, DNS servers"
    )
    _common(p)
    p.add_argument(
        "targets",
        nargs="*",
        metavar="HOST|SERVER",
        help="a host name to resolve, or up to two IPv4 addresses: fallback DNS servers for networks that "
        "hand out none ('none': no fallback)",
    )
    p.set_defaults(func=cmd_dns_or_servers)

    p = subparsers.add_parser("apn", help="show or set the APN (radio off, set, radio on)")
    _common(p)
    p.add_argument("apn", nargs="?", metavar="APN")
    p.add_argument("--username", default="", help="APN user name")
    p.add_argument("--password", default="", help="APN password")
    p.add_argument("--pdp-type", default="IP", choices=["IP", "IPV6", "IPV4V6", "Non-IP"])
    p.set_defaults(func=cmd_apn)


def _check(**values: Any) -> str | None:
    """The library's checks of these :class:`NetworkSettings` fields: the problem, or None."""
    try:
        NetworkSettings(**values)
    except ValueError as err:
        return str(err)
    return None


def _usage(problem: str) -> int:
    _fail(problem)
    return EXIT_USAGE


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:g} s"


# ------------------------------------------------------------------ psm


async def cmd_psm(args: argparse.Namespace) -> int:
    """``sim7020 psm [on|off] [--tau S] [--active S]``."""
    if args.state is None and (args.tau is not None or args.active is not None):
        return _usage("--tau and --active go with 'on'")
    if args.state is not None:
        problem = _check(psm=args.state == "on", psm_tau_s=args.tau, psm_active_s=args.active)
        if problem:
            return _usage(problem)

    async def action(modem: Modem) -> int:
        if args.state is not None:
            await modem.set_psm(args.state == "on", args.tau, args.active)
        status = await modem.refresh()
        psm = status.psm
        if args.json:
            _print_json({"psm": _asdict(status)["psm"]})
            return EXIT_OK
        print(f"PSM        {'on' if psm.enabled else 'off'} ({psm.state})")
        print(f"requested  TAU {_seconds(psm.requested_tau_s)}, active {_seconds(psm.requested_active_s)}")
        if psm.granted:
            print(f"granted    TAU {_seconds(psm.tau_s)}, active {_seconds(psm.active_s)}")
        else:
            print("granted    - (the network reported no grant)")
        return EXIT_OK

    return await _with_modem(args, action)


def _asdict(status: ModemStatus) -> dict[str, Any]:
    return status.as_dict()


# ------------------------------------------------------------------ edrx


async def cmd_edrx(args: argparse.Namespace) -> int:
    """``sim7020 edrx [on|off] [--cycle S]``."""
    if args.state is None and args.cycle is not None:
        return _usage("--cycle goes with 'on'")
    if args.state is not None:
        problem = _check(edrx=args.state == "on", edrx_cycle_s=args.cycle)
        if problem:
            return _usage(problem)

    async def action(modem: Modem) -> int:
        if args.state is not None:
            await modem.set_edrx(args.state == "on", args.cycle)
        status = await modem.refresh()
        edrx = status.edrx
        if args.json:
            _print_json({"edrx": _asdict(status)["edrx"]})
            return EXIT_OK
        print(f"eDRX       {'on' if edrx.enabled else 'off'}")
        print(f"requested  cycle {_seconds(edrx.requested_cycle_s)}")
        if edrx.cycle_s is not None:
            print(f"granted    cycle {_seconds(edrx.cycle_s)}, paging window {_seconds(edrx.ptw_s)}")
        else:
            print("granted    - (eDRX not in use)")
        return EXIT_OK

    return await _with_modem(args, action)


# ------------------------------------------------------------------ bands


async def cmd_bands(args: argparse.Namespace) -> int:
    """``sim7020 bands [N ...|all]``."""
    bands: list[int] | None = None
    if args.bands:
        if args.bands == ["all"]:
            bands = []
        else:
            try:
                bands = [int(b, 10) for b in args.bands]
            except ValueError:
                return _usage(f"bands: give band numbers or 'all', not {' '.join(args.bands)!r}")
            problem = _check(bands=tuple(bands))
            if problem:
                return _usage(problem)

    async def action(modem: Modem) -> int:
        if bands is not None:
            await modem.set_bands(bands)
        status = await modem.refresh()
        offered = supported_bands(modem.info.model or None)
        if args.json:
            _print_json(
                {
                    "bands": list(status.bands),
                    "supported": list(offered),
                    "registration": status.registration,
                    "serving_band": status.cell.band,
                }
            )
            return EXIT_OK
        print(f"bands         {', '.join(map(str, status.bands)) or '?'}")
        print(f"supported     {', '.join(map(str, offered))}")
        print(f"registration  {status.registration}, serving cell on band {status.cell.band or '?'}")
        return EXIT_OK

    return await _with_modem(args, action)


# ------------------------------------------------------------------ operator


async def cmd_operator(args: argparse.Namespace) -> int:
    """``sim7020 operator [auto|MCCMNC]``."""
    if args.operator is not None:
        problem = _check(operator=args.operator)
        if problem:
            return _usage(problem)

    async def action(modem: Modem) -> int:
        if args.operator is not None:
            await modem.set_operator(args.operator)
        status = await modem.refresh()
        selection = await _selection(modem)
        if args.json:
            _print_json(
                {"operator": status.operator, "selection": selection, "registration": status.registration}
            )
            return EXIT_OK
        print(f"operator      {status.operator or '-'} ({selection})")
        print(f"registration  {status.registration}")
        return EXIT_OK

    return await _with_modem(args, action)


async def _selection(modem: Modem) -> str:
    lines = await modem.command("AT+COPS?")
    for line in lines:
        head, _, rest = line.partition(":")
        if head.strip().upper() == "+COPS":
            mode = rest.split(",")[0].strip()
            return {"0": "automatic", "1": "manual", "2": "deregistered", "4": "manual, else automatic"}.get(
                mode, f"mode {mode}"
            )
    return "unknown"


# ------------------------------------------------------------------ dns


async def cmd_dns_or_servers(args: argparse.Namespace) -> int:
    """``sim7020 dns HOST`` resolves; ``sim7020 dns`` shows and ``sim7020 dns SERVER …`` sets the servers."""
    targets: list[str] = args.targets
    if len(targets) == 1 and targets[0] != "none" and not is_ipv4_literal(targets[0]):
        args.host = targets[0]
        return await cmd_dns(args)
    servers: tuple[str, ...] | None = None
    if targets:
        servers = () if targets == ["none"] else tuple(targets)
        problem = _check(dns_servers=servers)
        if problem:
            return _usage(problem)

    async def action(modem: Modem) -> int:
        if servers is not None:
            await modem.set_dns_servers(servers)
        status = await modem.refresh()
        fallback = modem.network_settings.dns_servers or ()
        used = bool(fallback) and status.dns_servers == fallback
        if args.json:
            _print_json(
                {"dns_servers": list(status.dns_servers), "fallback": list(fallback), "fallback_used": used}
            )
            return EXIT_OK
        whose = "the fallback" if used else "the network's"
        print(f"in effect  {', '.join(status.dns_servers) + f' ({whose})' if status.dns_servers else 'none'}")
        print(f"fallback   {', '.join(fallback) or '-'}")
        return EXIT_OK

    return await _with_modem(args, action)


# ------------------------------------------------------------------ apn


async def cmd_apn(args: argparse.Namespace) -> int:
    """``sim7020 apn [APN]``."""
    if args.apn is not None:
        problem = _check(apn=args.apn)
        if problem:
            return _usage(problem)

    async def action(modem: Modem) -> int:
        if args.apn is not None:
            await modem.set_apn(args.apn, args.pdp_type, args.username, args.password)
        status = await modem.refresh()
        if args.json:
            _print_json(
                {
                    "apn": status.apn,
                    "ip": status.ip,
                    "pdn_active": status.pdn_active,
                    "registration": status.registration,
                }
            )
            return EXIT_OK
        print(f"APN           {status.apn or '-'}")
        print(f"PDN           {'active, IP ' + (status.ip or '?') if status.pdn_active else 'inactive'}")
        print(f"registration  {status.registration}")
        return EXIT_OK

    return await _with_modem(args, action)
