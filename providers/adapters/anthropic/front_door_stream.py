"""OpenAI ``chat.completion.chunk`` stream -> Anthropic Messages SSE events (front door).

OpenAI reports usage only in its last chunk (the front door asks for it with
``stream_options.include_usage``), so ``message_start`` carries zero counts and the real ones
travel in ``message_delta``, which Anthropic's clients read as cumulative totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers.adapters.anthropic.front_door import anthropic_usage, stop_reason
from providers.adapters.base import StreamTranslator, Usage


def sse_event(name: str, payload: Mapping[str, Any]) -> bytes:
    """One Anthropic-style SSE event (named, JSON data)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class OpenAIToAnthropicStream(StreamTranslator):
    """Feed it OpenAI chunk ``data`` strings; it returns Anthropic events.

    A ``StreamTranslator`` so the pipeline's relay loop can drive it unchanged (``usage``,
    ``error``, ``started``, ``done``), but the bytes are Anthropic's format and ``finish`` closes
    the message with ``message_delta`` + ``message_stop`` rather than ``[DONE]``.
    """

    def __init__(self, *, model: str, message_id: str = "") -> None:
        super().__init__(include_usage=True)
        self.model = model
        self.message_id = message_id
        self._opened = False
        self._next_block = 0
        self._open_block: int | None = None
        self._text_block: int | None = None
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool-call index -> block index
        self._stop_reason: str | None = None

    def feed(self, data: str, event: str = "") -> list[bytes]:
        if self.done:
            return []
        if data.strip() == "[DONE]":
            return self.finish()
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            self.error = {"message": "upstream sent a malformed stream chunk", "type": "api_error"}
            return []
        if not isinstance(chunk, dict):
            return []
        if "error" in chunk and not chunk.get("choices"):
            err = chunk["error"]
            self.error = dict(err) if isinstance(err, Mapping) else {"message": str(err)}
            return []
        out = self._message_start(chunk)
        if chunk.get("usage"):
            self.usage = Usage.from_openai(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue  # n > 1 has no Anthropic form; the front door never asks for it
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out += self._text(str(delta["content"]))
            for call in delta.get("tool_calls") or []:
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self._stop_reason = stop_reason(choice["finish_reason"])
                out += self._close_block()
        return out

    def finish(self) -> list[bytes]:
        if self.done:
            return []
        self.done = True
        out = self._message_start({}) + self._close_block()
        out.append(
            sse_event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {
                        "stop_reason": self._stop_reason or "end_turn",
                        "stop_sequence": None,
                    },
                    "usage": anthropic_usage(self.usage),
                },
            )
        )
        out.append(sse_event("message_stop", {"type": "message_stop"}))
        return out

    # -- helpers --------------------------------------------------------------------------
    def _message_start(self, chunk: Mapping[str, Any]) -> list[bytes]:
        if self._opened:
            return []
        self._opened = True
        self.message_id = self.message_id or str(chunk.get("id") or "msg_gateway")
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return [sse_event("message_start", {"type": "message_start", "message": message})]

    def _start_block(self, block: dict[str, Any]) -> list[bytes]:
        out = self._close_block()
        index = self._next_block
        self._next_block += 1
        self._open_block = index
        self.started = True
        payload = {"type": "content_block_start", "index": index, "content_block": block}
        return [*out, sse_event("content_block_start", payload)]

    def _close_block(self) -> list[bytes]:
        if self._open_block is None:
            return []
        index, self._open_block = self._open_block, None
        self._text_block = None
        return [sse_event("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return sse_event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    def _text(self, text: str) -> list[bytes]:
        out: list[bytes] = []
        if self._text_block is None:
            out = self._start_block({"type": "text", "text": ""})
            self._text_block = self._open_block
        assert self._text_block is not None
        out.append(self._delta(self._text_block, {"type": "text_delta", "text": text}))
        return out

    def _tool_delta(self, call: Any) -> list[bytes]:
        if not isinstance(call, Mapping):
            return []
        fn = call.get("function") or {}
        key = int(call.get("index") or 0)
        out: list[bytes] = []
        if key not in self._tool_blocks:
            block: dict[str, Any] = {
                "type": "tool_use",
                "id": call.get("id"),
                "name": fn.get("name"),
                "input": {},
            }
            out = self._start_block(block)
            assert self._open_block is not None
            self._tool_blocks[key] = self._open_block
        arguments = fn.get("arguments")
        if arguments:
            # OpenAI never interleaves tool calls, so the block is still the open one.
            delta = {"type": "input_json_delta", "partial_json": str(arguments)}
            out.append(self._delta(self._tool_blocks[key], delta))
        return out
