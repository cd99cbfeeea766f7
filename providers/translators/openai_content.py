"""OpenAI-format pieces shared by the translators to backends of their own wire format
(Gemini, Bedrock, Vertex AI): reading chat message content (text and inline images only),
reading an embeddings request's inputs and writing its answer, and writing a streamed answer
as chat completion chunks."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from providers.adapters.base import StreamTranslator, UnsupportedOperation, Usage, sse
from providers.translators.openai_anthropic_response import openai_usage


def content_text(content: Any) -> str:
    """The text of a message's ``content``: the string itself, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            str(p.get("text") or "") for p in content if isinstance(p, dict) and "text" in p
        )
    return ""


def base64_image(part: Mapping[str, Any], backend: str) -> tuple[str, str]:
    """(media type, base64 data) of an ``image_url`` part; ``backend`` (for the message)
    accepts images only as base64 ``data:`` URLs, so anything else is refused."""
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise UnsupportedOperation(f"{backend} takes images as base64 data: URLs only")
    media_type, data = url[5:].split(";base64,", 1)
    return media_type, data


def embedding_inputs(body: Mapping[str, Any]) -> list[Any]:
    """The items of an embeddings request's ``input``: one string, or its list as sent."""
    texts = body.get("input")
    return [texts] if isinstance(texts, str) else list(texts or [])


def openai_embeddings(vectors: Iterable[Sequence[float]], tokens: int) -> tuple[bytes, Usage]:
    """An OpenAI embeddings answer (one row per vector, in order) and its usage: ``tokens`` is
    what the upstream counted (0 where it reports no count)."""
    rows = [
        {"object": "embedding", "index": i, "embedding": list(v)} for i, v in enumerate(vectors)
    ]
    answer = {
        "object": "list",
        "data": rows,
        "model": "",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
    return orjson.dumps(answer), Usage(prompt_tokens=tokens)


class OpenAIChunkStream(StreamTranslator):
    """A stream translator that writes one answer as OpenAI ``chat.completion.chunk`` lines;
    its ``id``, ``model`` and ``created`` are fixed when it is made."""

    def __init__(
        self, *, include_usage: bool, prefix: str, model: str = "", created: int | None = None
    ) -> None:
        super().__init__(include_usage=include_usage)
        self.model = model
        self.id = f"{prefix}-{time.time_ns()}"
        self.created = int(time.time()) if created is None else created

    def chunk(self, delta: dict[str, Any], finish: str | None = None) -> bytes:
        """One chunk of the only choice."""
        return sse(
            {
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
        )

    def usage_chunks(self) -> list[bytes]:
        """The closing usage chunk, when the client asked for one (``include_usage``)."""
        if not self.include_usage:
            return []
        return [
            sse(
                {
                    "id": self.id,
                    "object": "chat.completion.chunk",
                    "created": self.created,
                    "model": self.model,
                    "choices": [],
                    "usage": openai_usage(self.usage),
                }
            )
        ]
