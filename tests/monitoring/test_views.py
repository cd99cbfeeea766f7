"""``/health``, ``/health/live``, ``/health/ready`` and ``/metrics`` (no virtual key needed)."""

from __future__ import annotations

import re
import socket
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from django.core.management import call_command
from django.test import Client

from gateway.routing.table import RouteTable
from gateway.usage.events import InMemoryUsageQueue, set_usage_queue
from gateway.usage.queues import BufferedUsageQueue
from mappings.models import ModelPrice
from providers import circuit
from providers.health import health_check_run
from providers.redis_conn import reset_clients
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db

INSTANCE_FIELDS = {
    "id",
    "name",
    "type",
    "enabled",
    "status",
    "circuit_state",
    "failure_count",
    "last_success",
    "last_failure",
    "latency_ms",
    "last_checked",
    "error_category",
}


def test_health_shape_overall_status_and_no_secrets(fake_upstream: FakeUpstream) -> None:
    good = make_provider(
        "h-good",
        "openai",
        upstream_url=fake_upstream.url,
        custom_headers={"X-Tenant-Token": "hdr-secret-value-77"},
    )
    bad = make_provider("h-bad", "anthropic", upstream_url=fake_upstream.url)
    off = make_provider("h-off", "openai", upstream_url=fake_upstream.url, is_enabled=False)
    health_check_run(provider_id=good.id)
    health_check_run(provider_id=bad.id)
    client = Client()

    body = client.get("/health").json()
    assert body["status"] == "healthy"  # bad not probed yet: unknown counts as healthy
    assert set(body["providers"]) == {str(good.id), str(bad.id), str(off.id)}
    for entry in body["providers"].values():
        assert set(entry) == INSTANCE_FIELDS
    g = body["providers"][str(good.id)]
    assert (g["id"], g["name"], g["type"], g["enabled"], g["status"]) == (
        good.id,
        "h-good",
        "openai",
        True,
        "healthy",
    )
    assert g["circuit_state"] == "closed" and g["latency_ms"] > 0 and g["last_success"]
    assert body["providers"][str(off.id)]["enabled"] is False

    fake_upstream.behave(Behaviour.fail(500, f"boom {bad.api_key}"), key=bad.api_key)
    health_check_run(provider_id=bad.id)
    response = client.get("/health")
    body = response.json()
    assert body["status"] == "degraded"
    b = body["providers"][str(bad.id)]
    assert (b["status"], b["error_category"], b["failure_count"]) == ("down", "server_error", 1)
    assert b["last_failure"] is not None
    raw = response.content.decode()
    for secret in (good.api_key, bad.api_key, off.api_key, "hdr-secret-value-77"):
        assert secret not in raw
    assert fake_upstream.url not in raw and "127.0.0.1" not in raw

    fake_upstream.behave(Behaviour.fail(500), key=good.api_key)
    health_check_run(provider_id=good.id)
    assert client.get("/health").json()["status"] == "unhealthy"


def test_last_success_and_failure_come_from_history_when_the_breaker_has_none(
    fake_upstream: FakeUpstream,
) -> None:
    # A Celery worker probed the instance; without Redis this process's breaker saw nothing.
    inst = make_provider("h-history", "openai", upstream_url=fake_upstream.url)
    health_check_run(provider_id=inst.id)
    fake_upstream.behave(Behaviour.fail(502), key=inst.api_key)
    health_check_run(provider_id=inst.id)
    ok, bad = inst.provider.health_checks.order_by("id")
    circuit.local_state_clear()
    entry = Client().get("/health").json()["providers"][str(inst.id)]
    assert entry["failure_count"] == 0  # the breaker's own count: nothing seen here
    assert entry["last_success"] == ok.checked_at.isoformat()
    assert entry["last_failure"] == bad.checked_at.isoformat()
    assert entry["status"] == "down"


def test_live_and_ready_without_redis() -> None:
    client = Client()
    assert client.get("/health/live").json() == {"status": "ok"}
    response = client.get("/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"database": "ok"}}


def test_ready_with_redis_up(with_redis: str) -> None:
    response = Client().get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "redis": "ok"}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_ready_is_503_when_configured_redis_is_down(settings: Any) -> None:
    url = f"redis://:pw-secret-1@127.0.0.1:{_closed_port()}/0"
    settings.REDIS_URL = url
    reset_clients()
    response = Client().get("/health/ready")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")
    assert "pw-secret-1" not in response.content.decode()


