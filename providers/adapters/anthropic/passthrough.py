"""Native relay for Anthropic-format clients served by an ``anthropic`` instance.

``POST /v1/messages`` to an Anthropic upstream needs no translation: the body goes up with the
model replaced by the instance's model, the answer (whole or streamed) comes back as is. The
only thing read from it is the usage (``message_start`` / ``message_delta`` in streams).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers.adapters.base import StreamTranslator, Usage
from providers.translators.openai_anthropic_response import usage_from_anthropic

#: Client headers an Anthropic upstream gets from a native request (API version, opt-in betas).
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


class AnthropicPassthroughStream(StreamTranslator):
    """Relays Anthropic SSE events unchanged; reads usage, content start, end and errors."""

    def __init__(self) -> None:
        super().__init__(include_usage=True)
        self._counts: dict[str, int] = {}

    def feed(self, data: str, event: str = "") -> list[bytes]:
        if self.done:
            return []
        payload = self.event_object(data)
        if payload is None:
            return []
        kind = event or str(payload.get("type") or "")
        if kind == "error":
            err = payload.get("error")
            self.error = dict(err) if isinstance(err, Mapping) else {"message": str(err)}
            return []
        if kind == "message_start":
            message = payload.get("message") or {}
            self._count(message.get("usage"))
            self.served_model = str(message.get("model") or "")
        elif kind == "message_delta":
            self._count(payload.get("usage"))  # cumulative totals
        elif kind in ("content_block_start", "content_block_delta"):
            self.started = True
        elif kind == "message_stop":
            self.done = True
        return [b"event: " + kind.encode() + b"\ndata: " + data.encode() + b"\n\n"]

    def _count(self, usage: Any) -> None:
        if not isinstance(usage, Mapping):
            return
        for name, value in usage.items():
            if isinstance(value, int) and not isinstance(value, bool):
                self._counts[name] = value
        self.usage = usage_from_anthropic(self._counts)

    def finish(self) -> list[bytes]:
        self.done = True
        return []


def native_response_usage(payload: bytes) -> Usage:
    """Usage of a non-streaming Messages response (raises on a body that is not JSON)."""
    data = orjson.loads(payload)
    if not isinstance(data, dict) or data.get("type") != "message":
        raise ValueError("not a Messages API response")
    return usage_from_anthropic(data.get("usage")).named(data.get("model"))
