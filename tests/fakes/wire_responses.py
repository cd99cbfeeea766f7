"""What the fake upstream answers on OpenAI's Responses API (``POST .../responses``).

The same deterministic model as the chat route (``tests.fakes.wire``): the request's items
are read as the chat messages they stand for and :func:`wire.decide_openai` decides, so an
echo, a call of the first function tool, or a tool answer come out as on chat. Like OpenAI,
the fake keeps what it answered, so ``previous_response_id`` continues a conversation (and an
unknown id is a 404 ``previous_response_not_found``).
"""

from __future__ import annotations

import json
import threading
from typing import Any

from tests.fakes import wire

_lock = threading.Lock()
_conversations: dict[str, list[dict[str, Any]]] = {}  # response id -> items incl. its output


def items_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    raw = body.get("input")
    if isinstance(raw, str):
        return [{"type": "message", "role": "user", "content": raw}]
    return [i for i in raw or [] if isinstance(i, dict)]


def history(previous: str) -> list[dict[str, Any]] | None:
    with _lock:
        return list(_conversations[previous]) if previous in _conversations else None


def remember(response_id: str, items: list[dict[str, Any]], output: list[dict[str, Any]]) -> None:
    with _lock:
        _conversations[response_id] = [*items, *output]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return " ".join(
        str(p.get("text")) for p in content or [] if isinstance(p, dict) and p.get("text")
    )


def decide(body: dict[str, Any], items: list[dict[str, Any]]) -> wire.Decision:
    """The fake model's move for these items (read as chat messages)."""
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    for item in items:
        kind = item.get("type") or "message"
        if kind == "message":
            messages.append({"role": item.get("role"), "content": _text(item.get("content"))})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "content": _text(item.get("output"))})
        elif kind == "function_call":
            messages.append({"role": "assistant", "content": ""})
    tools = [
        {"function": {"name": t.get("name")}}
        for t in body.get("tools") or []
        if isinstance(t, dict) and t.get("type") == "function"
    ]
    return wire.decide_openai(
        {"messages": messages, "tools": tools, "tool_choice": body.get("tool_choice")}
    )


def usage(d: wire.Decision) -> dict[str, Any]:
    return {
        "input_tokens": d.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": d.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": d.prompt_tokens + d.completion_tokens,
    }


def output_items(d: wire.Decision, n: int) -> list[dict[str, Any]]:
    if d.is_tool_call:
        return [
            {
                "id": f"fc_fake{n:06d}",
                "type": "function_call",
                "status": "completed",
                "arguments": d.tool_args,
                "call_id": "call_" + d.tool_id,
                "name": d.tool_name,
            }
        ]
    return [
        {
            "id": f"msg_fake{n:06d}",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{"type": "output_text", "text": d.text, "annotations": [], "logprobs": []}],
        }
    ]


def response(
    body: dict[str, Any], model: str, rid: str, *, status: str, output: list[Any], use: Any
) -> dict[str, Any]:
    """A Response object as OpenAI's API returns it."""
    return {
        "id": rid,
        "object": "response",
        "created_at": wire.CREATED,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": 1.0,
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": use,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


def stream_events(
    body: dict[str, Any], model: str, rid: str, d: wire.Decision, n: int
) -> list[dict[str, Any]]:
    """The events of a streamed answer, in OpenAI's order, numbered."""
    [item] = output_items(d, n)
    start = response(body, model, rid, status="in_progress", output=[], use=None)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": start},
        {"type": "response.in_progress", "response": start},
    ]
    base = {"item_id": item["id"], "output_index": 0}
    if d.is_tool_call:
        added = {**item, "status": "in_progress", "arguments": ""}
        events.append({"type": "response.output_item.added", "output_index": 0, "item": added})
        for start_at in range(0, len(d.tool_args), 8):
            piece = d.tool_args[start_at : start_at + 8]
            events.append(
                {"type": "response.function_call_arguments.delta", **base, "delta": piece}
            )
        events.append(
            {"type": "response.function_call_arguments.done", **base, "arguments": d.tool_args}
        )
    else:
        added = {**item, "status": "in_progress", "content": []}
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        events.append({"type": "response.output_item.added", "output_index": 0, "item": added})
        part = {**base, "content_index": 0}
        events.append({"type": "response.content_part.added", **part, "part": empty})
        for piece in wire.openai_text_pieces(d.text):
            events.append(
                {"type": "response.output_text.delta", **part, "delta": piece, "logprobs": []}
            )
        events.append({"type": "response.output_text.done", **part, "text": d.text, "logprobs": []})
        events.append({"type": "response.content_part.done", **part, "part": item["content"][0]})
    events.append({"type": "response.output_item.done", "output_index": 0, "item": item})
    final = response(body, model, rid, status="completed", output=[item], use=usage(d))
    events.append({"type": "response.completed", "response": final})
    for seq, event in enumerate(events):
        event["sequence_number"] = seq
    return events


def sse_lines(events: list[dict[str, Any]]) -> list[bytes]:
    return [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events]
