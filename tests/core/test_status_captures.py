"""Status parsers against what real modules printed (docs/status_formats.md): the exact captured lines, and
Hypothesis properties that any +CEREG/+CGREG layout (SIM7020's with <rac>, plain 27.007), any <n> and either
form (read answer, URC) parse to the values that were printed."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.models import NeighbourCell, Registration
from sim7020_core.psm import decode_t3324, decode_t3412
from sim7020_core.status import RegInfo, parse_cclk, parse_ceng, parse_gsv, parse_reg_read, parse_reg_urc

# ------------------------------------------------------------------ the captured lines, as printed

# thcam (docs/status_formats.md): a SIM7020 on a live network
THCAM_CGREG_READ = '+CGREG: 2,1,"00A0","0002920C",9,"00"'
THCAM_CELL_CHANGE = [
    '+CGREG: 1,"00A0","000A700B",9,"00"',
    '+CEREG: 1,"00A0","000A700B",9,"00"',
]
THCAM_CEREG_N5 = '+CEREG: 5,1,"00A0","0002920C",9,"00",0,0,"00100010","00010010"'
ISSUE_CEREG_N4 = '+CEREG: 4,1,"00A0","0002920C",9,"00",,,"00100010","00010010"'
# the PSM note
NOTE_READ_BEFORE = '+CEREG: 4,1,"5B57","01A50B1A",9,"00",,,"11100000","11100000"'
NOTE_URC_BEFORE = '+CEREG: 1,"5B57","01A50B1A",9,"00",,,"11100000","11100000"'
NOTE_URC_GRANT = '+CEREG: 1,"5B57","01A50B1A",9,"00",,,"00000001","11100000"'
NOTE_READ_AFTER = '+CEREG: 4,1,"5B57","01A50B1A",9,"00",,,"00000001","11100000"'


def test_thcam_cgreg_read_answer() -> None:
    info = parse_reg_read([THCAM_CGREG_READ, ""], "+CGREG")
    assert info == RegInfo(Registration.HOME, tac="00A0", cell_id="0002920C", act=9)


@pytest.mark.parametrize("line", THCAM_CELL_CHANGE)
def test_thcam_cell_change_urcs(line: str) -> None:
    info = parse_reg_urc(line)
    assert info == RegInfo(Registration.HOME, tac="00A0", cell_id="000A700B", act=9)


@pytest.mark.parametrize(("line", "cause"), [(THCAM_CEREG_N5, (0, 0)), (ISSUE_CEREG_N4, (None, None))])
def test_granted_timers_of_the_sim7020_layout(line: str, cause: tuple[int | None, int | None]) -> None:
    info = parse_reg_read([line])
    assert info is not None
    assert info.registration is Registration.HOME
    assert (info.tac, info.cell_id, info.act) == ("00A0", "0002920C", 9)
    assert (info.cause_type, info.reject_cause) == cause
    assert info.has_timers
    assert info.active_s == 120  # "00100010": 2 x 1 min
    assert info.tau_s == 10_800  # "00010010": 18 x 10 min


def test_psm_note_exchange() -> None:
    before = parse_reg_read([NOTE_READ_BEFORE, "", "OK"])
    assert before is not None
    assert (before.has_timers, before.active_s, before.tau_s) == (True, None, None)  # nothing granted
    urcs = [parse_reg_urc(line) for line in (NOTE_URC_BEFORE, NOTE_URC_GRANT)]
    assert [(u.has_timers, u.active_s, u.tau_s) for u in urcs if u is not None] == [
        (True, None, None),
        (True, 2, None),  # Active-Time 2 s granted; T3412 extended deactivated: not granted
    ]
    after = parse_reg_read([NOTE_READ_AFTER])
    assert after is not None
    assert (after.registration, after.tac, after.cell_id) == (Registration.HOME, "5B57", "01A50B1A")
    assert (after.has_timers, after.active_s, after.tau_s) == (True, 2, None)


def test_psm_note_header_on_its_own_line() -> None:
    # the note's PDF wraps the header away from its values
    info = parse_reg_read(["+CEREG:", '4,1,"5B57","01A50B1A",9,"00",,,"00000001","11100000"', "OK"])
    assert info is not None
    assert (info.active_s, info.tau_s, info.has_timers) == (2, None, True)


def _without_rac(line: str) -> str:
    return line.replace(',9,"00"', ",9")


@pytest.mark.parametrize(
    "line",
    [THCAM_CGREG_READ, THCAM_CEREG_N5, ISSUE_CEREG_N4, NOTE_READ_BEFORE, NOTE_READ_AFTER],
)
def test_captured_read_answers_read_the_same_in_the_plain_layout(line: str) -> None:
    prefix = line.partition(":")[0]
    plain = _without_rac(line)
    assert plain != line
    assert parse_reg_read([plain], prefix) == parse_reg_read([line], prefix)


@pytest.mark.parametrize("line", [*THCAM_CELL_CHANGE, NOTE_URC_BEFORE, NOTE_URC_GRANT])
def test_captured_urcs_read_the_same_in_the_plain_layout(line: str) -> None:
    assert parse_reg_urc(_without_rac(line)) == parse_reg_urc(line)


def test_urc_among_read_answer_lines_is_not_taken_for_the_answer() -> None:
    # a +CEREG URC that arrived while AT+CEREG? was in flight lands among its lines
    info = parse_reg_read([NOTE_URC_BEFORE, NOTE_READ_AFTER, "OK"])
    assert info is not None
    assert (info.active_s, info.tau_s) == (2, None)
    # with no read answer at all, the URC-layout line is still used
    only_urc = parse_reg_read([NOTE_URC_GRANT])
    assert only_urc is not None
    assert (only_urc.registration, only_urc.active_s) == (Registration.HOME, 2)


def test_late_read_answer_on_the_urc_path() -> None:
    info = parse_reg_urc(NOTE_READ_AFTER)
    assert info is not None
    assert (info.registration, info.tac, info.active_s) == (Registration.HOME, "5B57", 2)
    assert parse_reg_urc("+CEREG: 0,5") == RegInfo(Registration.ROAMING)


def test_malformed_timer_is_not_reported() -> None:
    info = parse_reg_urc('+CEREG: 1,"5B57","01A50B1A",9,"00",,,"0000001","1110000x"')
    assert info is not None
    assert (info.has_timers, info.active_s, info.tau_s) == (False, None, None)


# ------------------------------------------------------------------ +CENG, +CCLK, AT+GSV

THCAM_CENG = [
    '+CENG: 3548,2,42,"0002920C",-102,-9,-93,4,8,"00A0",0,,-91',
    "+CENG: 3548,2,145,-109",
    "+CENG: 3548,2,107,-111",
    "+CENG: 3548,2,44,-106",
    "",
    "OK",
]


def test_ceng_serving_line_with_empty_tx_power_and_neighbours() -> None:
    cell = parse_ceng(THCAM_CENG)
    assert (cell.earfcn, cell.pci, cell.cell_id, cell.tac, cell.band, cell.ecl) == (
        3548,
        42,
        "0002920C",
        "00A0",
        8,
        0,
    )
    assert (cell.rsrp_dbm, cell.rsrq_db, cell.rssi_dbm, cell.sinr_db) == (-102, -9, -93, 4)
    assert cell.neighbours == (
        NeighbourCell(earfcn=3548, earfcn_offset=2, pci=145, rsrp_dbm=-109),
        NeighbourCell(earfcn=3548, earfcn_offset=2, pci=107, rsrp_dbm=-111),
        NeighbourCell(earfcn=3548, earfcn_offset=2, pci=44, rsrp_dbm=-106),
    )


def test_ceng_neighbours_without_serving_line_and_odd_lines() -> None:
    cell = parse_ceng(["+CENG: 1,1", "+CENG: 3548,2,145,-109", "+CENG: 3548,2,x,-109"])
    assert cell.pci is None
    assert cell.neighbours == (NeighbourCell(3548, 2, 145, -109),)


UTC3 = dt.timezone(dt.timedelta(hours=3))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("+CCLK: 24/04/30,07:49:36+12", dt.datetime(2024, 4, 30, 7, 49, 36, tzinfo=UTC3)),  # SIM7020
        ('+CCLK: "2026/03/09,08:41:39+12"', dt.datetime(2026, 3, 9, 8, 41, 39, tzinfo=UTC3)),  # SIM7028
        (
            '+CCLK: "24/01/02,13:45:59-22"',
            dt.datetime(2024, 1, 2, 13, 45, 59, tzinfo=dt.timezone(-dt.timedelta(hours=5, minutes=30))),
        ),
        ("+CCLK: 24/01/02,13:45:59+00", dt.datetime(2024, 1, 2, 13, 45, 59, tzinfo=dt.UTC)),
    ],
)
def test_cclk_forms(line: str, expected: dt.datetime) -> None:
    value = parse_cclk([line, "", "OK"])
    assert value == expected
    assert value.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize(
    ("lines", "match"),
    [
        ([], "no \\+CCLK line"),
        (["+CCLK: 24/04/30,07:49:36"], "24/04/30,07:49:36"),  # no zone: not a point in time
        (["+CCLK: 24/13/30,07:49:36+12"], "not a valid date"),
        (['+CCLK: "garbage"'], "garbage"),
    ],
)
def test_cclk_errors_name_the_answer(lines: list[str], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        parse_cclk(lines)


def test_gsv_as_captured() -> None:
    assert parse_gsv(["SIMCOM_Ltd", "SIM7020G", "Revision:1752B02SIM7020G"]) == (
        "SIMCOM_Ltd",
        "SIM7020G",
        "1752B02SIM7020G",
    )
    assert parse_gsv(["Revision: 1752B12SIM7020C"]) == ("", "", "1752B12SIM7020C")
    assert parse_gsv([]) == ("", "", "")


# ------------------------------------------------------------------ properties

HEX = "0123456789ABCDEF"
hex_text = st.text(HEX, min_size=1, max_size=8)
timer_bits = st.integers(0, 255).map(lambda b: f"{b:08b}")


@dataclass(frozen=True)
class Printed:
    """What a module put on one +CEREG/+CGREG line, and how."""

    stat: int
    location: tuple[str, str, int] | None  # (tac, ci, AcT); None: the module left them out
    cause: tuple[int, int] | None
    timers: tuple[str, str] | None  # (Active-Time, Periodic-TAU) bit strings


@st.composite
def printed_lines(draw: st.DrawFn) -> tuple[str, Printed, bool]:
    """A +CEREG/+CGREG line as 27.007 allows it for a random <n>, in a random layout and form."""
    n = draw(st.integers(0, 5))
    stat = draw(st.integers(0, 7))
    prefix = draw(st.sampled_from(["+CEREG", "+CGREG"]))
    rac = draw(st.sampled_from(['"00"', '"A0"', "00", "3F", '""']))  # SIM7020 prints "00"
    with_rac = draw(st.booleans())
    read = draw(st.booleans())
    location = cause = timers = None
    fields = [str(stat)]
    if n >= 2 and draw(st.booleans()):
        location = (
            draw(st.text(HEX, min_size=4, max_size=4)),
            draw(st.text(HEX, min_size=8, max_size=8)),
            draw(st.sampled_from([7, 9])),
        )
        fields += [f'"{location[0]}"', f'"{location[1]}"', str(location[2])]
        if with_rac:
            fields.append(rac)
        if n in (3, 5) and draw(st.booleans()):
            cause = (draw(st.integers(0, 1)), draw(st.integers(0, 255)))
        if n >= 4 and draw(st.booleans()):
            timers = (draw(timer_bits), draw(timer_bits))
        if cause is not None:
            fields += [str(cause[0]), str(cause[1])]
        elif timers is not None:
            fields += ["", ""]  # n=4 (and n=5 without a cause): the ",,," of the captures
        if timers is not None:
            fields += [f'"{timers[0]}"', f'"{timers[1]}"']
    body = ",".join(fields)
    line = f"{prefix}: {n},{body}" if read else f"{prefix}: {body}"
    return line, Printed(stat, location, cause, timers), read


@given(printed_lines())
def test_any_layout_n_and_form_parses_to_the_printed_values(case: tuple[str, Printed, bool]) -> None:
    line, printed, read = case
    info = parse_reg_read([line], line.partition(":")[0]) if read else parse_reg_urc(line)
    assert info is not None, line
    assert info.registration is Registration.from_stat(printed.stat), line
    tac, ci, act = printed.location if printed.location is not None else (None, None, None)
    assert (info.tac, info.cell_id, info.act) == (tac, ci, act), line
    cause_type, reject = printed.cause if printed.cause is not None else (None, None)
    assert (info.cause_type, info.reject_cause) == (cause_type, reject), line
    assert info.has_timers == (printed.timers is not None), line
    if printed.timers is not None:
        assert info.active_s == decode_t3324(printed.timers[0]), line
        assert info.tau_s == decode_t3412(printed.timers[1]), line
    else:
        assert (info.active_s, info.tau_s) == (None, None), line


@given(printed_lines())
def test_read_answer_and_urc_of_the_same_report_agree(case: tuple[str, Printed, bool]) -> None:
    line, _, read = case
    prefix, _, rest = line.partition(": ")
    if read:
        urc = f"{prefix}: {rest.partition(',')[2]}"
        as_read = parse_reg_read([line], prefix)
    else:
        urc = line
        as_read = parse_reg_read([f"{prefix}: 4,{rest}"], prefix)
    assert as_read == parse_reg_urc(urc)


@given(
    st.lists(
        st.tuples(st.integers(0, 262143), st.integers(-10, 10), st.integers(0, 503), st.integers(-156, -44)),
        max_size=6,
    ),
    st.one_of(st.none(), st.integers(-30, 30)),
)
def test_ceng_keeps_every_neighbour(neighbours: list[tuple[int, int, int, int]], tx: int | None) -> None:
    serving = f'+CENG: 3548,2,42,"0002920C",-102,-9,-93,4,8,"00A0",0,{"" if tx is None else tx},-91'
    lines = [serving, *(f"+CENG: {e},{o},{p},{r}" for e, o, p, r in neighbours)]
    cell = parse_ceng(lines)
    assert cell.pci == 42
    assert cell.neighbours == tuple(NeighbourCell(*n) for n in neighbours)


@given(
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31)),
    st.integers(-95, 95),
    st.booleans(),
    st.booleans(),
)
def test_cclk_property(when: dt.datetime, quarters: int, quoted: bool, four_digit_year: bool) -> None:
    when = when.replace(microsecond=0)
    year = f"{when.year:04d}" if four_digit_year else f"{when.year % 100:02d}"
    text = f"{year}/{when:%m/%d,%H:%M:%S}{'-' if quarters < 0 else '+'}{abs(quarters):02d}"
    line = f'+CCLK: "{text}"' if quoted else f"+CCLK: {text}"
    value = parse_cclk([line])
    zone = dt.timezone(dt.timedelta(minutes=15 * quarters))
    assert value == when.replace(tzinfo=zone)
    assert value.utcoffset() == dt.timedelta(minutes=15 * quarters)
