"""The admin REST API and its staff tokens (label ``adminapi``)."""

from __future__ import annotations

from django.apps import AppConfig


class AdminApiConfig(AppConfig):
    name = "gateway.adminapi"
    label = "adminapi"
    verbose_name = "Admin API"
    default_auto_field = "django.db.models.BigAutoField"
