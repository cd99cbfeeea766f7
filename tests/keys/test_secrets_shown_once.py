"""Secrets shown once (virtual keys, admin API tokens) travel in the page body only; rotation
asks first and may leave the old key working for a grace period."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone
from rest_framework.test import APIClient

from gateway.adminapi.models import ApiToken, token_hash
from gateway.core.errors import AuthenticationFailed
from gateway.keys.models import VirtualKey, hash_key
from gateway.keys.services import virtual_key_rotate
from gateway.proxy.flow import authenticate
from gateway.routing.table import route_table_build
from tests.admin_helpers import admin_form_data, admin_url, page_errors
from tests.factories import make_vkey

pytestmark = pytest.mark.django_db

SECRET_RE = re.compile(r'<code class="secret-once"[^>]*>([^<]+)</code>')


def assert_nowhere_but_the_body(response: object, secret: str) -> None:
    """The secret is in no cookie the response sets and in no stored session."""
    cookies = response.cookies  # type: ignore[attr-defined]
    for morsel in cookies.values():
        assert secret not in morsel.value and secret not in morsel.OutputString()
    for session in Session.objects.all():
        assert secret not in str(session.get_decoded())
        assert secret not in session.session_data


# --- virtual keys ----------------------------------------------------------------------------


def test_created_virtual_key_is_in_the_body_not_in_a_cookie(admin_client: Client) -> None:
    url = admin_url(VirtualKey, "add")
    data = admin_form_data(admin_client, url, VirtualKey)
    data.update(name="cookie-check")
    response = admin_client.post(url, data)

    assert response.status_code == 200, page_errors(response)
    [plaintext] = SECRET_RE.findall(response.content.decode())
    assert VirtualKey.objects.get(name="cookie-check").key_hash == hash_key(plaintext)
    assert 'data-copy="secret-1"' in response.content.decode()  # the copy button
    assert "no-store" in response["Cache-Control"]
    assert_nowhere_but_the_body(response, plaintext)
    # Nor on the next page (a message would have carried it there).
    later = admin_client.get(admin_url(VirtualKey, "changelist"))
    assert plaintext not in later.content.decode()


def test_rotation_page_get_shows_what_will_happen_and_changes_nothing(
    admin_client: Client,
) -> None:
    vkey = make_vkey("rot").row
    url = f"{admin_url(VirtualKey, 'change', vkey.pk)}".replace("/change/", "/rotate/")
    assert (
        "Rotate key" in admin_client.get(admin_url(VirtualKey, "change", vkey.pk)).content.decode()
    )
    page = admin_client.get(url)
    html = page.content.decode()
    assert page.status_code == 200
    assert "rot" in html and 'name="grace"' in html and 'value="yes"' in html
    vkey.refresh_from_db()
    assert VirtualKey.objects.get(pk=vkey.pk).key_hash == vkey.key_hash


def test_view_only_staff_cannot_open_the_rotation_page(client: Client) -> None:
    vkey = make_vkey().row
    user = User.objects.create_user("viewer", password="pw-123456789", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_virtualkey"))
    client.force_login(user)
    url = admin_url(VirtualKey, "change", vkey.pk).replace("/change/", "/rotate/")
    assert client.get(url).status_code == 403


def test_rotation_with_grace_keeps_the_old_key_until_it_ends(admin_client: Client) -> None:
    made = make_vkey("graceful")
    old_plaintext = made.plaintext
    response = admin_client.post(
        admin_url(VirtualKey, "changelist"),
        {
            "action": "rotate_keys",
            "_selected_action": [made.row.pk],
            "confirm": "yes",
            "grace": "3600",
        },
    )
    [new_plaintext] = SECRET_RE.findall(response.content.decode())
    assert_nowhere_but_the_body(response, new_plaintext)
    assert "keeps working until" in response.content.decode()

    vkey = VirtualKey.objects.get(pk=made.row.pk)
    assert vkey.previous_key_hash == hash_key(old_plaintext)
    assert vkey.previous_key_expires_at is not None
    table = route_table_build()
    assert authenticate(table, new_plaintext).id == vkey.pk
    assert authenticate(table, old_plaintext).id == vkey.pk
    # When the grace ends the old key is refused, even before the table is rebuilt.
    ends = vkey.previous_key_expires_at.timestamp()
    assert table.virtual_keys[hash_key(old_plaintext)].expired(now=ends + 1)
    assert not table.virtual_keys[hash_key(new_plaintext)].expired(now=ends + 1)


def test_expired_grace_key_is_not_in_the_table_and_gets_401() -> None:
    made = make_vkey("expired-grace")
    virtual_key_rotate(vkey=made.row, grace=timedelta(hours=1))
    VirtualKey.objects.filter(pk=made.row.pk).update(
        previous_key_expires_at=timezone.now() - timedelta(seconds=1)
    )
    table = route_table_build()
    with pytest.raises(AuthenticationFailed):
        authenticate(table, made.plaintext)


def test_rotation_without_grace_stops_the_old_key() -> None:
    made = make_vkey("no-grace")
    virtual_key_rotate(vkey=made.row, grace=timedelta(hours=1))
    new = virtual_key_rotate(vkey=made.row)  # a second rotation drops the grace key
    table = route_table_build()
    authenticate(table, new)
    with pytest.raises(AuthenticationFailed):
        authenticate(table, made.plaintext)


def test_api_rotation_takes_a_grace_period(db: None) -> None:
    user = User.objects.create_user("api-rot", password="pw-123456789", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_virtualkey", "change_virtualkey"])
    )
    client = APIClient()
    client.force_authenticate(user)
    made = make_vkey("api-grace")
    url = f"/api/virtual-keys/{made.row.pk}/rotate/"
    assert client.post(url, {"grace_seconds": -1}, format="json").status_code == 400
    r = client.post(url, {"grace_seconds": 600}, format="json")
    assert r.status_code == 200, r.content
    assert r.json()["previous_key_expires_at"]
    assert authenticate(route_table_build(), made.plaintext).id == made.row.pk


# --- admin API tokens ------------------------------------------------------------------------


def _token_add(client: Client, user: User) -> object:
    url = admin_url(ApiToken, "add")
    data = admin_form_data(client, url, ApiToken)
    data.update(name="mine", user=str(user.pk), is_active="on")
    return client.post(url, data)


def test_new_api_token_is_in_the_body_not_in_a_cookie(admin_client: Client) -> None:
    admin = User.objects.get(username="admin")
    response = _token_add(admin_client, admin)
    assert response.status_code == 200, page_errors(response)  # type: ignore[attr-defined]
    [plaintext] = SECRET_RE.findall(response.content.decode())  # type: ignore[attr-defined]
    assert ApiToken.objects.get(token_hash=token_hash(plaintext)).user == admin
    assert_nowhere_but_the_body(response, plaintext)


def _token_staff(client: Client) -> User:
    user = User.objects.create_user("tok-staff", password="pw-123456789", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="adminapi",
            codename__in=["add_apitoken", "view_apitoken", "change_apitoken"],
        )
    )
    client.force_login(user)
    return user


def test_staff_cannot_mint_a_token_for_another_user(client: Client) -> None:
    _token_staff(client)
    superuser = User.objects.create_superuser("root", password="pw-123456789")
    response = _token_add(client, superuser)
    assert response.status_code == 200  # type: ignore[attr-defined]
    assert "Select a valid choice" in response.content.decode()  # type: ignore[attr-defined]
    assert not ApiToken.objects.filter(user=superuser).exists()


def test_staff_mints_a_token_for_themselves_and_sees_only_their_own(client: Client) -> None:
    user = _token_staff(client)
    other = User.objects.create_user("other", is_staff=True)
    ApiToken.objects.create(name="others", user=other, token_hash="0" * 64, token_prefix="x")
    response = _token_add(client, user)
    assert response.status_code == 200, page_errors(response)  # type: ignore[arg-type]
    assert ApiToken.objects.filter(user=user).count() == 1
    listing = client.get(admin_url(ApiToken, "changelist")).content.decode()
    assert "mine" in listing and "others" not in listing


def test_token_service_refuses_minting_for_another_user_unless_superuser(db: None) -> None:
    from django.core.exceptions import PermissionDenied

    from gateway.adminapi.services import api_token_create

    staff = User.objects.create_user("s", is_staff=True)
    superuser = User.objects.create_superuser("su", password="pw-123456789")
    with pytest.raises(PermissionDenied):
        api_token_create(user=superuser, name="x", created_by=staff)
    api_token_create(user=staff, name="self", created_by=staff)
    api_token_create(user=staff, name="by-root", created_by=superuser)
    assert ApiToken.objects.filter(user=staff).count() == 2
