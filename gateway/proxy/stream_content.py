"""What a streamed answer said, rebuilt from the SSE bytes the client received, for tracing's
``gen_ai.output.messages`` when message content capture is on.

The shape is the whole answer's for the same endpoint (what tracing records for a non-streamed
answer): chat completions' ``choices``, the Messages API's ``content`` blocks, the Responses
API's ``output`` items. Only used when capture is on: nothing here runs otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import orjson


def json_object(raw: bytes) -> dict[str, Any] | None:
    """``raw`` parsed as JSON when it is an object; None for anything else (not JSON, a list,
    a number): what an answer or a stream event must be for its content to be read."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class _Reducer(Protocol):
    def event(self, event: dict[str, Any]) -> None: ...

    def output(self) -> list[Any]: ...


class _Chat:
    """``chat.completion.chunk`` deltas folded into ``choices`` (text, tool calls, finish)."""

    def __init__(self) -> None:
        self.choices: dict[int, dict[str, Any]] = {}

    def event(self, chunk: dict[str, Any]) -> None:
        for choice in chunk.get("choices") or ():
            if not isinstance(choice, dict):
                continue
            index = choice.get("index", 0)
            out = self.choices.setdefault(
                index, {"role": "assistant", "content": "", "calls": {}, "finish_reason": None}
            )
            delta = choice.get("delta") or {}
            if isinstance(delta.get("content"), str):
                out["content"] += delta["content"]
            for call in delta.get("tool_calls") or ():
                slot = out["calls"].setdefault(
                    call.get("index", 0), {"id": None, "name": "", "arguments": ""}
                )
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                out["finish_reason"] = choice["finish_reason"]

    def output(self) -> list[Any]:
        result = []
        for index in sorted(self.choices):
            choice = self.choices[index]
            message: dict[str, Any] = {"role": "assistant", "content": choice["content"]}
            if choice["calls"]:
                message["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": call["arguments"]},
                    }
                    for _, call in sorted(choice["calls"].items())
                ]
            result.append(
                {"index": index, "message": message, "finish_reason": choice["finish_reason"]}
            )
        return result


class _Messages:
    """Messages API events folded into ``content`` blocks (text, thinking, tool use)."""

    def __init__(self) -> None:
        self.blocks: dict[int, dict[str, Any]] = {}
        self.partial_json: dict[int, str] = {}

    def event(self, event: dict[str, Any]) -> None:
        kind, index = event.get("type"), event.get("index", 0)
        if kind == "content_block_start" and isinstance(event.get("content_block"), dict):
            self.blocks[index] = dict(event["content_block"])
        elif kind == "content_block_delta" and isinstance(event.get("delta"), dict):
            block = self.blocks.setdefault(index, {"type": "text", "text": ""})
            delta = event["delta"]
            if delta.get("type") == "text_delta":
                block["text"] = block.get("text", "") + str(delta.get("text", ""))
            elif delta.get("type") == "thinking_delta":
                block["thinking"] = block.get("thinking", "") + str(delta.get("thinking", ""))
            elif delta.get("type") == "input_json_delta":
                self.partial_json[index] = self.partial_json.get(index, "") + str(
                    delta.get("partial_json", "")
                )

    def output(self) -> list[Any]:
        result = []
        for index in sorted(self.blocks):
            block = dict(self.blocks[index])
            if index in self.partial_json:
                try:
                    block["input"] = orjson.loads(self.partial_json[index] or "{}")
                except orjson.JSONDecodeError:  # cut short: what arrived, as text
                    block["input"] = self.partial_json[index]
            result.append(block)
        return result


class _Responses:
    """The Responses API's final response's ``output``; its text deltas if it never came."""

    def __init__(self) -> None:
        self.final: list[Any] | None = None
        self.text = ""

    def event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "response.output_text.delta":
            self.text += str(event.get("delta", ""))
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            response = event.get("response")
            if isinstance(response, dict) and isinstance(response.get("output"), list):
                self.final = response["output"]

    def output(self) -> list[Any]:
        if self.final is not None:
            return self.final
        if not self.text:
            return []
        content = [{"type": "output_text", "text": self.text}]
        return [{"type": "message", "role": "assistant", "content": content}]


#: Endpoint name -> how its stream's events fold into its whole answer's output.
REDUCERS: dict[str, Callable[[], _Reducer]] = {
    "chat": _Chat,
    "messages": _Messages,
    "responses": _Responses,
}


class StreamContent:
    """Feed it the bytes of one stream as sent (any split); :meth:`output` is what it said."""

    def __init__(self, endpoint: str) -> None:
        reducer = REDUCERS.get(endpoint)
        self._reducer = reducer() if reducer is not None else None
        self._pending = b""

    def feed(self, chunk: bytes) -> None:
        if self._reducer is None:
            return
        *events, self._pending = (self._pending + chunk).replace(b"\r\n", b"\n").split(b"\n\n")
        for raw in events:
            data = b"\n".join(
                line[5:].removeprefix(b" ")
                for line in raw.split(b"\n")
                if line.startswith(b"data:")
            )
            event = json_object(data) if data and data != b"[DONE]" else None
            if event is None:
                continue
            try:
                self._reducer.event(event)
            except (AttributeError, TypeError, ValueError):
                # An event of a shape no API sends (a passthrough stream is the upstream's
                # own): left out of the captured text, never an error for the stream.
                continue

    def output(self) -> list[Any]:
        return self._reducer.output() if self._reducer is not None else []
