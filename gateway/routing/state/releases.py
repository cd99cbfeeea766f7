"""Redis calls on the request path, sent in batches: the releases that end attempts, and the
route-view and acquire scripts of the requests served at once (:class:`ScriptBatch`).

A release (``lua/release.lua``: in-flight down, latency average, circuit outcome, the
instance's token window corrected) and the key's token correction are queued here instead of
being awaited. The usage flusher (:class:`~gateway.usage.queues.RedisStreamUsageQueue`) takes
what is queued into the pipeline that carries its ``XADD``s, so with Redis a request shares
its route-view round trip with the requests that made theirs in the same turn of the event
loop, and its release with every request that ended in the same linger. A timer flushes on
its own what the usage flusher did not carry (usage written to the database, usage spooled
while Redis is down) after twice the linger.

Staleness: another process sees a success's release at most ``2 *
GATEWAY_USAGE_LINGER_SECONDS`` (plus one round trip) after the attempt ended, usually within
one linger. A failure (``ok=False``: it counts toward the circuit) is sent at once, with
whatever is queued, and awaited: the breaker stays as prompt across processes as before. A
linger of 0 sends every release at once, as before batching.

The pipeline is not transactional (each command routes on its own keys, as Redis Cluster
needs) and the script runs by EVALSHA; a Redis that does not know the script yet gets it
loaded and only the refused commands again. A Redis Cluster pipeline reports a node's
timeout or lost connection per command, without the retry a lone command gets: such a release
runs again on its own. Any other Redis error applies the batch to the in-process twin (the
same fallback as an unbatched release), never to the caller.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import redis
from django.conf import settings

from gateway.routing.state.local_backend import local_routing
from gateway.routing.state.windows import instance_key, window_keys, window_ttl
from providers.circuit import CIRCUIT_LUA, circuit_key, redis_failed, shared_async
from providers.redis_conn import lua_source

logger = logging.getLogger(__name__)

RELEASE_LUA = "\n".join((CIRCUIT_LUA, lua_source("gateway.routing.state", "release.lua")))
# EVALSHA inside a pipeline: the script's id, as redis-py's Script computes it.
RELEASE_SHA = hashlib.sha1(RELEASE_LUA.encode(), usedforsecurity=False).hexdigest()


def release_call(
    provider_id: int,
    now: float,
    ok: bool | None,
    latency_ms: float | None,
    alpha: float,
    failure_threshold: int,
    recovery_timeout: float,
    delta: int,
) -> tuple[list[str], bytes]:
    """Step 3 (``lua/release.lua``): its KEYS and ARGV[1], sent batched by ``releases.py``."""
    fields: dict[str, object] = {
        "alpha": alpha,
        "now": repr(now),  # a string: stored as is in the breaker
        "threshold": failure_threshold,
        "recovery": recovery_timeout,
        "delta": delta,
        "ttl": window_ttl(),
    }
    # Absent, not null: cjson decodes null to a value that is true in Lua.
    if latency_ms is not None:
        fields["latency"] = latency_ms
    if ok is not None:
        fields["ok"] = ok
    tokens_window = window_keys("p", provider_id, now)[2]
    keys = [instance_key(provider_id), circuit_key(provider_id), tokens_window]
    return keys, orjson.dumps(fields)


@dataclass(slots=True)
class PendingRelease:
    """One attempt's ``release.lua`` call, and the same step for the in-process twin."""

    keys: list[str]
    args: bytes
    local: tuple[Any, ...]  # local_routing.release's arguments

    def queue(self, pipe: Any) -> int:
        # execute_command, not pipe.evalsha: redis-py's cluster pipeline refuses the named
        # method, while the command itself routes by its keys (one slot: the instance's tag).
        pipe.execute_command("EVALSHA", RELEASE_SHA, len(self.keys), *self.keys, self.args)
        return 1

    def apply_locally(self) -> None:
        local_routing.release(*self.local)

    async def run_alone(self, client: Any) -> None:
        """The call on its own, with the client's retries (it loads the script if needed)."""
        await client.register_script(RELEASE_LUA)(self.keys, (self.args,))


@dataclass(slots=True)
class PendingTokens:
    """A key's token window corrected by ``actual - estimated``."""

    vkey_id: int
    delta: int
    now: float

    @property
    def key(self) -> str:
        """The key's current tokens window."""
        return window_keys("k", self.vkey_id, self.now)[2]

    def queue(self, pipe: Any) -> int:
        key = self.key
        pipe.incrby(key, self.delta)
        pipe.expire(key, window_ttl())
        return 2

    def apply_locally(self) -> None:
        local_routing.key_tokens_add(self.vkey_id, self.delta, self.now)

    async def run_alone(self, client: Any) -> None:
        """The commands on their own, with the client's retries."""
        key = self.key
        await client.incrby(key, self.delta)
        await client.expire(key, window_ttl())


