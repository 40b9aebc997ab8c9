"""End to end: record the driver talking to the emulator through ``sim7020 record``, then replay it.

The driver does status, DNS and a native UDP round trip with a real loopback UDP peer while the recorder sits
between it and the emulator (over TCP and over a pty, on both sides). The same driver operations then run
against the replayed transcript, with no emulator and no peer: the UDP answer comes from the recording.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from sim7020_core import Modem
from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import UdpPeer
from sim7020_core.models import ModemStatus
from sim7020_core.sessions import PtyPort, Recorder, Replayer, TcpPort, TranscriptFile, load
from sim7020_core.sessions.ports import ClientPort
from sim7020_core.sessions.redact import luhn_valid
from sim7020_core.sessions.transcript import FROM_MODEM, TO_MODEM, Event

from .conftest import WAIT, tcp_client

PAYLOAD = b"\x00\x01hello\xff"
REPLY_PREFIX = b"pong:"


@dataclass
class Outcome:
    """What the driver saw."""

    status: ModemStatus
    imei: str
    addresses: list[str]
    reply: bytes


@contextlib.asynccontextmanager
async def udp_peer() -> AsyncIterator[int]:
    """A real loopback UDP peer that answers every datagram with ``pong:`` + the datagram."""
    async with UdpPeer(reply=lambda data: REPLY_PREFIX + data) as peer:
        yield peer.port


async def drive(url: str, peer_port: int) -> Outcome:
    """The driver's public API: connect + refresh, resolve, a native UDP round trip."""
    async with await Modem.connect(url) as modem:
        status = await modem.refresh()
        addresses = await modem.resolve("example.com")
        conn = await modem.open_connection("udp", "127.0.0.1", peer_port, transport="native")
        await conn.send(PAYLOAD)
        reply = await conn.receive(timeout=WAIT)
        await conn.close()
        return Outcome(status, modem.info.imei, addresses, reply)


async def record(
    tmp_path: Path, *, modem_side: str, client_side: str, redact: bool = False
) -> tuple[Path, Outcome, int]:
    """Record the driver with the emulator; returns the transcript, what the driver saw, the peer port."""
    emu = Emulator(hosts={"example.com": "127.0.0.1"})
    if modem_side == "tcp":
        host, port = await emu.start_tcp()
        device = f"socket://{host}:{port}"
    else:
        device = await emu.start_pty()
    path = tmp_path / "session.txt"
    transcript = TranscriptFile(path, {"device": device})
    await asyncio.to_thread(transcript.open)
    client: ClientPort = TcpPort() if client_side == "tcp" else PtyPort(str(tmp_path / "modem"))
    recorder = Recorder(device, client, transcript.put, redact=redact)
    try:
        await recorder.start()
        if isinstance(client, TcpPort):
            host, port = client.address
            url = f"socket://{host}:{port}"
        else:
            url = client.client_path
        async with udp_peer() as peer_port:
            outcome = await drive(url, peer_port)
    finally:
        await recorder.stop()
        await asyncio.to_thread(transcript.close)
        await emu.stop()
    return path, outcome, peer_port


async def replay(path: Path, peer_port: int, *, side: str, tmp_path: Path) -> tuple[Outcome, Replayer]:
    session = await asyncio.to_thread(load, path)
    async with Replayer(session) as replayer:
        if side == "tcp":
            host, port = await replayer.start_tcp()
            url = f"socket://{host}:{port}"
        else:
            url = await replayer.start_pty(str(tmp_path / "replayed-modem"))
        return await drive(url, peer_port), replayer


