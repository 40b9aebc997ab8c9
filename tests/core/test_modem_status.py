"""Driver-side parsers of status answers and URCs (sim7020_core.status), incl. Hypothesis properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.models import NeighbourCell, Registration
from sim7020_core.psm import encode_t3324, encode_t3412
from sim7020_core.status import (
    parse_cclk,
    parse_cdnsgip,
    parse_ceng,
    parse_cgact,
    parse_cgatt,
    parse_cgcontrdp,
    parse_cipping,
    parse_cops,
    parse_cpin,
    parse_cpsms,
    parse_cpsmstatus,
    parse_csq,
    parse_gsv,
    parse_identity,
    parse_reg_read,
    parse_reg_urc,
    split_fields,
)


def test_note_3_1_examples() -> None:
    assert parse_csq(["+CSQ: 20,0"]) == (20, 0)
    assert parse_reg_read(["+CGREG: 0,1"], "+CGREG").registration is Registration.HOME  # type: ignore[union-attr]
    assert parse_cgact(["+CGACT: 1,1"]) is True
    assert parse_cops(['+COPS: 0,0,"CHN-UNICOM",9']) == "CHN-UNICOM"
    assert parse_cgcontrdp(['+CGCONTRDP: 1,5,"shnbiot","10.250.0.213.255.255.255.0"']) == (
        "shnbiot",
        "10.250.0.213",
    )
    assert parse_cpin(["+CPIN:READY"]) == "READY"


def test_cgcontrdp_header_on_its_own_line() -> None:
    # as printed in the note: "+CGCONTRDP:" then the values on the next line
    lines = ["+CGCONTRDP:", '1,5,"3GNET","10.250.0.253.255.255.255.0"']
    assert parse_cgcontrdp(lines) == ("3GNET", "10.250.0.253")


def test_cgcontrdp_plain_ipv4_and_garbage() -> None:
    assert parse_cgcontrdp(['+CGCONTRDP: 1,5,"apn","10.0.0.1"']) == ("apn", "10.0.0.1")
    assert parse_cgcontrdp(['+CGCONTRDP: 1,5,"apn","10.0.0.999.1.1.1.1"']) == ("apn", None)
    assert parse_cgcontrdp([]) == (None, None)


def test_csq_unknown() -> None:
    assert parse_csq(["+CSQ: 99,99"]) == (None, None)
    assert parse_csq([]) == (None, None)


def test_cereg_n4_with_timers() -> None:
    tau, active = encode_t3412(3600), encode_t3324(60)
    info = parse_reg_read([f'+CEREG: 4,1,"1A2B","0C3D4E5F",9,,,"{active}","{tau}"'])
    assert info is not None
    assert info.registration is Registration.HOME
    assert (info.tac, info.cell_id, info.act) == ("1A2B", "0C3D4E5F", 9)
    assert (info.active_s, info.tau_s, info.has_timers) == (60, 3600, True)


def test_reg_urc_layout_starts_with_stat() -> None:
    assert parse_reg_urc("+CEREG: 5").registration is Registration.ROAMING  # type: ignore[union-attr]
    assert parse_reg_urc('+CEREG: 2,"1A2B","0C3D4E5F",9').registration is Registration.SEARCHING  # type: ignore[union-attr]
    assert parse_reg_urc("+CEREG: x") is None


def test_cgatt_cpsms_cpsmstatus() -> None:
    assert parse_cgatt(["+CGATT: 1"]) is True
    assert parse_cgatt(["+CGATT: 0"]) is False
    assert parse_cgatt([]) is None
    assert parse_cpsms(['+CPSMS: 1,,,"01000111","00000000"']) == (True, 70 * 3600, 0)
    assert parse_cpsms(["+CPSMS: 0"]) == (False, None, None)
    assert parse_cpsmstatus('+CPSMSTATUS: "ENTER PSM"') is True
    assert parse_cpsmstatus('+CPSMSTATUS: "EXIT PSM"') is False
    assert parse_cpsmstatus("+CPSMSTATUS: 1") is None


def test_ceng_serving_cell_and_neighbours() -> None:
    lines = ['+CENG: 3683,2,129,"C3D4E5F",-83,-10,-73,12,8,"1A2B",0,23,-80', "+CENG: 3683,2,130,-95"]
    cell = parse_ceng(lines)
    assert (cell.earfcn, cell.pci, cell.cell_id, cell.band, cell.tac, cell.ecl) == (
        3683,
        129,
        "C3D4E5F",
        8,
        "1A2B",
        0,
    )
    assert (cell.rsrp_dbm, cell.rsrq_db, cell.rssi_dbm, cell.sinr_db) == (-83, -10, -73, 12)
    assert cell.neighbours == (NeighbourCell(earfcn=3683, earfcn_offset=2, pci=130, rsrp_dbm=-95),)
    alone = parse_ceng(["+CENG: 3683,2,130,-95"])
    assert alone.pci is None
    assert [n.pci for n in alone.neighbours] == [130]


@pytest.mark.parametrize(
    ("lines", "value"),
    [
        (["Revision:1752B10SIM7020E"], "1752B10SIM7020E"),
        (["+CGMR: 1752B10"], "1752B10"),
        (["869714031234566"], "869714031234566"),
        (["+CGSN: 869714031234566"], "869714031234566"),
        (['+CCID: "8986"'], "8986"),
        (["", "SIMCOM_Ltd"], "SIMCOM_Ltd"),
        ([], ""),
    ],
)
def test_identity_forms(lines: list[str], value: str) -> None:
    assert parse_identity(lines) == value


def test_cdnsgip_forms() -> None:
    ok = parse_cdnsgip('+CDNSGIP: 1,"www.baidu.com","111.13.100.92"')
    assert (ok.ok, ok.host, ok.addresses) == (True, "www.baidu.com", ["111.13.100.92"])
    two = parse_cdnsgip('+CDNSGIP: 1,"h","10.0.0.1","10.0.0.2"')
    assert two.addresses == ["10.0.0.1", "10.0.0.2"]
    err = parse_cdnsgip("+CDNSGIP: 0,8")
    assert (err.ok, err.error) == (False, 8)
    with pytest.raises(ValueError, match="CDNSGIP"):
        parse_cdnsgip('+CDNSGIP: 1,"h","not-an-ip"')


def test_cipping_note_example_and_timeout() -> None:
    reply = parse_cipping("+CIPPING: 1,61.135.169.121,11,52")
    assert (reply.seq, reply.ip, reply.rtt_ms, reply.ttl) == (1, "61.135.169.121", 1100.0, 52)
    lost = parse_cipping("+CIPPING: 2,10.0.0.1,600,0")
    assert (lost.rtt_ms, lost.ttl) == (None, 0)
    assert parse_cipping('+CIPPING: 3,"10.0.0.1",2,64').ip == "10.0.0.1"
    with pytest.raises(ValueError, match="CIPPING"):
        parse_cipping("+CIPPING: 1,10.0.0.1")


# ------------------------------------------------------------------ properties

safe_text = st.text(st.characters(exclude_characters='",\r\n', codec="utf-8"), max_size=12)


@given(st.lists(safe_text, min_size=1, max_size=8), st.lists(st.booleans(), min_size=8, max_size=8))
def test_split_fields_round_trip(fields: list[str], quoted: list[bool]) -> None:
    text = ",".join(f'"{f}"' if q else f for f, q in zip(fields, quoted, strict=False))
    assert split_fields(text) == [f.strip() for f in fields]


@given(
    st.integers(1, 100),
    st.ip_addresses(v=4).map(str),
    st.integers(0, 600),
    st.integers(0, 255),
    st.booleans(),
)
def test_cipping_property(seq: int, ip: str, units: int, ttl: int, quote: bool) -> None:
    shown = f'"{ip}"' if quote else ip
    reply = parse_cipping(f"+CIPPING: {seq},{shown},{units},{ttl}")
    assert (reply.seq, reply.ip, reply.ttl) == (seq, ip, ttl)
    assert reply.rtt_ms == (None if ttl == 0 else units * 100)


@given(
    st.integers(0, 7),
    st.one_of(st.none(), st.integers(0, 3 * 3600)),
    st.one_of(st.none(), st.integers(0, 1000 * 3600)),
)
def test_reg_urc_property(stat: int, active: int | None, tau: int | None) -> None:
    line = f'+CEREG: {stat},"1A2B","0C3D4E5F",9,,,"{encode_t3324(active)}","{encode_t3412(tau)}"'
    info = parse_reg_urc(line)
    assert info is not None
    assert info.registration is Registration.from_stat(stat)
    assert info.has_timers
    assert (info.active_s is None) == (active is None)
    assert info.active_s is None or active is None or info.active_s >= active
    assert info.tau_s is None or tau is None or info.tau_s >= tau


@given(st.text(max_size=60))
def test_parsers_never_crash_on_garbage(text: str) -> None:
    lines = [text, "+CSQ: " + text, "+CEREG: " + text, "+CGCONTRDP: " + text, "+CENG: " + text]
    parse_csq(lines[1:2])
    parse_reg_read(lines[2:3])
    parse_reg_urc(lines[2])
    parse_cgcontrdp(lines[3:4])
    parse_ceng(lines[4:5])
    parse_cops(["+COPS: " + text])
    parse_cpsms(["+CPSMS: " + text])
    parse_identity(lines)
    parse_gsv(lines)
    for parser in (parse_cdnsgip, parse_cipping):
        try:
            parser(text)
        except ValueError:
            pass
    try:
        parse_cclk(["+CCLK: " + text])
    except ValueError:
        pass
