"""Routing and failover through the in-process gateway and the loopback fake upstream.

Every test runs in four worlds: per-process state (no Redis), Redis, a Redis Cluster and a
Sentinel-watched Redis. Gaps are measured
from the fake's request log, never from the test's wall clock; time-dependent state (circuit
recovery) runs on a clock the test moves, and requests are held in flight by a gate the test
opens, so no outcome depends on how fast the machine is.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from gateway.keys.models import RoutingSettings
from gateway.routing import plan as route_plan
from gateway.routing import state as routing_state
from gateway.routing.state import api as routing_state_api
from gateway.routing.state import local_backend
from gateway.routing.table import RouteTable
from gateway.usage.events import InMemoryUsageQueue
from mappings.models import AliasRoutingPolicy, ModelPrice
from providers import circuit
from providers.circuit import CircuitState
from providers.circuit import shared as circuit_shared
from tests.factories import Instance, make_mapping, make_provider, make_vkey
from tests.fakes.upstream import Behaviour, FakeUpstream, Gate
from tests.proxy.conftest import InProcessGateway
from tests.redis_topologies.fixtures import use_topology

CHAT = {"model": "m", "messages": [{"role": "user", "content": "three little words"}]}

# The modules whose ``time.time()`` decides circuit, cooling and rate-limit timing.
CLOCKED_MODULES = (circuit_shared, routing_state_api, local_backend, route_plan)


class Clock:
    """A wall clock that moves only when the test says; every other ``time`` function is real."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now

    def advance_past(self, moment: float) -> None:
        self.now = max(self.now, moment) + 0.001

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """Circuit breaker and rate limiter time, frozen at the real time until advanced."""
    fake = Clock(time.time())
    for module in CLOCKED_MODULES:
        monkeypatch.setattr(module, "time", fake)
    return fake


@pytest.fixture(params=["local", "redis", "cluster", "sentinel"])
def world(request: pytest.FixtureRequest) -> Iterator[str]:
    """Per-process state, or Redis (skips without REDIS_URL, fails under CI), or a real Redis
    Cluster or Sentinel set (tests/redis_topologies; skip without redis-server): the same
    outcomes in every world."""
    if request.param == "redis":
        request.getfixturevalue("with_redis")
    elif request.param in ("cluster", "sentinel"):
        use_topology(str(request.param), request)
    routing_state.local_clear()
    yield str(request.param)
    routing_state.local_clear()


@pytest.fixture
def cfg(
    world: str, install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream
) -> Callable[..., Instance]:
    def provider(name: str, **fields: Any) -> Instance:
        return make_provider(name, "openai", upstream_url=fake_upstream.url, **fields)

    return provider


def post(gw: InProcessGateway, key: str, body: dict[str, Any] | None = None) -> httpx.Response:
    async def call(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            "/v1/chat/completions", json=body or CHAT, headers={"authorization": f"Bearer {key}"}
        )

    return gw.run(call)


def served_by(fake: FakeUpstream, inst: Instance) -> int:
    return len(fake.requests(key=inst.api_key))


def routing(**fields: Any) -> None:
    RoutingSettings.objects.update_or_create(pk=1, defaults=fields)


# --- failover and retries -----------------------------------------------------------------


def test_priority_failover_shows_both_attempts(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    usage_queue: InMemoryUsageQueue,
) -> None:
    a, b = cfg("a"), cfg("b")
    make_mapping("m", a, priority=1)
    make_mapping("m", b, priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(500), key=a.api_key)
    response = post(gateway, key)
    assert response.status_code == 200
    assert response.headers["x-gateway-provider-id"] == str(b.id)
    assert response.headers["x-gateway-attempts"] == "2"
    [event] = usage_queue.drain()
    assert [(x.provider_id, x.status) for x in event.attempts] == [(a.id, 500), (b.id, 200)]
    assert event.provider_id == b.id


