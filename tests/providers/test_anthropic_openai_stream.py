"""OpenAI chunks -> Anthropic events: the parts the SDK's own parser relies on."""

from __future__ import annotations

from typing import Any

import orjson
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from providers.translators.anthropic_openai_stream import OpenAIToAnthropicStream


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> str:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return orjson.dumps({"id": "c1", "choices": choices, **extra}).decode()


def events(front: OpenAIToAnthropicStream, feed: list[str]) -> list[dict[str, Any]]:
    raw = [line for data in feed for line in front.feed(data)]
    out = [orjson.loads(item.split(b"\ndata: ", 1)[1]) for item in raw]
    validator = TypeAdapter(RawMessageStreamEvent)
    for event in out:
        if event["type"] != "ping":
            validator.validate_python(event)
    return out


def test_usage_given_up_front_reaches_message_start() -> None:
    usage = {"prompt_tokens": 42, "completion_tokens": 0}
    out = events(
        OpenAIToAnthropicStream(model="m"),
        [chunk({"role": "assistant"}, usage=usage), chunk({"content": "hi"}), chunk({}, "stop")],
    )
    assert out[0]["type"] == "message_start" and out[1]["type"] == "ping"
    assert out[0]["message"]["usage"]["input_tokens"] == 42


def test_tool_block_starts_once_id_and_name_are_known() -> None:
    front = OpenAIToAnthropicStream(model="m")
    out = events(
        front,
        [
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
            chunk({"tool_calls": [{"index": 0, "id": "call_9"}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"name": "f", "arguments": ":1}"}}]}),
            chunk({}, "tool_calls"),
            "[DONE]",
        ],
    )
    start = next(e for e in out if e["type"] == "content_block_start")
    assert start["content_block"] == {"type": "tool_use", "id": "call_9", "name": "f", "input": {}}
    parts = [e["delta"]["partial_json"] for e in out if e["type"] == "content_block_delta"]
    assert "".join(parts) == '{"a":1}'
    assert out[-2]["delta"]["stop_reason"] == "tool_use" and out[-1]["type"] == "message_stop"


def test_reasoning_becomes_a_thinking_block_before_text() -> None:
    out = events(
        OpenAIToAnthropicStream(model="m"),
        [
            chunk({"reasoning_content": "let me think"}),
            chunk({"content": "answer"}),
            chunk({}, "stop"),
            "[DONE]",
        ],
    )
    starts = [e["content_block"]["type"] for e in out if e["type"] == "content_block_start"]
    assert starts == ["thinking", "text"]
    deltas = [e["delta"]["type"] for e in out if e["type"] == "content_block_delta"]
    assert deltas == ["thinking_delta", "text_delta"]


def test_error_chunk_ends_without_message_stop() -> None:
    front = OpenAIToAnthropicStream(model="m")
    events(front, [chunk({"content": "x"}), orjson.dumps({"error": {"message": "boom"}}).decode()])
    assert front.error == {"message": "boom"} and front.finish() == []
