"""Celery task of the reports app: keep the daily rollups current (thin: calls the service).

Scheduled by ``manage.py setup_schedules`` (every 10 minutes): cheap when nothing changed
(one COUNT/MAX per day on the created_at index), so late usage events are folded in quickly.
"""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from gateway.reports.retention import usage_retention_apply
from gateway.reports.services import rollups_update
from gateway.usage.partitions import partitions_ensure


@shared_task(name="reports.rollups_update", ignore_result=True)
def rollups_update_task(*, days_back: int | None = None) -> list[str]:
    window = settings.USAGE_ROLLUP_WINDOW_DAYS if days_back is None else days_back
    return [d.isoformat() for d in rollups_update(days_back=window)]


@shared_task(name="reports.usage_partitions_maintain", ignore_result=True)
def usage_partitions_maintain_task() -> dict[str, list[str]]:
    """Create the usage table's months ahead, then apply the retention (rolled-up days only)."""
    created = partitions_ensure(ahead=settings.USAGE_PARTITIONS_AHEAD)
    result = usage_retention_apply()
    return {"created": created, "dropped": result.dropped_partitions}
