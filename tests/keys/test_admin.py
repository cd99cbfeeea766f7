"""Virtual keys (plaintext shown once, rotation, actions), routing settings, usage records."""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from gateway.keys.models import RoutingSettings, VirtualKey, hash_key
from gateway.usage.models import UsageRecord
from providers.config_version import config_version_db
from tests.admin_helpers import admin_form_data, admin_url, form_data, page_errors
from tests.factories import make_mapping_row, make_provider_row, make_usage, make_vkey

pytestmark = pytest.mark.django_db

KEY_RE = re.compile(r"<code[^>]*>(sk-gw-[A-Za-z0-9_-]{43})</code>")


def shown_keys(html: str) -> list[str]:
    return KEY_RE.findall(html)


# --- virtual keys ----------------------------------------------------------------------------


def test_add_form_has_no_key_field(admin_client: Client) -> None:
    data = admin_form_data(admin_client, admin_url(VirtualKey, "add"), VirtualKey)
    assert not any("key" in name for name in data if name != "csrfmiddlewaretoken")


def test_created_key_is_shown_once_and_only_its_hash_is_stored(admin_client: Client) -> None:
    make_mapping_row(alias="gpt-4o")
    url = admin_url(VirtualKey, "add")
    data = admin_form_data(admin_client, url, VirtualKey)
    data.update(name="marketing-app", allowed_models=["gpt-4o"])
    response = admin_client.post(url, data, follow=True)

    assert response.status_code == 200, page_errors(response)
    keys = shown_keys(response.content.decode())
    assert len(keys) == 1
    plaintext = keys[0]
    assert "Copy it now, it will not be shown again" in response.content.decode()
    vkey = VirtualKey.objects.get(name="marketing-app")
    assert vkey.key_hash == hash_key(plaintext)
    assert plaintext.startswith(vkey.key_prefix) and vkey.allowed_models == ["gpt-4o"]

    for later in (admin_url(VirtualKey, "changelist"), admin_url(VirtualKey, "change", vkey.pk)):
        html = admin_client.get(later).content.decode()
        assert plaintext not in html, later
        assert vkey.key_hash not in html, later  # the hash is never shown either
        assert vkey.key_prefix in html, later


def test_emptied_allowed_models_means_all(admin_client: Client) -> None:
    vkey = make_vkey(models=["gpt-4o"]).row
    url = admin_url(VirtualKey, "change", vkey.pk)
    data = admin_form_data(admin_client, url, VirtualKey)
    assert data["allowed_models"] == "gpt-4o"  # stored, though no mapping serves it now
    del data["allowed_models"]  # nothing selected: the browser sends no value
    response = admin_client.post(url, data)
    assert response.status_code == 302, page_errors(response)
    vkey.refresh_from_db()
    assert vkey.allowed_models == []


def test_editing_a_key_keeps_its_hash(admin_client: Client) -> None:
    vkey = make_vkey().row
    url = admin_url(VirtualKey, "change", vkey.pk)
    data = admin_form_data(admin_client, url, VirtualKey)
    data["requests_per_minute"] = "60"
    response = admin_client.post(url, data, follow=True)
    assert response.status_code == 200
    assert shown_keys(response.content.decode()) == []
    refreshed = VirtualKey.objects.get(pk=vkey.pk)
    assert (refreshed.key_hash, refreshed.requests_per_minute) == (vkey.key_hash, 60)


def test_rotate_action_shows_each_new_key_once(admin_client: Client) -> None:
    a, b = make_vkey("a").row, make_vkey("b").row
    old = {a.pk: a.key_hash, b.pk: b.key_hash}
    version = config_version_db()
    # The action first shows what will happen and rotates nothing.
    confirm = admin_client.post(
        admin_url(VirtualKey, "changelist"),
        {"action": "rotate_keys", "_selected_action": [a.pk, b.pk]},
    )
    assert confirm.status_code == 200 and 'name="confirm"' in confirm.content.decode()
    assert set(VirtualKey.objects.values_list("key_hash", flat=True)) == set(old.values())
    response = admin_client.post(
        admin_url(VirtualKey, "changelist"),
        {"action": "rotate_keys", "_selected_action": [a.pk, b.pk], "confirm": "yes"},
        follow=True,
    )

    html = response.content.decode()
    keys = shown_keys(html)
    assert len(keys) == 2
    hashes = set(VirtualKey.objects.values_list("key_hash", flat=True))
    assert hashes == {hash_key(k) for k in keys}
    assert hashes.isdisjoint(old.values())
    assert "the old key stops working" in html
    assert config_version_db() > version  # processes refresh their key snapshots
    html = admin_client.get(admin_url(VirtualKey, "changelist")).content.decode()
    assert shown_keys(html) == [] and not any(k in html for k in keys)


def test_disable_action_bumps_the_config_version_once(admin_client: Client) -> None:
    a, b = make_vkey().row, make_vkey().row
    version = config_version_db()
    admin_client.post(
        admin_url(VirtualKey, "changelist"),
        {"action": "disable_selected", "_selected_action": [a.pk, b.pk]},
    )
    assert not VirtualKey.objects.filter(is_enabled=True).exists()
    assert config_version_db() == version + 1


def test_virtual_key_with_usage_cannot_be_deleted(admin_client: Client) -> None:
    vkey = make_vkey("app").row
    make_usage(make_provider_row(), virtual_key=vkey)
    response = admin_client.post(
        admin_url(VirtualKey, "delete", vkey.pk), {"post": "yes"}, follow=True
    )
    html = response.content.decode()
    assert "The virtual key “app” cannot be deleted: usage records refer to it" in html
    assert "Disable it instead" in html
    assert VirtualKey.objects.filter(pk=vkey.pk).exists()


