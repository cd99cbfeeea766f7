"""Provider admin: inline keys, write-only API keys, header validation, actions, deletion."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext

from providers.config_version import config_version_db
from providers.models import Provider, ProviderKeyCredential
from tests.admin_helpers import admin_form_data, admin_url, page_errors
from tests.factories import make_key, make_provider_row, make_usage

pytestmark = pytest.mark.django_db

SECRET = "sk-live-0123456789abcdefghij-TAIL"


def change_url(provider: Provider) -> str:
    return admin_url(Provider, "change", provider.pk)


def add_key_row(data: dict[str, Any], **fields: str) -> int:
    """Fill the next inline row (bumping TOTAL_FORMS) and return its index."""
    index = int(data["keys-TOTAL_FORMS"])
    data["keys-TOTAL_FORMS"] = str(index + 1)
    defaults = {"account_group": "0", "is_enabled": "on"}
    for name, value in {**defaults, **fields}.items():
        data[f"keys-{index}-{name}"] = value
    return index


# --- editing with inline keys --------------------------------------------------------------


def test_staff_edits_provider_and_its_keys_in_one_post(admin_client: Client) -> None:
    provider = make_provider_row(name="openai-prod", timeout=90)
    key = make_key(provider, key_name="prod-1", api_key=SECRET)
    data = admin_form_data(admin_client, change_url(provider), Provider)
    assert data["keys-INITIAL_FORMS"] == "1"

    data["timeout"] = "30"
    data["keys-0-key_name"] = "prod-1-renamed"
    data["keys-0-account_group"] = "2"
    add_key_row(data, key_name="prod-2", api_key="sk-second-key-value-9876")
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 302, page_errors(response)
    provider.refresh_from_db()
    key.refresh_from_db()
    assert provider.timeout == 30
    assert (key.key_name, key.account_group, key.api_key) == ("prod-1-renamed", 2, SECRET)
    new = provider.keys.get(key_name="prod-2")
    assert new.api_key == "sk-second-key-value-9876"


def test_add_provider_with_a_key(admin_client: Client) -> None:
    data = admin_form_data(admin_client, admin_url(Provider, "add"), Provider)
    data.update(name="azure-eu", provider_type="azure_openai", api_version="2024-10-21")
    data["base_url"] = "https://eu.example.openai.azure.com"
    add_key_row(data, key_name="eu-1", api_key=SECRET, is_primary="on")
    response = admin_client.post(admin_url(Provider, "add"), data)

    assert response.status_code == 302, page_errors(response)
    provider = Provider.objects.get(name="azure-eu")
    assert provider.custom_headers == {} and provider.forward_headers == []
    assert provider.keys.get().api_key == SECRET


def test_new_key_without_value_is_refused_for_a_keyed_type(admin_client: Client) -> None:
    provider = make_provider_row(provider_type="openai")
    data = admin_form_data(admin_client, change_url(provider), Provider)
    add_key_row(data, key_name="empty")
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 200
    assert page_errors(response)["keys.api_key"] == ["openai keys need an api_key"]
    assert not provider.keys.exists()


def test_new_provider_with_a_keyless_key_row_is_refused(admin_client: Client) -> None:
    # The model's own check needs a saved provider; the formset checks the submitted type.
    data = admin_form_data(admin_client, admin_url(Provider, "add"), Provider)
    data.update(name="new-openai", provider_type="openai")
    add_key_row(data, key_name="empty")
    response = admin_client.post(admin_url(Provider, "add"), data)

    assert response.status_code == 200
    assert page_errors(response)["keys.api_key"] == ["openai keys need an api_key"]
    assert not Provider.objects.exists()


def test_switching_to_a_keyed_type_needs_values_for_keyless_keys(admin_client: Client) -> None:
    provider = make_provider_row(provider_type="ollama", base_url="http://ollama:11434/v1")
    make_key(provider, api_key="")
    data = admin_form_data(admin_client, change_url(provider), Provider)
    data.update(provider_type="openai_compatible")
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 200
    assert page_errors(response)["keys.api_key"] == ["openai_compatible keys need an api_key"]
    provider.refresh_from_db()
    assert provider.provider_type == "ollama"


def test_new_key_without_value_is_fine_for_a_keyless_type(admin_client: Client) -> None:
    provider = make_provider_row(provider_type="ollama")
    data = admin_form_data(admin_client, change_url(provider), Provider)
    add_key_row(data, key_name="local")
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 302, page_errors(response)
    assert provider.keys.get().api_key == ""


def test_two_primary_keys_in_one_post_are_an_error_not_a_500(admin_client: Client) -> None:
    provider = make_provider_row()
    data = admin_form_data(admin_client, change_url(provider), Provider)
    add_key_row(data, key_name="a", api_key="sk-aaaaaaaaaaaa", is_primary="on")
    add_key_row(data, key_name="b", api_key="sk-bbbbbbbbbbbb", is_primary="on")
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 200
    assert page_errors(response)["keys.is_primary"] == [
        "only one key of an instance can be primary"
    ]
    assert not provider.keys.exists()


# --- the API key is write-only ---------------------------------------------------------------


def test_change_page_shows_only_the_last_four(admin_client: Client) -> None:
    provider = make_provider_row()
    make_key(provider, api_key=SECRET)
    html = admin_client.get(change_url(provider)).content.decode()
    assert SECRET not in html
    assert SECRET[:-4] not in html
    assert "…TAIL" in html


def test_env_reference_is_shown_as_written(admin_client: Client) -> None:
    provider = make_provider_row()
    make_key(provider, api_key="${OPENAI_API_KEY}")
    html = admin_client.get(change_url(provider)).content.decode()
    assert "${OPENAI_API_KEY}" in html


def test_empty_api_key_on_edit_keeps_the_stored_key(admin_client: Client) -> None:
    provider = make_provider_row()
    key = make_key(provider, api_key=SECRET)
    data = admin_form_data(admin_client, change_url(provider), Provider)
    assert data["keys-0-api_key"] == ""  # the form posted back carries no key
    data["keys-0-organization"] = "org-42"
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 302, page_errors(response)
    key.refresh_from_db()
    assert (key.api_key, key.organization) == (SECRET, "org-42")


def test_entering_a_value_replaces_the_key(admin_client: Client) -> None:
    provider = make_provider_row()
    key = make_key(provider, api_key=SECRET)
    data = admin_form_data(admin_client, change_url(provider), Provider)
    data["keys-0-api_key"] = "sk-replacement-key-0000"
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 302, page_errors(response)
    key.refresh_from_db()
    assert key.api_key == "sk-replacement-key-0000"


def test_key_never_appears_in_history_or_changelist(admin_client: Client) -> None:
    provider = make_provider_row()
    make_key(provider, api_key="sk-old-key-value-1111")
    data = admin_form_data(admin_client, change_url(provider), Provider)
    data["keys-0-api_key"] = SECRET
    assert admin_client.post(change_url(provider), data).status_code == 302

    entry = LogEntry.objects.get(object_id=str(provider.pk))
    assert "API key" in entry.get_change_message()  # the field name is logged ...
    assert SECRET not in entry.change_message  # ... never its value
    for url in (
        admin_url(Provider, "history", provider.pk),
        admin_url(Provider, "changelist"),
        change_url(provider),
        "/admin/",
    ):
        html = admin_client.get(url).content.decode()
        assert SECRET not in html, url


def test_typed_key_is_not_echoed_when_the_form_has_errors(admin_client: Client) -> None:
    provider = make_provider_row()
    data = admin_form_data(admin_client, change_url(provider), Provider)
    data["timeout"] = "-1"
    add_key_row(data, key_name="new", api_key=SECRET)
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 200
    assert "timeout" in page_errors(response)
    assert SECRET not in response.content.decode()


def test_view_only_staff_sees_the_masked_key_not_the_key(client: Client) -> None:
    provider = make_provider_row()
    make_key(provider, api_key=SECRET)
    user = User.objects.create_user("viewer", is_staff=True)
    user.user_permissions.add(
        Permission.objects.get(codename="view_provider"),
        Permission.objects.get(codename="view_providerkeycredential"),
    )
    client.force_login(user)
    response = client.get(change_url(provider))

    assert response.status_code == 200
    assert response.context["has_change_permission"] is False
    html = response.content.decode()
    assert SECRET not in html
    assert "…TAIL" in html


# --- header validation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("custom_headers", {"Bad Header": "x"}, "'Bad Header' is not a valid HTTP header name"),
        ("custom_headers", {"X-Env": "a\r\nInjected: 1"}, "must not contain CR, LF or NUL"),
        ("custom_headers", {"Host": "evil.example"}, "is managed by the gateway"),
        ("custom_headers", {"Content-Length": "1"}, "is managed by the gateway"),
        ("custom_headers", ["X-Env"], "custom headers must be a JSON object"),
        ("forward_headers", ["Authorization"], "carries client credentials"),
        ("forward_headers", ["Transfer-Encoding"], "is managed by the gateway"),
        ("forward_headers", {"X-Env": "1"}, "must be a JSON list of header names"),
    ],
)
def test_bad_headers_show_the_model_error_on_the_field_and_write_nothing(
    admin_client: Client, field: str, value: object, message: str
) -> None:
    provider = make_provider_row(custom_headers={"X-Env": "prod"}, forward_headers=["X-Request-Id"])
    version = config_version_db()
    data = admin_form_data(admin_client, change_url(provider), Provider)
    data[field] = json.dumps(value)
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 200
    errors = page_errors(response)[field]
    assert any(message in e for e in errors), errors
    provider.refresh_from_db()
    assert provider.custom_headers == {"X-Env": "prod"}
    assert provider.forward_headers == ["X-Request-Id"]
    assert config_version_db() == version


def test_valid_headers_are_saved_as_json(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CC", "cc-42")
    provider = make_provider_row()
    data = admin_form_data(admin_client, change_url(provider), Provider)
    data["custom_headers"] = '{"X-Cost-Center": "${CC}", "X-Env": "prod"}'
    data["forward_headers"] = '["X-Request-Id"]'
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 302, page_errors(response)
    provider.refresh_from_db()
    assert provider.custom_headers == {"X-Cost-Center": "${CC}", "X-Env": "prod"}
    assert provider.forward_headers == ["X-Request-Id"]


def test_emptied_header_boxes_save_empty_json_not_null(admin_client: Client) -> None:
    provider = make_provider_row(custom_headers={"X-Env": "prod"}, forward_headers=["X-Trace"])
    data = admin_form_data(admin_client, change_url(provider), Provider)
    data["custom_headers"] = ""
    data["forward_headers"] = ""
    response = admin_client.post(change_url(provider), data)

    assert response.status_code == 302, page_errors(response)
    provider.refresh_from_db()
    assert (provider.custom_headers, provider.forward_headers) == ({}, [])


# --- changelist --------------------------------------------------------------------------------


def test_changelist_shows_key_count_base_url_and_health(admin_client: Client) -> None:
    provider = make_provider_row(name="openai-prod")
    make_key(provider)
    make_key(provider)
    make_provider_row(name="local", provider_type="ollama", base_url="http://ollama:11434/v1/")
    response = admin_client.get(admin_url(Provider, "changelist"))

    rows = {r.name: r for r in response.context["cl"].result_list}
    assert rows["openai-prod"]._key_count == 2
    assert rows["local"]._key_count == 0
    html = response.content.decode()
    assert "https://api.openai.com/v1" in html
    assert "http://ollama:11434/v1<" in html  # effective URL, trailing slash dropped
    assert '<td class="field-health_status">not probed yet</td>' in html


def test_changelist_query_count_does_not_grow_with_providers(admin_client: Client) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(admin_url(Provider, "changelist")).status_code == 200
        return len(ctx.captured_queries)

    for _ in range(2):
        make_key(make_provider_row())
    few = queries()
    for _ in range(6):
        provider = make_provider_row()
        make_key(provider)
        make_key(provider)
    assert queries() == few


def test_changelist_filters_and_search(admin_client: Client) -> None:
    make_provider_row(name="openai-prod")
    make_provider_row(name="openai-dev", is_enabled=False)
    make_provider_row(name="anthropic-prod", provider_type="anthropic")
    url = admin_url(Provider, "changelist")

    def names(query: str) -> set[str]:
        return {p.name for p in admin_client.get(url + query).context["cl"].result_list}

    assert names("?provider_type__exact=anthropic") == {"anthropic-prod"}
    assert names("?is_enabled__exact=0") == {"openai-dev"}
    assert names("?q=prod") == {"openai-prod", "anthropic-prod"}


# --- enable / disable ----------------------------------------------------------------------------


def test_disable_action_updates_all_and_bumps_the_config_version_once(
    admin_client: Client,
) -> None:
    a, b = make_provider_row(), make_provider_row()
    c = make_provider_row()
    version = config_version_db()
    response = admin_client.post(
        admin_url(Provider, "changelist"),
        {"action": "disable_selected", "_selected_action": [a.pk, b.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "2 providers disabled." in response.content.decode()
    enabled = dict(Provider.objects.values_list("pk", "is_enabled"))
    assert enabled == {a.pk: False, b.pk: False, c.pk: True}
    assert config_version_db() == version + 1
    assert LogEntry.objects.filter(change_message="Disabled (bulk action).").count() == 2


def test_enable_action_bumps_the_config_version(admin_client: Client) -> None:
    provider = make_provider_row(is_enabled=False)
    version = config_version_db()
    admin_client.post(
        admin_url(Provider, "changelist"),
        {"action": "enable_selected", "_selected_action": [provider.pk]},
    )
    provider.refresh_from_db()
    assert provider.is_enabled is True
    assert config_version_db() == version + 1


def test_enabling_already_enabled_providers_bumps_nothing(admin_client: Client) -> None:
    provider = make_provider_row(is_enabled=True)
    version = config_version_db()
    admin_client.post(
        admin_url(Provider, "changelist"),
        {"action": "enable_selected", "_selected_action": [provider.pk]},
    )
    assert config_version_db() == version


# --- deletion -------------------------------------------------------------------------------------

REFUSED = "cannot be deleted: usage records refer to it"
PREFER_DISABLE = "Disable it instead"


def test_delete_view_refuses_a_provider_with_usage(admin_client: Client) -> None:
    provider = make_provider_row(name="openai-prod")
    make_usage(provider)
    url = admin_url(Provider, "delete", provider.pk)

    for response in (
        admin_client.get(url, follow=True),
        admin_client.post(url, {"post": "yes"}, follow=True),
    ):
        assert response.status_code == 200
        assert response.redirect_chain[-1][0] == change_url(provider)
        html = response.content.decode()
        assert REFUSED in html and PREFER_DISABLE in html
    assert Provider.objects.filter(pk=provider.pk).exists()


def test_bulk_delete_refuses_providers_with_usage(admin_client: Client) -> None:
    used = make_provider_row(name="used")
    make_usage(used)
    unused = make_provider_row(name="unused")
    for extra in ({}, {"post": "yes"}):  # the confirmation page, and "Yes, I'm sure"
        response = admin_client.post(
            admin_url(Provider, "changelist"),
            {"action": "delete_selected", "_selected_action": [used.pk, unused.pk], **extra},
            follow=True,
        )
        assert response.status_code == 200
        html = response.content.decode()
        assert "The provider “used (openai)” " + REFUSED in html
        assert PREFER_DISABLE in html and "Nothing was deleted." in html
    assert set(Provider.objects.values_list("name", flat=True)) == {"used", "unused"}


def test_provider_without_usage_can_be_deleted(admin_client: Client) -> None:
    provider = make_provider_row()
    make_key(provider)
    response = admin_client.post(admin_url(Provider, "delete", provider.pk), {"post": "yes"})
    assert response.status_code == 302
    assert not Provider.objects.filter(pk=provider.pk).exists()
    assert not ProviderKeyCredential.objects.exists()


def test_bulk_delete_without_usage_still_works(admin_client: Client) -> None:
    a, b = make_provider_row(), make_provider_row()
    admin_client.post(
        admin_url(Provider, "changelist"),
        {"action": "delete_selected", "_selected_action": [a.pk, b.pk], "post": "yes"},
    )
    assert not Provider.objects.exists()
