"""CIP bearer/connection state machine (note 6.11) and wrong-state errors, over a real TCP UART."""

from __future__ import annotations

import pytest

from sim7020_core.emulator.peers import TcpPeer
from tests.emulator.test_cip_support import bring_up, connection_end, running_modem, wait_for

OK = b"\r\nOK\r\n"
ERROR = b"\r\nERROR\r\n"


def state(name: str) -> bytes:
    return b"\r\nOK\r\n\r\nSTATE: " + name.encode() + b"\r\n"


#: the multi-link C: lines when no link was ever used
UNUSED = b"".join(f'\r\nC: {n},,"","","","INITIAL"\r\n'.encode() for n in range(6))


async def test_single_link_walks_through_every_state() -> None:
    peer = await TcpPeer().start()
    try:
        async with running_modem(local_ip="10.78.245.128") as (emu, c):
            emu.route("116.228.221.51", 8500, to=("127.0.0.1", peer.port))
            await c.cmd("AT+CIPSTATUS", state("IP INITIAL"))
            await c.cmd("AT+CSTT", OK)
            await c.cmd("AT+CIPSTATUS", state("IP START"))
            await c.cmd("AT+CIICR", OK)
            await c.cmd("AT+CIPSTATUS", state("IP GPRSACT"))
            await c.cmd("AT+CIFSR", b"\r\n10.78.245.128\r\n")
            await c.cmd("AT+CIPSTATUS", state("IP STATUS"))
            await c.cmd('AT+CIPSTART="TCP","116.228.221.51","8500"', OK + b"\r\nCONNECT OK\r\n")
            await c.cmd("AT+CIPSTATUS", state("CONNECT OK"))
            await c.cmd("AT+CIPCLOSE", b"\r\nCLOSE OK\r\n")
            await c.cmd("AT+CIPSTATUS", state("TCP CLOSED"))
            await c.cmd('AT+CIPSTART="UDP","116.228.221.51","8500"', OK + b"\r\nCONNECT OK\r\n")
            await c.cmd("AT+CIPCLOSE=1", b"\r\nCLOSE OK\r\n")
            await c.cmd("AT+CIPSTATUS", state("UDP CLOSED"))
            await c.cmd("AT+CIPSHUT", b"\r\nSHUT OK\r\n")
            await c.cmd("AT+CIPSTATUS", state("IP INITIAL"))
    finally:
        await peer.close()


@pytest.mark.parametrize(
    ("setup", "command"),
    [
        ([], "AT+CIICR"),  # CIICR before CSTT
        ([], "AT+CIFSR"),  # no IP yet
        (["AT+CSTT"], "AT+CSTT"),  # CSTT twice
        (["AT+CSTT"], "AT+CIFSR"),  # IP START has no address
        (["AT+CSTT"], 'AT+CIPSTART="TCP","127.0.0.1",1'),  # IP START
        (["AT+CSTT", "AT+CIICR"], 'AT+CIPSTART="TCP","127.0.0.1",1'),  # GPRSACT: CIFSR first (SIM800)
        (["AT+CSTT", "AT+CIICR"], "AT+CIICR"),
        ([], "AT+CIPSEND"),  # no connection
        ([], "AT+CIPCLOSE"),
        ([], "AT+CIPACK"),
        (["AT+CSTT"], "AT+CIPMUX=1"),  # CIPMUX only in IP INITIAL
        (["AT+CIPMODE=1"], "AT+CIPMUX=1"),
        (["AT+CIPMUX=1"], "AT+CIPMODE=1"),
        (["AT+CIPMUX=1"], 'AT+CIPSTART=0,"TCP","127.0.0.1",1'),  # multi link needs CSTT/CIICR/CIFSR
        ([], "AT+CIPSERVER=0"),  # no server to close
        ([], "AT+CIPCHAN"),  # no transparent connection
        ([], "ATO"),
        ([], "AT+CIPRXGET=2,10"),  # manual mode is off
        ([], 'AT+CIPUDPMODE=2,"1.2.3.4",5'),  # needs extended mode on a UDP link
    ],
)
async def test_commands_in_the_wrong_state_answer_error(setup: list[str], command: str) -> None:
    async with running_modem() as (_emu, c):
        for line in setup:
            await c.cmd(line, OK)
        await c.cmd(command, ERROR)
        await c.cmd("AT", OK)  # and the module keeps answering


