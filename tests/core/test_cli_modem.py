"""``sim7020 status | at | ping | dns | send`` through ``sim7020_core.cli.main`` against an emulator.

``main()`` runs its own event loop (``asyncio.run``), so the emulator runs in a background thread with
its own loop, listening on a real loopback TCP port, exactly as ``sim7020 emulator`` would.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import socket
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from sim7020_core import const
from sim7020_core.cli import main
from sim7020_core.emulator import Emulator

T = TypeVar("T")


class ThreadedEmulator:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.emu: Emulator | None = None
        self.url = ""

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=10)

    def start(self) -> None:
        async def start() -> str:
            self.emu = Emulator(hosts={"example.com": "127.0.0.1"}, registration_delay=0.02, time_scale=0.01)
            host, port = await self.emu.start_tcp("127.0.0.1", 0)
            return f"socket://{host}:{port}"

        self.url = self.run(start())

    def stop(self) -> None:
        if self.emu is not None:
            self.run(self.emu.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
        self.loop.close()


@pytest.fixture
def emulator() -> Iterator[ThreadedEmulator]:
    emu = ThreadedEmulator()
    emu.start()
    yield emu
    emu.stop()


def run(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main([argv[0], "--device", emulator.url, "--registration-timeout", "2", *argv[1:]])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_text(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(emulator, capsys, "status")
    assert code == 0, err
    assert emulator.emu is not None
    assert emulator.emu.imei in out
    lines = {line.split(None, 1)[0]: line.split(None, 1)[1] for line in out.splitlines()}
    assert lines["registration"] == "home"
    assert lines["signal"] == "-73 dBm (CSQ 20)"
    assert lines["PDN"] == "active, APN iot.example, IP 10.250.0.213"
    assert lines["state"] == "ready"


def test_status_json(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(emulator, capsys, "status", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["state"] == "ready"
    assert data["info"]["imsi"] == emulator.emu.imsi  # type: ignore[union-attr]
    assert data["status"]["registration"] == "home"
    assert data["status"]["rssi_dbm"] == -73
    assert data["status"]["psm"]["state"] == "awake"


def test_status_json_shows_the_serving_cell_and_its_neighbours(
    emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(emulator, capsys, "status", "--json")
    assert code == 0, err
    data = json.loads(out)
    cell = data["status"]["cell"]
    assert emulator.emu is not None
    served = emulator.emu.cell  # what the emulated network is set up with
    assert (cell["pci"], cell["earfcn"], cell["band"], cell["ecl"]) == (
        served.pci,
        served.earfcn,
        served.band,
        served.ecl,
    )
    assert (cell["tac"], cell["cell_id"]) == (served.tac, served.cell_id)
    assert [(n["earfcn"], n["pci"], n["rsrp_dbm"]) for n in cell["neighbours"]] == [
        (n.earfcn, n.pci, n.rsrp) for n in served.neighbours
    ]
    assert data["status"]["psm"]["enabled"] is False
    assert data["usage"] == {"sent_bytes": 0, "received_bytes": 0}  # no --usage-file: this process only


def test_status_json_shows_the_usage_kept_by_earlier_commands(
    emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    usage_file = str(tmp_path / "usage.json")
    peer = UdpEcho()
    try:
        for _ in range(2):
            code, _, err = run(
                emulator,
                capsys,
                "send",
                "127.0.0.1",
                str(peer.port),
                "hi there",
                "--wait-response",
                "5",
                "--usage-file",
                usage_file,
            )
            assert code == 0, err
    finally:
        peer.close()
    code, out, err = run(emulator, capsys, "status", "--json", "--usage-file", usage_file)
    assert code == 0, err
    assert json.loads(out)["usage"] == {"sent_bytes": 16, "received_bytes": 26}  # "echo:hi there" twice


def test_at_prints_lines_and_ok(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(emulator, capsys, "at", "AT+CSQ")
    assert (code, out) == (0, "+CSQ: 20,0\nOK\n")
    code, out, _ = run(emulator, capsys, "at", "AT+CGATT?", "--json")
    assert json.loads(out) == {"command": "AT+CGATT?", "lines": ["+CGATT: 1"]}


def test_at_error_is_one_line_exit_1(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(emulator, capsys, "at", "AT+NOSUCH?")  # a read: allowed, the module refuses it
    assert code == 1
    assert out == ""
    assert err.splitlines() == ["sim7020: error: 'AT+NOSUCH?' failed: ERROR"]


def test_at_unsafe_needs_flag(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(emulator, capsys, "at", "AT+IPR=9600")
    assert code == 1
    assert "--allow-unsafe" in err
    assert emulator.emu is not None
    assert emulator.emu.state.ipr != 9600


def test_at_not_a_command_is_usage_error(
    emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(emulator, capsys, "at", "CSQ")
    assert code == 2
    assert "must start with 'AT'" in err


def test_dns(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(emulator, capsys, "dns", "example.com")
    assert (code, out) == (0, "127.0.0.1\n")
    code, out, _ = run(emulator, capsys, "dns", "example.com", "--json")
    assert json.loads(out) == {"host": "example.com", "addresses": ["127.0.0.1"]}


def test_dns_unknown_host(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(emulator, capsys, "dns", "nowhere.example")
    assert code == 1
    assert "'nowhere.example'" in err
    assert len(err.strip().splitlines()) == 1


def test_ping(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(emulator, capsys, "ping", "example.com", "-c", "2", "--timeout", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("seq=1 127.0.0.1: time=")
    assert lines[-1] == "2 sent, 2 received"


def test_ping_json(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(emulator, capsys, "ping", "127.0.0.1", "-c", "1", "--json")
    assert code == 0
    reply = json.loads(out)["replies"][0]
    assert reply["seq"] == 1
    assert reply["ip"] == "127.0.0.1"
    assert reply["rtt_ms"] is not None


def test_ping_unreachable_exits_1(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(emulator, capsys, "ping", "10.9.9.9", "-c", "1", "--timeout", "0.2")
    assert code == 1
    assert "seq=1 10.9.9.9: timeout" in out
    assert "no reply from 10.9.9.9" in err


def test_ping_bad_count_is_usage_error(
    emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(emulator, capsys, "ping", "127.0.0.1", "-c", "0")
    assert code == 2
    assert "count" in err


def test_send_bad_hex_payload(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(emulator, capsys, "send", "127.0.0.1", "5683", "zz", "--encoding", "hex")
    assert code == 2
    assert "not valid hex" in err


def test_no_modem_there(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(const, "LINK_OPEN_TIMEOUT", 2.0)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["status", "--device", f"socket://127.0.0.1:{port}"])
    _, err = capsys.readouterr()
    assert code == 1
    assert err.startswith(f"sim7020: error: cannot use the modem at socket://127.0.0.1:{port}")
    assert len(err.strip().splitlines()) == 1


def test_send_through_a_plugin_transport(
    emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    # the tiny third-party distribution of tests/plugins/thirdparty (installed by the test setup)
    # scripts/bootstrap installs it into every test venv: fail, never skip, when it is missing
    if importlib.util.find_spec("sim7020_echo_plugin") is None:
        pytest.fail("install the test plugin first: pip install tests/plugins/thirdparty")
    code, out, err = run(
        emulator,
        capsys,
        "send",
        "example.com",
        "5683",
        "68656c6c6f",
        "--encoding",
        "hex",
        "--transport",
        "echo",
        "--wait-response",
        "1",
    )
    assert code == 0, err
    assert out == "sent 5 bytes to example.com:5683/udp\nhello\n"
    code, out, _ = run(
        emulator,
        capsys,
        "send",
        "127.0.0.1",
        "7",
        "\x00\x01",
        "--transport",
        "echo",
        "--wait-response",
        "1",
        "--json",
    )
    assert code == 0
    assert json.loads(out)["response_hex"] == "0001"


def test_send_unknown_transport(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(emulator, capsys, "send", "127.0.0.1", "7", "x", "--transport", "pigeon")
    assert code == 1
    assert "no transport named 'pigeon'" in err


class UdpEcho:
    """A real UDP peer on loopback answering every datagram with b"echo:" + datagram."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.received: list[bytes] = []
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                data, addr = self.sock.recvfrom(2048)
            except TimeoutError:
                continue
            self.received.append(data)
            self.sock.sendto(b"echo:" + data, addr)

    def close(self) -> None:
        self._stop.set()
        self.thread.join(timeout=2)
        self.sock.close()


