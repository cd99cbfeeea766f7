"""``gateway_config import``: what a realistic file creates, and that re-imports are no-ops."""

from __future__ import annotations

from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.db.models import Model

from gateway.config_io.errors import ConfigError
from gateway.config_io.importer import config_import
from gateway.keys.models import RoutingSettings, RoutingStrategy, VirtualKey, hash_key
from mappings.models import ModelPrice, ModelProviderMapping
from providers.config_version import config_version_db
from providers.models import Provider, ProviderKeyCredential
from tests.config_io.seed import ENV, LITERAL_API_KEY, write_config

pytestmark = pytest.mark.django_db


def run_import(path: Path, *args: str) -> str:
    out = StringIO()
    call_command("gateway_config", "import", str(path), *args, stdout=out)
    return out.getvalue()


def timestamps() -> dict[str, Any]:
    """Every row's ``updated_at`` (and each price row), to prove nothing was saved."""
    models: list[type[Model]] = [Provider, ProviderKeyCredential, ModelProviderMapping, VirtualKey]
    state: dict[str, Any] = {
        m.__name__: sorted(m.objects.values_list("pk", "updated_at")) for m in models
    }
    state["prices"] = sorted(ModelPrice.objects.values_list("pk", "input_per_million"))
    state["routing"] = list(RoutingSettings.objects.values_list("pk", "updated_at"))
    return state


