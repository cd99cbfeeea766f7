"""``gateway_config export``: the import format, no secrets, and a stable round trip."""

from __future__ import annotations

import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.core.management import call_command

from gateway.config_io.errors import ConfigError
from gateway.config_io.exporter import config_export, redact_secret
from gateway.config_io.importer import config_import
from gateway.keys.models import VirtualKey
from providers.config_version import config_version_db
from providers.models import Provider, ProviderKeyCredential
from tests.config_io.seed import ENV, LITERAL_API_KEY, LITERAL_HEADER_TOKEN

pytestmark = pytest.mark.django_db


def _export(*args: str) -> str:
    out = StringIO()
    call_command("gateway_config", "export", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def _generated_key(report_text: str) -> str:
    [key] = [w for w in report_text.split() if w.startswith("sk-gw-")]
    return key


@pytest.mark.parametrize("filename", ["exported.yaml", "exported.json"])
def test_export_then_import_changes_nothing(
    tmp_path: Path, seed: dict[str, Any], seed_env: dict[str, str], filename: str
) -> None:
    config_import(data=seed)
    version = config_version_db()
    keys_before = sorted(VirtualKey.objects.values_list("name", "key_hash"))
    path = tmp_path / filename
    _export(str(path))

    out = StringIO()
    call_command("gateway_config", "import", str(path), stdout=out)

    assert "Summary: 0 created, 0 changed, 23 unchanged, 0 left" in out.getvalue()
    assert config_version_db() == version
    assert sorted(VirtualKey.objects.values_list("name", "key_hash")) == keys_before
    # "***" kept the stored secrets.
    prod2 = ProviderKeyCredential.objects.get(key_name="prod-2")
    assert prod2.api_key == LITERAL_API_KEY
    azure = Provider.objects.get(name="azure-eastus")
    assert azure.custom_headers == {"X-Api-Token": LITERAL_HEADER_TOKEN}
    # And the export of the re-imported database is the same document.
    assert _export() == _export()
    again = tmp_path / f"again-{filename}"
    _export(str(again))
    assert again.read_text() == path.read_text()


def test_export_contains_no_secret(seed: dict[str, Any], seed_env: dict[str, str]) -> None:
    generated = _generated_key(config_import(data=seed).render())
    text = _export()
    data = yaml.safe_load(text)

    for secret in [LITERAL_API_KEY, LITERAL_HEADER_TOKEN, generated, *ENV.values()]:
        if secret in ("marketing",):  # COST_CENTER is not a secret and is not exported either
            continue
        assert secret not in text
    providers = {p["name"]: p for p in data["providers"]}
    prod_keys = {k["name"]: k for k in providers["openai-production"]["keys"]}
    assert prod_keys["prod-1"]["api_key"] == "${OPENAI_API_KEY}"  # a reference is no secret
    assert prod_keys["prod-2"]["api_key"] == "***"
    assert providers["azure-eastus"]["custom_headers"] == {"X-Api-Token": "***"}
    assert providers["openai-production"]["custom_headers"]["X-Cost-Center"] == "${COST_CENTER}"
    assert all("key" not in v for v in data["virtual_keys"])


def test_export_has_the_import_format(
    tmp_path: Path, seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    config_import(data=seed)
    _export(str(tmp_path / "out.json"))
    data = json.loads((tmp_path / "out.json").read_text())  # .json: JSON, not YAML
    assert list(data) == ["providers", "mappings", "virtual_keys", "routing"]
    prod = data["providers"][0]
    assert prod["name"] == "openai-production" and prod["type"] == "openai"
    assert prod["rate_limit"] == {"requests_per_minute": 600, "tokens_per_minute": 90000}
    gpt4o = [m for m in data["mappings"] if m["alias"] == "gpt-4o"]
    assert [m["provider"] for m in gpt4o] == ["openai-production", "azure-eastus"]
    assert gpt4o[1]["price"] == {
        "input_per_million": 2.5,
        "output_per_million": 10,
        "cached_input_per_million": 1.25,
    }
    marketing = data["virtual_keys"][0]
    assert marketing["budget"] == {"amount": 100, "period": "monthly", "alert_threshold": 0.8}
    assert "budget" not in data["virtual_keys"][1]  # no budget, no inert defaults
    assert data["routing"] == {
        "strategy": "priority",
        "circuit_breaker": {"failure_threshold": 5, "recovery_timeout": 60},
    }


def test_redacted_secret_for_a_new_key_is_an_error(
    seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    config_import(data=seed)
    exported = config_export()
    exported["providers"][0]["keys"].append({"name": "prod-3", "api_key": "***"})
    exported["providers"][2]["custom_headers"]["X-Other-Token"] = "***"
    exported["virtual_keys"].append({"name": "new-app", "key": "***"})

    with pytest.raises(ConfigError) as exc:
        config_import(data=exported)

    assert exc.value.errors == [
        "providers[0] (openai-production).keys[2].api_key: "
        "secret redacted in export; provide the key",
        "providers[2] (azure-eastus).custom_headers.X-Other-Token: "
        "secret redacted in export; provide the key value",
        "virtual_keys[2] (new-app).key: secret redacted in export; provide the key",
    ]


def test_export_into_an_empty_database_needs_the_redacted_secrets(
    seed: dict[str, Any], seed_env: dict[str, str]
) -> None:
    config_import(data=seed)
    exported = config_export()
    Provider.objects.all().delete()
    VirtualKey.objects.all().delete()

    with pytest.raises(ConfigError) as exc:
        config_import(data=exported)

    assert "providers[0] (openai-production).keys[1].api_key: secret redacted" in str(exc.value)
    assert Provider.objects.count() == 0


@pytest.mark.parametrize(
    ("value", "exported"),
    [
        ("${OPENAI_API_KEY}", "${OPENAI_API_KEY}"),
        ("${A}${B}", "${A}${B}"),
        ("Bearer ${TOKEN}", "***"),  # literal text around a reference may be a secret
        ("sk-plain", "***"),
        ("", ""),
    ],
)
def test_redact_secret(value: str, exported: str) -> None:
    assert redact_secret(value) == exported
