"""Durable message queues in sqlite (WAL), used by the bridge for uplink and downlink data.

An uplink message is written here *before* it is acknowledged to the broker and removed only when the
modem accepted it; downlink data is written here when it arrives from the modem and removed when the
broker acknowledged the publish. A crash at any point therefore loses nothing; it may repeat a message
(counted in :attr:`DurableQueue.stats`).

All sqlite I/O runs on one dedicated thread, never on the event loop. Inserts are committed with
``synchronous=FULL`` (an acknowledged message survives a power cut); deletes with ``NORMAL`` (a lost delete
only repeats a message). Inserts are group-committed: the puts of every route that arrive while a commit is
on the disk go in the next transaction together, and each caller returns only once its own rows are
committed, so many routes share one fsync instead of queueing one each.
"""

from __future__ import annotations

import asyncio
import functools
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..exceptions import Sim7020Error

_T = TypeVar("_T")

#: Upper bound for one sqlite operation (a stuck disk must not hang the bridge silently).
QUEUE_IO_TIMEOUT = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_queue ON messages (queue, id);
"""


#: a put waiting for the next group commit: (queue, [(topic, payload)], the caller's future of the ids)
_Put = tuple[str, list[tuple[str, bytes]], asyncio.Future[list[int]]]


class QueueError(Sim7020Error):
    """The durable queue cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One stored message."""

    id: int
    queue: str
    topic: str
    payload: bytes
    created: float


class DurableQueue:
    """A set of named FIFO queues in one sqlite file.

    :param path: the database file (its directory is created when missing)
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        # group commit: puts waiting for the next transaction, and the task that writes them
        self._puts: list[_Put] = []
        self._put_task: asyncio.Task[None] | None = None
        #: counters: ``put``, ``deleted``, ``recovered`` (found at open)
        self.stats: dict[str, int] = {"put": 0, "deleted": 0, "recovered": 0}

    async def open(self) -> None:
        """Open (or create) the database; messages left by a previous run stay queued."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim7020-queue")
        try:
            self.stats["recovered"] = await self._run(self._open_sync)
        except (sqlite3.Error, OSError) as err:
            raise QueueError(f"cannot open the queue database {self.path}: {err}") from err

    def _open_sync(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._db = db
        return int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])

    async def close(self) -> None:
        """Close the database and stop the I/O thread."""
        if self._executor is None:
            return
        if self._put_task is not None and not self._put_task.done():  # let a commit in progress finish
            await asyncio.wait({self._put_task}, timeout=QUEUE_IO_TIMEOUT)
        executor, self._executor = self._executor, None

        def _close() -> None:
            if self._db is not None:
                self._db.close()
                self._db = None

        try:
            async with asyncio.timeout(QUEUE_IO_TIMEOUT):
                await asyncio.get_running_loop().run_in_executor(executor, _close)
        finally:
            executor.shutdown(wait=False)  # the thread is idle now (or stuck on a dead disk: do not hang)

    async def _run(self, func: Callable[[], _T]) -> _T:
        if self._executor is None:
            raise QueueError("the queue is not open")
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(QUEUE_IO_TIMEOUT):
            return await loop.run_in_executor(self._executor, func)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise QueueError("the queue is not open")
        return self._db

    async def put_many(self, queue: str, items: Sequence[tuple[str, bytes]]) -> list[int]:
        """Store messages (topic, payload) at the end of ``queue`` durably (committed when this returns).

        :returns: their ids, in order
        :raises QueueError: the database could not be written (nothing of this call was stored)
        """
        if not items:
            return []
        if self._executor is None:
            raise QueueError("the queue is not open")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[int]] = loop.create_future()
        self._puts.append((queue, [(topic, bytes(payload)) for topic, payload in items], done))
        if self._put_task is None or self._put_task.done():
            self._put_task = loop.create_task(self._commit_puts(), name="sim7020-queue-commit")
        async with asyncio.timeout(QUEUE_IO_TIMEOUT):
            return await asyncio.shield(done)  # a cancelled caller does not cancel the others' commit

    async def _commit_puts(self) -> None:
        """Write the waiting puts, one transaction per round, until none are left."""
        while self._puts:
            batch, self._puts = self._puts, []
            try:
                results = await self._run(functools.partial(self._put_sync, batch, time.time()))
            except (sqlite3.Error, OSError, TimeoutError, QueueError) as err:
                for _, _, done in batch:
                    if not done.done():
                        error = QueueError(f"cannot store messages in {self.path}: {err}")
                        error.__cause__ = err
                        done.set_exception(error)
                continue
            for (_, _, done), ids in zip(batch, results, strict=True):
                self.stats["put"] += len(ids)
                if not done.done():
                    done.set_result(ids)

    def _put_sync(self, batch: list[_Put], now: float) -> list[list[int]]:
        """One transaction for every put of ``batch`` (on the I/O thread)."""
        db = self._conn()
        db.execute("PRAGMA synchronous=FULL")
        results: list[list[int]] = []
        db.execute("BEGIN IMMEDIATE")
        try:
            for queue, items, _ in batch:
                ids: list[int] = []
                for topic, payload in items:
                    cur = db.execute(
                        "INSERT INTO messages (queue, topic, payload, created) VALUES (?, ?, ?, ?)",
                        (queue, topic, payload, now),
                    )
                    ids.append(int(cur.lastrowid or 0))
                results.append(ids)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return results

    async def put(self, queue: str, topic: str, payload: bytes) -> int:
        """Store one message; see :meth:`put_many`."""
        return (await self.put_many(queue, [(topic, payload)]))[0]

    async def peek(self, queue: str, limit: int = 100, *, after: int = 0) -> list[QueuedMessage]:
        """The oldest messages of ``queue`` (ids greater than ``after``), without removing them."""

        def _peek() -> list[QueuedMessage]:
            rows = (
                self._conn()
                .execute(
                    "SELECT id, queue, topic, payload, created FROM messages"
                    " WHERE queue = ? AND id > ? ORDER BY id LIMIT ?",
                    (queue, after, limit),
                )
                .fetchall()
            )
            return [QueuedMessage(int(r[0]), r[1], r[2], bytes(r[3]), float(r[4])) for r in rows]

        return await self._run(_peek)

    async def delete(self, ids: Iterable[int]) -> None:
        """Remove messages (unknown ids are ignored)."""
        id_list = list(ids)
        if not id_list:
            return

        def _delete() -> None:
            db = self._conn()
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in id_list])
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise

        await self._run(_delete)
        self.stats["deleted"] += len(id_list)

    async def count(self, queue: str | None = None) -> int:
        """Number of stored messages (in one queue, or in all)."""

        def _count() -> int:
            db = self._conn()
            if queue is None:
                row = db.execute("SELECT COUNT(*) FROM messages").fetchone()
            else:
                row = db.execute("SELECT COUNT(*) FROM messages WHERE queue = ?", (queue,)).fetchone()
            return int(row[0])

        return await self._run(_count)
