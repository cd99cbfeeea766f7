"""Factories for the tests: every helper that creates configuration or usage rows.

Two kinds, named apart because they return different things:

- ``make_provider`` / ``make_mapping``: an instance the gateway can route to, validated with
  ``full_clean`` and pointing at the fake upstream (``tests.fakes.upstream``) unless told
  otherwise, returned as an ``Instance`` (the row plus its keys' plaintexts). Upstream API keys
  are unique per call so that the fake can switch behaviour per key and its log can tell keys
  apart.
- ``*_row`` and the other ``make_*`` helpers: plain rows with unique defaults, saved without
  validation, for admin, pricing and usage tests.

``make_vkey`` serves both and always returns a ``NewVirtualKey`` (the row and its plaintext).
"""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from django.utils import timezone

from gateway.keys.models import VirtualKey
from gateway.keys.services import virtual_key_create
from gateway.routing.table import Candidate
from gateway.usage.models import UsageRecord
from mappings.models import ModelPrice, ModelProviderMapping
from providers.models import Provider, ProviderKeyCredential
from providers.snapshot import ProviderSnapshot
from providers.types import KEYLESS_TYPES
from tests.fakes import wire_bedrock

_seq = itertools.count(1)

# Path under the fake's URL that each type's base_url points at.
FAKE_BASE_PATHS = {
    "openai": "/v1",
    "openai_compatible": "/v1",
    "ollama": "/v1",
    "azure_openai": "",
    "anthropic": "/v1",
    "gemini": "/v1beta",
    "bedrock": "",
    "vertex_ai": "/v1/projects/test-project/locations/us-central1",
}
# The provider model (Azure: deployment) a mapping uses unless told otherwise.
DEFAULT_MODELS = {
    "openai": "fake-gpt",
    "openai_compatible": "fake-gpt",
    "ollama": "fake-gpt",
    "azure_openai": "dep-chat",
    "anthropic": "claude-fake",
    "gemini": "gemini-fake",
    # A cross-region inference profile id: its ":" must travel URL-encoded in the path.
    "bedrock": "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
    "vertex_ai": "gemini-fake",
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
    if provider_type == "bedrock":
        fields.setdefault("region", "us-east-1")
    fields.setdefault("timeout", 10.0)
    fields.setdefault("max_retries", 0)
    provider = Provider(name=name, provider_type=provider_type, **fields)
    provider.full_clean()
    provider.save()
    if keys is None:
        keys = [] if provider_type in KEYLESS_TYPES else [{"name": "primary", "primary": True}]
    instance = Instance(provider=provider)
    for spec in keys:
        default = upstream_key(f"{name}-{spec['name']}")
        if provider_type == "bedrock":  # AWS credentials the fake's SigV4 check accepts
            default = wire_bedrock.credentials("AKIA" + secrets.token_hex(8).upper())
        api_key = spec.get("api_key", default)
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


# --- virtual keys ----------------------------------------------------------------------------


class NewVirtualKey(NamedTuple):
    """A virtual key as created: the row, and the plaintext shown only once."""

    row: VirtualKey
    plaintext: str


def make_vkey(
    name: str | None = None, *, models: list[str] | None = None, **fields: Any
) -> NewVirtualKey:
    """A virtual key (all aliases unless ``models``); ``fields`` go to ``virtual_key_create``."""
    row, plaintext = virtual_key_create(
        name=name or f"app-{secrets.token_hex(4)}", allowed_models=models, **fields
    )
    return NewVirtualKey(row, plaintext)


# --- plain rows (admin, pricing, usage) -------------------------------------------------------


def make_provider_row(**fields: Any) -> Provider:
    """A provider instance row (``openai`` with a unique name unless told otherwise)."""
    values: dict[str, Any] = {"name": f"provider-{next(_seq)}", "provider_type": "openai"}
    values.update(fields)
    return Provider.objects.create(**values)


def make_mock_provider(name: str | None = None) -> Provider:
    """A ``mock`` provider instance: answered in process, deterministic token counts."""
    return make_provider_row(name=name or f"mock-{next(_seq)}", provider_type="mock")


def make_key(provider: Provider, **fields: Any) -> ProviderKeyCredential:
    """An upstream API key row with a unique name and a recognisable secret."""
    values: dict[str, Any] = {
        "key_name": f"key-{next(_seq)}",
        "api_key": f"sk-test-{next(_seq):06d}-secretvalue-WXYZ",
    }
    values.update(fields)
    return ProviderKeyCredential.objects.create(provider=provider, **values)


def make_mapping_row(
    provider: Provider | None = None,
    *,
    alias: str = "gpt-4o",
    model: str = "gpt-4o",
    **fields: Any,
) -> ModelProviderMapping:
    """Map ``alias`` onto ``model`` of ``provider`` (a new ``openai`` instance if omitted)."""
    return ModelProviderMapping.objects.create(
        provider=provider or make_provider_row(),
        model_alias=alias,
        provider_model_id=model,
        **fields,
    )


def make_price(mapping: ModelProviderMapping | None = None, **fields: Any) -> ModelPrice:
    """A price for ``mapping`` (a new mapping if omitted): 2.5 in, 10 out per million."""
    values: dict[str, Any] = {
        "input_per_million": Decimal("2.5"),
        "output_per_million": Decimal("10"),
    }
    values.update(fields)
    return ModelPrice.objects.create(mapping=mapping or make_mapping_row(), **values)


def make_usage(provider: Provider, **fields: Any) -> UsageRecord:
    """A successful chat usage record on ``provider``, created now."""
    values: dict[str, Any] = {
        "request_id": f"req-{next(_seq)}",
        "created_at": timezone.now(),
        "endpoint": "chat",
        "status_code": 200,
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "cost": Decimal("0.0001"),
    }
    values.update(fields)
    return UsageRecord.objects.create(provider=provider, **values)


def provider_snapshot(**fields: Any) -> ProviderSnapshot:
    """An instance as the route table holds it, without a database row: neutral defaults
    (no keys, no headers, no limits), then ``fields``."""
    defaults: dict[str, Any] = {
        "id": 1,
        "name": "snapshot",
        "provider_type": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "api_version": "",
        "timeout": 5.0,
        "connect_timeout": 2.0,
        "max_retries": 0,
        "custom_headers": (),
        "forward_headers": frozenset(),
        "keys": (),
    }
    return ProviderSnapshot(**(defaults | fields))


def route_candidate(provider: ProviderSnapshot, **fields: Any) -> Candidate:
    """A route-table candidate onto ``provider``, without a database row: capabilities
    undeclared, no limits and no price, then ``fields``."""
    defaults: dict[str, Any] = {
        "mapping_id": 1,
        "alias": "m",
        "provider": provider,
        "provider_model": "gpt",
        "priority": 1,
        "weight": 1,
        "max_context_tokens": None,
        "max_output_tokens": None,
        "price": None,
    }
    capabilities = ("chat", "vision", "tools", "streaming", "embeddings", "json_mode")
    defaults |= {f"supports_{name}": None for name in capabilities}
    return Candidate(**(defaults | fields))
