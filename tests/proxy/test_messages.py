"""``POST /v1/messages`` and ``/v1/messages/count_tokens`` in process, against the loopback fake:
tier mapping, native vs translated routing, max_tokens clamping, usage events, error shapes,
token counts, and no SQL on a warm request."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from gateway.proxy.token_count import count_anthropic_request, count_text
from gateway.routing.table import RouteTable
from gateway.routing.tiers import TierRules
from gateway.usage.events import InMemoryUsageQueue
from mappings.models import TierAlias, TierPattern
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.upstream import Behaviour, FakeUpstream
from tests.proxy.conftest import InProcessGateway, all_threads_queries

HELLO = [{"role": "user", "content": "hello there gateway"}]


@pytest.fixture
def world(install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream) -> dict[str, Any]:
    native = make_provider("claude-inst", "anthropic", upstream_url=fake_upstream.url)
    openai_inst = make_provider("gpt-inst", "openai", upstream_url=fake_upstream.url)
    mock_inst = make_provider("mock-inst", "mock")
    make_mapping("big-alias", native, "claude-fake", max_output_tokens=64)
    make_mapping("small-alias", openai_inst, "fake-gpt-mini", max_output_tokens=32)
    make_mapping("mock-alias", mock_inst)
    make_mapping("claude-exact", openai_inst, "fake-gpt")
    TierAlias.objects.create(tier="big", alias="big-alias")
    TierAlias.objects.create(tier="middle", alias="big-alias")
    TierAlias.objects.create(tier="small", alias="small-alias")
    key = make_vkey("msg-app").plaintext
    table = install_table()
    return {"key": key, "table": table, "native": native, "openai": openai_inst}


def post(
    gateway: InProcessGateway,
    key: str | None,
    body: Any,
    path: str = "/v1/messages",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"x-api-key": key} if key else {}
    sent.update(headers or {})

    async def call(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(path, content=orjson.dumps(body), headers=sent)

    return gateway.run(call)


def msg(model: str, **extra: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 100, "messages": HELLO, **extra}


# -- tier rules ------------------------------------------------------------------------------


def test_tier_rules_resolution_order() -> None:
    rules = TierRules(aliases={"big": "gpt-4o", "middle": "gpt-4o-m", "small": "gpt-4o-mini"})
    aliases = {"gpt-4o", "gpt-4o-mini", "claude-3-5-haiku-latest-pinned"}
    assert rules.alias_for("claude-3-5-haiku-latest", aliases) == "gpt-4o-mini"
    assert rules.alias_for("Claude-Sonnet-4-5", aliases) == "gpt-4o-m"  # case-insensitive
    assert rules.alias_for("claude-opus-4-1", aliases) == "gpt-4o"
    assert rules.alias_for("claude-next-unknown", aliases) == "gpt-4o"  # default tier: big
    assert rules.alias_for("gpt-4o-mini", aliases) == "gpt-4o-mini"  # an alias as is
    assert rules.alias_for("claude-3-5-haiku-latest-pinned", aliases) == (
        "claude-3-5-haiku-latest-pinned"  # exact alias wins over *haiku*
    )
    assert rules.alias_for("llama3", aliases) is None
    custom = TierRules(aliases={"small": "s", "big": "b"}, patterns=(("*fast*", "small"),))
    assert custom.alias_for("claude-fast", set()) == "s"
    assert custom.alias_for("claude-3-5-haiku", set()) == "b"  # defaults replaced


def test_stored_patterns_and_default_reach_the_table(
    install_table: Callable[[], RouteTable],
) -> None:
    TierAlias.objects.create(tier="small", alias="cheap", is_default=True)
    TierPattern.objects.create(position=0, pattern="*Mini*", tier="small")
    table = install_table()
    assert table.tiers.patterns == (("*mini*", "small"),) and table.tiers.default == "small"
    assert table.tiers.alias_for("claude-whatever", table.aliases) == "cheap"
    assert table.tiers.alias_for("o4-mini", table.aliases) == "cheap"


# -- routing ---------------------------------------------------------------------------------


def test_haiku_goes_to_the_small_alias_translated_with_clamped_max_tokens(
    world: dict[str, Any],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    usage_queue: InMemoryUsageQueue,
) -> None:
    response = post(gateway, world["key"], msg("claude-3-5-haiku-latest", max_tokens=5000))
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["type"] == "message" and data["model"] == "claude-3-5-haiku-latest"
    assert data["content"] == [{"type": "text", "text": "Echo: hello there gateway"}]
    assert data["stop_reason"] == "end_turn"
    [req] = fake_upstream.requests()
    assert req.route == "openai_chat" and req.json["model"] == "fake-gpt-mini"
    assert req.json["max_tokens"] == 32  # clamped to the mapping's max_output_tokens
    [event] = usage_queue.drain()
    assert event.endpoint == "messages" and event.model_alias == "small-alias"
    assert event.provider_id == world["openai"].id and event.provider_type == "openai"
    assert (event.prompt_tokens, event.completion_tokens) == (3, 4)
    assert data["usage"]["input_tokens"] == 3 and data["usage"]["output_tokens"] == 4


def test_unknown_claude_name_goes_native_to_big_with_headers_forwarded(
    world: dict[str, Any],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    usage_queue: InMemoryUsageQueue,
) -> None:
    headers = {"anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024-04-04"}
    body = msg("claude-unknown-99", max_tokens=1000, top_k=5)
    response = post(gateway, world["key"], body, headers=headers)
    assert response.status_code == 200, response.text
    [req] = fake_upstream.requests()
    assert req.route == "anthropic_messages"
    assert req.json == {**body, "model": "claude-fake", "max_tokens": 64}  # native, clamped
    assert req.headers["anthropic-beta"] == "tools-2024-04-04"
    assert req.headers["x-api-key"] == world["native"].api_key
    assert response.json()["model"] == "claude-fake"  # relayed as is
    [event] = usage_queue.drain()
    assert event.provider_id == world["native"].id and event.endpoint == "messages"
    assert event.prompt_tokens == 3 and event.completion_tokens > 0


def test_exact_alias_wins_over_patterns(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    response = post(gateway, world["key"], msg("claude-exact"))
    assert response.status_code == 200
    assert fake_upstream.requests()[0].json["model"] == "fake-gpt"


def test_native_stream_is_relayed_and_usage_read(
    world: dict[str, Any], gateway: InProcessGateway, usage_queue: InMemoryUsageQueue
) -> None:
    response = post(gateway, world["key"], msg("claude-opus-4", stream=True))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream"
    names = [line[7:] for line in response.text.splitlines() if line.startswith("event: ")]
    assert names[0] == "message_start" and names[-1] == "message_stop"
    assert "content_block_delta" in names and "message_delta" in names
    [event] = usage_queue.drain()
    assert event.stream and event.prompt_tokens == 3 and event.completion_tokens == 4


def test_translated_stream_with_tool_call(
    world: dict[str, Any], gateway: InProcessGateway, usage_queue: InMemoryUsageQueue
) -> None:
    tools = [{"name": "lookup", "input_schema": {"type": "object", "properties": {}}}]
    response = post(gateway, world["key"], msg("claude-haiku-4", stream=True, tools=tools))
    events = [
        orjson.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")
    ]
    kinds = [e["type"] for e in events]
    assert kinds[:2] == ["message_start", "ping"] and kinds[-1] == "message_stop"
    start = next(e for e in events if e["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["name"]
    assert start["content_block"]["id"]
    args = "".join(
        e["delta"]["partial_json"]
        for e in events
        if e["type"] == "content_block_delta" and e["delta"]["type"] == "input_json_delta"
    )
    assert orjson.loads(args) == {"input": "hello there gateway"}
    delta = next(e for e in events if e["type"] == "message_delta")
    assert delta["delta"]["stop_reason"] == "tool_use" and delta["usage"]["output_tokens"] > 0
    [event] = usage_queue.drain()
    assert event.provider_id == world["openai"].id and event.completion_tokens > 0


def test_failover_before_first_byte(
    install_table: Callable[[], RouteTable],
    fake_upstream: FakeUpstream,
    gateway: InProcessGateway,
    usage_queue: InMemoryUsageQueue,
) -> None:
    first = make_provider("first", "anthropic", upstream_url=fake_upstream.url)
    second = make_provider("second", "openai", upstream_url=fake_upstream.url)
    make_mapping("claude-x", first, priority=1)
    make_mapping("claude-x", second, priority=2)
    key = make_vkey().plaintext
    install_table()
    fake_upstream.behave(Behaviour.fail(529), key=first.api_key)
    response = post(gateway, key, msg("claude-x", stream=True))
    assert response.status_code == 200 and "text_delta" in response.text
    assert response.headers["x-gateway-provider-name"] == "second"
    [event] = usage_queue.drain()
    assert event.provider_id == second.id and [a.status for a in event.attempts] == [529, 200]


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "body", "status", "etype"),
    [
        (None, msg("big-alias"), 401, "authentication_error"),
        ("sk-wrong", msg("big-alias"), 401, "authentication_error"),
        ("ok", msg("llama-unknown"), 404, "not_found_error"),
        ("ok", {"model": "big-alias", "messages": HELLO}, 400, "invalid_request_error"),
        (
            "ok",
            {"model": "big-alias", "max_tokens": 5, "messages": []},
            400,
            "invalid_request_error",
        ),
        ("ok", [1, 2], 400, "invalid_request_error"),
    ],
)
def test_errors_in_anthropic_shape(
    world: dict[str, Any],
    gateway: InProcessGateway,
    key: str | None,
    body: Any,
    status: int,
    etype: str,
) -> None:
    response = post(gateway, world["key"] if key == "ok" else key, body)
    assert response.status_code == status
    data = response.json()
    assert data["type"] == "error" and data["error"]["type"] == etype
    assert data["error"]["message"]


def test_upstream_error_relayed_in_anthropic_shape(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    fake_upstream.behave(Behaviour.fail(400, "prompt is too long"))
    response = post(gateway, world["key"], msg("small-alias"))
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "invalid_request_error",
        "message": "prompt is too long",
        "provider_id": world["openai"].id,
    }


# -- count_tokens ----------------------------------------------------------------------------


def test_tokenizer_counts_for_real() -> None:
    assert count_text("hello world", "gpt-4o") == 2
    assert count_text("hello world", "gpt-4") == 2
    assert count_text("<|endoftext|>", "gpt-4o") > 1  # special-token text counts as text
    body = {"model": "x", "messages": [{"role": "user", "content": "hello world"}]}
    # OpenAI's cookbook: 3 per message + "user" (1) + content (2) + 3 priming = 9.
    assert count_anthropic_request(body, model="gpt-4o") == 9
    system = count_anthropic_request({**body, "system": "Be brief."}, model="gpt-4o")
    assert system == 9 + 3 + 1 + count_text("Be brief.")
    tools = [{"name": "lookup", "description": "Find a thing", "input_schema": {"type": "object"}}]
    assert count_anthropic_request({**body, "tools": tools}, model="gpt-4o") > 9 + 5


def test_count_tokens_for_both_target_kinds(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    body = {"model": "claude-3-5-haiku-latest", "messages": HELLO}
    local = post(gateway, world["key"], body, "/v1/messages/count_tokens")
    assert local.status_code == 200, local.text
    expected = 3 + 1 + count_text("hello there gateway", "fake-gpt-mini") + 3
    assert local.json() == {"input_tokens": expected}
    assert fake_upstream.requests() == []  # counted here, not asked upstream

    native = post(
        gateway, world["key"], {**body, "model": "claude-opus-4"}, "/v1/messages/count_tokens"
    )
    assert native.status_code == 200, native.text
    assert native.json() == {"input_tokens": 3}  # the fake's count
    [req] = fake_upstream.requests()
    assert req.route == "anthropic_count_tokens" and req.json["model"] == "claude-fake"

    bad = post(gateway, world["key"], {"messages": HELLO}, "/v1/messages/count_tokens")
    assert bad.status_code == 400 and bad.json()["type"] == "error"


# -- zero SQL --------------------------------------------------------------------------------


def test_warm_messages_requests_run_no_sql(
    world: dict[str, Any],
    gateway: InProcessGateway,
    django_assert_num_queries: Callable,
) -> None:
    async def calls(client: httpx.AsyncClient) -> list[httpx.Response]:
        auth = {"x-api-key": world["key"]}
        out = []
        for body in (
            msg("claude-opus-4"),
            msg("claude-3-5-haiku-latest"),
            msg("mock-alias"),
            msg("claude-opus-4", stream=True),
            msg("claude-3-5-haiku-latest", stream=True),
        ):
            out.append(await client.post("/v1/messages", json=body, headers=auth))
        count = {"model": "claude-3-5-haiku-latest", "messages": HELLO}
        out.append(await client.post("/v1/messages/count_tokens", json=count, headers=auth))
        return out

    gateway.run(calls)  # warm (tokenizer loaded)
    with all_threads_queries() as queries, django_assert_num_queries(0):
        responses = gateway.run(calls)
    assert [r.status_code for r in responses] == [200] * 6, [r.text for r in responses]
    assert queries == []


def test_server_tools_go_natively_and_are_refused_for_openai_targets(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    tools = [{"type": "web_search_20250305", "name": "web_search"}]
    native = post(gateway, world["key"], msg("claude-opus-4", tools=tools))
    assert native.status_code == 200, native.text
    assert fake_upstream.requests()[0].json["tools"] == tools
    refused = post(gateway, world["key"], msg("claude-3-5-haiku-latest", tools=tools))
    assert refused.status_code == 400
    assert refused.json()["error"]["type"] == "invalid_request_error"
    assert "only at Anthropic" in refused.json()["error"]["message"]
    assert len(fake_upstream.requests()) == 1
