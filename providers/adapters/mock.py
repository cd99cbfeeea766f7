"""The ``mock`` provider: answered inside the process, deterministic, with usage.

It serves the offline demo and tests that need no upstream. Replies echo the last user message;
with tools offered it calls the first tool once, then answers from the tool result. Token
counts are whitespace word counts, so they are predictable in tests.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import httpx
import orjson

from providers.adapters.base import SHAPE_ERRORS, UpstreamRequest
from providers.adapters.openai import OpenAIAdapter
from providers.snapshot import KeySnapshot, ProviderSnapshot
from providers.types import ProviderType

_CREATED = 1_700_000_000


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict)
        ).strip()
    return ""


def _count(text: str) -> int:
    return len(text.split())


def _prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(_count(_text_of(m.get("content"))) + 1 for m in messages if isinstance(m, dict))


def _reply(body: dict[str, Any]) -> dict[str, Any]:
    """The assistant message the mock answers with."""
    messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
    last = messages[-1] if messages else {}
    tools = body.get("tools") or []
    if last.get("role") == "tool":
        return {"role": "assistant", "content": f"Tool result: {_text_of(last.get('content'))}"}
    if tools and body.get("tool_choice") != "none":
        fn = (tools[0].get("function") or {}).get("name", "tool")
        user_text = _text_of(last.get("content"))
        digest = hashlib.sha256(user_text.encode()).hexdigest()[:12]
        return {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"call_{digest}",
                    "type": "function",
                    "function": {
                        "name": fn,
                        "arguments": orjson.dumps({"input": user_text}).decode(),
                    },
                }
            ],
        }
    user_text = next(
        (_text_of(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    return {
        "role": "assistant",
        "content": f"Mock reply to: {user_text}" if user_text else "Mock reply.",
    }


def _request_id(body: bytes) -> str:
    return "chatcmpl-mock" + hashlib.sha256(body).hexdigest()[:16]


class MockAdapter(OpenAIAdapter):
    """In-process OpenAI-format answers; see the module docstring."""

    provider_type: ClassVar[str] = ProviderType.MOCK
    in_process: ClassVar[bool] = True
    responses_native: ClassVar[bool] = False

    def _base(self, provider: ProviderSnapshot, key: KeySnapshot | None) -> str:
        return "mock://local"

    async def respond(self, request: UpstreamRequest) -> httpx.Response:
        """Answer ``request`` as an upstream would (status, headers, streamed body)."""
        path = request.url.rsplit("/", 1)[-1]
        if request.method == "GET" and path == "models":
            return _json(200, {"object": "list", "data": [{"id": "mock", "object": "model"}]})
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return _json(
                400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}}
            )
        try:
            return self._answer(path, body, request)
        except SHAPE_ERRORS as exc:
            # OpenAI validates a body before reading it: a field of the wrong kind is a 400.
            message = f"Invalid request body: {exc}"
            return _json(400, {"error": {"message": message, "type": "invalid_request_error"}})

    def _answer(self, path: str, body: Any, request: UpstreamRequest) -> httpx.Response:
        if path == "embeddings":
            problem = _embeddings_problem(body)
            if problem:
                return _json(400, {"error": {"message": problem, "type": "invalid_request_error"}})
            return _json(200, _embeddings(body))
        reply = _reply(body)
        model = str(body.get("model", "mock"))
        prompt = _prompt_tokens(body.get("messages") or [])
        completion = max(1, _count(reply.get("content") or "")) if reply.get("content") else 5
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
        rid = _request_id(request.body)
        finish = "tool_calls" if reply.get("tool_calls") else "stop"
        if not body.get("stream"):
            return _json(
                200,
                {
                    "id": rid,
                    "object": "chat.completion",
                    "created": _CREATED,
                    "model": model,
                    "choices": [
                        {"index": 0, "message": reply, "finish_reason": finish, "logprobs": None}
                    ],
                    "usage": usage,
                },
            )
        return httpx.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_SSEStream(_stream_chunks(rid, model, reply, finish, usage)),
        )


def _json(status: int, payload: Any) -> httpx.Response:
    return httpx.Response(
        status, headers={"content-type": "application/json"}, content=orjson.dumps(payload)
    )


#: The largest ``dimensions`` OpenAI's embedding models produce.
MAX_DIMENSIONS = 3072


def _embeddings_problem(body: Any) -> str | None:
    """What OpenAI would refuse with a 400 (a mock answers like the API it stands in for)."""
    if not isinstance(body, dict):
        return "body must be a JSON object"
    dims = body.get("dimensions")
    if dims is not None and (
        not isinstance(dims, int) or isinstance(dims, bool) or not 1 <= dims <= MAX_DIMENSIONS
    ):
        return f"dimensions: must be an integer from 1 to {MAX_DIMENSIONS}"
    return None


def _embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body.get("input")
    items = inputs if isinstance(inputs, list) else [inputs]
    dims = int(body.get("dimensions") or 8)
    data = []
    tokens = 0
    for i, item in enumerate(items):
        text = item if isinstance(item, str) else orjson.dumps(item).decode()
        tokens += max(1, _count(text))
        raw = b""
        seed = text.encode()
        while len(raw) < dims * 4:
            seed = hashlib.sha256(seed).digest()
            raw += seed
        floats = [((v % 2000) - 1000) / 1000.0 for v in struct.unpack(f"<{dims}I", raw[: dims * 4])]
        data.append({"object": "embedding", "index": i, "embedding": floats})
    return {
        "object": "list",
        "data": data,
        "model": str(body.get("model", "mock")),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _stream_chunks(
    rid: str, model: str, reply: dict[str, Any], finish: str, usage: dict[str, int]
) -> list[dict[str, Any]]:
    base = {"id": rid, "object": "chat.completion.chunk", "created": _CREATED, "model": model}
    chunks: list[dict[str, Any]] = [
        {
            **base,
            "choices": [
                {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
            ],
        }
    ]
    if reply.get("tool_calls"):
        call = reply["tool_calls"][0]
        chunks.append(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {
                            "tool_calls": [
                                {
                                    "index": 0,
                                    "id": call["id"],
                                    "type": "function",
                                    "function": {"name": call["function"]["name"], "arguments": ""},
                                }
                            ]
                        },
                        "finish_reason": None,
                    }
                ],
            }
        )
        args = call["function"]["arguments"]
        for start in range(0, len(args), 16):
            chunks.append(
                {
                    **base,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {
                                "tool_calls": [
                                    {
                                        "index": 0,
                                        "function": {"arguments": args[start : start + 16]},
                                    }
                                ]
                            },
                            "finish_reason": None,
                        }
                    ],
                }
            )
    else:
        words = (reply.get("content") or "").split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            chunks.append(
                {
                    **base,
                    "choices": [{"index": 0, "delta": {"content": piece}, "finish_reason": None}],
                }
            )
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append({**base, "choices": [], "usage": usage})
    return chunks


class _SSEStream(httpx.AsyncByteStream):
    def __init__(self, chunks: list[dict[str, Any]]) -> None:
        self._chunks = chunks

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self._chunks:
            yield b"data: " + orjson.dumps(chunk) + b"\n\n"
        yield b"data: [DONE]\n\n"

    async def aclose(self) -> None:
        return None
