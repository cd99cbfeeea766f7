"""Daily usage rollups (what reports read for past days) and admin API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.conf import settings
from django.db import models
from django.utils import timezone

API_TOKEN_PREFIX = "gwat_"


class DailyUsageRollup(models.Model):
    """Usage of one UTC day summed per (instance, key, account group, alias, provider model,
    virtual key).

    Rebuilt wholesale per day by ``reports.rollups_update`` (delete + insert in one
    transaction), so rebuilding is idempotent and a late record only means the day is rebuilt.
    ``cost`` sums the priced records only; ``unpriced_requests`` counts the others, so unpriced
    usage is never shown as $0. Plain ids, not foreign keys: a rollup outlives a deleted key or
    mapping, exactly like the raw records (which SET_NULL them).
    """

    day = models.DateField()
    provider_id = models.BigIntegerField(null=True)
    provider_key_id = models.BigIntegerField(null=True)
    account_group = models.PositiveSmallIntegerField(null=True)
    model_alias = models.CharField(max_length=200, blank=True)
    provider_model = models.CharField(max_length=200, blank=True)
    virtual_key_id = models.BigIntegerField(null=True)
    requests = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    latency_ms_sum = models.FloatField(default=0)
    cost = models.DecimalField(max_digits=24, decimal_places=10, default=0)
    unpriced_requests = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [
            models.Index(fields=["day"], name="rollup_day"),
            models.Index(fields=["provider_id", "day"], name="rollup_provider_day"),
            models.Index(fields=["virtual_key_id", "day"], name="rollup_vkey_day"),
        ]

    def __str__(self) -> str:
        return f"{self.day} p{self.provider_id} {self.model_alias}: {self.requests} requests"


class RollupDay(models.Model):
    """Which days are rolled up, and from how many raw records (to notice late arrivals)."""

    day = models.DateField(unique=True)
    source_count = models.PositiveIntegerField()
    source_max_id = models.BigIntegerField(null=True)
    built_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-day"]

    def __str__(self) -> str:
        return f"{self.day}: {self.source_count} records"


def token_hash(plaintext: str) -> str:
    """SHA-256 hex digest of a presented API token (what is stored and looked up)."""
    return hashlib.sha256(plaintext.encode()).hexdigest()


def token_generate() -> str:
    """A new admin API token: recognisable prefix + 256 bits of randomness."""
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


class ApiToken(models.Model):
    """A token for the admin REST API and report endpoints, acting as ``user``.

    Only the SHA-256 is stored; the plaintext is shown once when created (admin or
    ``manage.py api_token create``). Only staff users are let in, whatever the token.
    """

    name = models.CharField(max_length=100)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    token_hash = models.CharField(max_length=64, unique=True, editable=False)
    token_prefix = models.CharField(max_length=16, editable=False)
    is_active = models.BooleanField(default=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "admin API token"

    def __str__(self) -> str:
        return f"{self.name} ({self.token_prefix}…)"

    def set_token(self, plaintext: str) -> None:
        self.token_hash = token_hash(plaintext)
        self.token_prefix = plaintext[: len(API_TOKEN_PREFIX) + 4]

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()
