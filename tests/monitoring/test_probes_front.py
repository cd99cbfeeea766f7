"""The probes and the scrape answered by the ASGI front (``gateway.proxy.probes``), not Django:
the same answers as the Django views, and only what the front may admit.

The app is called with a stand-in for Django that records what reaches it, so a request the
front should answer fails if it falls through, and one it must leave to Django (a staff
session's scrape, another method) is seen arriving there.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.proxy.probes import PROBE_PATHS
from providers.redis_conn import reset_clients
from tests.factories import make_provider
from tests.proxy.conftest import InProcessGateway

TOKEN = "metrics-token-0123456789abcdef"


class DjangoStandIn:
    """Answers 299 and records the path of every request that reaches "Django"."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.paths.append(scope["path"])
        await send({"type": "http.response.start", "status": 299, "headers": []})
        await send({"type": "http.response.body", "body": b"django"})


class Front(InProcessGateway):
    """The gateway's app in front of :class:`DjangoStandIn`."""

    def __init__(self) -> None:
        self.django = DjangoStandIn()
        # A pod's address, as a load balancer's probe names it: not in ALLOWED_HOSTS.
        super().__init__(self.django, base_url="http://10.1.2.3:8000")

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.run(lambda client: client.request(method, path, **kwargs))


@pytest.fixture
def front() -> Iterator[Front]:
    f = Front()
    yield f
    f.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.django_db
def test_live_and_ready_are_answered_without_django(front: Front) -> None:
    live = front.request("GET", "/health/live")
    ready = front.request("GET", "/health/ready")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "checks": {"database": "ok"}}
    assert ready.headers["content-type"] == "application/json"
    # Sized, as Django's answers were (a server sends an unsized body chunked).
    assert live.headers["content-length"] == str(len(live.content))
    assert front.django.paths == []


@pytest.mark.django_db
def test_ready_is_503_naming_redis_when_configured_redis_is_down(
    front: Front, settings: Any
) -> None:
    settings.REDIS_URL = f"redis://:pw-secret-1@127.0.0.1:{_closed_port()}/0"
    reset_clients()
    try:
        response = front.request("GET", "/health/ready")
    finally:
        reset_clients()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("error")
    assert "pw-secret-1" not in response.text
    assert front.django.paths == []


@pytest.mark.django_db(transaction=True)
def test_health_and_metrics_for_a_token_holder_are_answered_here(
    front: Front, settings: Any
) -> None:
    make_provider("tenant-inst", "mock")
    settings.GATEWAY_METRICS_TOKEN = TOKEN
    auth = {"authorization": f"Bearer {TOKEN}"}
    health = front.request("GET", "/health", headers=auth)
    metrics = front.request("GET", "/metrics", headers=auth)
    assert health.status_code == 200
    assert [p["name"] for p in health.json()["providers"].values()] == ["tenant-inst"]
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    enabled = r'gateway_provider_enabled\{provider="tenant-inst",provider_id="\d+"\} 1\.0'
    assert re.search(enabled, metrics.text), metrics.text
    assert front.django.paths == []


@pytest.mark.django_db
def test_without_the_token_health_and_metrics_go_to_django(front: Front, settings: Any) -> None:
    """Django then admits a staff session or answers 401: the front admits only the token."""
    make_provider("secret-tenant-inst", "mock")
    settings.GATEWAY_METRICS_TOKEN = TOKEN
    for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}):
        for path in ("/health", "/metrics"):
            response = front.request("GET", path, headers=headers)
            assert response.status_code == 299 and "secret-tenant-inst" not in response.text
    assert front.django.paths == ["/health", "/metrics"] * 3


@pytest.mark.django_db
def test_other_methods_and_paths_go_to_django(front: Front) -> None:
    for method in ("POST", "HEAD", "DELETE"):
        for path in sorted(PROBE_PATHS):
            assert front.request(method, path).status_code == 299
    assert front.request("GET", "/health/live/").status_code == 299
    assert len(front.django.paths) == 3 * len(PROBE_PATHS) + 1


@pytest.mark.django_db(transaction=True)
def test_health_is_503_with_retry_after_when_the_database_cannot_be_read(
    front: Front, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreadable(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("database down")

    monkeypatch.setattr("gateway.monitoring.health.health_report", unreadable)
    response = front.request("GET", "/health")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert response.json()["status"] == "unavailable"
    assert front.django.paths == []
