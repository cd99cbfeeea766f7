from django.apps import AppConfig


class MappingsConfig(AppConfig):
    name = "mappings"
    verbose_name = "Model mappings"

    def ready(self) -> None:
        from mappings.models import (
            AliasRoutingPolicy,
            ModelPrice,
            ModelProviderMapping,
            TierAlias,
            TierPattern,
        )
        from providers import config_version

        config_version.watch(ModelProviderMapping)
        config_version.watch(ModelPrice)
        config_version.watch(AliasRoutingPolicy)
        config_version.watch(TierAlias)
        config_version.watch(TierPattern)
