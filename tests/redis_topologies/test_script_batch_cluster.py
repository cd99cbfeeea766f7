"""The routing calls of one loop turn (``ScriptBatch``) and the queued releases on a real Redis
Cluster: a node that stalls past the client's read timeout mid-pipeline costs the calls a
retry, not the shared state (no fall back to per-process state, which the topology fixture
fails on)."""

from __future__ import annotations

import asyncio

import pytest
import redis

from gateway.routing.state.releases import (
    PendingRelease,
    PendingTokens,
    release_call,
    release_queue,
    run_script,
)
from gateway.routing.state.windows import instance_key, window_keys
from providers.circuit import circuit_key, shared_async
from providers.redis_conn import ASYNC_TIMEOUTS
from tests.redis_topologies.fixtures import use_topology
from tests.redis_topologies.services import Cluster

ECHO = "redis.call('INCR', KEYS[1]) return ARGV[1]"
KEY = "gw:{i:9}:batch-stall"


def test_a_node_stalling_past_the_read_timeout_mid_batch_is_retried_not_fallen_back(
    request: pytest.FixtureRequest, redis_cluster: Cluster
) -> None:
    use_topology("cluster", request)
    port, _ = redis_cluster.master_of(KEY)
    stall_ms = int(ASYNC_TIMEOUTS["socket_timeout"] * 1000) + 300

    async def scenario() -> list[object]:
        client = shared_async()
        assert client is not None
        script = client.register_script(ECHO)
        await script([KEY], ["warm"])  # loaded on the node
        # The node stops answering commands for longer than the client waits for a reply.
        with redis.Redis(port=port, socket_timeout=5) as node:
            await asyncio.to_thread(node.execute_command, "CLIENT", "PAUSE", stall_ms, "ALL")
        calls = (run_script(client, script, [KEY], str(i).encode()) for i in range(4))
        return list(await asyncio.gather(*calls))

    assert asyncio.run(scenario()) == [str(i).encode() for i in range(4)]


def test_a_node_stalling_past_the_read_timeout_mid_release_flush_is_retried_not_fallen_back(
    request: pytest.FixtureRequest, redis_cluster: Cluster
) -> None:
    """A successful half-open trial's release, queued and flushed while its instance's node
    stalls: it still reaches Redis (in-flight down, circuit closed), and so does a key's token
    correction on another node flushed in the same pipeline."""
    use_topology("cluster", request)
    pid, vkey_id, now = 9, 7, 1_700_000_000.0
    port, _ = redis_cluster.master_of(instance_key(pid))
    stall_ms = int(ASYNC_TIMEOUTS["socket_timeout"] * 1000) + 300
    tokens_key = window_keys("k", vkey_id, now)[2]

    async def scenario() -> None:
        client = shared_async()
        assert client is not None
        await client.hset(instance_key(pid), "inflight", 1)
        await client.hset(circuit_key(pid), mapping={"state": "half_open", "trial_at": now})
        args = (pid, now, True, 12.0, 0.3, 5, 60.0, 0)
        keys, argv = release_call(*args)
        await release_queue.add(PendingRelease(keys, argv, args))
        await release_queue.add(PendingTokens(vkey_id, 40, now))
        with redis.Redis(port=port, socket_timeout=5) as node:
            await asyncio.to_thread(node.execute_command, "CLIENT", "PAUSE", stall_ms, "ALL")
        await release_queue.flush()

    asyncio.run(scenario())
    with redis.cluster.RedisCluster.from_url(redis_cluster.url) as check:
        assert check.hget(instance_key(pid), "inflight") == b"0"
        assert check.hget(circuit_key(pid), "state") == b"closed"
        assert check.get(tokens_key) == b"40"
