"""Fixtures for the bridge tests: a real mosquitto on a free loopback port, TLS material, MQTT clients."""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import os
import queue
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from sim7020_core.bridge.broker import find_mosquitto, free_port

MOSQUITTO = find_mosquitto()
MOSQUITTO_PASSWD = shutil.which("mosquitto_passwd")
#: Hard deadline for the broker to accept connections after start.
BROKER_START_TIMEOUT = 10.0
BROKER_STOP_TIMEOUT = 10.0
#: How long a test client waits for an expected message.
MESSAGE_TIMEOUT = 10.0


@dataclass
class Broker:
    """A mosquitto process on 127.0.0.1:``port`` (restartable on the same port, with its persistence)."""

    workdir: Path
    port: int
    host: str = "127.0.0.1"
    extra: list[str] = field(default_factory=list)
    persistence: bool = False
    proc: subprocess.Popen[bytes] | None = None

    @property
    def conf(self) -> Path:
        return self.workdir / "mosquitto.conf"

    @property
    def log(self) -> Path:
        return self.workdir / "mosquitto.log"

    def write_conf(self) -> None:
        lines = [
            f"listener {self.port} {self.host}",
            "max_queued_messages 100000",
            "max_inflight_messages 100",
            f"log_dest file {self.log}",
            "log_type error",
            "log_type warning",
            "log_type notice",
        ]
        if os.geteuid() == 0:
            lines.append("user root")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.workdir}/", "autosave_interval 1"]
        else:
            lines.append("persistence false")
        if not any(line.startswith(("password_file", "allow_anonymous")) for line in self.extra):
            lines.append("allow_anonymous true")
        lines += self.extra
        self.conf.write_text("\n".join(lines) + "\n")

    def start(self) -> None:
        assert MOSQUITTO is not None
        self.write_conf()
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + BROKER_START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                log = self.log.read_text(errors="replace") if self.log.exists() else ""
                raise RuntimeError(f"mosquitto exited with {self.proc.returncode}: {err}{log}")
            with contextlib.suppress(OSError), socket.create_connection((self.host, self.port), timeout=0.2):
                return
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"mosquitto did not listen on {self.port} within {BROKER_START_TIMEOUT} s")
            time.sleep(0.01)

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(BROKER_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(BROKER_STOP_TIMEOUT)
        if proc.stderr:
            proc.stderr.close()

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def make_broker(tmp_path: Path) -> Iterator[Callable[..., Broker]]:
    """Factory: ``make_broker(extra=[conf lines], persistence=False)`` starts a mosquitto."""
    if MOSQUITTO is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    brokers: list[Broker] = []

    def factory(*, extra: list[str] | None = None, persistence: bool = False) -> Broker:
        workdir = tmp_path / f"broker{len(brokers)}"
        workdir.mkdir()
        broker = Broker(workdir=workdir, port=free_port(), extra=list(extra or []), persistence=persistence)
        brokers.append(broker)
        broker.start()
        return broker

    yield factory
    for broker in brokers:
        broker.stop()


@pytest.fixture
def broker(make_broker: Callable[..., Broker]) -> Broker:
    """A plain anonymous mosquitto on a free loopback port."""
    return make_broker()


class Watcher:
    """A synchronous paho client used by tests to observe and publish (runs paho's own thread)."""

    def __init__(
        self,
        broker: Any,
        *,
        protocol: int = mqtt.MQTTv311,
        client_id: str = "",
        clean_session: bool | None = None,
    ) -> None:
        self.messages: queue.Queue[mqtt.MQTTMessage] = queue.Queue()
        self.backlog: list[mqtt.MQTTMessage] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol, clean_session=clean_session
        )
        self.client.reconnect_delay_set(0.1, 1)
        self.client.on_message = lambda _c, _u, msg: self.messages.put(msg)
        self.connected = False
        self.client.connect(broker.host, broker.port, keepalive=30)
        self.client.loop_start()

    def subscribe(self, topic: str, qos: int = 1) -> None:
        done = queue.Queue[int]()
        self.client.on_subscribe = lambda *_a: done.put(1)
        self.client.subscribe(topic, qos)
        done.get(timeout=MESSAGE_TIMEOUT)

    def publish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, **kw: Any
    ) -> None:
        info = self.client.publish(topic, payload, qos=qos, retain=retain, **kw)
        if qos:
            info.wait_for_publish(MESSAGE_TIMEOUT)

    def expect(
        self,
        topic: str,
        timeout: float = MESSAGE_TIMEOUT,
        *,
        where: Callable[[mqtt.MQTTMessage], bool] | None = None,
    ) -> mqtt.MQTTMessage:
        """The first message on ``topic`` matching ``where``; other messages stay for later calls."""

        def wanted(msg: mqtt.MQTTMessage) -> bool:
            return mqtt.topic_matches_sub(topic, msg.topic) and (where is None or where(msg))

        for i, msg in enumerate(self.backlog):
            if wanted(msg):
                del self.backlog[i]
                return msg
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                seen = [m.topic for m in self.backlog]
                raise AssertionError(f"no message on {topic!r} within {timeout} s; unclaimed: {seen}")
            try:
                msg = self.messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if wanted(msg):
                return msg
            self.backlog.append(msg)

    async def aexpect(self, topic: str, timeout: float = MESSAGE_TIMEOUT, **kw: Any) -> mqtt.MQTTMessage:
        """:meth:`expect` without blocking the event loop (for in-process bridges)."""
        return await asyncio.to_thread(self.expect, topic, timeout, **kw)

    async def asubscribe(self, topic: str, qos: int = 1) -> None:
        await asyncio.to_thread(self.subscribe, topic, qos)

    async def apublish(
        self, topic: str, payload: bytes | str, qos: int = 1, retain: bool = False, **kw: Any
    ) -> None:
        await asyncio.to_thread(self.publish, topic, payload, qos, retain, **kw)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def watcher_factory() -> Iterator[Callable[..., Watcher]]:
    made: list[Watcher] = []

    def factory(broker: Broker, **kw: Any) -> Watcher:
        w = Watcher(broker, **kw)
        made.append(w)
        return w

    yield factory
    for w in made:
        w.close()


@dataclass
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _write_key(path: Path) -> Any:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return key


def _cert(subject: str, key: Any, issuer: str, issuer_key: Any, *, ca: bool, san: bool) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA, a server certificate for 127.0.0.1 and a client certificate, generated with cryptography."""
    from cryptography.hazmat.primitives import serialization

    d = tmp_path_factory.mktemp("tls")
    ca_key = _write_key(d / "ca.key")
    ca_cert = _cert("sim7020 test CA", ca_key, "sim7020 test CA", ca_key, ca=True, san=False)
    (d / "ca.pem").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    files = {}
    for name in ("server", "client"):
        key = _write_key(d / f"{name}.key")
        cert = _cert(f"sim7020 {name}", key, "sim7020 test CA", ca_key, ca=False, san=name == "server")
        (d / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        files[name] = (d / f"{name}.pem", d / f"{name}.key")
    return TlsFiles(
        ca=d / "ca.pem",
        server_cert=files["server"][0],
        server_key=files["server"][1],
        client_cert=files["client"][0],
        client_key=files["client"][1],
    )
