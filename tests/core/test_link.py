"""SerialLink over a real loopback socket and a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import os
import tty
from collections.abc import Iterator

import pytest

from sim7020_core.at import AtEngine
from sim7020_core.exceptions import PortBusyError, TransportError
from sim7020_core.link import FdSerialTransport, SerialLink, url_scheme


@pytest.fixture
def pty_pair() -> Iterator[tuple[int, str]]:
    """A pseudo-terminal: (master fd, slave device path). The test plays the module on the master."""
    master, slave = os.openpty()
    tty.setraw(master)
    path = os.ttyname(slave)
    os.close(slave)
    os.set_blocking(master, False)
    try:
        yield master, path
    finally:
        os.close(master)


async def _read_master(master: int, want: bytes, timeout: float = 2.0) -> bytes:
    loop = asyncio.get_running_loop()
    got = bytearray()
    ready = asyncio.Event()
    loop.add_reader(master, ready.set)
    try:
        async with asyncio.timeout(timeout):
            while want not in got:
                await ready.wait()
                ready.clear()
                try:
                    got += os.read(master, 4096)
                except BlockingIOError:
                    pass
    finally:
        loop.remove_reader(master)
    return bytes(got)


def test_url_scheme() -> None:
    assert url_scheme("/dev/ttyUSB0") == ""
    assert url_scheme("socket://127.0.0.1:7020") == "socket"
    assert url_scheme("RFC2217://h:1") == "rfc2217"


async def test_socket_round_trip(fake_modem) -> None:
    link = await SerialLink.open(fake_modem.url)
    received = bytearray()
    link.set_receiver(received.extend)
    assert link.is_open
    assert link.is_socket
    link.write(b"AT\r")
    async with asyncio.timeout(2):
        while b"OK" not in received:
            await asyncio.sleep(0.005)
    assert bytes(received) == b"\r\nOK\r\n"
    await link.set_baudrate(9600)  # irrelevant for sockets, must not fail
    await link.close()
    assert not link.is_open
    with pytest.raises(TransportError):
        link.write(b"AT\r")
    await link.close()  # idempotent


async def test_bytes_before_receiver_are_kept(fake_modem) -> None:
    link = await SerialLink.open(fake_modem.url)
    try:
        await fake_modem.wait_connected()
        fake_modem.emit_urc("RDY")
        await fake_modem.flush()
        await asyncio.sleep(0.02)
        received = bytearray()
        link.set_receiver(received.extend)
        assert bytes(received) == b"\r\nRDY\r\n"
    finally:
        await link.close()


async def test_refused_socket_is_transport_error(fake_modem) -> None:
    port = int(fake_modem.url.rsplit(":", 1)[1])
    await fake_modem.stop()
    with pytest.raises(TransportError, match="cannot open"):
        await SerialLink.open(f"socket://127.0.0.1:{port}")


async def test_missing_device_is_transport_error(tmp_path) -> None:
    with pytest.raises(TransportError) as info:
        await SerialLink.open(str(tmp_path / "ttyNOPE"))
    assert not isinstance(info.value, PortBusyError)


async def test_connection_lost_callback(fake_modem) -> None:
    link = await SerialLink.open(fake_modem.url)
    await fake_modem.wait_connected()
    lost: list[Exception | None] = []
    done = asyncio.Event()
    link.add_lost_callback(lambda exc: (lost.append(exc), done.set()))
    await fake_modem.drop_connection()
    async with asyncio.timeout(2):
        await done.wait()
    assert not link.is_open
    assert len(lost) == 1


async def test_close_does_not_report_lost(fake_modem) -> None:
    link = await SerialLink.open(fake_modem.url)
    lost: list[object] = []
    link.add_lost_callback(lost.append)
    await link.close()
    await asyncio.sleep(0.01)
    assert lost == []


async def test_pty_device_round_trip(pty_pair) -> None:
    master, path = pty_pair
    link = await SerialLink.open(path, baudrate=9600)
    engine = AtEngine(link)
    try:
        assert not link.is_socket
        task = asyncio.ensure_future(engine.command("AT+CSQ", timeout=2))
        assert b"AT+CSQ\r" in await _read_master(master, b"\r")
        os.write(master, b"\r\n+CSQ: 20,0\r\n\r\nOK\r\n")
        resp = await task
        assert resp.lines == ["+CSQ: 20,0"]
        await link.set_baudrate(115200)
        assert link.baudrate == 115200
    finally:
        await engine.detach()
        await link.close()


async def test_pty_exclusive_open_reports_busy(pty_pair) -> None:
    _, path = pty_pair
    first = await SerialLink.open(path)
    try:
        with pytest.raises(PortBusyError, match="busy"):
            await SerialLink.open(path)
    finally:
        await first.close()
    second = await SerialLink.open(path)  # free again after close
    await second.close()


async def test_autobaud_sync_finds_module_and_fixes_rate(pty_pair, fast_timeouts) -> None:
    """A pty has no real line rate; the 'module' below only answers once the rate is 57600."""
    master, path = pty_pair
    link = await SerialLink.open(path, baudrate=9600)
    engine = AtEngine(link)
    rates_seen: list[int] = []

    async def module() -> None:
        loop = asyncio.get_running_loop()
        ready = asyncio.Event()
        loop.add_reader(master, ready.set)
        try:
            buf = b""
            while True:
                await ready.wait()
                ready.clear()
                try:
                    buf += os.read(master, 4096)
                except BlockingIOError:
                    continue
                while b"\r" in buf:
                    cmd, buf = buf.split(b"\r", 1)
                    rates_seen.append(link.baudrate)
                    if (cmd == b"AT" and link.baudrate in (57600, 115200)) or cmd == b"AT+IPR=115200":
                        os.write(master, b"\r\nOK\r\n")
        finally:
            loop.remove_reader(master)

    peer = asyncio.ensure_future(module())
    try:
        rate = await engine.sync(rates=(9600, 57600), fix_rate=115200)
        assert rate == 115200
        assert link.baudrate == 115200
        assert 9600 in rates_seen
        assert 57600 in rates_seen
    finally:
        peer.cancel()
        await engine.detach()
        await link.close()


async def test_sync_gives_up_with_transport_error(fake_modem, fast_timeouts) -> None:
    fake_modem.never_answer("AT")
    link = await SerialLink.open(fake_modem.url)
    try:
        with pytest.raises(TransportError, match="no answer to AT"):
            await AtEngine(link).sync()
    finally:
        await link.close()


async def test_sync_drops_late_answers_of_earlier_probes(fake_modem, fast_timeouts) -> None:
    """The module answers the first two probes late: those OKs must not answer later commands."""
    from tests.fakes.fake_modem import Pause

    fake_modem.reply_to("AT", [Pause(0.07), "OK"], times=2)
    link = await SerialLink.open(fake_modem.url)
    engine = AtEngine(link)
    try:
        await engine.sync(attempts=5)
        fake_modem.reply_to("AT+CGSN", ["864000012345678", "OK"])
        fake_modem.reply_to("AT+CSQ", ["+CSQ: 20,0", "OK"])
        assert (await engine.command("AT+CGSN")).lines == ["864000012345678"]
        assert (await engine.command("AT+CSQ")).lines == ["+CSQ: 20,0"]
    finally:
        await engine.detach()
        await link.close()


async def test_pty_link_reads_and_writes_the_tty_fd_directly(pty_pair) -> None:
    """A device path gets the fd transport; stream-backed URLs keep pyserial-asyncio-fast's own."""
    _, path = pty_pair
    link = await SerialLink.open(path)
    try:
        assert isinstance(link._transport, FdSerialTransport)
    finally:
        await link.close()