@pytest.mark.parametrize(("modem_side", "client_side"), [("tcp", "tcp"), ("pty", "pty"), ("tcp", "pty")])
async def test_record_then_replay_gives_the_driver_the_same_session(
    tmp_path: Path, modem_side: str, client_side: str
) -> None:
    path, live, peer_port = await record(tmp_path, modem_side=modem_side, client_side=client_side)
    assert live.status.registration == "home"
    assert live.status.ip == "10.250.0.213"
    assert live.addresses == ["127.0.0.1"]
    assert live.reply == REPLY_PREFIX + PAYLOAD  # the real peer answered through the proxy

    session = load(path)
    assert session.metadata["device"]
    sent, received = session.stream(TO_MODEM), session.stream(FROM_MODEM)
    assert b'AT+CDNSGIP="example.com"\r' in sent
    assert f'AT+CSOCON=0,{peer_port},"127.0.0.1"\r'.encode() in sent
    assert b"+CSONMI: 0," + str(2 * len(REPLY_PREFIX + PAYLOAD)).encode() in received
    notes = [e.text for e in session.entries if isinstance(e, Event)]
    assert notes[0].startswith("modem ")
    assert notes[0].endswith(" opened")
    assert notes[1].startswith("client connected from" if client_side == "tcp" else "pty ")

    replayed, replayer = await replay(path, peer_port, side=client_side, tmp_path=tmp_path)
    assert replayer.unmatched == []
    assert replayed.status == live.status
    assert replayed.imei == live.imei
    assert replayed.addresses == live.addresses
    assert replayed.reply == live.reply  # from the recording: the peer is gone


async def test_a_redacted_recording_replays_with_the_fake_identities(tmp_path: Path) -> None:
    path, live, peer_port = await record(tmp_path, modem_side="tcp", client_side="tcp", redact=True)
    text = path.read_text()
    emu = Emulator()
    for secret in (emu.imei, emu.imsi, emu.iccid, "10.250.0.213"):
        assert secret not in text
    assert live.imei == emu.imei  # the wire was not touched

    replayed, replayer = await replay(path, peer_port, side="tcp", tmp_path=tmp_path)
    assert replayer.unmatched == []
    assert replayed.imei != emu.imei
    assert replayed.imei[:8] == emu.imei[:8]
    assert luhn_valid(replayed.imei)
    assert replayed.status.ip == "192.0.2.1"
    assert replayed.reply == live.reply  # the loopback peer is not an identifier: the socket still matches


