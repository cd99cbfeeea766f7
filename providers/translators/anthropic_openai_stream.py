"""OpenAI ``chat.completion.chunk`` stream -> Anthropic Messages SSE events (front door).

OpenAI reports usage only in its last chunk (the front door asks for it with
``stream_options.include_usage``), so ``message_start`` carries zero counts and the real ones
travel in ``message_delta``, which Anthropic's clients read as cumulative totals.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers.adapters.base import StreamTranslator, Usage
from providers.translators.anthropic_openai import anthropic_usage, stop_reason


def sse_event(name: str, payload: Mapping[str, Any]) -> bytes:
    """One Anthropic-style SSE event (named, JSON data)."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class OpenAIToAnthropicStream(StreamTranslator):
    """Feed it OpenAI chunk ``data`` strings; it returns Anthropic events.

    A ``StreamTranslator`` so the pipeline's relay loop can drive it unchanged (``usage``,
    ``error``, ``started``, ``done``), but the bytes are Anthropic's format and ``finish`` closes
    the message with ``message_delta`` + ``message_stop`` rather than ``[DONE]``.

    ``message_start`` (then a ``ping``) waits for the first content, so that an upstream that
    reports usage up front (in an early chunk) gives it the real input token count. Reasoning
    deltas (``reasoning_content`` / ``reasoning``) become a thinking block. A tool call's block
    starts once its id and name are known; argument fragments seen before are held until then.
    """

    def __init__(self, *, model: str, message_id: str = "") -> None:
        super().__init__(include_usage=True)
        self.model = model
        self.message_id = message_id
        self._opened = False
        self._next_block = 0
        self._open_block: int | None = None
        self._open_kind = ""
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool-call index -> block index
        self._pending_tools: dict[int, dict[str, Any]] = {}  # id/name/arguments so far
        self._stop_reason: str | None = None

    def feed(self, data: str, event: str = "") -> list[bytes]:
        if self.done:
            return []
        if data.strip() == "[DONE]":
            return self.finish()
        chunk = self.openai_chunk(data)
        if chunk is None:
            return []
        if not self.message_id and chunk.get("id"):
            self.message_id = str(chunk["id"])
        if chunk.get("usage"):
            self.usage = Usage.from_openai(chunk["usage"])
        out: list[bytes] = []
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue  # n > 1 has no Anthropic form; the front door never asks for it
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                out += self._content("thinking", {"type": "thinking_delta", "thinking": reasoning})
            if delta.get("content"):
                text = str(delta["content"])
                out += self._content("text", {"type": "text_delta", "text": text})
            for call in delta.get("tool_calls") or []:
                out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self._stop_reason = stop_reason(choice["finish_reason"])
                out += self._flush_tools() + self._close_block()
        return out

    def finish(self) -> list[bytes]:
        if self.done:
            return []
        self.done = True
        if self.error is not None:
            return []  # the error event ends an Anthropic stream
        out = self._message_start() + self._flush_tools() + self._close_block()
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
    def _message_start(self) -> list[bytes]:
        if self._opened:
            return []
        self._opened = True
        usage = anthropic_usage(self.usage)
        usage["output_tokens"] = 0 if not self.usage.completion_tokens else usage["output_tokens"]
        message: dict[str, Any] = {
            "id": self.message_id or "msg_gateway",
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage,
        }
        return [
            sse_event("message_start", {"type": "message_start", "message": message}),
            sse_event("ping", {"type": "ping"}),
        ]

    def _start_block(self, block: dict[str, Any]) -> list[bytes]:
        out = self._message_start() + self._close_block()
        index = self._next_block
        self._next_block += 1
        self._open_block = index
        self._open_kind = str(block["type"])
        self.started = True
        payload = {"type": "content_block_start", "index": index, "content_block": block}
        return [*out, sse_event("content_block_start", payload)]

    def _close_block(self) -> list[bytes]:
        if self._open_block is None:
            return []
        index, self._open_block = self._open_block, None
        self._open_kind = ""
        return [sse_event("content_block_stop", {"type": "content_block_stop", "index": index})]

    def _delta(self, index: int, delta: dict[str, Any]) -> bytes:
        return sse_event(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )

    def _content(self, kind: str, delta: dict[str, Any]) -> list[bytes]:
        """A text or thinking delta: into the open block of that kind, else a new block."""
        out: list[bytes] = []
        if self._open_block is None or self._open_kind != kind:
            block: dict[str, Any] = (
                {"type": "text", "text": ""}
                if kind == "text"
                else {"type": "thinking", "thinking": "", "signature": ""}
            )
            out = self._start_block(block)
        assert self._open_block is not None
        out.append(self._delta(self._open_block, delta))
        return out

    def _tool_delta(self, call: Any) -> list[bytes]:
        if not isinstance(call, Mapping):
            return []
        fn = call.get("function") or {}
        key = int(call.get("index") or 0)
        arguments = str(fn.get("arguments") or "")
        if key in self._tool_blocks:
            if not arguments:
                return []
            # OpenAI never interleaves tool calls, so the block is still the open one.
            delta = {"type": "input_json_delta", "partial_json": arguments}
            return [self._delta(self._tool_blocks[key], delta)]
        pending = self._pending_tools.setdefault(key, {"id": None, "name": None, "arguments": ""})
        pending["id"] = pending["id"] or call.get("id")
        pending["name"] = pending["name"] or fn.get("name")
        pending["arguments"] += arguments
        if not (pending["id"] and pending["name"]):
            return []  # Anthropic's block start needs both: hold the fragments until then
        return self._start_tool(key)

    def _start_tool(self, key: int) -> list[bytes]:
        pending = self._pending_tools.pop(key)
        block: dict[str, Any] = {
            "type": "tool_use",
            "id": pending["id"] or f"toolu_gateway_{key}",
            "name": pending["name"] or "",
            "input": {},
        }
        out = self._start_block(block)
        assert self._open_block is not None
        self._tool_blocks[key] = self._open_block
        if pending["arguments"]:
            delta = {"type": "input_json_delta", "partial_json": pending["arguments"]}
            out.append(self._delta(self._open_block, delta))
        return out

    def _flush_tools(self) -> list[bytes]:
        """Tool calls whose id or name never came: start them anyway before the message ends."""
        out: list[bytes] = []
        for key in sorted(self._pending_tools):
            out += self._start_tool(key)
        return out
