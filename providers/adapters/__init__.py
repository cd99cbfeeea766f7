"""Adapter registry: provider type -> adapter, loaded lazily (healthchecks.io style).

Adding a provider type: write ``providers/adapters/<type>.py`` with an ``Adapter`` subclass,
add it to ``_REGISTRY`` below and to ``providers.types.ProviderType`` (see CONTRIBUTING.md).
"""

from __future__ import annotations

from importlib import import_module

from providers.adapters.base import (
    Adapter,
    StreamTranslator,
    UnsupportedOperation,
    UpstreamRequest,
    Usage,
)

_REGISTRY: dict[str, str] = {
    "openai": "providers.adapters.openai:OpenAIAdapter",
    "openai_compatible": "providers.adapters.openai:OpenAICompatibleAdapter",
    "ollama": "providers.adapters.openai:OllamaAdapter",
    "azure_openai": "providers.adapters.openai:AzureOpenAIAdapter",
    "anthropic": "providers.adapters.anthropic:AnthropicAdapter",
    "gemini": "providers.adapters.gemini:GeminiAdapter",
    "bedrock": "providers.adapters.bedrock:BedrockAdapter",
    "vertex_ai": "providers.adapters.vertex:VertexAdapter",
    "mock": "providers.adapters.mock:MockAdapter",
}
_instances: dict[str, Adapter] = {}


def get_adapter(provider_type: str) -> Adapter:
    """The (stateless, shared) adapter for ``provider_type``; KeyError when unknown."""
    adapter = _instances.get(provider_type)
    if adapter is None:
        module_name, _, cls_name = _REGISTRY[provider_type].partition(":")
        adapter = getattr(import_module(module_name), cls_name)()
        _instances[provider_type] = adapter
    return adapter


__all__ = [
    "Adapter",
    "StreamTranslator",
    "UnsupportedOperation",
    "UpstreamRequest",
    "Usage",
    "get_adapter",
]
