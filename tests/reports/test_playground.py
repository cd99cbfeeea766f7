"""The playground runs the real chat flow as the staff user's own key: the answer streams from
a loopback fake upstream, the usage event is marked playground, failures show the upstream's
text (redacted) and the attempts, and the run is CSRF-protected."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.test import AsyncClient, Client
from django.urls import reverse

from gateway.keys.models import VirtualKey
from gateway.reports.playground import KEY_PREFIX
from gateway.routing.holder import route_tables
from gateway.routing.table import route_table_build
from gateway.usage.events import InMemoryUsageQueue, set_usage_queue
from providers import http
from tests.factories import make_mapping, make_provider
from tests.fakes.upstream import Behaviour, FakeUpstream, fake_upstream, fake_upstream_server  # noqa: F401
from tests.reports.helpers import make_user

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def queue() -> Iterator[InMemoryUsageQueue]:
    q = InMemoryUsageQueue()
    set_usage_queue(q)
    yield q
    set_usage_queue(None)


@pytest.fixture
def world(fake_upstream: FakeUpstream, queue: InMemoryUsageQueue) -> Iterator[dict[str, Any]]:  # noqa: F811
    a = make_provider("pg-a", "openai", upstream_url=fake_upstream.url)
    b = make_provider("pg-b", "openai", upstream_url=fake_upstream.url)
    make_mapping("chat", a, "fake-gpt", priority=1)
    make_mapping("chat", b, "fake-gpt", priority=2)
    route_tables.install(route_table_build())
    route_tables.auto_refresh = False
    user = make_user(staff=True)
    yield {"a": a, "b": b, "user": user}
    route_tables.reset()


async def _close() -> None:
    """Close the HTTP client and the database connection of ``sync_to_async``'s thread (left
    open, it keeps PostgreSQL from dropping the test database)."""
    await http.close_client()
    await sync_to_async(connections.close_all)()


async def _run(client: AsyncClient, **data: str) -> tuple[int, dict[str, str], bytes]:
    response = await client.post(reverse("ops-playground-run"), data)
    if response.streaming:
        body = b"".join([chunk async for chunk in response.streaming_content])
    else:
        body = response.content
    headers = {k.lower(): v for k, v in response.headers.items()}
    return response.status_code, headers, body


async def test_streams_an_answer_and_is_recorded_as_playground(
    world: dict[str, Any], queue: InMemoryUsageQueue
) -> None:
    client = AsyncClient()
    await sync_to_async(client.force_login)(world["user"])
    try:
        status, headers, body = await _run(client, alias="chat", prompt="hello there")
        (event,) = queue.drain()
        key = await VirtualKey.objects.aget(pk=event.virtual_key_id)
    finally:
        await _close()
    assert status == 200, body
    assert event.endpoint == "playground" and event.model_alias == "chat"
    assert event.status_code == 200 and event.stream and event.completion_tokens > 0
    assert headers["content-type"].startswith("text/event-stream")
    assert b"Echo" in body and b"data: [DONE]" in body
    assert headers["x-gateway-provider-name"] == "pg-a"
    assert headers["x-gateway-attempt-text"].startswith("pg-a (primary) -> 200, ")
    assert key.name == KEY_PREFIX + world["user"].username


async def test_pinned_instance_and_a_failure_shows_redacted_text_and_attempts(
    world: dict[str, Any],
    fake_upstream: FakeUpstream,  # noqa: F811
    queue: InMemoryUsageQueue,
) -> None:
    secret = world["b"].api_keys["primary"]
    fake_upstream.behave(Behaviour.fail(401, f"Incorrect API key provided: {secret}"))
    client = AsyncClient()
    await sync_to_async(client.force_login)(world["user"])
    try:
        status, _, body = await _run(
            client, alias="chat", prompt="hi", instance=str(world["b"].provider.pk)
        )
    finally:
        await _close()
    assert status == 401
    answer = __import__("json").loads(body)
    assert "Incorrect API key" in answer["error"] and secret not in answer["error"]
    assert answer["attempts"] and answer["attempts"][0].startswith("pg-b")
    (event,) = queue.drain()
    assert event.endpoint == "playground" and event.provider_id == world["b"].provider.pk


def test_page_lists_aliases_and_run_needs_csrf(world: dict[str, Any]) -> None:
    client = Client(enforce_csrf_checks=True)
    client.force_login(world["user"])
    page = client.get(reverse("ops-playground"))
    assert page.status_code == 200
    html = page.content.decode()
    assert '<option value="chat">chat</option>' in html and "csrfmiddlewaretoken" in html
    refused = client.post(reverse("ops-playground-run"), {"alias": "chat", "prompt": "x"})
    assert refused.status_code == 403


def test_bad_input_is_a_clear_4xx(world: dict[str, Any]) -> None:
    client = Client()
    client.force_login(world["user"])
    empty = client.post(reverse("ops-playground-run"), {"alias": "chat", "prompt": "  "})
    assert empty.status_code == 400 and "prompt" in empty.json()["error"]
    unknown = client.post(
        reverse("ops-playground-run"), {"alias": "chat", "prompt": "x", "instance": "99999"}
    )
    assert unknown.status_code == 404 and "no mapping on instance" in unknown.json()["error"]
    words = client.post(
        reverse("ops-playground-run"), {"alias": "chat", "prompt": "x", "max_tokens": "lots"}
    )
    assert words.status_code == 400 and "max_tokens" in words.json()["error"]
    anon = Client().post(reverse("ops-playground-run"), {"alias": "chat", "prompt": "x"})
    assert anon.status_code == 302
