"""The gemini type at save (model, API, import), its health probe and the LiteLLM mapping."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from gateway.config_io.errors import ConfigError
from gateway.config_io.importer import config_import
from gateway.config_io.migrate import config_migrate
from providers.health import health_check_run
from providers.models import HealthCheck, Provider
from tests.admin_helpers import admin_form_data, admin_url, page_errors
from tests.factories import make_provider
from tests.fakes.upstream import FakeUpstream, fake_upstream, fake_upstream_server  # noqa: F401
from tests.reports.helpers import token_client

AZURE = "https://my-res.openai.azure.com/openai/deployments/gpt"


@pytest.mark.django_db
def test_azure_style_url_is_refused_naming_base_url() -> None:
    with pytest.raises(ValidationError) as exc:
        Provider(name="g", provider_type="gemini", base_url=AZURE).full_clean()
    assert "base_url" in exc.value.message_dict
    Provider(name="g", provider_type="gemini").full_clean()  # the default endpoint

    r = token_client(
        staff=True,
        perms=["providers.add_provider", "providers.view_provider", "providers.change_provider"],
    ).post(
        "/api/providers/",
        {"name": "g", "provider_type": "gemini", "base_url": AZURE},
        format="json",
    )
    assert r.status_code == 400 and "base_url" in r.json()["error"]["fields"]

    data = {"providers": [{"name": "g", "type": "gemini", "base_url": AZURE}]}
    with pytest.raises(ConfigError) as cexc:
        config_import(data=data, environ={})
    assert any("base_url" in e for e in cexc.value.errors)
    assert not Provider.objects.exists()


@pytest.mark.django_db
def test_import_default_endpoint_and_probe(fake_upstream: FakeUpstream) -> None:  # noqa: F811
    config_import(
        data={
            "providers": [
                {
                    "name": "gemini-main",
                    "type": "gemini",
                    "keys": [{"name": "g1", "api_key": "AIza-secret", "primary": True}],
                }
            ]
        },
        environ={},
    )
    stored = Provider.objects.get(name="gemini-main")
    assert stored.effective_base_url == "https://generativelanguage.googleapis.com/v1beta"

    inst = make_provider("gem-probe", "gemini", upstream_url=fake_upstream.url)
    health_check_run(provider_id=inst.id)
    assert HealthCheck.objects.get(provider=inst.provider).status == "healthy"
    [req] = fake_upstream.requests()
    assert req.path == "/v1beta/models" and req.headers["x-goog-api-key"]
    assert req.query == {}


def test_litellm_gemini_prefix() -> None:
    result = config_migrate(
        fmt="litellm",
        source={
            "model_list": [
                {"model_name": "g", "litellm_params": {"model": "gemini/gemini-2.0-flash"}}
            ]
        },
    )
    [provider] = result.data["providers"]
    assert provider["type"] == "gemini" and "base_url" not in provider
    assert provider["keys"][0]["api_key"] == "${GEMINI_API_KEY}"
    assert result.data["mappings"][0]["model"] == "gemini-2.0-flash"


@pytest.mark.django_db
def test_admin_add_form_names_the_base_url(admin_client: Client) -> None:
    url = admin_url(Provider, "add")
    assert 'value="gemini"' in admin_client.get(url).content.decode()
    data = admin_form_data(admin_client, url, Provider)
    data.update(name="gem", provider_type="gemini", base_url=AZURE)
    data["keys-TOTAL_FORMS"] = "1"
    data.update({"keys-0-key_name": "g1", "keys-0-api_key": "AIza-1", "keys-0-is_primary": "on"})
    data.update({"keys-0-account_group": "0", "keys-0-is_enabled": "on"})
    response = admin_client.post(url, data)
    assert response.status_code == 200 and "base_url" in page_errors(response)
    data["base_url"] = ""
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    assert Provider.objects.get(name="gem").keys.get().api_key == "AIza-1"
