"""Chat-completions chunk stream -> OpenAI Responses API event stream.

The events, their order and their shapes mirror OpenAI's own (the ``openai`` SDK's stream
parser and Codex CLI both accept them): ``response.created``, ``response.in_progress``; per
text item ``response.output_item.added``, ``response.content_part.added``,
``response.output_text.delta``..., ``response.output_text.done``,
``response.content_part.done``, ``response.output_item.done``; per function call
``response.output_item.added``, ``response.function_call_arguments.delta``...,
``response.function_call_arguments.done``, ``response.output_item.done``; then
``response.completed`` (``response.incomplete`` when the output was cut) with the usage, or
``error`` + ``response.failed`` when the upstream broke off. Every event carries ``type`` and a
``sequence_number``; lines are ``event: <type>`` + ``data: <json>``.

The closing ``response.completed`` is held back until :meth:`finish`, so the caller can store
the response before the client learns it is complete.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import orjson

from providers.adapters.base import StreamTranslator, Usage
from providers.translators.responses_openai_response import (
    function_call_item,
    message_item,
    new_id,
    reasoning_tokens_of,
    response_object,
    responses_usage,
    status_of,
    text_part,
)


def sse_event(payload: Mapping[str, Any]) -> bytes:
    """One Responses API SSE event: ``event:`` names its ``type``."""
    return (
        b"event: " + str(payload["type"]).encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
    )


class ChatToResponsesStream(StreamTranslator):
    """Feed it chat ``chat.completion.chunk`` data (or, with ``inner``, the upstream's own
    events, which ``inner`` first turns into chat chunks); it returns Responses events.

    ``request`` is the client's Responses request (echoed in the response object).
    """

    def __init__(
        self,
        *,
        request: Mapping[str, Any],
        response_id: str = "",
        inner: StreamTranslator | None = None,
    ) -> None:
        super().__init__(include_usage=True)
        self.request = request
        self.response_id = response_id or new_id("resp")
        self.created_at = int(time.time())
        self.inner = inner
        self._seq = 0
        self._opened = False
        self._ended = False
        self._closed = False  # the terminal event (or a failure) went out
        self._items: list[dict[str, Any]] = []  # output items so far, in output order
        self._text_item: int | None = None  # output index of the open message item
        self._tools: dict[int, int] = {}  # chat tool-call index -> output index
        self._open_tools: list[int] = []
        self._finish: Any = None
        self._reasoning_tokens = 0
        self._final: dict[str, Any] | None = None

    # -- input ---------------------------------------------------------------------------
    def feed(self, data: str, event: str = "") -> list[bytes]:
        if self.done or self._closed:
            return []
        if self.inner is None:
            return self._chunk(data)
        out: list[bytes] = []
        for raw in self.inner.feed(data, event):
            for line in raw.split(b"\n"):
                if line.startswith(b"data: "):
                    out += self._chunk(line[6:].decode())
        if self.inner.error is not None and self.error is None:
            self.error = self.inner.error
        if self.inner.done and not self._ended and self.error is None:
            out += self._end()
        return out

    def _chunk(self, data: str) -> list[bytes]:
        if data.strip() == "[DONE]":
            return self._end()
        chunk = self.openai_chunk(data)
        if chunk is None:
            return []
        out = self._open()
        if chunk.get("usage"):
            self.usage = Usage.from_openai(chunk["usage"])
            self._reasoning_tokens = reasoning_tokens_of(chunk["usage"])
        for choice in chunk.get("choices") or []:
            if not isinstance(choice, Mapping) or choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text = delta.get("content") or delta.get("refusal")
            if isinstance(text, str) and text:
                out += self._text(text)
            for call in delta.get("tool_calls") or []:
                if isinstance(call, Mapping):
                    out += self._tool_delta(call)
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
                self.started = True
                out += self._close_items()
        return out

    # -- output --------------------------------------------------------------------------
    def finish(self) -> list[bytes]:
        """The closing events (``response.completed`` or ``response.incomplete``)."""
        self.done = True
        if self._closed:
            return []
        out = [] if self._ended else self._end()
        response = self.response()
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        self._closed = True
        return [*out, self._event({"type": kind, "response": response})]

    def fail_events(self, message: str, etype: str, code: str | None) -> list[bytes]:
        """``error`` + ``response.failed``: how a Responses stream tells a failure."""
        if self._closed:
            return []
        self._closed = True
        self.done = True
        out = self._open()
        out.append(
            self._event({"type": "error", "code": code or etype, "message": message, "param": None})
        )
        failed = self._snapshot(
            "failed", error={"code": "server_error", "message": message}, output=self._items
        )
        out.append(self._event({"type": "response.failed", "response": failed}))
        return out

    def response(self) -> dict[str, Any]:
        """The final ``Response`` object (usage included), once the upstream ended."""
        if self._final is None:
            status, incomplete = status_of(self._finish)
            self._final = response_object(
                self.request,
                response_id=self.response_id,
                created_at=self.created_at,
                status=status,
                output=[dict(item) for item in self._items],
                usage=responses_usage(self.usage, self._reasoning_tokens),
                incomplete=incomplete,
            )
        return self._final

    # -- helpers -------------------------------------------------------------------------
    def _event(self, payload: dict[str, Any]) -> bytes:
        payload["sequence_number"] = self._seq
        self._seq += 1
        return sse_event(payload)

    def _snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        fields: dict[str, Any] = {"output": []}
        fields.update(extra)
        return response_object(
            self.request,
            response_id=self.response_id,
            created_at=self.created_at,
            status=status,
            **fields,
        )

    def _open(self) -> list[bytes]:
        if self._opened:
            return []
        self._opened = True
        snapshot = self._snapshot("in_progress")
        return [
            self._event({"type": "response.created", "response": snapshot}),
            self._event({"type": "response.in_progress", "response": snapshot}),
        ]

    def _end(self) -> list[bytes]:
        """The upstream finished: close what is open; the terminal event waits for finish."""
        out = self._open() + self._close_items()
        self._ended = True
        self.done = True
        self.started = True
        return out

    def _add_item(self, item: dict[str, Any]) -> tuple[int, bytes]:
        index = len(self._items)
        self._items.append(item)
        added = self._event(
            {"type": "response.output_item.added", "output_index": index, "item": dict(item)}
        )
        return index, added

    def _text(self, text: str) -> list[bytes]:
        self.started = True
        out: list[bytes] = []
        if self._text_item is None:
            out += self._close_tools()
            index, added = self._add_item(message_item(new_id("msg"), "", "in_progress"))
            self._text_item = index
            self._items[index]["content"] = [text_part("")]
            out.append(added)
            out.append(
                self._event(
                    {
                        "type": "response.content_part.added",
                        "item_id": self._items[index]["id"],
                        "output_index": index,
                        "content_index": 0,
                        "part": text_part(""),
                    }
                )
            )
        index = self._text_item
        item = self._items[index]
        item["content"][0]["text"] += text
        out.append(
            self._event(
                {
                    "type": "response.output_text.delta",
                    "item_id": item["id"],
                    "output_index": index,
                    "content_index": 0,
                    "delta": text,
                    "logprobs": [],
                }
            )
        )
        return out

    def _close_text(self) -> list[bytes]:
        if self._text_item is None:
            return []
        index, self._text_item = self._text_item, None
        item = self._items[index]
        item["status"] = "completed"
        text = item["content"][0]["text"]
        base = {"item_id": item["id"], "output_index": index, "content_index": 0}
        return [
            self._event(
                {"type": "response.output_text.done", **base, "text": text, "logprobs": []}
            ),
            self._event({"type": "response.content_part.done", **base, "part": text_part(text)}),
            self._event({"type": "response.output_item.done", "output_index": index, "item": item}),
        ]

    def _tool_delta(self, call: Mapping[str, Any]) -> list[bytes]:
        self.started = True
        fn = call.get("function") or {}
        key = int(call.get("index") or 0)
        out: list[bytes] = []
        if key not in self._tools:
            out += self._close_text()
            item = function_call_item(
                new_id("fc"),
                str(call.get("id") or new_id("call")),
                str(fn.get("name") or ""),
                "",
                "in_progress",
            )
            index, added = self._add_item(item)
            self._tools[key] = index
            self._open_tools.append(index)
            out.append(added)
        index = self._tools[key]
        item = self._items[index]
        if fn.get("name") and not item["name"]:
            item["name"] = str(fn["name"])
        arguments = str(fn.get("arguments") or "")
        if arguments:
            item["arguments"] += arguments
            out.append(
                self._event(
                    {
                        "type": "response.function_call_arguments.delta",
                        "item_id": item["id"],
                        "output_index": index,
                        "delta": arguments,
                    }
                )
            )
        return out

    def _close_tools(self) -> list[bytes]:
        out: list[bytes] = []
        for index in self._open_tools:
            item = self._items[index]
            item["status"] = "completed"
            out.append(
                self._event(
                    {
                        "type": "response.function_call_arguments.done",
                        "item_id": item["id"],
                        "output_index": index,
                        "name": item["name"],
                        "arguments": item["arguments"],
                    }
                )
            )
            out.append(
                self._event(
                    {"type": "response.output_item.done", "output_index": index, "item": item}
                )
            )
        self._open_tools = []
        return out

    def _close_items(self) -> list[bytes]:
        return self._close_text() + self._close_tools()