async def test_any_bytes_pass_the_proxy_unchanged_both_ways(tmp_path: Path) -> None:
    """Binary data, prompts, NULs, CR/LF: the wire is untouched and the transcript holds the exact bytes."""
    to_modem = [bytes(range(256)), b"\r\n> ", b"+++", b"AT\r", b"\x1a\x1b\x00"]
    from_modem = [b"\r\n> ", bytes(range(255, -1, -1)), b"\x00" * 100, b"CONNECT\r\n"]
    got_at_modem = bytearray()
    modem_writer: list[asyncio.StreamWriter] = []
    arrived = asyncio.Event()

    async def fake_modem(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        modem_writer.append(writer)
        while data := await reader.read(4096):
            got_at_modem.extend(data)
            arrived.set()

    server = await asyncio.start_server(fake_modem, "127.0.0.1", 0)
    host, port = server.sockets[0].getsockname()[:2]
    entries: list = []
    client_port = TcpPort()
    recorder = Recorder(f"socket://{host}:{port}", client_port, entries.append)
    await recorder.start()
    client = await tcp_client(*client_port.address)
    try:
        for chunk in to_modem:
            await client.write(chunk)
        async with asyncio.timeout(WAIT):
            while len(got_at_modem) < sum(map(len, to_modem)):
                arrived.clear()
                await arrived.wait()
        assert bytes(got_at_modem) == b"".join(to_modem)
        for chunk in from_modem:
            modem_writer[0].write(chunk)
        await client.expect(b"CONNECT\r\n")
    finally:
        await client.close()
        await recorder.stop()
        server.close()
    sent = b"".join(e.data for e in entries if not isinstance(e, Event) and e.direction == TO_MODEM)
    received = b"".join(e.data for e in entries if not isinstance(e, Event) and e.direction == FROM_MODEM)
    assert sent == b"".join(to_modem)
    assert received == b"".join(from_modem)


async def test_the_recorder_reports_a_modem_that_goes_away(tmp_path: Path) -> None:
    emu = Emulator()
    host, port = await emu.start_tcp()
    entries: list = []
    recorder = Recorder(f"socket://{host}:{port}", TcpPort(), entries.append)
    await recorder.start()
    await emu.stop()
    async with asyncio.timeout(WAIT):
        reason = await recorder.wait_lost()
    assert reason
    await recorder.stop()
    assert any(isinstance(e, Event) and e.text.startswith("modem lost") for e in entries)


# ---------------------------------------------------------------------------------------------- the CLI


async def _cli(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sim7020_core",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def _address(proc: asyncio.subprocess.Process) -> str:
    assert proc.stdout is not None
    async with asyncio.timeout(20):
        line = (await proc.stdout.readline()).decode()
    assert "socket://" in line, line
    return line.rsplit("socket://", 1)[1].split(")", 1)[0]


async def test_cli_record_and_replay_with_ctrl_c(tmp_path: Path) -> None:
    out = tmp_path / "cli-session.txt"
    async with Emulator(hosts={"example.com": "127.0.0.1"}) as emu:
        host, port = await emu.start_tcp()
        proc = await _cli(
            "record",
            "--device",
            f"socket://{host}:{port}",
            "--listen",
            "127.0.0.1:0",
            "-o",
            str(out),
            "--redact",
        )
        try:
            address = await _address(proc)
            async with await Modem.connect(f"socket://{address}") as modem:
                live = await modem.refresh()
                assert await modem.resolve("example.com") == ["127.0.0.1"]
        finally:
            proc.send_signal(signal.SIGINT)
            _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr
    assert b"wrote" in stderr
    text = out.read_text()
    assert text.startswith("# sim7020-session 1\n")
    assert "# redacted: yes" in text
    assert "recording stopped" in text

    proc = await _cli("replay", str(out), "--tcp", "127.0.0.1:0")
    try:
        address = await _address(proc)
        async with await Modem.connect(f"socket://{address}") as modem:
            replayed = await modem.refresh()
            assert await modem.resolve("example.com") == ["127.0.0.1"]
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr
    assert replayed.csq == live.csq
    assert replayed.ip == "192.0.2.1"


async def test_cli_record_says_clearly_when_the_modem_cannot_be_opened(tmp_path: Path) -> None:
    out = tmp_path / "never.txt"
    missing = tmp_path / "ttyUSB9"
    proc = await _cli("record", "--device", str(missing), "--listen", "127.0.0.1:0", "-o", str(out))
    _, stderr = await proc.communicate()
    assert proc.returncode == 1
    assert stderr.decode().startswith(f"sim7020: error: cannot open the modem at {missing}")
    assert not out.exists()  # no empty transcript left behind


async def test_cli_record_keeps_an_existing_transcript(tmp_path: Path) -> None:
    out = tmp_path / "precious.txt"
    out.write_text("keep me")
    proc = await _cli("record", "--device", "socket://127.0.0.1:1", "--listen", "pty", "-o", str(out))
    _, stderr = await proc.communicate()
    assert proc.returncode == 1
    assert b"exists already" in stderr
    assert out.read_text() == "keep me"


async def test_cli_replay_names_a_bad_transcript(tmp_path: Path) -> None:
    bad = tmp_path / "bad.txt"
    bad.write_text("# sim7020-session 1\n0.5 > AT\\q\n")
    proc = await _cli("replay", str(bad))
    _, stderr = await proc.communicate()
    assert proc.returncode == 1
    assert f"{bad}:2: bad escape" in stderr.decode()


async def test_the_pty_symlink_goes_with_the_recorder(tmp_path: Path) -> None:
    port = PtyPort(str(tmp_path / "link"))
    await port.start()
    assert os.path.realpath(tmp_path / "link") == port.path
    await port.close()
    assert not os.path.lexists(tmp_path / "link")
