from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from gateway.models import RoutingSettings, VirtualKey
        from providers import config_version

        config_version.watch(VirtualKey)
        config_version.watch(RoutingSettings)

        # The mappings admin shows each alias's route now; mappings may not import gateway,
        # so gateway hands it the function.
        from gateway.routing.plan import explain_alias_sync
        from mappings import admin as mappings_admin

        mappings_admin.route_explainer = explain_alias_sync
