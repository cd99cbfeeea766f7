"""The vertex_ai type at save (model, API, import, admin), its token cache against the fake
OAuth endpoint, its health probe, export and the LiteLLM mapping."""

from __future__ import annotations

import asyncio
import io
import time

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.test import Client

from gateway.config_io.errors import ConfigError
from gateway.config_io.exporter import config_export
from gateway.config_io.importer import config_import
from gateway.config_io.migrate import config_migrate
from providers.health import health_check_run
from providers.models import HealthCheck, Provider, ProviderKeyCredential
from providers.vertex_auth import REFRESH_MARGIN, TokenCache, TokenError
from tests.admin_helpers import admin_form_data, admin_url, page_errors
from tests.factories import make_provider
from tests.fakes import wire_vertex
from tests.fakes.upstream import Behaviour, FakeUpstream, fake_upstream, fake_upstream_server  # noqa: F401
from tests.reports.helpers import token_client

NOT_JSON = "this is not a service account"


def test_token_cache_one_refresh_for_concurrent_requests(
    fake_upstream: FakeUpstream,  # noqa: F811
) -> None:
    account = wire_vertex.service_account(f"{fake_upstream.url}/token")
    cache = TokenCache()

    async def many() -> list[str]:
        return await asyncio.gather(*(cache.token(account) for _ in range(8)))

    tokens = asyncio.run(many())
    assert len(set(tokens)) == 1 and tokens[0].startswith("ya29.fake-")
    assert cache.refreshes == 1
    assert len(fake_upstream.requests(route="vertex_token")) == 1


def test_token_cache_refreshes_before_expiry(fake_upstream: FakeUpstream) -> None:  # noqa: F811
    account = wire_vertex.service_account(f"{fake_upstream.url}/token")
    cache = TokenCache()
    first = asyncio.run(cache.token(account))
    [cached] = cache._tokens.values()
    assert cached.expires_at > time.time() + 3000  # expires_in 3600 as the endpoint said
    cached.expires_at = time.time() + REFRESH_MARGIN + 60  # still well inside its life
    assert asyncio.run(cache.token(account)) == first and cache.refreshes == 1
    cached.expires_at = time.time() + REFRESH_MARGIN - 60  # within the margin: renewed
    second = asyncio.run(cache.token(account))
    assert second != first and cache.refreshes == 2


def test_token_refused_is_a_token_error(fake_upstream: FakeUpstream) -> None:  # noqa: F811
    account = wire_vertex.service_account(f"{fake_upstream.url}/token")
    fake_upstream.behave(Behaviour.fail(400, body={"error": "invalid_grant"}))
    with pytest.raises(TokenError):
        asyncio.run(TokenCache().token(account))
    with pytest.raises(TokenError):
        asyncio.run(TokenCache().token(NOT_JSON))


@pytest.mark.django_db
def test_project_location_and_service_account_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        Provider(name="v", provider_type="vertex_ai").full_clean()
    assert {"project", "location"} <= set(exc.value.message_dict)
    provider = Provider(name="v", provider_type="vertex_ai", project="p-1", location="global")
    provider.full_clean()
    provider.save()
    assert provider.effective_base_url == (
        "https://aiplatform.googleapis.com/v1/projects/p-1/locations/global"
    )
    key = ProviderKeyCredential(provider=provider, key_name="k", api_key=NOT_JSON)
    with pytest.raises(ValidationError) as exc:
        key.full_clean()
    assert "api_key" in exc.value.message_dict
    key.api_key = '{"client_email": "a@b"}'
    with pytest.raises(ValidationError) as exc:
        key.full_clean()
    assert "private_key" in str(exc.value.message_dict["api_key"])
    key.api_key = "${VERTEX_SERVICE_ACCOUNT_JSON}"
    key.full_clean()

    client = token_client(
        staff=True,
        perms=["providers.add_provider", "providers.view_provider", "providers.change_provider"],
    )
    r = client.post("/api/providers/", {"name": "v2", "provider_type": "vertex_ai"}, format="json")
    assert r.status_code == 400 and "project" in r.json()["error"]["fields"]
    r = client.post(
        "/api/providers/",
        {
            "name": "v2",
            "provider_type": "vertex_ai",
            "project": "p-1",
            "location": "europe-west4",
            "keys": [{"key_name": "sa", "api_key": NOT_JSON}],
        },
        format="json",
    )
    assert r.status_code == 400 and "api_key" in str(r.json()["error"]), r.json()
    assert NOT_JSON not in str(r.json())


