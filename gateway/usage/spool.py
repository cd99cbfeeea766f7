"""A local append-only spool for usage events the queue could not hand over.

One file per process (``STATE_DIR/usage-spool/<host>-<pid>-<random>.jsonl``), one JSON event
per line, fsync'd before ``append`` returns. The owning process holds an exclusive ``flock``
on its file for as long as it lives: a file whose lock can be taken belongs to a dead process
(an "orphan") and may be adopted by another process (the gateway at startup, the drain task).
Locks die with their process, so no pid bookkeeping can go stale. The write-ahead journal's
segments (:mod:`gateway.usage.journal`, ``.wal``) live beside the spools, locked the same
way, and are adopted the same way.

Nothing here is async: callers on the event loop run these methods in a thread.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings

logger = logging.getLogger(__name__)

SUFFIX = ".jsonl"
#: The write-ahead journal's segments: adopted like spools, but not a backlog (not counted
#: as spooled bytes by the metrics).
JOURNAL_SUFFIX = ".wal"


def spool_dir() -> Path:
    return Path(settings.STATE_DIR) / "usage-spool"


def split_lines(data: bytes) -> list[bytes]:
    """Non-empty lines; a torn last line (the writer died mid-write) is dropped with a log."""
    lines = data.split(b"\n")
    tail = lines.pop()  # b"" when the data ends with a newline
    if tail:
        logger.error("usage spool: dropping a torn last line of %d bytes", len(tail))
    return [line for line in lines if line]


def create_locked(directory: Path, suffix: str) -> tuple[Path, int]:
    """A new file of this process (``<host>-<pid>-<random><suffix>``), opened for appending
    and exclusively locked for as long as the process lives: (its path, its descriptor)."""
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    # Create and lock under a name orphan scanners ignore, then rename: a scanner can never
    # take the lock of a file that is about to be written.
    tmp = directory / (name + ".tmp")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    path = directory / (name + suffix)
    os.rename(tmp, path)
    return path, fd


class Spool:
    """This process's spool file, created (and locked) on first use."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or spool_dir()
        self.path: Path | None = None
        self._fd: int | None = None
        self._lock = threading.Lock()
        self.size = 0  # bytes spooled and not yet consumed (only this process writes the file)

    def _open(self) -> int:
        if self._fd is None:
            self.path, self._fd = create_locked(self.directory, SUFFIX)
        return self._fd

    def append(self, lines: list[bytes]) -> None:
        """Write ``lines`` durably (fsync) before returning."""
        if not lines:
            return
        data = b"".join(line + b"\n" for line in lines)
        with self._lock:
            fd = self._open()
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
            self.size += len(data)

    def read(self) -> tuple[list[bytes], int]:
        """Everything spooled so far, and how many bytes that was (for :meth:`consume`)."""
        with self._lock:
            if self._fd is None or self.size == 0:
                return [], 0
            size = os.fstat(self._fd).st_size
            data = os.pread(self._fd, size, 0)
        # Only complete lines are handed out; a partial line stays for the next read.
        end = data.rfind(b"\n") + 1
        return split_lines(data[:end]), end

    def consume(self, nbytes: int) -> None:
        """Drop the first ``nbytes`` (delivered), keeping anything appended since the read."""
        with self._lock:
            if self._fd is None or nbytes <= 0:
                return
            size = os.fstat(self._fd).st_size
            tail = os.pread(self._fd, size - nbytes, nbytes) if size > nbytes else b""
            # Crash between truncate and write loses nothing that was not delivered: the tail
            # is rewritten before this returns, and delivered lines are idempotent anyway.
            os.ftruncate(self._fd, 0)
            if tail:
                os.write(self._fd, tail)
            os.fsync(self._fd)
            self.size = len(tail)

    def close(self) -> None:
        """Release the file; an empty file is removed, a non-empty one is left for adoption."""
        with self._lock:
            if self._fd is None:
                return
            if os.fstat(self._fd).st_size == 0 and self.path is not None:
                self.path.unlink(missing_ok=True)
            os.close(self._fd)  # releases the flock
            self._fd = None
            self.path = None
            self.size = 0


class OrphanSpool:
    """A dead process's spool file, locked by us while we deliver it."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd = fd

    def lines(self) -> list[bytes]:
        size = os.fstat(self._fd).st_size
        return split_lines(os.pread(self._fd, size, 0))

    def remove(self) -> None:
        """Delivered: delete the file (while still holding its lock), then release it."""
        self.path.unlink(missing_ok=True)
        self.release()

    def release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def orphans_claim(directory: Path | None = None) -> Iterator[OrphanSpool]:
    """Yield the spool files and journal segments whose owner is gone, each locked until
    removed or released."""
    directory = directory or spool_dir()
    if not directory.is_dir():
        return
    paths = [*directory.glob("*" + SUFFIX), *directory.glob("*" + JOURNAL_SUFFIX)]
    for path in sorted(paths):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # adopted and removed by another process meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)  # its owner is alive
            continue
        if not path.exists():  # removed between our open and our lock
            os.close(fd)
            continue
        orphan = OrphanSpool(path, fd)
        try:
            yield orphan
        finally:
            orphan.release()
