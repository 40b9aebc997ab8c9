"""Data usage (issue 15): payload bytes counted by the library for every transport, kept across module
reboots and, in ``ModemOptions.usage_file``, across closing and reopening the modem.

Modem → AT bytes → emulator → real loopback peers; the counts are checked against what the peers really got.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core import DataUsage, LinkState, UsageChanged
from sim7020_core.connection import Connection
from sim7020_core.emulator import Emulator
from sim7020_core.emulator.peers import TcpPeer, UdpPeer
from sim7020_core.events import ModemEvent, ModuleReset
from sim7020_core.modem import Modem, ModemOptions
from sim7020_core.modem.usage import UsageFileError, read_usage_file, write_usage_file
from sim7020_core.plugins import make_plugin_manager

from .conftest import FAST, WAIT

TRANSPORTS = ["native", "cip"]


def _records() -> st.SearchStrategy[dict[str, Any]]:
    """Usage records, right and wrong: the fields with any JSON value, present or not."""
    value = st.none() | st.booleans() | st.integers(-5, 2**64) | st.floats() | st.text(max_size=5)
    return st.fixed_dictionaries(
        {},
        optional={"format": st.just(1) | value, "sent_bytes": value, "received_bytes": value},
    )


def echo(data: bytes) -> bytes:
    return data


async def _until(predicate: Callable[[], bool]) -> None:
    async with asyncio.timeout(WAIT):
        while not predicate():
            await asyncio.sleep(0.01)


async def _receive_exactly(conn: Connection, size: int) -> bytes:
    got = b""
    while len(got) < size:
        got += await conn.receive(timeout=WAIT)
    return got


@pytest.fixture
async def url(emulator: Emulator) -> str:
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    return f"socket://{host}:{port}"


async def _connect(url: str, usage_file: Path | None = None) -> Modem:
    options = dataclasses.replace(FAST, usage_file=usage_file)
    return await Modem.connect(url, options=options, plugin_manager=make_plugin_manager())


# ------------------------------------------------------------------------------ counting, per transport


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_udp_bytes_are_counted_per_connection_and_per_modem(
    modem: Modem, udp_peer: UdpPeer, transport: str
) -> None:
    udp_peer.reply = lambda data: data * 2  # the answer is twice as long
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport=transport)
    sizes = [1, 17, 200, 512]
    for size in sizes:
        await conn.send(bytes(size))
        assert len(await conn.receive(timeout=WAIT)) == 2 * size
    sent = sum(sizes)
    assert sum(len(d) for d in udp_peer.received) == sent  # what really went out
    assert conn.usage == DataUsage(sent_bytes=sent, received_bytes=2 * sent)
    assert modem.usage == DataUsage(sent_bytes=sent, received_bytes=2 * sent)
    await conn.close()


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_tcp_bytes_are_counted_per_connection_and_per_modem(
    modem: Modem, tcp_peer: TcpPeer, transport: str
) -> None:
    conn = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport=transport)
    reader, writer = await tcp_peer.accept()
    payload = bytes(range(256)) * 12  # 3072 bytes: split into several module sends
    await conn.send(payload)
    async with asyncio.timeout(WAIT):
        assert await reader.readexactly(len(payload)) == payload
    answer = b"answer " * 100
    writer.write(answer)
    await writer.drain()
    assert await _receive_exactly(conn, len(answer)) == answer
    assert conn.usage == DataUsage(sent_bytes=len(payload), received_bytes=len(answer))
    assert modem.usage == conn.usage
    await conn.close()
    writer.close()


async def test_the_modem_sums_its_connections_over_transports(
    modem: Modem, udp_peer: UdpPeer, tcp_peer: TcpPeer
) -> None:
    udp_peer.reply = echo
    udp = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    tcp = await modem.open_connection("tcp", "127.0.0.1", tcp_peer.port, transport="cip")
    reader, _writer = await tcp_peer.accept()
    await udp.send(b"x" * 10)
    await udp.receive(timeout=WAIT)
    await tcp.send(b"y" * 25)
    async with asyncio.timeout(WAIT):
        await reader.readexactly(25)
    assert udp.usage == DataUsage(10, 10)
    assert tcp.usage == DataUsage(25, 0)
    assert modem.usage == DataUsage(35, 10)
    await udp.close()
    await tcp.close()


async def test_a_failed_send_is_not_counted(modem: Modem, udp_peer: UdpPeer) -> None:
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    await conn.close()
    with pytest.raises(Exception, match="closed"):
        await conn.send(b"never sent")
    assert conn.usage == DataUsage() == modem.usage


async def test_a_third_party_transport_is_counted_too(
    echo_plugin_installed: None, emulator: Emulator
) -> None:
    """The echo plugin (tests/plugins/thirdparty) counts nothing itself: the library does."""
    host, port = await emulator.start_tcp("127.0.0.1", 0)
    modem = await Modem.connect(f"socket://{host}:{port}", options=FAST)  # the installed plugins
    try:
        conn = await modem.open_connection("udp", "127.0.0.1", 5683, transport="echo")
        await conn.send(b"hello")
        assert await conn.receive(timeout=WAIT) == b"hello"
        assert conn.usage == DataUsage(5, 5)
        assert modem.usage == DataUsage(5, 5)
    finally:
        await modem.close()


# ------------------------------------------------------------------------------------------ events


async def test_usage_events_are_coalesced_to_about_one_a_second(modem: Modem, udp_peer: UdpPeer) -> None:
    events: list[UsageChanged] = []
    unsubscribe = modem.subscribe(lambda e: events.append(e) if isinstance(e, UsageChanged) else None)
    udp_peer.reply = echo
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for _ in range(40):
        await conn.send(b"0123456789")
        await conn.receive(timeout=WAIT)
    elapsed = loop.time() - started
    await _until(lambda: bool(events) and events[-1].usage == modem.usage)  # the last change is told
    unsubscribe()
    assert events[0].usage.sent_bytes == 10  # the first change is told at once
    assert len(events) <= elapsed + 2, (len(events), elapsed)  # 80 changes, about one event a second
    assert events[-1].usage == DataUsage(400, 400)
    await conn.close()


# ------------------------------------------------------------------------- continuity: module reboot


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_totals_continue_across_a_module_reboot(
    modem: Modem, emulator: Emulator, udp_peer: UdpPeer, transport: str
) -> None:
    udp_peer.reply = echo
    conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport=transport)
    await conn.send(b"a" * 100)
    await conn.receive(timeout=WAIT)
    resets: list[ModemEvent] = []
    unsubscribe = modem.subscribe(lambda e: resets.append(e) if isinstance(e, ModuleReset) else None)
    emulator.reboot()  # the module loses its sockets and its own counters
    await _until(lambda: bool(resets) and conn.closed and modem.state is LinkState.READY)
    unsubscribe()
    again = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport=transport)
    await again.send(b"b" * 50)
    await again.receive(timeout=WAIT)
    assert again.usage == DataUsage(50, 50)  # a connection counts from its opening
    assert modem.usage == DataUsage(150, 150)  # the modem's totals go on
    await again.close()


# ------------------------------------------------------------------- continuity: the usage file


async def test_totals_continue_across_closing_and_reopening_the_modem(
    url: str, udp_peer: UdpPeer, tmp_path: Path
) -> None:
    usage_file = tmp_path / "usage.json"
    udp_peer.reply = echo
    for round_ in range(1, 4):
        modem = await _connect(url, usage_file)
        try:
            assert modem.usage == DataUsage(70 * (round_ - 1), 70 * (round_ - 1))
            conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
            await conn.send(b"z" * 70)
            await conn.receive(timeout=WAIT)
        finally:
            await modem.close()  # the final totals are written here
    record = json.loads(usage_file.read_text())
    assert (record["sent_bytes"], record["received_bytes"]) == (210, 210)
    assert stat.S_IMODE(usage_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["usage.json"]  # no temporary file left


async def test_the_file_is_written_while_data_flows(
    url: str, udp_peer: UdpPeer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process killed without close() loses at most the last USAGE_SAVE_INTERVAL of counting."""
    from sim7020_core import const

    monkeypatch.setattr(const, "USAGE_SAVE_INTERVAL", 0.2)
    usage_file = tmp_path / "usage.json"
    modem = await _connect(url, usage_file)
    try:
        conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
        for _ in range(5):
            await conn.send(b"q" * 30)

        def stored() -> int | None:
            try:
                return int(json.loads(usage_file.read_text())["sent_bytes"])
            except (OSError, ValueError):
                return None

        await _until(lambda: stored() == 150)  # before close()
    finally:
        await modem.close()


