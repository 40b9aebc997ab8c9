"""``sim7020 bridge``, ``sim7020 check-config`` and ``sim7020 demo``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..plugins import async_make_plugin_manager, make_plugin_manager
from .config import load_config, summary

_LOGGER = logging.getLogger(__name__)


def add_cli(subparsers: Any) -> None:
    """Register the bridge subcommands (convention of :mod:`sim7020_core.cli`)."""
    bridge = subparsers.add_parser("bridge", help="run the MQTT bridge from a YAML configuration")
    bridge.add_argument("-c", "--config", required=True, type=Path, help="the YAML configuration file")
    _log_level(bridge, "INFO")
    bridge.set_defaults(func=run_bridge)

    check = subparsers.add_parser("check-config", help="validate a bridge configuration and list every error")
    check.add_argument("-c", "--config", required=True, type=Path, help="the YAML configuration file")
    check.set_defaults(func=check_config)

    demo = subparsers.add_parser(
        "demo", help="emulated modem + broker + echo server + bridge: watch a reading go out and come back"
    )
    demo.add_argument("--once", action="store_true", help="stop after one round trip")
    demo.add_argument("--interval", type=float, default=5.0, help="seconds between readings (default 5)")
    demo.add_argument(
        "--broker",
        choices=["auto", "mosquitto", "embedded"],
        default="auto",
        help="MQTT broker to start: mosquitto when installed (auto), or the minimal embedded one",
    )
    _log_level(demo, "WARNING")
    demo.set_defaults(func=run_demo)


def _log_level(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--log-level",
        dest="sub_log_level",
        default=default,
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help=f"logging verbosity (default: {default})",
    )


def _apply_log_level(args: argparse.Namespace) -> None:
    level = getattr(args, "sub_log_level", None)
    if level:
        logging.getLogger().setLevel(level)


def check_config(args: argparse.Namespace) -> int:
    """Print every configuration error (exit 1) or a summary (exit 0)."""
    try:
        config = load_config(args.config, plugins=make_plugin_manager())
    except ConfigError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        count = len(err.errors)
        print(f"{args.config}: {count} error{'s' if count != 1 else ''}", file=sys.stderr)
        return 1
    print(summary(config))
    return 0


async def run_bridge(args: argparse.Namespace) -> int:
    """Run the bridge until SIGTERM/SIGINT."""
    from .bridge import Bridge

    _apply_log_level(args)
    plugins = await async_make_plugin_manager()  # the one plugin manager of this process
    try:
        config = load_config(args.config, plugins=plugins)
    except ConfigError as err:
        for line in err.errors:
            print(line, file=sys.stderr)
        return 1
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    bridge = Bridge(config, plugins=plugins)
    await bridge.start()
    _LOGGER.info(
        "bridge running: %d modem(s), %d route(s), broker %s:%s",
        len(config.modems),
        len(config.routes),
        config.mqtt.host,
        config.mqtt.port,
    )
    try:
        await stop.wait()
    finally:
        _LOGGER.info("stopping; counters: %s", bridge.stats())
        await bridge.stop()
    return 0


def _install_signal_handlers(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)


async def run_demo(args: argparse.Namespace) -> int:
    """``sim7020 demo``: see :mod:`.demo`."""
    from .demo import run_demo as demo

    _apply_log_level(args)
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    return await demo(once=args.once, interval=args.interval, stop=stop, broker_kind=args.broker)
