"""Routing releases queued and sent with the usage flush (``gateway.routing.state.releases``).

Redis is read back by clients that do not share the gateway's queue (a sync client, a second
Python process), as another gateway process would see it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings

from gateway.routing import state as routing_state
from gateway.routing.state import ACQUIRE_OK, Lease
from gateway.routing.state.local_backend import local_routing
from gateway.routing.state.releases import release_queue
from gateway.routing.state.windows import instance_key
from gateway.usage.events import set_usage_queue
from gateway.usage.lifespan import usage_shutdown
from gateway.usage.queues import RedisStreamUsageQueue
from providers import circuit
from providers.circuit import CircuitState, circuit_key
from providers.redis_conn import reset_clients, sync_redis
from tests.usage.conftest import RedisServer, event


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    routing_state.local_clear()
    yield
    routing_state.local_clear()


def inflight_in_redis(pid: int) -> int:
    client = sync_redis()
    assert client is not None
    return int(client.hget(instance_key(pid), "inflight") or 0)


async def take(pid: int, n: int) -> list[Lease]:
    taken = await asyncio.gather(
        *(routing_state.instance_acquire(pid, rpm=None, tpm=None, est_tokens=1) for _ in range(n))
    )
    assert {code for code, _ in taken} == {ACQUIRE_OK}
    return [lease for _, lease in taken if lease is not None]


def test_burst_releases_ride_the_usage_pipeline_and_inflight_returns_to_zero(
    with_redis: str,
) -> None:
    queue = RedisStreamUsageQueue()

    async def scenario() -> None:
        leases = await take(21, 30)
        assert inflight_in_redis(21) == 30
        await asyncio.gather(*(lease.release(ok=True, latency_ms=12.0) for lease in leases))
        assert len(release_queue) == 30  # queued: no round trip per release
        queue.put(event())
        await queue.flush()  # one pipeline: the 30 releases and the XADD
        assert len(release_queue) == 0
        assert inflight_in_redis(21) == 0
        client = sync_redis()
        assert client is not None
        assert float(client.hget(instance_key(21), "ewma") or 0) == 12.0
        assert client.xlen(settings.GATEWAY_USAGE_STREAM) == 1
        await queue.aclose()
        reset_clients()

    asyncio.run(scenario())


def test_releases_reach_redis_on_their_own_without_a_usage_flush(with_redis: str) -> None:
    async def scenario() -> None:
        leases = await take(22, 5)
        for lease in leases:
            await lease.release(ok=True)
        assert len(release_queue) == 5
        for _ in range(1000):  # the timer's flush, after twice the linger
            if inflight_in_redis(22) == 0:
                break
            await asyncio.sleep(settings.GATEWAY_USAGE_LINGER_SECONDS)
        assert inflight_in_redis(22) == 0 and len(release_queue) == 0
        reset_clients()

    asyncio.run(scenario())


def test_the_process_reads_its_own_queued_releases(with_redis: str) -> None:
    async def scenario() -> None:
        [lease] = await take(23, 1)
        await lease.release(ok=True)
        assert len(release_queue) == 1
        view = await routing_state.route_view_read(
            alias="m", provider_groups={23: ()}, round_robin=False, consume_key=False
        )
        # Sent ahead of the view in its pipeline: seen here and by everyone else.
        assert len(release_queue) == 0
        assert view.instances[23].inflight == 0 and inflight_in_redis(23) == 0
        reset_clients()

    asyncio.run(scenario())


def test_a_failure_opens_the_breaker_for_a_second_process_at_once(with_redis: str) -> None:
    async def scenario() -> None:
        [lease] = await take(24, 1)
        await lease.release(ok=False, failure_threshold=1, recovery_timeout=60)
        assert len(release_queue) == 0  # a failure is not batched
        reset_clients()

    asyncio.run(scenario())
    # Another process: no gateway code, only Redis.
    script = "import redis,sys; print(redis.Redis.from_url(sys.argv[1]).hget(sys.argv[2], 'state'))"
    out = subprocess.run(
        [sys.executable, "-c", script, with_redis, circuit_key(24)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == f"b'{CircuitState.OPEN.value}'"


def test_releases_pending_at_shutdown_are_flushed(with_redis: str) -> None:
    set_usage_queue(RedisStreamUsageQueue())

    async def scenario() -> None:
        leases = await take(25, 3)
        for lease in leases:
            await lease.release(ok=True, actual_tokens=40)
        await routing_state.key_tokens_correct(9, 17)
        assert len(release_queue) == 4
        await usage_shutdown()  # what the ASGI lifespan runs at shutdown
        assert len(release_queue) == 0
        reset_clients()

    asyncio.run(scenario())
    assert inflight_in_redis(25) == 0
    assert circuit.circuit_info_all_sync([25])[25].last_success is not None


def test_redis_down_mid_batch_falls_back_locally_and_spools_usage(
    private_redis: RedisServer, caplog: Any
) -> None:
    queue = RedisStreamUsageQueue()

    async def queued() -> None:
        [lease] = await take(26, 1)
        await lease.release(ok=True, latency_ms=30.0)
        assert len(release_queue) == 1
        reset_clients()

    asyncio.run(queued())
    private_redis.stop()

    async def flush() -> None:
        queue.put(event())
        await queue.flush()  # no exception: the caller never sees Redis errors
        reset_clients()

    asyncio.run(flush())
    assert len(release_queue) == 0
    assert local_routing.ewma[26] == 30.0  # the release went to the in-process twin
    assert queue.spool.path is not None
    assert len(queue.spool.path.read_bytes().splitlines()) == 1
    asyncio.run(queue.aclose())


def test_a_redis_that_forgot_the_script_gets_it_and_runs_each_release_once(
    with_redis: str,
) -> None:
    queue = RedisStreamUsageQueue()

    async def scenario() -> None:
        leases = await take(27, 4)
        for lease in leases[:2]:
            await lease.release(ok=True)
        client = sync_redis()
        assert client is not None
        client.script_flush()  # a restarted or failed-over Redis: NOSCRIPT
        queue.put(event())
        await queue.flush()
        # Each queued release ran exactly once (twice would leave 0, none 4).
        assert inflight_in_redis(27) == 2
        assert client.xlen(settings.GATEWAY_USAGE_STREAM) == 1
        await queue.aclose()
        reset_clients()

    asyncio.run(scenario())
