"""Data usage: the running totals of payload bytes of all a modem's connections, kept in a file.

Where the bytes are counted: :class:`~sim7020_core.connection.Connection` counts its own (``send`` and
``send_to`` once the transport's send succeeded, ``_feed`` for what arrives) and reports each to the modem
(``Modem.data_sent``, ``Modem.data_received``), which adds them here. Every transport, built-in or a third
party's, goes through those methods, so none of them counts anything itself.

The totals live in the process, so a module reboot (which resets the module's own counters) does not touch
them. With ``ModemOptions.usage_file`` they also survive a restart:

* the file is read once when the modem connects, in a worker thread; one that cannot be read, is a symbolic
  link or is not a usage record is logged (one ERROR line naming the file and the reason) and counting starts
  from zero; a corrupt one is first moved aside to ``<name>.corrupt`` so nothing is lost;
* it is written in a worker thread, at most every :data:`~sim7020_core.const.USAGE_SAVE_INTERVAL` while data
  flows (coalesced) and once more when the modem closes; each write goes to a new temporary file (mode 0600,
  created exclusively, so no link is followed) in the same directory, is flushed to disk and then renamed
  over the file: a crash leaves the old or the new totals, never half a file. A write never goes back in time
  (a late write of older totals is skipped).

:class:`~sim7020_core.events.UsageChanged` events are coalesced too: the first change after a quiet second is
published at once, the following ones at most every :data:`~sim7020_core.const.USAGE_EVENT_INTERVAL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import errno
import json
import logging
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import const
from ..events import UsageChanged
from ..models import DataUsage

if TYPE_CHECKING:
    from .core import ModemCore

_LOGGER = logging.getLogger(__name__)

#: The ``format`` field of a usage file this version writes and reads.
USAGE_FILE_FORMAT = 1
USAGE_FILE_MODE = 0o600
#: What a corrupt usage file is renamed to (its name plus this).
CORRUPT_SUFFIX = ".corrupt"


class UsageFileError(Exception):
    """The usage file cannot be used (the message says why); counting starts from zero."""


def read_usage_file(path: Path) -> DataUsage | None:
    """The totals stored in ``path`` (None: there is no such file yet). Blocking: run it in a thread.

    A symbolic link is refused, never followed. A file whose content is not a usage record is moved aside to
    ``<name>.corrupt`` before the error is raised.

    :raises UsageFileError: the file cannot be read, is a link or not a regular file, or is not a usage record
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise UsageFileError("it is a symbolic link, which is not followed (remove the link)") from None
        raise UsageFileError(f"it cannot be read: {err.strerror or err}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UsageFileError("it is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as file:
            raw = file.read(64 * 1024)
    except OSError as err:
        raise UsageFileError(f"it cannot be read: {err.strerror or err}") from None
    finally:
        os.close(fd)
    try:
        return _parse(raw)
    except ValueError as err:
        kept = path.with_name(path.name + CORRUPT_SUFFIX)
        try:
            os.replace(path, kept)
        except OSError as move_err:
            raise UsageFileError(
                f"it is not a usage record ({err}), and it could not be kept aside as {kept.name}:"
                f" {move_err.strerror or move_err}"
            ) from None
        raise UsageFileError(f"it is not a usage record ({err}); it was kept as {kept}") from None


def _parse(raw: bytes) -> DataUsage:
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"not JSON: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {type(data).__name__}")  # noqa: TRY004 - content
    if data.get("format") != USAGE_FILE_FORMAT:
        raise ValueError(f"format must be {USAGE_FILE_FORMAT}, got {data.get('format')!r}")
    return DataUsage(_byte_count(data, "sent_bytes"), _byte_count(data, "received_bytes"))


