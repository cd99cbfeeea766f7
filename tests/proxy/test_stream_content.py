"""Streamed answers rebuilt from the bytes the client got (tracing's content capture): the
same output a whole answer carries, whatever the byte boundaries, and a stream closed early
still closes the relay under it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from gateway.proxy import tracing
from gateway.proxy.stream_content import StreamContent


def sse(*events: dict[str, Any], done: bool = False, named: bool = False) -> bytes:
    out = b""
    for event in events:
        if named:
            out += b"event: " + str(event["type"]).encode() + b"\n"
        out += b"data: " + orjson.dumps(event) + b"\n\n"
    return out + (b"data: [DONE]\n\n" if done else b"")


def fed(endpoint: str, data: bytes, step: int) -> list[Any]:
    content = StreamContent(endpoint)
    for i in range(0, len(data), step):
        content.feed(data[i : i + step])
    return content.output()


def delta(**fields: Any) -> dict[str, Any]:
    return {"choices": [{"index": 0, "delta": fields}]}


def tool(**fields: Any) -> dict[str, Any]:
    return delta(tool_calls=[{"index": 0, **fields}])


def block(index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_start", "index": index, "content_block": fields}


def block_delta(index: int, **fields: Any) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": fields}


CHAT = sse(
    delta(role="assistant", content=""),
    delta(content="Hel"),
    delta(content="lo"),
    tool(id="call_1", function={"name": "f", "arguments": ""}),
    tool(function={"arguments": '{"a":'}),
    tool(function={"arguments": "1}"}),
    {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
    {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 5}},
    done=True,
)

MESSAGES = sse(
    {"type": "message_start", "message": {"id": "msg_1", "content": []}},
    block(0, type="thinking", thinking=""),
    block_delta(0, type="thinking_delta", thinking="hmm"),
    block_delta(0, type="signature_delta", signature="s"),
    block(1, type="text", text=""),
    block_delta(1, type="text_delta", text="Hi "),
    block_delta(1, type="text_delta", text="there"),
    block(2, type="tool_use", id="tu_1", name="f", input={}),
    block_delta(2, type="input_json_delta", partial_json='{"a": '),
    block_delta(2, type="input_json_delta", partial_json="[1, 2]}"),
    {"type": "message_delta", "delta": {"stop_reason": "tool_use"}},
    {"type": "message_stop"},
    named=True,
)

FINAL_OUTPUT = [
    {
        "type": "message",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "Hello"}],
    }
]
RESPONSES = sse(
    {"type": "response.created", "response": {"id": "r", "output": []}},
    {"type": "response.output_text.delta", "delta": "Hel"},
    {"type": "response.output_text.delta", "delta": "lo"},
    {"type": "response.completed", "response": {"id": "r", "output": FINAL_OUTPUT}},
    named=True,
)


@pytest.mark.parametrize("step", [1, 7, 10_000])
def test_chat_chunks_fold_into_the_whole_answers_choices(step: int) -> None:
    assert fed("chat", CHAT, step) == [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Hello",
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'},
                    }
                ],
            },
            "finish_reason": "tool_calls",
        }
    ]


@pytest.mark.parametrize("step", [1, 13, 10_000])
def test_messages_events_fold_into_content_blocks(step: int) -> None:
    assert fed("messages", MESSAGES, step) == [
        {"type": "thinking", "thinking": "hmm"},
        {"type": "text", "text": "Hi there"},
        {"type": "tool_use", "id": "tu_1", "name": "f", "input": {"a": [1, 2]}},
    ]


def test_responses_take_the_final_output_or_else_the_text_so_far() -> None:
    assert fed("responses", RESPONSES, 5) == FINAL_OUTPUT
    cut = RESPONSES[: RESPONSES.index(b"event: response.completed")]
    assert fed("responses", cut, 5) == FINAL_OUTPUT  # the text deltas, as a message


def test_crlf_events_unknown_endpoints_and_junk() -> None:
    assert fed("chat", CHAT.replace(b"\n", b"\r\n"), 3) == fed("chat", CHAT, 3)
    assert fed("embeddings", CHAT, 5) == []
    # Not JSON, a comment, and events of shapes no API sends: skipped, never an error.
    junk = b"data: {not json}\n\n: comment\n\n" + sse(
        {"choices": ["odd"]}, delta(tool_calls=["odd"]), delta(tool_calls=[{"function": 3}])
    )
    assert fed("chat", junk + CHAT, 9)[0]["message"]["content"] == "Hello"


def test_captured_passes_bytes_through_and_closes_the_relay_when_closed_early() -> None:
    closed: list[bool] = []
    attributes: dict[str, Any] = {}

    async def relay() -> AsyncIterator[bytes]:
        try:
            for line in CHAT.split(b"\n\n")[:-1]:
                yield line + b"\n\n"
        finally:
            closed.append(True)

    span = SimpleNamespace(set_attribute=attributes.__setitem__)
    ctx: Any = SimpleNamespace(endpoint="chat", span=span)

    async def read_two() -> list[bytes]:
        stream = tracing.captured(ctx, relay())
        got = [await anext(stream), await anext(stream)]
        await stream.aclose()  # type: ignore[attr-defined]  # the client left
        return got

    got = asyncio.run(read_two())
    assert got == [event + b"\n\n" for event in CHAT.split(b"\n\n")[:2]]
    assert closed == [True]  # the relay's clean-up ran (usage, release), not left to GC
    output = orjson.loads(attributes["gen_ai.output.messages"])
    assert output[0]["message"]["content"] == "Hel"  # what the client had received