Pending = PendingRelease | PendingTokens


class Carried:
    """Releases taken into someone's pipeline: queue them, then settle with its results."""

    __slots__ = ("ops", "widths")

    def __init__(self, ops: list[Pending]) -> None:
        self.ops = ops
        self.widths: list[int] = []

    def queue(self, pipe: Any) -> int:
        """Add the commands to ``pipe``; the number of results they take (first in order)."""
        self.widths = [op.queue(pipe) for op in self.ops]
        return sum(self.widths)

    def fallback(self, exc: BaseException) -> None:
        """The pipeline failed: whether or not Redis applied them, the twin gets them."""
        if self.ops and isinstance(exc, Exception):
            redis_failed(exc)
        for op in self.ops:
            op.apply_locally()

    async def settle(self, results: list[Any], client: Any) -> None:
        """Check the results (``execute(raise_on_error=False)``): NOSCRIPT ones are sent
        again after loading the script (they did not run); a timeout or a lost connection
        reported for one op runs that op again on its own; other errors fall back."""
        if not any(isinstance(result, Exception) for result in results):
            return  # the usual case: every op applied
        retry: list[Pending] = []
        alone: list[Pending] = []
        failed: list[Pending] = []
        error: BaseException | None = None
        i = 0
        for op, width in zip(self.ops, self.widths, strict=True):
            errors = [r for r in results[i : i + width] if isinstance(r, Exception)]
            i += width
            if not errors:
                continue
            if isinstance(errors[0], redis.exceptions.NoScriptError):
                retry.append(op)
            elif isinstance(errors[0], _RUN_ALONE):
                alone.append(op)
            else:
                failed.append(op)
                error = errors[0]
        for op in alone:
            # A Redis Cluster pipeline reports a node's timeout or lost connection per command
            # and, unlike a lone command, does not retry it (run_script does the same). Like
            # a lone command's retry, it may apply twice if the first reply was only lost.
            try:
                await op.run_alone(client)
            except redis.RedisError as exc:
                failed.append(op)
                error = exc
        if error is not None:
            Carried(failed).fallback(error)
        if retry:
            try:
                await client.script_load(RELEASE_LUA)
            except redis.RedisError as exc:
                Carried(retry).fallback(exc)
                return
            await send(client, retry)


async def send(client: Any, ops: list[Pending]) -> None:
    """Send ``ops`` in one pipeline of their own; never raises a Redis error."""
    carried = Carried(ops)
    pipe = client.pipeline(transaction=False)
    carried.queue(pipe)
    try:
        results = await pipe.execute(raise_on_error=False)
    except redis.RedisError as exc:
        carried.fallback(exc)
        return
    await carried.settle(list(results), client)


