"""Transports (TCP, pty, in process), pacing, transcript, DNS/ping, and the CLI."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import pytest

from sim7020_core.cli import build_parser
from sim7020_core.emulator import Emulator
from tests.emulator.conftest import PtyHost, TcpHost, framed


async def test_pty_serves_at_commands(emu: Emulator) -> None:
    path = await emu.start_pty()
    fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
    try:
        assert os.isatty(fd)
    finally:
        os.close(fd)
    h = PtyHost(path)
    try:
        await h.send("ATE0")
        await h.expect(b"ATE0\r" + framed("OK"))
        await h.cmd("AT+CSQ", "+CSQ: 20,0", "OK")
        big = b'AT+CSOSEND=0,0,"' + b"x" * 3000 + b'"\r'  # more than one pty buffer-full of echo/input
        await h.write(big)
        await h.expect(framed("ERROR"))
    finally:
        await h.close()


async def test_pty_symlink(emu: Emulator, tmp_path: Path) -> None:
    link = str(tmp_path / "modem")
    assert await emu.start_pty(link) == link
    assert os.path.islink(link)
    assert os.readlink(link).startswith("/dev/")
    h = PtyHost(link)
    try:
        await h.send("AT")
        await h.expect(b"AT\r" + framed("OK"))
    finally:
        await h.close()


async def test_new_tcp_client_replaces_the_old_one(emu: Emulator) -> None:
    addr = await emu.start_tcp()
    first = await TcpHost.connect(addr)
    await first.send("ATE0")
    await first.read_until(b"OK\r\n")
    second = await TcpHost.connect(addr)
    await asyncio.sleep(0.05)
    async with asyncio.timeout(5):
        while not first.eof:
            await first._wait(asyncio.get_running_loop().time() + 5)
    await second.cmd("AT", "OK")  # echo stays off: same module
    await first.close()
    await second.close()


async def test_in_process_port() -> None:
    out = bytearray()
    emu = Emulator(registration_delay=0)
    try:
        detach = emu.attach_port(out.extend)
        await asyncio.sleep(0.01)  # registration (delay 0) happens on the loop
        emu.feed(b"AT+CGATT?\r")
        for _ in range(100):
            if out.endswith(b"OK\r\n"):
                break
            await asyncio.sleep(0.01)
        assert bytes(out) == b"AT+CGATT?\r" + framed("+CGATT: 1", "OK")
        detach()
        emu.feed(b"AT\r")
        await asyncio.sleep(0.05)
        assert bytes(out).count(b"OK") == 1
    finally:
        await emu.stop()


async def test_transcript_records_both_directions() -> None:
    emu = Emulator(registration_delay=0, transcript=True)
    seen: list[tuple[str, bytes]] = []
    emu.add_transcript_listener(lambda d, data: seen.append((d, data)))
    try:
        h = await TcpHost.connect(await emu.start_tcp())
        await h.send("AT")
        await h.read_until(b"OK\r\n")
        await h.close()
    finally:
        await emu.stop()
    rx = b"".join(d for k, d in emu.transcript if k == "rx")
    tx = b"".join(d for k, d in emu.transcript if k == "tx")
    assert rx == b"AT\r"
    assert tx == b"AT\r" + framed("OK")
    assert seen == emu.transcript


async def test_paced_output_is_complete_and_in_order() -> None:
    emu = Emulator(registration_delay=0, baudrate=9600)
    try:
        h = await TcpHost.connect(await emu.start_tcp())
        await h.send("ATI")
        await h.expect(b"ATI\r" + framed("SIMCOM_Ltd", "SIM7020E", "Revision:1752B10SIM7020E", "OK"))
        await h.close()
    finally:
        await emu.stop()


async def test_dns_lookup(host: TcpHost) -> None:
    await host.cmd('AT+CDNSGIP="example.com"', "OK")
    await host.expect(framed('+CDNSGIP: 1,"example.com","127.0.0.1"'))
    await host.cmd('AT+CDNSGIP="MULTI.example"', "OK")
    await host.expect(framed('+CDNSGIP: 1,"MULTI.example","127.0.0.2","127.0.0.3"'))
    await host.cmd('AT+CDNSGIP="abctest"', "OK")
    await host.expect(framed("+CDNSGIP: 0,8"))
    await host.cmd('AT+CDNSGIP="8.8.8.8"', "ERROR")  # IP literal: plain ERROR (as OneOS's driver found)


async def test_ping_reachable_and_unreachable(host: TcpHost, emu: Emulator) -> None:
    await host.cmd('AT+CIPPING="127.0.0.1",2', "OK")
    await host.expect_re(rb"\r\n\+CIPPING: 1,127\.0\.0\.1,\d+,52\r\n\r\n\+CIPPING: 2,127\.0\.0\.1,\d+,52\r\n")
    # unrouted: each attempt times out after <timeout> x 100 ms and reports ttl 0
    await host.cmd('AT+CIPPING="192.0.2.1",2,32,1', "OK")
    await host.expect(framed("+CIPPING: 1,192.0.2.1,1,0", "+CIPPING: 2,192.0.2.1,1,0"))
    emu.route("61.135.169.121", None, to="127.0.0.1")
    await host.cmd('AT+CIPPING="61.135.169.121",1', "OK")
    await host.expect_re(rb"\r\n\+CIPPING: 1,61\.135\.169\.121,\d+,52\r\n")
    await host.cmd('AT+CIPPING="example.com",1', "OK")  # names from the hosts table work too
    await host.expect_re(rb"\r\n\+CIPPING: 1,127\.0\.0\.1,\d+,52\r\n")
    await host.cmd('AT+CIPPING="nowhere.example",1', "ERROR")


def test_cli_arguments() -> None:
    args = build_parser().parse_args(
        ["emulator", "--tcp", "127.0.0.1:7021", "--host", "a.example=127.0.0.1,127.0.0.2",
         "--route", "10.0.0.1:80=127.0.0.1:8080", "--baud", "9600"]
    )  # fmt: skip
    assert args.tcp == ("127.0.0.1", 7021)
    assert args.host == [("a.example", "127.0.0.1,127.0.0.2")]
    assert args.route == [("10.0.0.1:80", "127.0.0.1:8080")]
    with pytest.raises(SystemExit):
        build_parser().parse_args(["emulator", "--route", "10.0.0.1"])


async def test_cli_runs_until_sigterm(tmp_path: Path) -> None:
    log = tmp_path / "t.log"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim7020_core", "emulator", "--tcp", "127.0.0.1:0",
        "--host", "example.com=127.0.0.1", "--transcript", str(log),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            line = (await proc.stdout.readline()).decode()
        assert "listening on tcp 127.0.0.1:" in line
        port = int(line.split("127.0.0.1:")[1].split()[0])
        h = await TcpHost.connect(("127.0.0.1", port))
        await h.send("AT")
        await h.expect(b"AT\r" + framed("OK"))
        await h.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            rc = await proc.wait()
    assert rc == 0
    text = log.read_text()
    assert "rx b'AT\\r'" in text
    assert "tx b'\\r\\nOK\\r\\n'" in text


async def test_cli_reports_a_busy_port(emu: Emulator) -> None:
    host, port = await emu.start_tcp()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "sim7020_core", "emulator", "--tcp", f"{host}:{port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    async with asyncio.timeout(20):
        _, err = await proc.communicate()
    assert proc.returncode == 1
    assert f"cannot listen on {host}:{port}" in err.decode()


async def test_context_manager_and_echo_off_at_start() -> None:
    async with Emulator(echo=False, registration_delay=0) as emu:
        h = await TcpHost.connect(await emu.start_tcp())
        await h.cmd("AT", "OK")  # no echo
        await h.close()
    assert emu.command_sets["native"].sockets == {}  # type: ignore[attr-defined]


async def test_paced_data_prompt_round_trip(tcp_server) -> None:  # type: ignore[no-untyped-def]
    """With pacing on, a data prompt still gets exactly its bytes and the answer follows them."""
    emu = Emulator(registration_delay=0, baudrate=921600)
    emu.command_sets["native"].dsend_esc_cancels = False  # type: ignore[attr-defined]  # all 256 values
    emu.route("116.247.119.165", 5245, to=tcp_server.address)
    try:
        h = await TcpHost.connect(await emu.start_tcp())
        await h.send("ATE0")
        await h.read_until(b"OK\r\n")
        await h.cmd("AT+CSOC=1,1,1", "+CSOC: 0", "OK")
        await h.cmd('AT+CSOCON=0,5245,"116.247.119.165"', "OK")
        reader, _ = await tcp_server.accept()
        blob = bytes(range(256)) * 4
        await h.send("AT+CSODSEND=0,1024")
        await h.expect(b"\r\n> ")
        await h.write(blob + b"AT\r")  # the AT after the data is a command again
        await h.expect(framed("DATA ACCEPT: 1024", "OK", "OK"))
        async with asyncio.timeout(5):
            assert await reader.readexactly(1024) == blob
        await h.close()
    finally:
        await emu.stop()
