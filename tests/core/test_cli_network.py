"""``sim7020 psm | edrx | bands | operator | dns | apn`` through ``sim7020_core.cli.main`` against an emulator
(in a background thread with its own loop, on a real loopback TCP port, as ``sim7020 emulator`` runs)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from tests.core.test_cli_modem import ThreadedEmulator, run


@pytest.fixture
def emulator() -> Iterator[ThreadedEmulator]:
    emu = ThreadedEmulator()
    emu.start()
    yield emu
    emu.stop()


def rows(out: str) -> dict[str, str]:
    return {line.split(None, 1)[0]: line.split(None, 1)[1] for line in out.splitlines() if line.strip()}


def test_psm_on_shows_the_request_and_the_grant(
    emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run(emulator, capsys, "psm")
    assert code == 0, err
    assert rows(out)["PSM"] == "off (awake)"
    code, out, err = run(emulator, capsys, "psm", "on", "--tau", "3600", "--active", "60")
    assert code == 0, err
    shown = rows(out)
    assert shown["PSM"].startswith("on")
    assert shown["requested"] == "TAU 3600 s, active 60 s"
    assert shown["granted"] == "TAU 3600 s, active 60 s"
    code, out, _ = run(emulator, capsys, "psm", "--json")
    assert json.loads(out)["psm"]["requested_tau_s"] == 3600


def test_edrx_on_with_a_cycle(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(emulator, capsys, "edrx", "on", "--cycle", "81.92")
    assert code == 0, err
    assert rows(out) == {
        "eDRX": "on",
        "requested": "cycle 81.92 s",
        "granted": "cycle 81.92 s, paging window 10.24 s",
    }
    code, out, _ = run(emulator, capsys, "edrx", "--json")
    assert json.loads(out) == {
        "edrx": {"enabled": True, "requested_cycle_s": 81.92, "cycle_s": 81.92, "ptw_s": 10.24}
    }


def test_bands_lock_and_all(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(emulator, capsys, "bands", "8", "20")
    assert code == 0, err
    assert rows(out)["bands"] == "8, 20"
    assert rows(out)["supported"] == "1, 3, 5, 8, 20, 28"
    code, out, _ = run(emulator, capsys, "bands", "all", "--json")
    assert json.loads(out)["bands"] == [1, 3, 5, 8, 20, 28]


def test_operator_manual_then_auto(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(emulator, capsys, "operator", "46001")
    assert code == 0, err
    assert rows(out)["operator"] == "CHN-UNICOM (manual)"
    code, out, _ = run(emulator, capsys, "operator", "auto", "--json")
    assert json.loads(out) == {"operator": "CHN-UNICOM", "selection": "automatic", "registration": "home"}


def test_dns_shows_resolves_and_sets_servers(
    emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(emulator, capsys, "dns")
    assert code == 0
    assert rows(out) == {"in": "effect  10.250.0.1, 10.250.0.2 (the network's)", "fallback": "-"}
    code, out, _ = run(emulator, capsys, "dns", "example.com")
    assert (code, out) == (0, "127.0.0.1\n")
    assert emulator.emu is not None
    emulator.emu.set_network_dns(())  # a network that hands out no DNS server
    code, out, err = run(emulator, capsys, "dns", "9.9.9.9", "--json")
    assert code == 0, err
    assert json.loads(out) == {"dns_servers": ["9.9.9.9"], "fallback": ["9.9.9.9"], "fallback_used": True}


def test_apn_is_set_and_shown(emulator: ThreadedEmulator, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(emulator, capsys, "apn", "nb.example")
    assert code == 0, err
    assert rows(out)["APN"] == "nb.example"
    assert rows(out)["PDN"] == "active, IP 10.250.0.213"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["edrx", "on", "--cycle", "30"], "edrx_cycle_s: 30 s is not an eDRX cycle: NB-IoT allows 20.48"),
        (["bands", "7"], "bands: band 7 is not supported: a SIM7020 supports 1, 2, 3"),
        (["bands", "eight"], "bands: give band numbers or 'all'"),
        (["operator", "46"], "operator: must be 'auto' or an MCCMNC of 5-6 digits"),
        (["dns", "9.9.9.9", "300.1.1.1"], "dns_servers: server '300.1.1.1' must be an IPv4 address"),
        (["psm", "on", "--active", "99999"], "psm_active_s: must be from 0 to 11160 seconds, not 99999"),
        (["apn", "a b"], "apn: must be an APN"),
    ],
)
def test_bad_values_exit_2_before_the_modem_is_opened(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    from sim7020_core.cli import main

    code = main([argv[0], "--device", "socket://127.0.0.1:1", *argv[1:]])  # nothing listens there
    _, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
