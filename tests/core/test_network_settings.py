"""Network settings against the emulator: eDRX (request and grant), band lock, operator selection, fallback
DNS, and the settings the library keeps and applies again after a module reset (real AT bytes over TCP)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core import const
from sim7020_core.emulator import Emulator, PsmTimings
from sim7020_core.events import ModemEvent, ModuleReset, StateChanged
from sim7020_core.exceptions import AtCommandError, Sim7020Error
from sim7020_core.models import EdrxStatus, LinkState, NetworkSettings
from sim7020_core.modem import Modem, ModemOptions
from sim7020_core.netvalues import EDRX_CYCLE_VALUES, SIM7020_BANDS, edrx_bits, edrx_cycle_s
from sim7020_core.status import parse_cband, parse_cdnscfg, parse_cedrxrdp, parse_cedrxs

HOSTS = {"example.com": "127.0.0.1"}
OPTIONS = ModemOptions(registration_timeout=2.0, poll_interval=None, watchdog_interval=None)
EVERYTHING = ("apn", "psm", "edrx", "bands", "operator", "dns")


@pytest.fixture(autouse=True)
def fast_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "SYNC_ATTEMPT_TIMEOUT": 0.05,
        "BOOT_SYNC_ATTEMPTS": 40,
        "REGISTRATION_POLL_INTERVAL": 0.05,
        "READY_WAIT_TIMEOUT": 3.0,
        "PSM_GRANT_TIMEOUT": 0.3,
        "PSM_GRANT_SETTLE": 0.05,
    }.items():
        monkeypatch.setattr(const, name, value)


async def start(**kwargs: object) -> Emulator:
    emu = Emulator(
        hosts=HOSTS,
        transcript=True,
        time_scale=0.01,
        registration_delay=0.02,
        psm_timings=PsmTimings(auto=False),
        **kwargs,  # type: ignore[arg-type]
    )
    host, port = await emu.start_tcp("127.0.0.1", 0)
    emu.url = f"socket://{host}:{port}"  # type: ignore[attr-defined]
    return emu


@pytest.fixture
async def emulator() -> AsyncIterator[Emulator]:
    emu = await start()
    yield emu
    await emu.stop()


@pytest.fixture
async def modem(emulator: Emulator) -> AsyncIterator[Modem]:
    m = await Modem.connect(emulator.url, options=OPTIONS)  # type: ignore[attr-defined]
    yield m
    await m.close()


def sent(emu: Emulator) -> list[str]:
    data = b"".join(chunk for direction, chunk in emu.transcript if direction == "rx")
    return [line.decode(errors="replace").strip() for line in data.split(b"\r") if line.strip()]


class Events:
    def __init__(self, modem: Modem) -> None:
        self.events: list[ModemEvent] = []
        self._changed = asyncio.Event()
        modem.subscribe(self)

    def __call__(self, event: ModemEvent) -> None:
        self.events.append(event)
        self._changed.set()

    async def wait_for(self, predicate: Callable[[ModemEvent], bool], timeout: float = 5.0) -> None:
        async with asyncio.timeout(timeout):
            while not any(predicate(e) for e in self.events):
                self._changed.clear()
                await self._changed.wait()

    async def ready_after_reset(self) -> None:
        def ready_after(event: ModemEvent) -> bool:
            kinds = [type(e) for e in self.events]
            if ModuleReset not in kinds:
                return False
            later = self.events[kinds.index(ModuleReset) :]
            return event in later and isinstance(event, StateChanged) and event.state is LinkState.READY

        await self.wait_for(ready_after)


# ------------------------------------------------------------------ eDRX


async def test_edrx_request_is_shown_next_to_the_grant(emulator: Emulator, modem: Modem) -> None:
    assert modem.status.edrx == EdrxStatus()
    await modem.set_edrx(True, 81.92)
    assert 'AT+CEDRXS=1,5,"0101"' in sent(emulator)
    assert modem.status.edrx == EdrxStatus(enabled=True, requested_cycle_s=81.92, cycle_s=81.92, ptw_s=10.24)
    emulator.set_grant(edrx="0010", paging_time_window="0000")  # the network grants less
    status = await modem.refresh()
    assert status.edrx == EdrxStatus(enabled=True, requested_cycle_s=81.92, cycle_s=20.48, ptw_s=2.56)
    await modem.set_edrx(False)
    assert modem.status.edrx == EdrxStatus()
    assert modem.network_settings.edrx is False


async def test_edrx_cycle_outside_the_3gpp_table_is_refused_before_sending(
    emulator: Emulator, modem: Modem
) -> None:
    before = len(sent(emulator))
    with pytest.raises(
        ValueError, match=r"edrx_cycle_s: 30 s is not an eDRX cycle: NB-IoT allows 20\.48, 40\.96"
    ):
        await modem.set_edrx(True, 30)
    assert sent(emulator)[before:] == []


# ------------------------------------------------------------------ bands


async def test_band_lock_is_applied_and_read_back(emulator: Emulator, modem: Modem) -> None:
    assert modem.status.bands == (1, 3, 5, 8, 20, 28)  # a SIM7020E, every band
    await modem.set_bands([8, 20])
    assert "AT+CBAND=8,20" in sent(emulator)
    assert modem.status.bands == (8, 20)
    assert modem.status.registration == "home"  # the cell is on band 8
    assert modem.network_settings.bands == (8, 20)
    await modem.set_bands([])  # back to every band the module has
    assert "AT+CBAND=1,3,5,8,20,28" in sent(emulator)
    assert modem.status.bands == (1, 3, 5, 8, 20, 28)
    assert modem.network_settings.bands == ()


async def test_a_band_lock_without_the_cells_band_leaves_the_module_searching(
    emulator: Emulator, modem: Modem
) -> None:
    await modem.set_bands([20])  # waits registration_timeout for a registration that does not come
    assert modem.status.bands == (20,)
    assert modem.status.registration == "searching"


async def test_bands_the_variant_lacks_are_refused_naming_those_it_has(
    emulator: Emulator, modem: Modem
) -> None:
    before = len(sent(emulator))
    with pytest.raises(
        ValueError, match=r"bands: band 66 is not supported: a SIM7020E supports 1, 3, 5, 8, 20, 28"
    ):
        await modem.set_bands([8, 66])
    with pytest.raises(ValueError, match="bands: must be a list of band numbers"):
        await modem.set_bands("8")  # type: ignore[arg-type]
    assert sent(emulator)[before:] == []


# ------------------------------------------------------------------ operator


async def test_operator_manual_and_automatic(emulator: Emulator, modem: Modem) -> None:
    await modem.set_operator("46001")
    assert 'AT+COPS=1,2,"46001"' in sent(emulator)
    assert emulator.state.cops_mode == 1
    assert modem.status.operator == "CHN-UNICOM"  # answers in the long name again (AT+COPS=3,0)
    assert modem.network_settings.operator == "46001"
    with pytest.raises(AtCommandError):
        await modem.set_operator("46099")  # not available here
    assert modem.network_settings.operator == "46001"
    await modem.set_operator("auto")
    assert emulator.state.cops_mode == 0
    with pytest.raises(
        ValueError,
        match=r"operator: must be 'auto' or an MCCMNC of 5-6 digits \(e\.g\. '46001'\), not '4600'",
    ):
        await modem.set_operator("4600")


# ------------------------------------------------------------------ DNS


async def test_dns_fallback_is_used_when_the_network_hands_out_none() -> None:
    emu = await start(network_dns=())
    try:
        async with await Modem.connect(emu.url, options=OPTIONS) as modem:  # type: ignore[attr-defined]
            assert modem.status.dns_servers == ()
            with pytest.raises(
                Sim7020Error, match="the network handed out no DNS server and no fallback is set"
            ):
                await modem.resolve("example.com")
            await modem.set_dns_servers(["9.9.9.9", "1.1.1.1"])
            assert 'AT+CDNSCFG="9.9.9.9","1.1.1.1"' in sent(emu)
            assert modem.status.dns_servers == ("9.9.9.9", "1.1.1.1")
            assert await modem.resolve("example.com") == ["127.0.0.1"]
            emu.dns_server_down("9.9.9.9")
            emu.dns_server_down("1.1.1.1")
            with pytest.raises(
                Sim7020Error,
                match=r"'example\.com' failed: error 3 .*fallback DNS servers 9\.9\.9\.9, 1\.1\.1\.1",
            ):
                await modem.resolve("example.com")
    finally:
        await emu.stop()


async def test_the_networks_dns_servers_are_left_in_place(emulator: Emulator, modem: Modem) -> None:
    assert modem.status.dns_servers == ("10.250.0.1", "10.250.0.2")
    await modem.set_dns_servers(["9.9.9.9"])
    assert not any(line.startswith("AT+CDNSCFG=") for line in sent(emulator))
    assert modem.status.dns_servers == ("10.250.0.1", "10.250.0.2")
    assert modem.network_settings.dns_servers == ("9.9.9.9",)
    emulator.dns_server_down("10.250.0.1")
    emulator.dns_server_down("10.250.0.2")
    with pytest.raises(Sim7020Error, match=r"network's DNS servers 10\.250\.0\.1, 10\.250\.0\.2"):
        await modem.resolve("example.com")


async def test_dns_servers_are_checked(modem: Modem) -> None:
    with pytest.raises(ValueError, match=r"dns_servers: server '9\.9\.9' must be an IPv4 address"):
        await modem.set_dns_servers(["9.9.9"])
    with pytest.raises(ValueError, match="dns_servers: must list at most 2 servers"):
        await modem.set_dns_servers(["9.9.9.9", "1.1.1.1", "8.8.8.8"])


# ------------------------------------------------------------------ kept across module resets


async def test_a_module_reboot_keeps_every_setting_applied() -> None:
    """The emulated module forgets everything but its identity in this reboot: the library applies the
    APN (chapter 3.2 sequence), bands, operator, PSM, eDRX and DNS again, and the status shows them."""
    emu = await start(network_dns=(), reboot_forgets=EVERYTHING)
    try:
        async with await Modem.connect(emu.url, options=OPTIONS) as modem:  # type: ignore[attr-defined]
            await modem.set_apn("nb.example")
            await modem.set_bands([3, 8])
            await modem.set_operator("46001")
            await modem.set_psm(True, tau_s=3600, active_s=60)
            await modem.set_edrx(True, 40.96)
            await modem.set_dns_servers(["9.9.9.9"])
            events = Events(modem)
            before = len(sent(emu))
            emu.reboot()
            await events.ready_after_reset()
            after = sent(emu)[before:]
            assert after.index("AT+CFUN=0") < after.index('AT*MCGDEFCONT="IP","nb.example"')
            assert "AT+CBAND=3,8" in after
            assert 'AT+COPS=1,2,"46001"' in after
            assert 'AT+CEDRXS=1,5,"0011"' in after
            assert 'AT+CDNSCFG="9.9.9.9"' in after
            status = await modem.refresh()
            assert (status.apn, status.bands, status.dns_servers) == ("nb.example", (3, 8), ("9.9.9.9",))
            assert (status.psm.enabled, status.psm.requested_tau_s, status.psm.requested_active_s) == (
                True,
                3600,
                60,
            )
            assert status.edrx.enabled
            assert status.edrx.requested_cycle_s == 40.96
            assert status.registration == "home"
            assert emu.state.cops_mode == 1
            assert await modem.resolve("example.com") == ["127.0.0.1"]
    finally:
        await emu.stop()


async def test_what_the_module_kept_is_not_applied_again() -> None:
    """APN, bands and PSM are in the module's non-volatile memory (the emulator's default): after a reboot
    the library reads them back and does not take the module off the network for the APN."""
    emu = await start()
    try:
        async with await Modem.connect(emu.url, options=OPTIONS) as modem:  # type: ignore[attr-defined]
            await modem.set_apn("nb.example")
            await modem.set_bands([8])
            events = Events(modem)
            before = len(sent(emu))
            emu.reboot()
            await events.ready_after_reset()
            after = sent(emu)[before:]
            assert "AT*MCGDEFCONT?" in after
            assert "AT+CFUN=0" not in after
            assert not any(line.startswith("AT+CBAND=") for line in after)
    finally:
        await emu.stop()


async def test_a_psm_wake_does_not_apply_the_network_settings_again() -> None:
    emu = await start(reboot_forgets=EVERYTHING)
    try:
        async with await Modem.connect(emu.url, options=OPTIONS) as modem:  # type: ignore[attr-defined]
            await modem.set_apn("nb.example")
            await modem.set_psm(True, tau_s=3600, active_s=60)
            before = len(sent(emu))
            emu.enter_psm()
            async with asyncio.timeout(3):
                while modem.state is not LinkState.ASLEEP:
                    await asyncio.sleep(0.02)
            emu.exit_psm()
            async with asyncio.timeout(3):
                while modem.state is not LinkState.READY:
                    await asyncio.sleep(0.02)
            await modem.refresh()
            assert "ATE0" in sent(emu)[before:]  # the session settings were applied again
            after = sent(emu)[before:]
            assert "AT+CFUN=0" not in after
            assert not any(line.startswith("AT*MCGDEFCONT") for line in after)
    finally:
        await emu.stop()


async def test_settings_given_at_connect_are_applied() -> None:
    emu = await start(network_dns=())
    options = ModemOptions(
        registration_timeout=2.0,
        poll_interval=None,
        watchdog_interval=None,
        network=NetworkSettings(bands=(8,), edrx=True, edrx_cycle_s=20.48, dns_servers=("9.9.9.9",)),
    )
    try:
        async with await Modem.connect(emu.url, options=options) as modem:  # type: ignore[attr-defined]
            assert modem.status.bands == (8,)
            assert modem.status.edrx.cycle_s == 20.48
            assert modem.status.dns_servers == ("9.9.9.9",)
            assert modem.network_settings == options.network
    finally:
        await emu.stop()


# ------------------------------------------------------------------ values and parsers


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bands": (8, 99)}, "bands: band 99 is not supported: a SIM7020 supports 1, 2, 3"),
        ({"operator": "abcde"}, "operator: must be 'auto' or an MCCMNC of 5-6 digits"),
        ({"operator": "1234567"}, "operator: must be 'auto' or an MCCMNC of 5-6 digits"),
        ({"edrx_cycle_s": 10.0}, "edrx_cycle_s: 10 s is not an eDRX cycle"),
        ({"psm_tau_s": -1}, "psm_tau_s: must be from 0 to 35712000 seconds, not -1"),
        ({"psm_active_s": 20000}, "psm_active_s: must be from 0 to 11160 seconds, not 20000"),
        ({"dns_servers": ("0.0.0.0",)}, "dns_servers: server '0.0.0.0' must be a unicast IPv4 address"),
        ({"apn": "bad apn"}, "apn: must be an APN"),
        ({"psm": "yes"}, "psm: must be true, false or None"),
    ],
)
def test_network_settings_name_the_field_the_value_and_the_range(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        NetworkSettings(**kwargs)  # type: ignore[arg-type]


@given(st.lists(st.sampled_from(SIM7020_BANDS), min_size=1, unique=True))
def test_cband_answers_read_back_as_sorted_bands(bands: list[int]) -> None:
    line = "+CBAND: " + ",".join(map(str, bands))
    assert parse_cband([line]) == tuple(sorted(bands))
    assert parse_cband(["+CBAND: (" + ",".join(map(str, bands)) + ")"]) == tuple(sorted(bands))


@given(st.ip_addresses(v=4).map(str), st.ip_addresses(v=4).map(str), st.booleans())
def test_cdnscfg_answers_in_both_layouts(primary: str, secondary: str, quoted: bool) -> None:
    assert parse_cdnscfg([f"PrimaryDns: {primary}", "", f"SecondaryDns: {secondary}"]) == (primary, secondary)
    q = '"' if quoted else ""
    assert parse_cdnscfg([f"+CDNSCFG: {q}{primary}{q},{q}{secondary}{q}"]) == (primary, secondary)


@given(st.sampled_from(EDRX_CYCLE_VALUES), st.integers(0, 15))
def test_cedrx_answers_carry_the_request_and_the_grant(cycle: float, window: int) -> None:
    bits = edrx_bits(cycle)
    assert bits is not None
    assert edrx_cycle_s(bits) == cycle
    ptw = format(window, "04b")
    assert parse_cedrxrdp([f'+CEDRXRDP: 5,"{bits}","{bits}","{ptw}"']) == (bits, bits, ptw)
    assert parse_cedrxs([f'+CEDRXS: 5,"{bits}"']) == (True, bits)
    assert parse_cedrxs([]) == (False, None)
    assert parse_cedrxrdp(["+CEDRXRDP: 0"]) is None


@given(st.text(max_size=40))
def test_network_parsers_never_raise(text: str) -> None:
    for parse in (parse_cband, parse_cdnscfg, parse_cedrxrdp, parse_cedrxs):
        parse([text])
        parse([f"+CBAND: {text}", f"+CEDRXS: {text}", f"+CEDRXRDP: {text}", f"PrimaryDns: {text}"])
