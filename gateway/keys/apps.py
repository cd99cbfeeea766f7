"""Virtual keys and routing settings: the app that kept the ``gateway`` label.

The label, and so the tables (``gateway_virtualkey``, ``gateway_routingsettings``) and the
migration history, are those of the app the project package used to be.
"""

from __future__ import annotations

from django.apps import AppConfig


class KeysConfig(AppConfig):
    name = "gateway.keys"
    label = "gateway"
    verbose_name = "Gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from gateway.keys.models import RoutingSettings, VirtualKey
        from providers import config_version

        # Saving either changes the route table: gateway processes rebuild it.
        config_version.watch(VirtualKey)
        config_version.watch(RoutingSettings)
