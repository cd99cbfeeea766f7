"""The routing calls of one loop turn on a real Redis Cluster (``ScriptBatch``): a node that
stalls past the client's read timeout mid-pipeline costs the calls a retry, not the shared
state (no fall back to per-process state, which the topology fixture fails on)."""

from __future__ import annotations

import asyncio

import pytest
import redis

from gateway.routing.state.releases import run_script
from providers.circuit import shared_async
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
