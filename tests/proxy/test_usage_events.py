"""Every request after authentication hands exactly one usage event to the queue."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.routing.table import RouteTable
from gateway.usage.events import InMemoryUsageQueue, UsageEvent
from tests.factories import Instance, make_mapping, make_provider, make_vkey
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.proxy.conftest import InProcessGateway


@pytest.fixture
def setup(
    install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream
) -> tuple[Instance, int, str]:
    inst = make_provider(
        "usage-inst",
        "openai",
        upstream_url=fake_upstream.url,
        keys=[
            {"name": "first", "primary": True, "account_group": 3},
            {"name": "second", "account_group": 7},
        ],
    )
    make_mapping("m", inst, "fake-gpt")
    vkey, plaintext = make_vkey("usage-app")
    install_table()
    return inst, vkey.id, plaintext


def one_event(queue: InMemoryUsageQueue) -> UsageEvent:
    events = queue.drain()
    assert len(events) == 1, events
    return events[0]


def post(gateway: InProcessGateway, key: str, body: dict, path: str = "/v1/chat/completions"):
    async def call(client):
        return await client.post(path, json=body, headers={"authorization": f"Bearer {key}"})

    return gateway.run(call)


CHAT = {"model": "m", "messages": [{"role": "user", "content": "three little words"}]}


def test_chat_event_after_key_failover(
    setup: tuple[Instance, int, str],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    usage_queue: InMemoryUsageQueue,
) -> None:
    inst, vkey_id, key = setup
    fake_upstream.behave(Behaviour.fail(401), key=inst.api_keys["first"])
    response = post(gateway, key, CHAT)
    assert response.status_code == 200
    event = one_event(usage_queue)
    served = fake_upstream.requests()[-1]
    assert served.usage is not None
    assert event.status_code == 200 and event.endpoint == "chat" and not event.stream
    assert event.request_id == response.headers["x-request-id"]
    assert event.virtual_key_id == vkey_id and event.model_alias == "m"
    assert event.provider_id == inst.id and event.provider_type == "openai"
    assert event.key_id == inst.keys["second"].id and event.key_name == "second"
    assert event.account_group == 7
    assert event.provider_model == "fake-gpt"
    assert event.prompt_tokens == served.usage["prompt_tokens"] == 3
    assert event.completion_tokens == served.usage["completion_tokens"]
    assert [(a.key_id, a.status) for a in event.attempts] == [
        (inst.keys["first"].id, 401),
        (inst.keys["second"].id, 200),
    ]
    assert all(a.provider_id == inst.id for a in event.attempts)


def test_stream_event_counts_tokens_the_client_did_not_ask_for(
    setup: tuple[Instance, int, str],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    usage_queue: InMemoryUsageQueue,
) -> None:
    inst, _, key = setup
    response = post(gateway, key, {**CHAT, "stream": True})
    assert response.status_code == 200 and '"usage"' not in response.text
    event = one_event(usage_queue)
    served = fake_upstream.requests()[-1]
    assert event.stream and event.status_code == 200
    assert served.usage is not None
    assert (event.prompt_tokens, event.completion_tokens) == (
        served.usage["prompt_tokens"],
        served.usage["completion_tokens"],
    )
    assert event.key_id == inst.keys["first"].id and event.account_group == 3
    assert len(event.attempts) == 1


def test_embeddings_event(
    install_table: Callable[[], RouteTable],
    fake_upstream: FakeUpstream,
    gateway: InProcessGateway,
    usage_queue: InMemoryUsageQueue,
) -> None:
    inst = make_provider("emb", "openai", upstream_url=fake_upstream.url)
    make_mapping("e", inst, "fake-embed", supports_chat=False, supports_embeddings=True)
    _, key = make_vkey()
    install_table()
    response = post(gateway, key, {"model": "e", "input": ["a b c", "d"]}, "/v1/embeddings")
    assert response.status_code == 200
    event = one_event(usage_queue)
    assert event.endpoint == "embeddings" and event.prompt_tokens == 4
    assert event.provider_id == inst.id


def test_failed_request_event(
    setup: tuple[Instance, int, str],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    usage_queue: InMemoryUsageQueue,
) -> None:
    _, vkey_id, key = setup
    fake_upstream.behave(Behaviour.fail(400, "bad"))
    assert post(gateway, key, CHAT).status_code == 400
    event = one_event(usage_queue)
    assert event.status_code == 400 and event.virtual_key_id == vkey_id
    assert event.prompt_tokens == 0 and event.completion_tokens == 0
    assert len(event.attempts) == 1 and event.attempts[0].status == 400


def test_no_event_for_unauthenticated_or_invalid_requests(
    setup: tuple[Instance, int, str], gateway: InProcessGateway, usage_queue: InMemoryUsageQueue
) -> None:
    _, _, key = setup
    assert post(gateway, "sk-gw-unknown", CHAT).status_code == 401
    assert post(gateway, key, {"model": "m"}).status_code == 400
    assert len(usage_queue) == 0
