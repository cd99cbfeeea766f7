"""The Anthropic front accepts what the Messages API accepts, in process against the fake:
mid-conversation system messages (native and translated, count_tokens too), unknown fields
and content block types, thinking/effort as reasoning_effort or dropped (and named in
``x-gateway-dropped-params``), and role errors in Anthropic's wording."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from gateway.routing.table import RouteTable
from tests.factories import make_mapping, make_provider, make_vkey
from tests.fakes.api_rules import MID_CONVERSATION_SYSTEM_BETA
from tests.fakes.upstream import FakeUpstream
from tests.proxy.conftest import InProcessGateway

BETA = {"anthropic-version": "2023-06-01", "anthropic-beta": MID_CONVERSATION_SYSTEM_BETA}
REMINDER = "<system-reminder>Today is Tuesday.</system-reminder>"
#: What Claude Code 2.1 sends for newer models: a reminder as messages[1], role system.
CLAUDE_CODE_MESSAGES = [
    {"role": "user", "content": [{"type": "text", "text": "hello there gateway"}]},
    {"role": "system", "content": REMINDER},
]
DROPPED = "x-gateway-dropped-params"


@pytest.fixture
def world(install_table: Callable[[], RouteTable], fake_upstream: FakeUpstream) -> dict[str, Any]:
    native = make_provider("claude-inst", "anthropic", upstream_url=fake_upstream.url)
    gpt = make_provider("gpt-inst", "openai", upstream_url=fake_upstream.url)
    make_mapping("native", native, "claude-fake")
    make_mapping("plain", gpt, "fake-gpt")
    make_mapping("by-name", gpt, "o3-mini")  # reasoning by the model name
    make_mapping("declared", gpt, "fake-reasoner", supports_reasoning=True)
    # Named like a reasoning model, declared not one (a local model, say).
    make_mapping("declared-off", gpt, "gpt-5-lookalike", supports_reasoning=False)
    key = make_vkey("lenient")[1]
    install_table()
    return {"key": key}


def post(
    gateway: InProcessGateway,
    key: str,
    body: Any,
    path: str = "/v1/messages",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    sent = {"x-api-key": key, **(headers or {})}

    async def call(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(path, content=orjson.dumps(body), headers=sent)

    return gateway.run(call)


def msg(model: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": 100,
        "system": "You are terse.",
        "messages": CLAUDE_CODE_MESSAGES,
        **extra,
    }


def sse_events(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


# -- mid-conversation system messages ----------------------------------------------------------


def test_native_gets_the_system_message_and_the_beta_unchanged(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    body = msg("native")
    response = post(gateway, world["key"], body, headers=BETA)
    assert response.status_code == 200, response.text
    [req] = fake_upstream.requests()
    assert req.route == "anthropic_messages"
    assert req.json == {**body, "model": "claude-fake"}
    assert req.headers["anthropic-beta"] == MID_CONVERSATION_SYSTEM_BETA
    assert DROPPED not in response.headers


def test_native_without_the_beta_gets_the_apis_own_refusal(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    # The gateway does not judge roles: the API does, in the words Claude Code falls back on.
    response = post(gateway, world["key"], msg("native"), headers={"anthropic-version": "x"})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "Unexpected role" in message and "input message role" in message
    assert len(fake_upstream.requests()) == 1


@pytest.mark.parametrize("stream", [False, True])
def test_translated_system_message_stays_in_place(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream, stream: bool
) -> None:
    response = post(gateway, world["key"], msg("plain", stream=stream), headers=BETA)
    assert response.status_code == 200, response.text
    if stream:
        kinds = [e["type"] for e in sse_events(response.text)]
        assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    else:
        assert response.json()["content"][0]["text"] == "Echo: hello there gateway"
    [req] = fake_upstream.requests()
    assert req.route == "openai_chat"
    assert req.json["messages"] == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "hello there gateway"},
        {"role": "system", "content": REMINDER},
    ]
    assert DROPPED not in response.headers  # nothing was left out


def test_count_tokens_takes_a_system_message(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    body = {"model": "plain", "messages": CLAUDE_CODE_MESSAGES}
    plain = {"model": "plain", "messages": CLAUDE_CODE_MESSAGES[:1]}
    local = post(gateway, world["key"], body, "/v1/messages/count_tokens", BETA)
    without = post(gateway, world["key"], plain, "/v1/messages/count_tokens", BETA)
    assert local.status_code == 200, local.text
    assert local.json()["input_tokens"] > without.json()["input_tokens"]  # the reminder counts
    native = post(
        gateway, world["key"], {**body, "model": "native"}, "/v1/messages/count_tokens", BETA
    )
    assert native.status_code == 200, native.text
    [req] = fake_upstream.requests()
    assert req.route == "anthropic_count_tokens"
    assert req.json["messages"] == CLAUDE_CODE_MESSAGES


def test_an_unknown_role_is_refused_in_anthropics_words_when_translated(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    body = msg(
        "plain", messages=[{"role": "user", "content": "hi"}, {"role": "tool", "content": ""}]
    )
    response = post(gateway, world["key"], body)
    assert response.status_code == 400
    assert response.headers["x-should-retry"] == "false"
    message = response.json()["error"]["message"]
    assert "Unexpected role" in message and "input message role" in message
    assert fake_upstream.requests() == []


# -- unknown fields and content blocks ---------------------------------------------------------

FUTURE_FIELDS: dict[str, Any] = {
    "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]},
    "mcp_servers": [{"type": "url", "url": "https://mcp.example", "name": "x"}],
    "container": "container_1",
    "metadata": {"user_id": "u-1"},
    "top_k": 5,
    "some_future_field": {"a": 1},
}
FUTURE_BLOCKS = [
    {"type": "text", "text": "hello there gateway"},
    {
        "type": "search_result",
        "source": "s",
        "title": "t",
        "content": [{"type": "text", "text": "found"}],
    },
    {"type": "container_upload", "file_id": "file_1"},
]


def test_unknown_fields_and_blocks_go_natively_as_sent(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    body = msg("native", messages=[{"role": "user", "content": FUTURE_BLOCKS}], **FUTURE_FIELDS)
    response = post(gateway, world["key"], body, headers=BETA)
    assert response.status_code == 200, response.text
    assert fake_upstream.requests()[0].json == {**body, "model": "claude-fake"}


@pytest.mark.parametrize("stream", [False, True])
def test_translation_keeps_text_and_names_what_it_dropped(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream, stream: bool
) -> None:
    body = msg(
        "plain",
        stream=stream,
        messages=[{"role": "user", "content": FUTURE_BLOCKS}],
        **FUTURE_FIELDS,
    )
    response = post(gateway, world["key"], body)
    assert response.status_code == 200, response.text
    [req] = fake_upstream.requests()
    assert req.json["messages"][1] == {
        "role": "user",
        "content": [
            {"type": "text", "text": "hello there gateway"},
            {"type": "text", "text": "found"},
        ],
    }
    assert req.json["user"] == "u-1"
    for name in ("context_management", "mcp_servers", "container", "top_k", "some_future_field"):
        assert name not in req.json
    dropped = response.headers[DROPPED].split(", ")
    assert set(dropped) == {
        "context_management",
        "mcp_servers",
        "container",
        "top_k",
        "some_future_field",
        "content:container_upload",
    }


# -- thinking and effort -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "model"), [("by-name", "o3-mini"), ("declared", "fake-reasoner")]
)
@pytest.mark.parametrize("stream", [False, True])
def test_thinking_becomes_reasoning_effort_for_a_reasoning_model(
    world: dict[str, Any],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    alias: str,
    model: str,
    stream: bool,
) -> None:
    thinking = {"type": "enabled", "budget_tokens": 20000}
    response = post(gateway, world["key"], msg(alias, thinking=thinking, stream=stream))
    assert response.status_code == 200, response.text
    [req] = fake_upstream.requests()
    assert req.json["model"] == model and req.json["reasoning_effort"] == "high"
    assert req.json["max_completion_tokens"] == 100 and "max_tokens" not in req.json
    assert DROPPED not in response.headers


@pytest.mark.parametrize(
    ("extra", "effort"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "low"),
        ({"thinking": {"type": "enabled", "budget_tokens": 8000}}, "medium"),
        ({"thinking": {"type": "adaptive"}}, "medium"),
        ({"thinking": {"type": "adaptive"}, "output_config": {"effort": "low"}}, "low"),
        ({"output_config": {"effort": "max"}}, "high"),
    ],
)
def test_budget_and_effort_levels(
    world: dict[str, Any],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    extra: dict[str, Any],
    effort: str,
) -> None:
    response = post(gateway, world["key"], msg("by-name", **extra))
    assert response.status_code == 200, response.text
    assert fake_upstream.requests()[0].json["reasoning_effort"] == effort


@pytest.mark.parametrize("alias", ["plain", "declared-off"])
@pytest.mark.parametrize("stream", [False, True])
def test_thinking_is_dropped_and_named_for_other_models(
    world: dict[str, Any],
    gateway: InProcessGateway,
    fake_upstream: FakeUpstream,
    alias: str,
    stream: bool,
) -> None:
    body = msg(
        alias,
        stream=stream,
        top_k=3,
        thinking={"type": "enabled", "budget_tokens": 5000},
        output_config={"effort": "high"},
    )
    response = post(gateway, world["key"], body)
    assert response.status_code == 200, response.text
    [req] = fake_upstream.requests()
    assert "reasoning_effort" not in req.json and req.json["max_tokens"] == 100
    assert response.headers[DROPPED] == "top_k, thinking, output_config.effort"


def test_thinking_blocks_of_earlier_turns_are_dropped_and_named(
    world: dict[str, Any], gateway: InProcessGateway, fake_upstream: FakeUpstream
) -> None:
    history = [
        {"role": "user", "content": "first"},
        {
            "role": "assistant",
            "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "answer"},
            ],
        },
        {"role": "user", "content": "hello there gateway"},
    ]
    response = post(gateway, world["key"], msg("plain", messages=history))
    assert response.status_code == 200, response.text
    assert fake_upstream.requests()[0].json["messages"][2] == {
        "role": "assistant",
        "content": "answer",
    }
    assert response.headers[DROPPED] == "content:thinking"
