"""Admin REST API: CRUD per resource (declared with APIViewTests), validation like admin and
import, config version bumps, write-only secrets, virtual key lifecycle, token auth."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.adminapi.models import ApiToken
from gateway.keys.models import VirtualKey, hash_key
from mappings.models import ModelPrice, ModelProviderMapping
from providers.config_version import config_version_db
from providers.models import Provider, ProviderKeyCredential
from tests.reports.helpers import APIViewTests, make_user

pytestmark = pytest.mark.django_db
_n = itertools.count(1)
SECRET = "sk-live-very-secret-value-0001"


def _provider(**kw: Any) -> Provider:
    return Provider.objects.create(name=f"p-{next(_n)}", provider_type="openai", **kw)


class TestProviders(APIViewTests):
    url = "/api/providers/"
    model = Provider
    make = staticmethod(_provider)
    update_data = {"timeout": 30.0, "is_enabled": False}
    secret_values = [SECRET]

    @staticmethod
    def create_data() -> dict[str, Any]:
        return {
            "name": f"openai-{next(_n)}",
            "provider_type": "openai",
            "custom_headers": {"X-Team": "a"},
            "keys": [{"key_name": "main", "api_key": SECRET, "is_primary": True}],
        }


class TestProviderKeys(APIViewTests):
    url = "/api/provider-keys/"
    model = ProviderKeyCredential
    update_data = {"account_group": 4}
    secret_values = [SECRET]

    @staticmethod
    def make() -> ProviderKeyCredential:
        return ProviderKeyCredential.objects.create(
            provider=_provider(), key_name="k", api_key=SECRET
        )

    @staticmethod
    def create_data() -> dict[str, Any]:
        return {"provider": _provider().pk, "key_name": "k2", "api_key": SECRET}


class TestMappings(APIViewTests):
    url = "/api/mappings/"
    model = ModelProviderMapping
    update_data = {"priority": 3}

    @staticmethod
    def make() -> ModelProviderMapping:
        return ModelProviderMapping.objects.create(
            model_alias="a", provider=_provider(), provider_model_id="m"
        )

    @staticmethod
    def create_data() -> dict[str, Any]:
        return {"model_alias": "gpt-x", "provider": _provider().pk, "provider_model_id": "gpt-x"}


class TestPrices(APIViewTests):
    url = "/api/prices/"
    model = ModelPrice

    @staticmethod
    def make() -> ModelPrice:
        mapping = ModelProviderMapping.objects.create(
            model_alias="a", provider=_provider(), provider_model_id="m"
        )
        # Scheduled (not yet in effect): only such a price may be deleted.
        return ModelPrice.objects.create(
            mapping=mapping,
            input_per_million="1",
            output_per_million="2",
            effective_from=timezone.now() + timedelta(days=1),
        )

    @staticmethod
    def create_data() -> dict[str, Any]:
        return {
            "provider": _provider().pk,
            "provider_model_id": "m",
            "input_per_million": "1.5",
            "output_per_million": "6",
            # Scheduled, so that the generic test may delete it.
            "effective_from": (timezone.now() + timedelta(days=1)).isoformat(),
        }


class TestVirtualKeys(APIViewTests):
    url = "/api/virtual-keys/"
    model = VirtualKey
    update_data = {"allowed_models": ["gpt-4o"], "budget_amount": "50.00"}

    @staticmethod
    def make() -> VirtualKey:
        from gateway.keys.services import virtual_key_create

        return virtual_key_create(name=f"app-{next(_n)}")[0]

    @staticmethod
    def create_data() -> dict[str, Any]:
        return {"name": f"app-{next(_n)}", "budget_amount": "10.00", "budget_period": "daily"}


def test_api_key_is_write_only_everywhere(api: APIClient) -> None:
    r = api.post(
        "/api/providers/",
        {
            "name": "openai-x",
            "provider_type": "openai",
            "keys": [
                {"key_name": "a", "api_key": SECRET, "is_primary": True},
                {"key_name": "b", "api_key": "sk-second-secret-9999"},
            ],
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    assert [k["masked_key"] for k in r.json()["keys"]] == ["…0001", "…9999"]
    pid = r.json()["id"]
    stored = ProviderKeyCredential.objects.get(provider_id=pid, key_name="a")
    assert stored.api_key == SECRET and stored.is_primary
    responses = [
        r,
        api.get("/api/providers/"),
        api.get(f"/api/providers/{pid}/"),
        api.patch(
            f"/api/providers/{pid}/",
            {"keys": [{"key_name": "a", "api_key": SECRET}]},
            format="json",
        ),
        api.get("/api/provider-keys/", {"provider": pid}),
        api.get("/api/schema/", {"format": "json"}),
    ]
    for response in responses:
        assert response.status_code == 200 or response.status_code == 201
        body = response.content.decode()
        assert SECRET not in body and "sk-second-secret-9999" not in body
        assert '"api_key":' not in body.replace(" ", "") or response is responses[-1]


def test_writes_validate_like_admin_and_import_and_write_nothing_on_error(api: APIClient) -> None:
    before = config_version_db()
    # Azure without api_version: the model's clean() refuses it, field named.
    r = api.post(
        "/api/providers/",
        {"name": "az", "provider_type": "azure_openai", "base_url": "https://x.example"},
        format="json",
    )
    assert r.status_code == 400
    assert "api_version" in r.json()["error"]["fields"]
    # A key without api_key for a type that needs one; nothing of the provider is kept.
    r = api.post(
        "/api/providers/",
        {"name": "oa", "provider_type": "openai", "keys": [{"key_name": "k"}]},
        format="json",
    )
    assert r.status_code == 400, r.content
    assert not Provider.objects.filter(name="oa").exists()
    # ${VAR} references must be set, as on import.
    r = api.post(
        "/api/providers/",
        {"name": "oa", "provider_type": "openai", "base_url": "${GW_TEST_UNSET_VAR_XYZ}/v1"},
        format="json",
    )
    assert r.status_code == 400 and "GW_TEST_UNSET_VAR_XYZ" in r.json()["error"]["message"]
    # Bad header, bad mapping.
    r = api.post(
        "/api/providers/",
        {"name": "oa", "provider_type": "openai", "custom_headers": {"Host": "evil"}},
        format="json",
    )
    assert r.status_code == 400 and "custom_headers" in r.json()["error"]["fields"]
    p = _provider()
    r = api.post(
        "/api/mappings/",
        {
            "model_alias": "a",
            "provider": p.pk,
            "provider_model_id": "m",
            "supports_chat": False,
            "supports_embeddings": False,
        },
        format="json",
    )
    assert r.status_code == 400 and "chat and embeddings" in r.json()["error"]["message"]
    two_primaries = {
        "name": "oa2",
        "provider_type": "openai",
        "keys": [
            {"key_name": "a", "api_key": "x1", "is_primary": True},
            {"key_name": "b", "api_key": "x2", "is_primary": True},
        ],
    }
    assert api.post("/api/providers/", two_primaries, format="json").status_code == 400
    assert not Provider.objects.filter(name="oa2").exists()
    assert config_version_db() == before + 1  # only _provider() above bumped it


def test_writes_bump_the_config_version(api: APIClient) -> None:
    v0 = config_version_db()
    r = api.post("/api/providers/", {"name": "p", "provider_type": "mock"}, format="json")
    assert r.status_code == 201
    v1 = config_version_db()
    assert v1 > v0
    api.post(
        "/api/mappings/",
        {"model_alias": "a", "provider": r.json()["id"], "provider_model_id": "m"},
        format="json",
    )
    v2 = config_version_db()
    assert v2 > v1
    vk = api.post("/api/virtual-keys/", {"name": "app"}, format="json").json()
    api.post(f"/api/virtual-keys/{vk['id']}/disable/")
    assert config_version_db() > v2


def test_virtual_key_lifecycle(api: APIClient) -> None:
    r = api.post(
        "/api/virtual-keys/", {"name": "mobile", "allowed_models": ["gpt-4o"]}, format="json"
    )
    assert r.status_code == 201, r.content
    plaintext = r.json()["key"]
    vkey = VirtualKey.objects.get(name="mobile")
    assert vkey.key_hash == hash_key(plaintext)
    listed = api.get("/api/virtual-keys/").content.decode()
    detail = api.get(f"/api/virtual-keys/{vkey.pk}/").json()
    assert plaintext not in listed and "key" not in detail and "key_hash" not in detail
    rotated = api.post(f"/api/virtual-keys/{vkey.pk}/rotate/").json()
    assert rotated["key"] != plaintext
    vkey.refresh_from_db()
    assert vkey.key_hash == hash_key(rotated["key"])
    r = api.post(f"/api/virtual-keys/{vkey.pk}/disable/")
    assert r.status_code == 200 and r.json()["is_enabled"] is False
    assert api.post("/api/virtual-keys/", {"name": "mobile"}, format="json").status_code == 400


def test_filtering(api: APIClient) -> None:
    a, b = _provider(), Provider.objects.create(name="m", provider_type="mock")
    assert [
        p["id"] for p in api.get("/api/providers/", {"provider_type": "mock"}).json()["results"]
    ] == [b.pk]
    assert a.pk in [p["id"] for p in api.get("/api/providers/").json()["results"]]
    r = api.get("/api/providers/", {"limit": 1})
    assert len(r.json()["results"]) == 1 and r.json()["next"]


def test_api_token_command_and_expiry(capsys: pytest.CaptureFixture[str]) -> None:
    make_user(staff=True, name="ops", perms=["providers.view_provider"])
    call_command("api_token", "create", "--user", "ops", "--name", "ci")
    plaintext = capsys.readouterr().out.strip()
    assert plaintext.startswith("gwat_")
    token = ApiToken.objects.get(name="ci")
    assert plaintext not in (token.token_hash, token.token_prefix)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {plaintext}")
    assert client.get("/api/providers/").status_code == 200
    token.is_active = False
    token.save()
    assert client.get("/api/providers/").status_code == 401
    make_user(staff=False, name="dev")
    with pytest.raises(Exception, match="not staff"):
        call_command("api_token", "create", "--user", "dev")


def test_deleting_an_instance_with_usage_is_a_conflict(api: APIClient) -> None:
    from django.utils import timezone

    from gateway.usage.models import UsageRecord

    provider = _provider()
    UsageRecord.objects.create(
        request_id="r1",
        created_at=timezone.now(),
        endpoint="chat",
        provider=provider,
        status_code=200,
    )
    r = api.delete(f"/api/providers/{provider.pk}/")
    assert r.status_code == 409
    assert r.json()["error"]["type"] == "conflict" and "disable it" in r.json()["error"]["message"]
    assert Provider.objects.filter(pk=provider.pk).exists()


def test_deleting_a_price_in_effect_is_a_conflict_and_keeps_it(api: APIClient) -> None:
    price = TestPrices.make()
    price.effective_from = timezone.now() - timedelta(minutes=1)
    price.save(update_fields=["effective_from"])
    response = api.delete(f"/api/prices/{price.pk}/")
    assert response.status_code == 409
    message = response.json()["error"]["message"]
    assert message.startswith("cannot delete: the price") and "is in effect" in message
    assert ModelPrice.objects.filter(pk=price.pk).exists()