class RecordingQueue(BufferedUsageQueue):
    """A real buffered usage queue whose target is a list."""

    target = "test"

    def __init__(self) -> None:
        super().__init__()
        self.delivered: list[bytes] = []

    async def deliver(self, payloads: list[bytes]) -> None:
        self.delivered.extend(payloads)

    def deliver_sync(self, payloads: list[bytes]) -> None:
        self.delivered.extend(payloads)


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of the series ``name`` whose labels include ``labels``."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels}")


def test_metrics_expose_the_named_series_after_traffic(
    fake_upstream: FakeUpstream,
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    usage_queue: InMemoryUsageQueue,
) -> None:
    inst = make_provider("metrics-inst", "openai", upstream_url=fake_upstream.url)
    make_mapping("metrics-alias", inst, "fake-gpt")
    ModelPrice.objects.create(
        provider=inst.provider,
        provider_model_id="fake-gpt",
        input_per_million=1000,
        output_per_million=2000,
    )
    _, key = make_vkey()
    install_table()
    health_check_run(provider_id=inst.id)

    async def traffic(client: Any) -> list[Any]:
        headers = {"authorization": f"Bearer {key}"}
        body: dict[str, Any] = {
            "model": "metrics-alias",
            "messages": [{"role": "user", "content": "hello"}],
        }
        out = [await client.post("/v1/chat/completions", json=body, headers=headers)]
        out.append(
            await client.post(
                "/v1/chat/completions", json={**body, "stream": True}, headers=headers
            )
        )
        return out

    # The production queues' put() (BufferedUsageQueue) is where events are observed; this
    # one delivers nowhere and keeps what it was given.
    queue = RecordingQueue()
    set_usage_queue(queue)

    async def run(client: Any) -> list[Any]:
        responses = await traffic(client)
        await queue.aclose()
        return responses

    responses = gateway.run(run)
    assert [r.status_code for r in responses] == [200, 200]
    events = [orjson.loads(p) for p in queue.delivered]
    assert len(events) == 2

    text = Client().get("/metrics").content.decode()
    pid = str(inst.id)
    # Series are per process and instance ids repeat across tests: name the instance too.
    this = {"provider_id": pid, "provider": "metrics-inst"}
    assert (
        _sample(
            text,
            "gateway_requests_total",
            provider_id=pid,
            alias="metrics-alias",
            status="200",
            provider="metrics-inst",
        )
        == 2
    )
    assert _sample(text, "gateway_upstream_latency_seconds_count", **this) == 2
    assert _sample(text, "gateway_time_to_first_token_seconds_count", **this) == 1
    assert _sample(text, "gateway_overhead_seconds_count", endpoint="chat") >= 1
    prompt = sum(e["prompt_tokens"] for e in events)
    assert prompt > 0
    assert _sample(text, "gateway_tokens_total", **this, kind="prompt") == prompt
    completion = sum(e["completion_tokens"] for e in events)
    expected_cost = (prompt * 1000 + completion * 2000) / 1_000_000
    assert _sample(text, "gateway_cost_usd_total", **this) == pytest.approx(expected_cost)
    assert _sample(text, "gateway_circuit_state", provider_id=pid, state="closed") == 1
    assert _sample(text, "gateway_provider_health", provider_id=pid, status="healthy") == 1
    assert _sample(text, "gateway_provider_health", provider_id=pid, status="down") == 0
    assert "gateway_usage_spool_bytes " in text


def test_check_providers_lists_instances(fake_upstream: FakeUpstream) -> None:
    from io import StringIO

    ok = make_provider("cli-ok", "openai", upstream_url=fake_upstream.url)
    bad = make_provider("cli-bad", "openai", upstream_url=fake_upstream.url)
    make_provider("cli-off", "openai", upstream_url=fake_upstream.url, is_enabled=False)
    fake_upstream.behave(Behaviour.fail(500), key=bad.api_key)
    out = StringIO()
    call_command("check_providers", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].split() == ["instance", "type", "status", "latency", "circuit"]
    rows = {line.split()[0]: line.split() for line in lines[1:] if line.startswith("cli-")}
    assert rows["cli-ok"][:3] == ["cli-ok", "openai", "healthy"]
    assert rows["cli-ok"][-1] == "closed"
    assert rows["cli-bad"][:3] == ["cli-bad", "openai", "down"]
    assert rows["cli-off"][:3] == ["cli-off", "openai", "disabled"]
    assert "\x1b[" not in out.getvalue()  # not a TTY: no color codes
    assert "server_error (HTTP 500)" in out.getvalue()

    out = StringIO()
    call_command("check_providers", "--provider", "cli-ok", stdout=out)
    assert "cli-ok" in out.getvalue() and "cli-bad" not in out.getvalue()
    assert ok.provider.health_checks.count() == 2
