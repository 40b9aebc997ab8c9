"""The application note's AT exchanges (chapters 3-6) and real modules' captured exchanges as acceptance
tests for the emulator.

Every transcript in ``tests/emulator/transcripts/ch*.txt`` is written from the vendor's *SIM7020 TCPIP
Application Note v1.04*, and ``captures.txt`` from public logs of physical modules (its header names each
source); each is replayed byte for byte against a fresh emulator, over a real pty and over a real TCP socket,
with the remote hosts played by real loopback peers. Where the note is garbled or inconsistent, the header of
each transcript file lists the form chosen (C3-*, C4-*, C5-*, C6-*); where a capture needs state set up or
shows less than the wire, ``captures.txt`` says so (R-*). Sections that the note describes only in prose
(6.9.1, 6.9.2, 6.10.1, 6.11, 6.12, 6.14.4) follow the prose.

A failing transcript that follows the note or a capture is a bug in the emulator, not in the transcript.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.emulator.transcript_tools import (
    RawClient,
    Transcript,
    TranscriptMismatch,
    TranscriptSyntaxError,
    framed,
    iter_chunks,
    load_all,
    parse_text,
    replay,
    replay_cli,
    runs_on_cli,
)

TRANSCRIPT_DIR = Path(__file__).parent / "transcripts"
TRANSCRIPTS = load_all(TRANSCRIPT_DIR)

#: every section of chapters 3-6 that shows an AT exchange, or describes one precisely in its text
#: (6.9.1, 6.9.2, 6.10.1, 6.11, 6.12, 6.14.4: ``transcripts/ch6_text.txt``)
NOTE_SECTIONS = {
    "3.1", "3.2",
    "4.1", "4.2",
    "5.2", "5.3", "5.4", "5.5", "5.6", "5.8", "5.9", "5.10", "5.11",
    "6.2", "6.3", "6.4", "6.5", "6.6", "6.7", "6.8", "6.9.1", "6.9.2", "6.9.3", "6.9.4", "6.10.1", "6.10.2",
    "6.11", "6.12", "6.14", "6.14.4",
}  # fmt: skip
#: the captures of docs/emulator.md, "Real modules" (transcripts/captures.txt)
CAPTURE_SECTIONS = {"capture-1", "capture-2", "capture-3", "capture-4"}


@pytest.mark.parametrize("over", ["tcp", "pty"])
@pytest.mark.parametrize("transcript", TRANSCRIPTS, ids=[t.id for t in TRANSCRIPTS])
@pytest.mark.timeout(30)
async def test_note_transcript(transcript: Transcript, over: str) -> None:
    """The emulator answers the note's exchange exactly, over a pty and over TCP."""
    await replay(transcript, over)  # type: ignore[arg-type]


#: transcripts also replayed with the host typing one byte at a time (prompts, hex payloads, +++, headers)
BYTEWISE = {
    "3.2-change-the-apn-by-hand",
    "5.6-several-sockets",
    "6.6-several-client-links",
    "6.14-transparent-mode",
}
BYTEWISE_TRANSCRIPTS = [t for t in TRANSCRIPTS if t.id in BYTEWISE]


@pytest.mark.parametrize("transcript", BYTEWISE_TRANSCRIPTS, ids=[t.id for t in BYTEWISE_TRANSCRIPTS])
@pytest.mark.timeout(30)
async def test_note_transcript_typed_byte_by_byte(transcript: Transcript) -> None:
    """A host that writes one byte at a time (a person at a terminal, a slow UART) gets the same answers."""
    await replay(transcript, "pty-bytewise")


#: replayed against the command-line emulator in a subprocess (--host, --route IP, --route IP:PORT; and the
#: default profile of `sim7020 emulator`, which behaves like the captured modules)
CLI = {"4.1-dns-resolution", "4.2-ping", "5.6-several-sockets", "capture-3-edrx-read-back-and-sleep-mode"}
CLI_TRANSCRIPTS = [t for t in TRANSCRIPTS if t.id in CLI]


@pytest.mark.parametrize("transcript", CLI_TRANSCRIPTS, ids=[t.id for t in CLI_TRANSCRIPTS])
@pytest.mark.timeout(45)
async def test_note_transcript_against_the_command_line_emulator(transcript: Transcript) -> None:
    """`sim7020 emulator --tcp ... --host ... --route ...` in its own process speaks the note too."""
    await replay_cli(transcript)


def test_every_note_section_has_a_transcript() -> None:
    assert {t.id for t in CLI_TRANSCRIPTS} == CLI
    assert all(runs_on_cli(t) for t in CLI_TRANSCRIPTS)
    assert {t.id for t in BYTEWISE_TRANSCRIPTS} == BYTEWISE
    assert {t.section for t in TRANSCRIPTS} >= NOTE_SECTIONS
    assert {t.section for t in TRANSCRIPTS} >= CAPTURE_SECTIONS
    ids = [t.id for t in TRANSCRIPTS]
    assert len(ids) == len(set(ids)), "two transcripts share a section and title"


