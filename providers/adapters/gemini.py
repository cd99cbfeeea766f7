"""Google AI Studio's Gemini API: ``{base}/models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``, the key in ``x-goog-api-key`` (never in the URL, which
ends up in logs). Chat is translated both ways (``providers.translators.openai_gemini``);
embeddings go to ``:batchEmbedContents`` and come back in OpenAI's shape."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from providers.adapters.base import Adapter, StreamTranslator, UpstreamRequest, Usage
from providers.snapshot import KeySnapshot, ProviderSnapshot
from providers.translators.openai_content import embedding_inputs, openai_embeddings
from providers.translators.openai_gemini import gemini_response_to_openai, openai_request_to_gemini
from providers.translators.openai_gemini_stream import GeminiStreamTranslator
from providers.types import ProviderType

_JSON = "application/json"


class GeminiAdapter(Adapter):
    """Gemini instances (AI Studio API keys)."""

    provider_type: ClassVar[str] = ProviderType.GEMINI
    openai_wire: ClassVar[bool] = False

    def _base(self, provider: ProviderSnapshot, key: KeySnapshot | None) -> str:
        return key.base_url if key is not None and key.base_url else provider.base_url

    def _headers(self, key: KeySnapshot | None) -> dict[str, str]:
        headers = {"content-type": _JSON, "accept": _JSON}
        if key is not None and key.api_key:
            headers["x-goog-api-key"] = key.api_key
        return headers

    @staticmethod
    def _model(model: str) -> str:
        return model.removeprefix("models/")

    def chat_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
        stream: bool,
    ) -> UpstreamRequest:
        headers = self._headers(key)
        method = "streamGenerateContent" if stream else "generateContent"
        if stream:
            headers["accept"] = "text/event-stream"
        return UpstreamRequest(
            method="POST",
            url=f"{self._base(provider, key)}/models/{self._model(model)}:{method}",
            headers=headers,
            body=orjson.dumps(openai_request_to_gemini(body)),
            params={"alt": "sse"} if stream else {},
        )

    def chat_response(self, payload: bytes) -> tuple[bytes, Usage]:
        data = orjson.loads(payload)
        data = data if isinstance(data, dict) else {}
        answer, usage = gemini_response_to_openai(data, model="")
        return orjson.dumps(answer), usage.named(data.get("modelVersion"))

    def chat_stream(self, *, include_usage: bool) -> StreamTranslator:
        return GeminiStreamTranslator(include_usage=include_usage)

    def embeddings_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
    ) -> UpstreamRequest:
        items = embedding_inputs(body)
        name = f"models/{self._model(model)}"
        requests: list[dict[str, Any]] = [
            {"model": name, "content": {"parts": [{"text": str(text)}]}} for text in items
        ]
        if body.get("dimensions"):
            for request in requests:
                request["outputDimensionality"] = body["dimensions"]
        return UpstreamRequest(
            method="POST",
            url=f"{self._base(provider, key)}/{name}:batchEmbedContents",
            headers=self._headers(key),
            body=orjson.dumps({"requests": requests}),
        )

    def embeddings_response(self, payload: bytes) -> tuple[bytes, Usage]:
        data = orjson.loads(payload)
        vectors = data.get("embeddings") if isinstance(data, dict) else None
        # Gemini's embedding answer reports no token count.
        return openai_embeddings((v.get("values") or [] for v in vectors or []), 0)

    def models_request(
        self, *, provider: ProviderSnapshot, key: KeySnapshot | None
    ) -> UpstreamRequest:
        headers = self._headers(key)
        headers.pop("content-type", None)
        return UpstreamRequest(
            method="GET", url=f"{self._base(provider, key)}/models", headers=headers
        )