def test_no_retry_on_400(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    a, b = cfg("a", max_retries=3), cfg("b")
    make_mapping("m", a, priority=1)
    make_mapping("m", b, priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(400, "bad request"))
    response = post(gateway, key)
    assert response.status_code == 400
    assert len(fake_upstream.requests()) == 1


def test_retry_after_is_honoured_then_capped(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    settings: Any,
) -> None:
    settings.GATEWAY_RETRY_AFTER_CAP = 5
    a, b = cfg("a", max_retries=1), cfg("b")
    make_mapping("m", a, priority=1)
    make_mapping("m", b, priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(503, retry_after=1, times=1), key=a.api_key)
    response = post(gateway, key)
    assert response.status_code == 200
    first, second = fake_upstream.requests(key=a.api_key)
    assert second.received_at - first.received_at >= 1.0
    assert served_by(fake_upstream, b) == 0
    # Over the cap: not waited for, the next instance answers at once.
    fake_upstream.reset()
    fake_upstream.behave(Behaviour.fail(503, retry_after=100, times=1), key=a.api_key)
    response = post(gateway, key)
    assert response.status_code == 200
    assert response.headers["x-gateway-provider-id"] == str(b.id)
    [only] = fake_upstream.requests(key=a.api_key)
    [served] = fake_upstream.requests(key=b.api_key)
    assert served.received_at - only.received_at < 5


def test_retry_after_http_date() -> None:
    from datetime import UTC, datetime
    from email.utils import format_datetime

    from gateway.proxy.attempts import retry_after_seconds

    now = time.time()
    date = format_datetime(datetime.fromtimestamp(now + 30, UTC), usegmt=True)
    assert 28 <= (retry_after_seconds(date, now=now) or 0) <= 31
    assert retry_after_seconds("2") == 2.0
    assert retry_after_seconds("soon") is None


def test_unreadable_200_fails_over(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    a, b = cfg("a"), cfg("b")
    make_mapping("m", a, priority=1)
    make_mapping("m", b, priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour(mode="garbage"), key=a.api_key)
    response = post(gateway, key)
    assert response.status_code == 200
    assert response.headers["x-gateway-provider-id"] == str(b.id)


def test_failed_request_event_names_last_instance(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    usage_queue: InMemoryUsageQueue,
) -> None:
    a, b = cfg("a"), cfg("b")
    make_mapping("m", a, priority=1)
    make_mapping("m", b, priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(502))
    response = post(gateway, key)
    assert response.status_code == 502
    assert response.headers["x-gateway-attempts"] == "2"
    [event] = usage_queue.drain()
    assert event.provider_id == b.id and event.key_name == "primary"
    assert [x.provider_id for x in event.attempts] == [a.id, b.id]


# --- circuit breaker ----------------------------------------------------------------------


def test_circuit_opens_skips_then_lets_one_trial_through(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    clock: Clock,
) -> None:
    routing(failure_threshold=2, recovery_timeout=1)
    a, b = cfg("a"), cfg("b")
    make_mapping("m", a, priority=1)
    make_mapping("m", b, priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(500), key=a.api_key)
    for _ in range(2):
        assert post(gateway, key).status_code == 200
    info = circuit.circuit_info_all_sync([a.id])[a.id]
    assert info.state == CircuitState.OPEN and info.retry_at is not None
    for _ in range(3):
        assert post(gateway, key).status_code == 200
    assert served_by(fake_upstream, a) == 2  # nothing during the recovery timeout
    clock.advance_past(info.retry_at)
    for _ in range(3):
        assert post(gateway, key).status_code == 200
    assert served_by(fake_upstream, a) == 3  # exactly one trial, which failed and reopened
    assert circuit.circuit_info_all_sync([a.id])[a.id].state == CircuitState.OPEN
    # A successful trial closes it.
    fake_upstream.behave(key=a.api_key)
    reopened = circuit.circuit_info_all_sync([a.id])[a.id].retry_at
    assert reopened is not None
    clock.advance_past(reopened)
    response = post(gateway, key)
    assert response.headers["x-gateway-provider-id"] == str(a.id)
    assert circuit.circuit_info_all_sync([a.id])[a.id].state == CircuitState.CLOSED


def test_all_circuits_open_tries_first_to_recover(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    routing(failure_threshold=1, recovery_timeout=60)
    a, b = cfg("a"), cfg("b")
    make_mapping("m", a, priority=1)
    make_mapping("m", b, priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(500))
    assert post(gateway, key).status_code == 500  # opens both
    infos = circuit.circuit_info_all_sync([a.id, b.id])
    assert {i.state for i in infos.values()} == {CircuitState.OPEN}
    first = min((a, b), key=lambda i: infos[i.id].retry_at or 0)
    before = len(fake_upstream.requests())
    response = post(gateway, key)
    assert response.status_code == 500
    assert "open circuit" in response.json()["error"]["message"]
    assert [r.api_key for r in fake_upstream.requests()[before:]] == [first.api_key]


# --- strategies ---------------------------------------------------------------------------


def test_round_robin_rotates_evenly(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    routing(strategy="round_robin")
    a, b, c = cfg("a"), cfg("b"), cfg("c")
    for i, inst in enumerate((a, b, c)):
        make_mapping("m", inst, priority=i + 1)
    key = make_vkey().plaintext
    install_table()
    for _ in range(120):
        assert post(gateway, key).status_code == 200
    assert [served_by(fake_upstream, i) for i in (a, b, c)] == [40, 40, 40]

    # Route explain shows the next turn without taking it.
    async def explain(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/v1/route?model=m", headers={"authorization": f"Bearer {key}"})

    upcoming = [gateway.run(explain).json()["candidates"][0]["provider_id"] for _ in range(2)]
    assert upcoming[0] == upcoming[1]
    assert post(gateway, key).headers["x-gateway-provider-id"] == str(upcoming[0])


def test_weighted_follows_weights_per_alias_override(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    # Global priority, the alias overrides it.
    AliasRoutingPolicy.objects.create(alias="m", strategy="weighted")
    a, b = cfg("a"), cfg("b")
    make_mapping("m", a, priority=1, weight=3)
    make_mapping("m", b, priority=2, weight=1)
    key = make_vkey().plaintext
    install_table()
    n = 200
    for _ in range(n):
        assert post(gateway, key).status_code == 200
    share = served_by(fake_upstream, a) / n
    assert 0.62 <= share <= 0.88, share  # 0.75 expected; > 4 sigma of slack


def test_least_busy_prefers_the_idle_instance(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    routing(strategy="least_busy")
    a, b = cfg("a"), cfg("b")
    make_mapping("m", a, priority=1)
    make_mapping("m", b, priority=2)
    key = make_vkey().plaintext
    install_table()
    gate = Gate()
    fake_upstream.behave(Behaviour(gate=gate, times=1), key=a.api_key)

    async def scenario(client: httpx.AsyncClient) -> list[str]:
        headers = {"authorization": f"Bearer {key}"}
        held = asyncio.ensure_future(
            client.post("/v1/chat/completions", json=CHAT, headers=headers)
        )
        try:
            # a is busy from here until the gate opens, however long the next requests take.
            assert await asyncio.to_thread(gate.arrived.wait, 10.0), "a never got the request"
            served = []
            for _ in range(3):
                r = await client.post("/v1/chat/completions", json=CHAT, headers=headers)
                served.append(r.headers["x-gateway-provider-id"])
        finally:
            gate.release()
        assert (await held).headers["x-gateway-provider-id"] == str(a.id)
        return served

    assert gateway.run(scenario) == [str(b.id)] * 3
    # Idle again: the tie goes back to priority.
    assert post(gateway, key).headers["x-gateway-provider-id"] == str(a.id)


def test_least_cost_and_lowest_latency_order(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    a, b = cfg("a"), cfg("b")
    ma = make_mapping("m", a, priority=1)
    mb = make_mapping("m", b, priority=2)
    ModelPrice.objects.create(
        mapping=ma, input_per_million=Decimal(5), output_per_million=Decimal(15)
    )
    ModelPrice.objects.create(
        mapping=mb, input_per_million=Decimal(1), output_per_million=Decimal(2)
    )
    AliasRoutingPolicy.objects.create(alias="m", strategy="least_cost")
    key = make_vkey().plaintext
    install_table()
    assert post(gateway, key).headers["x-gateway-provider-id"] == str(b.id)
    AliasRoutingPolicy.objects.filter(alias="m").update(strategy="lowest_latency")
    install_table()
    fake_upstream.behave(Behaviour.slow(0.3), key=b.api_key)
    # b was measured slow, a is unmeasured: a first; then a's average is the lower one.
    post(gateway, key)
    ids = {post(gateway, key).headers["x-gateway-provider-id"] for _ in range(3)}
    assert ids == {str(a.id)}


# --- account-group cooling ----------------------------------------------------------------


def test_group_cooling_is_shared_across_requests(
    world: str,
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    inst = make_provider(
        "grp",
        upstream_url=fake_upstream.url,
        keys=[
            {"name": "g1-a", "primary": True, "account_group": 1},
            {"name": "g1-b", "account_group": 1},
            {"name": "g2", "account_group": 2},
        ],
    )
    make_mapping("m", inst)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(429, retry_after=30, times=1), key=inst.api_keys["g1-a"])
    assert post(gateway, key).status_code == 200
    assert fake_upstream.requests()[-1].api_key == inst.api_keys["g2"]
    # The next request skips group 1 from the start.
    response = post(gateway, key)
    assert fake_upstream.requests()[-1].api_key == inst.api_keys["g2"]
    assert response.headers["x-gateway-attempts"] == "1"
    assert fake_upstream.requests(key=inst.api_keys["g1-b"]) == []


# --- rate limits --------------------------------------------------------------------------


def test_key_rate_limit_429_with_retry_after(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    make_mapping("m", cfg("a"))
    key = make_vkey(requests_per_minute=2).plaintext
    install_table()
    assert [post(gateway, key).status_code for _ in range(2)] == [200, 200]
    response = post(gateway, key)
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limit_exceeded"
    assert int(response.headers["retry-after"]) >= 1
    assert len(fake_upstream.requests()) == 2


def test_key_token_limit(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
) -> None:
    make_mapping("m", cfg("a"))
    key = make_vkey(tokens_per_minute=30).plaintext
    install_table()
    statuses = [post(gateway, key).status_code for _ in range(6)]
    assert statuses[0] == 200 and statuses[-1] == 429


def test_instance_limit_shifts_traffic(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    a, b = cfg("a", requests_per_minute=2), cfg("b")
    make_mapping("m", a, priority=1)
    make_mapping("m", b, priority=2)
    key = make_vkey().plaintext
    install_table()
    for _ in range(5):
        assert post(gateway, key).status_code == 200
    assert (served_by(fake_upstream, a), served_by(fake_upstream, b)) == (2, 3)


def route_of(gw: InProcessGateway, key: str) -> dict[str, Any]:
    """The staff view of the route (instance-wide counts; a key's /v1/route hides them)."""
    from gateway.routing.plan import explain_alias_sync

    return explain_alias_sync("m")


def test_single_instance_is_taken_once_per_request(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    # With Redis a lone candidate is taken in the route view's round trip: the attempt must
    # use that hold, not take the instance a second time (double-counted limit and in-flight).
    only = cfg("only", requests_per_minute=3)
    make_mapping("m", only)
    key = make_vkey().plaintext
    install_table()
    assert [post(gateway, key).status_code for _ in range(4)] == [200, 200, 200, 503]
    assert served_by(fake_upstream, only) == 3
    [entry] = route_of(gateway, key)["skipped"]
    # Three requests, each counted once (taken twice, six). A window that turned since leaves
    # a sliding count just under 3 (2.99), which is still no room for one more.
    assert 2.9 < entry["limits"]["requests_used"] <= 3 and entry["in_flight"] == 0


def test_instance_taken_with_the_view_is_released_when_no_attempt_runs(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    settings: Any,
) -> None:
    only = cfg("only")
    make_mapping("m", only)
    key = make_vkey().plaintext
    install_table()
    settings.GATEWAY_REQUEST_DEADLINE = 1e-9  # spent before the first attempt can start
    response = post(gateway, key)
    assert response.status_code == 504 and "deadline" in response.json()["error"]["message"]
    assert served_by(fake_upstream, only) == 0
    [entry] = route_of(gateway, key)["candidates"]
    assert entry["in_flight"] == 0


# --- streams ------------------------------------------------------------------------------


def stream(gw: InProcessGateway, key: str) -> httpx.Response:
    body = {**CHAT, "stream": True}

    async def call(client: httpx.AsyncClient) -> httpx.Response:
        r = await client.post(
            "/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
        )
        await r.aread()
        return r

    return gw.run(call)


def test_stream_fails_over_before_first_byte_not_after(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    routing(failure_threshold=100)
    a, b = cfg("a"), cfg("b")
    make_mapping("m", a, priority=1)
    make_mapping("m", b, priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour(mode="stream_error", after_chunks=0), key=a.api_key)
    response = stream(gateway, key)
    assert response.status_code == 200
    assert response.headers["x-gateway-provider-id"] == str(b.id)
    assert response.text.rstrip().endswith("data: [DONE]")
    assert '"error"' not in response.text
    # Content already sent: no failover, a clean error event ends the stream.
    fake_upstream.reset()
    fake_upstream.behave(Behaviour(mode="stream_error", after_chunks=2), key=a.api_key)
    response = stream(gateway, key)
    assert response.headers["x-gateway-provider-id"] == str(a.id)
    assert '"content"' in response.text and '"error"' in response.text
    assert served_by(fake_upstream, b) == 0


# --- route explain ------------------------------------------------------------------------


def test_route_explain_mixed_state(
    cfg: Callable[..., Instance],
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    routing(failure_threshold=1, recovery_timeout=60)
    broken, busy, fine = cfg("broken"), cfg("busy", requests_per_minute=1), cfg("fine")
    make_mapping("m", broken, priority=1)
    make_mapping("m", busy, priority=2)
    mf = make_mapping("m", fine, priority=3)
    ModelPrice.objects.create(
        mapping=mf, input_per_million=Decimal(1), output_per_million=Decimal(2)
    )
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(500), key=broken.api_key)
    assert post(gateway, key).headers["x-gateway-provider-id"] == str(busy.id)

    async def call(client: httpx.AsyncClient) -> httpx.Response:
        return await client.get("/v1/route?model=m", headers={"authorization": f"Bearer {key}"})

    before = len(fake_upstream.requests())
    explained = gateway.run(call)
    assert explained.status_code == 200, explained.text
    data = explained.json()
    assert data["strategy"] == "priority" and data["strategy_source"] == "global"
    [first] = data["candidates"]
    assert first["provider_id"] == fine.id and "key_name" not in first
    assert first["circuit"]["state"] == "closed"
    assert first["price"]["input_per_million"] == "1.000000"
    skipped = {s["provider_name"]: s for s in data["skipped"]}
    assert skipped["broken"]["circuit"]["state"] == "open"
    assert "circuit open" in skipped["broken"]["reason"]
    assert "requests per minute" in skipped["busy"]["reason"]
    assert "requests_headroom" not in skipped["busy"]["limits"]  # instance-wide: staff only
    staff = {s["provider_name"]: s for s in route_of(gateway, key)["skipped"]}
    assert staff["busy"]["limits"]["requests_headroom"] == 0
    assert len(fake_upstream.requests()) == before  # explaining sends nothing
    # The same virtual key auth.
    assert gateway.run(lambda c: c.get("/v1/route?model=m")).status_code == 401