async def test_pty_write_larger_than_the_tty_buffer_arrives_whole_and_in_order(pty_pair) -> None:
    """The module reads slowly: a write the tty cannot take at once is kept and finished later, never lost."""
    master, path = pty_pair
    link = await SerialLink.open(path)
    try:
        data = bytes(range(256)) * 1024  # 256 KiB: far more than a pty buffers
        link.write(data)  # returns at once, the rest waits for the fd to become writable
        got = bytearray()
        async with asyncio.timeout(10):
            while len(got) < len(data):
                await asyncio.sleep(0.001)
                try:
                    got += os.read(master, 65536)
                except BlockingIOError:
                    pass
        assert bytes(got) == data
        assert link.bytes_sent == len(data)
    finally:
        await link.close()


async def test_pty_burst_from_the_module_is_received_whole_and_in_order(pty_pair) -> None:
    master, path = pty_pair
    link = await SerialLink.open(path)
    received = bytearray()
    done = asyncio.Event()
    data = bytes(range(256)) * 256  # 64 KiB

    def on_data(chunk: bytes) -> None:
        received.extend(chunk)
        if len(received) >= len(data):
            done.set()

    link.set_receiver(on_data)
    try:
        view = memoryview(data)
        async with asyncio.timeout(10):
            while view:
                try:
                    view = view[os.write(master, view[:4096]) :]
                except BlockingIOError:
                    await asyncio.sleep(0.001)
            await done.wait()
        assert bytes(received) == data
        assert link.bytes_received == len(data)
    finally:
        await link.close()


async def test_pty_hangup_is_reported_as_a_lost_link() -> None:
    """The other side of the tty goes away (USB adapter unplugged): the link reports the loss and a
    command in flight fails at once with TransportError instead of waiting out its timeout."""
    master, slave = os.openpty()
    tty.setraw(master)
    path = os.ttyname(slave)
    os.close(slave)
    link = await SerialLink.open(path)
    lost: list[Exception | None] = []
    link.add_lost_callback(lost.append)
    engine = AtEngine(link)
    task = asyncio.ensure_future(engine.command("AT+CSQ", timeout=30))
    await asyncio.sleep(0.05)
    os.close(master)
    async with asyncio.timeout(5):
        with pytest.raises(TransportError, match="lost"):
            await task
    assert len(lost) == 1
    assert lost[0] is not None
    assert not link.is_open
    await link.close()