async def test_a_corrupt_usage_file_is_logged_kept_aside_and_counting_starts_from_zero(
    url: str, udp_peer: UdpPeer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    usage_file = tmp_path / "usage.json"
    usage_file.write_text('{"format": 1, "sent_bytes": 12')  # a write cut short by a power loss
    caplog.set_level(logging.ERROR)
    modem = await _connect(url, usage_file)
    try:
        assert modem.state is LinkState.READY
        assert modem.usage == DataUsage()
        errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
        assert any(
            str(usage_file) in m and "not a usage record" in m and "counting data usage from zero" in m
            for m in errors
        ), errors
        conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
        await conn.send(b"after")
    finally:
        await modem.close()
    assert (tmp_path / "usage.json.corrupt").read_text() == '{"format": 1, "sent_bytes": 12'  # kept aside
    assert json.loads(usage_file.read_text())["sent_bytes"] == 5  # and a good file again


@pytest.mark.parametrize(
    "content",
    [
        b"\xff\xfe",
        b"[]",
        b'{"format": 2, "sent_bytes": 1, "received_bytes": 1}',
        b'{"format": 1, "sent_bytes": -1, "received_bytes": 0}',
        b'{"format": 1, "sent_bytes": "12", "received_bytes": 0}',
    ],
)
async def test_every_kind_of_bad_content_starts_from_zero(
    url: str, tmp_path: Path, content: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    usage_file = tmp_path / "usage.json"
    usage_file.write_bytes(content)
    modem = await _connect(url, usage_file)
    try:
        assert modem.usage == DataUsage()
        assert any("not a usage record" in r.getMessage() for r in caplog.records)
    finally:
        await modem.close()


async def test_a_symlinked_usage_file_is_not_followed(
    url: str, udp_peer: UdpPeer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("not yours")
    usage_file = tmp_path / "usage.json"
    usage_file.symlink_to(target)
    modem = await _connect(url, usage_file)
    try:
        assert any("symbolic link" in r.getMessage() for r in caplog.records)
        conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
        await conn.send(b"data")
    finally:
        await modem.close()
    assert target.read_text() == "not yours"  # never written through the link
    assert not usage_file.is_symlink()
    assert json.loads(usage_file.read_text())["sent_bytes"] == 4


async def test_a_usage_file_that_cannot_be_used_does_not_stop_the_modem(
    url: str, udp_peer: UdpPeer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    usage_file = tmp_path / "usage.json"
    usage_file.mkdir()  # neither readable nor writable as a file, also for root
    modem = await _connect(url, usage_file)
    try:
        assert modem.usage == DataUsage()
        conn = await modem.open_connection("udp", "127.0.0.1", udp_peer.port, transport="native")
        await conn.send(b"still works")
        assert modem.usage.sent_bytes == 11
    finally:
        await modem.close()
    messages = [r.getMessage() for r in caplog.records]
    assert any("not a regular file" in m and "counting data usage from zero" in m for m in messages), messages
    assert any(f"cannot write the usage file {usage_file}" in m for m in messages), messages
    assert [p.name for p in tmp_path.iterdir()] == ["usage.json"]  # the temporary file was removed


def test_usage_file_option_is_checked() -> None:
    with pytest.raises(ValueError, match="usage_file must be a file path or None, got 42"):
        ModemOptions(usage_file=42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="usage_file must be a file path or None, got ''"):
        ModemOptions(usage_file="")


def test_data_usage_refuses_impossible_totals() -> None:
    with pytest.raises(ValueError, match="sent_bytes must be a whole number of bytes >= 0, got -3"):
        DataUsage(sent_bytes=-3)
    assert DataUsage(1, 2).plus(sent=3) == DataUsage(4, 2)


# ------------------------------------------------------------------------- the file format, any input


@given(st.binary(max_size=200) | st.builds(lambda d: json.dumps(d).encode(), _records()))
def test_reading_any_file_gives_totals_or_a_clear_error(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "usage.json"
        path.write_bytes(content)
        error: UsageFileError | None = None
        try:
            usage = read_usage_file(path)
        except UsageFileError as err:
            error = err
        if error is not None:
            assert "usage record" in str(error)
            assert (Path(tmp) / "usage.json.corrupt").read_bytes() == content  # nothing lost
        else:
            assert usage is not None
            assert usage.sent_bytes >= 0
            assert usage.received_bytes >= 0


@given(st.integers(0, 2**63), st.integers(0, 2**63))
def test_written_totals_read_back_the_same(sent: int, received: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "usage.json"
        write_usage_file(path, DataUsage(sent, received))
        assert read_usage_file(path) == DataUsage(sent, received)
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
