"""Celery task of the reports app: keep the daily rollups current (thin: calls the service).

Scheduled by ``manage.py setup_schedules`` (every 10 minutes): cheap when nothing changed
(one COUNT/MAX per day on the created_at index), so late usage events are folded in quickly.
"""

from __future__ import annotations

from celery import shared_task

from gateway.reports.services import rollups_update


@shared_task(name="reports.rollups_update", ignore_result=True)
def rollups_update_task(*, days_back: int = 7) -> list[str]:
    return [d.isoformat() for d in rollups_update(days_back=days_back)]