class ReleaseQueue:
    """The process's queued releases, flushed by the usage flusher or by its own timer."""

    def __init__(self) -> None:
        self._pending: list[Pending] = []
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self._flushes: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._pending)

    async def add(self, op: Pending, *, urgent: bool = False) -> None:
        """Queue ``op``; ``urgent`` (a failure) or a linger of 0: send everything now."""
        self._pending.append(op)
        linger = settings.GATEWAY_USAGE_LINGER_SECONDS
        if urgent or linger <= 0:
            await self.flush()
            return
        loop = asyncio.get_running_loop()
        if self._timer is None or self._timer_loop is not loop or self._timer.cancelled():
            self._timer_loop = loop
            self._timer = loop.call_later(2 * linger, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._pending:
            task = asyncio.get_running_loop().create_task(self.flush())
            # Keep a reference until done: the loop holds tasks only weakly.
            self._flushes.add(task)
            task.add_done_callback(self._flushes.discard)

    def take(self) -> Carried:
        """Everything queued, for a pipeline someone else sends (see :class:`Carried`)."""
        ops, self._pending = self._pending, []
        return Carried(ops)

    async def flush(self) -> None:
        """Send everything queued now, in one pipeline (the twin gets it without Redis)."""
        carried = self.take()
        if not carried.ops:
            return
        client = shared_async()
        if client is None:
            for op in carried.ops:
                op.apply_locally()
            return
        await send(client, carried.ops)

    def clear(self) -> None:
        """Forget what is queued (tests)."""
        self._pending = []
        self._timer = None


release_queue = ReleaseQueue()


async def releases_flush() -> None:
    """Send the queued releases now (process shutdown; tests that read state directly)."""
    await release_queue.flush()


@dataclass(slots=True)
class ScriptCall:
    """One hot-path script call waiting for its turn's pipeline."""

    sha: str
    keys: list[str]
    args: bytes
    future: asyncio.Future[Any]


class ScriptBatch:
    """The script calls made in one turn of the event loop, sent in one pipeline per client.

    Why: the requests a worker serves at once make their route-view calls within a turn or
    two of each other; one pipeline for all of them is one write, one read and one wakeup of
    Redis instead of one each. With 8 requests in flight per worker that took the bench's
    c=16 throughput from 2,833 to 3,322 requests/s (README, "Performance"). The first call
    of a turn schedules the send with ``call_soon``, so every request already runnable in that
    turn adds its call first; a lone request waits one loop hop. Each script still runs
    atomically on its own, and the pipeline is not a transaction, as separate calls would be.
    """

    def __init__(self) -> None:
        self._calls: dict[Any, list[ScriptCall]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sends: set[asyncio.Task[None]] = set()

    def submit(self, client: Any, sha: str, keys: list[str], args: bytes) -> asyncio.Future[Any]:
        """Queue one EVALSHA on ``client``; the future gets its reply (errors as values) or
        the exception that failed the whole pipeline."""
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests): nothing queued on the old one runs
            self._loop, self._calls = loop, {}
        if not self._calls:
            loop.call_soon(self._start)
        future: asyncio.Future[Any] = loop.create_future()
        self._calls.setdefault(client, []).append(ScriptCall(sha, keys, args, future))
        return future

    def _start(self) -> None:
        batches, self._calls = self._calls, {}
        assert self._loop is not None
        for client, calls in batches.items():
            task = self._loop.create_task(_send_calls(client, calls))
            # Keep a reference until done: the loop holds tasks only weakly.
            self._sends.add(task)
            task.add_done_callback(self._sends.discard)


def _queue_calls(pipe: Any, calls: list[ScriptCall]) -> None:
    for call in calls:
        # execute_command, not pipe.evalsha: see PendingRelease.queue.
        pipe.execute_command("EVALSHA", call.sha, len(call.keys), *call.keys, call.args)


async def _send_calls(client: Any, calls: list[ScriptCall]) -> None:
    """Send ``calls`` (with the queued releases ahead of them) and hand out the replies.

    Every future is settled whatever happens: a request awaiting one must never hang."""
    try:
        results = await execute_with_releases(client, lambda pipe: _queue_calls(pipe, calls))
        if len(results) != len(calls):
            raise redis.exceptions.RedisError(
                f"pipeline answered {len(results)} replies for {len(calls)} scripts"
            )
    except BaseException as exc:
        for call in calls:
            if call.future.done():
                continue
            if isinstance(exc, Exception):
                call.future.set_exception(exc)
            else:
                call.future.cancel()
        if not isinstance(exc, Exception):
            raise
        return  # the callers have it; raising here would only log "never retrieved"
    for call, result in zip(calls, results, strict=True):
        if not call.future.done():  # its request may have gone away meanwhile
            call.future.set_result(result)


script_batch = ScriptBatch()

#: Replies that :func:`run_script` answers by running the call again on its own.
_RUN_ALONE = (
    redis.exceptions.NoScriptError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ConnectionError,
)


async def run_script(client: Any, script: Any, keys: list[str], args: bytes) -> Any:
    """Run a registered ``script`` (redis-py ``AsyncScript``) on ``client`` in this turn's
    pipeline (:class:`ScriptBatch`), with the queued releases ahead of it: the process reads
    its own releases, and they cost no round trip of their own. Raises what the script
    raises."""
    result = await script_batch.submit(client, script.sha, keys, args)
    if isinstance(result, _RUN_ALONE):
        # NOSCRIPT: loads it, then runs it. A timeout or a lost connection as this call's
        # reply (a cluster pipeline reports a node's failure per command and, unlike a lone
        # command, does not retry it): the call on its own, with the client's retries.
        return await script(keys, (args,))
    if isinstance(result, Exception):
        raise result
    return result


async def execute_with_releases(client: Any, add: Callable[[Any], object]) -> list[Any]:
    """Send one non-transactional pipeline: the queued releases first, then what ``add`` puts
    in it; settle the releases and return ``add``'s results (errors as values). A pipeline
    that fails as a whole hands the releases to the in-process twin and raises."""
    carried = release_queue.take()
    pipe = client.pipeline(transaction=False)
    n = carried.queue(pipe)
    add(pipe)
    try:
        results = await pipe.execute(raise_on_error=False)
    except BaseException as exc:
        carried.fallback(exc)
        raise
    await carried.settle(results[:n], client)
    return list(results[n:])
