"""The ``sim7020`` command line.

Each feature contributes its subcommands through an ``add_cli(subparsers)`` function in its own module
(the emulator, the modem commands, the bridge), so this file only wires them together. A subcommand's
handler is stored as ``func`` on the parsed namespace; it may be sync or async and returns the exit code.
Failures print a one-line reason to stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import inspect
import logging
import sys
from collections.abc import Sequence

from .exceptions import Sim7020Error
from .version import __version__

#: Modules that contribute subcommands, in the order they appear in ``--help``.
CLI_MODULES = (
    "sim7020_core.emulator.cli",  # emulator
    "sim7020_core.cli_modem",  # status, at, ping, send
    "sim7020_core.cli_network",  # psm, edrx, bands, operator, dns, apn
    "sim7020_core.bridge.cli",  # bridge, check-config, demo
    "sim7020_core.sessions.cli",  # record, replay
)

LOG_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="sim7020",
        description="Drive a SIMCom SIM7020 NB-IoT modem (or the built-in emulator).",
    )
    parser.add_argument("--version", action="version", version=f"sim7020 {__version__}")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="logging verbosity (default: WARNING)",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in CLI_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:  # a real missing dependency inside the module: do not hide it
                raise
            continue
        module.add_cli(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sim7020`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, format=LOG_FORMAT, stream=sys.stderr)
    func = args.func
    try:
        if inspect.iscoroutinefunction(func):
            with contextlib.suppress(KeyboardInterrupt):
                return int(asyncio.run(func(args)) or 0)
            return 130
        return int(func(args) or 0)
    except Sim7020Error as err:
        print(f"sim7020: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
