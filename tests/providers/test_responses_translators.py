"""The Responses API translators, pure: request -> chat, chat answer -> Response, chat chunks ->
Responses events (checked against the openai SDK's own stream accumulator)."""

from __future__ import annotations

from typing import Any

import openai
import orjson
import pytest
from openai._models import construct_type_unchecked
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import ResponseStreamEvent

from providers.adapters.base import UnsupportedOperation, Usage
from providers.adapters.openai_responses import ResponsesPassthroughStream
from providers.translators.responses_openai_request import (
    UnsupportedTool,
    responses_request_to_chat,
)
from providers.translators.responses_openai_response import chat_to_response
from providers.translators.responses_openai_stream import ChatToResponsesStream


def test_items_become_chat_messages() -> None:
    body = {
        "model": "m",
        "instructions": "sys",
        "input": [
            {"role": "user", "content": "hi"},
            {
                "type": "message",
                "role": "assistant",
                "content": [{"type": "output_text", "text": "let me look"}],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "g", "arguments": "{}"},
            {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "x"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "two"}],
            },
            {
                "role": "user",
                "content": [{"type": "input_image", "image_url": "data:x", "detail": "low"}],
            },
        ],
    }
    chat = responses_request_to_chat(body)
    assert chat["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "hi"},
        {
            "role": "assistant",
            "content": "let me look",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:x", "detail": "low"}}],
        },
    ]


def test_history_comes_first_and_builtin_tools_are_refused() -> None:
    chat = responses_request_to_chat(
        {"model": "m", "input": "again"}, history=[{"role": "user", "content": "first"}]
    )
    assert [m["content"] for m in chat["messages"]] == ["first", "again"]
    for tool in ("web_search", "file_search", "code_interpreter", "mcp", "image_generation"):
        with pytest.raises(UnsupportedTool) as caught:
            responses_request_to_chat({"model": "m", "input": "x", "tools": [{"type": tool}]})
        assert caught.value.tool == tool and tool in str(caught.value)
    with pytest.raises(UnsupportedOperation):
        responses_request_to_chat({"model": "m", "input": [{"type": "item_reference", "id": "x"}]})


def test_whole_answer_with_tool_call_and_cut_output() -> None:
    chat = {
        "created": 1,
        "choices": [
            {
                "message": {
                    "content": "calling",
                    "tool_calls": [{"id": "call_1", "function": {"name": "f", "arguments": "{}"}}],
                },
                "finish_reason": "length",
            }
        ],
        "usage": {"completion_tokens_details": {"reasoning_tokens": 2}},
    }
    response = chat_to_response(
        chat, {"model": "alias"}, response_id="resp_x", usage=Usage(10, 5, 3)
    )
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert [i["type"] for i in response["output"]] == ["message", "function_call"]
    assert response["output"][1]["call_id"] == "call_1"
    assert response["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 3},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 15,
    }


def _chunk(delta: dict[str, Any], finish: str | None = None) -> str:
    return orjson.dumps(
        {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    ).decode()


def _sdk_final(raw: list[bytes]) -> Any:
    """Run the bytes through the SDK's own accumulator; its final response."""
    state: ResponseStreamState[Any] = ResponseStreamState(input_tools=[], text_format=openai.omit)  # type: ignore[arg-type]
    final = None
    for block in b"".join(raw).decode().strip().split("\n\n"):
        data = orjson.loads(block.split("\ndata: ", 1)[1])
        event = construct_type_unchecked(type_=ResponseStreamEvent, value=data)  # type: ignore[arg-type]
        for out in state.handle_event(event):
            if out.type in ("response.completed", "response.incomplete"):
                final = getattr(out, "response", None)
    return final


def test_stream_text_then_tool_call_is_accepted_by_the_sdk() -> None:
    t = ChatToResponsesStream(request={"model": "alias", "tools": []})
    out: list[bytes] = []
    out += t.feed(_chunk({"role": "assistant", "content": ""}))
    assert not t.started
    out += t.feed(_chunk({"content": "Hel"})) + t.feed(_chunk({"content": "lo"}))
    call = {
        "index": 0,
        "id": "call_9",
        "type": "function",
        "function": {"name": "f", "arguments": ""},
    }
    out += t.feed(_chunk({"tool_calls": [call]}))
    out += t.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}))
    out += t.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}))
    out += t.feed(_chunk({}, "tool_calls"))
    out += t.feed(
        orjson.dumps(
            {"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 6}}
        ).decode()
    )
    out += t.feed("[DONE]")
    assert t.done and b"response.completed" not in b"".join(out)  # held back for the store
    assert t.response()["usage"]["output_tokens"] == 6
    out += t.finish()
    final = _sdk_final(out)
    assert final is not None and final.output_text == "Hello"
    assert final.output[1].type == "function_call" and final.output[1].arguments == '{"a":1}'
    assert final.output[1].call_id == "call_9"


def test_stream_cut_by_length_is_incomplete_and_failure_is_response_failed() -> None:
    t = ChatToResponsesStream(request={"model": "alias"})
    out = t.feed(_chunk({"content": "cut"})) + t.feed(_chunk({}, "length")) + t.feed("[DONE]")
    out += t.finish()
    last = orjson.loads(out[-1].split(b"data: ", 1)[1])
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}

    t = ChatToResponsesStream(request={"model": "alias"})
    t.feed(_chunk({"content": "half"}))
    failed = t.fail_events("boom", "upstream_error", None)
    types = [orjson.loads(b.split(b"data: ", 1)[1])["type"] for b in failed]
    assert types == ["error", "response.failed"] and t.finish() == []


def test_passthrough_holds_the_terminal_event_and_reads_usage() -> None:
    t = ResponsesPassthroughStream()
    created = {"type": "response.created", "sequence_number": 0, "response": {"id": "r"}}
    assert t.feed(orjson.dumps(created).decode())
    delta = {"type": "response.output_text.delta", "sequence_number": 1, "delta": "x"}
    t.feed(orjson.dumps(delta).decode())
    assert t.started
    usage = {"input_tokens": 3, "output_tokens": 2, "input_tokens_details": {"cached_tokens": 1}}
    done = {
        "type": "response.completed",
        "sequence_number": 2,
        "response": {"id": "r", "usage": usage},
    }
    assert t.feed(orjson.dumps(done).decode()) == [] and t.done
    assert (t.usage.prompt_tokens, t.usage.completion_tokens, t.usage.cached_tokens) == (3, 2, 1)
    assert t.final == done["response"] and b"response.completed" in t.finish()[0]
    early = ResponsesPassthroughStream()
    early.feed(orjson.dumps({"type": "error", "message": "overloaded", "code": "x"}).decode())
    assert early.error is not None and not early.started  # fails over
