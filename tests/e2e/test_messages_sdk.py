"""The official ``anthropic`` SDK against the real gateway process (``POST /v1/messages``):
native routing to an ``anthropic`` instance and translated routing to an ``openai`` one, with
streams, tool use round trips, Claude tier mapping, failover, error shapes and count_tokens;
Claude Code's mid-conversation system messages, thinking, and errors the SDKs do not retry."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx2
import openai
import pytest

from mappings.models import TierAlias
from tests.e2e.conftest import World
from tests.fakes.api_rules import MID_CONVERSATION_SYSTEM_BETA
from tests.fakes.upstream import Behaviour
from tests.fakes.wire import echo_reply, tool_answer

TOOLS: list[Any] = [
    {
        "name": "lookup",
        "description": "Look a thing up",
        "input_schema": {"type": "object", "properties": {"input": {"type": "string"}}},
    }
]


@pytest.fixture
def setup(e2e: World) -> dict[str, Any]:
    native = e2e.provider("claude-native", "anthropic")
    gpt = e2e.provider("gpt-translated", "openai")
    e2e.mapping("claude-alias", native, "claude-fake")
    e2e.mapping("gpt-alias", gpt, "fake-gpt")
    e2e.mapping("gpt-mini-alias", gpt, "fake-gpt-mini")
    TierAlias.objects.create(tier="big", alias="claude-alias")
    TierAlias.objects.create(tier="middle", alias="gpt-alias")
    TierAlias.objects.create(tier="small", alias="gpt-mini-alias")
    key = e2e.vkey()
    e2e.publish()
    client = anthropic.Anthropic(base_url=e2e.server.url, api_key=key, max_retries=0, timeout=20)
    e2e._clients.append(client)
    return {"client": client, "key": key, "native": native, "gpt": gpt}


def text_of(message: Any) -> str:
    return "".join(b.text for b in message.content if b.type == "text")


@pytest.mark.parametrize(
    ("model", "route"), [("claude-alias", "anthropic_messages"), ("gpt-alias", "openai_chat")]
)
def test_create_and_stream(e2e: World, setup: dict[str, Any], model: str, route: str) -> None:
    client: anthropic.Anthropic = setup["client"]
    message = client.messages.create(
        model=model,
        max_tokens=200,
        system="You are terse.",
        messages=[{"role": "user", "content": "hello from the sdk"}],
    )
    assert text_of(message) == echo_reply("hello from the sdk")
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0

    with client.messages.stream(
        model=model, max_tokens=200, messages=[{"role": "user", "content": "stream it please"}]
    ) as stream:
        streamed = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert streamed == text_of(final) == echo_reply("stream it please")
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 4 and final.usage.input_tokens == 3
    assert {r.route for r in e2e.fake.requests()} == {route}


@pytest.mark.parametrize("model", ["claude-alias", "gpt-alias"])
@pytest.mark.parametrize("streaming", [False, True])
def test_tool_use_round_trip(
    e2e: World, setup: dict[str, Any], model: str, streaming: bool
) -> None:
    client: anthropic.Anthropic = setup["client"]
    history: list[Any] = [{"role": "user", "content": "find the answer"}]
    if streaming:
        with client.messages.stream(
            model=model, max_tokens=200, tools=TOOLS, messages=history
        ) as stream:
            first = stream.get_final_message()
    else:
        first = client.messages.create(model=model, max_tokens=200, tools=TOOLS, messages=history)
    assert first.stop_reason == "tool_use"
    [call] = [b for b in first.content if b.type == "tool_use"]
    assert call.name == "lookup" and call.input == {"input": "find the answer"} and call.id
    history += [
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "42"}],
        },
    ]
    answer = client.messages.create(model=model, max_tokens=200, tools=TOOLS, messages=history)
    assert answer.stop_reason == "end_turn" and text_of(answer) == tool_answer("42")


def test_tier_mapping(e2e: World, setup: dict[str, Any]) -> None:
    client: anthropic.Anthropic = setup["client"]
    hello: list[Any] = [{"role": "user", "content": "which tier"}]
    for requested, upstream_model in (
        ("claude-3-5-haiku-latest", "fake-gpt-mini"),  # *haiku* -> small
        ("claude-sonnet-4-5", "fake-gpt"),  # *sonnet* -> middle
        ("claude-opus-4-1", "claude-fake"),  # *opus* -> big
        ("claude-some-future-model", "claude-fake"),  # other claude names -> big
        ("gpt-mini-alias", "fake-gpt-mini"),  # an exact alias as is
    ):
        e2e.fake.reset()
        raw = client.messages.with_raw_response.create(
            model=requested, max_tokens=50, messages=hello
        )
        assert raw.parse().content
        [req] = e2e.fake.requests()
        assert req.model == upstream_model, requested
    with pytest.raises(anthropic.NotFoundError) as info:
        client.messages.create(model="llama-3-70b", max_tokens=50, messages=hello)
    assert info.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]


def test_failover_before_first_byte(e2e: World, setup: dict[str, Any]) -> None:
    backup = e2e.provider("gpt-backup", "openai")
    e2e.mapping("claude-alias", backup, "fake-gpt", priority=9)
    e2e.publish()
    e2e.fake.behave(Behaviour.fail(529), key=setup["native"].api_key)
    client: anthropic.Anthropic = setup["client"]
    with client.messages.stream(
        model="claude-opus-4", max_tokens=100, messages=[{"role": "user", "content": "fail over"}]
    ) as stream:
        final = stream.get_final_message()
    assert text_of(final) == echo_reply("fail over")
    assert [r.route for r in e2e.fake.requests()] == ["anthropic_messages", "openai_chat"]


def test_errors_in_anthropic_shape(e2e: World, setup: dict[str, Any]) -> None:
    bad = anthropic.Anthropic(base_url=e2e.server.url, api_key="sk-not-a-key", max_retries=0)
    e2e._clients.append(bad)
    hello: list[Any] = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.AuthenticationError) as auth:
        bad.messages.create(model="claude-alias", max_tokens=10, messages=hello)
    assert auth.value.status_code == 401
    assert auth.value.body == {  # type: ignore[comparison-overlap]
        "type": "error",
        "error": {"type": "authentication_error", "message": "Invalid API key."},
    }
    client: anthropic.Anthropic = setup["client"]
    with pytest.raises(anthropic.BadRequestError) as invalid:
        client.messages.create(model="claude-alias", max_tokens=10, messages=[])
    assert invalid.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    e2e.fake.behave(Behaviour.fail(503))
    with pytest.raises(anthropic.InternalServerError) as upstream:
        client.messages.create(model="gpt-alias", max_tokens=10, messages=hello)
    assert upstream.value.body["type"] == "error"  # type: ignore[index]


def test_count_tokens(e2e: World, setup: dict[str, Any]) -> None:
    client: anthropic.Anthropic = setup["client"]
    hello: list[Any] = [{"role": "user", "content": "hello world"}]
    native = client.messages.count_tokens(model="claude-opus-4", messages=hello)
    assert native.input_tokens == 2  # the upstream's own count (the fake counts words)
    [req] = e2e.fake.requests()
    assert req.route == "anthropic_count_tokens"
    local = client.messages.count_tokens(model="claude-3-5-haiku-latest", messages=hello)
    assert local.input_tokens == 3 + 1 + 2 + 3  # o200k_base, OpenAI's per-message overhead
    assert len(e2e.fake.requests()) == 1


# -- what Claude Code 2.1 sends, and what the gateway says back --------------------------------

REMINDER = "<system-reminder>Today is Tuesday.</system-reminder>"
CLAUDE_CODE: list[Any] = [
    {"role": "user", "content": "hello from claude code"},
    {"role": "system", "content": REMINDER},
]
BETA_HEADERS = {"anthropic-beta": MID_CONVERSATION_SYSTEM_BETA}


@pytest.mark.parametrize(
    ("model", "route"), [("claude-alias", "anthropic_messages"), ("gpt-alias", "openai_chat")]
)
def test_mid_conversation_system_message_with_the_beta(
    e2e: World, setup: dict[str, Any], model: str, route: str
) -> None:
    client: anthropic.Anthropic = setup["client"]
    message = client.messages.create(
        model=model, max_tokens=100, messages=CLAUDE_CODE, extra_headers=BETA_HEADERS
    )
    assert text_of(message) == echo_reply("hello from claude code")
    with client.messages.stream(
        model=model, max_tokens=100, messages=CLAUDE_CODE, extra_headers=BETA_HEADERS
    ) as stream:
        assert "".join(stream.text_stream) == echo_reply("hello from claude code")
    count = client.messages.count_tokens(
        model=model, messages=CLAUDE_CODE, extra_headers=BETA_HEADERS
    )
    assert count.input_tokens > 0
    sent = e2e.fake.requests(route=route)
    assert len(sent) == 2
    for req in sent:
        if route == "anthropic_messages":  # natively: as sent, beta and all
            assert req.json["messages"] == CLAUDE_CODE
            assert req.headers["anthropic-beta"] == MID_CONVERSATION_SYSTEM_BETA
        else:  # translated: an OpenAI system message at the same place
            assert req.json["messages"] == [
                {"role": "user", "content": "hello from claude code"},
                {"role": "system", "content": REMINDER},
            ]


def test_thinking_maps_to_reasoning_effort_or_is_named_as_dropped(
    e2e: World, setup: dict[str, Any]
) -> None:
    gpt = setup["gpt"]
    e2e.mapping("reasoner-alias", gpt, "o4-mini")
    e2e.publish()
    client: anthropic.Anthropic = setup["client"]
    hello: list[Any] = [{"role": "user", "content": "think about it"}]
    thinking: Any = {"type": "enabled", "budget_tokens": 2048}
    reasoned = client.messages.with_raw_response.create(
        model="reasoner-alias", max_tokens=4000, thinking=thinking, messages=hello
    )
    assert text_of(reasoned.parse()) == echo_reply("think about it")
    assert "x-gateway-dropped-params" not in reasoned.headers
    plain = client.messages.with_raw_response.create(
        model="gpt-alias",
        max_tokens=4000,
        thinking=thinking,
        messages=hello,
        extra_body={"top_k": 4},
    )
    assert text_of(plain.parse()) == echo_reply("think about it")
    assert plain.headers["x-gateway-dropped-params"] == "top_k, thinking"
    first, second = e2e.fake.requests()
    assert first.json["reasoning_effort"] == "low" and first.json["max_completion_tokens"] == 4000
    assert "reasoning_effort" not in second.json and "top_k" not in second.json


def test_the_sdks_give_up_at_once_on_the_gateways_401_and_400(
    e2e: World, setup: dict[str, Any]
) -> None:
    sent: list[httpx2.Request] = []
    # The SDKs' own HTTP client package: their requests are counted as they leave.
    http_client = httpx2.Client(event_hooks={"request": [sent.append]})
    e2e._clients.append(http_client)
    # Default retries: only the gateway's x-should-retry keeps the SDK from trying again.
    bad = anthropic.Anthropic(
        base_url=e2e.server.url, api_key="sk-not-a-key", http_client=http_client
    )
    hello: list[Any] = [{"role": "user", "content": "hi"}]
    with pytest.raises(anthropic.AuthenticationError) as auth:
        bad.messages.create(model="claude-alias", max_tokens=10, messages=hello)
    assert auth.value.response.headers["x-should-retry"] == "false"
    assert len(sent) == 1
    good = anthropic.Anthropic(
        base_url=e2e.server.url, api_key=setup["key"], http_client=http_client
    )
    with pytest.raises(anthropic.BadRequestError) as invalid:
        good.messages.create(model="claude-alias", max_tokens=10, messages=[])
    assert invalid.value.response.headers["x-should-retry"] == "false"
    assert len(sent) == 2
    oai = e2e.openai("sk-not-a-key", max_retries=2, http_client=http_client)
    with pytest.raises(openai.AuthenticationError) as oai_auth:
        oai.chat.completions.create(model="gpt-alias", messages=[{"role": "user", "content": "x"}])
    assert oai_auth.value.response.headers["x-should-retry"] == "false"
    assert len(sent) == 3
    assert e2e.fake.requests() == []  # nothing reached an upstream
