"""The admin site: titles, "View site" to the cost report, configuration apps first.

Installed through :class:`GatewayAdminConfig` (in ``INSTALLED_APPS`` instead of
``django.contrib.admin``), so every ``@admin.register`` lands on this site.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest

# What admins configure most, in this order; every other app (auth, celery-beat) follows.
FIRST_APPS = ("providers", "mappings", "gateway", "usage")


class GatewayAdminSite(admin.AdminSite):
    site_header = "LLM Gateway"
    site_title = "LLM Gateway"
    index_title = "Configuration"
    # "View site": the gateway has no public site; its staff front page is the cost report.
    site_url = "/ops/costs/"

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[Any]:
        apps = super().get_app_list(request, app_label)
        rank = {label: i for i, label in enumerate(FIRST_APPS)}
        # sorted() is stable: the rest keeps Django's alphabetical order.
        return sorted(apps, key=lambda app: rank.get(app["app_label"], len(rank)))


class GatewayAdminConfig(AdminConfig):
    default_site = "gateway.admin_site.GatewayAdminSite"
