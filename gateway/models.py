"""Apps' virtual keys and the usage they generate."""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from mappings.models import ModelProviderMapping
from providers.models import Provider, ProviderKeyCredential

VIRTUAL_KEY_PREFIX = "sk-gw-"


def hash_key(plaintext: str) -> str:
    """SHA-256 hex digest of a presented virtual key (what is stored and looked up)."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> str:
    """A new virtual key: recognisable prefix + 256 bits of randomness."""
    return VIRTUAL_KEY_PREFIX + secrets.token_urlsafe(32)


class BudgetPeriod(models.TextChoices):
    DAILY = "daily", "Daily"
    MONTHLY = "monthly", "Monthly"
    TOTAL = "total", "Total (lifetime)"


class VirtualKey(models.Model):
    """A gateway-issued key an app presents instead of a provider key.

    Only the SHA-256 of the key is stored; the plaintext is shown once when created.
    ``allowed_models`` empty means every alias. Limits and budget are optional.
    """

    name = models.CharField(max_length=100, unique=True)
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    key_prefix = models.CharField(
        max_length=16, editable=False, help_text="First characters, to recognise the key."
    )
    allowed_models = models.JSONField(default=list, blank=True, help_text="Empty: all aliases.")
    expires_at = models.DateTimeField(null=True, blank=True)
    is_enabled = models.BooleanField(default=True)
    requests_per_minute = models.PositiveIntegerField(null=True, blank=True)
    tokens_per_minute = models.PositiveIntegerField(null=True, blank=True)
    budget_amount = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="In USD; empty: no budget.",
    )
    budget_period = models.CharField(
        max_length=16, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTHLY
    )
    budget_alert_threshold = models.DecimalField(
        max_digits=4,
        decimal_places=3,
        default=Decimal("0.8"),
        validators=[MinValueValidator(Decimal(0)), MaxValueValidator(Decimal(1))],
        help_text="Alert when spend reaches this fraction of the budget.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    def set_key(self, plaintext: str) -> None:
        """Store the hash and a recognisable prefix of ``plaintext`` (never the key)."""
        self.key_hash = hash_key(plaintext)
        self.key_prefix = plaintext[: len(VIRTUAL_KEY_PREFIX) + 4]

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def clean(self) -> None:
        errors: dict[str, Any] = {}
        models_ = self.allowed_models
        if models_ in (None, ""):
            self.allowed_models = []
        elif not isinstance(models_, list) or not all(
            isinstance(m, str) and m.strip() for m in models_
        ):
            errors["allowed_models"] = "must be a list of alias names"
        if errors:
            raise ValidationError(errors)


class UsageRecord(models.Model):
    """One request through the gateway: who, where it went, tokens, latency, cost.

    ``request_id`` is unique, so recording a redelivered event changes nothing. ``cost`` is
    ``None`` when no price applied (shown as unpriced, never as $0). Provider FK is PROTECT:
    an instance with usage cannot be deleted (disable it), or cost history would dangle.
    """

    request_id = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(db_index=True)
    endpoint = models.CharField(max_length=32)
    virtual_key = models.ForeignKey(
        "gateway.VirtualKey", null=True, blank=True, on_delete=models.PROTECT
    )
    model_alias = models.CharField(max_length=200, blank=True)
    provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.PROTECT)
    provider_key = models.ForeignKey(
        ProviderKeyCredential, null=True, blank=True, on_delete=models.SET_NULL
    )
    mapping = models.ForeignKey(
        ModelProviderMapping, null=True, blank=True, on_delete=models.SET_NULL
    )
    account_group = models.PositiveSmallIntegerField(null=True, blank=True)
    provider_model = models.CharField(max_length=200, blank=True)
    stream = models.BooleanField(default=False)
    status_code = models.PositiveSmallIntegerField()
    error_type = models.CharField(max_length=64, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cached_tokens = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    attempts = models.JSONField(default=list, blank=True)
    cost = models.DecimalField(max_digits=18, decimal_places=10, null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["provider", "created_at"], name="usage_provider_time"),
            models.Index(fields=["virtual_key", "created_at"], name="usage_vkey_time"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_alias} {self.status_code}"


class RoutingStrategy(models.TextChoices):
    PRIORITY = "priority", "Priority (lowest first, next on failure)"
    ROUND_ROBIN = "round_robin", "Round robin"
    WEIGHTED = "weighted", "Weighted by mapping weight"
    RANDOM = "random", "Random"
    LEAST_COST = "least_cost", "Least cost"
    LOWEST_LATENCY = "lowest_latency", "Lowest latency"
    LEAST_BUSY = "least_busy", "Least busy"


class RoutingSettings(models.Model):
    """Global routing policy (a single row): default strategy and circuit breaker tuning."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1, editable=False)
    strategy = models.CharField(
        max_length=32, choices=RoutingStrategy.choices, default=RoutingStrategy.PRIORITY
    )
    failure_threshold = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1)], help_text="Consecutive failures to open."
    )
    recovery_timeout = models.PositiveIntegerField(
        default=60, validators=[MinValueValidator(1)], help_text="Seconds a circuit stays open."
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "routing settings"
        verbose_name_plural = "routing settings"

    def __str__(self) -> str:
        return f"routing: {self.strategy}"

    @classmethod
    def load(cls) -> RoutingSettings:
        """The single row, created with defaults on first use."""
        obj, _ = cls.objects.get_or_create(pk=1)
        return obj


class BudgetAlertKind(models.TextChoices):
    THRESHOLD = "threshold", "Threshold reached"
    EXCEEDED = "exceeded", "Budget exceeded"


class BudgetAlert(models.Model):
    """A budget alert that fired: at most one per virtual key, budget period and kind.

    The unique constraint is what makes "alert once per period per threshold" hold even when
    two budget checks run at the same time. Delivery (log, email, webhook) happens after the
    row is committed; its outcome is kept here for admins.
    """

    virtual_key = models.ForeignKey(
        "gateway.VirtualKey", on_delete=models.CASCADE, related_name="budget_alerts"
    )
    period = models.CharField(max_length=16, choices=BudgetPeriod.choices)
    period_start = models.DateTimeField(help_text="UTC start of the budget period.")
    kind = models.CharField(max_length=16, choices=BudgetAlertKind.choices)
    spend = models.DecimalField(max_digits=20, decimal_places=10)
    budget_amount = models.DecimalField(max_digits=14, decimal_places=2)
    threshold = models.DecimalField(max_digits=4, decimal_places=3)
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    delivery_error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["virtual_key", "period_start", "kind"], name="uniq_budget_alert_period_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.virtual_key_id} {self.kind} {self.period_start:%Y-%m-%d}"
