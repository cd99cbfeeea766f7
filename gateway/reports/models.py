"""Daily usage rollups: what reports read for past days."""

from __future__ import annotations

from django.db import models
from django.utils import timezone


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
