"""In-process request-path fixtures: the ASGI app called through ``httpx.ASGITransport`` with a
route table built from the test database and installed by hand (no background refresh)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from unittest import mock

import httpx
import pytest
from django.db.backends.utils import CursorWrapper

from gateway.proxy.app import GatewayApp
from gateway.routing.holder import route_tables
from gateway.routing.state import releases_flush
from gateway.routing.table import RouteTable, route_table_build
from gateway.usage.events import InMemoryUsageQueue, set_usage_queue
from providers import http
from tests.fakes.upstream import fake_upstream, fake_upstream_server  # noqa: F401

T = TypeVar("T")


async def not_django(scope: Any, receive: Any, send: Any) -> None:
    """Stands in for Django: the /v1 endpoints must never reach it."""
    raise AssertionError(f"request fell through to Django: {scope.get('path')}")


class InProcessGateway:
    """The gateway's ASGI app on one event loop kept across calls (so a test can warm it up,
    then measure), driven from sync test code."""

    def __init__(self, django: Any = not_django, base_url: str = "http://gateway") -> None:
        self.app = GatewayApp(django)
        self.loop = asyncio.new_event_loop()
        self.client = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=self.app), base_url=base_url
        )

    def run(self, fn: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
        result = self.loop.run_until_complete(fn(self.client))
        # The loop stops between calls, so a queued release's timer cannot fire: send them
        # now, as the linger would have, for tests that read the shared state directly.
        self.loop.run_until_complete(releases_flush())
        return result

    def close(self) -> None:
        self.loop.run_until_complete(self.client.aclose())
        self.loop.run_until_complete(http.close_client())
        self.loop.close()


@pytest.fixture
def usage_queue() -> Iterator[InMemoryUsageQueue]:
    queue = InMemoryUsageQueue()
    set_usage_queue(queue)
    yield queue
    set_usage_queue(None)


@pytest.fixture
def install_table(db: None, usage_queue: InMemoryUsageQueue) -> Iterator[Callable[[], RouteTable]]:
    """Call after creating the configuration: builds the table and installs it, frozen."""

    def install() -> RouteTable:
        table = route_table_build()
        route_tables.install(table)
        route_tables.auto_refresh = False
        return table

    yield install
    route_tables.reset()


@pytest.fixture
def gateway() -> Iterator[InProcessGateway]:
    gw = InProcessGateway()
    yield gw
    gw.close()


@contextmanager
def all_threads_queries() -> Iterator[list[str]]:
    """SQL run on *any* thread while active (CaptureQueriesContext sees only this thread's
    connection; ``sync_to_async`` work runs on others)."""
    seen: list[str] = []
    lock = threading.Lock()
    original = CursorWrapper._execute_with_wrappers

    def spy(self: CursorWrapper, sql: str, *args: Any, **kwargs: Any) -> Any:
        with lock:
            seen.append(f"[{threading.current_thread().name}] {sql}")
        return original(self, sql, *args, **kwargs)

    with mock.patch.object(CursorWrapper, "_execute_with_wrappers", spy):
        yield seen


def _chat(model: str, *, stream: bool = False) -> dict:
    return {
        "model": model,
        "stream": stream,
        "messages": [{"role": "user", "content": "count my queries"}],
    }


async def hot_requests(client: httpx.AsyncClient, key: str) -> list[httpx.Response]:
    """Every kind of hot request, in order: chat (mock and upstream, plain and streamed),
    embeddings, the model list and one model. The zero-SQL and no-sync-I/O tests share it."""
    auth = {"authorization": f"Bearer {key}"}
    out = []
    for body in (
        _chat("mock-chat"),
        _chat("up-chat"),
        _chat("mock-chat", stream=True),
        _chat("up-chat", stream=True),
    ):
        out.append(await client.post("/v1/chat/completions", json=body, headers=auth))
    out.append(
        await client.post("/v1/embeddings", json={"model": "up-embed", "input": "x"}, headers=auth)
    )
    out.append(await client.get("/v1/models", headers=auth))
    out.append(await client.get("/v1/models/up-chat", headers=auth))
    return out


def check_hot_responses(responses: list[httpx.Response]) -> None:
    assert [r.status_code for r in responses] == [200] * 7, [r.text for r in responses]
    assert "data: [DONE]" in responses[2].text and "data: [DONE]" in responses[3].text
    assert responses[1].json()["choices"][0]["message"]["content"] == "Echo: count my queries"
