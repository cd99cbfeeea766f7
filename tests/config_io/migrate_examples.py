"""Other gateways' configuration files, in the shapes their own documentation gives.

Each holds one field this gateway has no equivalent for, so the tests can check that it is
reported rather than dropped silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

# The claude-code-proxy multi-provider guide's "High Availability Setup", plus headers and the
# health/breaker settings; `log_color` is a field we have no use for.
CLAUDE_CODE_PROXY: dict[str, Any] = {
    "providers": [
        {
            "name": "openai-primary",
            "enabled": True,
            "priority": 1,
            "api_key": "${OPENAI_API_KEY}",
            "base_url": "https://api.openai.com/v1",
            "timeout": 90,
            "max_retries": 3,
            "custom_headers": {"X-Team": "platform", "X-Token": "Bearer ${CUSTOM_TOKEN}"},
            "models": {
                "big": ["gpt-4o", "gpt-4-turbo"],
                "middle": ["gpt-4o", "gpt-4-turbo"],
                "small": ["gpt-4o-mini", "gpt-3.5-turbo"],
            },
        },
        {
            "name": "azure-backup",
            "enabled": True,
            "priority": 2,
            "api_key": "${AZURE_API_KEY}",
            "base_url": "${AZURE_BASE_URL}",
            "api_version": "2024-02-15-preview",
            "models": {
                "big": ["gpt-4o", "gpt-4"],
                "middle": ["gpt-4o", "gpt-4"],
                "small": ["gpt-4o-mini", "gpt-35-turbo"],
            },
        },
        {
            "name": "local-ollama",
            "enabled": False,
            "priority": 3,
            "api_key": "dummy-key",
            "base_url": "http://localhost:11434/v1",
            "log_color": "blue",
            "models": {
                "big": ["llama3.1:70b"],
                "middle": ["llama3.1:70b"],
                "small": ["llama3.1:8b"],
            },
        },
    ],
    "fallback_strategy": "priority",
    "health_check_interval": 120,
    "circuit_breaker": {"failure_threshold": 3, "recovery_timeout": 120},
}
CLAUDE_CODE_PROXY_ENV = {
    "OPENAI_API_KEY": "sk-ccp-openai-env",
    "CUSTOM_TOKEN": "tok-ccp",
    "AZURE_API_KEY": "azure-ccp-env",
    "AZURE_BASE_URL": "https://contoso.openai.azure.com",
}


def _service(name: str, kind: str, key: str, model: str, headers: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "type": kind,
        "apiKey": key,
        "defaultModel": model,
        "customHeaders": headers,
    }


_PROD = _service(
    "openai-production",
    "openai",
    "${MM_OPENAI_PROD_KEY}",
    "gpt-4",
    {"X-Environment": "production", "X-Cost-Center": "marketing"},
)
_PROD["orgId"] = "org-marketing"
_DEV = _service(
    "openai-development",
    "openai",
    "sk-dev-key-xxx",
    "gpt-3.5-turbo",
    {"X-Environment": "development", "X-Debug": "true"},
)
_PROXY = {
    **_service(
        "openai-proxy",
        "openaicompatible",
        "sk-proxy-key-xxx",
        "gpt-4",
        {"X-Proxy-Auth": "Bearer company-proxy-token", "X-Billing-Code": "AIOPS-2024"},
    ),
    "apiURL": "https://proxy.company.com/v1",
}
_CLAUDE = _service(
    "anthropic-production",
    "anthropic",
    "${MM_ANTHROPIC_KEY}",
    "claude-3-5-sonnet-20241022",
    {"X-Provider": "anthropic"},
)
_ASAGE = _service("asage-internal", "asage", "asage-key", "asage-default", {})

# The Mattermost plugin doc's "multiple instances" example: services, and bots that embed
# their service; plus an `asage` service (a type we do not speak) and one bot using it.
MATTERMOST: dict[str, Any] = {
    "services": [_PROD, _DEV, _PROXY, _CLAUDE, _ASAGE],
    "bots": [
        {
            "id": "marketing-bot",
            "name": "marketing-assistant",
            "displayName": "Marketing Assistant",
            "service": _PROD,
        },
        {
            "id": "dev-bot",
            "name": "development-assistant",
            "displayName": "Development Assistant",
            "service": _DEV,
        },
        {
            "id": "secure-bot",
            "name": "secure-assistant",
            "displayName": "Secure Assistant",
            "service": _PROXY,
            "customInstructions": "Be careful.",
        },
        {
            "id": "claude-bot",
            "name": "claude-assistant",
            "displayName": "Claude Assistant",
            "service": _CLAUDE,
        },
        {"id": "asage-bot", "name": "asage-assistant", "displayName": "ASage", "service": _ASAGE},
    ],
}
MATTERMOST_ENV = {"MM_OPENAI_PROD_KEY": "sk-mm-prod-env", "MM_ANTHROPIC_KEY": "sk-ant-mm-env"}

# A LiteLLM proxy config.yaml: two Azure regions, OpenAI with two keys, Anthropic, Ollama,
# an unsupported Bedrock model, and settings with and without an equivalent here.
LITELLM: dict[str, Any] = {
    "model_list": [
        {
            "model_name": "gpt-4o",
            "litellm_params": {
                "model": "azure/gpt-4o-eastus",
                "api_base": "https://contoso-eastus.openai.azure.com/",
                "api_key": "os.environ/AZURE_EASTUS_KEY",
                "api_version": "2024-10-21",
                "rpm": 600,
                "tpm": 90000,
                "order": 1,
                "extra_headers": {"X-Region": "eastus"},
            },
        },
        {
            "model_name": "gpt-4o",
            "litellm_params": {
                "model": "azure/gpt-4o-westeu",
                "api_base": "os.environ/AZURE_WESTEU_BASE",
                "api_key": "os.environ/AZURE_WESTEU_KEY",
                "api_version": "2024-10-21",
                "order": 2,
            },
        },
        {
            "model_name": "gpt-4o-mini",
            "litellm_params": {
                "model": "azure/gpt-4o-mini-eastus",
                "api_base": "https://contoso-eastus.openai.azure.com/",
                "api_key": "os.environ/AZURE_EASTUS_KEY",
                "api_version": "2024-10-21",
                "rpm": 400,
            },
        },
        {
            "model_name": "gpt-4o",
            "litellm_params": {
                "model": "openai/gpt-4o",
                "api_key": "os.environ/OPENAI_API_KEY",
                "order": 3,
            },
            "model_info": {"input_cost_per_token": 0.0000025, "output_cost_per_token": 0.00001},
        },
        {
            "model_name": "gpt-4o-batch",
            "litellm_params": {"model": "openai/gpt-4o", "api_key": "os.environ/OPENAI_BATCH_KEY"},
        },
        {
            "model_name": "claude-sonnet",
            "litellm_params": {
                "model": "anthropic/claude-3-5-sonnet-20241022",
                "api_key": "os.environ/ANTHROPIC_API_KEY",
            },
        },
        {
            "model_name": "llama3",
            "litellm_params": {"model": "ollama/llama3", "api_base": "http://localhost:11434"},
        },
        {
            "model_name": "titan",
            "litellm_params": {
                "model": "bedrock/amazon.titan-text-express-v1",
                "aws_region_name": "us-east-1",
            },
        },
        {
            "model_name": "jumpstart",
            "litellm_params": {"model": "sagemaker/my-endpoint"},
        },
    ],
    "router_settings": {
        "routing_strategy": "latency-based-routing",
        "allowed_fails": 4,
        "cooldown_time": 30,
        "redis_host": "os.environ/REDIS_HOST",
    },
    "litellm_settings": {"request_timeout": 120, "success_callback": ["langfuse"]},
    "general_settings": {"master_key": "sk-1234", "database_url": "os.environ/DATABASE_URL"},
}
LITELLM_ENV = {
    "AZURE_EASTUS_KEY": "azure-east-env",
    "AZURE_WESTEU_BASE": "https://contoso-westeu.openai.azure.com",
    "AZURE_WESTEU_KEY": "azure-west-env",
    "OPENAI_API_KEY": "sk-litellm-openai-env",
    "OPENAI_BATCH_KEY": "sk-litellm-batch-env",
    "ANTHROPIC_API_KEY": "sk-ant-litellm-env",
    "AWS_ACCESS_KEY_ID": "AKIALITELLMENV",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-litellm-env",
}


def write(path: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as JSON (``.json``) or YAML; return the path."""
    if path.suffix == ".json":
        path.write_text(json.dumps(data, indent=2))
    else:
        path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_import(path: Path, fmt: str, *args: str) -> str:
    """``gateway_config import --from FMT PATH ARGS``; return what it printed."""
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("gateway_config", "import", "--from", fmt, str(path), *args, stdout=out)
    return out.getvalue()


def converted_yaml(output: str) -> dict[str, Any]:
    """The converted configuration a ``--dry-run`` printed (between its header and the lists)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# ")) + 1
    end = next(
        i
        for i, line in enumerate(lines)
        if i > start and line.startswith(("not carried over (", "notes (", "# import plan"))
    )
    data = yaml.safe_load("\n".join(lines[start:end]))
    assert isinstance(data, dict)
    return data
