"""OpenAI and every upstream that speaks its wire format (compatible servers, Ollama, Azure)."""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from providers.adapters.base import Adapter, StreamTranslator, UpstreamRequest, Usage
from providers.presets import preset_get
from providers.snapshot import KeySnapshot, ProviderSnapshot
from providers.types import ProviderType

_JSON = "application/json"


class OpenAIStreamTranslator(StreamTranslator):
    """Relays OpenAI chunks as they are (no re-serialisation) and watches for usage.

    The gateway always asks upstream for ``stream_options.include_usage``; the extra final
    chunk (``choices: []`` plus ``usage``) is dropped when the client did not ask for it.
    """

    def feed(self, data: str, event: str = "") -> list[bytes]:
        if data == "[DONE]":
            return self.finish()
        chunk = self.openai_chunk(data, error_type="upstream_error")
        if chunk is None:
            return []
        usage = chunk.get("usage")
        choices = chunk.get("choices")
        if usage:
            self.usage = Usage.from_openai(usage)
            if not choices and not self.include_usage:
                return []
            if not self.include_usage:
                # Usage riding on a content chunk (some compatible servers): strip it.
                chunk = {k: v for k, v in chunk.items() if k != "usage"}
                self.started = True
                return [b"data: " + orjson.dumps(chunk) + b"\n\n"]
        if choices and not self.started:
            # A role-only first chunk is not content yet: until real content (or a finish)
            # arrives, an error may still fail over to another instance.
            for choice in choices:
                delta = choice.get("delta") or {}
                if (
                    delta.get("content")
                    or delta.get("tool_calls")
                    or delta.get("function_call")
                    or delta.get("refusal")
                    or choice.get("finish_reason")
                ):
                    self.started = True
                    break
        # Azure sends a first chunk with ``choices: []`` (prompt filter results): harmless,
        # passed through like any other chunk.
        return [b"data: " + data.encode() + b"\n\n"]


class OpenAIAdapter(Adapter):
    """``{base}/chat/completions`` with a Bearer key and optional OpenAI-Organization."""

    provider_type: ClassVar[str] = ProviderType.OPENAI
    responses_native: ClassVar[bool] = True

    def _headers(self, key: KeySnapshot | None) -> dict[str, str]:
        headers = {"content-type": _JSON, "accept": _JSON}
        if key is not None and key.api_key:
            headers["authorization"] = f"Bearer {key.api_key}"
        if key is not None and key.organization:
            headers["openai-organization"] = key.organization
        return headers

    def _headers_for(self, provider: ProviderSnapshot, key: KeySnapshot | None) -> dict[str, str]:
        return self._headers(key)

    def _prepare(self, provider: ProviderSnapshot, body: dict[str, Any]) -> dict[str, Any]:
        """The client's body as this instance accepts it (presets drop refused fields)."""
        return body

    def _asks_stream_usage(self, provider: ProviderSnapshot) -> bool:
        return True

    def _base(self, provider: ProviderSnapshot, key: KeySnapshot | None) -> str:
        return key.base_url if key is not None and key.base_url else provider.base_url

    def _url(
        self, provider: ProviderSnapshot, key: KeySnapshot | None, path: str, model: str
    ) -> str:
        return f"{self._base(provider, key)}/{path}"

    def _params(self, provider: ProviderSnapshot) -> dict[str, str]:
        return {}

    def _body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        out = dict(body)
        out["model"] = model
        return out

    def chat_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
        stream: bool,
    ) -> UpstreamRequest:
        out = self._body(self._prepare(provider, body), model)
        if stream:
            out["stream"] = True
            if self._asks_stream_usage(provider):
                options = dict(out.get("stream_options") or {})
                options["include_usage"] = True
                out["stream_options"] = options
        headers = self._headers_for(provider, key)
        if stream:
            headers["accept"] = "text/event-stream"
        return UpstreamRequest(
            method="POST",
            url=self._url(provider, key, "chat/completions", model),
            headers=headers,
            body=orjson.dumps(out),
            params=self._params(provider),
        )

    def _responses_url(self, provider: ProviderSnapshot, key: KeySnapshot | None) -> str:
        return f"{self._base(provider, key)}/responses"

    def responses_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
        stream: bool,
    ) -> UpstreamRequest:
        """A native Responses API request: the body as the client sent it, with the instance's
        model (Azure: the deployment) as ``model``."""
        out = dict(body)
        out["model"] = model
        headers = self._headers(key)
        if stream:
            out["stream"] = True
            headers["accept"] = "text/event-stream"
        return UpstreamRequest(
            method="POST",
            url=self._responses_url(provider, key),
            headers=headers,
            body=orjson.dumps(out),
            params=self._params(provider),
        )

    def chat_response(self, payload: bytes) -> tuple[bytes, Usage]:
        data = orjson.loads(payload)
        if not isinstance(data, dict):
            return payload, Usage()
        return payload, Usage.from_openai(data.get("usage")).named(data.get("model"))

    def chat_stream(self, *, include_usage: bool) -> StreamTranslator:
        return OpenAIStreamTranslator(include_usage=include_usage)

    def embeddings_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
    ) -> UpstreamRequest:
        return UpstreamRequest(
            method="POST",
            url=self._url(provider, key, "embeddings", model),
            headers=self._headers_for(provider, key),
            body=orjson.dumps(self._body(self._prepare(provider, body), model)),
            params=self._params(provider),
        )

    #: Where the model list lives under the base URL (the health probe's target).
    models_path: ClassVar[str] = "models"

    def _models_path(self, provider: ProviderSnapshot) -> str:
        return self.models_path

    def models_request(
        self, *, provider: ProviderSnapshot, key: KeySnapshot | None
    ) -> UpstreamRequest:
        headers = self._headers_for(provider, key)
        headers.pop("content-type", None)
        return UpstreamRequest(
            method="GET",
            url=f"{self._base(provider, key)}/{self._models_path(provider)}",
            headers=headers,
            params=self._params(provider),
        )


