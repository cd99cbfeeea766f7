"""No SQL and no synchronous Redis call on the event loop during a warm request, with Redis on.

test_zero_sql.py proves the hot path runs no SQL without Redis. In production Redis is
configured and the request path talks to it on every request: the key's rate limits and the
candidates' shared state (one Lua call, which also takes a lone candidate), the instance
acquire otherwise (Lua), the release (in-flight, latency, circuit breaker) and the usage
event, buffered and pipelined as XADD to the usage stream by the flusher task. All of that
must go through ``redis.asyncio``: one synchronous redis-py call on the loop thread stalls
every request the process is serving for a full round trip (or a whole socket timeout while
Redis is slow).

How it is checked: spies on redis-py's connection layer, the place every command goes through
whatever the client API (commands, pipelines, Lua, connection set-up):

* the synchronous ``redis.connection.AbstractConnection`` (connect, send, read): a call made
  while the calling thread runs an event loop is a blocking call on the loop; calls from plain
  threads (``asyncio.to_thread``, ``sync_to_async``) are noted but allowed;
* the asyncio ``redis.asyncio.connection.AbstractConnection.send_packed_command``: the commands
  really sent, so the test also proves Redis was used (a Redis error silently degrades the
  request path to per-process state, which would make "no sync call" vacuous).

SQL is checked as in test_zero_sql.py (this thread's connection and every thread's cursors),
and the usage events must have reached the Redis stream, none of them spooled.
"""

from __future__ import annotations

import asyncio
import re
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from unittest import mock

import httpx
import pytest
import redis
import redis.asyncio
import redis.asyncio.connection
import redis.connection
from django.conf import settings

from gateway.routing.table import RouteTable
from gateway.usage.budget_state import budget_state
from gateway.usage.budgets import CHECKED_KEY
from gateway.usage.events import get_usage_queue, set_usage_queue
from gateway.usage.queues import RedisStreamUsageQueue
from providers import circuit
from providers.redis_conn import reset_clients
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import (
    InProcessGateway,
    all_threads_queries,
    check_hot_responses,
    hot_requests,
)

# Requests per call of ``hot_requests()`` that produce a usage event (the two /v1/models don't).
USAGE_EVENTS_PER_RUN = 5
# The start of each command in a packed (RESP) command buffer: "*<n>\r\n$<len>\r\n<NAME>\r\n".
_COMMAND = re.compile(rb"\*\d+\r\n\$\d+\r\n([A-Za-z]+)\r\n")


def _on_event_loop() -> bool:
    """Does the calling thread run an event loop right now?"""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


@dataclass
class RedisCalls:
    """What went through redis-py's connection layer while :func:`redis_spies` was active."""

    sync_on_loop: list[str] = field(default_factory=list)  # blocking calls: "method + stack"
    sync_off_loop: list[str] = field(default_factory=list)  # "[thread] method"
    async_commands: list[str] = field(default_factory=list)  # command names, upper case
    lock: threading.Lock = field(default_factory=threading.Lock)

    def async_command_set(self) -> set[str]:
        with self.lock:
            return set(self.async_commands)


