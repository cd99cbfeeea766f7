"""Health probes against the real loopback fake provider: records, headers, circuit, skips."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from gateway.keys.models import RoutingSettings
from providers.circuit import CircuitState, circuit_info_all_sync
from providers.health import health_check_run, health_checks_due, health_checks_purge
from providers.models import HealthCheck
from providers.tasks import health_check_task, health_checks_dispatch_task
from tests.factories import make_provider
from tests.fakes.upstream import Behaviour, FakeUpstream

pytestmark = pytest.mark.django_db


def test_healthy_models_probe_carries_custom_headers_and_primary_key(
    fake_upstream: FakeUpstream,
) -> None:
    inst = make_provider(
        "probe-ok",
        "openai",
        upstream_url=fake_upstream.url,
        custom_headers={"X-Team": "blue", "X-Cost-Center": "cc-42"},
        keys=[{"name": "second"}, {"name": "main", "primary": True}],
    )
    result = health_check_run(provider_id=inst.id)
    assert result is not None
    check = HealthCheck.objects.get(provider=inst.provider)
    assert (check.status, check.probe, check.http_status, check.error_category) == (
        "healthy",
        "models",
        200,
        "",
    )
    assert check.latency_ms is not None and check.latency_ms > 0
    [request] = fake_upstream.requests()
    assert request.method == "GET" and request.path.endswith("/models")
    assert request.headers["x-team"] == "blue"
    assert request.headers["x-cost-center"] == "cc-42"
    assert request.api_key == inst.api_keys["main"]  # the primary, not the first created
    assert result.circuit == CircuitState.CLOSED


def test_completion_probe_asks_for_one_token_of_the_probe_model(
    fake_upstream: FakeUpstream,
) -> None:
    inst = make_provider(
        "probe-completion",
        "azure_openai",
        upstream_url=fake_upstream.url,
        health_check_probe="completion",
        health_check_model="dep-probe",
        custom_headers={"X-Region": "eu"},
    )
    health_check_run(provider_id=inst.id)
    [request] = fake_upstream.requests()
    assert request.route == "azure_chat"
    assert "/openai/deployments/dep-probe/" in request.path
    assert request.json["max_tokens"] == 1
    assert request.headers["x-region"] == "eu"
    assert HealthCheck.objects.get(provider=inst.provider).probe == "completion"


def test_server_error_is_down_and_auth_error_message_is_redacted(
    fake_upstream: FakeUpstream,
) -> None:
    inst = make_provider("probe-500", "openai", upstream_url=fake_upstream.url)
    fake_upstream.behave(Behaviour.fail(500, "upstream exploded"), key=inst.api_key)
    health_check_run(provider_id=inst.id)
    check = HealthCheck.objects.get(provider=inst.provider)
    assert (check.status, check.http_status, check.error_category) == (
        "down",
        500,
        "server_error",
    )
    assert "upstream exploded" in check.error_message

    fake_upstream.behave(Behaviour.fail(401, f"invalid key {inst.api_key}"), key=inst.api_key)
    health_check_run(provider_id=inst.id)
    check = HealthCheck.objects.filter(provider=inst.provider).latest("checked_at")
    assert (check.status, check.error_category) == ("down", "auth")
    assert inst.api_key not in check.error_message
    assert "[redacted]" in check.error_message


def test_timeout_and_refused_connection(fake_upstream: FakeUpstream, settings: Any) -> None:
    settings.HEALTH_CHECK_TIMEOUT = 0.3
    slow = make_provider("probe-slow", "openai", upstream_url=fake_upstream.url)
    fake_upstream.behave(Behaviour.slow(3), key=slow.api_key)
    health_check_run(provider_id=slow.id)
    check = HealthCheck.objects.get(provider=slow.provider)
    assert (check.status, check.error_category, check.http_status) == ("down", "timeout", None)

    closed = make_provider("probe-closed", "openai", base_url="http://127.0.0.1:9/v1")
    health_check_run(provider_id=closed.id)
    check = HealthCheck.objects.get(provider=closed.provider)
    assert (check.status, check.error_category) == ("down", "connect")


def test_slow_answer_and_429_are_degraded(fake_upstream: FakeUpstream, settings: Any) -> None:
    settings.HEALTH_CHECK_DEGRADED_MS = 100
    inst = make_provider("probe-degraded", "openai", upstream_url=fake_upstream.url)
    fake_upstream.behave(Behaviour.slow(0.2, times=1), key=inst.api_key)
    health_check_run(provider_id=inst.id)
    fake_upstream.behave(Behaviour.fail(429, retry_after=1), key=inst.api_key)
    health_check_run(provider_id=inst.id)
    checks = list(HealthCheck.objects.filter(provider=inst.provider).order_by("id"))
    assert [(c.status, c.error_category) for c in checks] == [
        ("degraded", "slow"),
        ("degraded", "rate_limit"),
    ]


@pytest.mark.parametrize("shared", ["local", "redis"])
def test_consecutive_failed_probes_open_the_circuit_and_a_good_one_half_opens_it(
    fake_upstream: FakeUpstream, shared: str, request: pytest.FixtureRequest
) -> None:
    if shared == "redis":
        request.getfixturevalue("with_redis")  # the breaker state other processes see
    RoutingSettings.objects.update_or_create(
        pk=1, defaults={"failure_threshold": 3, "recovery_timeout": 60}
    )
    inst = make_provider("probe-circuit", "openai", upstream_url=fake_upstream.url)
    fake_upstream.behave(Behaviour.fail(503), key=inst.api_key)
    states = []
    for _ in range(3):
        result = health_check_run(provider_id=inst.id)
        assert result is not None
        states.append(result.circuit)
    assert states == [CircuitState.CLOSED, CircuitState.CLOSED, CircuitState.OPEN]
    info = circuit_info_all_sync([inst.id])[inst.id]
    assert info.state == CircuitState.OPEN and info.failure_count == 3

    fake_upstream.reset()
    result = health_check_run(provider_id=inst.id)
    assert result is not None and result.circuit == CircuitState.HALF_OPEN


def test_disabled_instance_is_skipped(fake_upstream: FakeUpstream) -> None:
    inst = make_provider("probe-off", "openai", upstream_url=fake_upstream.url, is_enabled=False)
    assert health_check_run(provider_id=inst.id) is None
    assert health_check_task.apply(kwargs={"provider_id": inst.id}).get() is None
    assert not HealthCheck.objects.exists()
    assert fake_upstream.requests() == []
    assert inst.id not in health_checks_due()


@pytest.fixture
def eager_celery() -> Any:
    conf = health_check_task.app.conf
    before = conf.task_always_eager
    conf.task_always_eager = True
    yield
    conf.task_always_eager = before


def test_dispatcher_probes_only_instances_whose_own_interval_elapsed(
    fake_upstream: FakeUpstream, eager_celery: None
) -> None:
    fresh = make_provider(
        "due-fresh", "openai", upstream_url=fake_upstream.url, health_check_interval=300
    )
    stale = make_provider(
        "due-stale", "openai", upstream_url=fake_upstream.url, health_check_interval=30
    )
    never = make_provider("due-never", "openai", upstream_url=fake_upstream.url)
    now = timezone.now()
    for inst in (fresh, stale):
        HealthCheck.objects.create(
            provider=inst.provider, status="healthy", probe="models", checked_at=now
        )
    HealthCheck.objects.filter(provider=stale.provider).update(
        checked_at=now - timedelta(seconds=31)
    )
    assert sorted(health_checks_due()) == sorted([stale.id, never.id])

    dispatched = health_checks_dispatch_task.apply().get()
    assert sorted(dispatched) == sorted([stale.id, never.id])
    probed = {r.api_key for r in fake_upstream.requests()}
    assert probed == {stale.api_key, never.api_key}
    assert health_checks_due() == []  # every instance is checked and within its interval


def test_purge_keeps_the_retention_window(fake_upstream: FakeUpstream, settings: Any) -> None:
    settings.HEALTH_CHECK_RETENTION_DAYS = 7
    inst = make_provider("purge", "openai", upstream_url=fake_upstream.url)
    now = timezone.now()
    for age in (1, 6, 8, 30):
        HealthCheck.objects.create(
            provider=inst.provider,
            status="healthy",
            probe="models",
            checked_at=now - timedelta(days=age),
        )
    assert health_checks_purge() == 2
    ages = sorted((now - c.checked_at).days for c in HealthCheck.objects.all())
    assert ages == [1, 6]


def test_dispatch_skips_an_instance_whose_probe_is_already_queued(
    fake_upstream: FakeUpstream, eager_celery: None, with_redis: str
) -> None:
    import redis

    queued = make_provider("queued", "openai", upstream_url=fake_upstream.url)
    free = make_provider("free", "openai", upstream_url=fake_upstream.url)
    client = redis.Redis.from_url(with_redis)
    client.set(f"gw:hc:queued:{queued.id}", 1, ex=60)  # a probe waiting for a busy worker
    assert health_checks_dispatch_task.apply().get() == [free.id]
    assert {r.api_key for r in fake_upstream.requests()} == {free.api_key}
    assert not client.exists(f"gw:hc:queued:{free.id}")  # released once the probe ran
    client.delete(f"gw:hc:queued:{queued.id}")
    assert health_checks_dispatch_task.apply().get() == [queued.id]
    client.close()
