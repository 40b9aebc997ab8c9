"""The CLI checks what would end up inside an AT command before it opens the modem (issue 13, cases 4 and 5):
a host with a quote or a line break, a raw command the allow-list refuses. The device here is a closed port,
so an answer that is about the argument proves nothing was opened."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest

from sim7020_core.cli import main


@pytest.fixture
def nowhere() -> Iterator[str]:
    """A socket:// URL nobody listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield f"socket://127.0.0.1:{s.getsockname()[1]}"


@pytest.mark.parametrize(
    "argv",
    [
        ["dns", 'example.com"\r\nAT+CFUN=0'],
        ["ping", "a b"],
        ["send", "host\nname", "5683", "x"],
    ],
)
def test_a_bad_host_is_a_usage_error_naming_it(
    nowhere: str, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main([argv[0], "--device", nowhere, *argv[1:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("sim7020: error: HOST ")
    assert "must be a host name or IP address" in err
    assert "cannot use the modem" not in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ('AT+CPSMS=1,,,"00000001","00000001"', "use Modem.set_psm() instead"),
        ("AT+CGATT=0", "attaches or detaches"),
        ("ATE0&F", "'&F' restores the factory settings"),
    ],
)
def test_a_refused_raw_command_is_said_before_connecting(
    nowhere: str, capsys: pytest.CaptureFixture[str], command: str, expected: str
) -> None:
    assert main(["at", "--device", nowhere, command]) == 1
    err = capsys.readouterr().err
    assert expected in err
    assert err.rstrip().endswith("use --allow-unsafe to send it anyway")
    assert "cannot use the modem" not in err


def test_a_command_with_a_line_break_is_a_usage_error(
    nowhere: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["at", "--device", nowhere, "AT+CSQ\r\nAT+CFUN=0"]) == 2
    assert (
        "COMMAND: AT command 'AT+CSQ\\r\\nAT+CFUN=0' contains control characters" in capsys.readouterr().err
    )


def test_allowed_commands_and_allow_unsafe_go_to_the_modem(
    nowhere: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["at", "--device", nowhere, "AT+CPSMS?"]) == 1
    assert "cannot use the modem" in capsys.readouterr().err  # checked, then the (missing) modem is opened
    assert main(["at", "--device", nowhere, "--allow-unsafe", "AT+CGATT=0"]) == 1
    assert "cannot use the modem" in capsys.readouterr().err