def _byte_count(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number of bytes >= 0, got {value!r}")
    return value


def write_usage_file(path: Path, usage: DataUsage) -> None:
    """Write ``usage`` to ``path`` atomically (a temporary file renamed over it). Blocking: use a thread.

    :raises OSError: the directory is missing or not writable, the disk is full …
    """
    record: dict[str, Any] = {
        "format": USAGE_FILE_FORMAT,
        "sent_bytes": usage.sent_bytes,
        "received_bytes": usage.received_bytes,
        "updated": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    data = (json.dumps(record, indent=2) + "\n").encode()
    directory = path.parent
    # mkstemp: O_CREAT | O_EXCL (a planted link is never followed), mode 0600
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.chmod(tmp_name, USAGE_FILE_MODE)
        os.replace(tmp_name, path)  # replaces a link itself, never its target
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp_name)
        raise
    with contextlib.suppress(OSError):  # the rename is durable once the directory is flushed
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class UsageMeter:
    """The running totals of one modem (see the module docstring).

    :param core: the modem's shared state (events, state, status)
    :param path: ``ModemOptions.usage_file`` (None: nothing is kept)
    """

    def __init__(self, core: ModemCore, path: str | os.PathLike[str] | None) -> None:
        self._core = core
        self.path = Path(path) if path is not None else None
        self.usage = DataUsage()
        self._loaded = False  # the file was read (or found unusable): writing it loses nothing
        self._version = 0  # bumped with every change
        self._saved_version = 0  # what the file holds (or a write in flight will)
        self._written_version = 0  # what the last finished write held (guarded by _write_lock)
        self._write_lock = threading.Lock()
        self._last_event = -float("inf")
        self._event_handle: asyncio.TimerHandle | None = None
        self._save_handle: asyncio.TimerHandle | None = None
        self._writing: asyncio.Task[None] | None = None
        self._closed = False
        self._write_error: str | None = None

    # ------------------------------------------------------------------ counting

    def count(self, sent: int = 0, received: int = 0) -> None:
        """Add ``sent``/``received`` payload bytes to the totals; schedule the event and the save."""
        if sent <= 0 and received <= 0:
            return
        self.usage = self.usage.plus(max(sent, 0), max(received, 0))
        self._version += 1
        self._schedule_event()
        self._schedule_save()

    # ------------------------------------------------------------------ the event, coalesced

    def _schedule_event(self) -> None:
        if self._event_handle is not None or self._closed:
            return
        loop = asyncio.get_running_loop()
        wait = self._last_event + const.USAGE_EVENT_INTERVAL - loop.time()
        if wait <= 0:
            self._emit()
        else:
            self._event_handle = loop.call_later(wait, self._emit)

    def _emit(self) -> None:
        self._event_handle = None
        self._last_event = asyncio.get_running_loop().time()
        core = self._core
        core.emit(UsageChanged(usage=self.usage, state=core.state, status=core.status))

    # ------------------------------------------------------------------ the file

    async def load(self) -> None:
        """Read the file (once; in a worker thread) and start from its totals; an unusable file is logged
        and counting starts from zero. Bytes counted before are kept on top."""
        if self.path is None or self._loaded:
            return
        path = self.path
        try:
            async with asyncio.timeout(const.USAGE_FILE_TIMEOUT):
                stored = await asyncio.to_thread(read_usage_file, path)
        except UsageFileError as err:
            _LOGGER.error(
                "modem %s: usage file %s: %s; counting data usage from zero", self._core.url, path, err
            )
            stored = None
        except TimeoutError:
            _LOGGER.error(
                "modem %s: usage file %s: not read within %g s; counting data usage from zero",
                self._core.url,
                path,
                const.USAGE_FILE_TIMEOUT,
            )
            stored = None
        self._loaded = True
        if stored is not None:
            self.usage = stored.plus(self.usage.sent_bytes, self.usage.received_bytes)
            _LOGGER.debug("modem %s: data usage so far %s (from %s)", self._core.url, stored, path)
        if self._version > self._saved_version:
            self._schedule_save()

    def _schedule_save(self) -> None:
        if self.path is None or not self._loaded or self._closed or self._save_handle is not None:
            return
        loop = asyncio.get_running_loop()
        self._save_handle = loop.call_later(const.USAGE_SAVE_INTERVAL, self._start_save)

    def _start_save(self) -> None:
        self._save_handle = None
        if self._writing is not None:  # one write at a time; _written schedules the next
            return
        self._writing = asyncio.get_running_loop().create_task(self._save(), name=f"usage-save {self.path}")
        self._writing.add_done_callback(self._written)

    def _written(self, task: asyncio.Task[None]) -> None:
        self._writing = None
        if not task.cancelled() and task.exception() is not None:
            _LOGGER.error("modem %s: saving the data usage failed", self._core.url, exc_info=task.exception())
        if self._version > self._saved_version:
            self._schedule_save()

    async def _save(self) -> None:
        """Write the totals now if they changed since the last write (in a worker thread; failures logged)."""
        path = self.path
        if path is None or not self._loaded or self._version == self._saved_version:
            return
        version, usage = self._version, self.usage
        self._saved_version = version
        try:
            async with asyncio.timeout(const.USAGE_FILE_TIMEOUT):
                await asyncio.to_thread(self._write, path, version, usage)
        except (OSError, TimeoutError) as err:
            self._saved_version = min(self._saved_version, version - 1)  # tried again after the interval
            reason = "timed out" if isinstance(err, TimeoutError) else (err.strerror or str(err))
            if reason != self._write_error:  # one line per distinct problem, not one per save
                self._write_error = reason
                _LOGGER.warning("modem %s: cannot write the usage file %s: %s", self._core.url, path, reason)
            return
        if self._write_error is not None:
            _LOGGER.warning("modem %s: the usage file %s is written again", self._core.url, path)
            self._write_error = None

    def _write(self, path: Path, version: int, usage: DataUsage) -> None:
        """In the worker thread: write, unless a newer version was written meanwhile."""
        with self._write_lock:
            if version <= self._written_version:
                return
            write_usage_file(path, usage)
            self._written_version = version

    async def close(self) -> None:
        """Publish a pending event, stop the timers and write the final totals (bounded)."""
        if self._closed:
            return
        self._closed = True
        if self._event_handle is not None:
            self._event_handle.cancel()
            self._emit()
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        if self._writing is not None:
            await asyncio.wait([self._writing])  # never cancelled half-way: it is bounded
        await self._save()


__all__ = ["UsageFileError", "UsageMeter", "read_usage_file", "write_usage_file"]
