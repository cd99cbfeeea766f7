"""``/metrics`` and the detailed ``/health`` behind ``GATEWAY_METRICS_TOKEN``; a database that
is down gives 503 JSON (``/health``, cold ``/v1``); the usage queue's Redis without AOF warns."""

from __future__ import annotations

from typing import Any

import pytest
from django.core import checks
from django.test import Client

from gateway.monitoring import persistence
from gateway.routing.holder import route_tables
from tests.factories import make_provider
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db

TOKEN = "metrics-token-0123456789abcdef"


@pytest.mark.parametrize("path", ["/metrics", "/health"])
def test_token_protects_metrics_and_detailed_health(settings: Any, path: str) -> None:
    make_provider("secret-tenant-inst", "mock")
    settings.GATEWAY_METRICS_TOKEN = TOKEN
    client = Client()
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
        refused = client.get(path, headers=headers)
        assert refused.status_code == 401
        assert refused["WWW-Authenticate"].startswith("Bearer")
        assert b"secret-tenant-inst" not in refused.content
    allowed = client.get(path, headers={"authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200
    if path == "/health":
        assert b"secret-tenant-inst" in allowed.content


def test_staff_session_may_read_health(settings: Any, admin_client: Client) -> None:
    settings.GATEWAY_METRICS_TOKEN = TOKEN
    assert admin_client.get("/health").status_code == 200


def test_live_and_ready_stay_open_and_name_no_instance(settings: Any) -> None:
    make_provider("secret-tenant-inst", "mock")
    settings.GATEWAY_METRICS_TOKEN = TOKEN
    client = Client()
    for path in ("/health/live", "/health/ready"):
        response = client.get(path)
        assert response.status_code == 200
        assert b"secret-tenant-inst" not in response.content


def test_health_is_503_json_when_the_database_is_down(django_db_blocker: Any) -> None:
    with django_db_blocker.block():
        response = Client().get("/health")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert response["Retry-After"]
    assert response.json()["status"] == "unavailable"


@pytest.mark.parametrize(
    ("path", "body", "anthropic"),
    [
        ("/v1/chat/completions", {"model": "m", "messages": []}, False),
        ("/v1/embeddings", {"model": "m", "input": "x"}, False),
        ("/v1/messages", {"model": "m", "max_tokens": 5, "messages": []}, True),
        ("/v1/messages/count_tokens", {"model": "m", "messages": []}, True),
    ],
)
def test_cold_v1_answers_503_with_retry_after_when_the_database_is_down(
    django_db_blocker: Any, path: str, body: dict[str, Any], anthropic: bool
) -> None:
    route_tables.reset()
    gw = InProcessGateway()
    try:
        with django_db_blocker.block():
            response = gw.run(
                lambda c: c.post(path, json=body, headers={"authorization": "Bearer k"})
            )
    finally:
        gw.close()
        route_tables.reset()
    assert response.status_code == 503, response.text
    assert int(response.headers["retry-after"]) >= 1
    data = response.json()
    if anthropic:
        assert data["type"] == "error" and data["error"]["type"] == "overloaded_error"
    else:
        assert data["error"]["code"] == "service_unavailable"


class _Redis:
    def __init__(self, aof: int) -> None:
        self.aof = aof

    def info(self, section: str) -> dict[str, Any]:
        assert section == "persistence"
        return {"aof_enabled": self.aof}

    def close(self) -> None:
        pass


@pytest.mark.parametrize("aof", [0, 1])
def test_redis_without_aof_warns_in_ready_and_checks(
    settings: Any, monkeypatch: pytest.MonkeyPatch, aof: int
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.GATEWAY_USAGE_QUEUE = ""
    monkeypatch.setattr(persistence, "sync_redis", lambda: _Redis(aof))
    monkeypatch.setattr(
        "gateway.monitoring.health.readiness", lambda: (True, {"database": "ok", "redis": "ok"})
    )
    ready = Client().get("/health/ready")
    assert ready.status_code == 200  # a warning, never a failure
    found = checks.run_checks(tags=["redis"])
    if aof:
        assert "warnings" not in ready.json() and found == []
    else:
        assert "appendonly no" in ready.json()["warnings"][0]
        assert [m.id for m in found] == ["monitoring.W001"]
        settings.GATEWAY_REDIS_AOF_WARNING = False  # a deliberate setup silences it
        assert "warnings" not in Client().get("/health/ready").json()
        assert checks.run_checks(tags=["redis"]) == []


def test_no_warning_when_the_usage_queue_is_not_in_redis(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.GATEWAY_USAGE_QUEUE = "gateway.usage.queues.DatabaseUsageQueue"
    monkeypatch.setattr(persistence, "sync_redis", lambda: _Redis(0))
    assert persistence.redis_aof_warning() is None
