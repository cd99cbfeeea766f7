from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "mappings"
    verbose_name = "Model mappings"

    def ready(self) -> None:
        from mappings.models import ModelPrice, ModelProviderMapping
        from providers import config_version

        config_version.watch(ModelProviderMapping)
        config_version.watch(ModelPrice)
