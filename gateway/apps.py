from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from gateway.models import RoutingSettings, VirtualKey
        from providers import config_version

        config_version.watch(VirtualKey)
        config_version.watch(RoutingSettings)
