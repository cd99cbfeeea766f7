"""Google Vertex AI: Gemini and Anthropic models of one project and location.

The publisher is chosen by model name: ``claude*`` models are Anthropic's (``:rawPredict`` /
``:streamRawPredict`` with a Messages body lacking ``model`` and carrying
``anthropic_version``), every other model is Google's (``:generateContent`` /
``:streamGenerateContent?alt=sse`` in Gemini's wire format; text-embedding models through
``:predict``). Translation reuses the anthropic and gemini adapters' translators. Auth is a
bearer token minted from the key's service-account JSON at send time (providers.vertex_auth).
Answers are read by their shape, so one stream translator serves both publishers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from providers import betas
from providers.adapters.anthropic.passthrough import AnthropicPassthroughStream
from providers.adapters.base import Adapter, StreamTranslator, UpstreamRequest, Usage
from providers.snapshot import KeySnapshot, ProviderSnapshot
from providers.translators.anthropic_openai_stream import OpenAIToAnthropicStream
from providers.translators.chained_stream import ChainedStream
from providers.translators.openai_anthropic_request import openai_request_to_anthropic
from providers.translators.openai_anthropic_response import (
    anthropic_response_to_openai,
    usage_from_anthropic,
)
from providers.translators.openai_anthropic_stream import AnthropicStreamTranslator
from providers.translators.openai_content import embedding_inputs, openai_embeddings
from providers.translators.openai_gemini import gemini_response_to_openai, openai_request_to_gemini
from providers.translators.openai_gemini_stream import GeminiStreamTranslator
from providers.types import ProviderType
from providers.vertex_auth import TOKENS

#: The Messages API version Vertex's Anthropic models take in the body (not a header).
VERTEX_ANTHROPIC_VERSION = "vertex-2023-10-16"
_JSON = "application/json"


def is_anthropic_model(model: str) -> bool:
    """Whether ``model`` is served by the Anthropic publisher on Vertex."""
    return _model(model).startswith("claude")


def _model(model: str) -> str:
    return model.removeprefix("models/")


class VertexStream(StreamTranslator):
    """Picks the Anthropic or the Gemini translator from the first event's shape."""

    def __init__(self, *, include_usage: bool) -> None:
        super().__init__(include_usage=include_usage)
        self.inner: StreamTranslator | None = None

    def feed(self, data: str, event: str = "") -> list[bytes]:
        if self.inner is None:
            payload = self.event_object(data)
            if payload is None and self.error is not None:
                return []
            anthropic = bool(event) or (payload is not None and "type" in payload)
            self.inner = (
                AnthropicStreamTranslator(include_usage=self.include_usage)
                if anthropic
                else GeminiStreamTranslator(include_usage=self.include_usage)
            )
        out = self.inner.feed(data, event)
        self._sync()
        return out

    def _sync(self) -> None:
        if self.inner is not None:
            self.error = self.inner.error
            self.usage = self.inner.usage
            self.served_model = self.inner.served_model
            self.started = self.inner.started
            self.done = self.inner.done

    def finish(self) -> list[bytes]:
        if self.inner is None:
            return super().finish()
        out = self.inner.finish()
        self._sync()
        return out


class VertexMessagesStream(VertexStream):
    """Anthropic Messages clients: Claude's events relayed as they are, Gemini's translated
    (upstream events -> chat chunks -> Messages events)."""

    def __init__(self, *, model: str) -> None:
        super().__init__(include_usage=True)
        self.model = model

    def feed(self, data: str, event: str = "") -> list[bytes]:
        if self.inner is None:
            payload = self.event_object(data)
            if payload is None and self.error is not None:
                return []
            if bool(event) or (payload is not None and "type" in payload):
                self.inner = AnthropicPassthroughStream()
            else:
                self.inner = ChainedStream(
                    GeminiStreamTranslator(include_usage=True),
                    OpenAIToAnthropicStream(model=self.model),
                )
        return super().feed(data, event)

    def fail_events(self, message: str, etype: str, code: str | None) -> list[bytes] | None:
        return self.inner.fail_events(message, etype, code) if self.inner else None


