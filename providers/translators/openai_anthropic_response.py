"""Anthropic Messages response -> OpenAI ``chat.completion`` (pure: no I/O).

Thinking blocks are exposed as ``message.reasoning_content`` (the de-facto extension DeepSeek
introduced and most OpenAI clients and proxies understand); ``redacted_thinking`` and server-tool
blocks (``server_tool_use``, ``web_search_tool_result``...) have no OpenAI shape and are dropped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from providers.adapters.base import Usage

#: Anthropic ``stop_reason`` -> OpenAI ``finish_reason``.
FINISH_REASONS: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    # A server-tool loop paused; the turn is over as far as an OpenAI client can tell.
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: Any) -> str | None:
    """The OpenAI finish reason for an Anthropic stop reason (``None`` while unknown)."""
    if stop_reason is None:
        return None
    return FINISH_REASONS.get(str(stop_reason), "stop")


def usage_from_anthropic(usage: Mapping[str, Any] | None) -> Usage:
    """Anthropic counts cache reads and writes apart from ``input_tokens``; OpenAI's
    ``prompt_tokens`` includes them, with reads also reported as ``cached_tokens``."""
    if not usage:
        return Usage()
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    return Usage(
        prompt_tokens=int(usage.get("input_tokens") or 0) + cache_read + cache_write,
        completion_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=cache_read,
    )


def openai_usage(usage: Usage) -> dict[str, Any]:
    """``usage`` as the object OpenAI puts in responses and the final stream chunk."""
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_tokens},
    }


def tool_call(index: int | None, block: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI tool call for a ``tool_use`` block (``index`` only in stream deltas)."""
    call: dict[str, Any] = {} if index is None else {"index": index}
    call["id"] = block.get("id")
    call["type"] = "function"
    call["function"] = {
        "name": block.get("name"),
        "arguments": orjson.dumps(block.get("input") or {}).decode(),
    }
    return call


def anthropic_response_to_openai(
    data: Mapping[str, Any], *, created: int | None = None
) -> dict[str, Any]:
    """The ``chat.completion`` for a Messages API response body."""
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in data.get("content") or []:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        if kind == "text":
            # Citations split one answer into several text blocks: join without a separator.
            texts.append(str(block.get("text") or ""))
        elif kind == "thinking":
            thinking.append(str(block.get("thinking") or ""))
        elif kind == "tool_use":
            calls.append(tool_call(None, block))

    message: dict[str, Any] = {
        "role": "assistant",
        # OpenAI's convention: null content on a pure tool-call answer, a string otherwise.
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    usage = usage_from_anthropic(data.get("usage"))
    return {
        "id": data.get("id") or "",
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": data.get("model") or "",
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                # A complete response always has a stop reason; "stop" if one ever lacks it.
                "finish_reason": finish_reason(data.get("stop_reason")) or "stop",
            }
        ],
        "usage": openai_usage(usage),
    }
