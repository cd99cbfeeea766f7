"""The openai and anthropic SDKs through the gateway to a ``gemini`` instance (the fake speaks
generateContent, streamGenerateContent SSE and batchEmbedContents, and wants x-goog-api-key)."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import World
from tests.fakes.upstream import Behaviour
from tests.fakes.wire import echo_reply, tool_answer

pytestmark = pytest.mark.e2e

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def gem(e2e: World) -> tuple[str, Any]:
    instance = e2e.provider("gemini-main", "gemini")
    e2e.mapping("gem", instance, "gemini-fake")
    e2e.mapping("gem-missing", instance, "missing-model")
    e2e.mapping("gem-embed", instance, "text-embedding-004", supports_chat=False)
    key = e2e.vkey(["gem", "gem-missing", "gem-embed"])
    e2e.publish()
    return key, instance


def test_chat_stream_tools_and_key_header(e2e: World, gem: tuple[str, Any]) -> None:
    key, instance = gem
    client = e2e.openai(key)
    answer = client.chat.completions.create(
        model="gem",
        messages=[{"role": "system", "content": "terse"}, {"role": "user", "content": "hi gem"}],
    )
    assert answer.choices[0].message.content == echo_reply("hi gem")
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    [req] = e2e.fake.requests()
    assert req.path == "/v1beta/models/gemini-fake:generateContent"
    assert req.headers["x-goog-api-key"] == instance.api_keys["primary"]
    assert "key" not in req.query and instance.api_keys["primary"] not in req.path
    assert req.json["systemInstruction"] == {"parts": [{"text": "terse"}]}

    chunks = list(
        client.chat.completions.create(
            model="gem",
            messages=[{"role": "user", "content": "stream it please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == echo_reply("stream it please")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert e2e.fake.requests()[-1].query == {"alt": "sse"}

    first = client.chat.completions.create(
        model="gem", messages=[{"role": "user", "content": "weather"}], tools=TOOLS
    )
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"input": "weather"}
    final = client.chat.completions.create(
        model="gem",
        messages=[
            {"role": "user", "content": "weather"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=TOOLS,
    )
    assert final.choices[0].message.content == tool_answer("sunny")
    sent = e2e.fake.requests()[-1].json["contents"][-1]["parts"][0]
    assert sent["functionResponse"]["name"] == "get_weather"


def test_embeddings(e2e: World, gem: tuple[str, Any]) -> None:
    key, _ = gem
    result = e2e.openai(key).embeddings.create(
        model="gem-embed", input=["one", "two words"], encoding_format="float"
    )
    assert [d.index for d in result.data] == [0, 1] and len(result.data[0].embedding) > 0
    [req] = e2e.fake.requests()
    assert req.path == "/v1beta/models/text-embedding-004:batchEmbedContents"
    assert req.json["requests"][1]["content"]["parts"][0]["text"] == "two words"


def test_anthropic_sdk_create_and_stream(e2e: World, gem: tuple[str, Any]) -> None:
    key, _ = gem
    client = anthropic.Anthropic(base_url=e2e.server.url, api_key=key, max_retries=0, timeout=20)
    try:
        message = client.messages.create(
            model="gem", max_tokens=100, messages=[{"role": "user", "content": "hello claude"}]
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == echo_reply("hello claude")
        assert message.stop_reason == "end_turn"
        with client.messages.stream(
            model="gem", max_tokens=100, messages=[{"role": "user", "content": "stream on"}]
        ) as stream:
            assert "".join(stream.text_stream) == echo_reply("stream on")
            final = stream.get_final_message()
        assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
    finally:
        client.close()


def test_missing_model_is_the_upstream_404_and_errors_are_typed(
    e2e: World, gem: tuple[str, Any]
) -> None:
    key, _ = gem
    client = e2e.openai(key)
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(
            model="gem-missing", messages=[{"role": "user", "content": "x"}]
        )
    assert "not found" in str(exc.value)
    assert len(e2e.fake.requests()) == 1
    e2e.fake.behave(Behaviour.fail(429))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gem", messages=[{"role": "user", "content": "x"}])


def test_responses_api_translated_through_chat(e2e: World, gem: tuple[str, Any]) -> None:
    key, _ = gem
    client = e2e.openai(key)
    response = client.responses.create(model="gem", input="hello responses")
    assert response.output_text == echo_reply("hello responses")
    events = list(client.responses.create(model="gem", input="stream responses", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == echo_reply("stream responses")


def test_image_as_inline_data_and_safety_block(e2e: World, gem: tuple[str, Any]) -> None:
    key, _ = gem
    client = e2e.openai(key)
    answer = client.chat.completions.create(
        model="gem",
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "describe"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
                ],
            }
        ],
    )
    assert answer.choices[0].message.content == echo_reply("describe")
    parts = e2e.fake.requests()[-1].json["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": "iVBORw0K"}}

    blocked = client.chat.completions.create(
        model="gem", messages=[{"role": "user", "content": "BLOCKME please"}]
    )
    assert blocked.choices[0].finish_reason == "content_filter"
    assert blocked.choices[0].message.content is None
    chunks = list(
        client.chat.completions.create(
            model="gem", messages=[{"role": "user", "content": "BLOCKME"}], stream=True
        )
    )
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"
