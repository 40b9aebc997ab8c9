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

Storage failures (a full disk, I/O errors, a read-only or locked file) do not lose or drop anything: the
operation is retried with backoff (:data:`QUEUE_RETRY_MIN` … :data:`QUEUE_RETRY_MAX`) until it succeeds, and
the failure is reported once, as what it is, through ``on_problem`` (cleared by the next success). Callers
simply wait; the bridge keeps uplink messages unacknowledged at the broker meanwhile. Errors retrying cannot
fix (a constraint, a bug) raise :class:`QueueError` at once.

Deleted messages give their space back: the database uses incremental auto-vacuum, and once enough pages are
free they are returned to the filesystem; the WAL file is truncated to :data:`QUEUE_WAL_SIZE_LIMIT` after
each checkpoint. The files are created through :mod:`.state_dir` (mode 0600, never through a symlink).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..exceptions import Sim7020Error
from ..reconnect import Backoff
from .state_dir import check_state_file, open_state_file, prepare_state_dir

_T = TypeVar("_T")
_LOGGER = logging.getLogger(__name__)

#: An sqlite operation still running after this long is reported as a problem (the disk does not answer);
#: it is still waited for, never started a second time.
QUEUE_IO_TIMEOUT = 30.0
#: Backoff between attempts while the storage fails (seconds, doubled up to the max).
QUEUE_RETRY_MIN = 0.5
QUEUE_RETRY_MAX = 10.0
#: The WAL file is truncated to this size after a checkpoint (it keeps room for deletes on a full disk).
QUEUE_WAL_SIZE_LIMIT = 1024 * 1024
#: Free pages in the database that make a delete return them to the filesystem (incremental vacuum) …
QUEUE_VACUUM_PAGES = 256
#: … or fewer, when they are most of the database (a backlog has drained), but at least this many.
QUEUE_VACUUM_MIN_PAGES = 16

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

#: sqlite primary result codes that mean the storage failed, not the statement: what they say about the file
_STORAGE_CODES: dict[int, str] = {
    sqlite3.SQLITE_FULL: "the disk holding {path} is full",
    sqlite3.SQLITE_IOERR: "I/O error on {path}",
    sqlite3.SQLITE_READONLY: "{path} cannot be written (read-only)",
    sqlite3.SQLITE_CANTOPEN: "{path} or its journal cannot be opened",
    sqlite3.SQLITE_BUSY: "{path} is locked by another process",
    sqlite3.SQLITE_LOCKED: "{path} is locked",
    sqlite3.SQLITE_PROTOCOL: "{path}: the WAL lock protocol failed",
    sqlite3.SQLITE_NOMEM: "out of memory while writing {path}",
}
_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


#: a put waiting for the next group commit: (queue, [(topic, payload)], the caller's future of the ids)
_Put = tuple[str, list[tuple[str, bytes]], asyncio.Future[list[int]]]
#: ``on_problem(text)`` when the storage starts failing (or fails differently), ``on_problem(None)``
#: when it works again
ProblemCallback = Callable[[str | None], None]


class QueueError(Sim7020Error):
    """The durable queue cannot be opened or written.

    :param storage: the storage failed (full, I/O error …): retrying later may succeed
    """

    def __init__(self, message: str, *, storage: bool = False) -> None:
        super().__init__(message)
        self.storage = storage


def describe_storage_error(err: BaseException, path: Path) -> QueueError:
    """A :class:`QueueError` that says what went wrong with ``path`` in words (disk full, I/O error …)."""
    if isinstance(err, QueueError):
        return err
    if isinstance(err, sqlite3.Error):
        code = getattr(err, "sqlite_errorcode", None)
        name = getattr(err, "sqlite_errorname", None)
        detail = f"sqlite: {err}" + (f", {name}" if name else "")
        what = _STORAGE_CODES.get(code & 0xFF) if isinstance(code, int) else None
        if what is not None:
            return QueueError(f"{what.format(path=path)} ({detail})", storage=True)
        return QueueError(f"{path}: {detail}")
    if isinstance(err, OSError):
        reason = err.strerror or str(err)
        if err.errno in _FULL_ERRNOS:
            return QueueError(f"the disk holding {path} is full ({reason})", storage=True)
        return QueueError(f"{path}: {reason}", storage=True)
    return QueueError(f"{path}: {type(err).__name__}: {err}")


@dataclass(frozen=True, slots=True)
class QueuedMessage:
    """One stored message."""

    id: int
    queue: str
    topic: str
    payload: bytes
    created: float


