"""Writes through the admin API leave admin History entries naming the token's user."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.admin.models import ADDITION, CHANGE, DELETION, LogEntry
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.adminapi.services import api_token_create
from mappings.models import ModelPrice
from providers.models import Provider
from tests.factories import make_price
from tests.reports.helpers import make_user

pytestmark = pytest.mark.django_db
SECRET = "sk-live-history-secret-0001"


def test_api_writes_are_in_the_objects_history(admin_client: Client) -> None:
    user = make_user(
        staff=True,
        perms=[
            "providers.add_provider",
            "providers.change_provider",
            "mappings.add_modelprovidermapping",
            "mappings.delete_modelprovidermapping",
        ],
    )
    _, token = api_token_create(user=user, name="ci")
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    r = api.post(
        "/api/providers/",
        {
            "name": "via-api",
            "provider_type": "openai",
            "keys": [{"key_name": "k", "api_key": SECRET}],
        },
        format="json",
    )
    assert r.status_code == 201, r.content
    pk = r.json()["id"]
    assert api.patch(f"/api/providers/{pk}/", {"timeout": 30.0}, format="json").status_code == 200
    mapping = api.post(
        "/api/mappings/",
        {"model_alias": "x", "provider": pk, "provider_model_id": "x"},
        format="json",
    ).json()["id"]
    assert api.delete(f"/api/mappings/{mapping}/").status_code == 204

    entries = list(LogEntry.objects.order_by("id"))
    assert [(e.action_flag, e.content_type.model, e.change_message) for e in entries] == [
        (ADDITION, "provider", "Added through the admin API."),
        (CHANGE, "provider", "Changed timeout through the admin API."),
        (ADDITION, "modelprovidermapping", "Added through the admin API."),
        (DELETION, "modelprovidermapping", "Deleted through the admin API."),
    ]
    assert {e.user_id for e in entries} == {user.pk}
    assert all(SECRET not in e.change_message for e in entries)
    # The provider's History page in the admin shows them.
    html = admin_client.get(f"/admin/providers/provider/{pk}/history/").content.decode()
    assert "Changed timeout through the admin API." in html


def test_a_refused_delete_logs_nothing(api: APIClient) -> None:
    price = make_price(effective_from=timezone.now() - timedelta(days=1))
    assert api.delete(f"/api/prices/{price.pk}/").status_code == 409
    assert ModelPrice.objects.filter(pk=price.pk).exists()
    assert not LogEntry.objects.exists()
    assert Provider.objects.count() == 1


def test_key_writes_are_in_their_instances_history(api: APIClient) -> None:
    provider = Provider.objects.create(name="inst", provider_type="openai")
    r = api.post(
        "/api/provider-keys/",
        {"provider": provider.pk, "key_name": "k1", "api_key": SECRET},
        format="json",
    )
    assert r.status_code == 201, r.content
    key = r.json()["id"]
    assert (
        api.patch(f"/api/provider-keys/{key}/", {"account_group": 3}, format="json").status_code
        == 200
    )
    assert api.delete(f"/api/provider-keys/{key}/").status_code == 204
    entries = LogEntry.objects.order_by("id")
    assert [(e.content_type.model, e.object_id, e.action_flag) for e in entries] == [
        ("provider", str(provider.pk), CHANGE)
    ] * 3
    assert [e.change_message for e in entries] == [
        "Added key “k1” through the admin API.",
        "Changed key “k1” account_group through the admin API.",
        "Deleted key “k1” through the admin API.",
    ]
