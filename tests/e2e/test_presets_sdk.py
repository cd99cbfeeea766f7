"""The openai and anthropic SDKs through the gateway to OpenAI-compatible clouds by preset.

The fake upstream imitates Mistral, Groq and Cerebras under a path prefix: it refuses what each
refuses (Mistral: any field outside its list, with a 422; Groq and Cerebras: their documented
unsupported fields, with a 400). The clients send those fields; the preset drops them.
"""

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

PATHS = {"mistral": "/mistral/v1", "groq": "/groq/openai/v1", "cerebras": "/cerebras/v1"}
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
        },
    }
]
# What clients send and at least one of these clouds refuses.
EXTRAS: dict[str, Any] = {
    "seed": 1,
    "logit_bias": {"50256": -100},
    "presence_penalty": 0.1,
    "parallel_tool_calls": True,
    "store": False,
    "user": "u-1",
}


@pytest.fixture(params=sorted(PATHS))
def cloud(request: pytest.FixtureRequest, e2e: World) -> tuple[str, openai.OpenAI]:
    preset: str = request.param
    instance = e2e.provider(preset, "openai_compatible", base_url=e2e.fake.url + PATHS[preset])
    instance.provider.preset = preset
    instance.provider.full_clean()
    instance.provider.save()
    e2e.mapping("chat", instance, "cloud-model")
    e2e.mapping("embed", instance, "cloud-embed", supports_chat=False, supports_embeddings=True)
    key = e2e.vkey(["chat", "embed"])
    e2e.publish()
    return preset, e2e.openai(key)


def test_unsupported_fields_are_refused_without_the_preset(e2e: World) -> None:
    # The fake really refuses: the same request to a preset-less instance fails as the cloud does.
    instance = e2e.provider(
        "raw-mistral", "openai_compatible", base_url=e2e.fake.url + "/mistral/v1"
    )
    e2e.mapping("raw", instance, "cloud-model")
    client = e2e.openai(e2e.vkey(["raw"]))
    e2e.publish()
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(
            model="raw", messages=[{"role": "user", "content": "hi"}], **EXTRAS
        )


def test_chat_stream_tools_and_embeddings(e2e: World, cloud: tuple[str, openai.OpenAI]) -> None:
    preset, client = cloud
    messages: list[Any] = [{"role": "user", "content": "hello cloud"}]
    answer = client.chat.completions.create(model="chat", messages=messages, **EXTRAS)
    assert answer.choices[0].message.content == echo_reply("hello cloud")
    [req] = e2e.fake.requests()
    assert req.path == PATHS[preset] + "/chat/completions"
    assert req.json["model"] == "cloud-model"
    assert "logit_bias" not in req.json and "store" not in req.json

    chunks = list(
        client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "stream it"}],
            stream=True,
            stream_options={"include_usage": True},
            **EXTRAS,
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == echo_reply("stream it")
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0

    first = client.chat.completions.create(
        model="chat", messages=[{"role": "user", "content": "weather"}], tools=TOOLS, **EXTRAS
    )
    [call] = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    follow: list[Any] = [
        {"role": "user", "content": "weather"},
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    final = client.chat.completions.create(model="chat", messages=follow, tools=TOOLS)
    assert final.choices[0].message.content == tool_answer("sunny")

    vectors = client.embeddings.create(model="embed", input=["a b", "c"], encoding_format="float")
    assert len(vectors.data) == 2 and vectors.usage.prompt_tokens > 0
    assert json.loads(e2e.fake.requests()[-1].body)["model"] == "cloud-embed"


def test_anthropic_sdk_through_a_preset(e2e: World, cloud: tuple[str, openai.OpenAI]) -> None:
    preset, openai_client = cloud
    key = openai_client.api_key
    client = anthropic.Anthropic(base_url=e2e.server.url, api_key=key, max_retries=0, timeout=20)
    try:
        message = client.messages.create(
            model="chat",
            max_tokens=100,
            system="terse",
            metadata={"user_id": "u-1"},
            messages=[{"role": "user", "content": "hi from claude"}],
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == echo_reply("hi from claude")
        with client.messages.stream(
            model="chat", max_tokens=100, messages=[{"role": "user", "content": "go on"}]
        ) as stream:
            assert "".join(stream.text_stream) == echo_reply("go on")
            assert stream.get_final_message().usage.output_tokens > 0
    finally:
        client.close()
    assert {r.path for r in e2e.fake.requests()} == {PATHS[preset] + "/chat/completions"}


def test_typed_errors_and_usage(e2e: World, cloud: tuple[str, openai.OpenAI]) -> None:
    _, client = cloud
    e2e.fake.behave(Behaviour.fail(429))
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    e2e.fake.behave(Behaviour.fail(404, body="The model `cloud-model` does not exist"))
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "x"}])
    assert "does not exist" in str(exc.value)
    assert len(e2e.fake.requests()) == 2  # one each: a missing model is not failed over


def test_responses_api_through_a_preset(e2e: World, cloud: tuple[str, openai.OpenAI]) -> None:
    # Translated through chat completions: what the cloud refuses never reaches it.
    preset, client = cloud
    response = client.responses.create(
        model="chat", input="hello responses", store=True, metadata={"k": "v"}, user="u-1"
    )
    assert response.output_text == echo_reply("hello responses")
    events = list(client.responses.create(model="chat", input="stream responses", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == echo_reply("stream responses")
    assert {r.path for r in e2e.fake.requests()} == {PATHS[preset] + "/chat/completions"}
