"""What the fake upstream answers: deterministic replies in OpenAI and Anthropic wire formats.

Replies are a pure function of the request, so tests can compute the expected text:

- a plain request is answered with ``echo_reply(<last user text>)``;
- with tools offered (and ``tool_choice`` not "none") the model calls the *first* tool with
  arguments ``{"input": <last user text>}`` (Anthropic: after a short text block, as Claude does);
- after a tool result it answers ``tool_answer(<tool result text>)``.

Token counts are whitespace word counts (prompt: every message's text, system included;
completion: the reply's words), recorded with each request so tests compare the gateway's usage
with what the upstream reported.
"""

from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import dataclass
from typing import Any

CREATED = 1_700_000_000
OPENAI_MODELS = ("fake-gpt", "fake-gpt-mini", "fake-embed")
ANTHROPIC_MODELS = ("claude-fake", "claude-fake-haiku")


def echo_reply(text: str) -> str:
    """The fake's answer to a plain user message."""
    return f"Echo: {text}"


def tool_answer(result: str) -> str:
    """The fake's answer once a tool result came back."""
    return f"Tool said: {result}"


def tool_arguments(text: str) -> dict[str, Any]:
    """The arguments of the fake's tool call for the user text ``text``."""
    return {"input": text}


def words(text: str) -> int:
    return len(text.split())


def text_of(content: Any) -> str:
    """Plain text of an OpenAI or Anthropic content value (string or list of parts/blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts: list[str] = []
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "tool_result":
                parts.append(text_of(part.get("content")))
            elif isinstance(part.get("text"), str):
                parts.append(part["text"])
        return " ".join(p for p in parts if p)
    return ""


@dataclass(frozen=True)
class Decision:
    """What the fake model does: answer with ``text`` or call tool ``tool_name``."""

    text: str = ""
    tool_name: str = ""
    tool_args: str = ""  # JSON text
    tool_id: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def is_tool_call(self) -> bool:
        return bool(self.tool_name)


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, list) and any(
                isinstance(b, dict) and b.get("type") == "tool_result" for b in content
            ):
                continue
            return text_of(content)
    return ""


def _decide(
    *, prompt_tokens: int, last_tool_result: str | None, tool_name: str | None, user_text: str
) -> Decision:
    if last_tool_result is not None:
        text = tool_answer(last_tool_result)
        return Decision(text=text, prompt_tokens=prompt_tokens, completion_tokens=words(text))
    if tool_name:
        args = json.dumps(tool_arguments(user_text))
        digest = hashlib.sha256(f"{tool_name}:{args}".encode()).hexdigest()[:16]
        return Decision(
            tool_name=tool_name,
            tool_args=args,
            tool_id=digest,
            prompt_tokens=prompt_tokens,
            completion_tokens=words(args) + 1,
        )
    text = echo_reply(user_text)
    return Decision(text=text, prompt_tokens=prompt_tokens, completion_tokens=words(text))


def _last_turn(messages: list[dict[str, Any]]) -> dict[str, Any]:
    # A system note after the latest turn (Claude Code's reminders) does not hide that turn
    # from the model: it still answers a tool result.
    turns = [m for m in messages if m.get("role") not in ("system", "developer")]
    return turns[-1] if turns else {}


def decide_openai(body: dict[str, Any]) -> Decision:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    prompt = max(1, sum(words(text_of(m.get("content"))) for m in messages))
    last = _last_turn(messages)
    tool_result = text_of(last.get("content")) if last.get("role") == "tool" else None
    tools = body.get("tools") or []
    tool_name = None
    if tools and body.get("tool_choice") != "none":
        tool_name = str((tools[0].get("function") or {}).get("name") or "tool")
    return _decide(
        prompt_tokens=prompt,
        last_tool_result=tool_result,
        tool_name=tool_name,
        user_text=_last_user_text(messages),
    )


def decide_anthropic(body: dict[str, Any]) -> Decision:
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    prompt = max(
        1,
        words(text_of(body.get("system")))
        + sum(words(text_of(m.get("content"))) for m in messages),
    )
    last = _last_turn(messages)
    tool_result = None
    content = last.get("content")
    if last.get("role") == "user" and isinstance(content, list):
        results = [b for b in content if isinstance(b, dict) and b.get("type") == "tool_result"]
        if results:
            tool_result = text_of(results[-1].get("content"))
    tools = body.get("tools") or []
    choice = body.get("tool_choice") or {}
    tool_name = None
    if tools and not (isinstance(choice, dict) and choice.get("type") == "none"):
        tool_name = str(tools[0].get("name") or "tool")
    return _decide(
        prompt_tokens=prompt,
        last_tool_result=tool_result,
        tool_name=tool_name,
        user_text=_last_user_text(messages),
    )


# --- OpenAI -------------------------------------------------------------------------------


def openai_usage(d: Decision) -> dict[str, int]:
    return {
        "prompt_tokens": d.prompt_tokens,
        "completion_tokens": d.completion_tokens,
        "total_tokens": d.prompt_tokens + d.completion_tokens,
    }


#: OpenAI answers an alias model with the dated snapshot that served it (``model`` in the reply
#: differs from the request's): two of its aliases, so tests can tell the two apart.
OPENAI_SNAPSHOTS = {"gpt-4o": "gpt-4o-2024-08-06", "gpt-4o-mini": "gpt-4o-mini-2024-07-18"}


def openai_served_model(requested: str) -> str:
    """The ``model`` OpenAI's reply names for a requested model."""
    return OPENAI_SNAPSHOTS.get(requested, requested)


