"""``anthropic_beta_allow`` in the config file (import, export), the admin API and admin."""

from __future__ import annotations

import pytest
from django.test import Client

from gateway.config_io.errors import ConfigError
from gateway.config_io.exporter import config_export
from gateway.config_io.importer import config_import
from providers.models import Provider
from tests.reports.helpers import token_client

pytestmark = pytest.mark.django_db


def provider_entry(**extra: object) -> dict[str, object]:
    return {"name": "claude-shared", "type": "anthropic", "keys": [], **extra}


def test_import_and_export_round_trip() -> None:
    config_import(data={"providers": [provider_entry(anthropic_beta_allow=["context-1m"])]})
    assert Provider.objects.get().anthropic_beta_allow == ["context-1m"]
    [exported] = config_export()["providers"]
    assert exported["anthropic_beta_allow"] == ["context-1m"]
    # Absent: the built-in default (null), exported as such.
    config_import(data={"providers": [provider_entry(name="other")]})
    assert Provider.objects.get(name="other").anthropic_beta_allow is None


def test_import_names_a_bad_allow_list() -> None:
    with pytest.raises(ConfigError) as exc:
        config_import(data={"providers": [provider_entry(anthropic_beta_allow=["no spaces"])]})
    assert any("anthropic_beta_allow" in e for e in exc.value.errors), exc.value.errors


def test_the_admin_api_reads_and_writes_it() -> None:
    api = token_client(staff=True, perms=["providers.add_provider", "providers.change_provider"])
    created = api.post(
        "/api/providers/",
        {"name": "c", "provider_type": "anthropic", "anthropic_beta_allow": ["*"]},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["anthropic_beta_allow"] == ["*"]
    bad = api.patch(
        f"/api/providers/{created.json()['id']}/", {"anthropic_beta_allow": "*"}, format="json"
    )
    assert bad.status_code == 400 and "anthropic_beta_allow" in bad.json()["error"]["fields"]


def test_the_admin_form_shows_it(admin_client: Client) -> None:
    provider = Provider.objects.create(name="c", provider_type="anthropic")
    html = admin_client.get(f"/admin/providers/provider/{provider.pk}/change/").content.decode()
    assert 'name="anthropic_beta_allow"' in html
