"""Start a local MQTT broker for the demo: Debian's mosquitto (``apt-get install mosquitto``) when it is
installed, otherwise the minimal embedded broker of :mod:`.mini_broker`.

mosquitto listens on 127.0.0.1 only, with a generated configuration in a temporary directory, and is
stopped with SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import tempfile
from pathlib import Path

from ..exceptions import Sim7020Error
from .mini_broker import MiniBroker

#: Hard deadline for the broker to accept connections.
BROKER_START_TIMEOUT = 10.0
BROKER_STOP_TIMEOUT = 5.0
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto", "/opt/homebrew/sbin/mosquitto")


class BrokerError(Sim7020Error):
    """No broker could be started."""


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


class LocalBroker:
    """A local broker on ``host:port`` (``port`` 0 picks a free one).

    :param kind: ``"mosquitto"``, ``"embedded"`` or ``"auto"`` (mosquitto when installed)
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, kind: str = "auto") -> None:
        if kind not in ("auto", "mosquitto", "embedded"):
            raise ValueError(f"broker kind must be auto, mosquitto or embedded, not {kind!r}")
        self.host = host
        self.port = port or free_port(host)
        self.kind = kind
        self.name = ""
        self._proc: asyncio.subprocess.Process | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._embedded: MiniBroker | None = None

    async def start(self) -> None:
        """Start mosquitto and wait until it accepts connections.

        :raises BrokerError: mosquitto is not installed, exited, or did not listen in time
        """
        binary = find_mosquitto() if self.kind != "embedded" else None
        if binary is None:
            if self.kind == "mosquitto":
                raise BrokerError("mosquitto is not installed (Debian/Ubuntu: apt-get install mosquitto)")
            self._embedded = MiniBroker()
            await self._embedded.start(self.host, self.port)
            self.name = "embedded mini broker"
            return
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
        """Stop the broker (SIGTERM, then SIGKILL after a bound)."""
        if self._embedded is not None:
            await self._embedded.stop()
            self._embedded = None
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
