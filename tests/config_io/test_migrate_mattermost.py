"""``gateway_config import --from mattermost``: services -> instances, bots -> virtual keys."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gateway.config_io.migrate import config_migrate
from gateway.keys.models import VirtualKey, hash_key
from mappings.models import ModelProviderMapping
from providers.models import Provider
from tests.config_io.migrate_examples import (
    MATTERMOST,
    MATTERMOST_ENV,
    converted_yaml,
    run_import,
    write,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in MATTERMOST_ENV.items():
        monkeypatch.setenv(name, value)
    return write(tmp_path / "mattermost.json", MATTERMOST)


def test_services_become_instances_with_keys_headers_and_an_alias(source: Path) -> None:
    run_import(source, "mattermost")

    assert dict(Provider.objects.values_list("name", "provider_type")) == {
        "openai-production": "openai",
        "openai-development": "openai",
        "openai-proxy": "openai_compatible",
        "anthropic-production": "anthropic",
    }
    prod = Provider.objects.get(name="openai-production")
    assert prod.custom_headers == {"X-Environment": "production", "X-Cost-Center": "marketing"}
    key = prod.keys.get()
    assert (key.api_key, key.organization) == ("${MM_OPENAI_PROD_KEY}", "org-marketing")
    assert Provider.objects.get(name="anthropic-production").keys.get().api_key == (
        "${MM_ANTHROPIC_KEY}"
    )
    proxy = Provider.objects.get(name="openai-proxy")
    assert proxy.base_url == "https://proxy.company.com/v1"
    assert proxy.custom_headers["X-Proxy-Auth"] == "Bearer company-proxy-token"
    assert proxy.keys.get().api_key == "sk-proxy-key-xxx"  # a literal stays literal (encrypted)
    mappings = {
        m.model_alias: (m.provider.name, m.provider_model_id)
        for m in ModelProviderMapping.objects.select_related("provider")
    }
    assert mappings == {
        "openai-production": ("openai-production", "gpt-4"),
        "openai-development": ("openai-development", "gpt-3.5-turbo"),
        "openai-proxy": ("openai-proxy", "gpt-4"),
        "anthropic-production": ("anthropic-production", "claude-3-5-sonnet-20241022"),
    }


def test_bots_become_virtual_keys_restricted_to_their_service_alias(source: Path) -> None:
    output = run_import(source, "mattermost")

    allowed = dict(VirtualKey.objects.values_list("name", "allowed_models"))
    assert allowed == {
        "marketing-assistant": ["openai-production"],
        "development-assistant": ["openai-development"],
        "secure-assistant": ["openai-proxy"],
        "claude-assistant": ["anthropic-production"],
    }
    # Each key was generated at import and shown once; it is the stored one.
    shown = re.findall(r"key: (\S+)  <- shown once", output)
    assert len(shown) == 4
    assert {hash_key(k) for k in shown} == set(
        VirtualKey.objects.values_list("key_hash", flat=True)
    )


def test_unsupported_service_and_bot_fields_are_listed(source: Path) -> None:
    output = run_import(source, "mattermost")

    assert "services[4] (asage-internal): service type 'asage' is not supported here" in output
    assert "bots[4] (asage-assistant): its service 'asage-internal' was not carried over" in output
    assert "bots[2] (secure-assistant).customInstructions: no equivalent here" in output
    assert not Provider.objects.filter(name="asage-internal").exists()


def test_dry_run_prints_our_format_and_writes_nothing(source: Path) -> None:
    output = run_import(source, "mattermost", "--dry-run")

    assert not Provider.objects.exists()
    assert not VirtualKey.objects.exists()
    data = converted_yaml(output)
    assert data == config_migrate(fmt="mattermost", source=MATTERMOST).data
    assert data["virtual_keys"][0] == {
        "name": "marketing-assistant",
        "models": ["openai-production"],
    }
    assert "shown once" not in output


def test_second_import_changes_nothing_and_keeps_the_keys(source: Path) -> None:
    run_import(source, "mattermost")
    hashes = set(VirtualKey.objects.values_list("key_hash", flat=True))

    output = run_import(source, "mattermost")

    assert "0 created, 0 changed" in output
    assert "shown once" not in output
    assert set(VirtualKey.objects.values_list("key_hash", flat=True)) == hashes


def test_bots_may_name_their_service_by_id_and_the_config_may_be_wrapped() -> None:
    service = {
        "id": "svc-1",
        "name": "gpt",
        "type": "openai",
        "apiKey": "k",
        "defaultModel": "gpt-4o",
    }
    result = config_migrate(
        fmt="mattermost",
        source={
            "config": {"services": [service], "bots": [{"name": "helper", "serviceID": "svc-1"}]}
        },
    )

    assert result.data["virtual_keys"] == [{"name": "helper", "models": ["gpt"]}]
    assert result.dropped == []
