"""Start a local MQTT broker for the demo (``sim7020 demo``, ``scripts/demo``).

Two brokers, both listening on an IPv4 loopback address only (127.0.0.1 by default), since they accept
anonymous clients:

* ``mosquitto``: Debian's mosquitto (``apt-get install mosquitto``), a subprocess with a generated
  configuration in a temporary directory, stopped with SIGTERM (SIGKILL after :data:`BROKER_STOP_TIMEOUT`).
* ``embedded``: amqtt (https://github.com/Yakifo/amqtt, ``pip install 'sim7020[demo]'``), a maintained MQTT
  3.1.1 broker written for asyncio, run inside this process on the caller's event loop.
* ``auto`` (the default): mosquitto when it is installed, otherwise amqtt; when neither is, the error names
  both ways to get one.

amqtt runs in-process rather than as a subprocess because its asyncio API reports what went wrong as an
exception of ``Broker.start()`` (a port already taken, a bad configuration), where its command-line script
only logs the failure and keeps running; it is ready in tens of milliseconds without a second interpreter; and
``Broker.shutdown()`` closes its listener, sessions and tasks on our loop, so stopping leaves nothing running.
Importing amqtt (about 0.3 s of module loading on a small machine) happens in a worker thread, off the event
loop. The bridge speaks MQTT 3.1.1 by default, which is all amqtt serves; a bridge configured with
``mqtt.protocol: 5`` needs mosquitto. amqtt treats every client of this demo configuration as anonymous and
so does not queue messages for a client while it is away (mosquitto does): fine for the demo, which never
takes the bridge down, and the reason a real installation uses mosquitto.
"""

from __future__ import annotations

import asyncio
import importlib
import ipaddress
import logging
import os
import shutil
import socket
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

from ..exceptions import Sim7020Error

_LOGGER = logging.getLogger(__name__)

#: Hard deadline for mosquitto to accept connections, or for amqtt's import and ``Broker.start()``.
BROKER_START_TIMEOUT = 10.0
#: Bound on stopping a broker (mosquitto: before SIGKILL; amqtt: on ``Broker.shutdown()``).
BROKER_STOP_TIMEOUT = 5.0
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")
#: What ``kind`` accepts (``sim7020 demo --broker``).
BROKER_KINDS = ("auto", "mosquitto", "embedded")

INSTALL_MOSQUITTO = "apt-get install mosquitto"
INSTALL_AMQTT = "pip install 'sim7020[demo]'"


class BrokerError(Sim7020Error):
    """No broker could be started."""


class _AmqttBroker(Protocol):
    """The part of ``amqtt.broker.Broker`` used here."""

    async def start(self) -> None: ...

    async def shutdown(self) -> None: ...


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None."""
    found = shutil.which("mosquitto")
    if found:
        return found
    for path in MOSQUITTO_PATHS:
        if os.access(path, os.X_OK):
            return path
    return None


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def _import_amqtt() -> tuple[ModuleType, ModuleType, str]:
    """``amqtt.broker``, ``amqtt.errors`` and amqtt's version (blocking: module loading reads files)."""
    broker = importlib.import_module("amqtt.broker")
    errors = importlib.import_module("amqtt.errors")
    version = str(getattr(sys.modules["amqtt"], "__version__", "?"))
    return broker, errors, version