def openai_completion(d: Decision, model: str, rid: str) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": d.text or None, "refusal": None}
    if d.is_tool_call:
        message["tool_calls"] = [
            {
                "id": "call_" + d.tool_id,
                "type": "function",
                "function": {"name": d.tool_name, "arguments": d.tool_args},
            }
        ]
    return {
        "id": rid,
        "object": "chat.completion",
        "created": CREATED,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if d.is_tool_call else "stop",
            }
        ],
        "usage": openai_usage(d),
        "system_fingerprint": "fp_fake",
    }


def openai_text_pieces(text: str) -> list[str]:
    """How the fake splits a reply into stream deltas: one word (with its space) each."""
    pieces = text.split(" ")
    return [p if i == 0 else " " + p for i, p in enumerate(pieces)]


def openai_stream_chunks(
    d: Decision, model: str, rid: str, *, include_usage: bool, azure: bool = False
) -> list[dict[str, Any]]:
    """Chunk payloads in order (``data: [DONE]`` not included)."""
    base = {"id": rid, "object": "chat.completion.chunk", "created": CREATED, "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            **base,
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }

    chunks: list[dict[str, Any]] = []
    if azure:
        # Azure's first chunk carries prompt filter results and no choices.
        chunks.append(
            {
                "id": "",
                "object": "",
                "created": 0,
                "model": "",
                "choices": [],
                "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
            }
        )
    chunks.append(chunk({"role": "assistant", "content": "", "refusal": None}))
    if d.is_tool_call:
        chunks.append(
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_" + d.tool_id,
                            "type": "function",
                            "function": {"name": d.tool_name, "arguments": ""},
                        }
                    ]
                }
            )
        )
        for start in range(0, len(d.tool_args), 8):
            piece = d.tool_args[start : start + 8]
            chunks.append(chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}))
        chunks.append(chunk({}, "tool_calls"))
    else:
        for piece in openai_text_pieces(d.text):
            chunks.append(chunk({"content": piece}))
        chunks.append(chunk({}, "stop"))
    if include_usage:
        chunks.append({**base, "choices": [], "usage": openai_usage(d)})
    return chunks


