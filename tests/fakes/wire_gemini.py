"""Gemini's wire format as the fake upstream speaks it (generateContent, SSE, embeddings)."""

from __future__ import annotations

import json
from typing import Any

from tests.fakes import wire


def request_problem(body: dict[str, Any], headers: dict[str, str]) -> tuple[int, str] | None:
    """What the real API refuses: no key header, or contents it cannot read."""
    if "x-goog-api-key" not in headers:
        return 403, "Method doesn't allow unregistered callers. Please use API Key."
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        return 400, "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        # ``role`` is optional in the real API (a single turn may leave it out).
        if not isinstance(content, dict) or content.get("role") not in (None, "user", "model"):
            return 400, f"Please use a valid role: user, model. (contents[{i}])"
        if not content.get("parts"):
            return (
                400,
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty.",
            )
    if "messages" in body or "model" in body:
        return 400, 'Invalid JSON payload received. Unknown name "messages"'
    return None


def error(status: int, message: str) -> dict[str, Any]:
    names = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}
    return {"error": {"code": status, "message": message, "status": names.get(status, "INTERNAL")}}


def decide(body: dict[str, Any]) -> wire.Decision:
    """The fake model's move, read from Gemini contents as from the equivalent chat."""
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction") or {}
    for part in system.get("parts") or []:
        messages.append({"role": "system", "content": part.get("text", "")})
    for content in body.get("contents") or []:
        role = "assistant" if content.get("role") == "model" else "user"
        texts = [p["text"] for p in content.get("parts") or [] if "text" in p]
        responses = [
            p["functionResponse"] for p in content.get("parts") or [] if "functionResponse" in p
        ]
        if responses:
            result = responses[-1].get("response") or {}
            messages.append({"role": "tool", "content": str(result.get("content", result))})
        else:
            messages.append({"role": role, "content": " ".join(texts)})
    tools: list[Any] = []
    for tool in body.get("tools") or []:
        for decl in tool.get("functionDeclarations") or []:
            tools.append({"type": "function", "function": {"name": decl.get("name")}})
    mode = ((body.get("toolConfig") or {}).get("functionCallingConfig") or {}).get("mode")
    return wire.decide_openai(
        {"messages": messages, "tools": tools, "tool_choice": "none" if mode == "NONE" else "auto"}
    )


def _usage(d: wire.Decision) -> dict[str, int]:
    return {
        "promptTokenCount": d.prompt_tokens,
        "candidatesTokenCount": d.completion_tokens,
        "totalTokenCount": d.prompt_tokens + d.completion_tokens,
    }


def _parts(d: wire.Decision) -> list[dict[str, Any]]:
    if d.is_tool_call:
        return [{"functionCall": {"name": d.tool_name, "args": json.loads(d.tool_args or "{}")}}]
    return [{"text": d.text}]


def response(d: wire.Decision, model: str) -> dict[str, Any]:
    return {
        "candidates": [
            {"content": {"role": "model", "parts": _parts(d)}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": _usage(d),
        "modelVersion": model,
    }


def stream_events(d: wire.Decision, model: str) -> list[dict[str, Any]]:
    """Text in word pieces, a function call whole; the last event has finish and usage."""
    pieces = [{"text": w} for w in _split(d.text)] if not d.is_tool_call else _parts(d)
    events = [
        {
            "candidates": [{"content": {"role": "model", "parts": [p]}, "index": 0}],
            "modelVersion": model,
        }
        for p in pieces
    ]
    events[-1]["candidates"][0]["finishReason"] = "STOP"
    events[-1]["usageMetadata"] = _usage(d)
    return events


def _split(text: str) -> list[str]:
    words = text.split(" ")
    return [w + (" " if i < len(words) - 1 else "") for i, w in enumerate(words)] or [""]


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    requests = body.get("requests") or []
    texts = [" ".join(p.get("text", "") for p in r["content"]["parts"]) for r in requests]
    payload, _ = wire.embeddings({"input": texts}, "")
    return {"embeddings": [{"values": row["embedding"]} for row in payload["data"]]}


def safety_block(model: str) -> dict[str, Any]:
    """A reply the safety filter stopped: a candidate with finishReason SAFETY and no parts."""
    ratings = [
        {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": True}
    ]
    return {
        "candidates": [{"finishReason": "SAFETY", "index": 0, "safetyRatings": ratings}],
        "usageMetadata": {"promptTokenCount": 3, "totalTokenCount": 3},
        "modelVersion": model,
    }
