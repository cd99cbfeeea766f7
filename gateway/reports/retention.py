"""Usage retention: raw usage records older than ``USAGE_RETENTION_DAYS`` go, but only once
every day they hold is rolled up (the cost reports read the rollups for those days).

On PostgreSQL whole month partitions are dropped (``gateway.usage.partitions``): a month goes
when its last day is older than the retention. Elsewhere (SQLite, one plain table) the old rows
are deleted day by day. Either way, each day is checked against its rollup first (the rollup's
record count and highest id must match the raw records) and rolled up again when it does not
match, so a record that is not in a rollup is never removed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.conf import settings
from django.db.models import Count, Max
from django.db.models.functions import TruncDate

from gateway.reports.models import RollupDay
from gateway.reports.selectors import day_start, utc_today
from gateway.reports.services import rollup_day_rebuild
from gateway.usage.models import UsageRecord
from gateway.usage.partitions import is_partitioned, partition_drop, partitions_list

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class RetentionResult:
    """What one retention pass removed, and the days it rolled up first."""

    cutoff: datetime | None = None
    dropped_partitions: list[str] = field(default_factory=list)
    deleted_rows: int = 0
    rolled_up: list[date] = field(default_factory=list)


def days_rolled_up(*, start: datetime, end: datetime) -> list[date]:
    """Make sure every day with records in ``[start, end)`` is rolled up from all of them;
    return the days that had to be (re)built."""
    stats = (
        UsageRecord.objects.filter(created_at__gte=start, created_at__lt=end)
        .annotate(day=TruncDate("created_at", tzinfo=UTC))
        .values("day")
        .annotate(count=Count("id"), max_id=Max("id"))
        .order_by()
    )
    built = {
        r.day: (r.source_count, r.source_max_id)
        for r in RollupDay.objects.filter(day__gte=start.date(), day__lt=end.date())
    }
    rebuilt = []
    for row in stats:
        if built.get(row["day"]) != (row["count"], row["max_id"]):
            rollup_day_rebuild(day=row["day"])
            rebuilt.append(row["day"])
    return sorted(rebuilt)


def usage_retention_apply(*, days: int | None = None, today: date | None = None) -> RetentionResult:
    """Remove raw usage older than ``days`` (default ``USAGE_RETENTION_DAYS``; 0 keeps all)."""
    days = settings.USAGE_RETENTION_DAYS if days is None else days
    result = RetentionResult()
    if days <= 0:
        return result
    cutoff = day_start((today or utc_today()) - timedelta(days=days))
    result.cutoff = cutoff
    if is_partitioned():
        for partition in partitions_list():
            if partition.end > cutoff:
                break
            result.rolled_up += days_rolled_up(start=partition.start, end=partition.end)
            partition_drop(partition=partition)
            result.dropped_partitions.append(partition.name)
    else:
        oldest = UsageRecord.objects.filter(created_at__lt=cutoff).order_by("created_at").first()
        day = oldest.created_at.astimezone(UTC).date() if oldest else cutoff.date()
        while day_start(day) < cutoff:
            start, end = day_start(day), day_start(day + timedelta(days=1))
            result.rolled_up += days_rolled_up(start=start, end=end)
            deleted, _ = UsageRecord.objects.filter(
                created_at__gte=start, created_at__lt=end
            ).delete()
            result.deleted_rows += deleted
            day += timedelta(days=1)
    if result.dropped_partitions or result.deleted_rows:
        logger.info(
            "usage retention (%d days): dropped %s, deleted %d rows, rolled up %d day(s) first",
            days,
            ", ".join(result.dropped_partitions) or "no partition",
            result.deleted_rows,
            len(result.rolled_up),
        )
    return result
