"""Anthropic's Messages API (``{base}/messages``, ``x-api-key`` + ``anthropic-version``).

The translation lives in pure modules under :mod:`providers.translators`, one per direction:

- ``openai_anthropic_request`` / ``_response`` / ``_stream``: OpenAI chat-completions request
  -> Messages request, and the Messages answer (whole or streamed) back to OpenAI's format;
- ``anthropic_openai`` / ``anthropic_openai_stream``: the reverse, for clients calling the
  gateway in Anthropic's format and served by an OpenAI-type instance.

``passthrough`` here relays Anthropic-format clients to Anthropic instances natively.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import orjson

from providers import betas
from providers.adapters.anthropic.passthrough import FORWARDED_HEADERS
from providers.adapters.base import Adapter, StreamTranslator, UpstreamRequest, Usage
from providers.snapshot import KeySnapshot, ProviderSnapshot
from providers.translators.anthropic_openai import (
    anthropic_request_to_openai,
    openai_response_to_anthropic,
)
from providers.translators.anthropic_openai_stream import OpenAIToAnthropicStream
from providers.translators.openai_anthropic_request import openai_request_to_anthropic
from providers.translators.openai_anthropic_response import (
    anthropic_response_to_openai,
    usage_from_anthropic,
)
from providers.translators.openai_anthropic_stream import AnthropicStreamTranslator
from providers.types import ProviderType

#: The API version the translation is written against; newer features arrive by opting in
#: (an ``anthropic-beta`` custom header on the instance), never by a silent format change.
ANTHROPIC_VERSION = "2023-06-01"
_JSON = "application/json"


class AnthropicAdapter(Adapter):
    """Anthropic instances: every chat request and answer is translated (``openai_wire`` off);
    no embeddings (the base class refuses them)."""

    provider_type: ClassVar[str] = ProviderType.ANTHROPIC
    openai_wire: ClassVar[bool] = False

    def _base(self, provider: ProviderSnapshot, key: KeySnapshot | None) -> str:
        return key.base_url if key is not None and key.base_url else provider.base_url

    def _headers(self, key: KeySnapshot | None) -> dict[str, str]:
        headers = {"anthropic-version": ANTHROPIC_VERSION, "accept": _JSON}
        if key is not None and key.api_key:
            headers["x-api-key"] = key.api_key
        return headers

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
        headers["content-type"] = _JSON
        if stream:
            headers["accept"] = "text/event-stream"
        return UpstreamRequest(
            method="POST",
            url=f"{self._base(provider, key)}/messages",
            headers=headers,
            body=orjson.dumps(openai_request_to_anthropic(body, model=model, stream=stream)),
        )

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
        """A native Messages API request (``body`` already in Anthropic's format, model set):
        the client's ``anthropic-version`` goes along, and of its ``anthropic-beta`` the flags
        the instance admits (providers.betas)."""
        headers = self._headers(key)
        headers["content-type"] = _JSON
        for name in FORWARDED_HEADERS:
            value = client_headers.get(name)
            if value and name == betas.HEADER:
                value = betas.filter_betas(value, provider.anthropic_beta_allow)
            if value:
                headers[name] = value
        if stream:
            headers["accept"] = "text/event-stream"
        return UpstreamRequest(
            method="POST",
            url=f"{self._base(provider, key)}/{path}",
            headers=headers,
            body=orjson.dumps(body),
        )

    def chat_response(self, payload: bytes) -> tuple[bytes, Usage]:
        data = orjson.loads(payload)
        if not isinstance(data, dict):
            data = {}
        usage = usage_from_anthropic(data.get("usage")).named(data.get("model"))
        return orjson.dumps(anthropic_response_to_openai(data)), usage

    def chat_stream(self, *, include_usage: bool) -> StreamTranslator:
        return AnthropicStreamTranslator(include_usage=include_usage)

    def models_request(
        self, *, provider: ProviderSnapshot, key: KeySnapshot | None
    ) -> UpstreamRequest:
        return UpstreamRequest(
            method="GET", url=f"{self._base(provider, key)}/models", headers=self._headers(key)
        )

    def error_details(self, status: int, payload: bytes) -> tuple[str, str, str | None]:
        """Anthropic errors read ``{"type": "error", "error": {"type", "message"}}``."""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            data = None
        err = data.get("error") if isinstance(data, dict) else None
        if isinstance(data, dict) and data.get("type") == "error" and isinstance(err, dict):
            message = str(err.get("message") or f"upstream returned HTTP {status}")
            return message, str(err.get("type") or "api_error"), None
        return super().error_details(status, payload)


__all__ = [
    "ANTHROPIC_VERSION",
    "AnthropicAdapter",
    "AnthropicStreamTranslator",
    "OpenAIToAnthropicStream",
    "anthropic_request_to_openai",
    "anthropic_response_to_openai",
    "openai_request_to_anthropic",
    "openai_response_to_anthropic",
]
