"""Serializers of the admin REST API. Secrets are write-only: ``api_key`` is never returned."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from gateway.keys.models import VirtualKey
from mappings.models import ModelPrice, ModelProviderMapping
from providers.models import Provider, ProviderKeyCredential


class ProviderKeySerializer(serializers.ModelSerializer):
    api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        style={"input_type": "password"},
        help_text="Write-only; stored encrypted, never returned. A ${VAR} reference is allowed.",
    )
    masked_key = serializers.CharField(read_only=True)

    class Meta:
        model = ProviderKeyCredential
        fields = [
            "id",
            "provider",
            "key_name",
            "api_key",
            "masked_key",
            "account_group",
            "is_primary",
            "is_enabled",
            "base_url",
            "organization",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]
        # Uniqueness and "one primary" are checked with the whole instance by providers.services.
        validators: list[Any] = []


class NestedKeySerializer(ProviderKeySerializer):
    class Meta(ProviderKeySerializer.Meta):
        fields = [f for f in ProviderKeySerializer.Meta.fields if f != "provider"]


class ProviderSerializer(serializers.ModelSerializer):
    keys = NestedKeySerializer(
        many=True,
        required=False,
        help_text="Upserted by key_name; keys not listed are left alone.",
    )

    class Meta:
        model = Provider
        fields = [
            "id",
            "name",
            "provider_type",
            "preset",
            "base_url",
            "is_enabled",
            "api_version",
            "timeout",
            "connect_timeout",
            "max_retries",
            "custom_headers",
            "forward_headers",
            "requests_per_minute",
            "tokens_per_minute",
            "health_check_interval",
            "health_check_probe",
            "health_check_model",
            "keys",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class MappingSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelProviderMapping
        fields = "__all__"
        read_only_fields = ["created_at", "updated_at"]
        validators: list[Any] = []


class PriceSerializer(serializers.ModelSerializer):
    class Meta:
        model = ModelPrice
        fields = "__all__"
        read_only_fields = ["created_at"]


class VirtualKeySerializer(serializers.ModelSerializer):
    class Meta:
        model = VirtualKey
        fields = [
            "id",
            "name",
            "key_prefix",
            "allowed_models",
            "expires_at",
            "is_enabled",
            "requests_per_minute",
            "tokens_per_minute",
            "budget_amount",
            "budget_period",
            "budget_alert_threshold",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["key_prefix", "created_at", "updated_at"]


class VirtualKeyCreatedSerializer(VirtualKeySerializer):
    key = serializers.CharField(
        read_only=True, help_text="The plaintext key: returned once, never stored."
    )

    class Meta(VirtualKeySerializer.Meta):
        fields = [*VirtualKeySerializer.Meta.fields, "key"]


class RotatedKeySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key_prefix = serializers.CharField()
    key = serializers.CharField(help_text="The new plaintext key: returned once.")
