"""One training process per run dir: an OS lock on ``RUN_DIR/.lock``, held while the run lives.

The kernel lets go of the lock when the process ends, however it ends (SIGKILL included), so a
lock that is free never means a run is still going. The file keeps the holder's pid and host,
for the error a second process gets, and stays behind when the run is over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from seqlab.errors import SettingError

LOCK_FILE = ".lock"


class RunLock:
    """The lock on one run dir, held by this process until :meth:`release` or its exit.

    A process trains one run at a time (a basic-launcher sweep trains its jobs one after
    another), so taking the lock on a run dir lets go of the one this process held before.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, run_dir: str | Path, key: str, value: Any) -> RunLock:
        """Take ``run_dir``'s lock, or raise SettingError(key, value, ...) naming its holder.

        ``key`` and ``value`` are the setting that chose the dir (``resume``, or
        ``paths.output_dir``), so the error names what to change.
        """
        global _held
        path = Path(run_dir) / LOCK_FILE
        if _held is not None and _held.holds(path):
            return _held  # this process trains here already (resumed in the same process)
        Path(run_dir).mkdir(parents=True, exist_ok=True)
        try:
            # O_NOFOLLOW and the regular-file check: a .lock put there by someone else is never
            # a way to write elsewhere; O_NONBLOCK: a FIFO there cannot hang the open
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
        except OSError as err:
            raise SettingError(key, value, f"cannot open {path}: {err.strerror}") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SettingError(key, value, f"{path} is not a regular file")
            locked = _take(fd)
            if locked is None:
                raise SettingError(key, value, f"{path} cannot be locked on this file system")
            if not locked:
                raise _refusal(key, value, fd)
            # only now, holding the lock, is the file ours to rewrite
            os.ftruncate(fd, 0)
            os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname()}).encode())
        except BaseException:
            os.close(fd)
            raise
        if _held is not None:
            _held.release()
        _held = cls(path, fd)
        return _held

    def holds(self, path: Path) -> bool:
        try:
            return self._fd is not None and os.path.samefile(self.path, path)
        except OSError:
            return False

    def release(self) -> None:
        global _held
        if self._fd is not None:
            os.close(self._fd)  # closing the last descriptor of the open file ends the lock
            self._fd = None
        if _held is self:
            _held = None


_held: RunLock | None = None


def _forget_in_child() -> None:
    # A child forked while the lock is held (a DataLoader worker) shares the open file, and a
    # flock lasts while any descriptor of it is open: closed here, the lock ends with the
    # process that took it, even if a worker outlives it for a moment. The child's release()
    # then does nothing, so it can never close a descriptor that has since been reused.
    global _held
    if _held is not None and _held._fd is not None:
        with contextlib.suppress(OSError):
            os.close(_held._fd)
        _held._fd = None
    _held = None


os.register_at_fork(after_in_child=_forget_in_child)


def check_free(run_dir: str | Path, key: str, value: Any) -> None:
    """Raise the SettingError :meth:`RunLock.acquire` would if another process holds
    ``run_dir``'s lock now; creates and writes nothing, so it can come before any setting is
    checked."""
    path = Path(run_dir) / LOCK_FILE
    if _held is not None and _held.holds(path):
        return
    with _opened(path) as fd:
        if fd is not None and _try_lock(fd, fcntl.LOCK_SH) is False:
            raise _refusal(key, value, fd)  # unknown (None): acquire() will tell


def lock_state(run_dir: str | Path) -> Literal["held", "free"] | None:
    """Whether a process holds ``run_dir``'s lock now; None where there is no usable .lock."""
    with _opened(Path(run_dir) / LOCK_FILE) as fd:
        locked = None if fd is None else _try_lock(fd, fcntl.LOCK_SH)
    if locked is None:
        return None
    return "free" if locked else "held"


@contextlib.contextmanager
def _opened(path: Path) -> Iterator[int | None]:
    """``path`` opened to read, or None where it is missing or not a regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        yield None
        return
    try:
        yield fd if stat.S_ISREG(os.fstat(fd).st_mode) else None
    finally:
        os.close(fd)  # a shared probe's lock ends here


def _try_lock(fd: int, kind: int) -> bool | None:
    """Whether the lock was taken; False: another process holds it; None: no locks here."""
    try:
        fcntl.flock(fd, kind | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:  # a file system without flock (some network mounts)
        return None
    return True


def _take(fd: int) -> bool | None:
    # a reader's probe (lock_state) holds a shared lock for a moment: waited out, not refused
    for _ in range(20):
        locked = _try_lock(fd, fcntl.LOCK_EX)
        if locked is not False:
            return locked
        time.sleep(0.01)
    return False


def _refusal(key: str, value: Any, fd: int) -> SettingError:
    """The error naming the holder, from what it wrote in the lock file."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0))
        pid, host = holder["pid"], holder["host"]
    except (OSError, ValueError, TypeError, KeyError):
        pid = host = None  # the holder has not written it yet, or it was not written by seqlab
    named = isinstance(pid, int) and isinstance(host, str)
    who = f"another process (pid {pid} on {host})" if named else "another process"
    return SettingError(key, value, f"{who} is training in this run dir")
