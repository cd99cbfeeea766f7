"""Literal custom header values: encrypted at rest, masked on read (REST API and admin),
write-only (a masked value sent back keeps the stored one), rotated with the encryption keys."""

from __future__ import annotations

import importlib
import json
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.apps import apps as django_apps
from django.contrib.auth.models import Permission, User
from django.core.management import call_command
from django.db import connection
from django.test import Client

from providers import secrets
from providers.models import Provider
from providers.snapshot import provider_snapshots_all
from tests.admin_helpers import admin_form_data, admin_url, page_errors
from tests.reports.helpers import all_gateway_permissions, token_client

pytestmark = pytest.mark.django_db

SUBSCRIPTION = "apim-subscription-0123456789abcdef-TAIL"
HEADERS = {"Ocp-Apim-Subscription-Key": SUBSCRIPTION, "X-Cost-Center": "${COST_CENTER}"}


def _raw_headers(pk: int) -> Any:
    """The column as stored, past the field's decryption."""
    table = connection.ops.quote_name(Provider._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT custom_headers FROM {table} WHERE id = %s", [pk])
        (value,) = cursor.fetchone()
    return json.loads(value) if isinstance(value, str) else value


def _raw_write(pk: int, headers: dict[str, str]) -> None:
    table = connection.ops.quote_name(Provider._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table} SET custom_headers = %s WHERE id = %s",
            [connection.ops.adapt_json_value(headers, None), pk],
        )


def _use_keys(settings: Any, *keys: str) -> None:
    settings.FIELD_ENCRYPTION_KEYS = list(keys)
    secrets.reset_cipher()


def test_literal_values_are_encrypted_at_rest_references_stay_readable() -> None:
    provider = Provider.objects.create(name="apim", provider_type="mock", custom_headers=HEADERS)
    raw = _raw_headers(provider.pk)
    assert SUBSCRIPTION not in json.dumps(raw)
    assert raw["Ocp-Apim-Subscription-Key"].startswith(secrets.HEADER_TOKEN_PREFIX)
    assert raw["X-Cost-Center"] == "${COST_CENTER}"
    assert Provider.objects.get(pk=provider.pk).custom_headers == HEADERS


