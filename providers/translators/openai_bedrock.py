"""OpenAI chat completions <-> Bedrock ``Converse`` (request and whole answer).

Converse keeps the system prompt apart (``system``), wants user and assistant turns to
alternate (consecutive turns of one role are merged), carries tool calls as ``toolUse`` blocks
and tool results as ``toolResult`` blocks in a user turn (matched by id), takes images as
base64 bytes with a format name, and ends with its own stop reasons: a guardrail or content
filter stop becomes ``content_filter``. ``guardrailConfig`` and
``additionalModelRequestFields`` in the client body are passed through as they are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from providers.adapters.base import UnsupportedOperation, Usage
from providers.translators.openai_anthropic_request import parse_arguments
from providers.translators.openai_anthropic_response import openai_usage
from providers.translators.openai_content import base64_image, content_text

#: Converse stop reasons -> OpenAI's finish reasons.
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
_IMAGE_FORMATS = {"png", "jpeg", "gif", "webp"}
#: Client body fields Converse takes as they are.
PASSTHROUGH = ("guardrailConfig", "additionalModelRequestFields", "promptVariables")


def _image_block(part: Mapping[str, Any]) -> dict[str, Any]:
    head, data = base64_image(part, "Bedrock")
    fmt = head.removeprefix("image/").replace("jpg", "jpeg") or "png"
    if fmt not in _IMAGE_FORMATS:
        raise UnsupportedOperation(f"Bedrock takes png, jpeg, gif or webp images, not {head!r}")
    # Converse's JSON carries image bytes base64-encoded: the data URL's payload as is.
    return {"image": {"format": fmt, "source": {"bytes": data}}}


def _blocks(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise UnsupportedOperation("message content must be a string or a list of parts")
    blocks: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part, dict):
            text = str(part.get("text") or "")
            if text:
                blocks.append({"text": text})
        elif kind == "image_url" and isinstance(part, dict):
            blocks.append(_image_block(part))
        else:
            raise UnsupportedOperation(f"content part type {kind!r} is not supported by Bedrock")
    return blocks


def _append(messages: list[dict[str, Any]], role: str, blocks: list[dict[str, Any]]) -> None:
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


def _messages(raw: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    messages: list[dict[str, Any]] = []
    system: list[dict[str, Any]] = []
    for i, message in enumerate(raw):
        if not isinstance(message, dict):
            raise UnsupportedOperation(f"messages.{i} must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            text = content_text(message.get("content"))
            if text:
                system.append({"text": text})
        elif role == "tool":
            result = {
                "toolUseId": str(message.get("tool_call_id") or ""),
                "content": [{"text": content_text(message.get("content"))}],
                "status": "success",
            }
            _append(messages, "user", [{"toolResult": result}])
        elif role == "assistant":
            blocks = _blocks(message.get("content"))
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                use = {
                    "toolUseId": str(call.get("id") or ""),
                    "name": str(function.get("name") or ""),
                    "input": parse_arguments(function.get("arguments")),
                }
                blocks.append({"toolUse": use})
            _append(messages, "assistant", blocks or [{"text": " "}])
        elif role == "user":
            _append(messages, "user", _blocks(message.get("content")) or [{"text": " "}])
        else:
            raise UnsupportedOperation(f"messages.{i}.role {role!r} is not supported")
    return messages, system


def _tool_config(body: Mapping[str, Any]) -> dict[str, Any] | None:
    tools = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise UnsupportedOperation("only function tools are supported by Bedrock")
        spec: dict[str, Any] = {
            "name": str(function.get("name") or ""),
            "inputSchema": {"json": function.get("parameters") or {"type": "object"}},
        }
        if function.get("description"):
            spec["description"] = str(function["description"])
        tools.append({"toolSpec": spec})
    if not tools:
        return None
    config: dict[str, Any] = {"tools": tools}
    choice = body.get("tool_choice")
    if choice == "required":
        config["toolChoice"] = {"any": {}}
    elif choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        config["toolChoice"] = {"tool": {"name": str(choice["function"].get("name") or "")}}
    # "none": Converse has no such choice; the tools stay declared (earlier toolUse blocks
    # need them) and the model decides.
    return config


def _inference_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        config["maxTokens"] = int(limit)
    if body.get("temperature") is not None:
        config["temperature"] = float(body["temperature"])
    if body.get("top_p") is not None:
        config["topP"] = float(body["top_p"])
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else [str(s) for s in stop]
    return config


def openai_request_to_bedrock(body: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI chat request as a ``Converse`` body (the model goes in the URL)."""
    raw = body.get("messages")
    if not isinstance(raw, list):
        raise UnsupportedOperation("messages must be a list")
    messages, system = _messages(raw)
    out: dict[str, Any] = {"messages": messages}
    if system:
        out["system"] = system
    config = _inference_config(body)
    if config:
        out["inferenceConfig"] = config
    tools = _tool_config(body)
    if tools:
        out["toolConfig"] = tools
    for name in PASSTHROUGH:
        if isinstance(body.get(name), dict):
            out[name] = body[name]
    return out


def usage_from_bedrock(usage: Mapping[str, Any] | None) -> Usage:
    """Converse's ``usage``: cache reads and writes are counted apart from ``inputTokens``."""
    if not usage:
        return Usage()
    cache_read = int(usage.get("cacheReadInputTokens") or 0)
    cache_write = int(usage.get("cacheWriteInputTokens") or 0)
    return Usage(
        prompt_tokens=int(usage.get("inputTokens") or 0) + cache_read + cache_write,
        completion_tokens=int(usage.get("outputTokens") or 0),
        cached_tokens=cache_read,
    )


def finish_reason(stop_reason: Any) -> str:
    return FINISH_REASONS.get(str(stop_reason), "stop")


def bedrock_response_to_openai(
    data: Mapping[str, Any], *, model: str = "", created: int | None = None
) -> tuple[dict[str, Any], Usage]:
    """A whole ``Converse`` answer as an OpenAI ``chat.completion``."""
    usage = usage_from_bedrock(data.get("usage"))
    rid = f"bedrock-{time.time_ns()}"
    message_in = (data.get("output") or {}).get("message") or {}
    text = ""
    calls: list[dict[str, Any]] = []
    for block in message_in.get("content") or []:
        if "text" in block:
            text += str(block["text"])
        use = block.get("toolUse")
        if isinstance(use, dict):
            calls.append(
                {
                    "id": str(use.get("toolUseId") or f"call_{rid}_{len(calls)}"),
                    "type": "function",
                    "function": {
                        "name": str(use.get("name") or ""),
                        "arguments": _json(use.get("input")),
                    },
                }
            )
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    answer = {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason(data.get("stopReason"))}
        ],
        "usage": openai_usage(usage),
    }
    return answer, usage


def _json(value: Any) -> str:
    return orjson.dumps(value if value is not None else {}).decode()
