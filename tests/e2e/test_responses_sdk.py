"""The official ``openai`` SDK's Responses API against the real gateway process: a chat-only
openai_compatible instance (translated), an anthropic one (translated twice: Responses -> chat
-> Messages) and a native openai one; text, instructions, streams parsed by the SDK, function
call round trips, previous_response_id, built-in tools refused, retrieve/delete per key."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.e2e.conftest import World
from tests.fakes.wire import echo_reply, tool_answer

ALIASES = {"compat": "openai_chat", "claude": "anthropic_messages", "native": "openai_responses"}
TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "lookup",
        "description": "Look a thing up",
        "parameters": {
            "type": "object",
            "properties": {"input": {"type": "string"}},
            "required": ["input"],
        },
        "strict": False,
    }
]


@pytest.fixture
def setup(e2e: World) -> dict[str, Any]:
    e2e.mapping("compat", e2e.provider("vllm", "openai_compatible"))
    e2e.mapping("claude", e2e.provider("claude", "anthropic"))
    e2e.mapping("native", e2e.provider("gpt", "openai"))
    key, other = e2e.vkey(), e2e.vkey()
    e2e.publish()
    return {"client": e2e.openai(key), "other": e2e.openai(other)}


@pytest.mark.parametrize("alias", list(ALIASES))
def test_create_and_stream(e2e: World, setup: dict[str, Any], alias: str) -> None:
    client: openai.OpenAI = setup["client"]
    response = client.responses.create(
        model=alias, input="hello from the sdk", instructions="You are terse."
    )
    assert response.output_text == echo_reply("hello from the sdk")
    assert response.status == "completed" and response.id.startswith("resp_")
    assert response.usage is not None and response.usage.output_tokens == 5

    with client.responses.stream(model=alias, input="stream it please") as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert deltas == final.output_text == echo_reply("stream it please")
    assert final.usage is not None and final.usage.input_tokens == 3
    assert final.usage.output_tokens == 4

    events = list(client.responses.create(model=alias, input="raw events", stream=True))
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert events[-1].response.output_text == echo_reply("raw events")
    assert {r.route for r in e2e.fake.requests()} == {ALIASES[alias]}


@pytest.mark.parametrize("streaming", [False, True])
@pytest.mark.parametrize("alias", list(ALIASES))
def test_function_call_round_trip(
    e2e: World, setup: dict[str, Any], alias: str, streaming: bool
) -> None:
    client: openai.OpenAI = setup["client"]
    if streaming:
        with client.responses.stream(model=alias, input="find the answer", tools=TOOLS) as s:
            first = s.get_final_response()
    else:
        first = client.responses.create(model=alias, input="find the answer", tools=TOOLS)
    [call] = [item for item in first.output if item.type == "function_call"]
    assert call.name == "lookup" and call.arguments.replace(" ", "") == '{"input":"findtheanswer"}'
    result = {"type": "function_call_output", "call_id": call.call_id, "output": "42"}
    second = client.responses.create(
        model=alias, input=[result], tools=TOOLS, previous_response_id=first.id
    )
    assert second.output_text == tool_answer("42")
    assert second.previous_response_id == first.id


@pytest.mark.parametrize("alias", list(ALIASES))
def test_previous_response_id_conversation(e2e: World, setup: dict[str, Any], alias: str) -> None:
    client: openai.OpenAI = setup["client"]
    first = client.responses.create(model=alias, input="my name is Ada")
    second = client.responses.create(
        model=alias, input="what is my name", previous_response_id=first.id
    )
    assert second.output_text == echo_reply("what is my name")
    last = e2e.fake.requests()[-1].json
    if alias == "native":
        assert last["previous_response_id"] == first.id
    elif alias == "compat":
        assert [m["content"] for m in last["messages"]] == [
            "my name is Ada",
            echo_reply("my name is Ada"),
            "what is my name",
        ]
    else:  # Anthropic got the history as Messages
        assert [m["role"] for m in last["messages"]] == ["user", "assistant", "user"]


@pytest.mark.parametrize("alias", ["compat", "claude"])
def test_builtin_tool_refused_without_upstream_call(
    e2e: World, setup: dict[str, Any], alias: str
) -> None:
    client: openai.OpenAI = setup["client"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.create(model=alias, input="search the web", tools=[{"type": "web_search"}])
    assert caught.value.param == "tools" and "web_search" in caught.value.message
    assert e2e.fake.requests() == []


@pytest.mark.parametrize("alias", ["compat", "native"])
def test_retrieve_and_delete_per_key(e2e: World, setup: dict[str, Any], alias: str) -> None:
    client: openai.OpenAI = setup["client"]
    other: openai.OpenAI = setup["other"]
    created = client.responses.create(model=alias, input="keep me")
    fetched = client.responses.retrieve(created.id)
    assert fetched.id == created.id and fetched.output_text == created.output_text
    with pytest.raises(openai.NotFoundError):
        other.responses.retrieve(created.id)
    with pytest.raises(openai.NotFoundError):
        other.responses.delete(created.id)
    client.responses.delete(created.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(created.id)


def test_unknown_previous_response_is_404(e2e: World, setup: dict[str, Any]) -> None:
    client: openai.OpenAI = setup["client"]
    with pytest.raises(openai.NotFoundError) as caught:
        client.responses.create(model="compat", input="x", previous_response_id="resp_missing")
    assert caught.value.code == "previous_response_not_found"


def test_input_tokens(e2e: World, setup: dict[str, Any]) -> None:
    client: openai.OpenAI = setup["client"]
    counted = client.responses.input_tokens.count(model="claude", input="count these words")
    assert counted.input_tokens > 3
