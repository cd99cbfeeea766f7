"""The reverse direction, for the Anthropic-format front door (``POST /v1/messages``).

A client speaking Anthropic's Messages API is served by translating its request to OpenAI's
chat-completions format (the pipeline's lingua franca, whatever the upstream) and the OpenAI
answer back. Pure functions, no I/O. Known losses, all for want of an OpenAI equivalent:
``top_k``, ``thinking`` and cache-control markers are dropped; thinking blocks in the history
are dropped; reasoning in the answer is not returned as thinking blocks (they would need a
signature no OpenAI upstream can issue); server tools are refused.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers.adapters.base import UnsupportedOperation, Usage
from providers.translators.openai_anthropic_request import parse_arguments

#: OpenAI ``finish_reason`` -> Anthropic ``stop_reason``. OpenAI does not say whether a stop
#: sequence ended the text, so "stop" is always ``end_turn``.
STOP_REASONS: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def stop_reason(finish: Any) -> str:
    return STOP_REASONS.get(str(finish), "end_turn") if finish else "end_turn"


def anthropic_usage(usage: Usage) -> dict[str, int]:
    """OpenAI counts (``prompt_tokens`` includes cache reads) in Anthropic's names."""
    return {
        "input_tokens": max(usage.prompt_tokens - usage.cached_tokens, 0),
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": 0,
    }


