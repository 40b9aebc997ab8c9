"""The bridge's state directory: created private, checked, and its files never opened through a symlink.

The state directory holds the durable queue (queued payloads: sensor data, commands to devices) and the
lock file. A directory other users can write to would let them plant a symbolic link named like one of our
files (``queue.sqlite3 -> /home/bridge/.bashrc``) and have the bridge write sqlite pages through it. So:

* a missing state directory is created with mode 0700;
* an existing one must belong to the bridge's user (or root) and must not be writable by group or others
  (the bridge refuses to start and says which ``chmod``/``chown`` fixes it); one readable by others is
  accepted with a warning (queued payloads are readable);
* every state file is opened with ``O_NOFOLLOW`` (a symlink is refused, never followed), must be a regular
  file, and is created — or tightened, when an older version left it wider — with mode 0600. sqlite creates
  its ``-wal``/``-shm`` files with the mode of the database file, so those are 0600 too.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
from pathlib import Path

from ..exceptions import Sim7020Error

_LOGGER = logging.getLogger(__name__)

STATE_DIR_MODE = 0o700
STATE_FILE_MODE = 0o600


class StateDirError(Sim7020Error):
    """The state directory or one of its files is unsafe or cannot be used."""


def prepare_state_dir(path: Path) -> None:
    """Create ``path`` (mode 0700, parents as needed) or check that an existing one is private enough.

    :raises StateDirError: not a directory, owned by another user, or writable by group/others
    """
    try:
        path.mkdir(mode=STATE_DIR_MODE, parents=True, exist_ok=True)
    except OSError as err:
        raise StateDirError(f"cannot create the state directory {path}: {err.strerror or err}") from err
    problem = check_state_dir(path)
    if problem is not None:
        raise StateDirError(f"the state directory {path} {problem}")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & (stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH):
        _LOGGER.warning(
            "the state directory %s is readable by other users (mode %04o): queued payloads can be read;"
            " 'chmod 700 %s' makes it private",
            path,
            mode,
            path,
        )


def check_state_dir(path: Path) -> str | None:
    """What makes the existing directory ``path`` unsafe as a state directory (None: nothing)."""
    try:
        info = path.stat()  # a symlinked state directory is the administrator's choice: judge its target
    except OSError as err:
        return f"cannot be read: {err.strerror or err}"
    if not stat.S_ISDIR(info.st_mode):
        return "is not a directory"
    if info.st_uid not in (os.geteuid(), 0):
        return (
            f"belongs to user id {info.st_uid}, not to the bridge's user ({os.geteuid()}); chown it or"
            " choose another state_dir"
        )
    mode = stat.S_IMODE(info.st_mode)
    if mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (
            f"is writable by other users (mode {mode:04o}): they could replace the queue with a link to"
            f" another file; run 'chmod 700 {path}'"
        )
    return None


def open_state_file(path: Path, *, create: bool = True) -> int:
    """Open a state file read-write without following a symlink; create it with mode 0600.

    An existing file with a wider mode is narrowed to 0600. The caller closes the descriptor.

    :param create: create the file when it is missing (else a missing file raises FileNotFoundError)
    :raises StateDirError: the name is a symbolic link or not a regular file
    :raises OSError: any other reason the file cannot be opened (missing with ``create=False`` …)
    """
    flags = os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC | (os.O_CREAT if create else 0)
    try:
        fd = os.open(path, flags, STATE_FILE_MODE)
    except OSError as err:
        if err.errno == errno.ELOOP:
            raise StateDirError(
                f"{path} is a symbolic link; the bridge does not follow links in its state directory"
                " (remove the link)"
            ) from None
        raise
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode) and stat.S_IMODE(info.st_mode) & ~STATE_FILE_MODE:
            os.fchmod(fd, STATE_FILE_MODE)
    except BaseException:
        os.close(fd)
        raise
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        raise StateDirError(f"{path} is not a regular file")
    return fd


def check_state_file(path: Path) -> None:
    """Refuse ``path`` if it is a symlink or not a regular file; narrow an existing file to 0600.

    For files another library creates by name (sqlite's ``-wal``/``-shm``): nothing happens when missing.

    :raises StateDirError: a symbolic link or not a regular file
    """
    with contextlib.suppress(FileNotFoundError):
        os.close(open_state_file(path, create=False))
