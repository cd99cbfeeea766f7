"""Native relay of OpenAI's Responses API (``openai`` and ``azure_openai`` instances).

The request goes up as the client sent it (model replaced, see
``OpenAIAdapter.responses_request``); the answer, whole or streamed, comes back as is. What is
read from it: the usage (``usage`` of the whole response, or of the ``response.completed`` /
``response.incomplete`` event), whether content started, errors, and the final response
object (for the gateway's response store).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from providers.adapters.base import StreamTranslator, Usage
from providers.translators.responses_openai_response import usage_from_responses

#: Events that end a Responses stream, carrying the final response object.
TERMINAL_EVENTS = frozenset({"response.completed", "response.incomplete", "response.failed"})
#: Events that mean content reached the stream (no failover after them).
_CONTENT_EVENTS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.function_call_arguments.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_text.delta",
        "response.output_item.done",
    }
)


def native_response_usage(payload: bytes) -> Usage:
    """Usage of a whole Responses API answer (raises on a body that is not one)."""
    data = orjson.loads(payload)
    if not isinstance(data, dict) or data.get("object") != "response":
        raise ValueError("not a Responses API response")
    return usage_from_responses(data.get("usage")).named(data.get("model"))


class ResponsesPassthroughStream(StreamTranslator):
    """Relays Responses API events unchanged; the terminal event waits for :meth:`finish`
    (so the response can be stored before the client learns it is complete)."""

    def __init__(self) -> None:
        super().__init__(include_usage=True)
        self.final: dict[str, Any] | None = None
        self._tail: list[bytes] = []
        self._last_seq = -1
        self._snapshot: dict[str, Any] = {}

    def feed(self, data: str, event: str = "") -> list[bytes]:
        if self.done:
            return []
        payload = self.event_object(data)
        if payload is None:
            return []
        kind = str(payload.get("type") or event)
        line = b"event: " + kind.encode() + b"\ndata: " + data.encode() + b"\n\n"
        if kind == "error" or (kind == "response.failed" and not self.started):
            err = payload.get("error") if kind == "error" else None
            if kind == "response.failed":
                err = (payload.get("response") or {}).get("error")
            source = err if isinstance(err, Mapping) else payload
            self.error = {
                "message": str(source.get("message") or "upstream stream error"),
                "type": str(source.get("type") or source.get("code") or "upstream_error"),
            }
            return []
        seq = payload.get("sequence_number")
        if isinstance(seq, int):
            self._last_seq = seq  # of the events relayed: a failure is numbered after them
        if kind in ("response.created", "response.in_progress"):
            response = payload.get("response")
            if isinstance(response, dict):
                self._snapshot = response
                self.served_model = str(response.get("model") or self.served_model)
        elif kind in _CONTENT_EVENTS:
            self.started = True
        elif kind in TERMINAL_EVENTS:
            response = payload.get("response")
            if isinstance(response, dict):
                self.final = response
                self.usage = usage_from_responses(response.get("usage"))
            self.started = True
            self.done = True
            self._tail = [line]
            return []
        return [line]

    def finish(self) -> list[bytes]:
        self.done = True
        tail, self._tail = self._tail, []
        return tail

    def fail_events(self, message: str, etype: str, code: str | None) -> list[bytes]:
        """``error`` + ``response.failed``, numbered after the upstream's last event."""
        self.done = True
        self._tail = []
        error = {"type": "error", "code": code or etype, "message": message, "param": None}
        failed = dict(self._snapshot)
        failed.update(status="failed", error={"code": "server_error", "message": message})
        events = [
            (
                "error",
                {**error, "sequence_number": self._last_seq + 1},
            ),
            (
                "response.failed",
                {
                    "type": "response.failed",
                    "response": failed,
                    "sequence_number": self._last_seq + 2,
                },
            ),
        ]
        return [
            b"event: " + name.encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"
            for name, body in events
        ]
