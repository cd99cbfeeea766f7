"""A configuration in the shape of a typical multi-provider setup.

Two OpenAI accounts (production with keys in two account groups, development), Azure OpenAI
with its endpoint from the environment, Anthropic, a local Ollama, custom headers with
``${VAR}`` references, prices, virtual keys and routing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# Values the environment supplies. The literal secrets below appear in the file itself.
ENV = {
    "OPENAI_API_KEY": "sk-prod-env-0001-plaintext",
    "OPENAI_DEV_KEY": "sk-dev-env-0002-plaintext",
    "COST_CENTER": "marketing",
    "AZURE_EASTUS_ENDPOINT": "https://contoso-eastus.openai.azure.com",
    "AZURE_EASTUS_KEY": "azure-env-0003-plaintext",
    "ANTHROPIC_API_KEY": "sk-ant-env-0004-plaintext",
    "MARKETING_KEY": "sk-gw-marketing-env-0005-plaintext",
}
LITERAL_API_KEY = "sk-literal-account2-SECRET-9f8e7d6c"
LITERAL_HEADER_TOKEN = "header-token-SECRET-1a2b3c"

SEED: dict[str, Any] = {
    "providers": [
        {
            "name": "openai-production",
            "type": "openai",
            "base_url": "https://api.openai.com/v1",
            "enabled": True,
            "api_version": None,
            "timeout": 90,
            "max_retries": 3,
            "custom_headers": {"X-Environment": "production", "X-Cost-Center": "${COST_CENTER}"},
            "rate_limit": {"requests_per_minute": 600, "tokens_per_minute": 90000},
            "health_check": {"interval": 300, "model": "gpt-4o-mini"},
            "keys": [
                {
                    "name": "prod-1",
                    "api_key": "${OPENAI_API_KEY}",
                    "account_group": 1,
                    "primary": True,
                },
                {
                    "name": "prod-2",
                    "api_key": LITERAL_API_KEY,
                    "account_group": 2,
                    "organization": "org-account2",
                },
            ],
        },
        {
            "name": "openai-development",
            "type": "openai",
            "custom_headers": {
                "X-Environment": "development",
                "X-Cost-Center": "engineering",
                "X-Debug": "true",
            },
            "keys": [{"name": "dev-1", "api_key": "${OPENAI_DEV_KEY}", "primary": True}],
        },
        {
            "name": "azure-eastus",
            "type": "azure_openai",
            "base_url": "${AZURE_EASTUS_ENDPOINT}",
            "api_version": "2024-10-21",
            "timeout": 120,
            "custom_headers": {"X-Api-Token": LITERAL_HEADER_TOKEN},
            "keys": [{"name": "eastus-1", "api_key": "${AZURE_EASTUS_KEY}", "primary": True}],
        },
        {
            "name": "anthropic-main",
            "type": "anthropic",
            "custom_headers": {"X-Team": "alpha"},
            "forward_headers": ["X-Request-Id"],
            "health_check": {
                "interval": 600,
                "model": "claude-3-5-haiku-latest",
                "probe": "completion",
            },
            "keys": [{"name": "main", "api_key": "${ANTHROPIC_API_KEY}", "primary": True}],
        },
        {"name": "ollama-local", "type": "ollama", "base_url": "http://localhost:11434/v1"},
    ],
    "mappings": [
        {
            "alias": "gpt-4o",
            "provider": "openai-production",
            "model": "gpt-4o",
            "priority": 1,
            "weight": 3,
            "capabilities": {"chat": True, "vision": True, "tools": True, "streaming": True},
            "max_context_tokens": 128000,
            "price": {"input_per_million": 2.5, "output_per_million": 10.0},
        },
        {
            "alias": "gpt-4o",
            "provider": "azure-eastus",
            "model": "gpt-4o-eastus-deployment",
            "priority": 2,
            "capabilities": {"chat": True, "vision": True, "tools": True, "streaming": True},
            "price": {
                "input_per_million": 2.5,
                "output_per_million": 10.0,
                "cached_input_per_million": 1.25,
            },
        },
        {
            "alias": "gpt-4o-mini",
            "provider": "openai-development",
            "model": "gpt-4o-mini",
            "price": {"input_per_million": 0.15, "output_per_million": 0.6},
        },
        {
            "alias": "claude-sonnet",
            "provider": "anthropic-main",
            "model": "claude-sonnet-4-20250514",
            "capabilities": {"chat": True, "tools": True, "streaming": True},
            "max_output_tokens": 8192,
            "price": {"input_per_million": 3, "output_per_million": 15},
        },
        {
            "alias": "embed-small",
            "provider": "openai-production",
            "model": "text-embedding-3-small",
            "capabilities": {"chat": False, "streaming": False, "embeddings": True},
        },
        {"alias": "llama3", "provider": "ollama-local", "model": "llama3.1:8b"},
    ],
    "virtual_keys": [
        {
            "name": "marketing-app",
            "key": "${MARKETING_KEY}",
            "models": ["gpt-4o", "gpt-4o-mini"],
            "budget": {"amount": 100.0, "period": "monthly", "alert_threshold": 0.8},
            "rate_limit": {"requests_per_minute": 600},
        },
        {"name": "internal-tools", "expires_at": "2030-01-31T00:00:00Z", "enabled": True},
    ],
    "routing": {
        "strategy": "priority",
        "circuit_breaker": {"failure_threshold": 5, "recovery_timeout": 60},
    },
}


def write_config(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as YAML (or JSON for a ``.json`` path); return the path."""
    if path.suffix == ".json":
        path.write_text(json.dumps(data))
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path
