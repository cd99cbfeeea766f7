"""A bedrock instance's answers, whole and streamed, hand their usage to the usage queue with
the instance and key that served them (what usage and cost per instance are built from)."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from gateway.routing.table import RouteTable
from gateway.usage.events import InMemoryUsageQueue
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import InProcessGateway


def test_usage_events_name_the_bedrock_instance_and_key(
    install_table: Callable[[], RouteTable],
    fake_upstream: FakeUpstream,
    gateway: InProcessGateway,
    usage_queue: InMemoryUsageQueue,
) -> None:
    inst = make_provider("br-usage", "bedrock", upstream_url=fake_upstream.url)
    make_mapping("m", inst)
    _, key = make_vkey("bedrock-usage")
    install_table()
    auth = {"authorization": f"Bearer {key}"}
    chat = {"model": "m", "messages": [{"role": "user", "content": "three little words"}]}

    async def call(client: httpx.AsyncClient) -> tuple[httpx.Response, httpx.Response]:
        whole = await client.post("/v1/chat/completions", json=chat, headers=auth)
        streamed = await client.post(
            "/v1/chat/completions", json={**chat, "stream": True}, headers=auth
        )
        return whole, streamed

    whole, streamed = gateway.run(call)
    assert whole.status_code == 200 and streamed.status_code == 200
    assert "data: [DONE]" in streamed.text
    events = usage_queue.drain()
    assert [e.stream for e in events] == [False, True]
    served = fake_upstream.requests()
    for event, request in zip(events, served, strict=True):
        assert event.provider_id == inst.id and event.provider_type == "bedrock"
        assert event.key_id == inst.keys["primary"].id
        assert event.provider_model == "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
        assert request.usage is not None
        assert event.prompt_tokens == request.usage["prompt_tokens"] > 0
        assert event.completion_tokens == request.usage["completion_tokens"] > 0
