"""Admin REST API: an invalid instance or key names the field (keys by key name)."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from providers.config_version import config_version_db
from providers.models import Provider, ProviderKeyCredential

pytestmark = pytest.mark.django_db


def test_nested_key_errors_name_the_key_and_the_field(api: APIClient) -> None:
    version = config_version_db()
    r = api.post(
        "/api/providers/",
        {
            "name": "oa",
            "provider_type": "openai",
            "keys": [
                {"key_name": "main", "api_key": "sk-1", "is_primary": True},
                {"key_name": "spare", "api_key": "sk-2", "is_primary": True},
                {"key_name": "empty"},
            ],
        },
        format="json",
    )
    assert r.status_code == 400, r.content
    fields = r.json()["error"]["fields"]
    assert fields["keys"] == {
        "spare": {"is_primary": ["only one key of an instance can be primary"]},
        "empty": {"api_key": ["openai keys need an api_key"]},
    }
    assert not Provider.objects.exists() and config_version_db() == version


def test_a_key_saved_on_its_own_names_its_fields(api: APIClient) -> None:
    provider = Provider.objects.create(name="oa", provider_type="openai")
    ProviderKeyCredential.objects.create(
        provider=provider, key_name="a", api_key="sk-1", is_primary=True
    )
    r = api.post(
        "/api/provider-keys/",
        {"provider": provider.pk, "key_name": "b", "api_key": "sk-2", "is_primary": True},
        format="json",
    )
    assert r.status_code == 400, r.content
    assert r.json()["error"]["fields"] == {
        "is_primary": ["key 'a' of this instance is primary too"]
    }
    assert provider.keys.count() == 1
