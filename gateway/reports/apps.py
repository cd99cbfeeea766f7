"""Cost reports, provider health pages and the admin REST API's tokens.

A Django app of its own (label ``reports``) inside the gateway package, so its tables and
migrations never clash with the gateway app's own (several people add gateway migrations).
"""

from __future__ import annotations

from django.apps import AppConfig


class ReportsConfig(AppConfig):
    name = "gateway.reports"
    label = "reports"
    verbose_name = "Reports and API tokens"
    default_auto_field = "django.db.models.BigAutoField"
