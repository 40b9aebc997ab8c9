"""The command-line parser and the network's address mapping (pure functions, plus Hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.emulator.base import Arg, ParseError, parse_command
from sim7020_core.emulator.network import LoopbackNetwork, parse_endpoint


@pytest.mark.parametrize(
    ("line", "name", "kind", "args"),
    [
        ("AT", "", "exec", ()),
        ("ATE0", "E", "exec", (Arg("0"),)),
        ("ati", "I", "exec", ()),
        ("AT&F", "&F", "exec", ()),
        ("AT+CGREG?", "+CGREG", "read", ()),
        ("AT+CSQ=?", "+CSQ", "test", ()),
        ("at+csoc=1,1,1", "+CSOC", "set", (Arg("1"), Arg("1"), Arg("1"))),
        (
            'AT+CPSMS=1,,,"01000111","00000000"',
            "+CPSMS",
            "set",
            (Arg("1"), Arg(""), Arg(""), Arg("01000111", True), Arg("00000000", True)),
        ),
        ('AT*MCGDEFCONT="IP", "a b" ', "*MCGDEFCONT", "set", (Arg("IP", True), Arg("a b", True))),
        ("AT+CSOSEND=0, 4 ,ABCD", "+CSOSEND", "set", (Arg("0"), Arg("4"), Arg("ABCD"))),
        ("AT+X=1,", "+X", "set", (Arg("1"), Arg(""))),
        ('AT+X=""', "+X", "set", (Arg("", True),)),
    ],
)
def test_parse_examples(line: str, name: str, kind: str, args: tuple[Arg, ...]) -> None:
    cmd = parse_command(line)
    assert (cmd.name, cmd.kind, cmd.args) == (name, kind, args)


@pytest.mark.parametrize("line", ["", "A", "hello", 'AT+X="open', "AT+CSQ!"])
def test_parse_rejects(line: str) -> None:
    with pytest.raises(ParseError):
        parse_command(line)


def test_empty_quoted_is_not_omitted() -> None:
    assert Arg("", True).empty is False
    assert Arg("").empty is True
    with pytest.raises(ParseError, match="out of range"):
        Arg("7").as_int(0, 4)
    with pytest.raises(ParseError, match="not a number"):
        Arg("x").as_int()
    assert Arg("").as_int(default=3) == 3


_quoted = st.text(
    st.characters(blacklist_characters='"\r\n', min_codepoint=32, max_codepoint=126), max_size=12
)
_bare = st.text(st.sampled_from("0123456789ABCDEFabcdef.:-"), max_size=10)
_args = st.lists(st.one_of(_quoted.map(lambda t: Arg(t, True)), _bare.map(Arg)), min_size=1, max_size=8)


@given(name=st.from_regex(r"[+*][A-Z]{1,10}", fullmatch=True), args=_args)
def test_args_round_trip(name: str, args: list[Arg]) -> None:
    text = ",".join(f'"{a.text}"' if a.quoted else a.text for a in args)
    cmd = parse_command(f"AT{name}={text}")
    assert cmd.name == name
    assert cmd.kind == "set"
    assert cmd.args == tuple(args)


@given(st.text(max_size=40))
def test_parser_never_raises_anything_but_parse_error(line: str) -> None:
    try:
        parse_command(line)
    except ParseError:
        pass


def test_routes_map_both_ways() -> None:
    net = LoopbackNetwork(routes={"116.247.119.165:5245": "127.0.0.1:40000", "61.135.169.121": "127.0.0.1"})
    assert net.map_out("116.247.119.165", 5245) == ("127.0.0.1", 40000)
    assert net.map_out("116.247.119.165", 5246) is None
    assert net.map_out("61.135.169.121", 7) == ("127.0.0.1", 7)
    assert net.map_out("127.0.0.5", 9) == ("127.0.0.5", 9)
    assert net.map_out("192.0.2.1", 9) is None
    assert net.map_in("127.0.0.1", 40000) == ("116.247.119.165", 5245)
    assert net.map_in("127.0.0.1", 7) == ("61.135.169.121", 7)  # recently reached through the route
    assert net.is_reachable("61.135.169.121")
    assert not net.is_reachable("192.0.2.1")
    net.route("198.51.100.1", 53, to=("127.0.0.1", 5353))
    assert net.map_in("127.0.0.1", 5353) == ("198.51.100.1", 53)


def test_hosts_table_validation() -> None:
    net = LoopbackNetwork(hosts={"A.example": "127.0.0.1, 127.0.0.2"})
    assert net.resolve("a.EXAMPLE") == ["127.0.0.1", "127.0.0.2"]
    assert net.resolve("b.example") is None
    with pytest.raises(ValueError, match="not an IP"):
        LoopbackNetwork(hosts={"x": "example.org"})
    with pytest.raises(ValueError, match="bad port"):
        parse_endpoint("1.2.3.4:99999")
