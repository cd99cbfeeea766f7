"""A write-ahead journal of the usage events a process still holds in memory.

Why: the usage queue lingers (``GATEWAY_USAGE_LINGER_SECONDS``) so that one pipeline carries a
batch; a process killed with SIGKILL (the OOM killer, ``kill -9``, a runtime that gave up
waiting) lost the events of that window, i.e. requests it had answered without a usage
record. Every event is now also written to this process's journal before its answer leaves.
A ``write()`` lands in the kernel's page cache, which outlives the process, so a killed
process loses nothing; only a machine crash (power, kernel panic) can still lose the last
moments, which an fsync per request would close at the price of a disk flush per answer.

The journal is two segment files beside the spool files (``<host>-<pid>-<random>.wal``), each
created and ``flock``'d like a spool file. The flusher seals the current segment (new events
go to the other one), hands on everything buffered, and then empties the sealed segment:
its events were delivered or spooled (and the spool is fsync'd). The segments of a dead
process are orphans, adopted like its spool (:func:`~gateway.usage.spool.orphans_claim`) by
the gateway's next start or the drain task; they may hold events that were also delivered,
which the recorder's idempotent insert (one record per request id) absorbs.

A journal that cannot be written (a read-only ``STATE_DIR``, a full disk) logs once and
stops journaling: the request path never fails for it. Writes happen on the event loop (a
page-cache append of ~1 KB); emptying and closing too, being as cheap.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from gateway.usage.spool import JOURNAL_SUFFIX, create_locked, spool_dir

logger = logging.getLogger(__name__)


class Journal:
    """This process's two journal segments, created on first use."""

    def __init__(self, directory: Path | None = None) -> None:
        self.directory = directory or spool_dir()
        self._paths: list[Path | None] = [None, None]
        self._fds: list[int | None] = [None, None]
        self._current = 0
        self.broken = False

    def _fd(self, index: int) -> int:
        fd = self._fds[index]
        if fd is None:
            self._paths[index], fd = create_locked(self.directory, JOURNAL_SUFFIX)
            self._fds[index] = fd
        return fd

    def write(self, payload: bytes) -> None:
        """Append one event (a JSON line) to the current segment; never raises."""
        if self.broken:
            return
        try:
            fd = self._fd(self._current)
            data = payload + b"\n"
            while data:  # a regular file takes it whole unless the disk is full
                data = data[os.write(fd, data) :]
        except OSError:
            self.broken = True
            logger.exception(
                "usage journal: cannot write under %s; events lingering in memory are not "
                "journaled until restart (a SIGKILL could lose them)",
                self.directory,
            )

    def seal(self) -> int:
        """Send later events to the other segment; the sealed segment's index."""
        sealed = self._current
        self._current ^= 1
        return sealed

    def clear(self, index: int) -> None:
        """Empty a sealed segment whose events were all handed on (or spooled)."""
        fd = self._fds[index]
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
        except OSError:
            logger.exception("usage journal: cannot empty a segment (its events may repeat)")

    def close(self) -> None:
        """Remove both segments (their events were handed on: called after the last flush)."""
        for index, fd in enumerate(self._fds):
            path = self._paths[index]
            if fd is None:
                continue
            if path is not None:
                path.unlink(missing_ok=True)  # while still locked: no one adopts it meanwhile
            with contextlib.suppress(OSError):
                os.close(fd)
            self._fds[index] = self._paths[index] = None
