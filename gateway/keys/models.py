"""Apps' virtual keys and the global routing settings."""

from __future__ import annotations

import hashlib
import secrets
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

VIRTUAL_KEY_PREFIX = "sk-gw-"


def hash_key(plaintext: str) -> str:
    """SHA-256 hex digest of a presented virtual key (what is stored and looked up)."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def generate_key() -> str:
    """A new virtual key: recognisable prefix + 256 bits of randomness."""
    return VIRTUAL_KEY_PREFIX + secrets.token_urlsafe(32)


# A key a file brings must be at least as hard to guess as 32 random characters.
MIN_KEY_LENGTH = 32
MIN_KEY_DISTINCT = 10


def virtual_key_weakness(plaintext: str) -> str:
    """Why ``plaintext`` is too weak for a virtual key ("" when it is fine); never quotes it.

    Length at least 32, at least two character classes (lower, upper, digit, other) and 10
    distinct characters: a generated key (``sk-gw-`` + 43 URL-safe characters) or 32 random
    hex bytes pass; a word, a repeated character or a short secret do not.
    """
    if len(plaintext) < MIN_KEY_LENGTH:
        return f"{len(plaintext)} characters, at least {MIN_KEY_LENGTH} random ones are needed"
    classes = sum(
        any(test(c) for c in plaintext)
        for test in (str.islower, str.isupper, str.isdigit, lambda c: not c.isalnum())
    )
    if classes < 2 or len(set(plaintext)) < MIN_KEY_DISTINCT:
        return "too little variety: use random characters, e.g. a generated key"
    return ""


class BudgetPeriod(models.TextChoices):
    DAILY = "daily", "Daily"
    MONTHLY = "monthly", "Monthly"
    TOTAL = "total", "Total (lifetime)"


class VirtualKey(models.Model):
    """A gateway-issued key an app presents instead of a provider key.

    Only the SHA-256 of the key is stored; the plaintext is shown once when created.
    ``allowed_models`` empty means every alias. Limits and budget are optional. A rotation may
    leave the old key working for a grace period (``previous_key_hash`` until
    ``previous_key_expires_at``).
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
    # After a rotation with a grace period the replaced key keeps working until this time.
    previous_key_hash = models.CharField(max_length=64, blank=True, default="", editable=False)
    previous_key_expires_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name

    @property
    def previous_key_active(self) -> bool:
        """True while the key replaced by the last rotation is still accepted."""
        return bool(
            self.previous_key_hash
            and self.previous_key_expires_at is not None
            and self.previous_key_expires_at > timezone.now()
        )

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
