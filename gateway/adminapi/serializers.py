"""Serializers of the admin REST API. Secrets are write-only: ``api_key`` is never returned and
literal custom header values are masked."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from gateway.adminapi.strict import StrictModelSerializer
from gateway.keys.models import VirtualKey
from gateway.keys.services import MAX_ROTATION_GRACE
from mappings.models import ModelPrice, ModelProviderMapping
from providers.aws import AWS_PARTS, credentials_compose
from providers.models import Provider, ProviderKeyCredential
from providers.secrets import headers_masked, headers_unmasked


class ProviderKeySerializer(StrictModelSerializer):
    api_key = serializers.CharField(
        write_only=True,
        required=False,
        allow_blank=True,
        style={"input_type": "password"},
        help_text="Write-only; stored encrypted, never returned. A ${VAR} reference is allowed.",
    )
    masked_key = serializers.CharField(read_only=True)
    # Bedrock keys: the AWS credentials, write-only, composed into the stored api_key.
    access_key_id = serializers.CharField(write_only=True, required=False, allow_blank=True)
    secret_access_key = serializers.CharField(
        write_only=True, required=False, allow_blank=True, style={"input_type": "password"}
    )
    session_token = serializers.CharField(
        write_only=True, required=False, allow_blank=True, style={"input_type": "password"}
    )

    class Meta:
        model = ProviderKeyCredential
        fields = [
            "id",
            "provider",
            "key_name",
            "api_key",
            "access_key_id",
            "secret_access_key",
            "session_token",
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

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        parts = {name: attrs.pop(name, "") for name in AWS_PARTS}
        if any(parts.values()):
            if attrs.get("api_key"):
                raise serializers.ValidationError(
                    {"api_key": "give api_key or the AWS credential fields, not both"}
                )
            for name in AWS_PARTS[:2]:
                if not parts[name]:
                    raise serializers.ValidationError(
                        {name: "required with the other AWS credential fields"}
                    )
            attrs["api_key"] = credentials_compose(*parts.values())
        return super().validate(attrs)


class NestedKeySerializer(ProviderKeySerializer):
    class Meta(ProviderKeySerializer.Meta):
        fields = [f for f in ProviderKeySerializer.Meta.fields if f != "provider"]


class ProviderSerializer(StrictModelSerializer):
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
            "region",
            "project",
            "location",
            "base_url",
            "is_enabled",
            "api_version",
            "timeout",
            "connect_timeout",
            "max_retries",
            "custom_headers",
            "forward_headers",
            "anthropic_beta_allow",
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

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)
        # Literal header values are often credentials: never returned, only masked.
        data["custom_headers"] = headers_masked(data.get("custom_headers"))
        return data

    # ``null`` (JSON, or the string a form sends) would reach a NOT NULL column: these are
    # an object and a list, empty when unused.
    def validate_custom_headers(self, value: Any) -> Any:
        if not isinstance(value, dict):
            raise serializers.ValidationError("must be a JSON object of header name: value")
        # Sending back what a read showed (a masked value) keeps the stored value.
        stored = self.instance.custom_headers if isinstance(self.instance, Provider) else None
        return headers_unmasked(value, stored)

    def validate_forward_headers(self, value: Any) -> Any:
        if not isinstance(value, list):
            raise serializers.ValidationError("must be a JSON array of header names")
        return value


class MappingSerializer(StrictModelSerializer):
    class Meta:
        model = ModelProviderMapping
        fields = "__all__"
        read_only_fields = ["created_at", "updated_at"]
        validators: list[Any] = []


class PriceSerializer(StrictModelSerializer):
    class Meta:
        model = ModelPrice
        fields = "__all__"
        read_only_fields = ["created_at"]


class VirtualKeySerializer(StrictModelSerializer):
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


class RotateKeySerializer(serializers.Serializer):
    grace_seconds = serializers.IntegerField(
        required=False,
        default=0,
        min_value=0,
        max_value=int(MAX_ROTATION_GRACE.total_seconds()),
        help_text="How long the old key keeps working (0: it stops at once).",
    )


class RotatedKeySerializer(serializers.Serializer):
    id = serializers.IntegerField()
    key_prefix = serializers.CharField()
    key = serializers.CharField(help_text="The new plaintext key: returned once.")
    previous_key_expires_at = serializers.DateTimeField(
        allow_null=True, help_text="Until when the old key works; null: it stopped."
    )
