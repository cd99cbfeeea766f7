"""Configuration as code: the ``gateway_config`` and ``demo_setup`` commands (no models)."""

from __future__ import annotations

from django.apps import AppConfig


class ConfigIOConfig(AppConfig):
    name = "gateway.config_io"
    label = "config_io"
    verbose_name = "Configuration as code"