@contextmanager
def redis_spies() -> Iterator[RedisCalls]:
    """Record every redis-py connection-level call, sync (split by: on a loop or not) and async."""
    calls = RedisCalls()
    sync_cls = redis.connection.AbstractConnection
    async_cls = redis.asyncio.connection.AbstractConnection

    def sync_spy(name: str) -> Callable[..., Any]:
        original = getattr(sync_cls, name)

        def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
            where = threading.current_thread().name
            with calls.lock:
                if _on_event_loop():
                    stack = "".join(traceback.format_stack(limit=25)[:-1])
                    calls.sync_on_loop.append(f"[{where}] sync {name}\n{stack}")
                else:
                    calls.sync_off_loop.append(f"[{where}] sync {name}")
            return original(self, *args, **kwargs)

        return spy

    original_send = async_cls.send_packed_command

    async def async_send(self: Any, command: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(command, str):
            data = command.encode()
        elif isinstance(command, bytes | bytearray | memoryview):
            data = bytes(command)
        else:
            data = b"".join(bytes(chunk) for chunk in command)
        names = [m.decode().upper() for m in _COMMAND.findall(data)] or ["?"]
        with calls.lock:
            calls.async_commands.extend(names)
        return await original_send(self, command, *args, **kwargs)

    with (
        mock.patch.object(sync_cls, "connect_check_health", sync_spy("connect_check_health")),
        mock.patch.object(sync_cls, "send_packed_command", sync_spy("send_packed_command")),
        mock.patch.object(sync_cls, "read_response", sync_spy("read_response")),
        mock.patch.object(async_cls, "send_packed_command", async_send),
    ):
        yield calls


# --- configuration ---------------------------------------------------------------------------


@dataclass
class World:
    keys: dict[str, str]
    vkey_ids: dict[str, int]
    provider_ids: dict[str, int]
    queue: RedisStreamUsageQueue
    redis_url: str

    def sync_client(self) -> redis.Redis:
        return redis.Redis.from_url(self.redis_url)


@pytest.fixture
def world(
    with_redis: str,
    install_table: Callable[[], RouteTable],
    fake_upstream: FakeUpstream,
    gateway: InProcessGateway,
    settings: Any,
) -> Iterator[World]:
    """Redis-backed gateway: limits on keys and instances, a budget, the Redis usage stream."""
    # Budget state as in production with Redis: the budget task has published its set, so the
    # gateway reads it from Redis (without this marker it would compute spend in SQL). A long
    # refresh interval keeps background refreshes out of the measured run; the test refreshes
    # explicitly instead.
    settings.GATEWAY_BUDGET_REFRESH_SECONDS = 3600.0
    client = redis.Redis.from_url(with_redis)
    client.set(CHECKED_KEY, "test")
    client.close()
    budget_state.reset()
    circuit.local_state_clear()

    limits: dict[str, Any] = {"requests_per_minute": 100_000, "tokens_per_minute": 100_000_000}
    mock_inst = make_provider("mock-inst", "mock", **limits)
    upstream = make_provider("fake-inst", "openai", upstream_url=fake_upstream.url, **limits)
    make_mapping("mock-chat", mock_inst)
    make_mapping("up-chat", upstream)
    make_mapping("up-embed", upstream, "fake-embed", supports_chat=False, supports_embeddings=True)
    rows = {
        "plain": make_vkey("plain"),
        "limited": make_vkey("limited", **limits),
        "budgeted": make_vkey("budgeted", budget_amount=Decimal("100.00")),
    }
    install_table()

    # install_table put an in-memory queue in place: drop it, so that the queue is the one the
    # settings choose (REDIS_URL is set: the Redis stream queue).
    set_usage_queue(None)
    reset_clients()
    queue = get_usage_queue()
    assert isinstance(queue, RedisStreamUsageQueue), type(queue)
    yield World(
        keys={name: plaintext for name, (_, plaintext) in rows.items()},
        vkey_ids={name: row.id for name, (row, _) in rows.items()},
        provider_ids={"mock": mock_inst.id, "upstream": upstream.id},
        queue=queue,
        redis_url=with_redis,
    )
    # Stop the flusher and release the spool on the loop that ran them (gateway closes later).
    if not gateway.loop.is_closed():
        gateway.loop.run_until_complete(queue.aclose())
    set_usage_queue(None)
    budget_state.reset()
    circuit.local_state_clear()


async def all_keys_and_flush(client: httpx.AsyncClient, world: World) -> list[list[httpx.Response]]:
    """Every key's requests, then what a running gateway does in the background meanwhile:
    the usage flusher's XADDs (awaited to the end: ``aclose`` lets the flusher finish its
    batch, then flushes the rest) and a budget state refresh."""
    out = [await hot_requests(client, key) for key in world.keys.values()]
    await world.queue.aclose()
    await budget_state.refresh()
    return out


def shared_state(client: redis.Redis, world: World) -> dict[str, float]:
    """Counters the request path keeps in Redis: requests counted in the rate-limit windows
    (every window key still alive) and each instance breaker's last success."""

    def window_total(pattern: str) -> float:
        return sum(float(client.get(key) or 0) for key in client.scan_iter(pattern))

    out = {"key rpm": window_total(f"gw:{{v:{world.vkey_ids['limited']}}}:rl:r:*")}
    for name, pid in world.provider_ids.items():
        out[f"{name} rpm"] = window_total(f"gw:{{i:{pid}}}:rl:r:*")
        out[f"{name} breaker last_success"] = float(
            client.hget(circuit.circuit_key(pid), "last_success") or 0
        )
    return out


def _fmt(lines: list[str]) -> str:
    return "\n\n".join(lines)


def test_warm_requests_with_redis_run_no_sql_and_no_sync_redis_on_the_loop(
    world: World,
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    django_assert_num_queries: Callable,
) -> None:
    # Cold start (budget state, connection pools, scripts loaded into Redis), then measure.
    for responses in gateway.run(lambda c: all_keys_and_flush(c, world)):
        check_hot_responses(responses)
    stream = settings.GATEWAY_USAGE_STREAM
    redis_client = world.sync_client()  # used from this thread only while no loop runs
    before = redis_client.xlen(stream)
    assert before == USAGE_EVENTS_PER_RUN * len(world.keys)
    upstream_before = len(fake_upstream.requests())
    shared = shared_state(redis_client, world)

    with (
        redis_spies() as calls,
        all_threads_queries() as queries,
        django_assert_num_queries(0),
    ):
        runs = gateway.run(lambda c: all_keys_and_flush(c, world))

    for responses in runs:
        check_hot_responses(responses)
    assert len(fake_upstream.requests()) - upstream_before == 3 * len(world.keys)
    assert queries == []
    assert calls.sync_on_loop == [], (
        "synchronous Redis call(s) on the event loop thread during a warm request:\n"
        + _fmt(calls.sync_on_loop)
    )
    # Redis really carried the request path (a Redis error would have degraded it to
    # per-process state without failing any request).
    assert circuit.redis_usable()
    sent = calls.async_command_set()
    assert {"EVAL", "EVALSHA"} & sent, sorted(sent)  # routing state: limits, acquire, release
    assert {"XADD", "SMEMBERS"} <= sent, sorted(sent)  # usage stream, budget state
    # Every usage event of the measured run is in the stream; none went to the local spool.
    assert redis_client.xlen(stream) - before == USAGE_EVENTS_PER_RUN * len(world.keys)
    assert world.queue.spool.size == 0 and len(world.queue) == 0
    # The measured run moved the shared routing state in Redis: both rate limits' counters
    # and each instance's breaker (its last success).
    after = shared_state(redis_client, world)
    for name, value in after.items():
        assert value > shared[name], (name, shared[name], value)
    redis_client.close()


def test_the_harness_flags_sync_redis_on_the_loop_only(with_redis: str) -> None:
    """A sync call from a coroutine is flagged; the same call from a plain thread (or from
    ``asyncio.to_thread``) is not; an async call is counted as async."""
    sync_client = redis.Redis.from_url(with_redis)

    async def blocking_on_the_loop() -> None:
        sync_client.ping()

    async def off_the_loop_and_async() -> None:
        await asyncio.to_thread(sync_client.ping)
        async_client = redis.asyncio.Redis.from_url(with_redis)
        await async_client.ping()
        await async_client.aclose()

    with redis_spies() as calls:
        asyncio.run(blocking_on_the_loop())
    assert calls.sync_on_loop, "the spy missed a sync Redis call made on the event loop"
    assert "sync send_packed_command" in _fmt(calls.sync_on_loop)
    assert "blocking_on_the_loop" in _fmt(calls.sync_on_loop)  # the stack names the culprit

    with redis_spies() as calls:
        worker = threading.Thread(target=sync_client.ping, name="plain-worker")
        worker.start()
        worker.join()
        asyncio.run(off_the_loop_and_async())
    assert calls.sync_on_loop == []
    assert any(c.startswith("[plain-worker] sync send_packed_command") for c in calls.sync_off_loop)
    assert len(calls.sync_off_loop) >= 2  # the plain thread's and to_thread's
    assert "PING" in calls.async_command_set()
    sync_client.close()
