"""Cost reports, daily rollups and provider health pages.

A Django app of its own (label ``reports``) inside the gateway package, so its tables and
migrations never clash with the other gateway apps' own.
"""

from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "gateway.reports"
    label = "reports"
    verbose_name = "Reports"
    default_auto_field = "django.db.models.BigAutoField"
