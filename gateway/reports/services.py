"""Writes of the reports app: daily rollups."""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Count, Max
from django.utils import timezone

from gateway.reports.models import DailyUsageRollup, RollupDay
from gateway.reports.selectors import USAGE_AGGREGATES, day_start, utc_today
from gateway.usage.models import UsageRecord

logger = logging.getLogger(__name__)

ROLLUP_DIMENSIONS = (
    "provider_id",
    "provider_key_id",
    "account_group",
    "model_alias",
    "provider_model",
    "virtual_key_id",
)


def _day_records(day: date) -> Any:
    return UsageRecord.objects.filter(
        created_at__gte=day_start(day), created_at__lt=day_start(day + timedelta(days=1))
    )


@transaction.atomic
def rollup_day_rebuild(*, day: date) -> int:
    """Replace the rollup rows of ``day`` with fresh sums of its raw records; return rows.

    Idempotent (delete + insert in one transaction). Records already rolled up stay in the
    usage table: the rollup is a cache the reports read, never the only copy.
    """
    records = _day_records(day)
    stats = records.aggregate(count=Count("id"), max_id=Max("id"))
    DailyUsageRollup.objects.filter(day=day).delete()
    sums = records.values(*ROLLUP_DIMENSIONS).annotate(**USAGE_AGGREGATES).order_by()
    rows = [
        DailyUsageRollup(
            day=day,
            **{d: s[d] for d in ROLLUP_DIMENSIONS},
            requests=s["requests"],
            errors=s["errors"],
            prompt_tokens=s["prompt_sum"] or 0,
            completion_tokens=s["completion_sum"] or 0,
            latency_ms_sum=s["latency_ms_sum"] or 0.0,
            cost=s["cost_sum"] or 0,
            unpriced_requests=s["unpriced_requests"],
        )
        for s in sums
    ]
    DailyUsageRollup.objects.bulk_create(rows, batch_size=1000)
    RollupDay.objects.update_or_create(
        day=day,
        defaults={
            "source_count": stats["count"],
            "source_max_id": stats["max_id"],
            "built_at": timezone.now(),
        },
    )
    return len(rows)


def rollups_update(*, days_back: int = 7, today: date | None = None) -> list[date]:
    """Roll up every complete UTC day of the last ``days_back`` whose records changed.

    A day is rebuilt when it was never rolled up or its record count or highest record id
    moved since (a late, spooled event landed in it). Today is never rolled up: reports read
    today's raw records. Returns the days rebuilt.
    """
    today = today or utc_today()
    built = {r.day: r for r in RollupDay.objects.filter(day__gte=today - timedelta(days_back))}
    rebuilt = []
    for offset in range(days_back, 0, -1):
        day = today - timedelta(days=offset)
        stats = _day_records(day).aggregate(count=Count("id"), max_id=Max("id"))
        known = built.get(day)
        if (
            known is not None
            and known.source_count == stats["count"]
            and known.source_max_id == stats["max_id"]
        ):
            continue
        rows = rollup_day_rebuild(day=day)
        logger.debug("rolled up %s: %d records into %d rows", day, stats["count"], rows)
        rebuilt.append(day)
    if rebuilt:
        logger.info(
            "usage rollups rebuilt for %d day(s), %s .. %s", len(rebuilt), rebuilt[0], rebuilt[-1]
        )
    return rebuilt


def rollups_backfill(*, since: date, today: date | None = None) -> list[date]:
    """Roll up every complete day from ``since`` (first install, demo, benchmark)."""
    today = today or utc_today()
    return rollups_update(days_back=max((today - since).days, 0), today=today)
