"""OpenAI chat completions <-> Gemini ``generateContent`` (request and whole answer).

Gemini keeps the system prompt apart (``systemInstruction``), names the assistant ``model``,
carries tool calls as ``functionCall`` parts and tool results as ``functionResponse`` parts
(matched by function name, not by id), takes images only as inline data, and ends a candidate
with its own finish reasons; a safety block becomes ``content_filter``.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from providers.adapters.base import UnsupportedOperation, Usage
from providers.translators.openai_anthropic_response import openai_usage
from providers.translators.openai_content import base64_image, content_text

#: Gemini finish reasons -> OpenAI's. Every block for content reasons is a content filter.
FINISH_REASONS = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "LANGUAGE": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "OTHER": "stop",
}
_TOOL_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY"}


def _image_part(part: Mapping[str, Any]) -> dict[str, Any]:
    head, data = base64_image(part, "Gemini")
    return {"inlineData": {"mimeType": head or "image/png", "data": data}}


def _parts(content: Any) -> list[dict[str, Any]]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise UnsupportedOperation("message content must be a string or a list of parts")
    parts: list[dict[str, Any]] = []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": str(part.get("text") or "")})
        elif kind == "image_url" and isinstance(part, dict):
            parts.append(_image_part(part))
        else:
            raise UnsupportedOperation(f"content part type {kind!r} is not supported by Gemini")
    return parts


def _arguments(raw: Any) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        parsed = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError as exc:
        raise UnsupportedOperation("tool call arguments must be a JSON object") from exc
    return parsed if isinstance(parsed, dict) else {"value": parsed}


def _contents(messages: list[Any]) -> tuple[list[dict[str, Any]], list[str]]:
    contents: list[dict[str, Any]] = []
    system: list[str] = []
    names: dict[str, str] = {}  # tool call id -> function name (Gemini matches by name)
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise UnsupportedOperation(f"messages.{i} must be an object")
        role = message.get("role")
        if role in ("system", "developer"):
            system.append(content_text(message.get("content")))
            continue
        if role == "tool":
            call_id = str(message.get("tool_call_id") or "")
            part = {
                "functionResponse": {
                    "name": names.get(call_id, call_id),
                    "response": {"content": content_text(message.get("content"))},
                }
            }
            last = contents[-1] if contents else None
            if last and last["role"] == "user" and "functionResponse" in last["parts"][-1]:
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
            continue
        if role == "assistant":
            parts = _parts(message.get("content"))
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                name = str(function.get("name") or "")
                names[str(call.get("id") or "")] = name
                parts.append(
                    {"functionCall": {"name": name, "args": _arguments(function.get("arguments"))}}
                )
            contents.append({"role": "model", "parts": parts or [{"text": ""}]})
            continue
        if role != "user":
            raise UnsupportedOperation(f"messages.{i}: role {role!r} is not supported")
        contents.append({"role": "user", "parts": _parts(message.get("content"))})
    return contents, system


def _tools(body: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    declarations = []
    for tool in body.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if tool.get("type") != "function" or not isinstance(function, dict):
            raise UnsupportedOperation("only function tools are supported by Gemini")
        declaration = {"name": function.get("name"), "description": function.get("description")}
        if function.get("parameters"):
            declaration["parameters"] = function["parameters"]
        declarations.append({k: v for k, v in declaration.items() if v is not None})
    if declarations:
        out["tools"] = [{"functionDeclarations": declarations}]
    choice = body.get("tool_choice")
    if isinstance(choice, str) and choice in _TOOL_MODES:
        out["toolConfig"] = {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
    elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        name = choice["function"].get("name")
        out["toolConfig"] = {
            "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}
        }
    return out


def _generation_config(body: Mapping[str, Any]) -> dict[str, Any]:
    config: dict[str, Any] = {}
    for src, dst in (
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("n", "candidateCount"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("seed", "seed"),
    ):
        if body.get(src) is not None:
            config[dst] = body[src]
    limit = body.get("max_completion_tokens") or body.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema")
        if schema:
            config["responseJsonSchema"] = schema
    return config


def openai_request_to_gemini(body: Mapping[str, Any]) -> dict[str, Any]:
    """An OpenAI chat request as a ``generateContent`` body (the model goes in the URL)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise UnsupportedOperation("messages must be a list")
    contents, system = _contents(messages)
    out: dict[str, Any] = {"contents": contents}
    if any(system):
        out["systemInstruction"] = {"parts": [{"text": "\n\n".join(s for s in system if s)}]}
    out.update(_tools(body))
    config = _generation_config(body)
    if config:
        out["generationConfig"] = config
    return out


def usage_from_gemini(meta: Mapping[str, Any] | None) -> Usage:
    """Gemini's ``usageMetadata``; thinking tokens are billed as output, so counted there."""
    if not meta:
        return Usage()
    return Usage(
        prompt_tokens=int(meta.get("promptTokenCount") or 0),
        completion_tokens=int(meta.get("candidatesTokenCount") or 0)
        + int(meta.get("thoughtsTokenCount") or 0),
        cached_tokens=int(meta.get("cachedContentTokenCount") or 0),
    )


def candidate_delta(
    candidate: Mapping[str, Any], first_tool_index: int, call_prefix: str
) -> tuple[str, list[dict[str, Any]]]:
    """(text, tool calls) of one candidate; thought parts are left out."""
    text = ""
    calls: list[dict[str, Any]] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if part.get("thought"):
            continue
        if "text" in part:
            text += str(part["text"])
        call = part.get("functionCall")
        if isinstance(call, dict):
            index = first_tool_index + len(calls)
            calls.append(
                {
                    "index": index,
                    "id": str(call.get("id") or f"{call_prefix}_{index}"),
                    "type": "function",
                    "function": {
                        "name": str(call.get("name") or ""),
                        "arguments": orjson.dumps(call.get("args") or {}).decode(),
                    },
                }
            )
    return text, calls


def finish_reason(candidate: Mapping[str, Any], has_calls: bool) -> str | None:
    reason = candidate.get("finishReason")
    if not reason or reason == "FINISH_REASON_UNSPECIFIED":
        return None
    mapped = FINISH_REASONS.get(str(reason), "stop")
    return "tool_calls" if has_calls and mapped == "stop" else mapped


def gemini_response_to_openai(
    data: Mapping[str, Any], *, model: str, created: int | None = None
) -> tuple[dict[str, Any], Usage]:
    """A whole ``generateContent`` answer as an OpenAI ``chat.completion``."""
    usage = usage_from_gemini(data.get("usageMetadata"))
    rid = str(data.get("responseId") or f"gemini-{time.time_ns()}")
    choices = []
    candidates = data.get("candidates") or []
    for i, candidate in enumerate(candidates):
        text, calls = candidate_delta(candidate, 0, f"call_{rid}_{i}")
        message: dict[str, Any] = {"role": "assistant", "content": text or None}
        if calls:
            message["tool_calls"] = [{k: v for k, v in c.items() if k != "index"} for c in calls]
        reason = finish_reason(candidate, bool(calls)) or "stop"
        choices.append({"index": i, "message": message, "finish_reason": reason})
    if not candidates:
        # The prompt itself was blocked (promptFeedback.blockReason): no candidate at all.
        choices.append(
            {
                "index": 0,
                "message": {"role": "assistant", "content": None},
                "finish_reason": "content_filter",
            }
        )
    answer = {
        "id": rid,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": str(data.get("modelVersion") or model),
        "choices": choices,
        "usage": openai_usage(usage),
    }
    return answer, usage
