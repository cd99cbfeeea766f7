"""Configuration rows for request-path tests: provider instances with keys, mappings, app keys.

Instances point at the fake upstream (``tests.fakes.upstream``) unless told otherwise. Upstream
API keys are unique per call so that the fake can switch behaviour per key and its log can tell
keys apart.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from gateway.models import VirtualKey
from gateway.services import virtual_key_create
from mappings.models import ModelProviderMapping
from providers.models import Provider, ProviderKeyCredential
from providers.types import KEYLESS_TYPES

# Path under the fake's URL that each type's base_url points at.
FAKE_BASE_PATHS = {
    "openai": "/v1",
    "openai_compatible": "/v1",
    "ollama": "/v1",
    "azure_openai": "",
    "anthropic": "/v1",
}
# The provider model (Azure: deployment) a mapping uses unless told otherwise.
DEFAULT_MODELS = {
    "openai": "fake-gpt",
    "openai_compatible": "fake-gpt",
    "ollama": "fake-gpt",
    "azure_openai": "dep-chat",
    "anthropic": "claude-fake",
    "mock": "mock-model",
}
AZURE_API_VERSION = "2024-10-21"


@dataclass
class Instance:
    """A provider instance as created, with its keys' plaintexts by key name."""

    provider: Provider
    keys: dict[str, ProviderKeyCredential] = field(default_factory=dict)
    api_keys: dict[str, str] = field(default_factory=dict)

    @property
    def id(self) -> int:
        return self.provider.id

    @property
    def name(self) -> str:
        return self.provider.name

    @property
    def api_key(self) -> str:
        """The first key's plaintext (the primary, as created by default)."""
        return next(iter(self.api_keys.values()))


def upstream_key(label: str) -> str:
    """A unique, recognisable upstream API key."""
    return f"sk-up-{label}-{secrets.token_hex(6)}"


def make_provider(
    name: str,
    provider_type: str = "openai",
    *,
    upstream_url: str | None = None,
    keys: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> Instance:
    """Create an instance (validated with ``full_clean``) and its keys.

    ``keys``: dicts with ``name`` and optionally ``api_key``, ``account_group``, ``primary``,
    ``base_url``, ``organization``, ``enabled``. Default: one primary key (none for keyless
    types). Unless given, ``base_url`` points at ``upstream_url`` (the fake), ``timeout`` is 10 s
    and ``max_retries`` 0 (tests opt into retries).
    """
    if "base_url" not in fields and provider_type != "mock":
        if upstream_url is None:
            raise ValueError("give upstream_url (the fake's) or base_url")
        fields["base_url"] = upstream_url + FAKE_BASE_PATHS[provider_type]
    if provider_type == "azure_openai":
        fields.setdefault("api_version", AZURE_API_VERSION)
    fields.setdefault("timeout", 10.0)
    fields.setdefault("max_retries", 0)
    provider = Provider(name=name, provider_type=provider_type, **fields)
    provider.full_clean()
    provider.save()
    if keys is None:
        keys = [] if provider_type in KEYLESS_TYPES else [{"name": "primary", "primary": True}]
    instance = Instance(provider=provider)
    for spec in keys:
        api_key = spec.get("api_key", upstream_key(f"{name}-{spec['name']}"))
        row = ProviderKeyCredential(
            provider=provider,
            key_name=spec["name"],
            api_key=api_key,
            account_group=spec.get("account_group", 0),
            is_primary=spec.get("primary", False),
            is_enabled=spec.get("enabled", True),
            base_url=spec.get("base_url", ""),
            organization=spec.get("organization", ""),
        )
        row.full_clean()
        row.save()
        instance.keys[spec["name"]] = row
        instance.api_keys[spec["name"]] = api_key
    return instance


def make_mapping(
    alias: str, instance: Instance, model: str | None = None, **fields: Any
) -> ModelProviderMapping:
    """Map ``alias`` onto ``instance`` (tools declared; the other capabilities undeclared)."""
    fields.setdefault("supports_tools", True)
    mapping = ModelProviderMapping(
        model_alias=alias,
        provider=instance.provider,
        provider_model_id=model or DEFAULT_MODELS[instance.provider.provider_type],
        **fields,
    )
    mapping.full_clean()
    mapping.save()
    return mapping


def make_vkey(
    name: str | None = None, *, models: list[str] | None = None, **fields: Any
) -> tuple[VirtualKey, str]:
    """A virtual key (all aliases unless ``models``); returns the row and its plaintext."""
    return virtual_key_create(
        name=name or f"app-{secrets.token_hex(4)}", allowed_models=models, **fields
    )
