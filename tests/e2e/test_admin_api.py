"""The admin REST API against the real gateway process: a provider, key and mapping created
over HTTP serve requests to the new alias without a restart; the api_key never comes back."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission

from gateway.adminapi.services import api_token_create
from tests.e2e.conftest import World

pytestmark = pytest.mark.e2e
CONFIG_APPS = ("providers", "mappings", "gateway")
UPSTREAM_KEY = "sk-up-created-over-the-admin-api-4242"


def _token(*, staff: bool) -> str:
    user = get_user_model().objects.create_user(
        username=f"ops-{staff}-{time.monotonic_ns()}", password="x-123456789", is_staff=staff
    )
    # /api/ applies model permissions: this user may manage the configuration.
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label__in=CONFIG_APPS))
    return api_token_create(user=user, name="e2e")[1]


def test_provider_created_over_the_api_serves_without_restart(e2e: World) -> None:
    # A unique config version the process has already seen, so the API's bumps are new to it.
    e2e.publish(expect=set())
    api = e2e.http()
    api.headers["authorization"] = f"Bearer {_token(staff=True)}"
    bodies: list[str] = []

    def call(method: str, url: str, **kw: Any) -> httpx.Response:
        r = api.request(method, url, **kw)
        bodies.append(r.text)
        assert r.status_code < 300, (url, r.status_code, r.text)
        return r

    provider = call(
        "POST",
        "/api/providers/",
        json={
            "name": "api-made",
            "provider_type": "openai",
            "base_url": e2e.fake.url + "/v1",
            "timeout": 10,
            "max_retries": 0,
            "keys": [{"key_name": "main", "api_key": UPSTREAM_KEY, "is_primary": True}],
        },
    ).json()
    call(
        "POST",
        "/api/mappings/",
        json={
            "model_alias": "api-alias",
            "provider": provider["id"],
            "provider_model_id": "fake-gpt",
        },
    )
    vkey = call("POST", "/api/virtual-keys/", json={"name": "api-app"}).json()["key"]
    call("GET", "/api/providers/")
    call("GET", f"/api/providers/{provider['id']}/")

    deadline = time.monotonic() + 10
    while True:
        r = httpx.post(
            e2e.server.base_url + "/chat/completions",
            json={"model": "api-alias", "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {vkey}"},
            timeout=10,
        )
        if r.status_code == 200:
            break
        assert time.monotonic() < deadline, f"new alias never served: {r.status_code} {r.text}"
        time.sleep(0.05)
    assert r.headers["x-gateway-provider-id"] == str(provider["id"])
    assert e2e.fake.requests(key=UPSTREAM_KEY), "the upstream never saw the key set over the API"
    assert all(UPSTREAM_KEY not in body for body in bodies)


def test_non_staff_token_is_refused_by_the_server(e2e: World) -> None:
    r = httpx.get(
        e2e.server.url + "/api/providers/",
        headers={"authorization": f"Bearer {_token(staff=False)}"},
    )
    assert r.status_code == 403
    assert r.json()["error"]["type"] == "permission_denied"