def test_route_table_gets_the_plaintext(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COST_CENTER", "cc-7")
    provider = Provider.objects.create(name="apim", provider_type="mock", custom_headers=HEADERS)
    snap = provider_snapshots_all()[provider.pk]
    assert dict(snap.custom_headers) == {
        "Ocp-Apim-Subscription-Key": SUBSCRIPTION,
        "X-Cost-Center": "cc-7",
    }


def test_api_masks_values_and_a_masked_value_sent_back_keeps_the_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COST_CENTER", "cc-7")
    provider = Provider.objects.create(name="apim", provider_type="mock", custom_headers=HEADERS)
    api = token_client(staff=True, perms=all_gateway_permissions())
    for url in ("/api/providers/", f"/api/providers/{provider.pk}/"):
        body = api.get(url).content.decode()
        assert SUBSCRIPTION not in body and SUBSCRIPTION[-20:] not in body
    shown = api.get(f"/api/providers/{provider.pk}/").json()["custom_headers"]
    assert shown == {"Ocp-Apim-Subscription-Key": "••••TAIL", "X-Cost-Center": "${COST_CENTER}"}

    r = api.patch(
        f"/api/providers/{provider.pk}/",
        {"custom_headers": {**shown, "X-Env": "prod"}},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert SUBSCRIPTION not in r.content.decode()
    assert Provider.objects.get(pk=provider.pk).custom_headers == {**HEADERS, "X-Env": "prod"}

    r = api.patch(
        f"/api/providers/{provider.pk}/",
        {"custom_headers": {"Ocp-Apim-Subscription-Key": "new-subscription-key-42"}},
        format="json",
    )
    assert r.status_code == 200, r.content
    assert Provider.objects.get(pk=provider.pk).custom_headers == {
        "Ocp-Apim-Subscription-Key": "new-subscription-key-42"
    }


def test_a_mask_that_matches_nothing_stored_is_refused_not_stored() -> None:
    provider = Provider.objects.create(name="apim", provider_type="mock", custom_headers=HEADERS)
    api = token_client(staff=True, perms=all_gateway_permissions())
    # Renamed header: its masked value matches no stored value of that name.
    r = api.patch(
        f"/api/providers/{provider.pk}/",
        {"custom_headers": {"Ocp-Apim-Key": "••••TAIL"}},
        format="json",
    )
    assert r.status_code == 400 and "masked value" in r.content.decode()
    assert Provider.objects.get(pk=provider.pk).custom_headers == HEADERS


def test_admin_form_masks_values_and_unchanged_keeps_them(
    admin_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COST_CENTER", "cc-7")
    provider = Provider.objects.create(name="apim", provider_type="mock", custom_headers=HEADERS)
    url = admin_url(Provider, "change", provider.pk)
    page = admin_client.get(url).content.decode()
    assert SUBSCRIPTION not in page and "••••TAIL" in page

    data = admin_form_data(admin_client, url, Provider)
    data["timeout"] = "31"
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    provider.refresh_from_db()
    assert provider.custom_headers == HEADERS and provider.timeout == 31


def test_view_only_staff_sees_masked_headers(client: Client) -> None:
    provider = Provider.objects.create(name="apim", provider_type="mock", custom_headers=HEADERS)
    user = User.objects.create_user("viewer", password="pw-123456789", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_provider"))
    client.force_login(user)
    page = client.get(admin_url(Provider, "change", provider.pk))
    assert page.status_code == 200
    html = page.content.decode()
    assert SUBSCRIPTION not in html and "••••TAIL" in html


def test_data_migration_encrypts_stored_plaintext_and_reverses() -> None:
    provider = Provider.objects.create(name="apim", provider_type="mock")
    _raw_write(provider.pk, HEADERS)  # as a row written before values were encrypted
    assert _raw_headers(provider.pk) == HEADERS
    migration = importlib.import_module(
        "providers.migrations.0004_provider_custom_headers_encrypted"
    )

    migration.encrypt_values(django_apps, None)
    raw = _raw_headers(provider.pk)
    assert SUBSCRIPTION not in json.dumps(raw) and raw["X-Cost-Center"] == "${COST_CENTER}"
    assert Provider.objects.get(pk=provider.pk).custom_headers == HEADERS

    migration.decrypt_values(django_apps, None)
    assert _raw_headers(provider.pk) == HEADERS


def test_rotate_command_covers_header_values(settings: Any) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    _use_keys(settings, old)
    provider = Provider.objects.create(name="apim", provider_type="mock", custom_headers=HEADERS)
    _use_keys(settings, new, old)
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "custom header values of 1 instance(s)" in out.getvalue()

    _use_keys(settings, new)  # the old key is gone: the values still read
    assert Provider.objects.get(pk=provider.pk).custom_headers == HEADERS
    token = _raw_headers(provider.pk)["Ocp-Apim-Subscription-Key"]
    plain = Fernet(new.encode()).decrypt(token[len(secrets.HEADER_TOKEN_PREFIX) :].encode())
    assert plain.decode() == SUBSCRIPTION


def test_export_still_redacts_literal_values() -> None:
    from gateway.config_io.exporter import config_export

    Provider.objects.create(name="apim", provider_type="mock", custom_headers=HEADERS)
    exported = json.dumps(config_export())
    assert SUBSCRIPTION not in exported and "${COST_CENTER}" in exported


def test_an_undecryptable_header_value_makes_only_its_instance_unusable(
    settings: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COST_CENTER", "cc-7")
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    _use_keys(settings, old)
    bad = Provider.objects.create(name="apim", provider_type="mock", custom_headers=HEADERS)
    _use_keys(settings, new)  # the key that encrypted it is gone
    good = Provider.objects.create(name="fine", provider_type="mock", custom_headers={"X-A": "b"})
    snaps = provider_snapshots_all()
    assert "Ocp-Apim-Subscription-Key cannot be decrypted" in snaps[bad.pk].error
    assert snaps[good.pk].error == "" and dict(snaps[good.pk].custom_headers) == {"X-A": "b"}
    # Saved unchanged through the masks, the stored token is written back untouched.
    token = _raw_headers(bad.pk)["Ocp-Apim-Subscription-Key"]
    with secrets.tolerant_decryption():
        stored = Provider.objects.get(pk=bad.pk)
        shown = secrets.headers_masked(stored.custom_headers)
        stored.custom_headers = secrets.headers_unmasked(shown, stored.custom_headers)
        stored.save()
    assert _raw_headers(bad.pk)["Ocp-Apim-Subscription-Key"] == token
