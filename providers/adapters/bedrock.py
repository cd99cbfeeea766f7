"""AWS Bedrock runtime: ``Converse`` and ``ConverseStream`` for chat, ``InvokeModel`` for
Titan and Cohere embeddings, every request SigV4-signed (service ``bedrock``, the instance's
region) with the key's credentials (``providers.aws``).

Model ids, cross-region inference profile ids (``us.anthropic.claude-...``) and ARNs go in the
path URL-encoded, as the AWS SDKs send them (an ARN's ``/`` and ``:`` must not split the path).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
import orjson

from providers.adapters.base import (
    Adapter,
    StreamTranslator,
    UnsupportedOperation,
    UpstreamRequest,
    Usage,
)
from providers.aws import credentials_split, sigv4_headers
from providers.snapshot import KeySnapshot, ProviderSnapshot
from providers.translators.openai_bedrock import (
    bedrock_response_to_openai,
    openai_request_to_bedrock,
)
from providers.translators.openai_bedrock_stream import (
    EVENTSTREAM,
    BedrockStreamTranslator,
    eventstream_events,
)
from providers.translators.openai_content import openai_embeddings
from providers.types import ProviderType

_JSON = "application/json"


class BedrockAdapter(Adapter):
    """Bedrock instances (one AWS region each; keys are AWS credentials)."""

    provider_type: ClassVar[str] = ProviderType.BEDROCK
    openai_wire: ClassVar[bool] = False

    def _signed(
        self,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        path: str,
        payload: dict[str, Any] | None,
        accept: str = _JSON,
        base: str = "",
    ) -> UpstreamRequest:
        """A request to ``path`` signed for the key (a POST of ``payload``, a GET without)."""
        if not base:
            base = key.base_url if key is not None and key.base_url else provider.base_url
        url = f"{base}{path}"
        method = "GET" if payload is None else "POST"
        body = b"" if payload is None else orjson.dumps(payload)
        headers = (
            {"accept": accept} if payload is None else {"content-type": _JSON, "accept": accept}
        )
        creds = credentials_split(key.api_key) if key is not None else None
        if creds is not None:
            headers = sigv4_headers(
                method=method,
                url=url,
                headers=headers,
                body=body,
                credentials=creds,
                region=provider.region,
            )
        return UpstreamRequest(method=method, url=url, headers=headers, body=body)

    @staticmethod
    def _model_path(model: str) -> str:
        return "/model/" + quote(model, safe="")

    # -- chat -------------------------------------------------------------------------------
    def chat_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
        stream: bool,
    ) -> UpstreamRequest:
        action = "/converse-stream" if stream else "/converse"
        return self._signed(
            provider,
            key,
            self._model_path(model) + action,
            openai_request_to_bedrock(body),
            accept=EVENTSTREAM if stream else _JSON,
        )

    def chat_response(self, payload: bytes) -> tuple[bytes, Usage]:
        data = orjson.loads(payload)
        answer, usage = bedrock_response_to_openai(data if isinstance(data, dict) else {})
        return orjson.dumps(answer), usage

    def chat_stream(self, *, include_usage: bool) -> StreamTranslator:
        return BedrockStreamTranslator(include_usage=include_usage)

    def stream_events(self, response: httpx.Response) -> AsyncIterator[Any]:
        return eventstream_events(response)

    # -- embeddings -------------------------------------------------------------------------
    def embeddings_request(
        self,
        *,
        provider: ProviderSnapshot,
        key: KeySnapshot | None,
        model: str,
        body: dict[str, Any],
    ) -> UpstreamRequest:
        raw = body.get("input")
        texts = [raw] if isinstance(raw, str) else raw
        if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
            raise UnsupportedOperation("Bedrock embeddings take input as a string or strings")
        name = model.rpartition("/")[2]  # an inference profile ARN ends in the model id
        bare = name.split(".", 1)[1] if name.split(".", 1)[0] in ("us", "eu", "apac") else name
        payload: dict[str, Any]
        if bare.startswith("amazon.titan-embed"):
            if len(texts) != 1:
                raise UnsupportedOperation(
                    "Titan embedding models take one input per request: send one string"
                )
            payload = {"inputText": texts[0]}
            if body.get("dimensions"):
                payload["dimensions"] = int(body["dimensions"])
        elif bare.startswith("cohere.embed"):
            payload = {"texts": texts, "input_type": "search_document"}
        else:
            raise UnsupportedOperation(
                f"{model} is not a Bedrock embedding model this gateway knows "
                "(amazon.titan-embed-*, cohere.embed-*)"
            )
        return self._signed(provider, key, self._model_path(model) + "/invoke", payload)

    def embeddings_response(self, payload: bytes) -> tuple[bytes, Usage]:
        data = orjson.loads(payload)
        if not isinstance(data, dict):
            raise ValueError("embedding answer is not an object")
        if "embedding" in data:  # Titan: one vector, its token count
            vectors = [data["embedding"]]
            tokens = int(data.get("inputTextTokenCount") or 0)
        else:  # Cohere: a vector per text, no token count
            vectors = list(data.get("embeddings") or [])
            tokens = 0
        return openai_embeddings(vectors, tokens)

    # -- health -----------------------------------------------------------------------------
    def models_request(
        self, *, provider: ProviderSnapshot, key: KeySnapshot | None
    ) -> UpstreamRequest:
        """``ListFoundationModels`` on the control-plane host (``bedrock.`` where the runtime
        is ``bedrock-runtime.``; a private endpoint serves both): free, and proves the key."""
        base = key.base_url if key is not None and key.base_url else provider.base_url
        base = base.replace("://bedrock-runtime.", "://bedrock.", 1)
        return self._signed(provider, key, "/foundation-models", None, base=base)

    # -- errors -----------------------------------------------------------------------------
    def error_details(self, status: int, payload: bytes) -> tuple[str, str, str | None]:
        """Bedrock answers ``{"message": ...}`` (the type is in ``x-amzn-ErrorType``, which
        the status already tells the failover rules)."""
        try:
            data = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return super().error_details(status, payload)
        if isinstance(data, dict) and isinstance(data.get("message") or data.get("Message"), str):
            message = str(data.get("message") or data.get("Message"))
            return message, "upstream_error", None
        return super().error_details(status, payload)
