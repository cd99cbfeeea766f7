"""``gateway_config import --from litellm``: model_list grouped into instances, settings."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from gateway.config_io.migrate import config_migrate
from gateway.keys.models import RoutingSettings
from mappings.models import ModelPrice, ModelProviderMapping
from providers.models import Provider
from tests.config_io.migrate_examples import LITELLM, LITELLM_ENV, converted_yaml, run_import, write

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in LITELLM_ENV.items():
        monkeypatch.setenv(name, value)
    return write(tmp_path / "config.yaml", LITELLM)


def test_deployments_are_grouped_into_instances_by_endpoint_and_key(source: Path) -> None:
    run_import(source, "litellm")

    assert dict(Provider.objects.values_list("name", "provider_type")) == {
        "azure-contoso-eastus": "azure_openai",
        "azure-westeu": "azure_openai",
        "openai": "openai",
        "openai-batch": "openai",
        "anthropic": "anthropic",
        "ollama-localhost": "ollama",
        "bedrock": "bedrock",
    }
    east = Provider.objects.get(name="azure-contoso-eastus")
    assert (east.base_url, east.api_version) == (
        "https://contoso-eastus.openai.azure.com",
        "2024-10-21",
    )
    assert east.custom_headers == {"X-Region": "eastus"}
    # Two deployments share the instance: their rpm add up; tpm came from one.
    assert (east.requests_per_minute, east.tokens_per_minute) == (1000, 90000)
    assert east.timeout == 120  # litellm_settings.request_timeout
    assert east.keys.get().api_key == "${AZURE_EASTUS_KEY}"  # os.environ/ -> ${...}
    west = Provider.objects.get(name="azure-westeu")
    assert (west.base_url, west.keys.get().api_key) == (
        "${AZURE_WESTEU_BASE}",
        "${AZURE_WESTEU_KEY}",
    )
    assert Provider.objects.get(name="openai-batch").keys.get().api_key == "${OPENAI_BATCH_KEY}"
    assert Provider.objects.get(name="ollama-localhost").base_url == "http://localhost:11434/v1"


def test_model_names_become_aliases_with_order_as_priority(source: Path) -> None:
    run_import(source, "litellm")

    gpt4o = ModelProviderMapping.objects.filter(model_alias="gpt-4o").order_by("priority")
    assert [(m.provider.name, m.provider_model_id, m.priority) for m in gpt4o] == [
        ("azure-contoso-eastus", "gpt-4o-eastus", 1),
        ("azure-westeu", "gpt-4o-westeu", 2),
        ("openai", "gpt-4o", 3),
    ]
    price = ModelPrice.objects.get(mapping__provider__name="openai")
    assert (price.input_per_million, price.output_per_million) == (Decimal("2.5"), Decimal("10"))
    assert set(ModelProviderMapping.objects.values_list("model_alias", flat=True)) == {
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4o-batch",
        "claude-sonnet",
        "llama3",
        "titan",
    }
    routing = RoutingSettings.objects.get()
    assert (routing.strategy, routing.failure_threshold, routing.recovery_timeout) == (
        "lowest_latency",
        4,
        30,
    )


def test_what_has_no_equivalent_is_listed_and_secrets_not_printed(source: Path) -> None:
    output = run_import(source, "litellm")

    for line in (
        "model_list[8] (jumpstart): provider 'sagemaker' is not supported here",
        "general_settings.master_key: this gateway issues its own virtual keys",
        "general_settings.database_url: no equivalent here",
        "litellm_settings.success_callback: no equivalent here",
        "router_settings.redis_host: no equivalent here",
    ):
        assert line in output
    assert "sk-1234" not in output


def test_dry_run_prints_our_format_and_writes_nothing(source: Path) -> None:
    output = run_import(source, "litellm", "--dry-run")

    assert not Provider.objects.exists()
    data = converted_yaml(output)
    assert data == config_migrate(fmt="litellm", source=LITELLM).data
    assert data["providers"][0]["keys"][0]["api_key"] == "${AZURE_EASTUS_KEY}"


def test_second_import_changes_nothing(source: Path) -> None:
    run_import(source, "litellm")
    assert "0 created, 0 changed" in run_import(source, "litellm")


def test_wildcards_and_unknown_keys_are_listed_not_guessed() -> None:
    result = config_migrate(
        fmt="litellm",
        source={
            "model_list": [
                {"model_name": "openai/*", "litellm_params": {"model": "openai/*"}},
                {
                    "model_name": "groq-llama",
                    "litellm_params": {"model": "groq/llama-3.1-8b-instant", "stream_timeout": 5},
                },
            ],
            "guardrails": [{"guardrail_name": "pii"}],
        },
    )

    assert result.data["providers"] == [
        {
            "name": "groq",
            "type": "openai_compatible",
            "preset": "groq",
            "keys": [{"name": "default", "api_key": "${GROQ_API_KEY}", "primary": True}],
        }
    ]
    assert result.dropped == [
        "guardrails: no equivalent here",
        "model_list[0] (openai/*): wildcard routing has no equivalent; list the models as aliases",
        "model_list[1] (groq-llama).litellm_params.stream_timeout: no equivalent here",
    ]
