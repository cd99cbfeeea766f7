"""Usage records, budget alerts and the Celery tasks that write them (label ``usage``)."""

from __future__ import annotations

from django.apps import AppConfig


class UsageConfig(AppConfig):
    name = "gateway.usage"
    label = "usage"
    verbose_name = "Usage and budgets"
    default_auto_field = "django.db.models.BigAutoField"