def test_send_native_udp_round_trip(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    peer = UdpEcho()
    try:
        code, out, err = run(
            emulator, capsys, "send", "example.com", str(peer.port), "hi there", "--wait-response", "5"
        )
        assert code == 0, err
        assert out == f"sent 8 bytes to example.com:{peer.port}/udp\necho:hi there\n"
        assert peer.received == [b"hi there"]
    finally:
        peer.close()


def test_send_with_a_plugin_codec(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    """``--encoding`` takes the codec of the third-party distribution (reverse) like a built-in one."""
    if importlib.util.find_spec("sim7020_echo_plugin") is None:
        pytest.fail("install the test plugin first: pip install tests/plugins/thirdparty")
    peer = UdpEcho()
    try:
        code, _, err = run(
            emulator, capsys, "send", "127.0.0.1", str(peer.port), "olleh", "--encoding", "reverse"
        )
        assert code == 0, err
        assert peer.received == [b"hello"]
    finally:
        peer.close()


def test_send_unknown_encoding_names_the_available_ones(
    emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(emulator, capsys, "send", "127.0.0.1", "7", "x", "--encoding", "rot13")
    assert code == 2
    assert "no payload encoding named 'rot13'" in err
    assert "base64, hex, json, raw" in err
    assert len(err.strip().splitlines()) == 1
