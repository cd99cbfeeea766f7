"""Every admin page of every registered model renders: declarations, plus a coverage check."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.db.models import Model
from django.test import Client
from django.utils import timezone

from gateway.keys.models import RoutingSettings, VirtualKey
from gateway.usage.models import UsageRecord
from mappings.models import (
    AliasRoutingPolicy,
    ModelPrice,
    ModelProviderMapping,
    TierAlias,
    TierPattern,
)
from providers.models import HealthCheck, Provider
from tests.admin_helpers import AdminPagesTests
from tests.factories import (
    make_key,
    make_mapping_row,
    make_price,
    make_provider_row,
    make_usage,
    make_vkey,
)

pytestmark = pytest.mark.django_db

OUR_APPS = {"providers", "mappings", "gateway", "usage"}


class TestProviderPages(AdminPagesTests):
    model = Provider

    def make(self) -> Model:
        provider = make_provider_row()
        make_key(provider)
        return provider


class TestHealthCheckPages(AdminPagesTests):
    model = HealthCheck
    can_add = False  # written by the health probes only

    def make(self) -> Model:
        return HealthCheck.objects.create(
            provider=make_provider_row(), status="down", probe="models", checked_at=timezone.now()
        )


class TestMappingPages(AdminPagesTests):
    model = ModelProviderMapping

    def make(self) -> Model:
        mapping = make_mapping_row()
        make_price(mapping)
        return mapping


class TestPricePages(AdminPagesTests):
    model = ModelPrice

    def make(self) -> Model:
        return make_price()


class TestAliasRoutingPolicyPages(AdminPagesTests):
    model = AliasRoutingPolicy

    def make(self) -> Model:
        make_mapping_row()
        return AliasRoutingPolicy.objects.create(alias="gpt-4o", strategy="least_busy")


def test_alias_policy_page_shows_the_route_now(admin_client: Client) -> None:
    mapping = make_mapping_row()
    policy = AliasRoutingPolicy.objects.create(alias=mapping.model_alias, strategy="least_busy")
    html = admin_client.get(f"/admin/mappings/aliasroutingpolicy/{policy.pk}/change/")
    text = html.content.decode()
    assert "Strategy <b>least_busy</b> (alias)" in text
    assert mapping.provider.name in text and "in flight" in text


class TestTierAliasPages(AdminPagesTests):
    model = TierAlias

    def make(self) -> Model:
        return TierAlias.objects.create(tier="small", alias="gpt-4o-mini", is_default=True)


class TestTierPatternPages(AdminPagesTests):
    model = TierPattern

    def make(self) -> Model:
        return TierPattern.objects.create(position=0, pattern="*haiku*", tier="small")


class TestVirtualKeyPages(AdminPagesTests):
    model = VirtualKey

    def make(self) -> Model:
        return make_vkey().row


class TestUsageRecordPages(AdminPagesTests):
    model = UsageRecord
    can_add = False  # usage is written by the recorder only

    def make(self) -> Model:
        return make_usage(make_provider_row())


class TestRoutingSettingsPages(AdminPagesTests):
    model = RoutingSettings
    can_add = False  # a singleton that exists
    changelist_redirects = True

    def make(self) -> Model:
        return RoutingSettings.load()


def test_every_registered_model_has_page_tests() -> None:
    """A model registered in our apps without a declaration above fails here."""
    registered = {m for m in admin.site._registry if m._meta.app_label in OUR_APPS}
    declared = {cls.model for cls in AdminPagesTests.__subclasses__()}
    assert registered - declared == set()


def test_site_is_titled_llm_gateway(admin_client: Client) -> None:
    html = admin_client.get("/admin/").content.decode()
    assert "<title>Configuration | LLM Gateway</title>" in html
    assert ">LLM Gateway</a>" in html


def test_index_lists_configuration_first_and_view_site_opens_the_cost_report(
    admin_client: Client,
) -> None:
    response = admin_client.get("/admin/")
    labels = [app["app_label"] for app in response.context["app_list"]]
    assert labels[:4] == ["providers", "mappings", "gateway", "usage"]
    assert labels.index("django_celery_beat") > 3
    html = response.content.decode()
    assert '<a href="/ops/costs/">View site</a>' in html
    assert html.index("app-providers") < html.index("app-django_celery_beat")
