"""Revocation within ``GATEWAY_CONFIG_MAX_STALENESS``, in process (SQLite, no Redis).

A change committed while the process is idle is applied by the very next request after the
window: the background refresher picks it up with no traffic, and a request finding its table
older than the window checks before it is served. A failing check serves the last good table.
The multi-process twin on PostgreSQL + Redis is ``tests/e2e/test_revocation.py``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from gateway.keys.models import VirtualKey, hash_key
from gateway.routing import holder
from gateway.routing.holder import route_tables
from tests.factories import make_mapping, make_provider, make_vkey
from tests.proxy.conftest import InProcessGateway

pytestmark = pytest.mark.django_db(transaction=True)

WINDOW = 0.3


@pytest.fixture
def gw(settings: Any, usage_queue: Any) -> Iterator[InProcessGateway]:
    settings.GATEWAY_CONFIG_MAX_STALENESS = WINDOW
    route_tables.reset()
    gateway = InProcessGateway()
    yield gateway
    gateway.run(lambda _c: route_tables.stop_refresher())
    gateway.close()
    route_tables.reset()


def chat(key: str, model: str = "chat") -> Any:
    async def call(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "hi"}]},
            headers={"authorization": f"Bearer {key}"},
        )

    return call


def idle(gateway: InProcessGateway, seconds: float) -> None:
    """Let the process's event loop run with no request in flight."""
    gateway.run(lambda _c: asyncio.sleep(seconds))


def disable(key: str) -> None:
    row = VirtualKey.objects.get(key_hash=hash_key(key))
    row.is_enabled = False
    row.save()


def test_disabled_key_and_new_alias_apply_after_the_window_with_no_traffic(
    gw: InProcessGateway,
) -> None:
    inst = make_provider("inst", "mock")
    make_mapping("chat", inst)
    key = make_vkey("app").plaintext
    assert gw.run(chat(key)).status_code == 200  # warm: table built, refresher running

    disable(key)
    make_mapping("late", inst)
    idle(gw, WINDOW * 2)
    # Applied in the background: no request was needed to trigger the rebuild.
    table = route_tables.table
    assert table is not None and not table.virtual_keys[hash_key(key)].is_enabled
    assert "late" in table.aliases

    first = gw.run(chat(key))
    assert first.status_code == 401 and first.json()["error"]["code"] == "api_key_disabled"
    other = make_vkey("other").plaintext
    idle(gw, WINDOW * 2)
    assert gw.run(chat(other, "late")).status_code == 200


def test_a_request_checks_a_table_older_than_the_window_before_serving(
    gw: InProcessGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The refresher fell behind (here: never runs): the request path does the check itself."""
    monkeypatch.setattr(holder.RouteTableHolder, "start_refresher", lambda self: None)
    inst = make_provider("inst", "mock")
    make_mapping("chat", inst)
    key = make_vkey("app").plaintext
    assert gw.run(chat(key)).status_code == 200
    disable(key)
    idle(gw, WINDOW * 1.5)
    assert route_tables.table is not None
    assert route_tables.table.virtual_keys[hash_key(key)].is_enabled  # nobody refreshed
    first = gw.run(chat(key))
    assert first.status_code == 401, first.text


def test_a_failing_check_serves_the_last_good_table(
    gw: InProcessGateway, monkeypatch: pytest.MonkeyPatch, django_db_blocker: Any
) -> None:
    """The database is down: a warm process keeps serving, with no error."""
    monkeypatch.setattr(holder.RouteTableHolder, "start_refresher", lambda self: None)
    inst = make_provider("inst", "mock")
    make_mapping("chat", inst)
    key = make_vkey("app").plaintext
    assert gw.run(chat(key)).status_code == 200
    idle(gw, WINDOW * 1.5)
    with django_db_blocker.block():
        statuses = [gw.run(chat(key)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]


def test_a_hanging_check_serves_the_last_good_table(
    gw: InProcessGateway, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The version marker does not answer at all: requests stop waiting for it."""
    monkeypatch.setattr(holder.RouteTableHolder, "start_refresher", lambda self: None)
    inst = make_provider("inst", "mock")
    make_mapping("chat", inst)
    key = make_vkey("app").plaintext
    assert gw.run(chat(key)).status_code == 200
    idle(gw, WINDOW * 1.5)

    async def never() -> str:
        await asyncio.Event().wait()
        return ""

    monkeypatch.setattr(holder, "config_version_current", never)
    monkeypatch.setattr(holder, "SYNC_CHECK_WAIT", 0.05)
    assert [gw.run(chat(key)).status_code for _ in range(3)] == [200, 200, 200]