# --- routing settings (singleton) ---------------------------------------------------------------


def test_routing_settings_list_goes_to_the_single_row(admin_client: Client) -> None:
    response = admin_client.get(admin_url(RoutingSettings, "changelist"), follow=True)
    # No row yet: the list leads to the add form.
    assert response.redirect_chain[-1][0] == admin_url(RoutingSettings, "add")
    data = form_data(response.content.decode(), "routingsettings_form")
    data["strategy"] = "weighted"
    response = admin_client.post(admin_url(RoutingSettings, "add"), data)
    assert response.status_code == 302, page_errors(response)
    settings_row = RoutingSettings.objects.get()
    assert (settings_row.pk, settings_row.strategy) == (1, "weighted")

    response = admin_client.get(admin_url(RoutingSettings, "changelist"), follow=True)
    assert response.redirect_chain[-1][0] == admin_url(RoutingSettings, "change", 1)


def test_routing_settings_cannot_be_added_twice_or_deleted(admin_client: Client) -> None:
    RoutingSettings.load()
    assert admin_client.get(admin_url(RoutingSettings, "add")).status_code == 403
    assert (
        admin_client.post(admin_url(RoutingSettings, "delete", 1), {"post": "yes"}).status_code
        == 403
    )
    html = admin_client.get(admin_url(RoutingSettings, "change", 1)).content.decode()
    assert admin_url(RoutingSettings, "delete", 1) not in html
    assert RoutingSettings.objects.count() == 1


def test_routing_settings_edit_bumps_config_version(admin_client: Client) -> None:
    RoutingSettings.load()
    version = config_version_db()
    url = admin_url(RoutingSettings, "change", 1)
    data = admin_form_data(admin_client, url, RoutingSettings)
    data.update(strategy="least_cost", failure_threshold="3")
    assert admin_client.post(url, data).status_code == 302
    assert RoutingSettings.load().strategy == "least_cost"
    assert config_version_db() == version + 1


# --- usage records (read-only) -------------------------------------------------------------------


def test_usage_records_are_read_only(admin_client: Client) -> None:
    record = make_usage(make_provider_row(), cost=None)
    html = admin_client.get(admin_url(UsageRecord, "changelist")).content.decode()
    assert "unpriced" in html  # no price is not $0
    url = admin_url(UsageRecord, "change", record.pk)
    assert admin_client.post(url, {"status_code": "500"}).status_code == 403
    assert admin_client.post(admin_url(UsageRecord, "delete", record.pk)).status_code == 403
    record.refresh_from_db()
    assert record.status_code == 200


# --- allowed models, spend, last use, links ----------------------------------------------------


def test_allowed_models_is_a_choice_of_existing_aliases(admin_client: Client) -> None:
    make_mapping_row(alias="gpt-4o")
    make_mapping_row(alias="claude")
    url = admin_url(VirtualKey, "add")
    data = admin_form_data(admin_client, url, VirtualKey)
    data.update(name="typo-app", allowed_models=["gpt-4o", "gtp-4o"])
    response = admin_client.post(url, data)
    assert response.status_code == 200
    [error] = page_errors(response)["allowed_models"]
    assert error.startswith("“gtp-4o” is not an alias any mapping serves.")
    assert not VirtualKey.objects.filter(name="typo-app").exists()

    html = admin_client.get(url).content.decode()
    assert '<option value="claude">claude</option>' in html
    data["allowed_models"] = ["claude", "gpt-4o"]
    saved = admin_client.post(url, data)  # the new key's page, shown once
    assert saved.status_code == 200 and "secret-once" in saved.content.decode()
    assert VirtualKey.objects.get(name="typo-app").allowed_models == ["claude", "gpt-4o"]


def test_changelist_shows_spend_budget_last_use_and_links_in_one_query(
    admin_client: Client,
) -> None:
    provider = make_provider_row()
    budgeted = make_vkey("budgeted", budget_amount=Decimal("10"), budget_period="daily").row
    now = timezone.now()
    make_usage(provider, virtual_key=budgeted, cost=Decimal("2.5"), created_at=now)
    make_usage(provider, virtual_key=budgeted, cost=Decimal("1.25"), created_at=now)
    # Before today: not this period's spend.
    make_usage(
        provider, virtual_key=budgeted, cost=Decimal("100"), created_at=now - timedelta(days=2)
    )
    idle = make_vkey("idle").row

    url = admin_url(VirtualKey, "changelist")
    response = admin_client.get(url)
    rows = {r.name: r for r in response.context["cl"].result_list}
    assert rows["budgeted"]._spend == Decimal("3.75")
    assert rows["idle"]._spend is None and rows["idle"]._last_used is None
    html = response.content.decode()
    assert "$3.75 of $10.00 (38%)" in html
    assert '<meter class="gw-budget" min="0" max="10.00" value="3.75"' in html
    assert now.strftime("%Y-%m-%d %H:%M UTC") in html and ">never<" in html
    assert (
        f'href="/ops/costs/?virtual_key_id={budgeted.pk}&amp;preset=today&amp;group_by=alias"'
        in html
    )
    assert f'href="/ops/requests/?key={idle.pk}"' in html

    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = queries()
    for i in range(5):
        make_usage(provider, virtual_key=make_vkey(f"more-{i}").row)
    assert queries() == few
