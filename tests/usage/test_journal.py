"""The usage write-ahead journal: events still lingering in a process's memory survive its
SIGKILL (``tests/e2e/test_usage_journal.py``); a flush empties what it handed on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson

from gateway.monitoring.scrape import spool_bytes
from gateway.usage.queues import BufferedUsageQueue
from gateway.usage.spool import spool_dir
from tests.usage.conftest import event


def journaled(directory: Path | None = None) -> list[str]:
    """Request ids in every journal segment under the spool directory, in file order."""
    ids: list[str] = []
    for path in sorted((directory or spool_dir()).glob("*.wal")):
        ids += [orjson.loads(line)["request_id"] for line in path.read_bytes().splitlines()]
    return ids


class GatedQueue(BufferedUsageQueue):
    """Delivers to a list, each delivery waiting for ``gate``; no background flusher (the test
    flushes by hand, so it decides what is in flight when)."""

    target = "test"

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()

    def _ensure_task(self, loop: asyncio.AbstractEventLoop) -> None:
        self._wakeup = self._wakeup or asyncio.Event()

    async def deliver(self, payloads: list[bytes]) -> None:
        await self.gate.wait()
        self.delivered += [orjson.loads(p)["request_id"] for p in payloads]


def test_flush_empties_what_it_handed_on_and_keeps_what_came_meanwhile() -> None:
    queue = GatedQueue()
    first = [event() for _ in range(3)]
    later = [event() for _ in range(2)]

    async def run() -> None:
        for e in first:
            queue.put(e)
        assert journaled() == [e.request_id for e in first]
        assert spool_bytes() == 0  # the journal is not a backlog of undeliverable events

        queue.gate.clear()
        flushing = asyncio.create_task(queue.flush())
        await asyncio.sleep(0.01)  # the first batch is in delivery
        for e in later:
            queue.put(e)
        queue.gate.set()
        await flushing
        # The sealed segment (the first three) was emptied; the two put during the delivery
        # were delivered by the same flush but stay journaled until the next one.
        assert queue.delivered == [e.request_id for e in first + later]
        assert journaled() == [e.request_id for e in later]

        await queue.flush()
        assert journaled() == []
        await queue.aclose()

    asyncio.run(run())
    assert list(spool_dir().glob("*.wal")) == []  # shutdown removes the segments


def test_unwritable_state_dir_never_fails_a_request(settings: Any, tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    settings.STATE_DIR = blocker  # the spool directory cannot be created under a file
    queue = GatedQueue()
    events = [event() for _ in range(3)]

    async def run() -> None:
        for e in events:
            queue.put(e)  # must not raise
        await queue.flush()

    asyncio.run(run())
    assert queue.journal.broken
    assert queue.delivered == [e.request_id for e in events]
