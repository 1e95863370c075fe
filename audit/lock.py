"""One writer per run directory: an advisory ``flock`` on ``RUN/.lock``.

:func:`unlearn_audit.run_audit` holds the lock from its first write to its return. A
second audit on the same directory fails at once with :class:`RunLockedError`
(a :class:`~audit.config.ConfigError`: the CLI prints ``error: ...`` and exits
with 2), naming the directory and the holder's pid. The operating system
releases an ``flock`` when its process dies, however it dies, so a lock file
left by a killed audit holds no lock: the next audit takes it over and says so.

The lock file is never deleted (deleting a lock file races with a process that
has just opened it); it holds the holder's pid, host and start time while
locked and is emptied on release. The locks are advisory and need a file
system that supports ``flock`` (local disks do; on some network file systems
two hosts may not see each other's lock).
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

from unlearn_audit.audit.config_types import ConfigError
from unlearn_audit.runfiles.names import LOCK_FILE, MODELS_DIR

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; the lock is a no-op there
    fcntl = None  # type: ignore[assignment]


class RunLockedError(ConfigError):
    """Another audit is writing the run directory."""


def _holder(text: str) -> dict[str, Any]:
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return {}
    return info if isinstance(info, dict) else {}


def _describe(info: dict[str, Any]) -> str:
    if not info.get("pid"):
        return "holder unknown"
    where = f" on {info['host']}" if info.get("host") else ""
    since = f", started {info['started']}" if info.get("started") else ""
    return f"pid {info['pid']}{where}{since}"


class RunLock:
    """The exclusive lock of one run directory (a context manager; reentrant ``acquire``).

    ``with RunLock(run)`` acquires at once when ``run`` already exists (so a second
    audit fails before it loads any data) and otherwise leaves it to
    :meth:`acquire`, called before the first file is written (so a rejected
    config leaves no directory behind). Leaving the block releases it.

    Args:
        run_dir: The run directory.
        log: Receives one line when a stale lock (of a killed audit) is taken over
            and when litter of a killed writer is removed.
    """

    def __init__(self, run_dir: Path, log: Callable[[str], None] | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock (no-op when held); raise :class:`RunLockedError` if another has it."""
        if self._fd is not None:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if fcntl is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise RunLockedError(
                        f"{self.run_dir} is in use by another audit ({_describe(self._peer(fd))}); "
                        "wait for it to finish, or give another --out"
                    ) from None
            stale = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip()
            info = {
                "pid": os.getpid(),
                "host": socket.gethostname(),
                "started": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        if stale:
            self.log(
                f"note: {self.path}: taking over the lock of an audit that ended without "
                f"releasing it ({_describe(_holder(stale))}; it was killed or crashed)"
            )
        self._sweep()

    @staticmethod
    def _peer(fd: int) -> dict[str, Any]:
        """The holder's record (it is written just after it locks: retry briefly)."""
        for _ in range(20):
            info = _holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
            if info.get("pid"):
                return info
            time.sleep(0.01)
        return {}

    def _sweep(self) -> None:
        """Remove the temporary files a killed writer left (only the lock holder writes)."""
        litter = [
            p
            for folder in (self.run_dir, self.run_dir / MODELS_DIR)
            if folder.is_dir()
            for p in folder.glob(".*.tmp")
        ]
        for p in litter:
            p.unlink(missing_ok=True)
        if litter:
            self.log(f"note: removed {len(litter)} unfinished temporary file(s) in {self.run_dir}")

    def release(self) -> None:
        """Empty the lock file and drop the lock (no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:  # pragma: no cover - the lock still goes with the descriptor
            pass
        finally:
            os.close(fd)  # closing the descriptor releases the flock

    def __enter__(self) -> RunLock:
        if self.run_dir.is_dir():
            try:
                self.acquire()
            except RunLockedError:
                raise
            except OSError:  # e.g. not writable: the audit's own checks say so; retried later
                pass
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def ensure_idle(run_dir: Path | str) -> None:
    """Raise :class:`RunLockedError` if an audit is writing ``run_dir`` now.

    The readers of a finished run (``unlearn-audit report`` and ``rank``) call it
    first, so they never read, or render from, files an audit is rewriting. It
    takes no lock: a shared ``flock`` is tried and dropped at once. A directory
    without a lock file, or a system without ``flock``, counts as idle.
    """
    path = Path(run_dir) / LOCK_FILE
    if fcntl is None or not path.is_file():
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunLockedError(
                f"{run_dir} is being written by an audit ({_describe(RunLock._peer(fd))}); "
                "wait for it to finish, then run this again"
            ) from None
        fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
