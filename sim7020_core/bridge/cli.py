"""``sim7020 bridge``, ``sim7020 check-config`` and ``sim7020 demo``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from ..exceptions import ConfigError
from ..plugins import async_make_plugin_manager, make_plugin_manager
from .config import load_config, summary

_LOGGER = logging.getLogger(__name__)

#: ``bridge --check`` calls a state directory with less free space than this full.
CHECK_MIN_FREE_BYTES = 1024 * 1024


def add_cli(subparsers: Any) -> None:
    """Register the bridge subcommands (convention of :mod:`sim7020_core.cli`)."""
    bridge = subparsers.add_parser("bridge", help="run the MQTT bridge from a YAML configuration")
    bridge.add_argument("-c", "--config", required=True, type=Path, help="the YAML configuration file")
    bridge.add_argument(
        "--check",
        action="store_true",
        help="check the configuration, connect to the broker once and check the state directory, then exit"
        " (non-zero with the reason when something fails)",
    )
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
        help="MQTT broker to start on 127.0.0.1: mosquitto when installed, else amqtt (auto, the default);"
        " embedded: amqtt in this process (pip install 'sim7020[demo]')",
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
    if args.check:
        if args.sub_log_level == "INFO":  # the default: the check prints its own lines
            logging.getLogger().setLevel(logging.WARNING)
        return await check_bridge(config, args.config)
    stop = asyncio.Event()
    _install_signal_handlers(stop)
    bridge = Bridge(config, plugins=plugins)
    # SIGTERM while starting (e.g. waiting for space to open the queue) stops at once: start() cleans up
    starting = asyncio.create_task(bridge.start(), name="bridge-start")
    stopping = asyncio.create_task(stop.wait(), name="bridge-stop-signal")
    await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
    if not starting.done():
        _LOGGER.info("stopping before the bridge was started")
        starting.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await starting
        return 0
    stopping.cancel()
    await starting  # raises what start() raised
    unreachable = [m for m in bridge.modems if not m.mqtt.connected]
    if unreachable:
        _LOGGER.warning(
            "bridge started, but not connected to the MQTT broker %s:%s (%s); retrying in the background",
            config.mqtt.host,
            config.mqtt.port,
            unreachable[0].mqtt.last_failure or "no answer yet",
        )
    else:
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


async def check_bridge(config: Any, path: Path) -> int:
    """``sim7020 bridge --check``: the configuration (already loaded), the broker, the state directory.

    Prints one line per check; exit 0 when all pass, 1 otherwise.
    """
    from .mqtt import MqttError, check_broker

    ok = True
    print(f"configuration {path}: OK ({len(config.modems)} modem(s), {len(config.routes)} route(s))")
    where = f"MQTT broker {config.mqtt.host}:{config.mqtt.port}"
    try:
        # its own client id: the running bridge's sessions are left alone
        used = await check_broker(config.mqtt, client_id=f"{config.mqtt.client_id}-check")
    except MqttError as err:
        ok = False
        print(f"{where}: FAILED: {str(err).removeprefix(where + ': ')}", file=sys.stderr)
    else:
        print(f"{where}: OK ({used})")
    state_problem = _state_dir_problem(Path(config.state_dir))
    if state_problem is None:
        free = shutil.disk_usage(_existing_parent(Path(config.state_dir))).free
        print(f"state directory {config.state_dir}: OK ({free / 1e6:.0f} MB free)")
    else:
        ok = False
        print(f"state directory {config.state_dir}: FAILED: {state_problem}", file=sys.stderr)
    return 0 if ok else 1


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _state_dir_problem(path: Path) -> str | None:
    """Why the bridge could not use ``path`` as its state directory (None: it can); creates nothing."""
    from .state_dir import check_state_dir

    if not path.exists():
        parent = _existing_parent(path)
        if not os.access(parent, os.W_OK | os.X_OK):
            return f"it does not exist and cannot be created in {parent} (not writable)"
        return None
    problem = check_state_dir(path)
    if problem is None and not os.access(path, os.W_OK | os.X_OK):
        problem = "not writable by this user"
    if problem is None and shutil.disk_usage(path).free < CHECK_MIN_FREE_BYTES:
        problem = f"the disk is full ({shutil.disk_usage(path).free} bytes free)"
    return problem


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