class OpenAICompatibleAdapter(OpenAIAdapter):
    """Any server that speaks OpenAI's API (vLLM, LM Studio, Groq, ...). A preset on the
    instance (``providers.presets``) says which fields that cloud refuses, its auth header and
    its model-list path; without one, the body passes as the client sent it."""

    provider_type: ClassVar[str] = ProviderType.OPENAI_COMPATIBLE
    responses_native: ClassVar[bool] = False

    def _headers_for(self, provider: ProviderSnapshot, key: KeySnapshot | None) -> dict[str, str]:
        headers = self._headers(key)
        preset = preset_get(provider.preset)
        if preset is not None and preset.auth_header != "authorization":
            value = headers.pop("authorization", "")
            if value:
                headers[preset.auth_header] = preset.auth_prefix + value.removeprefix("Bearer ")
        return headers

    def _prepare(self, provider: ProviderSnapshot, body: dict[str, Any]) -> dict[str, Any]:
        preset = preset_get(provider.preset)
        return body if preset is None else preset.fields_for_request(body)[0]

    def _asks_stream_usage(self, provider: ProviderSnapshot) -> bool:
        preset = preset_get(provider.preset)
        return preset is None or "stream_options" not in preset.refuses

    def _models_path(self, provider: ProviderSnapshot) -> str:
        preset = preset_get(provider.preset)
        return preset.models_path if preset is not None and preset.models_path else "models"


class OllamaAdapter(OpenAIAdapter):
    """Ollama's OpenAI-compatible endpoint; a key is optional."""

    provider_type: ClassVar[str] = ProviderType.OLLAMA
    responses_native: ClassVar[bool] = False


class AzureOpenAIAdapter(OpenAIAdapter):
    """Azure OpenAI: deployment in the path, ``api-version`` query, ``api-key`` header."""

    provider_type: ClassVar[str] = ProviderType.AZURE_OPENAI
    models_path: ClassVar[str] = "openai/models"

    def _headers(self, key: KeySnapshot | None) -> dict[str, str]:
        headers = {"content-type": _JSON, "accept": _JSON}
        if key is not None and key.api_key:
            headers["api-key"] = key.api_key
        return headers

    def _url(
        self, provider: ProviderSnapshot, key: KeySnapshot | None, path: str, model: str
    ) -> str:
        return f"{self._base(provider, key)}/openai/deployments/{model}/{path}"

    def _params(self, provider: ProviderSnapshot) -> dict[str, str]:
        return {"api-version": provider.api_version}

    def _responses_url(self, provider: ProviderSnapshot, key: KeySnapshot | None) -> str:
        # The Responses API is not under the deployment: the deployment goes in ``model``.
        return f"{self._base(provider, key)}/openai/responses"

    def _body(self, body: dict[str, Any], model: str) -> dict[str, Any]:
        # The deployment in the URL selects the model; Azure ignores a body ``model``.
        return dict(body)
