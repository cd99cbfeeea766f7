"""Bedrock ``ConverseStream`` -> OpenAI ``chat.completion.chunk`` lines.

The upstream body is AWS's binary event-stream framing (``application/vnd.amazon.eventstream``),
not SSE: :func:`eventstream_events` decodes it incrementally, chunk by chunk as the bytes
arrive (a frame may span chunks), with botocore's ``EventStreamBuffer``, which also checks each
frame's CRCs. Each frame becomes one ``(event name, JSON payload)`` event for
:class:`BedrockStreamTranslator`; an ``exception`` frame becomes an event named
``exception:<type>``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx
from httpx_sse import ServerSentEvent, SSEError

from providers.translators.openai_bedrock import finish_reason, usage_from_bedrock
from providers.translators.openai_content import OpenAIChunkStream

if TYPE_CHECKING:
    from botocore.eventstream import EventStreamBuffer

EVENTSTREAM = "application/vnd.amazon.eventstream"


def _header(headers: dict[str, Any], name: str) -> str:
    value = headers.get(name, "")
    return value.decode() if isinstance(value, bytes) else str(value)


def frames_to_events(buffer: EventStreamBuffer) -> list[ServerSentEvent]:
    """Every whole frame in ``buffer`` as an event (partial frames stay buffered)."""
    events: list[ServerSentEvent] = []
    for message in buffer:
        kind = _header(message.headers, ":message-type")
        if kind == "event":
            name = _header(message.headers, ":event-type")
        else:
            name = "exception:" + (
                _header(message.headers, ":exception-type")
                or _header(message.headers, ":error-code")
                or "UnknownException"
            )
        events.append(ServerSentEvent(event=name, data=message.payload.decode("utf-8", "replace")))
    return events


async def eventstream_events(response: httpx.Response) -> AsyncIterator[ServerSentEvent]:
    """The events of an event-stream body as they arrive. A body of another type, or a broken
    frame, raises ``SSEError`` as an unreadable SSE stream does (the relay treats both alike)."""
    ctype = response.headers.get("content-type", "").partition(";")[0].strip()
    if ctype != EVENTSTREAM:
        raise SSEError(f"expected {EVENTSTREAM}, got {ctype!r}")
    # Imported on first use, as in providers.aws: botocore costs every worker ~18 MB.
    from botocore.eventstream import EventStreamBuffer, ParserError

    buffer = EventStreamBuffer()
    async for chunk in response.aiter_bytes():
        buffer.add_data(chunk)
        try:
            events = frames_to_events(buffer)
        except ParserError as exc:
            raise SSEError(f"broken event-stream frame: {exc}") from exc
        for event in events:
            yield event


class BedrockStreamTranslator(OpenAIChunkStream):
    """Feed it one event (name, JSON data) at a time."""

    def __init__(self, *, include_usage: bool, model: str = "", created: int | None = None):
        super().__init__(
            include_usage=include_usage, prefix="bedrock", model=model, created=created
        )
        self._role_sent = False
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._reason: str | None = None

    def _role(self) -> list[bytes]:
        if self._role_sent:
            return []
        self._role_sent = True
        return [self.chunk({"role": "assistant", "content": ""})]

    def feed(self, data: str, event: str = "") -> list[bytes]:
        if self.done:
            return []
        payload = self.event_object(data, error_type="upstream_error")
        if payload is None:
            return []
        if event.startswith("exception:"):
            self.error = {
                "message": str(payload.get("message") or event),
                "type": event.partition(":")[2],
            }
            return []
        out: list[bytes] = []
        if event == "messageStart":
            return self._role()
        if event == "contentBlockStart":
            use = (payload.get("start") or {}).get("toolUse")
            if isinstance(use, dict):
                index = len(self._tools)
                self._tools[int(payload.get("contentBlockIndex") or 0)] = index
                call = {
                    "index": index,
                    "id": str(use.get("toolUseId") or f"call_{self.id}_{index}"),
                    "type": "function",
                    "function": {"name": str(use.get("name") or ""), "arguments": ""},
                }
                self.started = True
                out += [*self._role(), self.chunk({"tool_calls": [call]})]
            return out
        if event == "contentBlockDelta":
            delta = payload.get("delta") or {}
            if "text" in delta:
                self.started = True
                out += [*self._role(), self.chunk({"content": str(delta["text"])})]
            use = delta.get("toolUse")
            if isinstance(use, dict):
                index = self._tools.get(int(payload.get("contentBlockIndex") or 0), 0)
                part = {"index": index, "function": {"arguments": str(use.get("input") or "")}}
                out.append(self.chunk({"tool_calls": [part]}))
            return out
        if event == "messageStop":
            self._reason = finish_reason(payload.get("stopReason"))
            self.started = True
            return [*self._role(), self.chunk({}, self._reason)]
        if event == "metadata":
            self.usage = usage_from_bedrock(payload.get("usage"))
        return out

    def finish(self) -> list[bytes]:
        if self.done:
            return []
        out: list[bytes] = []
        if self._reason is None and self._role_sent:
            out.append(self.chunk({}, "stop"))
            self._reason = "stop"
        return out + self.usage_chunks() + super().finish()
