"""``gateway_config import --from claude-code-proxy``: providers, tier aliases, tier rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.management.base import CommandError

from gateway.config_io.migrate import config_migrate
from gateway.keys.models import RoutingSettings
from mappings.models import ModelProviderMapping, TierAlias, TierPattern
from providers.models import Provider
from tests.config_io.migrate_examples import (
    CLAUDE_CODE_PROXY,
    CLAUDE_CODE_PROXY_ENV,
    converted_yaml,
    run_import,
    write,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in CLAUDE_CODE_PROXY_ENV.items():
        monkeypatch.setenv(name, value)
    return write(tmp_path / "providers.json", CLAUDE_CODE_PROXY)


def test_providers_keep_env_references_headers_and_settings(source: Path) -> None:
    run_import(source, "claude-code-proxy")

    types = dict(Provider.objects.values_list("name", "provider_type"))
    assert types == {
        "openai-primary": "openai",
        "azure-backup": "azure_openai",  # api_version given
        "local-ollama": "ollama",  # port 11434
    }
    openai = Provider.objects.get(name="openai-primary")
    assert openai.custom_headers == {"X-Team": "platform", "X-Token": "Bearer ${CUSTOM_TOKEN}"}
    assert (openai.timeout, openai.max_retries, openai.health_check_interval) == (90, 3, 120)
    assert openai.keys.get().api_key == "${OPENAI_API_KEY}"  # the reference, not its value
    azure = Provider.objects.get(name="azure-backup")
    assert (azure.base_url, azure.api_version) == ("${AZURE_BASE_URL}", "2024-02-15-preview")
    assert azure.keys.get().api_key == "${AZURE_API_KEY}"
    assert not Provider.objects.get(name="local-ollama").is_enabled
    routing = RoutingSettings.objects.get()
    assert (routing.strategy, routing.failure_threshold, routing.recovery_timeout) == (
        "priority",
        3,
        120,
    )


def test_each_tier_is_an_alias_over_every_provider_in_priority_order(source: Path) -> None:
    run_import(source, "claude-code-proxy")

    def tier(alias: str) -> list[tuple[str, str, int]]:
        rows = ModelProviderMapping.objects.filter(model_alias=alias).order_by("priority")
        return [(m.provider.name, m.provider_model_id, m.priority) for m in rows]

    # First choices at the provider's priority, then later list entries (priority + i * 4).
    assert tier("tier-big") == [
        ("openai-primary", "gpt-4o", 1),
        ("azure-backup", "gpt-4o", 2),
        ("local-ollama", "llama3.1:70b", 3),
        ("openai-primary", "gpt-4-turbo", 5),
        ("azure-backup", "gpt-4", 6),
    ]
    assert tier("tier-small")[:3] == [
        ("openai-primary", "gpt-4o-mini", 1),
        ("azure-backup", "gpt-4o-mini", 2),
        ("local-ollama", "llama3.1:8b", 3),
    ]


def test_tier_rules_send_claude_names_to_the_tier_aliases(source: Path) -> None:
    run_import(source, "claude-code-proxy")

    aliases = {t.tier: t.alias for t in TierAlias.objects.all()}
    assert aliases == {"big": "tier-big", "middle": "tier-middle", "small": "tier-small"}
    assert TierAlias.objects.get(is_default=True).tier == "big"
    patterns = [(p.pattern, p.tier) for p in TierPattern.objects.order_by("position")]
    assert patterns in (
        [("*opus*", "big"), ("*sonnet*", "middle"), ("*haiku*", "small")],
        [],  # stored as "the defaults", which are these same three
    )


def test_dry_run_prints_our_format_and_writes_nothing(source: Path) -> None:
    output = run_import(source, "claude-code-proxy", "--dry-run")

    assert Provider.objects.count() == 0
    assert ModelProviderMapping.objects.count() == 0
    data = converted_yaml(output)
    assert data == config_migrate(fmt="claude-code-proxy", source=CLAUDE_CODE_PROXY).data
    assert data["tiers"]["big"] == "tier-big"
    assert data["tiers"]["patterns"][2] == {"match": "*haiku*", "tier": "small"}
    assert data["providers"][1]["keys"] == [
        {"name": "default", "api_key": "${AZURE_API_KEY}", "primary": True}
    ]
    assert "(dry run: nothing was written)" in output


def test_unknown_field_is_listed_and_second_import_changes_nothing(source: Path) -> None:
    first = run_import(source, "claude-code-proxy")
    assert "providers[2] (local-ollama).log_color: no equivalent here" in first

    second = run_import(source, "claude-code-proxy")
    assert "0 created, 0 changed" in second


def test_unset_env_reference_fails_naming_the_field(
    source: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AZURE_API_KEY")
    with pytest.raises(CommandError) as exc:
        run_import(source, "claude-code-proxy")
    assert "providers[1] (azure-backup).keys[0].api_key" in str(exc.value)
    assert "AZURE_API_KEY" in str(exc.value)
    assert Provider.objects.count() == 0
