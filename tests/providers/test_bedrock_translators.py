"""OpenAI chat <-> Bedrock Converse, and ConverseStream's event-stream decoded chunk by chunk."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import orjson
import pytest
from httpx_sse import SSEError

from providers.adapters import UnsupportedOperation, get_adapter
from providers.aws import credentials_compose, credentials_masked, credentials_split
from providers.snapshot import KeySnapshot, ProviderSnapshot
from providers.translators.openai_bedrock import (
    bedrock_response_to_openai,
    openai_request_to_bedrock,
)
from providers.translators.openai_bedrock_stream import BedrockStreamTranslator, eventstream_events
from tests.fakes import wire_bedrock


def test_request_system_roles_images_and_config() -> None:
    body = {
        "model": "x",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "developer", "content": [{"type": "text", "text": "and kind"}]},
            {"role": "user", "content": "one"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "two"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,AAAA"}},
                ],
            },
        ],
        "max_completion_tokens": 64,
        "temperature": 0,
        "top_p": 0.5,
        "stop": "END",
        "guardrailConfig": {"guardrailIdentifier": "g", "guardrailVersion": "DRAFT"},
        "additionalModelRequestFields": {"top_k": 5},
    }
    out = openai_request_to_bedrock(body)
    assert out["system"] == [{"text": "be brief"}, {"text": "and kind"}]
    # Two user turns in a row become one: Converse wants the roles to alternate.
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"text": "one"},
                {"text": "two"},
                {"image": {"format": "jpeg", "source": {"bytes": "AAAA"}}},
            ],
        }
    ]
    assert out["inferenceConfig"] == {
        "maxTokens": 64,
        "temperature": 0.0,
        "topP": 0.5,
        "stopSequences": ["END"],
    }
    assert out["guardrailConfig"] == {"guardrailIdentifier": "g", "guardrailVersion": "DRAFT"}
    assert out["additionalModelRequestFields"] == {"top_k": 5}
    assert "model" not in out and "toolConfig" not in out


def test_request_tools_both_ways() -> None:
    tools = [
        {
            "type": "function",
            "function": {"name": "f", "description": "d", "parameters": {"type": "object"}},
        }
    ]
    body = {
        "messages": [
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": "calling",
                "tool_calls": [
                    {
                        "id": "t1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a": 1}'},
                    },
                    {"id": "t2", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": "r1"},
            {"role": "tool", "tool_call_id": "t2", "content": [{"type": "text", "text": "r2"}]},
        ],
        "tools": tools,
        "tool_choice": {"type": "function", "function": {"name": "f"}},
    }
    out = openai_request_to_bedrock(body)
    assistant, results = out["messages"][1], out["messages"][2]
    assert assistant["content"] == [
        {"text": "calling"},
        {"toolUse": {"toolUseId": "t1", "name": "f", "input": {"a": 1}}},
        {"toolUse": {"toolUseId": "t2", "name": "f", "input": {}}},
    ]
    assert results["role"] == "user" and [
        b["toolResult"]["toolUseId"] for b in results["content"]
    ] == [
        "t1",
        "t2",
    ]
    assert results["content"][1]["toolResult"]["content"] == [{"text": "r2"}]
    assert out["toolConfig"]["tools"][0]["toolSpec"] == {
        "name": "f",
        "inputSchema": {"json": {"type": "object"}},
        "description": "d",
    }
    assert out["toolConfig"]["toolChoice"] == {"tool": {"name": "f"}}
    assert wire_bedrock.request_problem(out) is None  # what the fake (like Converse) accepts
    body["tool_choice"] = "required"
    assert openai_request_to_bedrock(body)["toolConfig"]["toolChoice"] == {"any": {}}


@pytest.mark.parametrize(
    "body",
    [
        {"messages": "hi"},
        {"messages": [{"role": "user", "content": [{"type": "input_audio"}]}]},
        {
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}],
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "data:image/tiff;base64,AA"}}
                    ],
                }
            ]
        },
        {"messages": [{"role": "robot", "content": "x"}]},
    ],
)
def test_unsupported_input_is_refused_clearly(body: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedOperation):
        openai_request_to_bedrock(body)


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_response_stop_reasons(stop: str, finish: str) -> None:
    answer, _ = bedrock_response_to_openai(
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "x"}]}},
            "stopReason": stop,
        }
    )
    assert answer["choices"][0]["finish_reason"] == finish


def test_response_text_tool_use_and_usage() -> None:
    data = {
        "output": {
            "message": {
                "role": "assistant",
                "content": [
                    {"text": "let me see"},
                    {"toolUse": {"toolUseId": "tu1", "name": "f", "input": {"q": "x"}}},
                ],
            }
        },
        "stopReason": "tool_use",
        "usage": {"inputTokens": 10, "outputTokens": 5, "cacheReadInputTokens": 4},
    }
    answer, usage = bedrock_response_to_openai(data)
    message = answer["choices"][0]["message"]
    assert message["content"] == "let me see"
    assert message["tool_calls"] == [
        {"id": "tu1", "type": "function", "function": {"name": "f", "arguments": '{"q":"x"}'}}
    ]
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens) == (14, 5, 4)
    assert answer["usage"]["total_tokens"] == 19


def _decode(body: bytes, chunk: int, ctype: str = wire_bedrock.EVENTSTREAM) -> list[Any]:
    """The events of ``body`` served ``chunk`` bytes at a time."""

    async def stream() -> Any:
        for i in range(0, len(body), chunk):
            yield body[i : i + chunk]

    async def run() -> list[Any]:
        response = httpx.Response(200, headers={"content-type": ctype}, content=stream())
        return [e async for e in eventstream_events(response)]

    return asyncio.run(run())


def _frames(events: list[tuple[str, dict[str, Any]]]) -> bytes:
    return b"".join(wire_bedrock.event_frame(name, data) for name, data in events)


def test_event_stream_decoded_incrementally_into_chunks() -> None:
    decision = wire_bedrock.wire.Decision(
        tool_name="f",
        tool_args='{"input": "x"}',
        tool_id="abc",
        prompt_tokens=3,
        completion_tokens=4,
    )
    body = _frames(wire_bedrock.stream_events(decision))
    one_byte = _decode(body, 1)  # every frame split across many reads
    assert [(e.event, e.data) for e in one_byte] == [(e.event, e.data) for e in _decode(body, 4096)]
    translator = BedrockStreamTranslator(include_usage=True)
    lines: list[bytes] = []
    for event in one_byte:
        lines += translator.feed(event.data, event.event)
    lines += translator.finish()
    chunks = [orjson.loads(line[6:]) for line in lines if line.startswith(b"data: {")]
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if c["choices"] and "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["id"] == "tooluse_abc" and calls[0]["function"]["name"] == "f"
    assert json.loads("".join(c["function"]["arguments"] for c in calls)) == {"input": "x"}
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "tool_calls"
    assert (
        chunks[-1]["usage"]["prompt_tokens"] == 3 and chunks[-1]["usage"]["completion_tokens"] == 4
    )
    assert lines[-1] == b"data: [DONE]\n\n"


def test_exception_frame_sets_the_error() -> None:
    body = wire_bedrock.event_frame("messageStart", {"role": "assistant"})
    body += wire_bedrock.exception_frame("throttlingException", "slow down")
    events = _decode(body, 7)
    assert [e.event for e in events] == ["messageStart", "exception:throttlingException"]
    translator = BedrockStreamTranslator(include_usage=False)
    for event in events:
        translator.feed(event.data, event.event)
    assert translator.error == {"message": "slow down", "type": "throttlingException"}
    assert not translator.started


def test_broken_frames_and_other_bodies_are_unreadable_streams() -> None:
    frame = bytearray(wire_bedrock.event_frame("messageStart", {"role": "assistant"}))
    frame[-1] ^= 0xFF  # the message CRC no longer matches
    with pytest.raises(SSEError):
        _decode(bytes(frame), 16)
    with pytest.raises(SSEError):
        _decode(b'{"message": "x"}', 16, ctype="application/json")


def _snapshot(base: str = "https://bedrock-runtime.us-west-2.amazonaws.com") -> ProviderSnapshot:
    key = KeySnapshot(
        id=1,
        name="k",
        api_key=credentials_compose("AKIDEXAMPLE", "s3cr3t", "tok"),
        account_group=0,
        is_primary=True,
        base_url=base,
        organization="",
    )
    return ProviderSnapshot(
        id=1,
        name="b",
        provider_type="bedrock",
        base_url=base,
        api_version="",
        timeout=10,
        connect_timeout=1,
        max_retries=0,
        custom_headers=(),
        forward_headers=frozenset(),
        keys=(key,),
        region="us-west-2",
    )


def test_adapter_signs_and_encodes_the_model_id() -> None:
    snap = _snapshot()
    adapter = get_adapter("bedrock")
    request = adapter.chat_request(
        provider=snap,
        key=snap.keys[0],
        model="arn:aws:bedrock:us-west-2:123:inference-profile/us.meta.llama3-1-8b-instruct-v1:0",
        body={"messages": [{"role": "user", "content": "hi"}]},
        stream=True,
    )
    assert request.url == (
        "https://bedrock-runtime.us-west-2.amazonaws.com/model/"
        "arn%3Aaws%3Abedrock%3Aus-west-2%3A123%3Ainference-profile%2Fus.meta.llama3-1-8b-instruct-v1%3A0"
        "/converse-stream"
    )
    auth = request.headers["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/us-west-2/bedrock/aws4_request" in auth and "s3cr3t" not in auth
    assert request.headers["X-Amz-Security-Token"] == "tok"
    assert request.headers["accept"] == wire_bedrock.EVENTSTREAM
    probe = adapter.models_request(provider=snap, key=snap.keys[0])
    assert probe.method == "GET"
    assert probe.url == "https://bedrock.us-west-2.amazonaws.com/foundation-models"


def test_embeddings_bodies_and_answers() -> None:
    snap = _snapshot()
    adapter = get_adapter("bedrock")
    titan = adapter.embeddings_request(
        provider=snap,
        key=snap.keys[0],
        model="amazon.titan-embed-text-v2:0",
        body={"input": "hi", "dimensions": 256},
    )
    assert orjson.loads(titan.body) == {"inputText": "hi", "dimensions": 256}
    cohere = adapter.embeddings_request(
        provider=snap,
        key=snap.keys[0],
        model="cohere.embed-multilingual-v3",
        body={"input": ["a", "b"]},
    )
    assert orjson.loads(cohere.body) == {"texts": ["a", "b"], "input_type": "search_document"}
    with pytest.raises(UnsupportedOperation):
        adapter.embeddings_request(
            provider=snap, key=snap.keys[0], model="anthropic.claude-v2", body={"input": "x"}
        )
    payload, usage = adapter.embeddings_response(
        b'{"embedding": [0.1, 0.2], "inputTextTokenCount": 3}'
    )
    assert orjson.loads(payload)["data"][0]["embedding"] == [0.1, 0.2] and usage.prompt_tokens == 3
    payload, _ = adapter.embeddings_response(b'{"embeddings": [[1.0], [2.0]], "id": "x"}')
    assert [d["index"] for d in orjson.loads(payload)["data"]] == [0, 1]


def test_error_body_and_credentials_helpers() -> None:
    adapter = get_adapter("bedrock")
    assert adapter.error_details(429, b'{"message": "Too many requests"}') == (
        "Too many requests",
        "upstream_error",
        None,
    )
    assert credentials_split("a:b") is not None and credentials_split("ab") is None
    assert credentials_split("a:b:c:d") is None
    assert credentials_masked("AKIDEXAMPLE123:s3cr3t:tok") == "…E123:****:****"
    assert credentials_masked("${ID}:${SECRET}") == "${ID}:${SECRET}"
