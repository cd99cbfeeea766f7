"""/api/ applies Django's model permissions as the admin does, for sessions and API tokens
alike; the read-only ops group reads everything and writes nothing."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from rest_framework.test import APIClient

from gateway.keys.models import VirtualKey
from providers.models import Provider
from tests.factories import make_provider_row, make_vkey
from tests.reports.helpers import make_user, token_client

pytestmark = pytest.mark.django_db

OPS_GROUP = "Gateway ops (read-only)"
ENDPOINTS = ["/api/providers/", "/api/provider-keys/", "/api/mappings/", "/api/prices/"]


def _session(user: object) -> Client:
    client = Client()
    client.force_login(user)  # type: ignore[arg-type]
    return client


def test_staff_session_without_model_permissions_gets_403_on_everything() -> None:
    provider = make_provider_row()
    client = _session(make_user(staff=True))
    for url in [
        "/api/",
        *ENDPOINTS,
        "/api/virtual-keys/",
        "/api/reports/costs/",
        "/api/reports/health/",
    ]:
        assert client.get(url).status_code == 403, url
    assert client.post("/api/providers/", {"name": "x"}).status_code == 403
    r = client.patch(f"/api/providers/{provider.pk}/", {}, content_type="application/json")
    assert r.status_code == 403
    assert client.delete(f"/api/providers/{provider.pk}/").status_code == 403
    assert Provider.objects.filter(pk=provider.pk).exists()


def test_session_with_view_permission_reads_but_cannot_write() -> None:
    provider = make_provider_row()
    client = _session(make_user(staff=True, perms=["providers.view_provider"]))
    assert client.get("/api/providers/").status_code == 200
    assert client.get("/api/mappings/").status_code == 403  # another model
    r = client.patch(
        f"/api/providers/{provider.pk}/", {"timeout": 5}, content_type="application/json"
    )
    assert r.status_code == 403


def test_ops_group_reads_everything_and_writes_nothing() -> None:
    group = Group.objects.get(name=OPS_GROUP)
    assert group.permissions.exists()
    assert all(p.codename.startswith("view_") for p in group.permissions.all())
    user = make_user(staff=True)
    user.groups.add(group)
    provider = make_provider_row()
    vkey = make_vkey().row
    api = APIClient()
    api.force_authenticate(user)
    for url in [
        "/api/",
        *ENDPOINTS,
        "/api/virtual-keys/",
        "/api/reports/costs/",
        "/api/reports/health/",
    ]:
        assert api.get(url).status_code == 200, url
    assert api.post("/api/providers/", {"name": "x"}, format="json").status_code == 403
    assert api.delete(f"/api/providers/{provider.pk}/").status_code == 403
    assert api.post(f"/api/virtual-keys/{vkey.pk}/rotate/").status_code == 403
    assert api.post(f"/api/virtual-keys/{vkey.pk}/disable/").status_code == 403
    assert VirtualKey.objects.get(pk=vkey.pk).is_enabled
    # The admin agrees: the change page is read-only for the group.
    page = _session(user).get(f"/admin/providers/provider/{provider.pk}/change/")
    assert page.status_code == 200 and 'name="timeout"' not in page.content.decode()


def test_rotate_and_disable_need_change_not_add() -> None:
    vkey = make_vkey().row
    adder = token_client(staff=True, perms=["gateway.add_virtualkey", "gateway.view_virtualkey"])
    assert adder.post(f"/api/virtual-keys/{vkey.pk}/rotate/").status_code == 403
    assert adder.post(f"/api/virtual-keys/{vkey.pk}/disable/").status_code == 403
    changer = token_client(
        staff=True, perms=["gateway.change_virtualkey", "gateway.view_virtualkey"]
    )
    assert changer.post(f"/api/virtual-keys/{vkey.pk}/rotate/").status_code == 200
    assert changer.post(f"/api/virtual-keys/{vkey.pk}/disable/").status_code == 200


def test_superuser_token_may_do_everything() -> None:
    user = make_user(staff=True)
    user.is_superuser = True
    user.save()
    api = APIClient()
    api.force_authenticate(user)
    assert api.get("/api/providers/").status_code == 200
    assert api.get("/api/reports/costs/").status_code == 200