@pytest.mark.parametrize(
    "command",
    [
        "AT+CIPMUX=2",
        "AT+CIPMUX=x",
        'AT+CIPSTART="SCTP","127.0.0.1",80',
        'AT+CIPSTART="TCP","127.0.0.1",0',
        'AT+CIPSTART="TCP","127.0.0.1",70000',
        'AT+CIPSTART="TCP","127.0.0.1"',
        "AT+CIPSPRT=3",
        "AT+CIPATS=1,0",
        "AT+CIPTKA=1,10",
        'AT+CDNSCFG="not.an.ip"',
        "AT+CIPRXGET=9",
        'AT+CLPORT="SCTP",80',
        "AT+CIPCSGP=0",
        "AT+CIPHEAD=5",
        "AT+CIPSNED",
    ],
)
async def test_bad_parameters_answer_error_with_cmee_0(command: str) -> None:
    async with running_modem() as (_emu, c):
        await c.cmd(command, ERROR)
        await c.cmd("AT", OK)


async def test_bad_parameters_follow_cmee_1() -> None:
    async with running_modem() as (emu, c):
        emu.state.cmee = 1
        await c.cmd("AT+CIPMUX=7", b"\r\n+CME ERROR: 50\r\n")


async def test_cstt_read_and_set_forms() -> None:
    async with running_modem(apn="iot.example") as (_emu, c):
        await c.cmd("AT+CSTT?", b'\r\n+CSTT: "iot.example","",""\r\n' + OK)
        await c.cmd('AT+CSTT="CMNET","user","pw"', OK)
        await c.cmd("AT+CSTT?", b'\r\n+CSTT: "CMNET","user","pw"\r\n' + OK)
        await c.cmd("AT+CIPSTATUS", state("IP START"))


async def test_cifsrex_and_cipmux_read() -> None:
    async with running_modem(local_ip="10.78.245.128") as (_emu, c):
        await c.cmd("AT+CIPMUX?", b"\r\n+CIPMUX: 0\r\n" + OK)
        await c.cmd("AT+CIPMUX=1", OK)
        await c.cmd("AT+CIPMUX?", b"\r\n+CIPMUX: 1\r\n" + OK)
        await c.cmd("AT+CSTT", OK)
        await c.cmd("AT+CIICR", OK)
        await c.cmd("AT+CIFSREX", b"\r\n+CIFSREX: 10.78.245.128\r\n" + OK)
        await c.cmd("AT+CIPSTATUS", state("IP STATUS") + UNUSED)


async def test_ciicr_needs_service() -> None:
    async with running_modem() as (emu, c):
        await c.cmd("AT+CSTT", OK)
        emu.detach()
        await c.cmd("AT+CIICR", ERROR)
        await c.cmd("AT+CIPSTATUS", state("IP START"))


async def test_cipstart_in_ip_initial_brings_the_bearer_up_single_link() -> None:
    """SIM800 rule (and note 6.9.4/6.5): single-link CIPSTART works from IP INITIAL."""
    peer = await TcpPeer().start()
    try:
        async with running_modem() as (_emu, c):
            await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
            await c.cmd("AT+CIPSTATUS", state("CONNECT OK"))
            await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', b"\r\nALREADY CONNECT\r\n" + ERROR)
    finally:
        await peer.close()


async def test_pdp_deact_closes_links_and_only_cipshut_recovers() -> None:
    peer = await TcpPeer().start()
    try:
        async with running_modem() as (emu, c):
            await bring_up(c)
            await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
            reader, _writer = await peer.accept()
            emu.detach()
            await c.expect(b"\r\nCLOSED\r\n\r\n+PDP: DEACT\r\n")
            assert await connection_end(reader) == "reset"  # the peer sees the connection go away
            await c.cmd("AT+CIPSTATUS", state("PDP DEACT"))
            await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', ERROR)
            await c.cmd("AT+CSTT", ERROR)
            await c.cmd("AT+CIPSHUT", b"\r\nSHUT OK\r\n")
            await c.cmd("AT+CIPSTATUS", state("IP INITIAL"))
            emu.attach()
            await wait_for(lambda: emu.state.has_service)
            await bring_up(c)
            await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
    finally:
        await peer.close()