# -- request: Anthropic -> OpenAI ---------------------------------------------------------------
def anthropic_request_to_openai(body: Mapping[str, Any]) -> dict[str, Any]:
    """The OpenAI chat-completions body for a Messages API request body."""
    messages: list[dict[str, Any]] = []
    system = body.get("system")
    if system:
        text = system if isinstance(system, str) else _joined_text(system, "\n\n")
        messages.append({"role": "system", "content": text})
    for msg in body.get("messages") or []:
        if not isinstance(msg, Mapping):
            raise UnsupportedOperation("each message must be an object")
        if msg.get("role") == "assistant":
            messages.append(_assistant_message(msg.get("content")))
        else:
            messages.extend(_user_messages(msg.get("content")))

    out: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    # ``max_tokens`` rather than ``max_completion_tokens``: every OpenAI-wire server here
    # (Azure's older API versions, Ollama, vLLM) knows it. The anthropic adapter reads both.
    if body.get("max_tokens") is not None:
        out["max_tokens"] = body["max_tokens"]
    for name in ("temperature", "top_p"):
        if body.get(name) is not None:
            out[name] = body[name]
    if body.get("stop_sequences"):
        out["stop"] = list(body["stop_sequences"])
    if body.get("stream"):
        out["stream"] = True
        # message_delta must report output tokens: ask for the final usage chunk.
        out["stream_options"] = {"include_usage": True}
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        out["user"] = str(user)
    tools = [_tool(t) for t in body.get("tools") or []]
    if tools:
        out["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, Mapping):
        kind = choice.get("type")
        if tools and kind in ("auto", "any", "none"):
            out["tool_choice"] = {"auto": "auto", "any": "required", "none": "none"}[kind]
        elif tools and kind == "tool":
            out["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
        if tools and choice.get("disable_parallel_tool_use"):
            out["parallel_tool_calls"] = False
    return out


def _joined_text(blocks: Any, sep: str) -> str:
    return sep.join(
        str(b.get("text") or "")
        for b in blocks or []
        if isinstance(b, Mapping) and b.get("type") == "text"
    )


def _user_messages(content: Any) -> list[dict[str, Any]]:
    """One Anthropic user turn -> OpenAI ``tool`` messages (one per tool_result, first, as
    OpenAI wants them right after the assistant's tool calls) and a user message."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    out: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in content or []:
        if not isinstance(block, Mapping):
            raise UnsupportedOperation("content blocks must be objects")
        if block.get("type") == "tool_result":
            out.append(_tool_message(block))
        else:
            part = _user_part(block)
            if part is not None:
                parts.append(part)
    if len(parts) == 1 and parts[0]["type"] == "text":
        # A plain string is what every OpenAI-compatible server accepts.
        out.append({"role": "user", "content": parts[0]["text"]})
    elif parts:
        out.append({"role": "user", "content": parts})
    return out


def _tool_message(block: Mapping[str, Any]) -> dict[str, Any]:
    content = block.get("content")
    if isinstance(content, list):
        if any(isinstance(b, Mapping) and b.get("type") != "text" for b in content):
            raise UnsupportedOperation("only text tool results can be sent to OpenAI upstreams")
        content = _joined_text(content, "\n")
    text = str(content or "")
    if block.get("is_error"):
        # OpenAI has no error flag on tool results; say it in the text the model reads.
        text = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": block.get("tool_use_id"), "content": text}


def _user_part(block: Mapping[str, Any]) -> dict[str, Any] | None:
    kind = block.get("type")
    source = block.get("source") or {}
    if kind == "text":
        return {"type": "text", "text": str(block.get("text") or "")}
    if kind == "image":
        if source.get("type") == "base64":
            url = f"data:{source.get('media_type')};base64,{source.get('data')}"
        elif source.get("type") == "url":
            url = str(source.get("url"))
        else:
            raise UnsupportedOperation("only base64 and url images can be sent upstream")
        return {"type": "image_url", "image_url": {"url": url}}
    if kind == "document":
        if source.get("type") == "text":
            return {"type": "text", "text": str(source.get("data") or "")}
        if source.get("type") == "base64":
            data_url = f"data:{source.get('media_type')};base64,{source.get('data')}"
            name = str(block.get("title") or "document.pdf")
            return {"type": "file", "file": {"file_data": data_url, "filename": name}}
        raise UnsupportedOperation("only base64 and text documents can be sent upstream")
    if kind in ("thinking", "redacted_thinking"):
        return None
    raise UnsupportedOperation(f"content block type {kind!r} cannot be sent upstream")


def _assistant_message(content: Any) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in content or []:
        if not isinstance(block, Mapping):
            continue
        if block.get("type") == "text":
            texts.append(str(block.get("text") or ""))
        elif block.get("type") == "tool_use":
            calls.append(
                {
                    "id": block.get("id"),
                    "type": "function",
                    "function": {
                        "name": block.get("name"),
                        "arguments": orjson.dumps(block.get("input") or {}).decode(),
                    },
                }
            )
        # thinking blocks of earlier turns: OpenAI upstreams take no reasoning input.
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
    }
    if calls:
        message["tool_calls"] = calls
    return message


def _tool(tool: Any) -> dict[str, Any]:
    if not isinstance(tool, Mapping) or tool.get("type", "custom") not in ("custom", None):
        # Server tools (web search, code execution...) run at Anthropic only.
        kind = tool.get("type") if isinstance(tool, Mapping) else tool
        raise UnsupportedOperation(f"tool type {kind!r} exists only at Anthropic")
    fn: dict[str, Any] = {"name": tool.get("name")}
    if tool.get("description"):
        fn["description"] = tool["description"]
    fn["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    return {"type": "function", "function": fn}


# -- response: OpenAI -> Anthropic --------------------------------------------------------------
def openai_response_to_anthropic(data: Mapping[str, Any], model: str) -> dict[str, Any]:
    """The Messages API response for an OpenAI ``chat.completion``; ``model`` is the name the
    client asked for (the gateway's alias), not the upstream's."""
    choices = data.get("choices") or [{}]
    choice = choices[0] if isinstance(choices[0], Mapping) else {}
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    text = message.get("content")
    if isinstance(text, list):
        text = _joined_text(text, "")
    text = text or message.get("refusal")
    if text:
        content.append({"type": "text", "text": str(text)})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id"),
                "name": fn.get("name"),
                "input": parse_arguments(fn.get("arguments")),
            }
        )
    return {
        "id": data.get("id") or "",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(choice.get("finish_reason")),
        "stop_sequence": None,
        "usage": anthropic_usage(Usage.from_openai(data.get("usage"))),
    }
