"""Celery tasks of the usage app: thin wrappers that take ids and call services.

Task names keep their ``gateway.`` prefix: django-celery-beat stores periodic tasks by name.
"""

from __future__ import annotations

import logging

from celery import shared_task

from gateway.usage.budgets import budget_alert_deliver, budgets_check
from gateway.usage.recorder import usage_drain

logger = logging.getLogger(__name__)


@shared_task(name="gateway.usage_drain", ignore_result=True)
def usage_drain_task() -> dict[str, int]:
    """Record the usage stream's backlog (and orphan spools) into UsageRecords."""
    result = usage_drain()
    if result.read or result.spooled:
        logger.info("usage drain: %s", result.as_dict())
    return result.as_dict()


@shared_task(name="gateway.budgets_check", ignore_result=True)
def budgets_check_task() -> dict[str, int]:
    """Compute budget spend, publish the over-budget set, fire alerts."""
    result = budgets_check()
    return {"checked": result.checked, "over": len(result.over), "fired": len(result.fired)}


@shared_task(name="gateway.budget_alert_deliver", ignore_result=True)
def budget_alert_deliver_task(*, alert_id: int) -> None:
    """Send one budget alert (log, email, webhook); a redelivery sends nothing twice."""
    budget_alert_deliver(alert_id=alert_id)