# ---------------------------------------------------------------------------------------------------------
# The replay engine itself: it must be able to fail, and it must not depend on how bytes are chunked.


async def test_a_transcript_that_contradicts_the_module_fails() -> None:
    """Negative control: ``AT`` never answers ``ERROR``; the transcript fails at that expectation."""
    (bogus,) = parse_text("=== 0.0 bogus\n> AT\n< ERROR\n")
    with pytest.raises(TranscriptMismatch, match=r"(?s)step 2 .*expected: b'\\r\\nERROR\\r\\n'"):
        await replay(bogus, "tcp")


async def test_a_peer_expectation_that_is_not_met_fails() -> None:
    (bogus,) = parse_text(
        "=== 0.0 bogus peer\n"
        "peer srv udp 116.228.221.51:9600\n"
        "> AT+CSTT\n< OK\n> AT+CIICR\n< OK\n> AT+CIFSR\n<~ [0-9.]+\n"
        '> AT+CIPSTART="UDP","116.228.221.51","9600"\n< OK\n< CONNECT OK\n'
        '> AT+CIPSEND=11\n<< "\\r\\n> "\n>> "Hello World"\n'
        '@srv expect "Goodbye World"\n'
    )
    with pytest.raises(TranscriptMismatch, match="Goodbye World"):
        await replay(bogus, "tcp")


class _FedClient(RawClient):
    mismatch_settle = 0.0

    async def _write(self, data: bytes) -> None:  # pragma: no cover - not used
        raise AssertionError

    async def close(self) -> None:
        """Nothing to close."""


@settings(max_examples=50, deadline=None)
@given(
    lines=st.lists(st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=20), min_size=1),
    sizes=st.lists(st.integers(min_value=1, max_value=7), max_size=30),
)
def test_expect_accepts_any_chunking(lines: list[str], sizes: list[int]) -> None:
    expected = framed(*lines)

    async def run() -> None:
        client = _FedClient()

        async def feed() -> None:
            for chunk in iter_chunks(expected + b"\r\nTAIL\r\n", sizes):
                client._feed(chunk)
                await asyncio.sleep(0)

        feeder = asyncio.create_task(feed())
        await client.expect(expected, timeout=1.0)
        await feeder
        assert client.pending == b"\r\nTAIL\r\n"

    asyncio.run(run())


@settings(max_examples=50, deadline=None)
@given(data=st.binary(min_size=1, max_size=40), flip=st.integers(min_value=0))
def test_expect_rejects_any_differing_byte(data: bytes, flip: int) -> None:
    index = flip % len(data)
    wrong = bytearray(data)
    wrong[index] ^= 0x01

    async def run() -> None:
        client = _FedClient()
        client._feed(bytes(wrong))
        with pytest.raises(TranscriptMismatch):
            await client.expect(data, timeout=0.5)

    asyncio.run(run())


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("> AT\n", "before the first"),
        ("=== 1.0 x\n@nobody send 'x'\n", "unknown peer"),
        ("=== 1.0 x\npeer a tcp nowhere\n", "bad address"),
        ("=== 1.0 x\npeer a client 1.2.3.4:5\n", "needs the module port"),
        ("=== 1.0 x\n>> __import__('os')\n", "only string literals"),
        ("=== 1.0 x\nfrobnicate\n", "unknown line"),
    ],
)
def test_transcript_syntax_errors_name_the_problem(text: str, message: str) -> None:
    with pytest.raises(TranscriptSyntaxError, match=message):
        parse_text(text)


def test_transcript_format_builds_the_module_framing() -> None:
    (t,) = parse_text(
        '=== 9.9 demo\n> AT+CSQ\n< +CSQ: 20,0\n< OK\n<< "\\r\\n> "\n>> "ab" + "c" * 2\n'
        "> AT+CENG?\n< +CENG: 1\n<+ +CENG: 2\n< OK\n"
    )
    kinds = ["send", "expect", "expect", "expect", "raw", "send", "expect", "expect", "expect"]
    assert [s.kind for s in t.steps] == kinds
    assert t.steps[1].data == b"\r\n+CSQ: 20,0\r\n"
    assert t.steps[3].data == b"\r\n> "
    assert t.steps[4].data == b"abcc"
    # a block: the second line follows the first without an empty line
    assert b"".join(s.data for s in t.steps[6:]) == b"\r\n+CENG: 1\r\n+CENG: 2\r\n\r\nOK\r\n"
