"""Durable message queues in sqlite (WAL), used by the bridge for uplink and downlink data.

An uplink message is written here *before* it is acknowledged to the broker and removed only when the
modem accepted it; downlink data is written here when it arrives from the modem and removed when the
broker acknowledged the publish. A crash at any point therefore loses nothing; it may repeat a message
(counted in :attr:`DurableQueue.stats`).

All sqlite I/O runs on one dedicated writer thread, never on the event loop. Writes are group-committed:
the puts of every route (and the deletes of sent messages) that arrive while a commit is on the disk go in
the next transaction together, committed with ``synchronous=FULL`` (an acknowledged message survives a
power cut), and each caller of :meth:`DurableQueue.put_many` returns only once its own rows are committed,
so many routes share one fsync instead of queueing one each. Deletes do not wait for their commit (a lost
delete only repeats a message); they go with the next commit of puts, or on their own within
:data:`QUEUE_DELETE_DELAY` (a delete-only commit uses ``synchronous=NORMAL``).

What is queued is also kept in memory (a mirror of the stored rows, up to :data:`QUEUE_MEMORY_LIMIT` bytes
of payload), so :meth:`DurableQueue.peek` answers from memory without a trip to the writer thread; only a
backlog larger than that is read back from the disk, a batch at a time. Results come back to the loop in
the order the writer thread produced them, one hand-off per commit, which keeps the mirror exact.

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
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

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
#: Payload bytes of queued messages also kept in memory (past it, a backlog is read back from the disk).
QUEUE_MEMORY_LIMIT = 32 * 1024 * 1024
#: Deletes wait at most this long for a commit of puts to go with (seconds).
QUEUE_DELETE_DELAY = 0.2

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


@dataclass(slots=True)
class _Put:
    """A put waiting for the next group commit: its rows and the caller's future of their ids."""

    queue: str
    items: list[tuple[str, bytes]]
    done: asyncio.Future[list[int]]


