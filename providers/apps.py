from django.apps import AppConfig


class ProvidersConfig(AppConfig):
    name = "providers"
    verbose_name = "Providers"

    def ready(self) -> None:
        from providers import config_version
        from providers.models import Provider, ProviderKeyCredential

        config_version.watch(Provider)
        config_version.watch(ProviderKeyCredential)
