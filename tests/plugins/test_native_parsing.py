"""Property tests for the native transport's URC and answer parsing (no module needed)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.at.engine import Urc
from sim7020_core.exceptions import ConnectionClosedError, SocketError
from sim7020_plugins._common import check_port, urc_fields
from sim7020_plugins.native import NativeConnection, NativeTransport, _keepalive_args, _parse_rxget


def _transport_with_socket(socket_id: int) -> tuple[NativeTransport, NativeConnection]:
    transport = NativeTransport(SimpleNamespace(plugins=None))  # type: ignore[arg-type]
    conn = NativeConnection(transport, socket_id, "tcp", "10.0.0.1", 80)
    transport._sockets[socket_id] = conn
    transport._register(conn)
    return transport, conn


@given(st.integers(0, 4), st.binary(min_size=1, max_size=1460), st.booleans(), st.booleans())
def test_hex_csonmi_yields_the_bytes(socket_id, data, quoted, lower):
    transport, conn = _transport_with_socket(socket_id)
    text = data.hex() if lower else data.hex().upper()
    if quoted:
        text = f'"{text}"'
    transport._on_csonmi(Urc(f"+CSONMI: {socket_id},{len(data) * 2},{text}"))
    assert conn._queue[0][0] == data


@given(st.integers(0, 4), st.binary(min_size=1, max_size=1460))
def test_raw_csonmi_payload_is_taken_as_is(socket_id, data):
    transport, conn = _transport_with_socket(socket_id)
    transport._on_csonmi(Urc(f"+CSONMI: {socket_id},{len(data)}", data))
    assert conn._queue[0][0] == data


@pytest.mark.parametrize(
    "line",
    ["+CSONMI: 0,6,31323", "+CSONMI: 0,4,zz11", "+CSONMI: 0", "+CSONMI: x,2,31", "+CSONMI: 3,2,31"],
)
def test_malformed_or_foreign_csonmi_is_ignored(line):
    transport, conn = _transport_with_socket(0)
    transport._on_csonmi(Urc(line))
    assert not conn._queue
    assert not conn.closed


@given(st.integers(0, 4), st.sampled_from([-1, 1, 2, 3, 5, 6, 7, 8, 9, 10, 11, 99]))
def test_csoerr_fails_the_connection_with_the_code(socket_id, code):
    transport, conn = _transport_with_socket(socket_id)
    transport._release_later = lambda sid: None  # type: ignore[method-assign]
    transport._on_csoerr(Urc(f"+CSOERR: {socket_id},{code}"))
    assert conn.closed
    assert isinstance(conn.error, SocketError)
    assert not isinstance(conn.error, ConnectionClosedError)
    assert conn.error.code == code
    assert socket_id not in transport._sockets


def test_csoerr_4_is_a_close_by_the_peer():
    transport, conn = _transport_with_socket(2)
    transport._release_later = lambda sid: None  # type: ignore[method-assign]
    transport._on_csoerr(Urc("+CSOERR: 2,4"))
    assert isinstance(conn.error, ConnectionClosedError)
    assert "closed by peer" in str(conn.error)


@given(st.integers(0, 4), st.binary(max_size=730), st.integers(0, 65536))
def test_manual_read_answer(socket_id, data, left):
    lines = [f"+CSORXGET: 3,{socket_id},{len(data)},{left}"] + ([data.hex().upper()] if data else [])
    assert _parse_rxget(lines, socket_id) == (data, left)


def test_manual_read_with_bad_hex_names_the_socket():
    with pytest.raises(SocketError, match="socket 1: manual read returned bad hex"):
        _parse_rxget(["+CSORXGET: 3,1,2,0", "XYZW"], 1)


_FIELD = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E, blacklist_characters=',"'))


@given(st.lists(_FIELD, min_size=1), st.booleans())
def test_urc_fields_split_and_unquote(fields, quoted):
    """Quoted fields are kept verbatim; unquoted ones lose surrounding blanks."""
    line = "+X: " + ",".join(f'"{f}"' if quoted else f for f in fields)
    if not quoted and not line[4:].strip():
        assert urc_fields(line) == []
    else:
        assert urc_fields(line) == (fields if quoted else [f.strip() for f in fields])


@pytest.mark.parametrize(
    ("value", "args"), [(True, "1"), (False, "0"), ((60, 10, 3), "1,60,10,3"), (None, None)]
)
def test_keepalive_arguments(value, args):
    assert _keepalive_args(value) == args


@pytest.mark.parametrize("value", [0, (1, 2), (1, 0, 3), ("a", 1, 1), (True, 1, 1)])
def test_bad_keepalive_values(value):
    with pytest.raises(ValueError, match="keepalive"):
        _keepalive_args(value)


@pytest.mark.parametrize("port", [0, 65536, -1, "80", 1.5, True])
def test_bad_ports(port):
    with pytest.raises(ValueError, match="port must be an integer from 1 to 65535"):
        check_port(port)
