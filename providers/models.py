"""Provider instances, their key credentials and the configuration version."""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from providers.aws import credentials_masked
from providers.aws import credentials_problem as aws_credentials_problem
from providers.betas import validate_beta_allow
from providers.envsubst import has_reference
from providers.presets import PresetName, keyless, preset_get, preset_models_probe_ok
from providers.secrets import EncryptedHeadersField, EncryptedTextField, Undecryptable
from providers.types import BEDROCK_BASE_URL, DEFAULT_BASE_URLS, ProviderType, vertex_base_url
from providers.validators import (
    service_account_problem,
    validate_custom_headers,
    validate_header_list,
    vertex_instance_problems,
)

MAX_ACCOUNT_GROUP = 32


class HealthProbe(models.TextChoices):
    """How a health check asks an instance whether it is up."""

    MODELS = "models", "List models (free)"
    COMPLETION = "completion", "1-token completion"


_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_REGION_REF = re.compile(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}")  # resolved when the config loads


def _azure_style(url: str) -> bool:
    return ".openai.azure.com" in url or "/openai/deployments" in url or "api-version=" in url


class Provider(models.Model):
    """One provider *instance*: a type plus its own URL, headers, limits and keys.

    Several instances of one type live side by side (production and development OpenAI
    accounts, Azure in two regions); mappings refer to instances by ID, never by type.
    Invariants (``clean``): Azure needs ``api_version``; types without a default base URL need
    one; custom headers are valid, injection-free and not gateway-owned. Literal custom header
    values are encrypted at rest like API keys.
    """

    name = models.CharField(max_length=100, unique=True)
    provider_type = models.CharField(max_length=32, choices=ProviderType.choices)
    base_url = models.CharField(
        max_length=500,
        blank=True,
        help_text="Empty: the type's default. ${VAR} references are resolved at load time.",
    )
    preset = models.CharField(
        max_length=32,
        choices=PresetName.choices,
        blank=True,
        default="",
        # A database default too: rows written without the field (older code, historical
        # models in migrations) get "no preset" instead of a NOT NULL error.
        db_default="",
        help_text="OpenAI-compatible only: a known cloud's base URL, auth and refused fields.",
    )
    region = models.CharField(
        max_length=32,
        blank=True,
        default="",
        db_default="",
        help_text=(
            "AWS Bedrock only (required there), e.g. us-east-1 or a ${VAR} reference: "
            "signing and default URL."
        ),
    )
    # Vertex AI only: the Google Cloud project and location (region or ``global``) whose
    # endpoint the instance calls when base_url is empty.
    project = models.CharField(
        max_length=100, blank=True, default="", db_default="", help_text="Vertex AI only."
    )
    location = models.CharField(
        max_length=50, blank=True, default="", db_default="", help_text="Vertex AI only."
    )
    is_enabled = models.BooleanField(default=True)
    api_version = models.CharField(
        max_length=50, blank=True, help_text="Azure OpenAI only, e.g. 2024-10-21."
    )
    timeout = models.FloatField(
        default=90.0,
        validators=[MinValueValidator(0.1)],
        help_text="Seconds to wait for the upstream (read timeout).",
    )
    connect_timeout = models.FloatField(default=10.0, validators=[MinValueValidator(0.1)])
    max_retries = models.PositiveSmallIntegerField(default=3, validators=[MaxValueValidator(10)])
    # Literal values are often credentials (Ocp-Apim-Subscription-Key): encrypted at rest,
    # masked on read; ${VAR} references are stored as written.
    custom_headers = EncryptedHeadersField(
        default=dict,
        blank=True,
        help_text='Sent on every request to this instance, e.g. {"X-Cost-Center": "${CC}"}.',
    )
    forward_headers = models.JSONField(
        default=list,
        blank=True,
        help_text="Client request headers passed through to this instance (allow-list).",
    )
    anthropic_beta_allow = models.JSONField(
        null=True,
        blank=True,
        default=None,
        help_text=(
            "anthropic-beta flags a client may pass to this instance: a JSON list of names "
            '(with or without their date), ["*"] for any, [] for none; empty: the built-in '
            "list of format and tool betas Claude Code sends."
        ),
    )
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    health_check_interval = models.PositiveIntegerField(
        default=300, validators=[MinValueValidator(10)], help_text="Seconds between probes."
    )
    health_check_probe = models.CharField(
        max_length=16, choices=HealthProbe.choices, default=HealthProbe.MODELS
    )
    health_check_model = models.CharField(
        max_length=200, blank=True, help_text="Model for completion probes."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.provider_type})"

    @property
    def effective_base_url(self) -> str:
        """The configured base URL or the type's default (``${VAR}`` still unresolved)."""
        preset = (
            preset_get(self.preset)
            if self.provider_type == ProviderType.OPENAI_COMPATIBLE
            else None
        )
        default = preset.base_url if preset else DEFAULT_BASE_URLS.get(self.provider_type, "")
        if self.provider_type == ProviderType.BEDROCK and self.region:
            default = BEDROCK_BASE_URL.format(region=self.region)
        if self.provider_type == ProviderType.VERTEX_AI and self.project and self.location:
            default = vertex_base_url(self.project, self.location)
        return (self.base_url or default).rstrip("/")

    @property
    def needs_key(self) -> bool:
        """Whether keys of this instance must carry an api_key (local servers need none)."""
        return not keyless(self.provider_type, self.preset)

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if self.provider_type not in ProviderType.values:
            errors["provider_type"] = f"unknown provider type {self.provider_type!r}"
        if self.provider_type == ProviderType.AZURE_OPENAI and not self.api_version:
            errors["api_version"] = "Azure OpenAI instances need an api_version"
        if self.preset and self.preset not in PresetName.values:
            errors["preset"] = f"unknown preset {self.preset!r}"
        elif self.preset and self.provider_type != ProviderType.OPENAI_COMPATIBLE:
            errors["preset"] = "a preset applies to openai_compatible instances only"
        elif self.preset and not preset_models_probe_ok(self.preset, self.health_check_probe):
            errors["health_check_probe"] = (
                f"{self.preset} has no model list: use the completion probe and a model"
            )
        region_ok = _REGION.fullmatch(self.region or "") or _REGION_REF.fullmatch(self.region or "")
        if self.provider_type == ProviderType.BEDROCK and not region_ok:
            errors["region"] = (
                "Bedrock instances need an AWS region, e.g. us-east-1"
                if not self.region
                else f"{self.region!r} is not an AWS region name"
            )
        elif self.region and self.provider_type != ProviderType.BEDROCK:
            errors["region"] = "a region applies to bedrock instances only"
        bedrock_default = self.provider_type == ProviderType.BEDROCK
        if self.provider_type == ProviderType.VERTEX_AI:
            errors.update(vertex_instance_problems(self.project, self.location))
        elif (
            not self.base_url
            and not self.preset
            and not bedrock_default
            and self.provider_type not in DEFAULT_BASE_URLS
        ):
            errors["base_url"] = f"{self.provider_type} instances need a base_url"
        if (
            self.base_url
            and not has_reference(self.base_url)
            and not self.base_url.startswith(("http://", "https://"))
        ):
            errors["base_url"] = "base_url must start with http:// or https://"
        if self.provider_type == ProviderType.GEMINI and _azure_style(self.base_url):
            errors["base_url"] = "a Gemini base_url is Google's API root, not an Azure endpoint"
        try:
            validate_custom_headers(self.custom_headers)
        except ValidationError as exc:
            errors["custom_headers"] = exc.messages
        try:
            validate_header_list(self.forward_headers)
        except ValidationError as exc:
            errors["forward_headers"] = exc.messages
        try:
            validate_beta_allow(self.anthropic_beta_allow)
        except ValidationError as exc:
            errors["anthropic_beta_allow"] = exc.messages
        if errors:
            raise ValidationError(errors)


