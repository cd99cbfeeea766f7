"""The official ``openai`` SDK, as a user would point it at the gateway (``base_url``):
chat completions (plain, streamed, a tool call round trip), embeddings, and the Responses API
(create, stream, a function-call round trip, ``previous_response_id``) on a native openai
instance and on a chat-only instance (translated)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.clients.conftest import Clients
from tests.fakes.wire import echo_reply, tool_answer, tool_arguments

TOOL: Any = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a thing up",
        "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
    },
}
RESPONSES_TOOL: Any = {
    "type": "function",
    "name": "lookup",
    "description": "Look a thing up",
    "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
}


@pytest.fixture
def client(gw: Clients) -> Iterator[openai.OpenAI]:
    # The README's snippet: base_url is the gateway's /v1, api_key a virtual key.
    sdk = openai.OpenAI(base_url=gw.server.base_url, api_key=gw.key, max_retries=0, timeout=20)
    yield sdk
    sdk.close()


def test_chat(gw: Clients, client: openai.OpenAI) -> None:
    reply = client.chat.completions.create(
        model="gpt", messages=[{"role": "user", "content": "hello from openai"}]
    )
    assert reply.choices[0].message.content == echo_reply("hello from openai")
    assert reply.usage is not None and reply.usage.completion_tokens == 4


def test_chat_stream(gw: Clients, client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt",
        messages=[{"role": "user", "content": "stream me"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = ""
    usage = None
    for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert text == echo_reply("stream me")
    assert usage is not None and usage.prompt_tokens == 2


def test_chat_tools_round_trip(gw: Clients, client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "find it"}]
    first = client.chat.completions.create(model="gpt", messages=messages, tools=[TOOL])
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "lookup"
    assert json.loads(call.function.arguments) == tool_arguments("find it")
    messages.append(first.choices[0].message.model_dump(exclude_none=True))
    messages.append({"role": "tool", "tool_call_id": call.id, "content": "42"})
    second = client.chat.completions.create(model="gpt", messages=messages, tools=[TOOL])
    assert second.choices[0].message.content == tool_answer("42")


def test_embeddings(gw: Clients, client: openai.OpenAI) -> None:
    result = client.embeddings.create(model="embed", input=["one", "two words"])
    assert [d.index for d in result.data] == [0, 1]
    assert all(len(d.embedding) == 4 for d in result.data)
    assert result.usage.prompt_tokens == 3


def test_usage_recorded(gw: Clients) -> None:
    key = gw.new_key()
    with openai.OpenAI(base_url=gw.server.base_url, api_key=key, max_retries=0) as sdk:
        sdk.chat.completions.create(model="gpt", messages=[{"role": "user", "content": "count"}])
    [row] = gw.usage(key)
    assert (row.model_alias, row.status_code, row.completion_tokens) == ("gpt", 200, 2)


# -- Responses API ---------------------------------------------------------------------------

RESPONSES_ALIASES = [
    pytest.param("gpt", id="native-openai"),
    pytest.param("compat-gpt", id="translated-chat-only"),
]


@pytest.mark.parametrize("model", RESPONSES_ALIASES)
def test_responses_create(gw: Clients, client: openai.OpenAI, model: str) -> None:
    response = client.responses.create(
        model=model, instructions="Be terse.", input="hello responses"
    )
    assert response.status == "completed"
    assert response.output_text == echo_reply("hello responses")
    assert response.usage is not None and response.usage.output_tokens == 3


@pytest.mark.parametrize("model", RESPONSES_ALIASES)
def test_responses_stream(gw: Clients, client: openai.OpenAI, model: str) -> None:
    deltas: list[str] = []
    with client.responses.stream(model=model, input="stream responses") as stream:
        for event in stream:
            if event.type == "response.output_text.delta":
                deltas.append(event.delta)
        final = stream.get_final_response()
    assert "".join(deltas) == final.output_text == echo_reply("stream responses")
    assert final.status == "completed"


@pytest.mark.parametrize("model", RESPONSES_ALIASES)
def test_responses_function_call_round_trip(gw: Clients, client: openai.OpenAI, model: str) -> None:
    first = client.responses.create(model=model, input="look it up", tools=[RESPONSES_TOOL])
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "lookup"
    assert json.loads(call.arguments) == tool_arguments("look it up")
    second = client.responses.create(
        model=model,
        input=[
            {"role": "user", "content": "look it up"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "blue"},
        ],
        tools=[RESPONSES_TOOL],
    )
    assert second.output_text == tool_answer("blue")


@pytest.mark.parametrize("model", RESPONSES_ALIASES)
def test_responses_previous_response_id(gw: Clients, client: openai.OpenAI, model: str) -> None:
    first = client.responses.create(model=model, input="look it up", tools=[RESPONSES_TOOL])
    [call] = [item for item in first.output if item.type == "function_call"]
    # The tool result continues the stored conversation: the earlier turns come from the
    # gateway (or the provider), not from the client.
    second = client.responses.create(
        model=model,
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "green"}],
        tools=[RESPONSES_TOOL],
    )
    assert second.output_text == tool_answer("green")
