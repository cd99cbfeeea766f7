"""The gateway's other Redis users on a real Cluster and Sentinel: the budget set (one MULTI,
one hash slot), the responses store, the config version and the usage stream."""

from __future__ import annotations

import asyncio

import pytest

from gateway.responses_store import store
from gateway.usage.budget_state import budget_state
from gateway.usage.budgets import budget_state_publish
from gateway.usage.queues import RedisStreamUsageQueue
from providers.config_version import REDIS_KEY, config_version_current
from providers.redis_conn import is_cluster, reset_clients, sync_redis
from tests.redis_topologies.fixtures import use_topology


@pytest.mark.django_db
@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
def test_budgets_responses_config_version_and_stream(
    kind: str,
    request: pytest.FixtureRequest,
    settings,  # type: ignore[no-untyped-def]
) -> None:
    use_topology(kind, request)
    client = sync_redis()
    assert client is not None and is_cluster(client) == (kind == "cluster")

    assert budget_state_publish(over=frozenset({3, 5}))
    assert asyncio.run(budget_state.refresh()) == frozenset({3, 5})

    async def responses() -> tuple[store.Record | None, store.Record | None]:
        record = store.Record(response={"id": "resp_1", "output": []}, items=[{"x": 1}])
        assert await store.save("resp_1", 7, record)
        found = await store.load("resp_1", 7)
        other_key = await store.load("resp_1", 8)
        reset_clients()  # the next loop gets its own client
        return found, other_key

    found, other_key = asyncio.run(responses())
    assert found is not None and found.items == [{"x": 1}] and other_key is None

    client.set(REDIS_KEY, 41)
    client.incr(REDIS_KEY)
    assert asyncio.run(config_version_current()) == "r42"  # "r": read from Redis

    RedisStreamUsageQueue().deliver_sync([b'{"a": 1}', b'{"a": 2}'])
    assert client.xlen(settings.GATEWAY_USAGE_STREAM) == 2