def embeddings(body: dict[str, Any], model: str) -> tuple[dict[str, Any], int]:
    """A deterministic embeddings answer and its token count."""
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    dims = int(body.get("dimensions") or 4)
    data = []
    tokens = 0
    for i, item in enumerate(items):
        text = item if isinstance(item, str) else json.dumps(item)
        tokens += max(1, words(text))
        raw = hashlib.sha256(text.encode()).digest() * (dims // 8 + 1)
        values = struct.unpack(f"<{dims}I", raw[: dims * 4])
        data.append(
            {
                "object": "embedding",
                "index": i,
                "embedding": [round((v % 2000 - 1000) / 1000, 3) for v in values],
            }
        )
    payload = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return payload, tokens


def openai_models() -> dict[str, Any]:
    return {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": CREATED, "owned_by": "fake"}
            for m in OPENAI_MODELS
        ],
    }


def openai_error(status: int, message: str, etype: str | None = None, code: Any = None) -> Any:
    types = {
        400: "invalid_request_error",
        401: "invalid_request_error",
        403: "permission_denied",
        404: "invalid_request_error",
        429: "rate_limit_exceeded",
    }
    return {
        "error": {
            "message": message,
            "type": etype or types.get(status, "server_error"),
            "param": None,
            "code": code,
        }
    }


# --- Anthropic ----------------------------------------------------------------------------


def anthropic_usage(d: Decision, *, output: int | None = None) -> dict[str, int]:
    return {
        "input_tokens": d.prompt_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": d.completion_tokens if output is None else output,
    }


def _tool_preamble(d: Decision) -> str:
    return f"Calling {d.tool_name}."


def anthropic_message(d: Decision, model: str, rid: str) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if d.is_tool_call:
        content.append({"type": "text", "text": _tool_preamble(d)})
        content.append(
            {
                "type": "tool_use",
                "id": "toolu_" + d.tool_id,
                "name": d.tool_name,
                "input": json.loads(d.tool_args),
            }
        )
    else:
        content.append({"type": "text", "text": d.text})
    return {
        "id": rid,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": "tool_use" if d.is_tool_call else "end_turn",
        "stop_sequence": None,
        "usage": anthropic_usage(d),
    }


def anthropic_stream_events(d: Decision, model: str, rid: str) -> list[tuple[str, dict[str, Any]]]:
    """(event name, data) in the order Anthropic sends them."""
    events: list[tuple[str, dict[str, Any]]] = [
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": rid,
                    "type": "message",
                    "role": "assistant",
                    "model": model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": anthropic_usage(d, output=1),
                },
            },
        )
    ]

    def text_block(index: int, text: str, *, with_ping: bool) -> None:
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
        )
        if with_ping:
            events.append(("ping", {"type": "ping"}))
        for piece in openai_text_pieces(text):
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))

    if d.is_tool_call:
        text_block(0, _tool_preamble(d), with_ping=True)
        events.append(
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 1,
                    "content_block": {
                        "type": "tool_use",
                        "id": "toolu_" + d.tool_id,
                        "name": d.tool_name,
                        "input": {},
                    },
                },
            )
        )
        for start in range(0, len(d.tool_args), 8):
            events.append(
                (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": 1,
                        "delta": {
                            "type": "input_json_delta",
                            "partial_json": d.tool_args[start : start + 8],
                        },
                    },
                )
            )
        events.append(("content_block_stop", {"type": "content_block_stop", "index": 1}))
    else:
        text_block(0, d.text, with_ping=True)
    events.append(
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {
                    "stop_reason": "tool_use" if d.is_tool_call else "end_turn",
                    "stop_sequence": None,
                },
                "usage": {"output_tokens": d.completion_tokens},
            },
        )
    )
    events.append(("message_stop", {"type": "message_stop"}))
    return events


def anthropic_models() -> dict[str, Any]:
    data = [
        {
            "type": "model",
            "id": m,
            "display_name": m.replace("-", " ").title(),
            "created_at": "2025-01-01T00:00:00Z",
        }
        for m in ANTHROPIC_MODELS
    ]
    return {"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]}


def anthropic_error(status: int, message: str, etype: str | None = None) -> Any:
    types = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        429: "rate_limit_error",
        529: "overloaded_error",
    }
    return {
        "type": "error",
        "error": {"type": etype or types.get(status, "api_error"), "message": message},
    }
