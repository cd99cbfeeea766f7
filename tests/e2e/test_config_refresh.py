"""A configuration change reaches a running gateway process without a restart.

The process applies a change within ``GATEWAY_CONFIG_MAX_STALENESS`` (0.5 s
here) and rebuilds its route table; these tests change rows the way admin does (model saves,
which bump the version) and poll, bounded, until requests see the change.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest

from gateway.keys.models import VirtualKey, hash_key
from tests.e2e.conftest import GatewayServer, World

pytestmark = pytest.mark.e2e

T = TypeVar("T")
DEADLINE = 10.0


def eventually(probe: Callable[[], T], ok: Callable[[T], bool]) -> T:
    """Call ``probe`` until ``ok(result)``; fail after DEADLINE seconds with the last result."""
    deadline = time.monotonic() + DEADLINE
    while True:
        result = probe()
        if ok(result):
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"change not visible after {DEADLINE} s; last: {result!r}")
        time.sleep(0.05)


def chat(server: GatewayServer, key: str, model: str = "switch") -> httpx.Response:
    return httpx.post(
        server.base_url + "/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=10,
    )


def check_mapping_changes(e2e: World, server: GatewayServer) -> None:
    pid = server.process.pid
    a = e2e.provider("inst-a")
    b = e2e.provider("inst-b")
    mapping = e2e.mapping("switch", a)
    key = e2e.vkey()
    e2e.publish(server)
    first = chat(server, key)
    assert first.headers["x-gateway-provider-id"] == str(a.id)

    # Point the alias at another instance.
    mapping.provider = b.provider
    mapping.save()
    eventually(
        lambda: chat(server, key), lambda r: r.headers.get("x-gateway-provider-id") == str(b.id)
    )
    assert e2e.fake.requests()[-1].api_key == b.api_key

    # Disable it: the alias disappears.
    mapping.is_enabled = False
    mapping.save()
    gone = eventually(lambda: chat(server, key), lambda r: r.status_code == 404)
    assert gone.json()["error"]["code"] == "model_not_found"

    # Disable the app's key: refused from the next check on.
    vkey = VirtualKey.objects.get(key_hash=hash_key(key))
    vkey.is_enabled = False
    vkey.save()
    refused = eventually(lambda: chat(server, key), lambda r: r.status_code == 401)
    assert refused.json()["error"]["code"] == "api_key_disabled"
    assert server.process.poll() is None and server.process.pid == pid  # no restart


def test_changes_are_seen_without_restart(e2e: World) -> None:
    check_mapping_changes(e2e, e2e.server)


def test_changes_are_seen_through_redis(
    e2e: World, with_redis: str, gateway_factory: Callable[..., GatewayServer]
) -> None:
    """With Redis, the version lives there: the test process bumps it on commit."""
    server = gateway_factory(REDIS_URL=with_redis)
    check_mapping_changes(e2e, server)