def _transaction(db: sqlite3.Connection, body: Callable[[], _T]) -> _T:
    """Run ``body`` in one write transaction; on failure roll back *if sqlite has not already*.

    sqlite rolls a transaction back by itself on SQLITE_FULL, SQLITE_IOERR and friends, and a ROLLBACK then
    fails with "cannot rollback - no transaction is active", which used to hide the real error.
    """
    db.execute("BEGIN IMMEDIATE")
    try:
        result = body()
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            try:
                db.execute("ROLLBACK")
            except sqlite3.Error as rollback_error:  # the original error is the one that matters
                _LOGGER.debug("rollback after a failed transaction failed too: %s", rollback_error)
        raise
    return result


class DurableQueue:
    """A set of named FIFO queues in one sqlite file.

    :param path: the database file (its directory is created, mode 0700, when missing)
    :param on_problem: told when the storage starts or stops failing (see the module docstring); without it
        the queue logs the problem itself, once
    """

    def __init__(self, path: Path, *, on_problem: ProblemCallback | None = None) -> None:
        self.path = path
        self._on_problem = on_problem
        self.problem: str | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._closing = asyncio.Event()
        # group commit: puts waiting for the next transaction, and the task that writes them
        self._puts: list[_Put] = []
        self._put_task: asyncio.Task[None] | None = None
        #: counters: ``put``, ``deleted``, ``recovered`` (found at open), ``storage_errors`` (failed
        #: attempts), ``vacuumed_pages`` (pages given back to the filesystem)
        self.stats: dict[str, int] = {
            "put": 0,
            "deleted": 0,
            "recovered": 0,
            "storage_errors": 0,
            "vacuumed_pages": 0,
        }

    async def open(self) -> None:
        """Open (or create) the database; messages left by a previous run stay queued.

        :raises QueueError: the state directory or the database cannot be used (the message says why)
        """
        self._closing.clear()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sim7020-queue")
        try:
            self.stats["recovered"] = await self._run(self._open_sync)
        except (sqlite3.Error, OSError, Sim7020Error) as err:
            reason = describe_storage_error(err, self.path) if not isinstance(err, Sim7020Error) else err
            raise QueueError(f"cannot open the queue database {self.path}: {reason}") from err

    def _open_sync(self) -> int:
        prepare_state_dir(self.path.parent)
        for suffix in ("-wal", "-shm", "-journal"):
            check_state_file(self.path.with_name(self.path.name + suffix))
        os.close(open_state_file(self.path))  # created 0600, refused when it is a symlink
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA auto_vacuum=INCREMENTAL")  # takes effect on a new database
            if db.execute("PRAGMA auto_vacuum").fetchone()[0] == 0:
                # a database made by an older version: convert it once (it is small when the bridge is idle)
                try:
                    db.execute("VACUUM")
                except sqlite3.Error as err:
                    _LOGGER.warning("cannot convert %s to incremental vacuum (%s); later", self.path, err)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.execute(f"PRAGMA journal_size_limit={QUEUE_WAL_SIZE_LIMIT}")
            db.executescript(_SCHEMA)
            count = int(db.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
        except BaseException:
            db.close()
            raise
        self._db = db
        return count

    async def close(self) -> None:
        """Close the database and stop the I/O thread.

        Puts still waiting for the storage fail with :class:`QueueError` (their messages were never
        acknowledged, so the broker delivers them again to the next run).
        """
        if self._executor is None:
            return
        self._closing.set()
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

    # ------------------------------------------------------------------ running on the I/O thread

    async def _run(self, func: Callable[[], _T]) -> _T:
        """Run ``func`` on the I/O thread; report a problem (and keep waiting) when it takes too long."""
        if self._executor is None:
            raise QueueError("the queue is not open")
        future = asyncio.get_running_loop().run_in_executor(self._executor, func)
        try:
            async with asyncio.timeout(QUEUE_IO_TIMEOUT):
                return await asyncio.shield(future)
        except TimeoutError:
            pass
        self._set_problem(
            f"the disk holding {self.path} does not answer (an operation has been running for"
            f" {QUEUE_IO_TIMEOUT:g} s)"
        )
        result = await future
        self._set_problem(None)
        return result

    async def _retrying(self, func: Callable[[], _T], what: str, *, writes: bool = True) -> _T:
        """Run ``func`` until it succeeds, waiting out storage failures with backoff.

        :param writes: ``func`` writes (its success shows the storage works again; a read's does not)
        :raises QueueError: an error retrying cannot fix, or the queue was closed meanwhile
        """
        backoff = Backoff(QUEUE_RETRY_MIN, QUEUE_RETRY_MAX)
        while True:
            try:
                result = await self._run(func)
            except (sqlite3.Error, OSError, Sim7020Error) as err:
                error = describe_storage_error(err, self.path)
                if not error.storage or self._closing.is_set():
                    raise error from err
                self.stats["storage_errors"] += 1
                self._set_problem(str(error))  # the same words whichever operation met it: said once
                delay = backoff.fail()
                _LOGGER.debug("cannot %s (%s); retrying in %.1f s", what, error, delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._closing.wait()
                if self._closing.is_set():
                    raise QueueError(f"the queue was closed before it could {what}: {error}") from err
                continue
            if writes:
                self._set_problem(None)
            return result

    def _set_problem(self, text: str | None) -> None:
        if text == self.problem:
            return
        previous, self.problem = self.problem, text
        if self._on_problem is not None:
            self._on_problem(text)
        elif text is not None:
            _LOGGER.error("queue storage: %s; retrying with backoff", text)
        elif previous is not None:
            _LOGGER.warning("queue storage works again (%s)", self.path)

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise QueueError("the queue is not open")
        return self._db

    # ------------------------------------------------------------------ operations

    async def put_many(self, queue: str, items: Sequence[tuple[str, bytes]]) -> list[int]:
        """Store messages (topic, payload) at the end of ``queue`` durably (committed when this returns).

        While the storage fails (disk full …) this waits, retrying with backoff.

        :returns: their ids, in order
        :raises QueueError: an error retrying cannot fix, or the queue was closed first (nothing of this
            call was stored)
        """
        if not items:
            return []
        if self._executor is None or self._closing.is_set():
            raise QueueError("the queue is not open")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[int]] = loop.create_future()
        self._puts.append((queue, [(topic, bytes(payload)) for topic, payload in items], done))
        if self._put_task is None or self._put_task.done():
            self._put_task = loop.create_task(self._commit_puts(), name="sim7020-queue-commit")
        return await asyncio.shield(done)  # a cancelled caller does not cancel the others' commit

    async def _commit_puts(self) -> None:
        """Write the waiting puts, one transaction per round, until none are left."""
        while self._puts:
            batch, self._puts = self._puts, []
            count = sum(len(items) for _, items, _ in batch)
            try:
                results = await self._retrying(
                    functools.partial(self._put_sync, batch, time.time()), f"store {count} message(s)"
                )
            except QueueError as err:
                for _, _, done in batch:
                    if not done.done():
                        error = QueueError(
                            f"cannot store messages in {self.path}: {err}", storage=err.storage
                        )
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

        def insert() -> list[list[int]]:
            results: list[list[int]] = []
            for queue, items, _ in batch:
                ids: list[int] = []
                for topic, payload in items:
                    cur = db.execute(
                        "INSERT INTO messages (queue, topic, payload, created) VALUES (?, ?, ?, ?)",
                        (queue, topic, payload, now),
                    )
                    ids.append(int(cur.lastrowid or 0))
                results.append(ids)
            return results

        return _transaction(db, insert)

    async def put(self, queue: str, topic: str, payload: bytes) -> int:
        """Store one message; see :meth:`put_many`."""
        return (await self.put_many(queue, [(topic, payload)]))[0]

    async def peek(self, queue: str, limit: int = 100, *, after: int = 0) -> list[QueuedMessage]:
        """The oldest messages of ``queue`` (ids greater than ``after``), without removing them.

        Waits out storage failures like :meth:`put_many`.
        """

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

        return await self._retrying(_peek, "read queued messages", writes=False)

    async def delete(self, ids: Iterable[int]) -> None:
        """Remove messages (unknown ids are ignored); their space goes back to the filesystem in batches.

        Waits out storage failures like :meth:`put_many`.
        """
        id_list = list(ids)
        if not id_list:
            return

        def _delete() -> None:
            db = self._conn()
            db.execute("PRAGMA synchronous=NORMAL")
            _transaction(
                db, lambda: db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in id_list])
            )

        await self._retrying(_delete, f"delete {len(id_list)} sent message(s)")
        self.stats["deleted"] += len(id_list)
        with contextlib.suppress(
            sqlite3.Error, OSError, QueueError
        ):  # only space: the next delete tries again
            self.stats["vacuumed_pages"] += await self._run(self._vacuum_sync)

    def _vacuum_sync(self) -> int:
        """Give free pages back to the filesystem once there are enough of them; returns how many."""
        db = self._conn()
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        if free < QUEUE_VACUUM_PAGES:
            pages = int(db.execute("PRAGMA page_count").fetchone()[0])
            if free < QUEUE_VACUUM_MIN_PAGES or 2 * free < pages:
                return 0
        # executescript steps the pragma to its end; execute() would free a single page
        db.executescript("PRAGMA incremental_vacuum;")
        # the checkpoint shrinks the database file; TRUNCATE also empties the WAL (it regrows up to its limit)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return free - int(db.execute("PRAGMA freelist_count").fetchone()[0])

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

    async def file_size(self) -> int:
        """Bytes the queue takes on disk (the database and its WAL)."""

        def _size() -> int:
            total = 0
            for suffix in ("", "-wal"):
                with contextlib.suppress(FileNotFoundError):
                    total += self.path.with_name(self.path.name + suffix).stat().st_size
            return total

        return await self._run(_size)
