"""The openai and anthropic SDKs through the gateway to a ``bedrock`` instance: the fake
checks every SigV4 signature, speaks Converse, ConverseStream's binary event-stream framing and
InvokeModel embeddings, and answers errors as Bedrock does."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest

from tests.e2e.conftest import World
from tests.fakes import wire_bedrock
from tests.fakes.upstream import Behaviour
from tests.fakes.wire import echo_reply, tool_answer

pytestmark = pytest.mark.e2e

PROFILE = "us.anthropic.claude-3-5-sonnet-20240620-v1:0"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather of a place",
            "parameters": {"type": "object", "properties": {"input": {"type": "string"}}},
        },
    }
]


@pytest.fixture
def br(e2e: World) -> tuple[str, Any]:
    instance = e2e.provider("bedrock-east", "bedrock")
    e2e.mapping("br", instance, PROFILE)
    e2e.mapping("br-missing", instance, "anthropic.missing-model-v1:0")
    e2e.mapping("br-titan", instance, "amazon.titan-embed-text-v2:0", supports_chat=False)
    e2e.mapping("br-cohere", instance, "cohere.embed-english-v3", supports_chat=False)
    key = e2e.vkey(["br", "br-missing", "br-titan", "br-cohere"])
    e2e.publish()
    return key, instance


def test_chat_stream_and_tools_signed(e2e: World, br: tuple[str, Any]) -> None:
    key, instance = br
    client = e2e.openai(key)
    answer = client.chat.completions.create(
        model="br",
        messages=[{"role": "system", "content": "terse"}, {"role": "user", "content": "hi aws"}],
        max_tokens=50,
        temperature=0.2,
    )
    assert answer.choices[0].message.content == echo_reply("hi aws")
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.completion_tokens > 0
    [req] = e2e.fake.requests()
    # The inference profile id travels URL-encoded; the signature covered it (the fake checked).
    assert req.path == f"/model/{PROFILE}/converse"
    assert req.headers["authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIA")
    assert "/us-east-1/bedrock/aws4_request" in req.headers["authorization"]
    assert req.json["system"] == [{"text": "terse"}]
    assert req.json["inferenceConfig"] == {"maxTokens": 50, "temperature": 0.2}
    secret = instance.api_keys["primary"].split(":")[1]
    assert secret not in json.dumps(req.headers)

    chunks = list(
        client.chat.completions.create(
            model="br",
            messages=[{"role": "user", "content": "stream it over event stream"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == echo_reply("stream it over event stream")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert e2e.fake.requests()[-1].path == f"/model/{PROFILE}/converse-stream"

    first = client.chat.completions.create(
        model="br", messages=[{"role": "user", "content": "weather"}], tools=TOOLS
    )
    assert first.choices[0].finish_reason == "tool_calls"
    [call] = first.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"input": "weather"}
    sent_tools = e2e.fake.requests()[-1].json["toolConfig"]["tools"]
    assert sent_tools[0]["toolSpec"]["inputSchema"]["json"]["type"] == "object"
    final = client.chat.completions.create(
        model="br",
        messages=[
            {"role": "user", "content": "weather"},
            {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=TOOLS,
    )
    assert final.choices[0].message.content == tool_answer("sunny")
    result = e2e.fake.requests()[-1].json["messages"][-1]["content"][0]["toolResult"]
    assert result == {"toolUseId": call.id, "content": [{"text": "sunny"}], "status": "success"}

    streamed = list(
        client.chat.completions.create(
            model="br", messages=[{"role": "user", "content": "weather"}], tools=TOOLS, stream=True
        )
    )
    args = "".join(
        (c.choices[0].delta.tool_calls or [])[0].function.arguments or ""
        for c in streamed
        if c.choices and c.choices[0].delta.tool_calls
    )
    assert json.loads(args) == {"input": "weather"}
    assert [c.choices[0].finish_reason for c in streamed if c.choices][-1] == "tool_calls"


def test_embeddings_titan_and_cohere(e2e: World, br: tuple[str, Any]) -> None:
    key, _ = br
    client = e2e.openai(key)
    titan = client.embeddings.create(model="br-titan", input="one", encoding_format="float")
    assert len(titan.data) == 1 and len(titan.data[0].embedding) > 0
    assert titan.usage.prompt_tokens == 1
    assert e2e.fake.requests()[-1].json == {"inputText": "one"}
    # The SDK's default (it asks for base64) reads the float list Bedrock's answer becomes.
    default = client.embeddings.create(model="br-titan", input="one")
    assert default.data[0].embedding == titan.data[0].embedding
    cohere = client.embeddings.create(
        model="br-cohere", input=["one", "two words"], encoding_format="float"
    )
    assert [d.index for d in cohere.data] == [0, 1]
    assert e2e.fake.requests()[-1].json == {
        "texts": ["one", "two words"],
        "input_type": "search_document",
    }
    with pytest.raises(openai.BadRequestError) as exc:
        client.embeddings.create(model="br-titan", input=["a", "b"], encoding_format="float")
    assert "one input" in str(exc.value)


def test_anthropic_sdk_create_and_stream(e2e: World, br: tuple[str, Any]) -> None:
    """Claude Code against Bedrock: Anthropic Messages in, Converse out."""
    key, _ = br
    client = anthropic.Anthropic(base_url=e2e.server.url, api_key=key, max_retries=0, timeout=20)
    try:
        message = client.messages.create(
            model="br",
            max_tokens=100,
            system="be brief",
            messages=[{"role": "user", "content": "hello claude"}],
        )
        assert message.content[0].type == "text"
        assert message.content[0].text == echo_reply("hello claude")
        assert message.stop_reason == "end_turn"
        assert e2e.fake.requests()[-1].json["system"] == [{"text": "be brief"}]
        with client.messages.stream(
            model="br", max_tokens=100, messages=[{"role": "user", "content": "stream on"}]
        ) as stream:
            assert "".join(stream.text_stream) == echo_reply("stream on")
            final = stream.get_final_message()
        assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0
        tool_message = client.messages.create(
            model="br",
            max_tokens=100,
            tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
            messages=[{"role": "user", "content": "weather"}],
        )
        assert tool_message.stop_reason == "tool_use"
        use = tool_message.content[-1]
        assert use.type == "tool_use"
        # The tool result goes back as Converse's toolResult, matched by the toolUse id.
        answer = client.messages.create(
            model="br",
            max_tokens=100,
            tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
            messages=[
                {"role": "user", "content": "weather"},
                {"role": "assistant", "content": [use.model_dump()]},
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "rain"}],
                },
            ],
        )
        assert answer.content[0].type == "text" and answer.content[0].text == tool_answer("rain")
        sent = e2e.fake.requests()[-1].json["messages"]
        assert sent[1]["content"][-1]["toolUse"]["toolUseId"] == use.id
        assert sent[2]["content"][0]["toolResult"]["toolUseId"] == use.id
    finally:
        client.close()


def test_errors_map_onto_failover_rules(e2e: World, br: tuple[str, Any]) -> None:
    key, _ = br
    client = e2e.openai(key)
    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(
            model="br-missing", messages=[{"role": "user", "content": "x"}]
        )
    assert "Could not resolve the foundation model" in str(exc.value)
    assert len(e2e.fake.requests()) == 1  # no failover loop on a missing model

    # A message list Converse refuses: the upstream's ValidationException as a 400, no retry.
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(
            model="br", messages=[{"role": "assistant", "content": "I start"}]
        )
    assert "must start with a user message" in str(bad.value)
    assert e2e.fake.requests()[-1].status == 400

    guarded = client.chat.completions.create(
        model="br",
        messages=[{"role": "user", "content": "BLOCKME please"}],
        extra_body={"guardrailConfig": {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"}},
    )
    assert guarded.choices[0].finish_reason == "content_filter"
    sent = e2e.fake.requests()[-1].json
    assert sent["guardrailConfig"] == {"guardrailIdentifier": "gr-1", "guardrailVersion": "1"}

    e2e.fake.behave(Behaviour.fail(429, "Too many requests, please wait before trying again."))
    with pytest.raises(openai.RateLimitError) as limited:
        client.chat.completions.create(model="br", messages=[{"role": "user", "content": "x"}])
    assert "Too many requests" in str(limited.value)


def test_unavailable_and_throttled_fail_over(e2e: World) -> None:
    """ServiceUnavailableException (503) and ThrottlingException (429) move the request on to
    the next instance, as any 503 or 429 does."""
    first = e2e.provider("bedrock-1", "bedrock")
    second = e2e.provider("bedrock-2", "bedrock", region="us-west-2")
    e2e.mapping("br-fo", first, priority=1)
    e2e.mapping("br-fo", second, priority=2)
    key = e2e.vkey(["br-fo"])
    e2e.publish()
    first_akid = first.api_keys["primary"].split(":")[0]
    e2e.fake.behave(Behaviour.fail(503, "Service unavailable", times=1), key=first_akid)
    client = e2e.openai(key)
    answer = client.chat.completions.create(
        model="br-fo", messages=[{"role": "user", "content": "over"}]
    )
    assert answer.choices[0].message.content == echo_reply("over")
    failed, served = e2e.fake.requests()
    assert failed.status == 503 and served.status == 200
    assert "/us-west-2/bedrock/" in served.headers["authorization"]


def test_wrong_secret_is_the_signature_403(e2e: World) -> None:
    akid = "AKIAWRONGSECRET0001"
    instance = e2e.provider(
        "bedrock-bad",
        "bedrock",
        keys=[{"name": "k", "primary": True, "api_key": f"{akid}:not-the-secret"}],
    )
    e2e.mapping("br-bad", instance)
    key = e2e.vkey(["br-bad"])
    e2e.publish()
    with pytest.raises(openai.PermissionDeniedError) as exc:
        e2e.openai(key).chat.completions.create(
            model="br-bad", messages=[{"role": "user", "content": "x"}]
        )
    assert "signature we calculated does not match" in str(exc.value)
    [req] = e2e.fake.requests()
    assert req.status == 403
    assert "not-the-secret" not in str(exc.value)
    assert wire_bedrock.secret_for(akid) != "not-the-secret"


def test_responses_api_translated_through_chat(e2e: World, br: tuple[str, Any]) -> None:
    key, _ = br
    client = e2e.openai(key)
    response = client.responses.create(model="br", input="hello responses")
    assert response.output_text == echo_reply("hello responses")
    events = list(client.responses.create(model="br", input="stream responses", stream=True))
    assert events[-1].type == "response.completed"
    assert events[-1].response.output_text == echo_reply("stream responses")
    assert e2e.fake.requests()[-1].path == f"/model/{PROFILE}/converse-stream"


def test_key_failover_and_exception_frame_mid_stream(e2e: World) -> None:
    """A key AWS refuses (403 InvalidSignatureException) moves the request to the instance's
    next key; an exception frame after content ends the stream with an error event."""
    good = "AKIAGOODKEY000000001"
    instance = e2e.provider(
        "bedrock-keys",
        "bedrock",
        keys=[
            {"name": "stale", "primary": True, "api_key": "AKIASTALEKEY00000001:rotated-away"},
            {"name": "fresh", "api_key": wire_bedrock.credentials(good, token="session-tok")},
        ],
    )
    e2e.mapping("br-keys", instance)
    key = e2e.vkey(["br-keys"])
    e2e.publish()
    client = e2e.openai(key)
    answer = client.chat.completions.create(
        model="br-keys", messages=[{"role": "user", "content": "next key"}]
    )
    assert answer.choices[0].message.content == echo_reply("next key")
    stale, fresh = e2e.fake.requests()
    assert stale.status == 403 and fresh.status == 200
    assert fresh.api_key == good and fresh.headers["x-amz-security-token"] == "session-tok"

    e2e.fake.behave(Behaviour(mode="stream_error", after_chunks=2), key=good)
    with pytest.raises(openai.APIError):
        chunks = client.chat.completions.create(
            model="br-keys",
            messages=[{"role": "user", "content": "a long streamed answer here"}],
            stream=True,
        )
        for _ in chunks:
            pass
