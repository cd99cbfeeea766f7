from django.apps import AppConfig


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = "Gateway"

    def ready(self) -> None:
        from gateway.models import VirtualKey
        from providers import config_version

        config_version.watch(VirtualKey)
