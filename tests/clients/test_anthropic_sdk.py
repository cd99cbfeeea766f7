"""The official ``anthropic`` SDK pointed at the gateway (``base_url`` without ``/v1``):
messages, streams and a tool use round trip on a native anthropic instance and a translated
openai one, and a conversation carrying a mid-conversation ``system`` message (as Claude Code
sends for newer model names)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.clients.conftest import Clients
from tests.fakes.api_rules import MID_CONVERSATION_SYSTEM_BETA
from tests.fakes.wire import echo_reply, tool_answer, tool_arguments

TOOL: Any = {
    "name": "lookup",
    "description": "Look a thing up",
    "input_schema": {"type": "object", "properties": {"input": {"type": "string"}}},
}
ALIASES = [
    pytest.param("claude", "anthropic_messages", id="native-anthropic"),
    pytest.param("compat-gpt", "openai_chat", id="translated-openai"),
]


@pytest.fixture
def client(gw: Clients) -> Iterator[anthropic.Anthropic]:
    # The README's snippet: base_url is the gateway without /v1, api_key a virtual key.
    sdk = anthropic.Anthropic(base_url=gw.server.url, api_key=gw.key, max_retries=0, timeout=20)
    yield sdk
    sdk.close()


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


@pytest.mark.parametrize(("model", "route"), ALIASES)
def test_messages(gw: Clients, client: anthropic.Anthropic, model: str, route: str) -> None:
    message = client.messages.create(
        model=model,
        max_tokens=100,
        system="Be terse.",
        messages=[{"role": "user", "content": "hello anthropic"}],
    )
    assert text_of(message) == echo_reply("hello anthropic")
    assert message.stop_reason == "end_turn"
    assert [r.route for r in gw.world.fake.requests()] == [route]


@pytest.mark.parametrize(("model", "route"), ALIASES)
def test_stream(gw: Clients, client: anthropic.Anthropic, model: str, route: str) -> None:
    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "stream anthropic"}]
    ) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == text_of(final) == echo_reply("stream anthropic")
    assert final.usage.output_tokens == 3


@pytest.mark.parametrize(("model", "route"), ALIASES)
def test_tools_round_trip(gw: Clients, client: anthropic.Anthropic, model: str, route: str) -> None:
    history: list[Any] = [{"role": "user", "content": "find the answer"}]
    first = client.messages.create(model=model, max_tokens=100, messages=history, tools=[TOOL])
    assert first.stop_reason == "tool_use"
    [use] = [block for block in first.content if block.type == "tool_use"]
    assert (use.name, use.input) == ("lookup", tool_arguments("find the answer"))
    history.append({"role": "assistant", "content": [b.model_dump() for b in first.content]})
    history.append(
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "7"}],
        }
    )
    second = client.messages.create(model=model, max_tokens=100, messages=history, tools=[TOOL])
    assert text_of(second) == tool_answer("7")


@pytest.mark.parametrize(("model", "route"), ALIASES)
def test_mid_conversation_system_message(
    gw: Clients, client: anthropic.Anthropic, model: str, route: str
) -> None:
    """Claude Code 2.1.x sends ``role: "system"`` turns between user turns for newer models;
    the SDK passes them through as given."""
    messages: Any = [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "system", "content": "The user prefers short answers."},
        {"role": "user", "content": "second question"},
    ]
    # As Claude Code sends it: with the beta that lets the real API take system turns.
    message = client.messages.create(
        model=model,
        max_tokens=100,
        messages=messages,
        extra_headers={"anthropic-beta": MID_CONVERSATION_SYSTEM_BETA},
    )
    # Where the gateway puts the system text is its business; the answer is to the last turn.
    assert text_of(message).startswith(echo_reply(""))
    assert text_of(message).endswith("second question")
    [request] = gw.world.fake.requests()
    assert request.route == route
