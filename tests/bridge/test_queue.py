"""The sqlite durable queue and the request parser (no broker needed)."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sim7020_core.bridge.commands import CommandError, parse_request
from sim7020_core.bridge.discovery import discovery_payload, node_id
from sim7020_core.bridge.queue import DurableQueue, QueueError
from sim7020_core.models import ModemInfo


async def test_fifo_per_queue_and_delete(tmp_path: Path) -> None:
    q = DurableQueue(tmp_path / "q.sqlite3")
    await q.open()
    try:
        await q.put_many("up:a", [("t/1", b"one"), ("t/2", b"two")])
        await q.put("up:b", "t/x", b"other")
        await q.put("up:a", "t/3", b"three")
        msgs = await q.peek("up:a")
        assert [(m.topic, m.payload) for m in msgs] == [("t/1", b"one"), ("t/2", b"two"), ("t/3", b"three")]
        await q.delete([msgs[0].id])
        assert [m.payload for m in await q.peek("up:a", 1)] == [b"two"]
        assert [m.payload for m in await q.peek("up:a", after=msgs[1].id)] == [b"three"]
        assert await q.count("up:a") == 2
        assert await q.count() == 3
    finally:
        await q.close()


async def test_messages_survive_reopen_and_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "q.sqlite3"
    q = DurableQueue(path)
    await q.open()
    await q.put_many("down:r", [("a", bytes(range(256)))])
    await q.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    q2 = DurableQueue(path)
    await q2.open()
    try:
        assert q2.stats["recovered"] == 1
        assert (await q2.peek("down:r"))[0].payload == bytes(range(256))
    finally:
        await q2.close()


async def test_concurrent_puts_keep_their_order(tmp_path: Path) -> None:
    q = DurableQueue(tmp_path / "q.sqlite3")
    await q.open()
    try:
        await asyncio.gather(*(q.put("up", "t", str(i).encode()) for i in range(50)))
        assert [int(m.payload) for m in await q.peek("up", 100)] == list(range(50))
    finally:
        await q.close()


async def test_closed_queue_refuses_work(tmp_path: Path) -> None:
    q = DurableQueue(tmp_path / "q.sqlite3")
    with pytest.raises(QueueError, match="not open"):
        await q.put("up", "t", b"x")


async def test_unwritable_state_dir_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    q = DurableQueue(blocker / "q.sqlite3")
    with pytest.raises(QueueError, match=r"cannot open the queue database .*file/q\.sqlite3"):
        await q.open()
    await q.close()


def test_request_parsing() -> None:
    assert parse_request("ping", b'{"id": 1, "host": "h"}') == {
        "id": 1,
        "host": "h",
        "count": 4,
        "size": 32,
        "timeout": 10.0,
    }
    with pytest.raises(CommandError, match="port: is required"):
        parse_request("send", b'{"id": 1, "host": "h", "payload": "x"}')
    with pytest.raises(CommandError, match="colour: unknown field"):
        parse_request("dns", b'{"id": 1, "host": "h", "colour": 1}')
    with pytest.raises(CommandError, match="JSON object"):
        parse_request("dns", b"[1]")


@given(st.binary(max_size=64))
def test_request_parser_only_raises_command_error(data: bytes) -> None:
    for name in ("ping", "dns", "send", "at"):
        try:
            parse_request(name, data)
        except CommandError:
            pass


@given(
    st.dictionaries(
        st.sampled_from(["id", "host", "count", "port", "payload", "x"]),
        st.one_of(st.integers(), st.text(max_size=5), st.none()),
    )
)
def test_request_parser_on_json_objects(obj: dict[str, object]) -> None:
    request_id, host = obj.get("id"), obj.get("host")
    valid = isinstance(request_id, str) or (isinstance(request_id, int) and abs(request_id) <= 2**53)
    # a host goes inside an AT command: letters, digits, '.', '-', '_', ':' only
    valid = valid and isinstance(host, str) and re.fullmatch(r"[A-Za-z0-9._:-]{1,253}", host) is not None
    valid = valid and set(obj) <= {"id", "host", "count"}
    valid = valid and (obj.get("count", 4) is not None and isinstance(obj.get("count", 4), int))
    valid = valid and 1 <= int(obj.get("count", 4) or 0) <= 100
    if valid:
        parsed = parse_request("ping", json.dumps(obj).encode())
        assert parsed["host"] == obj["host"]
    else:
        with pytest.raises(CommandError):
            parse_request("ping", json.dumps(obj).encode())


def test_discovery_ids_follow_the_imei() -> None:
    info = ModemInfo(manufacturer="SIMCOM_Ltd", model="SIM7020E", revision="1752B10", imei="869714031234566")
    payload = discovery_payload(modem_id="gw1", base="sim7020/gw1", info=info)
    assert payload["device"]["identifiers"] == ["sim7020_869714031234566"]
    assert payload["device"]["model"] == "SIM7020E"
    assert payload["device"]["sw_version"] == "1752B10"
    assert all(c["unique_id"].startswith("sim7020_869714031234566_") for c in payload["components"].values())
    assert node_id("gw/1", None) == "sim7020_gw_1"


async def test_concurrent_puts_of_many_routes_are_all_committed_in_order(tmp_path: Path) -> None:
    """Puts from many routes at once (group commit): each returns its own ids only once they are stored,
    every queue keeps the order of its puts, and everything is there after a reopen."""
    path = tmp_path / "q.sqlite3"
    q = DurableQueue(path)
    await q.open()

    async def route(n: int) -> list[int]:
        ids: list[int] = []
        for i in range(20):
            ids += await q.put_many(
                f"down:r{n}", [(f"t/{n}", f"{n}-{i}-a".encode()), ("t", f"{n}-{i}-b".encode())]
            )
        return ids

    results = await asyncio.gather(*(route(n) for n in range(10)))
    await q.close()
    all_ids = [i for ids in results for i in ids]
    assert len(all_ids) == len(set(all_ids)) == 400
    q2 = DurableQueue(path)
    await q2.open()
    try:
        assert q2.stats["recovered"] == 400
        for n, ids in enumerate(results):
            stored = await q2.peek(f"down:r{n}", 1000)
            assert [m.id for m in stored] == ids
            assert [m.payload for m in stored] == [f"{n}-{i}-{x}".encode() for i in range(20) for x in "ab"]
    finally:
        await q2.close()


async def test_a_failed_commit_raises_queue_error_for_every_waiting_put(tmp_path: Path) -> None:
    q = DurableQueue(tmp_path / "q.sqlite3")
    await q.open()
    try:
        assert q._db is not None
        q._db.execute(
            "CREATE TRIGGER no_inserts BEFORE INSERT ON messages "
            "BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
        results = await asyncio.gather(
            *(q.put(f"up:{n}", "t", b"x") for n in range(5)), return_exceptions=True
        )
        assert all(isinstance(r, QueueError) and "disk says no" in str(r) for r in results), results
        assert await q.count() == 0
        q._db.execute("DROP TRIGGER no_inserts")
        assert await q.put("up:0", "t", b"ok") > 0  # the queue keeps working
    finally:
        await q.close()