def test_seed_file_creates_instances_keys_mappings_prices_and_keys(
    tmp_path: Path, seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    output = run_import(write_config(tmp_path / "gateway.yaml", seed))

    assert "Summary: 23 created, 0 changed, 0 unchanged, 0 left" in output
    assert sorted(Provider.objects.values_list("name", "provider_type")) == [
        ("anthropic-main", "anthropic"),
        ("azure-eastus", "azure_openai"),
        ("ollama-local", "ollama"),
        ("openai-development", "openai"),
        ("openai-production", "openai"),
    ]
    prod = Provider.objects.get(name="openai-production")
    assert prod.timeout == 90.0
    assert (prod.requests_per_minute, prod.tokens_per_minute) == (600, 90000)
    assert prod.health_check_model == "gpt-4o-mini"
    # ${VAR} references are stored as written and resolved at route-table build.
    assert prod.custom_headers == {"X-Environment": "production", "X-Cost-Center": "${COST_CENTER}"}
    azure = Provider.objects.get(name="azure-eastus")
    assert azure.base_url == "${AZURE_EASTUS_ENDPOINT}"
    assert azure.api_version == "2024-10-21"
    anthropic = Provider.objects.get(name="anthropic-main")
    assert anthropic.forward_headers == ["X-Request-Id"]
    assert anthropic.health_check_probe == "completion"

    keys = {k.key_name: k for k in prod.keys.all()}
    assert keys["prod-1"].api_key == "${OPENAI_API_KEY}"
    assert (keys["prod-1"].account_group, keys["prod-1"].is_primary) == (1, True)
    assert keys["prod-2"].api_key == LITERAL_API_KEY
    assert (keys["prod-2"].account_group, keys["prod-2"].is_primary) == (2, False)
    assert keys["prod-2"].organization == "org-account2"
    assert not Provider.objects.get(name="ollama-local").keys.exists()

    # The alias resolves to instances by ID, in priority order.
    gpt4o = list(ModelProviderMapping.objects.filter(model_alias="gpt-4o").order_by("priority"))
    assert [(m.provider_id, m.provider_model_id) for m in gpt4o] == [
        (prod.pk, "gpt-4o"),
        (azure.pk, "gpt-4o-eastus-deployment"),
    ]
    assert gpt4o[0].weight == 3 and gpt4o[0].supports_vision and gpt4o[0].max_context_tokens
    embed = ModelProviderMapping.objects.get(model_alias="embed-small")
    assert embed.supports_embeddings and not embed.supports_chat
    price = ModelPrice.objects.get(mapping=gpt4o[1])
    assert (price.input_per_million, price.output_per_million) == (Decimal("2.5"), Decimal(10))
    assert price.cached_input_per_million == Decimal("1.25")
    assert not ModelPrice.objects.filter(mapping=embed).exists()

    marketing = VirtualKey.objects.get(name="marketing-app")
    assert marketing.key_hash == hash_key(ENV["MARKETING_KEY"])
    assert marketing.allowed_models == ["gpt-4o", "gpt-4o-mini"]
    assert marketing.budget_amount == Decimal(100) and marketing.requests_per_minute == 600
    internal = VirtualKey.objects.get(name="internal-tools")
    assert internal.expires_at is not None and internal.expires_at.year == 2030
    # The generated key is printed once, and it is the key whose hash was stored.
    printed = [w for w in output.split() if w.startswith("sk-gw-")]
    assert len(printed) == 1 and hash_key(printed[0]) == internal.key_hash
    assert RoutingSettings.objects.get().strategy == RoutingStrategy.PRIORITY


def test_second_import_changes_nothing(
    tmp_path: Path, seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    path = write_config(tmp_path / "gateway.yaml", seed)
    run_import(path)
    before, version = timestamps(), config_version_db()
    assert version > 0

    output = run_import(path)

    assert "Summary: 0 created, 0 changed, 23 unchanged, 0 left" in output
    assert "sk-gw-" not in output  # the generated key was shown once, never again
    assert timestamps() == before
    assert config_version_db() == version


def test_changed_fields_are_reported_and_only_those_rows_saved(
    tmp_path: Path, seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    config_import(data=seed)
    untouched = Provider.objects.get(name="azure-eastus").updated_at
    seed["providers"][0]["timeout"] = 30
    seed["providers"][0]["rate_limit"]["requests_per_minute"] = 100
    seed["providers"][0]["keys"][1]["account_group"] = 5

    report = config_import(data=seed)

    [provider] = report.of("provider", "changed")
    assert provider.label == "openai-production"
    assert provider.fields == ["timeout", "rate_limit.requests_per_minute"]
    [key] = report.of("key", "changed")
    assert (key.label, key.fields) == ("openai-production/prod-2", ["account_group"])
    assert report.counts()["changed"] == 2
    assert Provider.objects.get(name="openai-production").timeout == 30
    assert Provider.objects.get(name="azure-eastus").updated_at == untouched


def test_entries_missing_from_the_file_are_left_alone(
    seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    config_import(data=seed)
    seed["providers"] = [p for p in seed["providers"] if p["name"] != "ollama-local"]
    seed["providers"][0]["keys"].pop()  # prod-2
    seed["mappings"] = [m for m in seed["mappings"] if m["provider"] != "ollama-local"]
    del seed["virtual_keys"]

    report = config_import(data=seed)

    left = {(r.kind, r.label) for r in report.results if r.action == "left"}
    assert left == {
        ("provider", "ollama-local"),
        ("key", "openai-production/prod-2"),
        ("mapping", "llama3 -> ollama-local:llama3.1:8b"),
        ("virtual_key", "marketing-app"),
        ("virtual_key", "internal-tools"),
    }
    assert Provider.objects.filter(name="ollama-local").exists()
    assert ProviderKeyCredential.objects.filter(key_name="prod-2").exists()
    assert VirtualKey.objects.count() == 2


def test_dry_run_reports_but_writes_nothing(
    tmp_path: Path, seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    path = write_config(tmp_path / "gateway.yaml", seed)
    output = run_import(path, "--dry-run")

    assert "23 created" in output and "dry run: nothing was written" in output
    assert "sk-gw-" not in output  # no key is handed out for a row that was rolled back
    assert Provider.objects.count() == 0
    assert VirtualKey.objects.count() == 0
    assert config_version_db() == 0

    run_import(path)
    before = timestamps()
    seed["providers"][0]["timeout"] = 5
    seed["mappings"][0]["price"]["input_per_million"] = 99
    output = run_import(write_config(path, seed), "--dry-run")
    assert "changed   openai-production (timeout)" in output
    assert timestamps() == before
    assert Provider.objects.get(name="openai-production").timeout == 90


def test_price_change_adds_a_row_and_keeps_history(
    seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    config_import(data=seed)
    mapping = ModelProviderMapping.objects.get(model_alias="gpt-4o", priority=1)
    [old] = ModelPrice.objects.filter(mapping=mapping)

    seed["mappings"][0]["price"] = {"input_per_million": 2.0, "output_per_million": 8.0}
    report = config_import(data=seed)

    [changed] = report.of("price", "changed")
    assert changed.fields == ["price.input_per_million", "price.output_per_million"]
    prices = list(ModelPrice.objects.filter(mapping=mapping).order_by("effective_from", "id"))
    assert len(prices) == 2
    assert prices[0].pk == old.pk
    assert (prices[0].input_per_million, prices[0].output_per_million) == (Decimal("2.5"), 10)
    assert (prices[1].input_per_million, prices[1].output_per_million) == (2, 8)
    assert prices[1].effective_from >= old.effective_from

    # The same price again: unchanged, no third row.
    assert config_import(data=seed).of("price", "changed") == []
    assert ModelPrice.objects.filter(mapping=mapping).count() == 2


def test_virtual_key_is_rotated_when_the_file_key_changes(
    seed: dict[str, Any], seed_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config_import(data=seed)
    internal_hash = VirtualKey.objects.get(name="internal-tools").key_hash
    monkeypatch.setenv("MARKETING_KEY", "sk-gw-rotated-key-0006-R0tatedStrongKey")

    report = config_import(data=seed)

    [changed] = report.of("virtual_key", "changed")
    assert (changed.label, changed.fields) == ("marketing-app", ["key"])
    assert VirtualKey.objects.get(name="marketing-app").key_hash == hash_key(
        "sk-gw-rotated-key-0006-R0tatedStrongKey"
    )
    # A key without `key` in the file keeps its key.
    assert VirtualKey.objects.get(name="internal-tools").key_hash == internal_hash


def test_primary_flag_can_move_between_keys(seed: dict[str, Any], seed_env: dict[str, str]) -> None:
    config_import(data=seed)
    keys = seed["providers"][0]["keys"]
    keys[0]["primary"], keys[1]["primary"] = False, True

    report = config_import(data=seed)

    assert {r.label for r in report.of("key", "changed")} == {
        "openai-production/prod-1",
        "openai-production/prod-2",
    }
    primary = ProviderKeyCredential.objects.get(provider__name="openai-production", is_primary=True)
    assert primary.key_name == "prod-2"


def test_json_file_is_read_by_extension(
    tmp_path: Path, seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    output = run_import(write_config(tmp_path / "gateway.json", seed))
    assert "23 created" in output
    assert Provider.objects.count() == 5


def test_omitted_fields_take_model_defaults(seed: dict[str, Any], seed_env: dict[str, str]) -> None:
    """The file describes each entry it lists completely: dropping a field resets it."""
    seed["providers"][0]["timeout"] = 30
    config_import(data=seed)
    del seed["providers"][0]["rate_limit"]
    del seed["providers"][0]["timeout"]

    report = config_import(data=seed)

    [changed] = report.of("provider", "changed")
    assert set(changed.fields) == {
        "timeout",
        "rate_limit.requests_per_minute",
        "rate_limit.tokens_per_minute",
    }
    prod = Provider.objects.get(name="openai-production")
    assert (prod.timeout, prod.requests_per_minute) == (90.0, None)


def test_service_raises_config_error_listing_every_problem(seed_env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as exc:
        config_import(
            data={
                "providers": [{"name": "a", "type": "openai", "timeout": "slow"}, {"type": "x"}],
                "mapings": [],
            }
        )
    assert exc.value.errors == [
        "unknown section(s) 'mapings'"
        " (expected: providers, mappings, virtual_keys, routing, tiers)",
        "providers[0] (a).timeout: must be a number",
        "providers[1].name: is required",
    ]
