"""The anthropic adapter: OpenAI <-> Messages translation, both directions, whole and streamed.

Pure translation tests: no database, no network. Payload shapes follow Anthropic's API
reference; outputs are checked against the official SDKs' response models where they exist.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from anthropic.types import Message as AnthropicMessage
from anthropic.types import RawMessageStreamEvent
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from pydantic import TypeAdapter

from providers.adapters import get_adapter
from providers.adapters.anthropic import (
    AnthropicAdapter,
    AnthropicStreamTranslator,
    OpenAIToAnthropicStream,
    anthropic_request_to_openai,
    anthropic_response_to_openai,
    openai_request_to_anthropic,
    openai_response_to_anthropic,
)
from providers.adapters.base import UnsupportedOperation, Usage
from providers.snapshot import KeySnapshot, ProviderSnapshot

MODEL = "claude-sonnet-4-5-20250929"
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def provider(base_url: str = "https://api.anthropic.com/v1") -> ProviderSnapshot:
    return ProviderSnapshot(
        id=7,
        name="anthropic-prod",
        provider_type="anthropic",
        base_url=base_url,
        api_version="",
        timeout=60.0,
        connect_timeout=5.0,
        max_retries=2,
        custom_headers=(("anthropic-beta", "prompt-caching-2024-07-31"),),
        forward_headers=frozenset(),
        keys=(),
    )


def key(base_url: str = "https://api.anthropic.com/v1") -> KeySnapshot:
    return KeySnapshot(
        id=3,
        name="prod-1",
        api_key="sk-ant-test",
        account_group=1,
        is_primary=True,
        base_url=base_url,
        organization="",
    )


def to_anthropic(**body: Any) -> dict[str, Any]:
    body.setdefault("messages", [{"role": "user", "content": "Hi"}])
    return openai_request_to_anthropic(body, model=MODEL, stream=False)


# -- adapter surface --------------------------------------------------------------------------
def test_registry_returns_the_anthropic_adapter() -> None:
    adapter = get_adapter("anthropic")
    assert isinstance(adapter, AnthropicAdapter)
    assert adapter.provider_type == "anthropic"
    assert adapter.openai_wire is False


def test_chat_request_url_headers_and_body() -> None:
    body = {"model": "alias", "messages": [{"role": "user", "content": "Hi"}]}
    req = AnthropicAdapter().chat_request(
        provider=provider(), key=key(), model=MODEL, body=body, stream=False
    )
    assert req.method == "POST"
    assert req.url == "https://api.anthropic.com/v1/messages"
    assert req.headers["x-api-key"] == "sk-ant-test"
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["accept"] == "application/json"
    assert "authorization" not in req.headers
    # Custom headers are the HTTP seam's job, never the adapter's.
    assert "anthropic-beta" not in req.headers
    sent = orjson.loads(req.body)
    assert sent == {
        "model": MODEL,
        "max_tokens": 4096,
        "messages": [{"role": "user", "content": "Hi"}],
    }


def test_chat_request_streaming_and_key_base_url() -> None:
    req = AnthropicAdapter().chat_request(
        provider=provider(),
        key=key("https://proxy.internal/anthropic/v1"),
        model=MODEL,
        body={"messages": [{"role": "user", "content": "Hi"}], "stream": True},
        stream=True,
    )
    assert req.url == "https://proxy.internal/anthropic/v1/messages"
    assert req.headers["accept"] == "text/event-stream"
    assert orjson.loads(req.body)["stream"] is True


def test_stream_flag_comes_from_the_argument_not_the_body() -> None:
    out = openai_request_to_anthropic(
        {"messages": [{"role": "user", "content": "Hi"}], "stream": True},
        model=MODEL,
        stream=False,
    )
    assert "stream" not in out


def test_models_request_is_an_authenticated_get() -> None:
    req = AnthropicAdapter().models_request(provider=provider(), key=key())
    assert req.method == "GET"
    assert req.url == "https://api.anthropic.com/v1/models"
    assert req.headers["x-api-key"] == "sk-ant-test"
    assert req.headers["anthropic-version"] == "2023-06-01"
    assert req.body == b""


def test_embeddings_are_unsupported() -> None:
    with pytest.raises(UnsupportedOperation):
        AnthropicAdapter().embeddings_request(
            provider=provider(), key=key(), model=MODEL, body={"input": "x"}
        )


def test_error_details_reads_anthropic_errors() -> None:
    payload = orjson.dumps(
        {
            "type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"},
            "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
        }
    )
    assert AnthropicAdapter().error_details(529, payload) == (
        "Overloaded",
        "overloaded_error",
        None,
    )


def test_error_details_falls_back_for_other_bodies() -> None:
    adapter = AnthropicAdapter()
    assert adapter.error_details(502, b"<html>Bad gateway</html>") == (
        "<html>Bad gateway</html>",
        "upstream_error",
        None,
    )
    assert adapter.error_details(500, b"{}") == (
        "upstream returned HTTP 500",
        "upstream_error",
        None,
    )


# -- request: OpenAI -> Anthropic -------------------------------------------------------------
def test_single_system_message_becomes_a_string() -> None:
    out = to_anthropic(
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi"},
        ]
    )
    assert out["system"] == "You are terse."
    assert out["messages"] == [{"role": "user", "content": "Hi"}]


def test_several_system_and_developer_messages_become_blocks() -> None:
    out = to_anthropic(
        messages=[
            {"role": "system", "content": "You are terse."},
            {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
            {"role": "user", "content": "Hi"},
            {"role": "system", "content": "Never mention pricing."},
        ]
    )
    assert out["system"] == [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Answer in French."},
        {"type": "text", "text": "Never mention pricing."},
    ]
    assert out["messages"] == [{"role": "user", "content": "Hi"}]


def test_max_tokens_default_and_precedence() -> None:
    assert to_anthropic()["max_tokens"] == 4096
    assert to_anthropic(max_tokens=100)["max_tokens"] == 100
    assert to_anthropic(max_tokens=100, max_completion_tokens=200)["max_tokens"] == 200


@pytest.mark.parametrize(
    ("stop", "expected"),
    [("END", ["END"]), (["a", "b"], ["a", "b"]), (["", " ", "x"], ["x"])],
)
def test_stop_becomes_stop_sequences(stop: Any, expected: list[str]) -> None:
    assert to_anthropic(stop=stop)["stop_sequences"] == expected


def test_no_stop_sequences_without_stop() -> None:
    assert "stop_sequences" not in to_anthropic(stop=None)


def test_sampling_parameters_and_user() -> None:
    out = to_anthropic(temperature=0.3, user="user-42", top_k=40)
    assert out["temperature"] == 0.3
    assert out["metadata"] == {"user_id": "user-42"}
    assert out["top_k"] == 40
    assert to_anthropic(top_p=0.9)["top_p"] == 0.9


def test_temperature_is_clamped_and_wins_over_top_p() -> None:
    out = to_anthropic(temperature=1.7, top_p=0.9)
    assert out["temperature"] == 1.0
    assert "top_p" not in out


def test_openai_only_fields_are_dropped() -> None:
    out = to_anthropic(
        n=1,
        logprobs=True,
        top_logprobs=3,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        seed=7,
        stream_options={"include_usage": True},
        logit_bias={"50256": -100},
        store=True,
        metadata={"team": "x"},
        reasoning_effort="low",
        service_tier="flex",
        parallel_tool_calls=True,
        tool_choice="auto",
        response_format={"type": "text"},
    )
    assert set(out) == {"model", "max_tokens", "messages"}


def test_image_parts_data_url_and_http_url() -> None:
    out = to_anthropic(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Compare these."},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG}", "detail": "high"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                ],
            }
        ]
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "Compare these."},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
    ]


def test_pdf_file_part_becomes_a_document() -> None:
    out = to_anthropic(
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "file",
                        "file": {
                            "filename": "report.pdf",
                            "file_data": "data:application/pdf;base64,JVBERi0x",
                        },
                    }
                ],
            }
        ]
    )
    assert out["messages"][0]["content"] == [
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"},
            "title": "report.pdf",
        }
    ]


def test_cache_control_on_parts_survives() -> None:
    out = to_anthropic(
        messages=[
            {
                "role": "system",
                "content": [
                    {"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}
                ],
            },
            {"role": "user", "content": "Hi"},
        ]
    )
    assert out["system"] == [
        {"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}
    ]


def test_audio_input_is_refused() -> None:
    with pytest.raises(UnsupportedOperation):
        to_anthropic(
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "input_audio", "input_audio": {"data": "x", "format": "wav"}}
                    ],
                }
            ]
        )


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a given location",
        "parameters": {
            "type": "object",
            "properties": {"location": {"type": "string"}},
            "required": ["location"],
        },
    },
}


def test_tools_become_input_schema() -> None:
    out = to_anthropic(tools=[WEATHER_TOOL, {"type": "function", "function": {"name": "get_time"}}])
    assert out["tools"] == [
        {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "input_schema": WEATHER_TOOL["function"]["parameters"],  # type: ignore[index]
        },
        {"name": "get_time", "input_schema": {"type": "object"}},
    ]
    assert "tool_choice" not in out


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
    ],
)
def test_tool_choice_variants(choice: Any, parallel: Any, expected: dict[str, Any]) -> None:
    body: dict[str, Any] = {"tools": [WEATHER_TOOL]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert to_anthropic(**body)["tool_choice"] == expected


def test_non_function_tools_are_refused() -> None:
    with pytest.raises(UnsupportedOperation):
        to_anthropic(tools=[{"type": "custom", "custom": {"name": "x"}}])


def test_tool_calls_and_results_round_trip() -> None:
    out = to_anthropic(
        tools=[WEATHER_TOOL],
        messages=[
            {"role": "user", "content": "Weather in Paris and London?"},
            {
                "role": "assistant",
                "content": "Let me check both.",
                "tool_calls": [
                    {
                        "id": "toolu_01A",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    },
                    {
                        "id": "toolu_01B",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"London"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "toolu_01A", "content": "18C, sunny"},
            {
                "role": "tool",
                "tool_call_id": "toolu_01B",
                "content": [{"type": "text", "text": "12C, rain"}],
            },
            {"role": "user", "content": "Which is warmer?"},
        ],
    )
    assert out["messages"] == [
        {"role": "user", "content": "Weather in Paris and London?"},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check both."},
                {
                    "type": "tool_use",
                    "id": "toolu_01A",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01B",
                    "name": "get_weather",
                    "input": {"location": "London"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01A", "content": "18C, sunny"},
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01B",
                    "content": [{"type": "text", "text": "12C, rain"}],
                },
                {"type": "text", "text": "Which is warmer?"},
            ],
        },
    ]


def test_assistant_with_only_tool_calls_and_odd_arguments() -> None:
    out = to_anthropic(
        messages=[
            {"role": "user", "content": "go"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "t1", "type": "function", "function": {"name": "a", "arguments": ""}},
                    {"id": "t2", "type": "function", "function": {"name": "b", "arguments": "{"}},
                ],
            },
            {"role": "tool", "tool_call_id": "t1", "content": ""},
            {"role": "tool", "tool_call_id": "t2", "content": "ok"},
        ]
    )
    assistant = out["messages"][1]["content"]
    assert [b["input"] for b in assistant] == [{}, {"arguments": "{"}]
    assert out["messages"][2]["content"] == [
        {"type": "tool_result", "tool_use_id": "t1"},
        {"type": "tool_result", "tool_use_id": "t2", "content": "ok"},
    ]


def test_consecutive_same_role_messages_are_merged() -> None:
    out = to_anthropic(
        messages=[
            {"role": "user", "content": "First."},
            {"role": "user", "content": [{"type": "text", "text": "Second."}]},
            {"role": "assistant", "content": "A"},
            {"role": "assistant", "content": ""},
            {"role": "assistant", "content": "B"},
            {"role": "user", "content": "Third."},
        ]
    )
    assert out["messages"] == [
        {
            "role": "user",
            "content": [{"type": "text", "text": "First."}, {"type": "text", "text": "Second."}],
        },
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}],
        },
        {"role": "user", "content": "Third."},
    ]


def test_final_assistant_prefill_loses_trailing_whitespace() -> None:
    out = to_anthropic(
        messages=[
            {"role": "user", "content": "Pick A or B."},
            {"role": "assistant", "content": "The answer is "},
        ]
    )
    assert out["messages"][-1] == {"role": "assistant", "content": "The answer is"}


@pytest.mark.parametrize(
    ("response_format", "needle"),
    [
        ({"type": "json_object"}, "valid JSON object"),
        (
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "city",
                    "schema": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
            },
            '"properties":{"name":{"type":"string"}}',
        ),
    ],
)
def test_response_format_becomes_a_system_instruction(
    response_format: dict[str, Any], needle: str
) -> None:
    out = to_anthropic(
        messages=[{"role": "system", "content": "Be helpful."}, {"role": "user", "content": "Hi"}],
        response_format=response_format,
    )
    assert out["system"][0] == {"type": "text", "text": "Be helpful."}
    assert needle in out["system"][1]["text"]
    assert "response_format" not in out


# -- response: Anthropic -> OpenAI ------------------------------------------------------------
def anthropic_message(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6},
    }
    message.update(overrides)
    return message


def translate(message: dict[str, Any]) -> tuple[dict[str, Any], Usage]:
    body, usage = AnthropicAdapter().chat_response(orjson.dumps(message))
    data = orjson.loads(body)
    ChatCompletion.model_validate(data)
    return data, usage


def test_text_response() -> None:
    data, usage = translate(
        anthropic_message(
            content=[{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world."}]
        )
    )
    assert data["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert data["object"] == "chat.completion"
    assert data["model"] == MODEL
    assert isinstance(data["created"], int)
    choice = data["choices"][0]
    assert choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] == "Hello, world."
    assert "tool_calls" not in choice["message"]
    assert choice["finish_reason"] == "stop"
    assert data["usage"] == {
        "prompt_tokens": 12,
        "completion_tokens": 6,
        "total_tokens": 18,
        "prompt_tokens_details": {"cached_tokens": 0},
    }
    assert usage == Usage(prompt_tokens=12, completion_tokens=6, cached_tokens=0, model=MODEL)


def test_tool_use_response() -> None:
    data, _ = translate(
        anthropic_message(
            content=[
                {
                    "type": "thinking",
                    "thinking": "User wants weather.",
                    "signature": "EqQBCgIYAhIM1gbcDa9GJwZA",
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "get_weather",
                    "input": {"location": "San Francisco, CA", "unit": "celsius"},
                },
            ],
            stop_reason="tool_use",
        )
    )
    message = data["choices"][0]["message"]
    assert message["content"] is None
    assert message["reasoning_content"] == "User wants weather."
    (call,) = message["tool_calls"]
    assert call["id"] == "toolu_01A09q90qw90lq917835lq9"
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == {
        "location": "San Francisco, CA",
        "unit": "celsius",
    }
    assert data["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_stop_reasons(stop_reason: str, finish: str) -> None:
    data, _ = translate(anthropic_message(stop_reason=stop_reason))
    assert data["choices"][0]["finish_reason"] == finish


def test_usage_with_cache_tokens() -> None:
    data, usage = translate(
        anthropic_message(
            usage={
                "input_tokens": 21,
                "cache_creation_input_tokens": 188,
                "cache_read_input_tokens": 1024,
                "output_tokens": 393,
            }
        )
    )
    assert data["usage"] == {
        "prompt_tokens": 21 + 188 + 1024,
        "completion_tokens": 393,
        "total_tokens": 21 + 188 + 1024 + 393,
        "prompt_tokens_details": {"cached_tokens": 1024},
    }
    assert usage == Usage(
        prompt_tokens=1233, completion_tokens=393, cached_tokens=1024, model=MODEL
    )


def test_fixed_created_for_reproducible_output() -> None:
    data = anthropic_response_to_openai(anthropic_message(), created=1_700_000_000)
    assert data["created"] == 1_700_000_000


# -- streaming: Anthropic events -> OpenAI chunks ---------------------------------------------
def recorded_stream() -> list[tuple[str, dict[str, Any]]]:
    """The event sequence of a Messages stream with text then a tool call (Anthropic docs)."""
    return [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
                    "type": "message",
                    "role": "assistant",
                    "model": MODEL,
                    "stop_sequence": None,
                    "usage": {
                        "input_tokens": 472,
                        "cache_read_input_tokens": 100,
                        "cache_creation_input_tokens": 0,
                        "output_tokens": 2,
                    },
                    "content": [],
                    "stop_reason": None,
                },
            },
        ),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        ("ping", {"type": "ping"}),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": "Okay"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": ", let's"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": " check the weather."},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                    "name": "get_weather",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": 'ncisco, CA", "unit": "c"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": {"output_tokens": 89},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def run_stream(
    translator: AnthropicStreamTranslator, events: list[tuple[str, dict[str, Any]]]
) -> list[bytes]:
    lines: list[bytes] = []
    for name, payload in events:
        lines.extend(translator.feed(orjson.dumps(payload).decode(), name))
    return lines


def chunks_of(lines: list[bytes]) -> list[dict[str, Any]]:
    chunks = []
    for line in lines:
        assert line.startswith(b"data: ") and line.endswith(b"\n\n")
        data = line[len(b"data: ") : -2]
        if data != b"[DONE]":
            chunk = orjson.loads(data)
            ChatCompletionChunk.model_validate(chunk)
            chunks.append(chunk)
    return chunks


@pytest.mark.parametrize("include_usage", [True, False])
def test_recorded_stream(include_usage: bool) -> None:
    translator = AnthropicAdapter().chat_stream(include_usage=include_usage)
    assert isinstance(translator, AnthropicStreamTranslator)
    lines = run_stream(translator, recorded_stream())
    assert lines[-1] == b"data: [DONE]\n\n"
    assert lines.count(b"data: [DONE]\n\n") == 1
    assert translator.done
    assert translator.started
    assert translator.error is None

    chunks = chunks_of(lines)
    assert {c["id"] for c in chunks} == {"msg_014p7gG3wDgGV9EUtLvnow3U"}
    assert {c["model"] for c in chunks} == {MODEL}
    assert {c["object"] for c in chunks} == {"chat.completion.chunk"}
    with_choices = [c for c in chunks if c["choices"]]
    assert with_choices[0]["choices"][0]["delta"]["role"] == "assistant"

    deltas = [c["choices"][0]["delta"] for c in with_choices]
    text = "".join(d.get("content") or "" for d in deltas)
    assert text == "Okay, let's check the weather."

    calls = [call for d in deltas for call in d.get("tool_calls") or []]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert {call["index"] for call in calls} == {0}
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert orjson.loads(arguments) == {"location": "San Francisco, CA", "unit": "c"}

    finishes = [c["choices"][0]["finish_reason"] for c in with_choices]
    assert finishes[-1] == "tool_calls"
    assert [f for f in finishes if f] == ["tool_calls"]

    usage_chunks = [c for c in chunks if not c["choices"]]
    expected_usage = {
        "prompt_tokens": 572,
        "completion_tokens": 89,
        "total_tokens": 661,
        "prompt_tokens_details": {"cached_tokens": 100},
    }
    if include_usage:
        assert len(usage_chunks) == 1
        assert usage_chunks[0]["usage"] == expected_usage
        assert chunks[-1] is usage_chunks[0]  # right before [DONE]
    else:
        assert usage_chunks == []
    assert translator.usage == Usage(prompt_tokens=572, completion_tokens=89, cached_tokens=100)


def test_started_only_after_content() -> None:
    translator = AnthropicStreamTranslator(include_usage=False)
    events = recorded_stream()
    run_stream(translator, events[:3])  # message_start, empty text block start, ping
    assert translator.started is False
    assert translator.usage.prompt_tokens == 572
    run_stream(translator, events[3:4])
    assert translator.started is True


def test_ping_and_block_stop_produce_nothing() -> None:
    translator = AnthropicStreamTranslator(include_usage=True)
    assert translator.feed('{"type": "ping"}', "ping") == []
    assert translator.feed('{"type":"content_block_stop","index":0}', "content_block_stop") == []


def test_error_event_before_content() -> None:
    translator = AnthropicStreamTranslator(include_usage=True)
    run_stream(translator, recorded_stream()[:3])
    out = translator.feed(
        '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
        "error",
    )
    assert out == []
    assert translator.error == {"message": "Overloaded", "type": "overloaded_error"}
    assert translator.started is False
    assert translator.done is False


def test_malformed_event_sets_error() -> None:
    translator = AnthropicStreamTranslator(include_usage=False)
    assert translator.feed("{not json", "message_start") == []
    assert translator.error is not None


def test_thinking_deltas_become_reasoning_content() -> None:
    translator = AnthropicStreamTranslator(include_usage=False)
    events = [
        recorded_stream()[0],
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Let me think."},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"},
            },
        ),
    ]
    chunks = chunks_of(run_stream(translator, events))
    assert [c["choices"][0]["delta"] for c in chunks[1:]] == [
        {"reasoning_content": "Let me think."}
    ]


def test_server_tool_blocks_are_not_client_tool_calls() -> None:
    translator = AnthropicStreamTranslator(include_usage=False)
    events = [
        recorded_stream()[0],
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {
                    "type": "server_tool_use",
                    "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
                    "name": "web_search",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "input_json_delta", "partial_json": '{"query": "weather"}'},
            },
        ),
    ]
    assert len(run_stream(translator, events)) == 1  # the role chunk only
    assert translator.started is False


# -- front door: Anthropic request -> OpenAI, OpenAI answer -> Anthropic ----------------------
def test_anthropic_request_to_openai() -> None:
    body = {
        "model": "claude-alias",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "Be brief."}, {"type": "text", "text": "Be kind."}],
        "temperature": 0.2,
        "stop_sequences": ["###"],
        "metadata": {"user_id": "u-1"},
        "stream": True,
        "tools": [
            {
                "name": "get_weather",
                "description": "Weather",
                "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}},
            }
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this and the weather?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"location": "Paris"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"},
                    {"type": "text", "text": "Thanks"},
                ],
            },
        ],
    }
    out = anthropic_request_to_openai(body)
    assert out["model"] == "claude-alias"
    assert out["max_tokens"] == 1024
    assert out["temperature"] == 0.2
    assert out["stop"] == ["###"]
    assert out["user"] == "u-1"
    assert out["stream"] is True
    assert out["stream_options"] == {"include_usage": True}
    assert out["tool_choice"] == "required"
    assert out["parallel_tool_calls"] is False
    assert out["tools"][0]["function"]["parameters"]["properties"] == {
        "location": {"type": "string"}
    }
    messages = out["messages"]
    assert messages[0] == {"role": "system", "content": "Be brief.\n\nBe kind."}
    assert messages[1]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": f"data:image/png;base64,{PNG}"},
    }
    assert messages[2]["content"] == "Checking."
    assert orjson.loads(messages[2]["tool_calls"][0]["function"]["arguments"]) == {
        "location": "Paris"
    }
    assert messages[3] == {"role": "tool", "tool_call_id": "toolu_1", "content": "18C"}
    assert messages[4] == {"role": "user", "content": "Thanks"}


def test_request_survives_a_round_trip() -> None:
    original = {
        "model": MODEL,
        "max_tokens": 512,
        "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {"q": "Paris"}}
                ],
            },
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "18C"}],
            },
        ],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "tool", "name": "get_weather"},
    }
    back = openai_request_to_anthropic(
        anthropic_request_to_openai(original), model=MODEL, stream=False
    )
    assert back["system"] == original["system"]
    assert back["messages"] == original["messages"]
    assert back["tools"] == original["tools"]
    assert back["tool_choice"] == original["tool_choice"]
    assert back["max_tokens"] == 512


def test_openai_response_to_anthropic() -> None:
    data = {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me look.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"q":"Paris"}'},
                        }
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 120,
            "completion_tokens": 30,
            "total_tokens": 150,
            "prompt_tokens_details": {"cached_tokens": 100},
        },
    }
    out = openai_response_to_anthropic(data, "claude-alias")
    AnthropicMessage.model_validate(out)
    assert out["model"] == "claude-alias"
    assert out["content"] == [
        {"type": "text", "text": "Let me look."},
        {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"q": "Paris"}},
    ]
    assert out["stop_reason"] == "tool_use"
    assert out["usage"] == {
        "input_tokens": 20,
        "output_tokens": 30,
        "cache_read_input_tokens": 100,
        "cache_creation_input_tokens": 0,
    }


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4o",
        "choices": [choice],
    }
    return orjson.dumps(chunk).decode()


def test_openai_stream_to_anthropic_events_and_back() -> None:
    front = OpenAIToAnthropicStream(model="claude-alias")
    feed = [
        openai_chunk({"role": "assistant", "content": ""}),
        openai_chunk({"content": "Hello"}),
        openai_chunk({"content": " there."}),
        openai_chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"q":'}}]}),
        openai_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        openai_chunk({}, "tool_calls"),
        orjson.dumps(
            {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4o",
                "choices": [],
                "usage": {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62},
            }
        ).decode(),
        "[DONE]",
    ]
    raw: list[bytes] = []
    for data in feed:
        raw.extend(front.feed(data))
    assert front.done and front.started

    events: list[tuple[str, dict[str, Any]]] = []
    validator = TypeAdapter(RawMessageStreamEvent)
    for item in raw:
        head, _, rest = item.partition(b"\n")
        assert head.startswith(b"event: ") and rest.startswith(b"data: ")
        payload = orjson.loads(rest[len(b"data: ") :])
        assert payload["type"] == head[len(b"event: ") :].decode()
        if payload["type"] != "ping":  # keep-alive, not a RawMessageStreamEvent
            validator.validate_python(payload)
        events.append((payload["type"], payload))
    assert [name for name, _ in events] == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert events[-2][1]["usage"]["output_tokens"] == 12

    # Fed back through the upstream translator, the events give the original answer again.
    back = AnthropicStreamTranslator(include_usage=True)
    chunks = chunks_of(run_stream(back, events))
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == "Hello there."
    arguments = "".join(
        call["function"]["arguments"] for d in deltas for call in d.get("tool_calls") or []
    )
    assert orjson.loads(arguments) == {"q": "Paris"}
    assert back.usage == Usage(prompt_tokens=50, completion_tokens=12, cached_tokens=0)