@pytest.mark.django_db
def test_import_export_and_probe(fake_upstream: FakeUpstream) -> None:  # noqa: F811
    bad = {
        "providers": [
            {
                "name": "vertex-eu",
                "type": "vertex_ai",
                "project": "my-project",
                "location": "europe-west4",
                "keys": [{"name": "sa-1", "api_key": NOT_JSON, "primary": True}],
            }
        ]
    }
    with pytest.raises(ConfigError) as cexc:
        config_import(data=bad, environ={})
    assert any("api_key" in e for e in cexc.value.errors)
    with pytest.raises(ConfigError) as cexc:
        config_import(data={"providers": [{"name": "v", "type": "vertex_ai"}]}, environ={})
    assert any("project" in e for e in cexc.value.errors)

    account = wire_vertex.service_account(f"{fake_upstream.url}/token")
    good = bad["providers"][0] | {"keys": [{"name": "sa-1", "api_key": account, "primary": True}]}
    config_import(data={"providers": [good]}, environ={})
    stored = Provider.objects.get(name="vertex-eu")
    assert stored.effective_base_url == (
        "https://europe-west4-aiplatform.googleapis.com/v1/projects/my-project"
        "/locations/europe-west4"
    )
    [exported] = config_export()["providers"]
    assert exported["project"] == "my-project" and exported["location"] == "europe-west4"
    assert exported["keys"][0]["api_key"] == "***"

    inst = make_provider(
        "vertex-probe",
        "vertex_ai",
        upstream_url=fake_upstream.url,
        project="test-project",
        location="us-central1",
        keys=[{"name": "sa", "api_key": account, "primary": True}],
    )
    health_check_run(provider_id=inst.id)
    assert HealthCheck.objects.get(provider=inst.provider).status == "healthy"
    req = fake_upstream.requests()[-1]
    assert req.path == "/v1/projects/test-project/locations/us-central1/endpoints"
    out = io.StringIO()
    call_command("check_providers", provider="vertex-probe", stdout=out)
    assert "vertex-probe" in out.getvalue() and "healthy" in out.getvalue()
    assert req.headers["authorization"].startswith("Bearer ya29.fake-")


def test_litellm_vertex_prefix() -> None:
    result = config_migrate(
        fmt="litellm",
        source={
            "model_list": [
                {
                    "model_name": "c",
                    "litellm_params": {
                        "model": "vertex_ai/claude-sonnet-4@20250514",
                        "vertex_project": "my-project",
                        "vertex_location": "us-east5",
                        "vertex_credentials": "os.environ/VERTEX_SA",
                    },
                }
            ]
        },
    )
    [provider] = result.data["providers"]
    assert provider["type"] == "vertex_ai" and "base_url" not in provider
    assert provider["project"] == "my-project" and provider["location"] == "us-east5"
    assert provider["keys"][0]["api_key"] == "${VERTEX_SA}"
    assert result.data["mappings"][0]["model"] == "claude-sonnet-4@20250514"


@pytest.mark.django_db
def test_admin_add_form_names_project_and_api_key(admin_client: Client) -> None:
    url = admin_url(Provider, "add")
    page = admin_client.get(url).content.decode()
    assert 'value="vertex_ai"' in page and 'name="project"' in page
    data = admin_form_data(admin_client, url, Provider)
    data.update(name="vtx", provider_type="vertex_ai", location="us-central1")
    data["keys-TOTAL_FORMS"] = "1"
    data.update({"keys-0-key_name": "sa", "keys-0-api_key": NOT_JSON, "keys-0-is_primary": "on"})
    data.update({"keys-0-account_group": "0", "keys-0-is_enabled": "on"})
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "project" in page_errors(response)
    data["project"] = "p-1"
    response = admin_client.post(url, data)
    errors = page_errors(response)
    assert response.status_code == 200 and "keys.api_key" in errors
    assert NOT_JSON not in str(errors)
    account = wire_vertex.service_account("http://127.0.0.1:9/token")
    data["keys-0-api_key"] = account
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    assert Provider.objects.get(name="vtx").keys.get().api_key == account


def test_publisher_by_model_name_and_error_bodies() -> None:
    from providers.adapters import get_adapter
    from providers.adapters.vertex import is_anthropic_model

    assert is_anthropic_model("claude-sonnet-4@20250514")
    assert is_anthropic_model("models/claude-3-5-haiku")
    assert not is_anthropic_model("gemini-2.5-pro")
    assert not is_anthropic_model("text-embedding-005")
    adapter = get_adapter("vertex_ai")
    google = b"""{"error": {"code": 429, "message": "Quota exceeded",
        "status": "RESOURCE_EXHAUSTED"}}"""
    assert adapter.error_details(429, google) == ("Quota exceeded", "RESOURCE_EXHAUSTED", None)
    claude = b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}'
    assert adapter.error_details(529, claude) == ("Overloaded", "overloaded_error", None)
