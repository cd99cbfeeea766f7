"""The usage each request generates and the budget alerts it fired.

Both tables were created by the ``gateway`` app and keep their names (``db_table``): the models
moved here without touching the database.
"""

from __future__ import annotations

from django.db import models

from gateway.keys.models import BudgetPeriod
from mappings.models import ModelProviderMapping
from providers.models import Provider, ProviderKeyCredential


class UsageRecord(models.Model):
    """One request through the gateway: who, where it went, tokens, latency, cost.

    ``(request_id, created_at)`` is unique, so recording a redelivered event changes nothing
    (``created_at`` comes from the event itself; on PostgreSQL the table is partitioned by
    month on it: ``gateway.usage.partitions``). ``cost`` is
    ``None`` when no price applied (shown as unpriced, never as $0). Provider FK is PROTECT:
    an instance with usage cannot be deleted (disable it), or cost history would dangle.
    """

    request_id = models.CharField(max_length=64)
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
        db_table = "gateway_usagerecord"
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["provider", "created_at"], name="usage_provider_time"),
            models.Index(fields=["virtual_key", "created_at"], name="usage_vkey_time"),
        ]
        constraints = [
            # The partition key must be part of every unique key of a partitioned table.
            models.UniqueConstraint(fields=["request_id", "created_at"], name="usage_request_once")
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.model_alias} {self.status_code}"


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
        db_table = "gateway_budgetalert"
        ordering = ["-created_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["virtual_key", "period_start", "kind"], name="uniq_budget_alert_period_kind"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.virtual_key_id} {self.kind} {self.period_start:%Y-%m-%d}"
