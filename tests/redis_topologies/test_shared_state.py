"""Two gateway processes on a real Redis Cluster and a real Sentinel-watched Redis: the key's
rate limit is counted across both, a circuit one opens is seen by the other, and every answered
request's usage record lands (drained from the stream by this process)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.keys.models import RoutingSettings
from providers import circuit
from providers.circuit import CircuitState
from tests.e2e.conftest import GatewayServer, World
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.redis_topologies.fixtures import use_topology
from tests.redis_topologies.helpers import Answers, drain_until_recorded, gateway_env

pytestmark = pytest.mark.e2e

LIMIT = 6


@pytest.mark.parametrize("kind", ["cluster", "sentinel"])
def test_limits_breaker_and_usage_across_two_processes(
    kind: str,
    request: pytest.FixtureRequest,
    transactional_db: None,
    fake_upstream: FakeUpstream,
    gateway_factory: Callable[..., GatewayServer],
    tmp_path: Path,
) -> None:
    topology = use_topology(kind, request)
    RoutingSettings.objects.update_or_create(
        pk=1, defaults={"failure_threshold": 2, "recovery_timeout": 3600}
    )
    world = World(server=None, fake=fake_upstream)  # type: ignore[arg-type]
    a, b = world.provider(f"{kind}-a"), world.provider(f"{kind}-b")
    world.mapping("m", a, priority=1)
    world.mapping("m", b, priority=2)
    key = world.vkey(requests_per_minute=LIMIT)
    one = gateway_factory(**gateway_env(topology, tmp_path / "one"))
    two = gateway_factory(**gateway_env(topology, tmp_path / "two"))
    world.publish(one)
    world.publish(two)
    fake_upstream.behave(Behaviour.fail(500), key=a.api_key)
    answers = Answers()

    def served(server: GatewayServer) -> str:
        response = answers.send(server, key)
        assert response.status_code == 200, response.text
        return response.headers["x-gateway-provider-id"]

    # Process one opens a's circuit (two failures, both answered by b) ...
    assert [served(one) for _ in range(2)] == [str(b.id)] * 2
    assert circuit.circuit_info_all_sync([a.id])[a.id].state == CircuitState.OPEN
    # ... and process two, which never saw a fail, skips a.
    assert [served(two) for _ in range(2)] == [str(b.id)] * 2
    assert len(fake_upstream.requests(key=a.api_key)) == 2
    # The key's limit counts both processes' requests: 4 used, 2 left, then 429 on either.
    served(one)
    served(two)
    assert answers.send(one, key).status_code == 429
    assert answers.send(two, key).status_code == 429
    assert len(answers.ok) == LIMIT
    world.close()

    recorded = drain_until_recorded(answers.ok)
    assert recorded == {rid: 1 for rid in answers.ok}
    for server in (one, two):  # the Redis path was used, never the per-process fallback
        assert "using local state" not in server.log_text()
