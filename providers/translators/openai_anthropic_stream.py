"""Anthropic Messages SSE events -> OpenAI ``chat.completion.chunk`` SSE lines.

Anthropic streams typed events (``message_start``, ``content_block_start/delta/stop``,
``message_delta``, ``message_stop``, ``ping``, ``error``); OpenAI streams uniform chunks. Thinking
deltas become ``delta.reasoning_content`` (as in the non-streaming translation); signature and
citation deltas and server-tool blocks have no OpenAI shape and are dropped.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from providers.adapters.base import StreamTranslator, sse
from providers.translators.openai_anthropic_response import (
    finish_reason,
    openai_usage,
    tool_call,
    usage_from_anthropic,
)


class AnthropicStreamTranslator(StreamTranslator):
    """Feed it one Anthropic event at a time: ``feed(data, event)``."""

    def __init__(self, *, include_usage: bool, created: int | None = None) -> None:
        super().__init__(include_usage=include_usage)
        self.id = ""
        self.model = ""
        self.created = int(time.time()) if created is None else created
        # Anthropic block index -> OpenAI tool-call index (tool blocks counted from 0). Only
        # client ``tool_use`` blocks are registered, so the input_json_delta events of a
        # server tool's block are not mistaken for a client tool call.
        self._tool_index: dict[int, int] = {}
        # Cumulative counts as Anthropic reports them (message_start, then message_delta).
        self._raw_usage: dict[str, int] = {}

    def feed(self, data: str, event: str = "") -> list[bytes]:
        if self.done:
            return []
        payload = self.event_object(data, error_type="upstream_error")
        if payload is None:
            return []
        kind = payload.get("type") or event
        if kind == "message_start":
            return self._message_start(payload.get("message") or {})
        if kind == "content_block_start":
            return self._block_start(payload.get("index"), payload.get("content_block") or {})
        if kind == "content_block_delta":
            return self._block_delta(payload.get("index"), payload.get("delta") or {})
        if kind == "message_delta":
            return self._message_delta(payload.get("delta") or {}, payload.get("usage"))
        if kind == "message_stop":
            out: list[bytes] = []
            if self.include_usage:
                out.append(sse({**self._envelope(), "choices": [], "usage": self._usage()}))
            return out + self.finish()
        if kind == "error":
            err = payload.get("error")
            err = err if isinstance(err, Mapping) else {}
            self.error = {
                "message": str(err.get("message") or "upstream stream error"),
                "type": str(err.get("type") or "upstream_error"),
            }
            return []
        # ping, content_block_stop and event types added later carry nothing for OpenAI.
        return []

    # -- events ---------------------------------------------------------------------------
    def _message_start(self, message: Mapping[str, Any]) -> list[bytes]:
        self.id = str(message.get("id") or "")
        self.model = self.served_model = str(message.get("model") or "")
        self._record_usage(message.get("usage"))
        # The role chunk carries no content: ``started`` stays false so the pipeline may
        # still fail over.
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, index: Any, block: Mapping[str, Any]) -> list[bytes]:
        kind = block.get("type")
        if kind == "tool_use":
            tool_index = len(self._tool_index)
            self._tool_index[index] = tool_index
            call = tool_call(tool_index, block)
            # Input arrives as input_json_delta events; the start block's ``input`` is {}.
            call["function"]["arguments"] = ""
            return self._content({"tool_calls": [call]})
        if kind == "text" and block.get("text"):
            return self._content({"content": block["text"]})
        if kind == "thinking" and block.get("thinking"):
            return self._content({"reasoning_content": block["thinking"]})
        return []

    def _block_delta(self, index: Any, delta: Mapping[str, Any]) -> list[bytes]:
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return self._content({"content": delta["text"]})
        if kind == "input_json_delta" and index in self._tool_index and delta.get("partial_json"):
            call = {
                "index": self._tool_index[index],
                "function": {"arguments": delta["partial_json"]},
            }
            return self._content({"tool_calls": [call]})
        if kind == "thinking_delta" and delta.get("thinking"):
            return self._content({"reasoning_content": delta["thinking"]})
        return []

    def _message_delta(self, delta: Mapping[str, Any], usage: Any) -> list[bytes]:
        self._record_usage(usage)
        reason = finish_reason(delta.get("stop_reason"))
        if reason is None:
            return []
        self.started = True
        return [self._chunk({}, reason)]

    # -- helpers --------------------------------------------------------------------------
    def _record_usage(self, usage: Any) -> None:
        if not isinstance(usage, Mapping):
            return
        for name in (
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ):
            # Counts are cumulative; message_delta may repeat or omit the input counts.
            if usage.get(name) is not None:
                self._raw_usage[name] = int(usage[name])
        self.usage = usage_from_anthropic(self._raw_usage)

    def _usage(self) -> dict[str, Any]:
        return openai_usage(self.usage)

    def _envelope(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
        }

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**self._envelope(), "choices": [choice]})

    def _content(self, delta: dict[str, Any]) -> list[bytes]:
        self.started = True
        return [self._chunk(delta)]
