"""Durable usage queues for the hot path: ``put()`` appends to memory and returns at once.

A background task on the process's event loop hands buffered events on in batches:

* :class:`RedisStreamUsageQueue` pipelines ``XADD`` to the usage stream (the drain task
  records them), the default when ``REDIS_URL`` is set;
* :class:`DatabaseUsageQueue` writes UsageRecords itself (batches on the database thread), the
  default without Redis (demo, single process).

Whatever the target did not confirm goes to the process's local spool file (fsync'd, in a
thread) and is re-sent, oldest first, once the target answers again. :meth:`aclose` (lifespan
shutdown) flushes the buffer and spools what it cannot send, so a rolling restart loses
nothing; the write-ahead journal (:mod:`gateway.usage.journal`) covers what is still in the
buffer when the process is killed without a shutdown. Called outside an event loop (a
management command, a sync view), ``put()`` hands the event on synchronously instead.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import threading
import time
from typing import Any

import orjson
import redis
from django.conf import settings

from gateway.monitoring.metrics import metrics_publish, usage_event_observe
from gateway.routing.state.releases import execute_with_releases
from gateway.usage.events import UsageEvent
from gateway.usage.journal import Journal
from gateway.usage.spool import Spool, orphans_claim
from providers.db_thread import run_db
from providers.redis_conn import async_redis, sync_redis

logger = logging.getLogger(__name__)

BATCH = 1000
_FIELD = b"e"


class BufferedUsageQueue:
    """Buffer + background flusher + spool; subclasses say how a batch is delivered."""

    target = "?"

    def __init__(self) -> None:
        # Events serialized once, at put(): the journal and the delivery send the same bytes.
        self._buffer: collections.deque[bytes] = collections.deque()
        self.spool = Spool()
        self.journal = Journal(self.spool.directory)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wakeup: asyncio.Event | None = None
        self._stopping = False
        self._down_until = 0.0
        self._sync_lock = threading.Lock()

    # --- delivery, per target -----------------------------------------------------------

    async def deliver(self, payloads: list[bytes]) -> None:
        """Hand ``payloads`` (JSON events) to the target or raise."""
        raise NotImplementedError

    def deliver_sync(self, payloads: list[bytes]) -> None:
        raise NotImplementedError

    # --- the hot path -------------------------------------------------------------------

    def put(self, event: UsageEvent) -> None:
        """Accept ``event`` without blocking the event loop (journaled before it returns)."""
        payload = orjson.dumps(event)
        self._buffer.append(payload)
        usage_event_observe(event)  # Prometheus request series, tallied (never raises)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush_sync()
            return
        self.journal.write(payload)
        self._ensure_task(loop)
        assert self._wakeup is not None
        self._wakeup.set()

    def __len__(self) -> int:
        return len(self._buffer)

    def _ensure_task(self, loop: asyncio.AbstractEventLoop) -> None:
        # A task is bound to its loop: tests (and re-created loops) get a fresh flusher.
        if self._task is not None and self._loop is loop and not self._task.done():
            return
        self._loop = loop
        self._stopping = False
        self._wakeup = asyncio.Event()
        self._task = loop.create_task(self._run(), name=f"usage-flusher-{self.target}")

    async def start(self) -> None:
        """Start the flusher (lifespan startup) and adopt spools of dead processes."""
        self._ensure_task(asyncio.get_running_loop())
        await self._adopt_orphans()

    async def aclose(self) -> None:
        """Flush everything (spooling what cannot be sent), stop the flusher, release the spool.

        The flusher is asked to stop, not cancelled: cancelling it mid-send could drop the
        batch it holds.
        """
        task = self._task
        if task is not None and not task.done() and self._loop is asyncio.get_running_loop():
            self._stopping = True
            assert self._wakeup is not None
            self._wakeup.set()
            await task
        await self.flush()
        if self.spool.size:
            await self._resend_spool()
        await asyncio.to_thread(self.spool.close)
        self.journal.close()  # everything journaled was handed on or spooled
        self._task = None

    async def _run(self) -> None:
        assert self._wakeup is not None
        wakeup = self._wakeup
        while True:
            # asyncio.timeout, not wait_for: 3.11's wait_for can hang when cancelled (loop
            # shutdown) while its timeout fires.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(settings.GATEWAY_USAGE_FLUSH_SECONDS):
                    await wakeup.wait()
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                # On 3.11 an external cancel racing the timeout can surface as TimeoutError
                # (suppressed above); honour the cancel or the loop would never finish.
                raise asyncio.CancelledError
            wakeup.clear()
            linger = settings.GATEWAY_USAGE_LINGER_SECONDS
            if linger > 0 and not self._stopping and len(self._buffer) < BATCH:
                # Let a few more events join the batch: woken per event, the flusher sent one
                # XADD round trip per request (like Kafka's linger.ms, measured in README
                # "Performance"). The journal keeps this window through a SIGKILL.
                await asyncio.sleep(linger)
            try:
                await self.flush()
            except Exception:  # never let the flusher die: events would pile up silently
                logger.exception("usage flusher (%s) failed; retrying", self.target)
                await asyncio.sleep(0.5)
            if self._stopping:
                return

    # --- flushing -----------------------------------------------------------------------

    def _take(self) -> list[bytes]:
        n = min(BATCH, len(self._buffer))
        return [self._buffer.popleft() for _ in range(n)]

    async def flush(self) -> None:
        """Send everything buffered now (and, when the target is back, what was spooled)."""
        if self.spool.size and time.monotonic() >= self._down_until:
            await self._resend_spool()
        # Every event buffered so far is in the sealed segment; events put while this flush
        # awaits go to the other one (and are taken below too, which only repeats them there).
        sealed = self.journal.seal()
        while self._buffer:
            # The request series of the events about to be handed on (tallied at put()),
            # published before each batch: an event put while an earlier batch was being
            # sent is taken by this flush too, and a scrape must never see it recorded but
            # not counted.
            metrics_publish()
            payloads = self._take()
            try:
                await self._send(payloads)
            except BaseException:
                # Cancelled (loop shutting down without lifespan) or worse: the events were
                # popped, so put them on disk before giving up.
                self.spool.append(payloads)
                raise
        self.journal.clear(sealed)

    async def _send(self, payloads: list[bytes]) -> None:
        if time.monotonic() < self._down_until or self.spool.size:
            # The target failed recently (or older events still wait): keep order and don't
            # pay a timeout per batch; the next flush after the pause retries.
            await asyncio.to_thread(self.spool.append, payloads)
            return
        try:
            await self.deliver(payloads)
        except Exception as exc:
            self._mark_down(exc, len(payloads))
            await asyncio.to_thread(self.spool.append, payloads)

    def _mark_down(self, exc: BaseException, n: int) -> None:
        if time.monotonic() >= self._down_until:
            logger.warning(
                "usage queue (%s) unavailable, spooling %d events locally: %s",
                self.target,
                n,
                exc,
            )
        self._down_until = time.monotonic() + settings.GATEWAY_USAGE_RETRY_SECONDS

    async def _resend_spool(self) -> bool:
        lines, nbytes = await asyncio.to_thread(self.spool.read)
        try:
            for i in range(0, len(lines), BATCH):
                await self.deliver(lines[i : i + BATCH])
        except Exception as exc:
            # Partly delivered chunks are sent again later: recording is idempotent.
            self._mark_down(exc, len(lines))
            return False
        await asyncio.to_thread(self.spool.consume, nbytes)
        logger.info("usage queue (%s) back: re-sent %d spooled events", self.target, len(lines))
        return True

    async def _adopt_orphans(self) -> None:
        """Deliver spools left by dead processes on this host (crash, kill -9)."""

        def adopt() -> list[bytes]:
            taken: list[bytes] = []
            for orphan in orphans_claim(self.spool.directory):
                lines = orphan.lines()
                # Copy into our own (locked, fsync'd) spool before deleting theirs: no window
                # in which the events exist nowhere on disk.
                self.spool.append(lines)
                orphan.remove()
                taken.extend(lines)
            return taken

        taken = await asyncio.to_thread(adopt)
        if taken:
            logger.info(
                "usage queue (%s): adopted %d orphan spooled events", self.target, len(taken)
            )
            await self._resend_spool()

    def flush_sync(self) -> None:
        """Synchronous flush for callers without an event loop (may block briefly)."""
        with self._sync_lock:
            while self._buffer:
                metrics_publish()  # as flush() does, before each batch
                payloads = self._take()
                try:
                    self.deliver_sync(payloads)
                except Exception as exc:
                    self._mark_down(exc, len(payloads))
                    self.spool.append(payloads)


class RedisStreamUsageQueue(BufferedUsageQueue):
    """Appends events to the Redis usage stream; the drain task records them."""

    target = "redis"

    def _xadd_all(self, pipe: Any, payloads: list[bytes]) -> None:
        stream = settings.GATEWAY_USAGE_STREAM
        # XADD <stream> MAXLEN ~ <n> * e <event>, as pipe.xadd(..., approximate=True) sends
        # it, without re-checking and re-assembling the same arguments for every event.
        head = ("XADD", stream, "MAXLEN", "~", settings.GATEWAY_USAGE_STREAM_MAXLEN, "*", _FIELD)
        for payload in payloads:
            pipe.execute_command(*head, payload)

    async def deliver(self, payloads: list[bytes]) -> None:
        """XADD ``payloads``; the routing releases queued meanwhile ride the same pipeline
        (first, so a failing XADD cannot hide their results; they never raise here)."""
        client = async_redis()
        if client is None:
            raise redis.ConnectionError("REDIS_URL is not set")
        # The process's queued routing releases ride the same round trip.
        results = await execute_with_releases(client, lambda pipe: self._xadd_all(pipe, payloads))
        for result in results:
            if isinstance(result, Exception):
                raise result

    def deliver_sync(self, payloads: list[bytes]) -> None:
        client = sync_redis()
        if client is None:
            raise redis.ConnectionError("REDIS_URL is not set")
        pipe = client.pipeline(transaction=False)
        self._xadd_all(pipe, payloads)
        pipe.execute()


class DatabaseUsageQueue(BufferedUsageQueue):
    """Writes UsageRecords in process (no Redis): batches of bulk inserts on the process's
    database thread (:mod:`providers.db_thread`: one connection, not one per executor thread)."""

    target = "database"

    async def deliver(self, payloads: list[bytes]) -> None:
        await run_db(self.deliver_sync, payloads)

    def deliver_sync(self, payloads: list[bytes]) -> None:
        from django.db import close_old_connections

        from gateway.usage.recorder import usage_lines_record

        # Also called on the caller's thread (flush_sync): drop a connection that went bad.
        close_old_connections()
        usage_lines_record(lines=payloads)
