"""A restricted virtual key learns nothing about other tenants.

An alias it may not use answers exactly like an unknown one on every endpoint (404 in the
caller's format, naming only what the caller sent); ``/v1/route`` shows no instance-wide
usage; no answer names a provider key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from gateway.routing.table import RouteTable
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db

OTHER = "tenant-b-model"  # exists, belongs to another tenant
UNKNOWN = "tenant-x-model"  # does not exist (same length, so the bodies can be compared)
MSG = [{"role": "user", "content": "hi"}]

ENDPOINTS: list[tuple[str, str, Callable[[str], dict[str, Any]] | None, bool]] = [
    ("POST", "/v1/chat/completions", lambda m: {"model": m, "messages": MSG}, False),
    ("POST", "/v1/embeddings", lambda m: {"model": m, "input": "hi"}, False),
    ("POST", "/v1/responses", lambda m: {"model": m, "input": "hi"}, False),
    ("POST", "/v1/messages", lambda m: {"model": m, "max_tokens": 5, "messages": MSG}, True),
    ("POST", "/v1/messages/count_tokens", lambda m: {"model": m, "messages": MSG}, True),
    ("GET", "/v1/models/{m}", None, False),
    ("GET", "/v1/route?model={m}", None, False),
]


@pytest.fixture
def restricted(install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream) -> str:
    inst = make_provider("shared", "openai", upstream_url=fake_upstream.url)
    make_mapping("tenant-a-model", inst, "fake-gpt")
    make_mapping(OTHER, inst, "fake-gpt", supports_embeddings=True)
    key = make_vkey("tenant-a", models=["tenant-a-model"]).plaintext
    install_table()
    return key


def _call(gw: InProcessGateway, key: str, method: str, path: str, body: Any, model: str) -> Any:
    auth = {"authorization": f"Bearer {key}"}

    async def go(client: httpx.AsyncClient) -> httpx.Response:
        if body is None:
            return await client.get(path.format(m=model), headers=auth)
        return await client.post(path, json=body(model), headers=auth)

    return gw.run(go)


@pytest.mark.parametrize(("method", "path", "body", "anthropic"), ENDPOINTS)
def test_another_tenants_alias_answers_like_an_unknown_one(
    restricted: str,
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    method: str,
    path: str,
    body: Any,
    anthropic: bool,
) -> None:
    other = _call(gateway, restricted, method, path, body, OTHER)
    unknown = _call(gateway, restricted, method, path, body, UNKNOWN)
    assert other.status_code == unknown.status_code == 404, other.text
    assert other.text.replace(OTHER, UNKNOWN) == unknown.text
    if anthropic:
        assert other.json()["type"] == "error"
        assert other.json()["error"]["type"] == "not_found_error"
    else:
        assert other.json()["error"]["code"] == "model_not_found"
    assert fake_upstream.requests() == []


def test_route_shows_no_instance_wide_usage_nor_key_names(
    restricted: str, gateway: InProcessGateway
) -> None:
    data = _call(gateway, restricted, "GET", "/v1/route?model={m}", None, "tenant-a-model").json()
    [entry] = data["candidates"]
    assert entry["provider_name"] == "shared"
    for hidden in ("key_name", "in_flight", "latency_ms", "cooling_account_groups"):
        assert hidden not in entry
    assert "failure_count" not in entry["circuit"]
    assert set(entry["limits"]) == {"requests_per_minute", "tokens_per_minute"}


def test_answers_do_not_name_provider_keys(
    install_table: Callable[[], RouteTable],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
) -> None:
    inst = make_provider(
        "two-keys",
        "openai",
        upstream_url=fake_upstream.url,
        keys=[{"name": "key-main-secretname", "primary": True}, {"name": "key-spare-name"}],
    )
    make_mapping("m", inst, "fake-gpt")
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(401, "revoked"), key=inst.api_keys["key-main-secretname"])
    response = _call(
        gateway, key, "POST", "/v1/chat/completions", lambda m: {"model": m, "messages": MSG}, "m"
    )
    assert response.status_code == 200
    assert "x-gateway-key-name" not in response.headers
    shown = " ".join(f"{k}: {v}" for k, v in response.headers.items()) + response.text
    assert "key-main-secretname" not in shown and "key-spare-name" not in shown
    assert response.headers["x-gateway-attempts"] == "2"
    assert response.headers["x-gateway-attempt-trail"].startswith(f"{inst.id}:401:")