class ProviderKeyCredential(models.Model):
    """One API key of a provider instance (ConduitLLM semantics).

    Keys in the same ``account_group`` (0-32) share the upstream account's limits, so on a 429
    the gateway moves to a key of *another* group. At most one key per instance is primary
    (partial unique constraint); the primary enabled key is tried first. ``api_key`` is
    encrypted at rest; a ``${VAR}`` reference is stored as the reference.
    """

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="keys")
    key_name = models.CharField(max_length=100)
    api_key = EncryptedTextField(blank=True)
    account_group = models.PositiveSmallIntegerField(
        default=0, validators=[MaxValueValidator(MAX_ACCOUNT_GROUP)]
    )
    is_primary = models.BooleanField(default=False)
    is_enabled = models.BooleanField(default=True)
    base_url = models.CharField(
        max_length=500, blank=True, help_text="Overrides the instance's base URL for this key."
    )
    organization = models.CharField(
        max_length=200, blank=True, help_text="Sent as OpenAI-Organization."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider_id", "-is_primary", "id"]
        constraints = [
            models.UniqueConstraint(fields=["provider", "key_name"], name="uniq_key_name"),
            models.UniqueConstraint(
                fields=["provider"], condition=Q(is_primary=True), name="one_primary_key"
            ),
            models.CheckConstraint(
                condition=Q(account_group__gte=0) & Q(account_group__lte=MAX_ACCOUNT_GROUP),
                name="account_group_0_32",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider.name}/{self.key_name}"

    @property
    def masked_key(self) -> str:
        """What may be shown of the key: a ``${VAR}`` reference as is, else its last 4."""
        if isinstance(self.api_key, Undecryptable):
            return "(cannot decrypt)"
        value = self.api_key or ""
        if not value:
            return "(none)"
        provider = getattr(self, "provider", None) if self.provider_id else None
        if provider is not None and provider.provider_type == ProviderType.BEDROCK:
            return credentials_masked(value)
        if has_reference(value):
            return value
        return f"…{value[-4:]}" if len(value) > 8 else "****"

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        if self.account_group is not None and not 0 <= self.account_group <= MAX_ACCOUNT_GROUP:
            errors["account_group"] = f"account group must be between 0 and {MAX_ACCOUNT_GROUP}"
        if (
            self.base_url
            and not has_reference(self.base_url)
            and not self.base_url.startswith(("http://", "https://"))
        ):
            errors["base_url"] = "base_url must start with http:// or https://"
        provider = getattr(self, "provider", None) if self.provider_id else None
        bedrock = provider is not None and provider.provider_type == ProviderType.BEDROCK
        if provider is not None and not self.api_key and provider.needs_key:
            errors["api_key"] = (
                "bedrock keys need AWS credentials (access_key_id and secret_access_key)"
                if bedrock
                else f"{provider.provider_type} keys need an api_key"
            )
        elif bedrock:
            problem = aws_credentials_problem(self.api_key or "")
            if problem:
                errors["api_key"] = problem
        elif provider is not None and provider.provider_type == ProviderType.VERTEX_AI:
            problem = service_account_problem(self.api_key)
            if problem:
                errors["api_key"] = problem
        if self.is_primary and self.provider_id:
            others = ProviderKeyCredential.objects.filter(
                provider_id=self.provider_id, is_primary=True
            ).exclude(pk=self.pk)
            if others.exists():
                errors["is_primary"] = "this instance already has a primary key"
        if errors:
            raise ValidationError(errors)


class ConfigVersion(models.Model):
    """A single row counting configuration changes.

    Every save/delete of routing-relevant configuration bumps it (and the Redis copy when Redis
    is configured); gateway processes poll it about once a second and rebuild their in-memory
    route table when it moves. It is the database fallback when there is no Redis.
    """

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    version = models.BigIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"config v{self.version}"


class HealthStatus(models.TextChoices):
    HEALTHY = "healthy", "Healthy"
    DEGRADED = "degraded", "Degraded (slow or rate limited)"
    DOWN = "down", "Down"


class HealthErrorCategory(models.TextChoices):
    NONE = "", "None"
    TIMEOUT = "timeout", "Timed out"
    CONNECT = "connect", "Could not connect"
    AUTH = "auth", "Authentication refused"
    RATE_LIMIT = "rate_limit", "Rate limited"
    CLIENT_ERROR = "client_error", "Request refused (4xx)"
    SERVER_ERROR = "server_error", "Server error (5xx)"
    SLOW = "slow", "Answered slowly"
    BAD_RESPONSE = "bad_response", "Unreadable answer"
    CONFIG = "config", "Instance misconfigured"
    NO_KEY = "no_key", "No enabled key"


class HealthCheck(models.Model):
    """One health probe of a provider instance (history kept ``HEALTH_CHECK_RETENTION_DAYS``).

    ``degraded`` means the instance answered but slowly (over ``HEALTH_CHECK_DEGRADED_MS``) or
    with 429; ``down`` means it did not answer usefully. ``error_message`` is redacted of the
    instance's key values before it is stored.
    """

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="health_checks")
    status = models.CharField(max_length=16, choices=HealthStatus.choices)
    probe = models.CharField(max_length=16, choices=HealthProbe.choices)
    latency_ms = models.FloatField(null=True, blank=True)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    error_category = models.CharField(
        max_length=32, choices=HealthErrorCategory.choices, blank=True, default=""
    )
    error_message = models.CharField(max_length=500, blank=True, default="")
    checked_at = models.DateTimeField(db_index=True)

    class Meta:
        ordering = ["-checked_at"]
        indexes = [models.Index(fields=["provider", "-checked_at"], name="healthcheck_prov_time")]

    def __str__(self) -> str:
        return f"{self.provider_id} {self.status} at {self.checked_at:%Y-%m-%d %H:%M:%S}"
