"""Celery tasks of the providers app: health probes (thin wrappers that take ids).

One beat entry (``providers.health_checks_dispatch``, every ~10 s) fans out a probe task per
enabled instance whose own ``health_check_interval`` has elapsed since its last check, so every
instance keeps its own interval without one beat entry per instance.
"""

from __future__ import annotations

import logging

from celery import shared_task

from providers.health import health_check_run, health_checks_due, health_checks_purge

logger = logging.getLogger(__name__)


@shared_task(name="providers.health_check", ignore_result=True)
def health_check_task(*, provider_id: int) -> str | None:
    """Probe one instance, record a HealthCheck, feed its circuit breaker."""
    result = health_check_run(provider_id=provider_id)
    return result.outcome.status if result is not None else None


@shared_task(name="providers.health_checks_dispatch", ignore_result=True)
def health_checks_dispatch_task() -> list[int]:
    """Queue a probe of every enabled instance that is due."""
    due = health_checks_due()
    for provider_id in due:
        # Expires before the next dispatch could queue the same probe again.
        health_check_task.apply_async(kwargs={"provider_id": provider_id}, expires=60)
    return due


@shared_task(name="providers.health_checks_purge", ignore_result=True)
def health_checks_purge_task() -> int:
    """Delete checks older than HEALTH_CHECK_RETENTION_DAYS."""
    deleted = health_checks_purge()
    if deleted:
        logger.info("deleted %d old health checks", deleted)
    return deleted