@dataclass(slots=True)
class _Mirror:
    """One queue's stored rows kept in memory, oldest first.

    :ivar complete: the rows are every stored row of the queue (not yet deleted); when False, rows with ids
        greater than ``seen`` are on the disk only
    :ivar seen: the greatest id that was ever in ``rows``
    """

    rows: deque[QueuedMessage] = field(default_factory=deque)
    complete: bool = True
    seen: int = 0


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
        self._db: sqlite3.Connection | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._thread_done: asyncio.Future[None] | None = None
        self._open = False
        self._closing = False
        # shared with the writer thread, under _cond: the work it has to do
        self._cond = threading.Condition()
        self._puts: list[_Put] = []
        self._deletes: list[int] = []
        self._calls: list[tuple[Callable[[], Any], asyncio.Future[Any], Callable[[Any], None] | None]] = []
        self._stop = False
        #: when the operation on the writer thread started (None while it waits for work)
        self._busy_since: float | None = None
        self._sync_mode = ""
        # on the loop only
        self._mirrors: dict[str, _Mirror] = {}
        self._where: dict[int, str] = {}  # id of a mirrored row → its queue
        self._mirror_bytes = 0
        self._delete_timer: asyncio.TimerHandle | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        #: counters: ``put``, ``deleted``, ``recovered`` (found at open), ``storage_errors`` (failed
        #: attempts), ``vacuumed_pages`` (pages given back to the filesystem), ``commits`` (group commits)
        self.stats: dict[str, int] = {
            "put": 0,
            "deleted": 0,
            "recovered": 0,
            "storage_errors": 0,
            "vacuumed_pages": 0,
            "commits": 0,
        }

    async def open(self) -> None:
        """Open (or create) the database; messages left by a previous run stay queued.

        :raises QueueError: the state directory or the database cannot be used (the message says why)
        """
        if self._thread is not None:
            await self._stop_thread()
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._stop = False
        self._mirrors.clear()
        self._where.clear()
        self._mirror_bytes = 0
        self._thread_done = self._loop.create_future()
        self._thread = threading.Thread(
            target=self._thread_main, args=(self._loop, self._thread_done), name="sim7020-queue", daemon=True
        )
        self._thread.start()
        try:
            count, rows, incomplete = await self._call(self._open_sync)
        except (sqlite3.Error, OSError, Sim7020Error) as err:
            await self._stop_thread()
            reason = describe_storage_error(err, self.path) if not isinstance(err, Sim7020Error) else err
            raise QueueError(f"cannot open the queue database {self.path}: {reason}") from err
        except BaseException:
            await self._stop_thread()
            raise
        for row in rows:
            self._mirror_append(self._mirror(row.queue), row)
        for name in incomplete:
            self._mirror(name).complete = False
        self.stats["recovered"] = count
        self._open = True

    def _open_sync(self) -> tuple[int, list[QueuedMessage], set[str]]:
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
            self._sync_mode = "FULL"
            db.execute(f"PRAGMA journal_size_limit={QUEUE_WAL_SIZE_LIMIT}")
            # checkpoint (and so restart the WAL, truncated to the limit) well before the WAL reaches it:
            # deletes that do not wait for their commit no longer checkpoint on the way
            page_size = int(db.execute("PRAGMA page_size").fetchone()[0])
            db.execute(f"PRAGMA wal_autocheckpoint={max(16, QUEUE_WAL_SIZE_LIMIT // page_size // 4)}")
            db.executescript(_SCHEMA)
            count = 0
            loaded = 0
            rows: list[QueuedMessage] = []
            incomplete: set[str] = set()
            cursor = db.execute("SELECT id, queue, topic, payload, created FROM messages ORDER BY id")
            for r in cursor:
                count += 1
                if r[1] in incomplete or loaded + len(r[3]) > QUEUE_MEMORY_LIMIT:
                    incomplete.add(r[1])  # this queue's later rows are read back when needed
                    continue
                loaded += len(r[3])
                rows.append(QueuedMessage(int(r[0]), r[1], r[2], bytes(r[3]), float(r[4])))
        except BaseException:
            db.close()
            raise
        self._db = db
        return count, rows, incomplete

    async def close(self) -> None:
        """Commit what waits (deletes included), close the database and stop the writer thread.

        Puts still waiting for the storage fail with :class:`QueueError` (their messages were never
        acknowledged, so the broker delivers them again to the next run).
        """
        if self._thread is None:
            return
        self._open = False
        self._closing = True
        await self._stop_thread()

    async def _stop_thread(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        for timer in (self._delete_timer, self._watchdog):
            if timer is not None:
                timer.cancel()
        self._delete_timer = self._watchdog = None
        done, self._thread, self._thread_done = self._thread_done, None, None
        if done is not None:
            try:
                async with asyncio.timeout(QUEUE_IO_TIMEOUT):
                    await asyncio.shield(done)
            except TimeoutError:  # stuck on a dead disk: do not hang (the thread is a daemon)
                _LOGGER.warning("the queue's writer thread did not stop within %g s", QUEUE_IO_TIMEOUT)

    # ------------------------------------------------------------------ the writer thread

    def _thread_main(self, loop: asyncio.AbstractEventLoop, thread_done: asyncio.Future[None]) -> None:
        try:
            while True:
                with self._cond:
                    while not (self._puts or self._deletes or self._calls or self._stop):
                        self._cond.wait()
                    puts, self._puts = self._puts, []
                    deletes, self._deletes = self._deletes, []
                    calls, self._calls = self._calls, []
                    stop = self._stop
                results: list[Callable[[], None]] = []
                if (puts or deletes) and self._db is not None:
                    self._write(puts, deletes, results)
                elif puts:
                    error = QueueError("the queue is not open")
                    results += [functools.partial(_fail, put.done, error) for put in puts]
                for func, fut, apply in calls:
                    self._busy_since = time.monotonic()
                    try:
                        value = func()
                    except Exception as err:  # noqa: BLE001 - handed to the caller
                        results.append(functools.partial(_fail, fut, err))
                    else:
                        if apply is not None:  # applied in order with the commits around it
                            results.append(functools.partial(apply, value))
                        results.append(functools.partial(_resolve, fut, value))
                    finally:
                        self._busy_since = None
                self._post(results, loop)
                if stop:
                    with self._cond:
                        if not (self._puts or self._deletes or self._calls):
                            break
        finally:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None
            self._post([functools.partial(_resolve, thread_done, None)], loop)

    def _post(self, results: list[Callable[[], None]], loop: asyncio.AbstractEventLoop | None = None) -> None:
        """Hand results to the loop, in the order they were produced (one hand-off)."""
        loop = loop or self._loop
        if not results or loop is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_run_all, results)

    def _write(self, puts: list[_Put], deletes: list[int], results: list[Callable[[], None]]) -> None:
        """One transaction for ``puts`` and ``deletes``; storage failures are retried with backoff."""
        backoff = Backoff(QUEUE_RETRY_MIN, QUEUE_RETRY_MAX)
        count = sum(len(put.items) for put in puts)
        while True:
            self._busy_since = time.monotonic()
            try:
                ids = self._write_once(puts, deletes)
            except (sqlite3.Error, OSError, Sim7020Error) as err:
                error = describe_storage_error(err, self.path)
                if not error.storage:  # the puts fail; the deletes are tried again on their own
                    results += [functools.partial(_fail_put, put, self.path, error) for put in puts]
                    if puts and deletes:
                        self._write([], deletes, results)
                    return
                if self._stop:
                    closed = QueueError(
                        f"the queue was closed before it could store {count} message(s): {error}"
                    )
                    results += [functools.partial(_fail_put, put, self.path, closed) for put in puts]
                    return
                self._post([functools.partial(self._storage_failed, str(error))])  # said now, not later
                delay = backoff.fail()
                _LOGGER.debug("cannot write %d put(s), %d delete(s) (%s); retrying in %.1f s",
                              len(puts), len(deletes), error, delay)  # fmt: skip
                with self._cond:
                    self._cond.wait_for(lambda: self._stop, timeout=delay)
                continue
            finally:
                self._busy_since = None
            break
        vacuumed = 0
        if deletes:
            with contextlib.suppress(sqlite3.Error, OSError):  # only space: the next delete tries again
                vacuumed = self._vacuum_sync()
        results.append(functools.partial(self._written, puts, ids, len(deletes), vacuumed))

    def _write_once(self, puts: list[_Put], deletes: list[int]) -> list[list[int]]:
        db = self._conn()
        mode = "FULL" if puts else "NORMAL"  # a lost delete only repeats a message: no fsync for it
        if mode != self._sync_mode:
            db.execute(f"PRAGMA synchronous={mode}")
            self._sync_mode = mode
        now = time.time()

        def body() -> list[list[int]]:
            results: list[list[int]] = []
            for put in puts:
                ids: list[int] = []
                for topic, payload in put.items:
                    cur = db.execute(
                        "INSERT INTO messages (queue, topic, payload, created) VALUES (?, ?, ?, ?)",
                        (put.queue, topic, payload, now),
                    )
                    ids.append(int(cur.lastrowid or 0))
                results.append(ids)
            if deletes:
                db.executemany("DELETE FROM messages WHERE id = ?", [(i,) for i in deletes])
            return results

        return _transaction(db, body)

    def _vacuum_sync(self) -> int:
        """Give free pages back to the filesystem once there are enough of them; returns how many."""
        db = self._conn()
        free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
        if free < QUEUE_VACUUM_PAGES:
            if free < QUEUE_VACUUM_MIN_PAGES:
                return 0
            pages = int(db.execute("PRAGMA page_count").fetchone()[0])
            if 2 * free < pages:
                return 0
        # executescript steps the pragma to its end; execute() would free a single page
        db.executescript("PRAGMA incremental_vacuum;")
        # the checkpoint shrinks the database file; TRUNCATE also empties the WAL (it regrows up to its limit)
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return free - int(db.execute("PRAGMA freelist_count").fetchone()[0])

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise QueueError("the queue is not open")
        return self._db

    # ------------------------------------------------------------------ back on the loop

    def _written(self, puts: list[_Put], ids: list[list[int]], deleted: int, vacuumed: int) -> None:
        """A commit is on the disk: mirror its rows, then answer the callers (in this order)."""
        self.stats["commits"] += 1
        self.stats["deleted"] += deleted
        self.stats["vacuumed_pages"] += vacuumed
        now = time.time()
        for put, put_ids in zip(puts, ids, strict=True):
            self.stats["put"] += len(put_ids)
            mirror = self._mirror(put.queue)
            for row_id, (topic, payload) in zip(put_ids, put.items, strict=True):
                if mirror.complete and self._mirror_bytes + len(payload) <= QUEUE_MEMORY_LIMIT:
                    self._mirror_append(mirror, QueuedMessage(row_id, put.queue, topic, payload, now))
                else:
                    mirror.complete = False  # on the disk only, read back when its turn comes
            if not put.done.done():
                put.done.set_result(put_ids)
        if self.problem is not None:
            self._set_problem(None)

    def _storage_failed(self, text: str) -> None:
        self.stats["storage_errors"] += 1
        self._set_problem(text)  # the same words whichever operation met it: said once

    def _mirror(self, queue: str) -> _Mirror:
        mirror = self._mirrors.get(queue)
        if mirror is None:
            mirror = self._mirrors[queue] = _Mirror()
        return mirror

    def _mirror_append(self, mirror: _Mirror, row: QueuedMessage) -> None:
        if row.id <= mirror.seen:
            return  # already there (or deleted since)
        mirror.rows.append(row)
        mirror.seen = row.id
        self._where[row.id] = row.queue
        self._mirror_bytes += len(row.payload)

    def _refilled(self, queue: str, wanted: int, rows: list[QueuedMessage]) -> None:
        mirror = self._mirror(queue)
        for row in rows:
            self._mirror_append(mirror, row)
        if len(rows) < wanted:
            mirror.complete = True  # the disk had no more (later puts are mirrored as they commit)

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

    def _arm_watchdog(self) -> None:
        """Say so when an operation on the writer thread takes longer than :data:`QUEUE_IO_TIMEOUT`."""
        if self._watchdog is None and self._loop is not None:
            self._watchdog = self._loop.call_later(QUEUE_IO_TIMEOUT, self._check_stuck)

    def _check_stuck(self) -> None:
        self._watchdog = None
        since = self._busy_since
        if since is not None and time.monotonic() - since >= QUEUE_IO_TIMEOUT:
            self._set_problem(
                f"the disk holding {self.path} does not answer (an operation has been running for"
                f" {QUEUE_IO_TIMEOUT:g} s)"
            )
        if since is not None or self._puts or self._calls:
            self._arm_watchdog()

    def _call(self, func: Callable[[], _T], apply: Callable[[_T], None] | None = None) -> asyncio.Future[_T]:
        """Run ``func`` on the writer thread (after the writes waiting now); ``apply(result)`` runs on the
        loop in order with the commits' results, before the future resolves."""
        if self._thread is None or self._loop is None:
            raise QueueError("the queue is not open")
        fut: asyncio.Future[_T] = self._loop.create_future()
        with self._cond:
            self._calls.append((func, fut, apply))
            self._cond.notify()
        self._arm_watchdog()
        return fut

    def _kick(self) -> None:
        """Let the writer thread commit the deletes waiting for company."""
        self._delete_timer = None
        with self._cond:
            self._cond.notify()

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
        if not self._open or self._loop is None:
            raise QueueError("the queue is not open")
        done: asyncio.Future[list[int]] = self._loop.create_future()
        put = _Put(queue, [(topic, bytes(payload)) for topic, payload in items], done)
        with self._cond:
            self._puts.append(put)
            self._cond.notify()
        self._arm_watchdog()
        return await done  # a cancelled caller does not stop the commit of the others (or its own)

    async def put(self, queue: str, topic: str, payload: bytes) -> int:
        """Store one message; see :meth:`put_many`."""
        return (await self.put_many(queue, [(topic, payload)]))[0]

    async def peek(self, queue: str, limit: int = 100, *, after: int = 0) -> list[QueuedMessage]:
        """The oldest messages of ``queue`` (ids greater than ``after``), without removing them.

        Answered from memory; a backlog larger than :data:`QUEUE_MEMORY_LIMIT` is read back from the disk.
        """
        if not self._open:
            raise QueueError("the queue is not open")
        while True:
            mirror = self._mirror(queue)
            found = list(itertools.islice((m for m in mirror.rows if m.id > after), limit))
            if len(found) >= limit or mirror.complete:
                return found
            wanted = max(limit, 64)
            start = max(mirror.seen, after)
            mirrored = start == mirror.seen

            def read(start: int = start, wanted: int = wanted) -> list[QueuedMessage]:
                rows = (
                    self._conn()
                    .execute(
                        "SELECT id, queue, topic, payload, created FROM messages"
                        " WHERE queue = ? AND id > ? ORDER BY id LIMIT ?",
                        (queue, start, wanted),
                    )
                    .fetchall()
                )
                return [QueuedMessage(int(r[0]), r[1], r[2], bytes(r[3]), float(r[4])) for r in rows]

            if (
                not mirrored
            ):  # past rows the mirror never held (``after`` beyond them): answer, mirror nothing
                return (found + await self._retrying_read(read))[:limit]
            await self._retrying_read(read, functools.partial(self._refilled, queue, wanted))

    async def _retrying_read(self, func: Callable[[], _T], apply: Callable[[_T], None] | None = None) -> _T:
        backoff = Backoff(QUEUE_RETRY_MIN, QUEUE_RETRY_MAX)
        while True:
            try:
                return await self._call(func, apply)
            except (sqlite3.Error, OSError) as err:
                error = describe_storage_error(err, self.path)
                if not error.storage or self._closing:
                    raise error from err
                self._storage_failed(str(error))
                await asyncio.sleep(backoff.fail())

    async def delete(self, ids: Iterable[int]) -> None:
        """Remove messages (unknown ids are ignored); their space goes back to the filesystem in batches.

        Returns at once: the delete goes with the next commit (within :data:`QUEUE_DELETE_DELAY`); a delete
        lost in a crash only repeats a message. While the storage fails it waits there, retried.
        """
        id_list = list(ids)
        if not id_list:
            return
        if not self._open or self._loop is None:
            raise QueueError("the queue is not open")
        for row_id in id_list:
            name = self._where.pop(row_id, None)
            if name is None:
                continue
            mirror = self._mirrors[name]
            if mirror.rows and mirror.rows[0].id == row_id:
                row = mirror.rows.popleft()
            else:
                row = next(m for m in mirror.rows if m.id == row_id)
                mirror.rows.remove(row)
            self._mirror_bytes -= len(row.payload)
        with self._cond:
            self._deletes += id_list
        if self._delete_timer is None:
            self._delete_timer = self._loop.call_later(QUEUE_DELETE_DELAY, self._kick)

    async def count(self, queue: str | None = None) -> int:
        """Number of stored messages (in one queue, or in all), after the deletes made so far."""

        def _count() -> int:
            db = self._conn()
            if queue is None:
                row = db.execute("SELECT COUNT(*) FROM messages").fetchone()
            else:
                row = db.execute("SELECT COUNT(*) FROM messages WHERE queue = ?", (queue,)).fetchone()
            return int(row[0])

        return await self._call(_count)

    async def file_size(self) -> int:
        """Bytes the queue takes on disk (the database and its WAL)."""

        def _size() -> int:
            total = 0
            for suffix in ("", "-wal"):
                with contextlib.suppress(FileNotFoundError):
                    total += self.path.with_name(self.path.name + suffix).stat().st_size
            return total

        return await self._call(_size)


def _run_all(results: list[Callable[[], None]]) -> None:
    for result in results:
        result()


def _resolve(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


def _fail(fut: asyncio.Future[Any], err: BaseException) -> None:
    if not fut.done():
        fut.set_exception(err)


def _fail_put(put: _Put, path: Path, err: QueueError) -> None:
    error = QueueError(f"cannot store messages in {path}: {err}", storage=err.storage)
    error.__cause__ = err
    _fail(put.done, error)