async def test_cipshut_closes_everything_and_keeps_settings() -> None:
    peer = await TcpPeer().start()
    try:
        async with running_modem() as (_emu, c):
            await c.cmd("AT+CIPMUX=1", OK)
            await c.cmd("AT+CIPHEAD=1", OK)
            await bring_up(c)
            await c.cmd(f'AT+CIPSTART=0,"TCP","127.0.0.1",{peer.port}', OK + b"\r\n0, CONNECT OK\r\n")
            reader, _w = await peer.accept()
            await c.cmd("AT+CIPSHUT", b"\r\nSHUT OK\r\n")
            assert await connection_end(reader) == "eof"
            await c.cmd("AT+CIPSTATUS", state("IP INITIAL") + UNUSED)
            await c.cmd("AT+CIPMUX?", b"\r\n+CIPMUX: 1\r\n" + OK)
            await c.cmd("AT+CIPHEAD?", b"\r\n+CIPHEAD: 1\r\n" + OK)
    finally:
        await peer.close()


async def test_reboot_forgets_cip_state() -> None:
    async with running_modem() as (emu, c):
        await c.cmd("AT+CIPMUX=1", OK)
        await c.cmd("AT+CSTT", OK)
        emu.reboot()
        await c.read_until(b"+CPIN: READY\r\n")
        await wait_for(lambda: emu.state.has_service)
        if emu.state.echo:
            await c.cmd("ATE0", b"ATE0\r" + OK)
        await c.cmd("AT+CIPSTATUS", state("IP INITIAL"))
        await c.cmd("AT+CIPMUX?", b"\r\n+CIPMUX: 0\r\n" + OK)


async def test_psm_with_retention_keeps_the_link_and_reports_data_after_waking() -> None:
    peer = await TcpPeer().start()
    try:
        async with running_modem() as (emu, c):
            emu.state.retention = 1
            await c.cmd("AT+CIPHEAD=1", OK)
            await bring_up(c)
            await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
            reader, writer = await peer.accept()
            emu.enter_psm()
            await c.expect(b'\r\n+CPSMSTATUS: "ENTER PSM"\r\n')
            writer.write(b"while asleep")
            await c.silent(0.1)
            emu.exit_psm()  # a SIM7020 wakes with +CPIN: READY first; the data follows the re-registration
            await c.expect(b'\r\n+CPIN: READY\r\n\r\n+CPSMSTATUS: "EXIT PSM"\r\n\r\n+IPD,12:while asleep')
            await c.cmd("AT+CIPSEND", b"\r\n> ")
            await c.send(b"awake\x1a")
            await c.expect(b"\r\nSEND OK\r\n")
            assert await reader.readexactly(5) == b"awake"
    finally:
        await peer.close()


async def test_psm_without_retention_loses_the_link() -> None:
    peer = await TcpPeer().start()
    try:
        async with running_modem() as (emu, c):
            await bring_up(c)
            await c.cmd(f'AT+CIPSTART="TCP","127.0.0.1",{peer.port}', OK + b"\r\nCONNECT OK\r\n")
            reader, _writer = await peer.accept()
            emu.enter_psm()
            await c.expect(b'\r\n+CPSMSTATUS: "ENTER PSM"\r\n')
            assert await connection_end(reader) == "reset"  # the peer sees the connection go
            emu.exit_psm()
            await c.expect(b'\r\n+CPIN: READY\r\n\r\n+CPSMSTATUS: "EXIT PSM"\r\n')
            await c.cmd("AT+CIPSTATUS", state("IP INITIAL"))
            await c.cmd("AT+CIPSEND", ERROR)
    finally:
        await peer.close()
