"""Routing state shared between gateway processes through Redis (real server processes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from gateway.keys.models import RoutingSettings
from providers import circuit
from providers.circuit import CircuitState
from tests.e2e.conftest import GatewayServer, World
from tests.fakes.upstream import Behaviour

pytestmark = pytest.mark.e2e

MESSAGES: Any = [{"role": "user", "content": "hi"}]


def test_circuit_opened_by_one_process_is_seen_by_another(
    e2e: World, with_redis: str, gateway_factory: Callable[..., GatewayServer]
) -> None:
    RoutingSettings.objects.update_or_create(
        pk=1, defaults={"failure_threshold": 2, "recovery_timeout": 1}
    )
    a, b = e2e.provider("shared-a"), e2e.provider("shared-b")
    e2e.mapping("m", a, priority=1)
    e2e.mapping("m", b, priority=2)
    key = e2e.vkey()
    one, two = gateway_factory(REDIS_URL=with_redis), gateway_factory(REDIS_URL=with_redis)
    e2e.publish(one)
    e2e.publish(two)
    e2e.fake.behave(Behaviour.fail(500), key=a.api_key)

    def served(server: GatewayServer) -> str:
        response = e2e.openai(key, server).chat.completions.with_raw_response.create(
            model="m", messages=MESSAGES
        )
        return response.headers["x-gateway-provider-id"]

    assert [served(one) for _ in range(2)] == [str(b.id)] * 2  # opens a's circuit
    info = circuit.circuit_info_all_sync([a.id])[a.id]
    assert info.state == CircuitState.OPEN and info.retry_at is not None
    assert [served(two) for _ in range(3)] == [str(b.id)] * 3
    assert len(e2e.fake.requests(key=a.api_key)) == 2  # the other process sent a nothing
    while time.time() <= info.retry_at:
        time.sleep(0.05)
    for _ in range(2):
        served(one)
        served(two)
    # Exactly one trial across both processes (it failed: open again).
    assert len(e2e.fake.requests(key=a.api_key)) == 3
    assert circuit.circuit_info_all_sync([a.id])[a.id].state == CircuitState.OPEN