class VertexAdapter(Adapter):
    """Vertex AI instances (service-account keys, project and location per instance)."""

    provider_type: ClassVar[str] = ProviderType.VERTEX_AI
    openai_wire: ClassVar[bool] = False

    def _base(self, provider: ProviderSnapshot, key: KeySnapshot | None) -> str:
        return key.base_url if key is not None and key.base_url else provider.base_url

    def _request(
        self, key: KeySnapshot | None, url: str, body: dict[str, Any] | None, *, stream: bool
    ) -> UpstreamRequest:
        headers = {"accept": "text/event-stream" if stream else _JSON}
        if body is not None:
            headers["content-type"] = _JSON
        request = UpstreamRequest(
            method="POST" if body is not None else "GET",
            url=url,
            headers=headers,
            body=orjson.dumps(body) if body is not None else b"",
        )
        if key is not None and key.api_key:
            account = key.api_key

            async def authorize() -> dict[str, str]:
                return {"authorization": f"Bearer {await TOKENS.token(account)}"}

            request.authorize = authorize
        return request

    def chat_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
        stream: bool,
    ) -> UpstreamRequest:
        name = _model(model)
        if is_anthropic_model(name):
            payload = openai_request_to_anthropic(body, model=name, stream=stream)
            payload.pop("model", None)
            payload["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
            action = "streamRawPredict" if stream else "rawPredict"
            url = f"{self._base(provider, key)}/publishers/anthropic/models/{name}:{action}"
            return self._request(key, url, payload, stream=stream)
        action = "streamGenerateContent" if stream else "generateContent"
        url = f"{self._base(provider, key)}/publishers/google/models/{name}:{action}"
        request = self._request(key, url, openai_request_to_gemini(body), stream=stream)
        if stream:
            request.params = {"alt": "sse"}
        return request

    def messages_native(self, model: str) -> bool:
        return is_anthropic_model(model)

    def native_answer(self, payload: bytes) -> bool:
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return False
        return isinstance(data, dict) and data.get("type") == "message"

    def messages_stream(self, *, model: str) -> StreamTranslator | None:
        return VertexMessagesStream(model=model)

    def messages_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        body: dict[str, Any],
        stream: bool,
        client_headers: Mapping[str, str],
        path: str = "messages",
    ) -> UpstreamRequest:
        """A native Messages request for a Claude model: the body as the client sent it, the
        model moved into the URL and the Vertex API version into the body; of the client's
        ``anthropic-beta`` the flags the instance admits."""
        name = _model(str(body.get("model") or ""))
        payload = {k: v for k, v in body.items() if k != "model"}
        payload["anthropic_version"] = VERTEX_ANTHROPIC_VERSION
        action = "streamRawPredict" if stream else "rawPredict"
        url = f"{self._base(provider, key)}/publishers/anthropic/models/{name}:{action}"
        request = self._request(key, url, payload, stream=stream)
        flags = client_headers.get(betas.HEADER)
        if flags:
            flags = betas.filter_betas(flags, provider.anthropic_beta_allow)
            if flags:
                request.headers[betas.HEADER] = flags
        return request

    def chat_response(self, payload: bytes) -> tuple[bytes, Usage]:
        data = orjson.loads(payload)
        if not isinstance(data, dict):
            data = {}
        if data.get("type") == "message":
            answer = anthropic_response_to_openai(data)
            usage = usage_from_anthropic(data.get("usage")).named(data.get("model"))
            return orjson.dumps(answer), usage
        answer, usage = gemini_response_to_openai(data, model="")
        return orjson.dumps(answer), usage.named(data.get("modelVersion"))

    def chat_stream(self, *, include_usage: bool) -> StreamTranslator:
        return VertexStream(include_usage=include_usage)

    def embeddings_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
    ) -> UpstreamRequest:
        items = embedding_inputs(body)
        payload: dict[str, Any] = {"instances": [{"content": str(text)} for text in items]}
        if body.get("dimensions"):
            payload["parameters"] = {"outputDimensionality": body["dimensions"]}
        url = f"{self._base(provider, key)}/publishers/google/models/{_model(model)}:predict"
        return self._request(key, url, payload, stream=False)

    def embeddings_response(self, payload: bytes) -> tuple[bytes, Usage]:
        data = orjson.loads(payload)
        predictions = data.get("predictions") if isinstance(data, dict) else None
        vectors = []
        tokens = 0
        for prediction in predictions or []:
            embedding = (prediction or {}).get("embeddings") or {}
            tokens += int((embedding.get("statistics") or {}).get("token_count") or 0)
            vectors.append(embedding.get("values") or [])
        return openai_embeddings(vectors, tokens)

    def models_request(
        self, *, provider: ProviderSnapshot, key: KeySnapshot | None
    ) -> UpstreamRequest:
        # Listing the location's endpoints is free and proves the token and the project.
        return self._request(key, f"{self._base(provider, key)}/endpoints", None, stream=False)

    def error_details(self, status: int, payload: bytes) -> tuple[str, str, str | None]:
        """Google errors read ``{"error": {"code", "message", "status"}}``; Anthropic models
        may answer in Anthropic's ``{"type": "error", "error": {"type", "message"}}``."""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return super().error_details(status, payload)
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(err, dict):
            message = str(err.get("message") or f"upstream returned HTTP {status}")
            etype = err.get("type") or err.get("status") or "upstream_error"
            return message, str(etype), None
        return super().error_details(status, payload)
