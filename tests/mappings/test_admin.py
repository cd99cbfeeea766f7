"""Mapping and price admin: list, filters, inline prices, locked in-effect prices, actions."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.utils import timezone

from mappings.models import ModelPrice, ModelProviderMapping
from providers.config_version import config_version_db
from tests.admin_helpers import admin_form_data, admin_url, page_errors
from tests.factories import make_mapping_row, make_price, make_provider_row

pytestmark = pytest.mark.django_db


def test_changelist_links_provider_and_lists_capabilities(admin_client: Client) -> None:
    provider = make_provider_row(name="openai-prod")
    mapping = make_mapping_row(
        provider, supports_tools=True, supports_vision=True, supports_embeddings=False
    )
    html = admin_client.get(admin_url(ModelProviderMapping, "changelist")).content.decode()
    provider_url = admin_url(type(provider), "change", provider.pk)
    assert f'<a href="{provider_url}">openai-prod</a>' in html
    # Declared values only: chat and streaming were left undeclared.
    assert "vision, tools; not: embeddings" in html
    form = admin_client.get(admin_url(ModelProviderMapping, "change", mapping.pk)).content
    assert "Undeclared (not checked)" in form.decode()
    assert "Undeclared capabilities are not checked" in form.decode()


def test_changelist_filters_by_alias_provider_enabled_and_search(admin_client: Client) -> None:
    a, b = make_provider_row(name="a"), make_provider_row(name="b")
    make_mapping_row(a, alias="gpt-4o")
    make_mapping_row(b, alias="gpt-4o", priority=2)
    make_mapping_row(a, alias="claude", model="claude-3", is_enabled=False)
    url = admin_url(ModelProviderMapping, "changelist")

    def rows(query: str) -> set[tuple[str, str]]:
        result = admin_client.get(url + query).context["cl"].result_list
        return {(m.model_alias, m.provider.name) for m in result}

    assert rows("?alias=gpt-4o") == {("gpt-4o", "a"), ("gpt-4o", "b")}
    assert rows(f"?provider__id__exact={b.pk}") == {("gpt-4o", "b")}
    assert rows("?is_enabled__exact=0") == {("claude", "a")}
    assert rows("?q=clau") == {("claude", "a")}


def test_add_mapping_with_a_price_in_one_post(admin_client: Client) -> None:
    provider = make_provider_row()
    url = admin_url(ModelProviderMapping, "add")
    data = admin_form_data(admin_client, url, ModelProviderMapping)
    data.update(model_alias="fast", provider=str(provider.pk), provider_model_id="gpt-4o-mini")
    data.update(
        {
            "prices-TOTAL_FORMS": "1",
            "prices-0-input_per_million": "0.15",
            "prices-0-output_per_million": "0.6",
            "prices-0-effective_from_0": "2024-01-01",
            "prices-0-effective_from_1": "00:00:00",
        }
    )
    response = admin_client.post(url, data)

    assert response.status_code == 302, page_errors(response)
    price = ModelPrice.objects.get(mapping__model_alias="fast")
    assert (price.input_per_million, price.output_per_million) == (
        Decimal("0.15"),
        Decimal("0.6"),
    )


def test_in_effect_inline_price_is_disabled_and_cannot_change(admin_client: Client) -> None:
    mapping = make_mapping_row(priority=1)
    price = make_price(mapping, effective_from=timezone.now() - timedelta(days=1))
    url = admin_url(ModelProviderMapping, "change", mapping.pk)
    response = admin_client.get(url)
    form = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert form.fields["input_per_million"].disabled
    assert form.fields["effective_from"].disabled
    assert "in effect (locked)" in response.content.decode()

    # What a browser posts (disabled fields are not sent): the mapping saves, the price stays.
    data = admin_form_data(admin_client, url, ModelProviderMapping)
    assert "prices-0-input_per_million" not in data
    data["priority"] = "5"
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    mapping.refresh_from_db()
    assert mapping.priority == 5

    # A post that carries the locked fields (stale page or hand-made) is refused, loudly.
    data["priority"] = "7"
    data["prices-0-input_per_million"] = "99"
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert any("can no longer change" in e for e in page_errors(response)["prices.effective_from"])
    price.refresh_from_db()
    mapping.refresh_from_db()
    assert (price.input_per_million, mapping.priority) == (Decimal("2.5"), 5)


def test_scheduled_inline_price_is_editable(admin_client: Client) -> None:
    mapping = make_mapping_row()
    price = make_price(mapping, effective_from=timezone.now() + timedelta(days=7))
    url = admin_url(ModelProviderMapping, "change", mapping.pk)
    data = admin_form_data(admin_client, url, ModelProviderMapping)
    data["prices-0-input_per_million"] = "3"
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    price.refresh_from_db()
    assert price.input_per_million == Decimal("3")


def test_standalone_in_effect_price_is_read_only(admin_client: Client) -> None:
    price = make_price(effective_from=timezone.now() - timedelta(days=1))
    url = admin_url(ModelPrice, "change", price.pk)
    response = admin_client.get(url)
    assert "add a new price with a later" in response.content.decode()
    form = response.context["adminform"].form
    assert all(form.fields[n].disabled for n in ("mapping", "input_per_million"))

    data = admin_form_data(admin_client, url, ModelPrice)
    assert "input_per_million" not in data
    assert admin_client.post(url, data).status_code == 302
    price.refresh_from_db()
    assert price.input_per_million == Decimal("2.5")


def test_price_taking_effect_while_the_page_is_open_is_refused(admin_client: Client) -> None:
    price = make_price(effective_from=timezone.now() + timedelta(days=1))
    url = admin_url(ModelPrice, "change", price.pk)
    data = admin_form_data(admin_client, url, ModelPrice)
    assert data["input_per_million"] == "2.500000"  # editable while scheduled
    # The price takes effect after the form was rendered, before it is posted.
    ModelPrice.objects.filter(pk=price.pk).update(effective_from=timezone.now())
    data["input_per_million"] = "99"
    response = admin_client.post(url, data)

    assert response.status_code == 200
    assert any("can no longer change" in e for e in page_errors(response)["effective_from"])
    price.refresh_from_db()
    assert price.input_per_million == Decimal("2.5")


def test_standalone_price_for_a_provider_model(admin_client: Client) -> None:
    provider = make_provider_row()
    url = admin_url(ModelPrice, "add")
    data = admin_form_data(admin_client, url, ModelPrice)
    data.update(provider=str(provider.pk), provider_model_id="gpt-4o")
    data.update(input_per_million="1", output_per_million="2")
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    assert ModelPrice.objects.get().provider == provider


def test_standalone_price_needs_one_target(admin_client: Client) -> None:
    url = admin_url(ModelPrice, "add")
    data = admin_form_data(admin_client, url, ModelPrice)
    data.update(input_per_million="1", output_per_million="2")
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert page_errors(response)["mapping"] == [
        "give a mapping, or a provider and a provider model"
    ]
    assert not ModelPrice.objects.exists()


def test_mapping_disable_action_bumps_config_version_once(admin_client: Client) -> None:
    m1, m2 = make_mapping_row(alias="a"), make_mapping_row(alias="b")
    version = config_version_db()
    admin_client.post(
        admin_url(ModelProviderMapping, "changelist"),
        {"action": "disable_selected", "_selected_action": [m1.pk, m2.pk]},
    )
    assert not ModelProviderMapping.objects.filter(is_enabled=True).exists()
    assert config_version_db() == version + 1


# --- price status and deletion -------------------------------------------------------------


def test_price_list_shows_a_short_status_and_the_form_the_full_text(admin_client: Client) -> None:
    locked = make_price(effective_from=timezone.now() - timedelta(days=1))
    make_price(effective_from=timezone.now() + timedelta(days=1))
    html = admin_client.get(admin_url(ModelPrice, "changelist")).content.decode()
    assert ">in effect (locked)</span>" in html and ">scheduled</span>" in html
    assert "Effective from (UTC)" in html
    cells = html.split('class="field-status_short">')[1:]
    # The visible text is short (the full sentence is only the badge's tooltip).
    assert [re.sub(r"<[^>]+>", "", c.split("</td>")[0]) for c in cells] == [
        "scheduled",
        "in effect (locked)",
    ]
    form = admin_client.get(admin_url(ModelPrice, "change", locked.pk)).content.decode()
    assert "prices never change history" in form


def test_price_in_effect_cannot_be_deleted_in_the_admin(admin_client: Client) -> None:
    locked = make_price(effective_from=timezone.now() - timedelta(days=1))
    scheduled = make_price(effective_from=timezone.now() + timedelta(days=1))

    response = admin_client.post(
        admin_url(ModelPrice, "delete", locked.pk), {"post": "yes"}, follow=True
    )
    texts = [str(m) for m in response.context["messages"]]
    assert any("is in effect and cannot be deleted" in t for t in texts), texts
    assert ModelPrice.objects.filter(pk=locked.pk).exists()

    changelist = admin_url(ModelPrice, "changelist")
    response = admin_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [locked.pk, scheduled.pk], "post": "yes"},
        follow=True,
    )
    texts = [str(m) for m in response.context["messages"]]
    assert any("is in effect and cannot be deleted" in t for t in texts)
    assert "Nothing was deleted." in texts
    assert ModelPrice.objects.count() == 2

    response = admin_client.post(
        changelist,
        {"action": "delete_selected", "_selected_action": [scheduled.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert list(ModelPrice.objects.values_list("pk", flat=True)) == [locked.pk]


def test_price_in_effect_cannot_be_deleted_from_the_mapping_page(admin_client: Client) -> None:
    mapping = make_mapping_row()
    price = make_price(mapping, effective_from=timezone.now() - timedelta(days=1))
    url = admin_url(ModelProviderMapping, "change", mapping.pk)
    data = admin_form_data(admin_client, url, ModelProviderMapping)
    data["prices-0-DELETE"] = "on"
    response = admin_client.post(url, data)
    assert response.status_code == 200
    errors = page_errors(response)["prices.__all__"]
    assert any("is in effect and cannot be deleted" in e for e in errors)
    assert ModelPrice.objects.filter(pk=price.pk).exists()
