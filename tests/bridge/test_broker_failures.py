"""Broker failures explained: TLS (a CA that did not sign the broker's certificate, an expired certificate,
one for another host name, a plain port), refused credentials and an absent broker, in the log (once, not
per retry) and by ``sim7020 bridge --check`` (issue 13). Real mosquitto with certificates made here."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import logging
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from sim7020_core.bridge import mqtt as bridge_mqtt
from sim7020_core.bridge.bridge import Bridge
from sim7020_core.bridge.broker import free_port
from sim7020_core.bridge.config import load_config

from .conftest import MOSQUITTO_PASSWD, Broker
from .test_bridge import write_config

CHECK_TIMEOUT = 60.0


@dataclass
class Pki:
    """A CA and broker certificates signed by it, in ``directory``."""

    directory: Path
    ca: Path
    ca_key: Any
    ca_name: str

    def server(
        self, name: str, *, hosts: tuple[str, ...] = ("127.0.0.1", "localhost"), expired: bool = False
    ) -> tuple[Path, Path]:
        """A broker certificate and key for ``hosts`` (valid now, or expired yesterday)."""
        key = _key()
        now = datetime.datetime.now(datetime.UTC)
        start, end = (
            (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
            if expired
            else (
                now - datetime.timedelta(minutes=5),
                now + datetime.timedelta(days=1),
            )
        )
        cert = _certificate(f"broker {name}", key, self.ca_name, self.ca_key, start, end, hosts=hosts)
        return _write(self.directory / f"{name}.pem", cert), _write_key(self.directory / f"{name}.key", key)


def _key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _certificate(
    subject: str,
    key: Any,
    issuer: str,
    issuer_key: Any,
    start: datetime.datetime,
    end: datetime.datetime,
    *,
    hosts: tuple[str, ...] = (),
) -> Any:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=not hosts, path_length=None), critical=True)
    )
    if hosts:
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, cert: Any) -> Path:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _write_key(path: Path, key: Any) -> Path:
    from cryptography.hazmat.primitives import serialization

    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path


def make_pki(directory: Path, name: str = "test CA") -> Pki:
    directory.mkdir()
    key = _key()
    now = datetime.datetime.now(datetime.UTC)
    ca = _certificate(
        name, key, name, key, now - datetime.timedelta(days=1), now + datetime.timedelta(days=2)
    )
    return Pki(directory, _write(directory / "ca.pem", ca), key, name)


@pytest.fixture
def pki(tmp_path: Path) -> Pki:
    return make_pki(tmp_path / "pki")


def tls_broker(make_broker: Callable[..., Broker], cert: tuple[Path, Path], ca: Path) -> Broker:
    return make_broker(extra=[f"cafile {ca}", f"certfile {cert[0]}", f"keyfile {cert[1]}"])


def check(config: Path) -> subprocess.CompletedProcess[str]:
    """``sim7020 bridge -c config --check`` as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "sim7020_core", "bridge", "-c", str(config), "--check"],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
        check=False,
    )


def tls_config(tmp_path: Path, broker: Broker, ca: Path) -> Path:
    return write_config(tmp_path, broker, mqtt_extra=f"tls: {{ca_certs: {ca}}}")


def test_check_passes_with_a_good_broker(
    tmp_path: Path, make_broker: Callable[..., Broker], pki: Pki
) -> None:
    broker = tls_broker(make_broker, pki.server("good"), pki.ca)
    done = check(tls_config(tmp_path, broker, pki.ca))
    assert done.returncode == 0, done.stderr
    assert f"MQTT broker 127.0.0.1:{broker.port}: OK (MQTT 3.1.1, TLS)" in done.stdout
    assert "state directory" in done.stdout
    assert "configuration" in done.stdout


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("foreign CA", "TLS: the broker's certificate is not signed by a CA in {ca}"),
        ("expired", "TLS: the broker's certificate has expired"),
        ("other host", "TLS: the broker's certificate is not valid for '127.0.0.1'"),
        ("plain port", "does not speak TLS"),
    ],
)
def test_check_explains_tls_failures(
    tmp_path: Path, make_broker: Callable[..., Broker], pki: Pki, case: str, expected: str
) -> None:
    trusted = pki.ca
    if case == "foreign CA":
        broker = tls_broker(make_broker, pki.server("good"), pki.ca)
        trusted = make_pki(tmp_path / "other", "another CA").ca
    elif case == "expired":
        broker = tls_broker(make_broker, pki.server("old", expired=True), pki.ca)
    elif case == "other host":
        broker = tls_broker(make_broker, pki.server("elsewhere", hosts=("broker.example",)), pki.ca)
    else:
        broker = make_broker()
    done = check(tls_config(tmp_path, broker, trusted))
    assert done.returncode == 1, done.stdout
    line = next(line for line in done.stderr.splitlines() if line.startswith("MQTT broker"))
    assert line.startswith(f"MQTT broker 127.0.0.1:{broker.port}: FAILED: ")
    assert expected.format(ca=trusted) in line
    assert "Traceback" not in done.stderr


@pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="mosquitto_passwd is not installed")
def test_check_explains_refused_credentials(tmp_path: Path, make_broker: Callable[..., Broker]) -> None:
    pwfile = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(pwfile), "bridge", "s3cret"], check=True, timeout=10)
    broker = make_broker(extra=[f"password_file {pwfile}", "allow_anonymous false"])
    done = check(write_config(tmp_path, broker, mqtt_extra="username: bridge\npassword: wrong"))
    assert done.returncode == 1
    assert "the broker refused the connection: Not authorized" in done.stderr
    assert "check mqtt.username and mqtt.password" in done.stderr
    good = check(write_config(tmp_path, broker, mqtt_extra="username: bridge\npassword: s3cret"))
    assert good.returncode == 0, good.stderr
    assert "OK (MQTT 3.1.1, user bridge)" in good.stdout


def test_check_explains_an_absent_broker(tmp_path: Path) -> None:
    nobody = Broker(workdir=tmp_path, port=free_port())  # never started
    done = check(write_config(tmp_path, nobody))
    assert done.returncode == 1
    assert f"connection refused: nothing listens on 127.0.0.1:{nobody.port}" in done.stderr


def test_check_explains_an_unusable_state_dir(tmp_path: Path, broker: Broker) -> None:
    config = write_config(tmp_path, broker)
    (tmp_path / "state").mkdir()
    (tmp_path / "state").chmod(0o777)
    done = check(config)
    assert done.returncode == 1
    assert "state directory" in done.stderr
    assert "writable by other users" in done.stderr


async def test_the_log_says_why_once_and_the_bridge_heals_when_the_broker_is_fixed(
    tmp_path: Path,
    make_broker: Callable[..., Broker],
    pki: Pki,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.INFO)
    monkeypatch.setattr(bridge_mqtt, "MQTT_RECONNECT_MAX_DELAY", 1)  # retry often: the log must not repeat
    broker = tls_broker(make_broker, pki.server("old", expired=True), pki.ca)
    bridge = Bridge(load_config(tls_config(tmp_path, broker, pki.ca)))
    async with asyncio.timeout(10):  # a certificate problem does not hold the start for the full timeout
        await bridge.start()
    try:
        control = bridge.modems[0].mqtt
        async with asyncio.timeout(20):
            while control._failures < 4:
                await asyncio.sleep(0.1)
        assert not control.connected
        reasons = [r.getMessage() for r in caplog.records if "has expired" in r.getMessage()]
        assert len(reasons) == 1, reasons  # once, not once per attempt
        assert reasons[0].startswith("modem gw1: problem: MQTT control connection: MQTT broker 127.0.0.1:")
        assert bridge.problems.summary("gw1") is not None

        # the operator renews the broker's certificate: the bridge connects without a restart
        renewed = pki.server("renewed")
        broker.extra = [f"cafile {pki.ca}", f"certfile {renewed[0]}", f"keyfile {renewed[1]}"]
        await asyncio.to_thread(broker.restart)
        async with asyncio.timeout(20):
            while not control.connected:
                await asyncio.sleep(0.1)
        assert bridge.problems.summary("gw1") is None
        assert "again after" in caplog.text
        assert "works again" in caplog.text
    finally:
        await bridge.stop()


@pytest.mark.skipif(MOSQUITTO_PASSWD is None, reason="mosquitto_passwd is not installed")
def test_the_bridge_command_exits_with_the_reason_when_refused(
    tmp_path: Path, make_broker: Callable[..., Broker]
) -> None:
    pwfile = tmp_path / "passwd"
    subprocess.run([MOSQUITTO_PASSWD, "-c", "-b", str(pwfile), "bridge", "s3cret"], check=True, timeout=10)
    broker = make_broker(extra=[f"password_file {pwfile}", "allow_anonymous false"])
    config = write_config(tmp_path, broker, mqtt_extra="username: bridge\npassword: wrong")
    done = subprocess.run(
        [sys.executable, "-m", "sim7020_core", "bridge", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=CHECK_TIMEOUT,
        check=False,
    )
    assert done.returncode == 1
    assert "the broker refused the connection: Not authorized" in done.stderr
    assert "bridge running" not in done.stderr
    assert "Traceback" not in done.stderr