class LocalBroker:
    """A local broker on ``host:port`` (``port`` 0 picks a free one).

    :param host: an IPv4 loopback address (the brokers accept anonymous clients: nothing else may reach them)
    :param kind: ``"mosquitto"``, ``"embedded"`` (amqtt) or ``"auto"`` (mosquitto when installed, else amqtt)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, kind: str = "auto") -> None:
        if kind not in BROKER_KINDS:
            raise ValueError(f"broker kind must be one of {', '.join(BROKER_KINDS)}, not {kind!r}")
        try:
            loopback = ipaddress.IPv4Address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"the demo broker listens on an IPv4 loopback address only, not {host!r}")
        self.host = host
        self.port = port or free_port(host)
        self.kind = kind
        #: What runs, for people: "mosquitto" or "amqtt <version> (embedded)"; empty until started.
        self.name = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._embedded: _AmqttBroker | None = None

    async def start(self) -> None:
        """Start the broker and return once it accepts connections.

        :raises BrokerError: the broker asked for (or, with ``auto``, both) is not installed, or it did not
            start within :data:`BROKER_START_TIMEOUT`; the message says what to install
        """
        binary = find_mosquitto() if self.kind != "embedded" else None
        if binary is not None:
            await self._start_mosquitto(binary)
        elif self.kind == "mosquitto":
            raise BrokerError(
                f"mosquitto is not installed (Debian/Ubuntu: {INSTALL_MOSQUITTO}); "
                f"or use the embedded broker: {INSTALL_AMQTT}, then --broker embedded"
            )
        else:
            await self._start_embedded()

    async def _start_embedded(self) -> None:
        try:
            async with asyncio.timeout(BROKER_START_TIMEOUT):
                if "amqtt.broker" in sys.modules:  # already loaded: nothing blocking left to do
                    amqtt_broker, amqtt_errors, version = _import_amqtt()
                else:
                    amqtt_broker, amqtt_errors, version = await asyncio.to_thread(_import_amqtt)
                broker: _AmqttBroker = amqtt_broker.Broker(self._amqtt_config())
                try:
                    await broker.start()
                except amqtt_errors.BrokerError as err:
                    raise BrokerError(
                        f"the embedded broker (amqtt) did not start on {self.host}:{self.port}: {err}"
                    ) from err
        except ModuleNotFoundError as err:
            if not (err.name or "").startswith("amqtt"):
                raise  # a dependency of amqtt itself is missing: show the real error
            if self.kind == "embedded":
                raise BrokerError(f"the embedded broker needs amqtt: {INSTALL_AMQTT}") from None
            raise BrokerError(
                "the demo needs an MQTT broker and neither is installed: "
                f"mosquitto (Debian/Ubuntu: {INSTALL_MOSQUITTO}) or amqtt ({INSTALL_AMQTT})"
            ) from None
        except TimeoutError:
            raise BrokerError(
                f"the embedded broker (amqtt) did not start within {BROKER_START_TIMEOUT:g} s"
            ) from None
        self._embedded = broker
        self.name = f"amqtt {version} (embedded)"

    def _amqtt_config(self) -> dict[str, Any]:
        """One TCP listener on our loopback address, anonymous clients, no ``$SYS`` publishing."""
        return {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }

    async def _start_mosquitto(self, binary: str) -> None:
        self.name = "mosquitto"
        self._tmp = tempfile.TemporaryDirectory(prefix="sim7020-broker-")
        conf = Path(self._tmp.name) / "mosquitto.conf"
        log = Path(self._tmp.name) / "mosquitto.log"
        lines = [
            f"listener {self.port} {self.host}",
            "allow_anonymous true",
            "persistence false",
            f"log_dest file {log}",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        conf.write_text("\n".join(lines) + "\n")
        self._proc = await asyncio.create_subprocess_exec(
            binary,
            "-c",
            str(conf),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            start_new_session=True,  # Ctrl+C reaches us, and we stop the broker last
        )
        try:
            async with asyncio.timeout(BROKER_START_TIMEOUT):
                while True:
                    if self._proc.returncode is not None:
                        text = log.read_text(errors="replace").strip() if log.exists() else ""
                        raise BrokerError(f"mosquitto exited with {self._proc.returncode}: {text[-500:]}")
                    try:
                        _reader, writer = await asyncio.open_connection(self.host, self.port)
                    except OSError:
                        await asyncio.sleep(0.02)
                        continue
                    writer.close()
                    await writer.wait_closed()
                    return
        except TimeoutError:
            await self.stop()
            raise BrokerError(f"mosquitto did not listen on {self.host}:{self.port} in time") from None

    async def stop(self) -> None:
        """Stop the broker, bounded by :data:`BROKER_STOP_TIMEOUT` (mosquitto: SIGTERM, then SIGKILL)."""
        embedded, self._embedded = self._embedded, None
        if embedded is not None:
            try:
                async with asyncio.timeout(BROKER_STOP_TIMEOUT):
                    await embedded.shutdown()
            except TimeoutError:
                _LOGGER.warning("the embedded broker (amqtt) did not stop within %g s", BROKER_STOP_TIMEOUT)
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                async with asyncio.timeout(BROKER_STOP_TIMEOUT):
                    await proc.wait()
            except TimeoutError:
                proc.kill()
                await proc.wait()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
