"""Chat-completions answer -> OpenAI Responses API ``Response`` object (pure: no I/O).

Shared by the whole answer (:func:`chat_to_response`) and the stream translator, which builds
the same object event by event. ``output_text`` is not set: the SDKs compute it. Known losses:
reasoning text from the upstream is not returned (a reasoning item would need an encrypted
content no chat upstream can issue); logprobs are not returned.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

from providers.adapters.base import Usage

#: finish_reason -> the ``incomplete_details.reason`` of an incomplete response.
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    """An id in OpenAI's style (``resp_...``, ``msg_...``, ``fc_...``), random."""
    return f"{prefix}_{os.urandom(24).hex()}"


def usage_from_responses(usage: Any) -> Usage:
    """A Responses ``usage`` object (``input_tokens``...) in the gateway's names."""
    if not isinstance(usage, Mapping):
        return Usage()
    details = usage.get("input_tokens_details") or {}
    return Usage(
        prompt_tokens=int(usage.get("input_tokens") or 0),
        completion_tokens=int(usage.get("output_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0) if isinstance(details, Mapping) else 0,
    )


def responses_usage(usage: Usage, reasoning_tokens: int = 0) -> dict[str, Any]:
    """The gateway's counts in the Responses API's names."""
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def reasoning_tokens_of(usage: Any) -> int:
    if not isinstance(usage, Mapping):
        return 0
    details = usage.get("completion_tokens_details") or {}
    return int(details.get("reasoning_tokens") or 0) if isinstance(details, Mapping) else 0


def status_of(finish: Any) -> tuple[str, dict[str, str] | None]:
    """(status, incomplete_details) for a chat ``finish_reason``."""
    reason = _INCOMPLETE.get(str(finish)) if finish else None
    return ("incomplete", {"reason": reason}) if reason else ("completed", None)


def message_item(item_id: str, text: str, status: str = "completed") -> dict[str, Any]:
    """An assistant ``message`` output item holding one ``output_text`` part."""
    return {
        "id": item_id,
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": [text_part(text)] if status != "in_progress" else [],
    }


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response_object(
    request: Mapping[str, Any],
    *,
    response_id: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None = None,
    incomplete: dict[str, str] | None = None,
    error: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``Response`` object echoing the request's settings, as OpenAI's does."""
    text = request.get("text")
    text = text if isinstance(text, Mapping) else {}
    reasoning = request.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, Mapping) else {}
    # Echoed from the client's request, which only a native upstream validates: a value of
    # the wrong kind is echoed as its empty form rather than crashing the echo.
    metadata = request.get("metadata")
    tools = request.get("tools")
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": request.get("instructions"),
        "max_output_tokens": request.get("max_output_tokens"),
        "max_tool_calls": request.get("max_tool_calls"),
        "model": request.get("model"),
        "output": output,
        "parallel_tool_calls": bool(request.get("parallel_tool_calls", True)),
        "previous_response_id": request.get("previous_response_id"),
        "prompt_cache_key": request.get("prompt_cache_key"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": request.get("service_tier") or "default",
        "store": bool(request.get("store", True)),
        "temperature": request.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, **text},
        "tool_choice": request.get("tool_choice") or "auto",
        "tools": list(tools) if isinstance(tools, list) else [],
        "top_p": request.get("top_p", 1.0),
        "truncation": request.get("truncation") or "disabled",
        "usage": usage,
        "user": request.get("user"),
        "metadata": dict(metadata) if isinstance(metadata, Mapping) else {},
    }


def chat_to_response(
    chat: Mapping[str, Any], request: Mapping[str, Any], *, response_id: str, usage: Usage
) -> dict[str, Any]:
    """The ``Response`` for a whole chat-completions answer to the translated ``request``."""
    choices = chat.get("choices") or []
    choice = choices[0] if choices and isinstance(choices[0], Mapping) else {}
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):  # some servers answer with content parts
        text = "".join(str(p.get("text") or "") for p in text if isinstance(p, Mapping))
    refusal = message.get("refusal")
    if text or refusal:
        output.append(message_item(new_id("msg"), str(text or refusal)))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        output.append(
            function_call_item(
                new_id("fc"),
                str(call.get("id") or new_id("call")),
                str(fn.get("name") or ""),
                str(fn.get("arguments") or ""),
            )
        )
    status, incomplete = status_of(choice.get("finish_reason"))
    created = chat.get("created")
    return response_object(
        request,
        response_id=response_id,
        created_at=int(created) if isinstance(created, int) else int(time.time()),
        status=status,
        output=output,
        usage=responses_usage(usage, reasoning_tokens_of(chat.get("usage"))),
        incomplete=incomplete,
    )
