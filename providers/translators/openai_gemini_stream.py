"""Gemini ``streamGenerateContent?alt=sse`` events -> OpenAI ``chat.completion.chunk`` lines.

Each SSE event is a whole ``GenerateContentResponse`` holding the next piece of the answer;
function calls arrive whole (never split across events); the last event carries the finish
reason and the final ``usageMetadata``.
"""

from __future__ import annotations

from providers.translators.openai_content import OpenAIChunkStream
from providers.translators.openai_gemini import candidate_delta, finish_reason, usage_from_gemini


class GeminiStreamTranslator(OpenAIChunkStream):
    """Feed it one SSE event's data at a time."""

    def __init__(self, *, include_usage: bool, model: str = "", created: int | None = None):
        super().__init__(include_usage=include_usage, prefix="gemini", model=model, created=created)
        self._role_sent = False
        self._tools = 0
        self._finished = False

    def feed(self, data: str, event: str = "") -> list[bytes]:
        if self.done:
            return []
        payload = self.event_object(data, error_type="upstream_error")
        if payload is None:
            return []
        if isinstance(payload.get("error"), dict):
            self.error = dict(payload["error"])
            return []
        self.model = self.served_model = str(payload.get("modelVersion") or self.model)
        if payload.get("usageMetadata"):
            self.usage = usage_from_gemini(payload["usageMetadata"])
        out: list[bytes] = []
        if not self._role_sent:
            self._role_sent = True
            out.append(self.chunk({"role": "assistant", "content": ""}))
        candidates = payload.get("candidates") or []
        if not candidates and (payload.get("promptFeedback") or {}).get("blockReason"):
            self.started = self._finished = True
            out.append(self.chunk({}, "content_filter"))
            return out
        for candidate in candidates[:1]:
            text, calls = candidate_delta(candidate, self._tools, f"call_{self.id}")
            if text:
                self.started = True
                out.append(self.chunk({"content": text}))
            if calls:
                self.started = True
                self._tools += len(calls)
                out.append(self.chunk({"tool_calls": calls}))
            reason = finish_reason(candidate, self._tools > 0)
            if reason is not None:
                self.started = self._finished = True
                out.append(self.chunk({}, reason))
        return out

    def finish(self) -> list[bytes]:
        if self.done:
            return []
        out: list[bytes] = []
        if not self._finished and self._role_sent:
            out.append(self.chunk({}, "stop"))
            self._finished = True
        return out + self.usage_chunks() + super().finish()
